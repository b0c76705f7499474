// hypergradient_tracker against independent computations: Exact against finite differences of
// real retraining with a perturbed sample weight; HessianFree against a plain implementation of
// its recurrence; the two equal when the loss is linear in w.

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/hypergradient/tracker.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "hypergradient/retraining.hpp"
#include "support/classification_data.hpp"
#include "support/finite_difference.hpp"

namespace hydra::test {
namespace {

std::vector<double> decaying_rates(index steps, double eta0, double gamma) {
  std::vector<double> r(static_cast<std::size_t>(steps));
  for (index t = 0; t < steps; ++t) r[static_cast<std::size_t>(t)] = eta0 * std::pow(gamma, static_cast<double>(t));
  return r;
}

/// Trains with the tracker attached and returns its hypergradients (host copy) and w_T.
template <class Policy, class M, class L>
std::vector<double> tracked_hypergradients(M& model, L& loss, const dataset<double>& data, const batch_order& order,
                                           std::vector<double> w, const sgd_run& run, std::vector<index> tracked,
                                           tracker_options options = {}) {
  SGD<double> optimizer(model.parameter_count(), {.momentum = run.momentum, .weight_decay = run.weight_decay});
  list_schedule schedule(run.rates);
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  hypergradient_tracker<M, L, Policy> tracker(model, loss, optimizer, std::move(tracked), data.size(), options);
  fit.fit(vector_view<double>(w.data(), model.parameter_count()), data, order, nullptr, tracker);
  const auto h = tracker.hypergradients();
  return std::vector<double>(h.data, h.data + h.rows * h.cols);
}

template <class M, class L>
void check_exact_against_retraining(M& model, L& loss, const dataset<double>& data, const batch_order& order,
                                    const sgd_run& run, std::vector<index> tracked) {
  const index P = model.parameter_count();
  std::vector<double> w0(static_cast<std::size_t>(P));
  model.initialize(vector_view<double>(w0.data(), P), 3);
  // A tight memory bound forces several Hessian-vector-product chunks per step.
  const auto H = tracked_hypergradients<Exact>(model, loss, data, order, w0, run, tracked, {.hvp_memory_bytes = 4096});
  for (std::size_t r = 0; r < tracked.size(); ++r) {
    CAPTURE(tracked[r]);
    const auto reference = retraining_derivative(model, loss, data, order, w0, run, tracked[r], 1e-3);
    const std::vector<double> row(H.begin() + static_cast<std::ptrdiff_t>(r) * P, H.begin() + static_cast<std::ptrdiff_t>(r + 1) * P);
    CHECK(relative_error(row, reference) <= 1e-6);
  }
}

} // namespace

TEST_CASE("Exact hypergradients equal finite differences of retraining: tanh MLP, momentum, weight decay, decaying rate") {
  const auto data = classification_data(12, 3, 3, 1);
  const auto order = batch_order::shuffled(12, 4, 3, 5);  // 9 steps
  Mlp<double> model(3, {5}, 3, activation::tanh);
  SoftmaxCrossEntropy<double> loss;
  check_exact_against_retraining(model, loss, data, order, {0.9, 0.01, decaying_rates(order.steps(), 0.3, 0.9)},
                                 {0, 4, 7, 11});
}

TEST_CASE("Exact hypergradients equal finite differences of retraining: softmax regression, plain SGD") {
  const auto data = classification_data(10, 4, 3, 2);
  const auto order = batch_order::shuffled(10, 5, 3, 6);
  SoftmaxRegression<double> model(4, 3);
  SoftmaxCrossEntropy<double> loss;
  check_exact_against_retraining(model, loss, data, order, {0.0, 0.0, decaying_rates(order.steps(), 0.5, 1.0)},
                                 {1, 2, 9});
}

TEST_CASE("Exact hypergradients equal finite differences of retraining: softmax regression, momentum and weight decay") {
  const auto data = classification_data(10, 4, 3, 4);
  const auto order = batch_order::shuffled(10, 5, 4, 8);
  SoftmaxRegression<double> model(4, 3);
  SoftmaxCrossEntropy<double> loss;
  check_exact_against_retraining(model, loss, data, order, {0.9, 0.05, decaying_rates(order.steps(), 0.4, 0.85)},
                                 {0, 3, 5, 8});
}

TEST_CASE("Exact hypergradients equal finite differences of retraining: sigmoid MLP without momentum, with weight decay") {
  const auto data = classification_data(8, 2, 2, 9);
  const auto order = batch_order::shuffled(8, 4, 4, 2);
  Mlp<double> model(2, {4, 3}, 2, activation::sigmoid);
  SoftmaxCrossEntropy<double> loss;
  check_exact_against_retraining(model, loss, data, order, {0.0, 0.02, decaying_rates(order.steps(), 0.8, 0.95)},
                                 {0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("the Hessian term matters: HessianFree departs from Exact on a curved loss, and chunking changes nothing") {
  const auto data = classification_data(12, 3, 3, 1);
  const auto order = batch_order::shuffled(12, 4, 3, 5);
  Mlp<double> model(3, {5}, 3, activation::tanh);
  SoftmaxCrossEntropy<double> loss;
  const sgd_run run{0.9, 0.01, decaying_rates(order.steps(), 0.3, 0.9)};
  std::vector<double> w0(static_cast<std::size_t>(model.parameter_count()));
  model.initialize(vector_view<double>(w0.data(), model.parameter_count()), 3);
  const std::vector<index> tracked{0, 4, 7, 11};
  const auto exact_chunked = tracked_hypergradients<Exact>(model, loss, data, order, w0, run, tracked, {.hvp_memory_bytes = 1});
  const auto exact_whole = tracked_hypergradients<Exact>(model, loss, data, order, w0, run, tracked);
  const auto free = tracked_hypergradients<HessianFree>(model, loss, data, order, w0, run, tracked);
  CHECK(relative_error(exact_chunked, exact_whole) <= 1e-14);
  CHECK(relative_error(free, exact_whole) > 1e-3);
}

namespace {
/// ℓ(z, y) = Σ_c a_c z_c: linear in the outputs, so with a linear model the loss is linear in w
/// and every Hessian vanishes.
struct linear_loss {
  using scalar_type = double;
  using backend_type = cpu;
  static constexpr double a[2] = {0.7, -1.3};
  void values(matrix_view<const double> z, batch_targets<double>, vector_view<double> out) {
    for (index b = 0; b < z.rows; ++b) out.data[b] = a[0] * z.row(b)[0] + a[1] * z.row(b)[1];
  }
  void gradient(matrix_view<const double> z, batch_targets<double>, double scale, matrix_view<double> d) {
    for (index b = 0; b < z.rows; ++b) {
      d.row(b)[0] = scale * a[0];
      d.row(b)[1] = scale * a[1];
    }
  }
  void hessian_product(matrix_view<const double>, batch_targets<double>, double, matrix_view<const double> r,
                       matrix_view<double> out) {
    cpu::fill(0.0, out.row_block(0, r.rows));
  }
};
} // namespace

TEST_CASE("HessianFree equals Exact when the loss is linear in w") {
  const auto data = classification_data(9, 3, 2, 12);
  const auto order = batch_order::shuffled(9, 3, 2, 1);
  LinearRegression<double> model(3, 2);
  linear_loss loss;
  const sgd_run run{0.9, 0.1, decaying_rates(order.steps(), 0.2, 0.9)};
  std::vector<double> w0(static_cast<std::size_t>(model.parameter_count()), 0.1);
  const std::vector<index> tracked{0, 2, 5, 8};
  const auto exact = tracked_hypergradients<Exact>(model, loss, data, order, w0, run, tracked);
  // Eager HessianFree performs the very same floating-point operations as Exact with a zero
  // Hessian; the lazy update regroups them into 2 × 2 transfers, so it agrees to rounding.
  const auto eager = tracked_hypergradients<HessianFree>(model, loss, data, order, w0, run, tracked,
                                                         {.update = update_mode::eager});
  CHECK(relative_error(eager, exact) == 0.0);
  const auto lazy = tracked_hypergradients<HessianFree>(model, loss, data, order, w0, run, tracked);
  CHECK(relative_error(lazy, exact) <= 1e-14);
  // And both are right: the linear case against retraining too.
  const auto reference = retraining_derivative(model, loss, data, order, w0, run, 5, 1e-3);
  const index P = model.parameter_count();
  CHECK(relative_error(std::vector<double>(exact.begin() + 2 * P, exact.begin() + 3 * P), reference) <= 1e-9);
}

TEST_CASE("HessianFree equals a plain implementation of its recurrence along the recorded trajectory") {
  const auto data = classification_data(10, 3, 3, 21);
  const auto order = batch_order::shuffled(10, 4, 3, 3);  // batches of 4, last two samples dropped per epoch
  Mlp<double> model(3, {4}, 3, activation::relu);
  SoftmaxCrossEntropy<double> loss;
  const index P = model.parameter_count(), N = data.size();
  const double p = 0.9, lambda = 0.02;
  std::vector<double> w(static_cast<std::size_t>(P));
  model.initialize(vector_view<double>(w.data(), P), 9);

  // Record w_{t−1}, η_t and B_t of every step while the tracker runs.
  struct recorder {
    std::vector<std::vector<double>> parameters;
    std::vector<double> rates;
    void before_update(const step_context<double, cpu>& c) {
      parameters.emplace_back(c.parameters.data, c.parameters.data + c.parameters.size);
      rates.push_back(c.learning_rate);
    }
  } trajectory;
  SGD<double> optimizer(P, {.momentum = p, .weight_decay = lambda});
  step_schedule schedule(0.2, {1, 2}, 0.5);
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  const std::vector<index> tracked{9, 0, 5};
  hypergradient_tracker<Mlp<double>, SoftmaxCrossEntropy<double>, HessianFree> tracker(model, loss, optimizer, tracked, N);
  fit.fit(vector_view<double>(w.data(), P), data, order, nullptr, trajectory, tracker);

  // The recurrence written out: dv ← p·dv + λ·∇ + [i ∈ B]·(N/|B|)·g_i;  ∇ ← ∇ − η·dv.
  for (std::size_t r = 0; r < tracked.size(); ++r) {
    std::vector<double> grad(static_cast<std::size_t>(P), 0.0), dv(grad.size(), 0.0);
    for (index t = 0; t < order.steps(); ++t) {
      const auto batch = order.batch(t);
      std::vector<double> g(grad.size(), 0.0);
      for (index i : batch) {
        if (i != tracked[r]) continue;
        std::vector<double> x(static_cast<std::size_t>(data.sample_size()));
        label_type y = data.label(i);
        std::copy(data.sample(i).begin(), data.sample(i).end(), x.begin());
        std::vector<double> gi(grad.size());
        model.gradient(vector_view<const double>(trajectory.parameters[static_cast<std::size_t>(t)].data(), P),
                       matrix_view<const double>(x.data(), 1, data.sample_size()), {&y, {}}, loss,
                       vector_view<double>(gi.data(), P));
        for (std::size_t k = 0; k < g.size(); ++k) g[k] += static_cast<double>(N) / static_cast<double>(batch.size()) * gi[k];
      }
      for (std::size_t k = 0; k < grad.size(); ++k) {
        dv[k] = p * dv[k] + lambda * grad[k] + g[k];
        grad[k] -= trajectory.rates[static_cast<std::size_t>(t)] * dv[k];
      }
    }
    const auto h = tracker.hypergradients().row(static_cast<index>(r));
    CHECK(relative_error(std::vector<double>(h, h + P), grad) <= 1e-14);
  }
  CHECK(trajectory.rates.front() == 0.2);
  CHECK(trajectory.rates.back() == 0.05);
}

TEST_CASE("hypergradient_tracker rejects bad tracking requests and reports NaN with step and sample") {
  Mlp<double> model(3, {4}, 2);
  SoftmaxCrossEntropy<double> loss;
  using tracker_t = hypergradient_tracker<Mlp<double>, SoftmaxCrossEntropy<double>, HessianFree>;
  CHECK_THROWS_WITH_AS(tracker_t(model, loss, {0, 10}, 10, 0.9, 0.0), doctest::Contains("tracked[1] = 10 is outside"),
                       invalid_argument);
  CHECK_THROWS_WITH_AS(tracker_t(model, loss, {3, 1, 3}, 10, 0.9, 0.0),
                       doctest::Contains("training sample 3 is tracked twice"), invalid_argument);
  CHECK_THROWS_WITH_AS(tracker_t(model, loss, {0, 1, 2}, 10, 0.9, 0.0, {.state_memory_limit = 1000}),
                       doctest::Contains("needs 1248 bytes"), allocation_error);  // 2 states · 3 samples · 26 parameters · 8 bytes

  // A learning rate that blows the states up: the tracker names the step and the sample.
  const auto data = classification_data(6, 3, 2, 4);
  std::vector<double> w(static_cast<std::size_t>(model.parameter_count()), 0.0);
  SGD<double> optimizer(model.parameter_count(), {.momentum = 0.0, .weight_decay = 1e300});
  constant_schedule schedule(1e10);
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  tracker_t tracker(model, loss, optimizer, {4}, data.size());
  const auto order = batch_order::sequential(6, 2, 3);
  CHECK_THROWS_WITH_AS(fit.fit(vector_view<double>(w.data(), model.parameter_count()), data, order, nullptr, tracker),
                       doctest::Contains("training sample 4 became NaN or Inf at step"), numerical_error);
}

} // namespace hydra::test
