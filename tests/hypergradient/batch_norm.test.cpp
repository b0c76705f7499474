// Hypergradients through batch normalisation. On batch statistics a sample's loss depends on its
// whole batch, and training sample i's weight enters every step it is in: Exact hypergradients
// must still equal central differences of real retraining with i's loss weight perturbed. The
// reference here retrains through model.gradient with a loss that weights i's row, one batched
// backward pass per step: it never uses the per-sample gradients (one backward pass per sample)
// that the tracker relies on. On running statistics the same recurrence is the eval-mode
// approximation: it runs, and differs from the exact answer.

#include <doctest/doctest.h>

#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/attribution/ground_truth.hpp"
#include "hydra/hypergradient/tracker.hpp"
#include "hydra/nn/activation.hpp"
#include "hydra/nn/batch_norm.hpp"
#include "hydra/nn/batch_norm_state.hpp"
#include "hydra/nn/conv2d.hpp"
#include "hydra/nn/dense.hpp"
#include "hydra/nn/dynamic_network.hpp"
#include "hydra/nn/flatten.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "hypergradient/retraining.hpp"  // sgd_run, richardson_derivative
#include "support/classification_data.hpp"
#include "support/finite_difference.hpp"
#include "support/messages.hpp"

namespace hydra::test {
namespace {
/// 1 × 4 × 4 inputs: conv (3 channels, 2 × 2) → BN → tanh → conv (2 channels, 2 × 2) → BN → flatten → dense.
Network<double> small_batch_norm_net() {
  return Network<double>(parts<double>(Conv2d<double>(1, 4, 4, 3, 2), BatchNorm2d<double>(3, 3, 3), Tanh<double>(),
                                       Conv2d<double>(3, 3, 3, 2, 2, 1, 0, {.bias = false}),
                                       BatchNorm2d<double>(2, 2, 2), Flatten<double>(), Dense<double>(8, 3)));
}

/// Softmax cross-entropy with row `row` of the batch weighted by `weight` (other rows by 1).
struct row_weighted_loss {
  using scalar_type = double;
  using backend_type = cpu;
  SoftmaxCrossEntropy<double> base;
  index row = -1;
  double weight = 1;
  void values(matrix_view<const double> z, batch_targets<double> y, vector_view<double> out) {
    base.values(z, y, out);
    if (row >= 0) out.data[row] *= weight;
  }
  void gradient(matrix_view<const double> z, batch_targets<double> y, double scale, matrix_view<double> d) {
    base.gradient(z, y, scale, d);
    if (row >= 0)
      for (index c = 0; c < d.cols; ++c) d.row(row)[c] *= weight;
  }
  void hessian_product(matrix_view<const double> z, batch_targets<double> y, double scale, matrix_view<const double> r,
                       matrix_view<double> out) {
    base.hessian_product(z, y, scale, r, out);
  }
};

/// Final parameters of PyTorch's SGD from w0 along `order`, sample i's loss weighted 1 + N·eps:
/// each step's gradient is ∇ (1/|B|) Σ_b weight_b·ℓ_b, by one model.gradient call.
std::vector<double> retrain_weighted(Network<double>& model, const dataset<double>& data, const batch_order& order,
                                     std::vector<double> w, const sgd_run& run, index i, double eps) {
  const index P = model.parameter_count();
  row_weighted_loss loss;
  std::vector<double> v(w.size(), 0.0), g(w.size()), x;
  std::vector<label_type> y;
  for (index t = 0; t < order.steps(); ++t) {
    const auto batch = order.batch(t);
    const auto n = static_cast<index>(batch.size());
    x.resize(static_cast<std::size_t>(n * data.sample_size()));
    y.resize(static_cast<std::size_t>(n));
    gather(data, batch, x.data(), y.data());
    loss.row = -1;
    for (index b = 0; b < n; ++b)
      if (batch[static_cast<std::size_t>(b)] == i) loss.row = b;
    loss.weight = 1.0 + static_cast<double>(data.size()) * eps;
    (void)model.gradient(vector_view<const double>(w.data(), P), matrix_view<const double>(x.data(), n, data.sample_size()),
                         batch_targets<double>{y.data(), {}}, loss, vector_view<double>(g.data(), P));
    for (std::size_t k = 0; k < w.size(); ++k) {
      v[k] = run.momentum * v[k] + g[k] + run.weight_decay * w[k];
      w[k] -= run.rates[static_cast<std::size_t>(t)] * v[k];
    }
  }
  return w;
}

template <class Policy>
std::vector<double> tracked(Network<double>& model, const dataset<double>& data, const batch_order& order,
                            std::vector<double> w, const sgd_run& run, const std::vector<index>& samples) {
  SoftmaxCrossEntropy<double> loss;
  SGD<double> optimizer(model.parameter_count(), {.momentum = run.momentum, .weight_decay = run.weight_decay});
  list_schedule schedule(run.rates);
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  hypergradient_tracker<Network<double>, SoftmaxCrossEntropy<double>, Policy> tracker(model, loss, optimizer, samples,
                                                                                       data.size());
  fit.fit(vector_view<double>(w.data(), model.parameter_count()), data, order, nullptr, tracker);
  const auto h = tracker.hypergradients();
  return {h.data, h.data + h.rows * h.cols};
}
} // namespace

TEST_CASE("Exact hypergradients through batch statistics equal finite differences of retraining") {
  const auto data = classification_data(12, 16, 3, 7);
  const auto order = batch_order::shuffled(12, 4, 2, 3);  // 6 steps, batches of 4
  const sgd_run run{0.9, 0.01, std::vector<double>(static_cast<std::size_t>(order.steps()), 0.1)};
  auto model = small_batch_norm_net();
  const index P = model.parameter_count();
  std::vector<double> w0(static_cast<std::size_t>(P));
  model.initialize(vector_view<double>(w0.data(), P), 5);
  const std::vector<index> samples{0, 5, 11};
  const auto exact = tracked<Exact>(model, data, order, w0, run, samples);
  for (std::size_t r = 0; r < samples.size(); ++r) {
    CAPTURE(samples[r]);
    const auto reference = richardson_derivative(
        [&](double eps) { return retrain_weighted(model, data, order, w0, run, samples[r], eps); }, 1e-3);
    const std::vector<double> row(exact.begin() + static_cast<std::ptrdiff_t>(r) * P,
                                  exact.begin() + static_cast<std::ptrdiff_t>(r + 1) * P);
    // Richardson-extrapolated differences (error O(h⁴) at h = 1e-3) against the recurrence: the
    // tolerance of the MLP cases in tracker.test.cpp.
    CHECK(relative_error(row, reference) <= 1e-6);
  }

  // The eval-mode recurrence is another quantity: close in direction, not equal.
  set_batch_norm_statistics(model, batch_norm_statistics::running);
  const auto approximate = tracked<Exact>(model, data, order, w0, run, samples);
  const double difference = relative_error(approximate, exact);
  MESSAGE("running-statistics Exact vs batch-statistics Exact, relative difference: " << difference);
  CHECK(difference > 1e-3);
}

TEST_CASE("the leave-one-out replay refuses a model with batch norms rather than replay it wrongly") {
  const auto data = classification_data(8, 16, 3, 2);
  const auto order = batch_order::shuffled(8, 4, 1, 3);
  auto model = small_batch_norm_net();
  SoftmaxCrossEntropy<double> loss;
  std::vector<double> w0(static_cast<std::size_t>(model.parameter_count()), 0.1);
  const std::vector<double> rates(static_cast<std::size_t>(order.steps()), 0.1);
  const sgd_replay run{rates, {}};
  CHECK(contains(message_of<invalid_argument>([&] {
                   (void)replay_sgd(model, loss, data, order,
                                    vector_view<const double>(w0.data(), model.parameter_count()), run);
                 }),
                 "replay_sgd: the model has batch norms or dropout"));
}

} // namespace hydra::test
