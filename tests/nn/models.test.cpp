// Derivative checks for every ready model with every activation and loss (double), and the
// same computations in float against double.

#include <doctest/doctest.h>

#include <cmath>

#include "hydra/backend/cpu.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "support/model_checks.hpp"

namespace hydra::test {
namespace {
template <class M>
std::vector<double> random_parameters(const M& model, unsigned seed, double scale = 0.5) {
  return normal_vector(static_cast<std::size_t>(model.parameter_count()), seed, scale);
}
} // namespace

TEST_CASE("SoftmaxRegression with cross-entropy") {
  SoftmaxRegression<double> model(4, 3);
  SoftmaxCrossEntropy<double> loss;
  const auto b = random_batch(6, 4, 3, 1);
  check_model_derivatives(model, loss, b, random_parameters(model, 2));
}

TEST_CASE("LinearRegression with mean squared error on real targets") {
  LinearRegression<double> model(3, 2);
  MeanSquaredError<double> loss;
  const auto b = random_batch(5, 3, 2, 3, /*real_targets=*/true);
  check_model_derivatives(model, loss, b, random_parameters(model, 4));
}

TEST_CASE("Mlp with each activation and cross-entropy") {
  for (auto kind : {activation::tanh, activation::sigmoid, activation::relu, activation::relu6}) {
    CAPTURE(name_of(kind));
    Mlp<double> model(3, {5, 4}, 3, kind);
    SoftmaxCrossEntropy<double> loss;
    const auto b = random_batch(4, 3, 3, 5);
    check_model_derivatives(model, loss, b, random_parameters(model, 6));
  }
}

TEST_CASE("Mlp with ReLU6 where its pre-activations pass 6: derivatives against finite differences") {
  // Features scaled by 12 put some first-layer pre-activations above 6 (ReLU6's flat top) and some
  // inside (0, 6): the ReLU network's loss differs, and every derivative still matches central
  // differences (no pre-activation lies within the difference step of a kink).
  Mlp<double> relu6(3, {5, 4}, 3, activation::relu6), relu(3, {5, 4}, 3, activation::relu);
  SoftmaxCrossEntropy<double> loss;
  auto b = random_batch(4, 3, 3, 5);
  for (auto& v : b.x) v *= 12;
  const auto w = random_parameters(relu6, 6);
  CHECK(std::fabs(loss_at(relu6, loss, b, w) - loss_at(relu, loss, b, w)) > 1e-3);
  check_model_derivatives(relu6, loss, b, w);
}

TEST_CASE("Mlp with tanh and mean squared error on one-hot labels") {
  Mlp<double> model(3, {4}, 3, activation::tanh);
  MeanSquaredError<double> loss;
  const auto b = random_batch(5, 3, 3, 7);
  check_model_derivatives(model, loss, b, random_parameters(model, 8));
}

TEST_CASE("softmax regression HVP equals the closed-form Hessian") {
  // H = (1/B) Σ_b (diag(p_b) − p_b p_bᵀ) ⊗ [x_b; 1][x_b; 1]ᵀ, arranged in the layout W (C×D) then b (C).
  const index D = 3, C = 3, Bn = 4;
  SoftmaxRegression<double> model(D, C);
  SoftmaxCrossEntropy<double> loss;
  const auto b = random_batch(Bn, D, C, 11);
  const auto w = random_parameters(model, 12);
  const index P = model.parameter_count();
  auto position = [&](index c, index d) { return d < D ? c * D + d : C * D + c; };  // d == D: bias
  std::vector<double> H(static_cast<std::size_t>(P * P), 0.0);
  for (index s = 0; s < Bn; ++s) {
    std::vector<double> z(C), p(C);
    double zmax = -1e300;
    for (index c = 0; c < C; ++c) {
      z[c] = w[C * D + c];
      for (index d = 0; d < D; ++d) z[c] += w[c * D + d] * b.x[s * D + d];
      zmax = std::max(zmax, z[c]);
    }
    double total = 0;
    for (index c = 0; c < C; ++c) total += p[c] = std::exp(z[c] - zmax);
    for (auto& v : p) v /= total;
    auto xa = [&](index d) { return d < D ? b.x[s * D + d] : 1.0; };
    for (index c = 0; c < C; ++c)
      for (index c2 = 0; c2 < C; ++c2)
        for (index d = 0; d <= D; ++d)
          for (index d2 = 0; d2 <= D; ++d2)
            H[position(c, d) * P + position(c2, d2)] += ((c == c2 ? p[c] : 0.0) - p[c] * p[c2]) * xa(d) * xa(d2) / Bn;
  }
  std::vector<double> I(static_cast<std::size_t>(P * P), 0.0);
  for (index i = 0; i < P; ++i) I[i * P + i] = 1;
  CHECK(relative_error(hvps_at(model, loss, b, w, I, P), H) <= 1e-13);
}

TEST_CASE_TEMPLATE("float computations agree with double", T, float) {
  Mlp<T> mf(4, {6}, 3, activation::tanh);
  Mlp<double> md(4, {6}, 3, activation::tanh);
  SoftmaxCrossEntropy<T> lf;
  SoftmaxCrossEntropy<double> ld;
  const auto b = random_batch(8, 4, 3, 21);
  const auto w = random_parameters(md, 22);
  const index P = md.parameter_count();
  const auto xf = cast<T>(b.x);
  const auto wf = cast<T>(w);
  const batch_targets<T> yf{b.labels.data(), {}};
  matrix_view<const T> X(xf.data(), b.rows, b.cols);

  std::vector<T> gf(static_cast<std::size_t>(P));
  const T lossf = mf.gradient(vector_view<const T>(wf.data(), P), X, yf, lf, vector_view<T>(gf.data(), P));
  const auto gd = gradient_at(md, ld, b, w);
  // float carries ~6e-8 relative rounding per operation; sums over a few dozen terms stay < 1e-5.
  CHECK(lossf == doctest::Approx(loss_at(md, ld, b, w)).epsilon(1e-6));
  CHECK(relative_error(cast<double>(gf), gd) <= 1e-5);

  const index k = 3;
  const auto V = normal_vector(static_cast<std::size_t>(k * P), 23);
  const auto Vf = cast<T>(V);
  std::vector<T> HVf(static_cast<std::size_t>(k * P));
  mf.hessian_vector_products(vector_view<const T>(wf.data(), P), X, yf, lf, matrix_view<const T>(Vf.data(), k, P),
                             matrix_view<T>(HVf.data(), k, P));
  CHECK(relative_error(cast<double>(HVf), hvps_at(md, ld, b, w, V, k)) <= 1e-5);
}

TEST_CASE("models check their inputs") {
  Mlp<double> model(3, {4}, 2);
  SoftmaxCrossEntropy<double> loss;
  const auto b = random_batch(2, 3, 2, 1);
  std::vector<double> w(static_cast<std::size_t>(model.parameter_count() - 1));
  CHECK_THROWS_AS(loss_at(model, loss, b, w), shape_error);
  CHECK_THROWS_WITH(loss_at(model, loss, b, w), doctest::Contains("the parameter vector has 25 entries"));
  w.resize(static_cast<std::size_t>(model.parameter_count()));
  const auto wide = random_batch(2, 4, 2, 1);
  CHECK_THROWS_AS(loss_at(model, loss, wide, w), shape_error);
  CHECK(model.parameter_count() == 3 * 4 + 4 + 4 * 2 + 2);
}

} // namespace hydra::test
