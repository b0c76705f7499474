// docs/nn.md's example: an MLP's loss, mean gradient, per-sample gradients and a batch of
// Hessian-vector products, with the checks a user would make (the mean of the per-sample
// gradients is the mean gradient; H v is symmetric in the sense uᵀ(Hv) = vᵀ(Hu)).

#include <cmath>
#include <cstdio>
#include <vector>

#include <hydra/hydra.hpp>

int main() {
  using T = double;
  const hydra::index batch = 8, inputs = 5, classes = 3;
  hydra::Mlp<T> model(inputs, {16, 16}, classes, hydra::activation::tanh);
  hydra::SoftmaxCrossEntropy<T> loss;

  hydra::vector<T, hydra::cpu> w(model.parameter_count());
  model.initialize(w.view(), /*seed=*/42);

  hydra::matrix<T, hydra::cpu> x(batch, inputs);
  std::vector<hydra::label_type> labels(batch);
  for (hydra::index b = 0; b < batch; ++b) {
    for (hydra::index d = 0; d < inputs; ++d) x(b, d) = std::sin(static_cast<T>(3 * b + d));
    labels[static_cast<std::size_t>(b)] = static_cast<hydra::label_type>(b % classes);
  }
  const hydra::batch_targets<T> y{labels.data(), {}};

  const hydra::index P = model.parameter_count();
  hydra::vector<T, hydra::cpu> grad(P);
  const T mean_loss = model.gradient(w.view(), x.view(), y, loss, grad.view());

  hydra::matrix<T, hydra::cpu> per_sample(batch, P);  // row b: ∇ℓ(x_b, y_b)
  model.per_sample_gradients(w.view(), x.view(), y, loss, per_sample.view());

  const hydra::index k = 2;  // two directions at once
  hydra::matrix<T, hydra::cpu> directions(k, P), products(k, P);
  for (hydra::index j = 0; j < k; ++j)
    for (hydra::index i = 0; i < P; ++i) directions(j, i) = std::cos(static_cast<T>(i * (j + 1)));
  model.hessian_vector_products(w.view(), x.view(), y, loss, directions.view(), products.view());

  T mean_gap = 0, u_hv = 0, v_hu = 0;
  for (hydra::index i = 0; i < P; ++i) {
    T mean = 0;
    for (hydra::index b = 0; b < batch; ++b) mean += per_sample(b, i) / static_cast<T>(batch);
    mean_gap = std::max(mean_gap, std::abs(mean - grad[i]));
    u_hv += directions(0, i) * products(1, i);
    v_hu += directions(1, i) * products(0, i);
  }
  std::printf("%lld parameters, mean loss %.6f\n", static_cast<long long>(P), mean_loss);
  std::printf("max |mean of per-sample gradients - gradient| = %.3g\n", mean_gap);
  std::printf("u'(Hv) = %.12f, v'(Hu) = %.12f\n", u_hv, v_hu);
  return mean_gap < 1e-12 && std::abs(u_hv - v_hu) < 1e-10 * (1 + std::abs(u_hv)) ? 0 : 1;
}
