// Lazy Hessian-free updating against the eager update of Algorithm 1 (both trackers attached to
// one trainer, so they see the identical trajectory), the transfer products against a plain
// long-double loop over 120,000 steps, float32 states against a double recurrence written out in
// the test, and the file-backed store against memory.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <vector>

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

template <class T>
std::vector<double> host_rows(matrix_view<const T> m) {
  std::vector<double> out(static_cast<std::size_t>(m.rows * m.cols));
  for (index r = 0; r < m.rows; ++r)
    for (index c = 0; c < m.cols; ++c) out[static_cast<std::size_t>(r * m.cols + c)] = static_cast<double>(m.row(r)[c]);
  return out;
}

/// The largest per-row relative difference ‖a_r − b_r‖ / ‖b_r‖ (rows of zeros in both count 0).
double worst_row_error(const std::vector<double>& a, const std::vector<double>& b, index cols) {
  double worst = 0;
  for (std::size_t first = 0; first < b.size(); first += static_cast<std::size_t>(cols)) {
    const auto end = first + static_cast<std::size_t>(cols);
    worst = std::max(worst, relative_error({a.begin() + static_cast<std::ptrdiff_t>(first), a.begin() + static_cast<std::ptrdiff_t>(end)},
                                           {b.begin() + static_cast<std::ptrdiff_t>(first), b.begin() + static_cast<std::ptrdiff_t>(end)}));
  }
  return worst;
}

using model_t = Mlp<double>;
using loss_t = SoftmaxCrossEntropy<double>;
using free_tracker = hypergradient_tracker<model_t, loss_t, HessianFree>;

/// Reads the lazy and the eager tracker after the chosen steps (bringing the lazy one up to date
/// mid-training) and records the largest difference seen.
struct mid_training_reader {
  free_tracker& lazy;
  free_tracker& eager;
  std::vector<index> at_steps;
  double worst = 0;
  index reads = 0;
  void after_update(const step_context<double, cpu>& ctx) {
    if (std::find(at_steps.begin(), at_steps.end(), ctx.step) == at_steps.end()) return;
    worst = std::max(worst, worst_row_error(host_rows(lazy.hypergradients()), host_rows(eager.hypergradients()),
                                            lazy.state_width()));
    worst = std::max(worst, worst_row_error(host_rows(lazy.momentum_derivatives()),
                                            host_rows(eager.momentum_derivatives()), lazy.state_width()));
    ++reads;
  }
};

struct lazy_vs_eager {
  double final_error = 0;
  double mid_error = 0;
  index reads = 0;
  index max_groups = 0;
};

/// Trains once with a lazy and an eager HessianFree tracker attached; compares them.
template <class S>
lazy_vs_eager compare_lazy_and_eager(S schedule, double momentum, double weight_decay, std::vector<index> tracked) {
  const auto data = classification_data<double>(23, 4, 3, 5, 7, 2);
  const auto order = batch_order::shuffled(23, 5, 6, 17, /*drop_last=*/false);  // 5 steps per epoch, the last of 3
  model_t model(4, {6}, 3, activation::tanh);
  loss_t loss;
  SGD<double> optimizer(model.parameter_count(), {.momentum = momentum, .weight_decay = weight_decay});
  std::vector<double> w(static_cast<std::size_t>(model.parameter_count()));
  model.initialize(vector_view<double>(w.data(), model.parameter_count()), 4);
  free_tracker lazy(model, loss, optimizer, tracked, data.size(), {.update = update_mode::lazy});
  free_tracker eager(model, loss, optimizer, tracked, data.size(), {.update = update_mode::eager});
  REQUIRE(lazy.lazy());
  REQUIRE_FALSE(eager.lazy());
  mid_training_reader reader{lazy, eager, {3, 4, 11, 17}};
  struct group_counter {
    free_tracker& t;
    index most = 0;
    void after_update(const step_context<double, cpu>&) { most = std::max(most, t.pending_groups()); }
  } groups{lazy};
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  fit.fit(vector_view<double>(w.data(), model.parameter_count()), data, order, nullptr, lazy, eager, reader, groups);
  lazy_vs_eager result;
  result.final_error = worst_row_error(host_rows(lazy.hypergradients()), host_rows(eager.hypergradients()),
                                       model.parameter_count());
  result.final_error = std::max(result.final_error, worst_row_error(host_rows(lazy.momentum_derivatives()),
                                                                    host_rows(eager.momentum_derivatives()),
                                                                    model.parameter_count()));
  result.mid_error = reader.worst;
  result.reads = reader.reads;
  result.max_groups = groups.most;
  return result;
}

std::vector<index> every_sample() {
  std::vector<index> all(23);
  for (index i = 0; i < 23; ++i) all[static_cast<std::size_t>(i)] = i;
  return all;
}

} // namespace

TEST_CASE("lazy HessianFree equals eager to 1e-12 across schedules, momentum, weight decay and tracked sets") {
  // 6 epochs of 5 steps (batches of 5, 5, 5, 5, 3). Both trackers perform the same products in
  // double; lazy groups a sample's missed steps into one 2 × 2 product, which reorders a few
  // roundings per step: observed differences are ~1e-15.
  const std::vector<std::vector<index>> tracked_sets{{22, 0, 9, 13}, every_sample()};
  double worst = 0;
  for (const double momentum : {0.0, 0.9}) {
    for (const double weight_decay : {0.0, 0.01}) {
      for (const auto& tracked : tracked_sets) {
        CAPTURE(momentum);
        CAPTURE(weight_decay);
        CAPTURE(tracked.size());
        std::vector<double> rates(30);
        for (std::size_t t = 0; t < rates.size(); ++t) rates[t] = 0.3 / (1.0 + 0.2 * static_cast<double>(t));
        const lazy_vs_eager runs[] = {
            compare_lazy_and_eager(constant_schedule(0.2), momentum, weight_decay, tracked),
            compare_lazy_and_eager(step_schedule(0.3, {2, 4}, 0.3), momentum, weight_decay, tracked),
            // threshold 0.5: a plateau is declared unless the loss halves, so the rate is lowered
            // during training by decisions the schedule makes from the losses it sees.
            compare_lazy_and_eager(plateau_schedule(0.3, 0.5, 1, 0.5), momentum, weight_decay, tracked),
            compare_lazy_and_eager(list_schedule(rates), momentum, weight_decay, tracked),
        };
        for (const auto& r : runs) {
          CHECK(r.final_error <= 1e-12);
          CHECK(r.mid_error <= 1e-12);
          CHECK(r.reads == 4);
          // Every sample is seen once per epoch, so a state waits at most from its slot in one
          // epoch to its slot in the next: fewer than two epochs' worth (10) of groups.
          CHECK(r.max_groups < 10);
          worst = std::max({worst, r.final_error, r.mid_error});
        }
      }
    }
  }
  MESSAGE("largest lazy-eager difference over 32 runs: " << worst);
}

TEST_CASE("the plateau schedule in the lazy comparison does lower the rate during training") {
  const auto data = classification_data<double>(23, 4, 3, 5, 7, 2);
  model_t model(4, {6}, 3, activation::tanh);
  loss_t loss;
  SGD<double> optimizer(model.parameter_count(), {.momentum = 0.9});
  plateau_schedule schedule(0.3, 0.5, 1, 0.5);
  std::vector<double> w(static_cast<std::size_t>(model.parameter_count()));
  model.initialize(vector_view<double>(w.data(), model.parameter_count()), 4);
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  fit.fit(vector_view<double>(w.data(), model.parameter_count()), data, batch_order::shuffled(23, 5, 6, 17, false), nullptr);
  CHECK(schedule.reductions() >= 2);
}

TEST_CASE("transfer products stay finite and accurate over 120,000 steps (against a long-double loop)") {
  // A decaying, piecewise schedule with momentum and weight decay; groups touched at different
  // steps wait for up to 120,000 steps. Reference: the same left-multiplications in long double.
  constexpr index steps = 120'000;
  for (const double p : {0.0, 0.9, 0.99}) {
    CAPTURE(p);
    const double lambda = 5e-4;
    transfer_ledger ledger(3);
    std::vector<std::array<long double, 4>> reference(3);
    auto rate = [](index t) { return 0.1 / (1.0 + static_cast<double>(t / 1000)) + 1e-3 * static_cast<double>(t % 7); };
    const std::array<index, 3> touched_at{0, 777, 60'001};
    for (index t = 0; t < steps; ++t) {
      const double eta = rate(t);
      ledger.advance(step_transfer(p, lambda, eta));
      const long double A[4] = {p, lambda, -static_cast<long double>(eta) * p, 1.0L - static_cast<long double>(eta) * lambda};
      for (std::size_t r = 0; r < 3; ++r) {
        auto& M = reference[r];
        M = {A[0] * M[0] + A[1] * M[2], A[0] * M[1] + A[1] * M[3], A[2] * M[0] + A[3] * M[2], A[2] * M[1] + A[3] * M[3]};
        if (t == touched_at[r]) {
          const index row = static_cast<index>(r);
          ledger.touch(std::span<const index>(&row, 1));
          M = {1.0L, 0.0L, 0.0L, 1.0L};
        }
      }
    }
    for (index r = 0; r < 3; ++r) {
      const auto m = ledger.pending(r);
      const auto& M = reference[static_cast<std::size_t>(r)];
      long double norm = 0, diff = 0;
      for (std::size_t e = 0; e < 4; ++e) {
        CHECK(std::isfinite(m[e]));
        norm += M[e] * M[e];
        diff += (static_cast<long double>(m[e]) - M[e]) * (static_cast<long double>(m[e]) - M[e]);
      }
      CAPTURE(r);
      // The product tends to rank one (eigenvalues ≈ 1 − ηλ/(1 − p) and ≈ p) and decays like
      // exp(−Σηλ/(1 − p)): to ~1e-2 in norm for p = 0.9, ~1e-20 for p = 0.99, without underflow.
      // Each of ≤ 120,000 steps adds ~1e-16 relative rounding: ≤ 1.2e-11 relative to the norm.
      REQUIRE(norm > 0.0L);
      const auto error = static_cast<double>(std::sqrt(diff / norm));
      MESSAGE("p = " << p << ", row " << r << ": relative error " << error);
      CHECK(error <= 1e-11);
    }
  }
}

TEST_CASE("a lazy tracker over 120,000 steps equals the eager one; a sample idle for 119,998 steps included") {
  // Four samples, batches of one: sample 0 is seen at step 0 and at the last step only.
  constexpr index steps = 120'000;
  std::vector<index> table(static_cast<std::size_t>(steps));
  for (index t = 0; t < steps; ++t) table[static_cast<std::size_t>(t)] = 1 + t % 3;
  table.front() = 0;
  table.back() = 0;
  const auto order = batch_order::from_table(table, steps, 1, 4, 3);
  const auto data = classification_data<double>(4, 2, 2, 8, 7, 2);
  SoftmaxRegression<double> model(2, 2);
  loss_t loss;
  SGD<double> optimizer(model.parameter_count(), {.momentum = 0.9, .weight_decay = 1e-3});
  exponential_schedule schedule(0.05, 0.99999);
  std::vector<double> w(static_cast<std::size_t>(model.parameter_count()), 0.0);
  using tracker_t = hypergradient_tracker<SoftmaxRegression<double>, loss_t, HessianFree>;
  tracker_t lazy(model, loss, optimizer, {0, 1, 2, 3}, 4);
  tracker_t eager(model, loss, optimizer, {0, 1, 2, 3}, 4, {.update = update_mode::eager});
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  fit.fit(vector_view<double>(w.data(), model.parameter_count()), data, order, nullptr, lazy, eager);
  const auto a = host_rows(lazy.hypergradients());
  const auto b = host_rows(eager.hypergradients());
  for (double v : a) CHECK(std::isfinite(v));
  // Both round ~1e-16 per step; their paths differ, so the gap grows like the number of steps.
  CHECK(worst_row_error(a, b, model.parameter_count()) <= 1e-10);
}

TEST_CASE("float32 lazy states stay within float32 accuracy of the double recurrence along the same trajectory") {
  const auto data = classification_data<float>(20, 4, 3, 6, 7, 2);
  const auto order = batch_order::shuffled(20, 4, 8, 2);  // 40 steps
  Mlp<float> model(4, {5}, 3, activation::tanh);
  SoftmaxCrossEntropy<float> loss;
  const index P = model.parameter_count();
  const double p = 0.9, lambda = 1e-3;
  SGD<float> optimizer(P, {.momentum = p, .weight_decay = lambda});
  step_schedule schedule(0.2, {3, 6}, 0.5);
  std::vector<float> w(static_cast<std::size_t>(P));
  model.initialize(vector_view<float>(w.data(), P), 3);

  // Record, per step, η_t and the batch's per-sample gradients (float, as the tracker sees them).
  struct recorder {
    Mlp<float>& model;
    SoftmaxCrossEntropy<float>& loss;
    std::vector<double> rates;
    std::vector<std::vector<index>> batches;
    std::vector<std::vector<double>> gradients;
    void before_update(const step_context<float, cpu>& c) {
      rates.push_back(static_cast<double>(c.learning_rate));
      batches.emplace_back(c.batch.begin(), c.batch.end());
      matrix<float, cpu> g(static_cast<index>(c.batch.size()), model.parameter_count());
      model.per_sample_gradients(c.parameters, c.features, c.targets, loss, g.view());
      gradients.emplace_back(g.data(), g.data() + g.size());
    }
  } trajectory{model, loss, {}, {}, {}};
  const std::vector<index> tracked{3, 11, 19};
  using tracker_t = hypergradient_tracker<Mlp<float>, SoftmaxCrossEntropy<float>, HessianFree>;
  tracker_t lazy(model, loss, optimizer, tracked, data.size());
  tracker_t eager(model, loss, optimizer, tracked, data.size(), {.update = update_mode::eager});
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  fit.fit(vector_view<float>(w.data(), P), data, order, nullptr, trajectory, lazy, eager);

  // The recurrence in double, written out, with float's p and λ.
  const double pf = static_cast<double>(static_cast<float>(p)), lf = static_cast<double>(static_cast<float>(lambda));
  std::vector<double> reference;
  for (const index i : tracked) {
    std::vector<double> dv(static_cast<std::size_t>(P), 0.0), grad(dv.size(), 0.0);
    for (std::size_t t = 0; t < trajectory.rates.size(); ++t) {
      const auto& batch = trajectory.batches[t];
      for (std::size_t k = 0; k < dv.size(); ++k) {
        double source = 0;
        for (std::size_t b = 0; b < batch.size(); ++b)
          if (batch[b] == i)
            source += 20.0 / static_cast<double>(batch.size()) * trajectory.gradients[t][b * dv.size() + k];
        dv[k] = pf * dv[k] + lf * grad[k] + source;
        grad[k] -= trajectory.rates[t] * dv[k];
      }
    }
    reference.insert(reference.end(), grad.begin(), grad.end());
  }
  const double lazy_error = worst_row_error(host_rows(lazy.hypergradients()), reference, P);
  const double eager_error = worst_row_error(host_rows(eager.hypergradients()), reference, P);
  CAPTURE(lazy_error);
  CAPTURE(eager_error);
  // float's ε is 6e-8; 40 steps of a contracting recurrence accumulate a few hundred ε at most.
  CHECK(lazy_error <= 1e-5);
  CHECK(eager_error <= 1e-5);
  CHECK(lazy_error > 0.0);  // float arithmetic did happen
}

TEST_CASE("file-backed states give the same bits as memory, leave no file behind, and report a bad directory") {
  const auto data = classification_data<double>(23, 4, 3, 5, 7, 2);
  const auto order = batch_order::shuffled(23, 5, 4, 3);
  const auto directory = std::filesystem::temp_directory_path() / "hydra-lazy-test-states";
  std::filesystem::remove_all(directory);
  for (const auto mode : {update_mode::lazy, update_mode::eager}) {
    CAPTURE(name_of(mode));
    model_t model(4, {6}, 3, activation::tanh);
    loss_t loss;
    SGD<double> optimizer(model.parameter_count(), {.momentum = 0.9, .weight_decay = 1e-3});
    constant_schedule schedule(0.1);
    std::vector<double> w(static_cast<std::size_t>(model.parameter_count()));
    model.initialize(vector_view<double>(w.data(), model.parameter_count()), 2);
    const std::vector<index> tracked{1, 5, 8, 20, 22};
    free_tracker in_memory(model, loss, optimizer, tracked, data.size(), {.update = mode});
    free_tracker on_disk(model, loss, optimizer, tracked, data.size(), {.update = mode, .state_directory = directory});
    CHECK(on_disk.file_backed());
    CHECK_FALSE(in_memory.file_backed());
    CHECK(std::filesystem::is_empty(directory));  // the scratch file is unlinked once mapped
    trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
    fit.fit(vector_view<double>(w.data(), model.parameter_count()), data, order, nullptr, in_memory, on_disk);
    CHECK(host_rows(on_disk.hypergradients()) == host_rows(in_memory.hypergradients()));
    CHECK(host_rows(on_disk.momentum_derivatives()) == host_rows(in_memory.momentum_derivatives()));
  }
  // A state directory below a regular file cannot be created.
  const auto blocker = directory / "a-file";
  std::FILE* f = std::fopen(blocker.c_str(), "w");
  REQUIRE(f != nullptr);
  std::fclose(f);
  model_t model(4, {6}, 3);
  loss_t loss;
  CHECK_THROWS_WITH_AS(free_tracker(model, loss, {0}, 23, 0.9, 0.0, {.state_directory = blocker / "states"}),
                       doctest::Contains("a-file/states"), io_error);
  std::filesystem::remove_all(directory);
}

TEST_CASE("lazy and lean requests the tracker cannot honour are refused with a reason") {
  model_t model(4, {6}, 3);
  loss_t loss;
  using exact_tracker = hypergradient_tracker<model_t, loss_t, Exact>;
  CHECK_THROWS_WITH_AS(exact_tracker(model, loss, {0}, 10, 0.9, 0.0, {.update = update_mode::lazy}),
                       doctest::Contains("lazy updating applies to the Hessian-free variant only"), invalid_argument);
  CHECK_FALSE(exact_tracker(model, loss, {0}, 10, 0.9, 0.0).lazy());
  CHECK(free_tracker(model, loss, {0}, 10, 0.9, 0.0).lazy());

  matrix<double, cpu> directions(2, model.parameter_count());
  CHECK_THROWS_WITH_AS(exact_tracker(model, loss, {0}, 10, 0.9, 0.0, lean_projection<double>{directions.view()}),
                       doctest::Contains("lean mode needs the Hessian-free variant"), invalid_argument);
  matrix<double, cpu> wrong(2, 5);
  CHECK_THROWS_WITH_AS(free_tracker(model, loss, {0}, 10, 0.9, 0.0, lean_projection<double>{wrong.view()}),
                       doctest::Contains("lean directions have 5 columns, the model has 51 parameters"), shape_error);
  free_tracker lean(model, loss, {0, 3}, 10, 0.9, 0.0, lean_projection<double>{directions.view()});
  CHECK(lean.lean());
  CHECK(lean.state_width() == 2);
  CHECK_THROWS_WITH_AS((void)lean.hypergradients(), doctest::Contains("read projections()"), invalid_argument);
  free_tracker full(model, loss, {0}, 10, 0.9, 0.0);
  CHECK_THROWS_WITH_AS((void)full.projections(), doctest::Contains("not in lean mode"), invalid_argument);
}

TEST_CASE("transfer_ledger: products per last-touch step, and a snapshot round trip") {
  transfer_ledger ledger(4);
  CHECK(ledger.pending(0) == transfer_matrix{});  // never touched: zero (write without reading)
  const auto A = step_transfer(0.9, 0.1, 0.5);
  const auto A2 = step_transfer(0.9, 0.1, 0.25);
  CHECK(A == transfer_matrix{0.9, 0.1, -0.45, 0.95});
  const index first[] = {0, 2};
  ledger.advance(A);
  ledger.touch(first);
  ledger.advance(A2);
  CHECK(ledger.pending(0) == A2);
  CHECK(ledger.pending(1) == transfer_matrix{});
  const index second[] = {2, 3};
  ledger.touch(second);
  ledger.advance(A);
  CHECK(ledger.pending(0) == A * A2);
  CHECK(ledger.pending(2) == A);
  CHECK(ledger.live_groups() == 2);
  const index twice[] = {1, 1};
  CHECK_THROWS_WITH_AS(transfer_ledger(4).touch(twice), doctest::Contains("row 1 is listed twice"), invalid_argument);

  transfer_ledger copy(4);
  auto s = ledger.save();
  copy.restore(s);
  copy.advance(A2);
  ledger.advance(A2);
  for (index r = 0; r < 4; ++r) CHECK(copy.pending(r) == ledger.pending(r));
  s.members[0] += 1;
  CHECK_THROWS_WITH_AS(copy.restore(s), doctest::Contains("claims"), format_error);
}

} // namespace hydra::test
