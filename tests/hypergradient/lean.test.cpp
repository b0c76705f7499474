// Lean mode: replaying the identical trajectory while carrying only u_j·∇_i gives the same
// contributions as full mode (C = −(1/N)·∇ℓ_test·∇_i from the |w|-vectors), to rounding.

#include <doctest/doctest.h>

#include <vector>

#include "hydra/attribution/contributions.hpp"
#include "hydra/backend/cpu.hpp"
#include "hydra/hypergradient/tracker.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "support/classification_data.hpp"
#include "support/finite_difference.hpp"

namespace hydra::test {
namespace {

using model_t = Mlp<double>;
using loss_t = SoftmaxCrossEntropy<double>;
using tracker_t = hypergradient_tracker<model_t, loss_t, HessianFree>;

struct run_result {
  std::vector<double> w;
  std::vector<double> values;  // contributions, n × M row-major
};

/// One training run from the same start: the plateau schedule decides its rates from the losses
/// it sees, so an identical replay must reproduce every decision.
template <class Attach>
std::vector<double> train(model_t& model, loss_t& loss, const dataset<double>& train_set, const dataset<double>& valid,
                          Attach&& attach) {
  const index P = model.parameter_count();
  SGD<double> optimizer(P, {.momentum = 0.9, .weight_decay = 5e-3});
  plateau_schedule schedule(0.2, 0.5, 1, 0.3);
  std::vector<double> w(static_cast<std::size_t>(P));
  model.initialize(vector_view<double>(w.data(), P), 11);
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  attach(fit, optimizer, vector_view<double>(w.data(), P), batch_order::shuffled(train_set.size(), 6, 5, 4, false), valid);
  CHECK(schedule.reductions() >= 1);
  return w;
}

} // namespace

TEST_CASE("lean contributions equal full-mode contributions to 1e-10, lazy and eager") {
  const auto train_set = classification_data(40, 5, 3, 1, 5, 3);
  const auto valid = classification_data(12, 5, 3, 2, 5, 3);
  const auto test_set = classification_data(7, 5, 3, 3, 5, 3);
  model_t model(5, {8}, 3, activation::tanh);
  loss_t loss;
  const index N = train_set.size();
  std::vector<index> tracked;
  for (index i = 0; i < N; i += 3) tracked.push_back(i);

  // Full mode: hypergradients, then C from the test gradients at w_T.
  matrix<double, cpu> full_hypergradients;
  const auto w_full = train(model, loss, train_set, valid, [&](auto& fit, auto& optimizer, vector_view<double> w,
                                                               const batch_order& order, const dataset<double>& v) {
    tracker_t tracker(model, loss, optimizer, tracked, N);
    fit.fit(w, train_set, order, &v, tracker);
    const auto h = tracker.hypergradients();
    full_hypergradients = matrix<double, cpu>(h.rows, h.cols);
    cpu::copy(h, full_hypergradients.view());
  });
  const auto U = per_sample_gradients(model, loss, vector_view<const double>(w_full.data(), model.parameter_count()), test_set);
  const auto C_full = contributions<cpu>(std::as_const(full_hypergradients).view(), U.view(), N);

  for (const auto mode : {update_mode::lazy, update_mode::eager}) {
    CAPTURE(name_of(mode));
    matrix<double, cpu> projections;
    const auto w_lean = train(model, loss, train_set, valid, [&](auto& fit, auto& optimizer, vector_view<double> w,
                                                                 const batch_order& order, const dataset<double>& v) {
      tracker_t tracker(model, loss, optimizer, tracked, N, lean_projection<double>{U.view()}, {.update = mode});
      CHECK(tracker.state_width() == test_set.size());
      fit.fit(w, train_set, order, &v, tracker);
      const auto c = tracker.projections();
      projections = matrix<double, cpu>(c.rows, c.cols);
      cpu::copy(c, projections.view());
    });
    CHECK(w_lean == w_full);  // the replay is the identical trajectory, bit for bit
    const auto C_lean = contributions_from_projections<cpu>(std::as_const(projections).view(), N);
    REQUIRE(C_lean.rows() == C_full.rows());
    REQUIRE(C_lean.cols() == C_full.cols());
    const auto a = C_lean.to_host();
    const auto b = C_full.to_host();
    // The projections are the same linear recurrence summed in another order (u·g per step
    // instead of u·∇ at the end): rounding only, ~1e-15 observed.
    CHECK(relative_error(a, b) <= 1e-10);
    for (std::size_t k = 0; k < a.size(); ++k) CHECK(std::abs(a[k] - b[k]) <= 1e-10 * std::abs(b[k]) + 1e-14);
  }
}

} // namespace hydra::test
