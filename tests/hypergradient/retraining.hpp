#pragma once
// The independent reference for hypergradients: plain SGD retraining, on the host in double,
// with training sample i's weight in the training loss changed from 1/N to 1/N + ε. The batch
// gradient is then (1/|B|) Σ_{b ∈ B} (1 + N ε [b = i]) ∇ℓ_b, the momentum/weight-decay update is
// PyTorch's, and dw_T/dε_i is a central difference of the final parameters in ε.

#include <span>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/data/batch_order.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/nn/concepts.hpp"

namespace hydra::test {

struct sgd_run {
  double momentum = 0;
  double weight_decay = 0;
  std::vector<double> rates;  // η_t for every step
};

/// Final parameters of SGD from w0 along `order` with sample i weighted 1/N + eps.
template <class M, class L>
std::vector<double> retrain(M& model, L& loss, const dataset<double>& data, const batch_order& order,
                            std::vector<double> w, const sgd_run& run, index i, double eps) {
  const index P = model.parameter_count();
  const index N = data.size();
  std::vector<double> v(w.size(), 0.0), g(w.size()), x, G;
  std::vector<label_type> y;
  for (index t = 0; t < order.steps(); ++t) {
    const auto batch = order.batch(t);
    const auto n = static_cast<index>(batch.size());
    x.resize(static_cast<std::size_t>(n * data.sample_size()));
    y.resize(static_cast<std::size_t>(n));
    G.resize(static_cast<std::size_t>(n * P));
    gather(data, batch, x.data(), y.data());
    model.per_sample_gradients(vector_view<const double>(w.data(), P),
                               matrix_view<const double>(x.data(), n, data.sample_size()),
                               batch_targets<double>{y.data(), {}}, loss, matrix_view<double>(G.data(), n, P));
    std::fill(g.begin(), g.end(), 0.0);
    for (index b = 0; b < n; ++b) {
      const double weight = (1.0 + (batch[static_cast<std::size_t>(b)] == i ? static_cast<double>(N) * eps : 0.0)) / static_cast<double>(n);
      for (index k = 0; k < P; ++k) g[static_cast<std::size_t>(k)] += weight * G[static_cast<std::size_t>(b * P + k)];
    }
    for (std::size_t k = 0; k < w.size(); ++k) {
      v[k] = run.momentum * v[k] + g[k] + run.weight_decay * w[k];
      w[k] -= run.rates[static_cast<std::size_t>(t)] * v[k];
    }
  }
  return w;
}

/// d/dε of the final parameters retrained(ε) by Richardson-extrapolated central differences:
/// (4 D(h/2) − D(h)) / 3, error O(h⁴).
template <class Retrained>
std::vector<double> richardson_derivative(Retrained&& retrained, double h) {
  auto central = [&](double step) {
    const auto up = retrained(step);
    const auto down = retrained(-step);
    std::vector<double> d(up.size());
    for (std::size_t k = 0; k < d.size(); ++k) d[k] = (up[k] - down[k]) / (2 * step);
    return d;
  };
  const auto coarse = central(h), fine = central(h / 2);
  std::vector<double> d(coarse.size());
  for (std::size_t k = 0; k < d.size(); ++k) d[k] = (4 * fine[k] - coarse[k]) / 3;
  return d;
}

/// dw_T/dε_i of retrain() above.
template <class M, class L>
std::vector<double> retraining_derivative(M& model, L& loss, const dataset<double>& data, const batch_order& order,
                                          const std::vector<double>& w0, const sgd_run& run, index i, double h) {
  return richardson_derivative([&](double eps) { return retrain(model, loss, data, order, w0, run, i, eps); }, h);
}

} // namespace hydra::test
