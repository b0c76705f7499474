// Lean mode and checkpoint/resume on hydra::cuda, against the same runs on hydra::cpu:
//  - lean projections (HessianFree lazy, directions in device memory) and the contributions made
//    from them equal the CPU's;
//  - a tracking run on the device stopped after step 9 (a callback throws, as a crash would) and
//    resumed from its last checkpoint (after step 8) ends with the same bits as the device run
//    that was never stopped, for lazy, eager and Exact trackers, and equals the CPU's run.
// The checkpoint copies device states through host staging (tracker.hpp's save_rows/load_rows),
// so the emulated build (docs/backend.md, "Host emulation") checks that no host code reads device
// memory on the way. Without a device (and not emulated) each case says "[skipped] no CUDA device".
//
// Tolerance against the CPU, double: 1e-9 relative (max over elements / max magnitude): the two
// backends differ only in summation order and FMA contraction over 18 steps of a 4-6-3 tanh MLP,
// the same argument and bound as cuda_pipeline.test.cu. Resumed against uninterrupted on one
// backend: bit for bit (the same kernels on the same inputs in the same order).

#include <doctest/doctest.h>

#include <hydra/backend/cuda.cuh>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
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
#include "support/cuda_device.hpp"
#include "support/temp_dir.hpp"

namespace hydra::test {
namespace {
namespace fs = std::filesystem;

struct crash : std::runtime_error {
  crash() : std::runtime_error("simulated crash") {}
};
template <class B>
struct crash_after {
  index at;
  void after_update(const step_context<double, B>& ctx) {
    if (ctx.step == at) throw crash();
  }
};

struct outcome {
  std::vector<double> w;
  std::vector<double> states;  // hypergradients then momentum derivatives, or projections
  std::vector<double> contributions;
};

const std::vector<index> tracked{0, 3, 4, 9, 15, 22};

/// One training run of a 4-6-3 tanh MLP with a tracker on backend B: from scratch, stopped after
/// `crash_at` (checkpointing into `directory` every 4 steps), or resumed from `directory`. With
/// `lean`, the tracker carries projections onto the rows of `lean` (host values) instead.
template <class B, class Policy>
outcome run(const dataset<double>& data, tracker_options options, const std::vector<double>* lean, const fs::path& directory,
            index crash_at, bool resume) {
  using model_t = Mlp<double, B>;
  using loss_t = SoftmaxCrossEntropy<double, B>;
  model_t model(4, {6}, 3, activation::tanh);
  loss_t loss;
  const index P = model.parameter_count();
  SGD<double, B> optimizer(P, {.momentum = 0.9, .weight_decay = 1e-3});
  step_schedule schedule(0.3, {1}, 0.5);
  vector<double, B> w(P);
  model.initialize(w.view(), 5);
  trainer_options training{.progress = progress_mode::never};
  if (!directory.empty()) training.checkpoint = {.directory = directory, .every_steps = 4};
  trainer fit(model, loss, optimizer, schedule, training);
  matrix<double, B> directions;
  if (lean != nullptr) directions = matrix<double, B>::from_host(*lean, static_cast<index>(lean->size()) / P, P);
  using tracker_t = hypergradient_tracker<model_t, loss_t, Policy>;
  auto tracker = lean != nullptr ? tracker_t(model, loss, optimizer, tracked, data.size(),
                                             lean_projection<double>{std::as_const(directions).view()}, options)
                                 : tracker_t(model, loss, optimizer, tracked, data.size(), options);
  const auto order = batch_order::shuffled(data.size(), 5, 3, 9, false);
  crash_after<B> stop{crash_at};
  if (resume) fit.resume(directory, w.view(), data, order, nullptr, tracker);
  else if (crash_at >= 0) CHECK_THROWS_AS(fit.fit(w.view(), data, order, nullptr, tracker, stop), crash);
  else fit.fit(w.view(), data, order, nullptr, tracker);

  outcome out{w.to_host(), {}, {}};
  auto append = [&](matrix_view<const double> m) {
    std::vector<double> host(static_cast<std::size_t>(m.rows * m.cols));
    for (index r = 0; r < m.rows; ++r) B::copy_to_host(m.row(r), m.cols, host.data() + r * m.cols);
    out.states.insert(out.states.end(), host.begin(), host.end());
  };
  if (lean != nullptr) {
    append(tracker.projections());
    out.contributions = contributions_from_projections<B>(tracker.projections(), data.size()).to_host();
  } else {
    append(tracker.hypergradients());
    append(tracker.momentum_derivatives());
  }
  return out;
}

} // namespace

TEST_CASE("lean projections and their contributions on cuda equal cpu's (lazy HessianFree, double)") {
  if (!have_device()) return;
  const auto data = classification_data(24, 4, 3, 17);
  const index P = Mlp<double>(4, {6}, 3, activation::tanh).parameter_count();
  std::vector<double> directions(static_cast<std::size_t>(3 * P));  // three fixed test directions
  for (std::size_t k = 0; k < directions.size(); ++k) directions[k] = std::sin(0.37 * static_cast<double>(k) + 0.1);
  const auto host = run<cpu, HessianFree>(data, {}, &directions, {}, -1, false);
  const auto device = run<cuda, HessianFree>(data, {}, &directions, {}, -1, false);
  CHECK(relative_difference(device.w, host.w) <= 1e-9);
  CHECK(relative_difference(device.states, host.states) <= 1e-9);
  CHECK(relative_difference(device.contributions, host.contributions) <= 1e-9);
  CHECK(host.contributions.size() == tracked.size() * 3);
}

TEST_CASE("a device run stopped after step 9 and resumed ends bit-identical to the uninterrupted one") {
  if (!have_device()) return;
  const auto data = classification_data(24, 4, 3, 17);
  auto check = [&](auto policy, tracker_options options, const char* name) {
    using Policy = decltype(policy);
    CAPTURE(name);
    temp_dir dir;
    const auto whole = run<cuda, Policy>(data, options, nullptr, {}, -1, false);
    run<cuda, Policy>(data, options, nullptr, dir.path() / "ckpt", 9, false);
    const auto resumed = run<cuda, Policy>(data, options, nullptr, dir.path() / "ckpt", -1, true);
    CHECK(resumed.w == whole.w);
    CHECK(resumed.states == whole.states);
    const auto host = run<cpu, Policy>(data, options, nullptr, {}, -1, false);
    CHECK(relative_difference(whole.w, host.w) <= 1e-9);
    CHECK(relative_difference(whole.states, host.states) <= 1e-9);
  };
  check(HessianFree{}, {.update = update_mode::lazy}, "HessianFree lazy");
  check(HessianFree{}, {.update = update_mode::eager}, "HessianFree eager");
  check(Exact{}, {}, "Exact");
}

} // namespace hydra::test
