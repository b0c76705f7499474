// A tracking run stopped mid-way (a callback throws, as a crash would) and resumed from its last
// checkpoint ends with the same bits as the run that was never stopped: parameters and the
// tracker's states, for lazy, eager, lean, file-backed and Exact trackers. Also: a checkpoint of
// another tracker configuration is refused, naming the field.

#include <doctest/doctest.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "hydra/attribution/contributions.hpp"
#include "hydra/backend/cpu.hpp"
#include "hydra/hypergradient/tracker.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "hydra/train/trainer.hpp"
#include "support/classification_data.hpp"
#include "support/finite_difference.hpp"
#include "support/temp_dir.hpp"

namespace hydra::test {
namespace {
namespace fs = std::filesystem;

using model_t = Mlp<double>;
using loss_t = SoftmaxCrossEntropy<double>;

struct crash : std::runtime_error {
  crash() : std::runtime_error("simulated crash") {}
};
/// Throws after step `at` has been fully processed (its checkpoint, if any, is written first:
/// checkpoints are taken after the callbacks).
struct crash_after {
  index at;
  void after_update(const step_context<double, cpu>& ctx) {
    if (ctx.step == at) throw crash();
  }
};

struct outcome {
  std::vector<double> w;
  std::vector<double> states;  // hypergradients (or projections) then momentum derivatives
};

template <class Policy>
struct tracking_run {
  const dataset<double>& data;
  tracker_options options;
  const matrix<double, cpu>* lean = nullptr;  // lean directions, or none

  /// Trains from the fixed start; with `crash_at` ≥ 0 stops after that step (checkpointing into
  /// `directory`); with `resume` continues from `directory`'s checkpoint instead.
  outcome operator()(const fs::path& directory, index crash_at, bool resume) const {
    model_t model(4, {6}, 3, activation::tanh);
    loss_t loss;
    const index P = model.parameter_count();
    SGD<double> optimizer(P, {.momentum = 0.9, .weight_decay = 1e-3});
    plateau_schedule schedule(0.3, 0.5, 1, 0.5);
    std::vector<double> w(static_cast<std::size_t>(P));
    model.initialize(vector_view<double>(w.data(), P), 5);
    trainer_options training{.progress = progress_mode::never};
    if (!directory.empty()) training.checkpoint = {.directory = directory, .every_steps = 4};
    trainer fit(model, loss, optimizer, schedule, training);
    const std::vector<index> tracked{0, 3, 4, 9, 15, 22};
    using tracker_t = hypergradient_tracker<model_t, loss_t, Policy>;
    auto tracker = lean != nullptr ? tracker_t(model, loss, optimizer, tracked, data.size(),
                                               lean_projection<double>{lean->view()}, options)
                                   : tracker_t(model, loss, optimizer, tracked, data.size(), options);
    const auto order = batch_order::shuffled(data.size(), 5, 6, 9, false);
    crash_after stop{crash_at};
    const vector_view<double> wv(w.data(), P);
    if (resume) fit.resume(directory, wv, data, order, nullptr, tracker);
    else if (crash_at >= 0) CHECK_THROWS_AS(fit.fit(wv, data, order, nullptr, tracker, stop), crash);
    else fit.fit(wv, data, order, nullptr, tracker);
    outcome out{w, {}};
    auto append = [&](matrix_view<const double> m) {
      for (index r = 0; r < m.rows; ++r) out.states.insert(out.states.end(), m.row(r), m.row(r) + m.cols);
    };
    if (lean != nullptr) {
      append(tracker.projections());
      append(tracker.projected_momentum_derivatives());
    } else {
      append(tracker.hypergradients());
      append(tracker.momentum_derivatives());
    }
    return out;
  }
};

/// Uninterrupted, then stopped after step 13 (mid-epoch; last checkpoint after step 11) and
/// resumed: the same bits.
template <class Policy>
void check_resume(const tracking_run<Policy>& run, const std::string& name) {
  const auto whole = run({}, -1, false);
  const temp_dir scratch(name);
  const auto directory = scratch / "checkpoints";
  const auto stopped = run(directory, 13, false);
  CHECK(stopped.w != whole.w);  // the stop happened before the end
  const auto resumed = run(directory, -1, true);
  CHECK(resumed.w == whole.w);
  CHECK(resumed.states == whole.states);
}

} // namespace

TEST_CASE("a tracking run stopped mid-way and resumed ends with the same bits: lazy, eager, lean, file-backed, Exact") {
  const auto data = classification_data(23, 4, 3, 3, 5, 2);
  SUBCASE("lazy") { check_resume(tracking_run<HessianFree>{data, {}}, "lazy"); }
  SUBCASE("eager") { check_resume(tracking_run<HessianFree>{data, {.update = update_mode::eager}}, "eager"); }
  SUBCASE("Exact") { check_resume(tracking_run<Exact>{data, {}}, "exact"); }
  SUBCASE("file-backed lazy") {
    const temp_dir states("states");
    check_resume(tracking_run<HessianFree>{data, {.state_directory = states.path()}}, "mapped");
  }
  SUBCASE("lean") {
    model_t model(4, {6}, 3);
    matrix<double, cpu> U(3, model.parameter_count());
    const auto values = normal_vector(static_cast<std::size_t>(U.size()), 4);
    std::copy(values.begin(), values.end(), U.data());
    check_resume(tracking_run<HessianFree>{data, {}, &U}, "lean");
  }
}

TEST_CASE("resuming with a tracker of another configuration is refused, naming what differs") {
  const auto data = classification_data(23, 4, 3, 3, 5, 2);
  const temp_dir scratch("refused");
  const auto directory = scratch / "checkpoints";
  tracking_run<HessianFree>{data, {}}(directory, 13, false);
  auto message = [&](const auto& run) {
    try {
      run(directory, -1, true);
    } catch (const format_error& e) {
      return std::string(e.what());
    }
    return std::string("(no format_error)");
  };
  CHECK_MESSAGE(message(tracking_run<HessianFree>{data, {.update = update_mode::eager}}).find("update mode") !=
                    std::string::npos,
                message(tracking_run<HessianFree>{data, {.update = update_mode::eager}}));
  CHECK(message(tracking_run<Exact>{data, {}}).find("tracker.policy is 'hessian-free', this tracker's is 'exact'") !=
        std::string::npos);
}

} // namespace hydra::test
