// Benchmarks of the adjoint sweep (include/hydra/hypergradient/adjoint.hpp) on hydra::cpu in
// float, against the training it replays and against forward Exact tracking:
//
//   BM_AdjointSweep<Policy, Model>/M:m   adjoint_projections over a recorded run of S steps of
//                                        B = 64 (N = S·64 training samples, every one of them
//                                        attributed) onto M directions
//   BM_Training<Model>                   the same S steps of plain training (trainer.fit, SGD
//                                        momentum 0.9, weight decay 2e-5): the unit of cost
//
// for the MLP 784→128→10 of BM_ExactStep (tracker.bench.cpp: forward Exact tracking of n samples,
// one step) and for LeNet-5. Per step, the sweep costs M HVP directions (whose tangent pass also
// gives the couplings) against n for forward tracking, so speed-up ∝ n/M. The trajectory is
// recorded once per case outside the timed loop (every w_{t−1} in memory), the data are
// deterministic images (a hash formula), and the directions a fixed pseudo-random M × |w| matrix.
// Rates are per CPU second of this single-threaded process. Results: docs/performance.md, "The
// adjoint sweep".

#include <benchmark/benchmark.h>

#include <string>
#include <utility>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/data/batch_order.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/hypergradient/adjoint.hpp"
#include "hydra/hypergradient/policy.hpp"
#include "hydra/hypergradient/trajectory.hpp"
#include "hydra/nn/lenet.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "hydra/train/trainer.hpp"
#include "support/inputs.hpp"

namespace {

using hydra::index;
using hydra::bench::per_second;
using T = float;
using B = hydra::cpu;
using loss_type = hydra::SoftmaxCrossEntropy<T>;

constexpr index kBatch = 64;
constexpr index kClasses = 10;

struct mlp_128 {
  static constexpr const char* name = "Mlp784-128-10";
  static constexpr index steps = 16;
  static hydra::Mlp<T, B> make() { return hydra::Mlp<T, B>(784, {128}, kClasses, hydra::activation::relu); }
  static std::vector<index> shape() { return {784}; }
};
struct lenet5 {
  static constexpr const char* name = "LeNet5";
  static constexpr index steps = 8;
  static hydra::LeNet5<T, B> make() { return hydra::LeNet5<T, B>(); }
  static std::vector<index> shape() { return {1, 28, 28}; }
};

/// S·64 deterministic images in [0, 1) with labels, a one-epoch order of S steps, and the model
/// trained along it once with the trajectory recorded.
template <class Spec>
struct recorded_run {
  decltype(Spec::make()) model = Spec::make();
  loss_type loss;
  hydra::dataset<T> train;
  hydra::batch_order order;
  hydra::SGD<T> optimizer;
  hydra::vector<T, B> w;
  hydra::trajectory_recorder<T, B> trajectory;

  recorded_run()
      : train(make_data()), order(hydra::batch_order::shuffled(Spec::steps * kBatch, kBatch, 1, 7)),
        optimizer(model.parameter_count(), {.momentum = 0.9, .weight_decay = 2e-5}), w(model.parameter_count()) {
    model.initialize(w.view(), hydra::bench::deterministic_uniform(1));
    train_once(trajectory);
  }
  template <class... Callbacks>
  void train_once(Callbacks&... callbacks) {
    hydra::constant_schedule schedule(0.01);
    hydra::trainer fit(model, loss, optimizer, schedule, {.progress = hydra::progress_mode::never});
    (void)fit.fit(w.view(), train, order, nullptr, callbacks...);
  }
  static hydra::dataset<T> make_data() {
    const index n = Spec::steps * kBatch, D = 784;
    std::vector<T> pixels(static_cast<std::size_t>(n * D));
    hydra::bench::fill_pixels(hydra::vector_view<T>(pixels.data(), n * D), 2);
    std::vector<hydra::label_type> labels;
    for (index i = 0; i < n; ++i) labels.push_back(static_cast<hydra::label_type>((i * 7) % kClasses));
    return {Spec::shape(), std::move(pixels), std::move(labels), kClasses};
  }
};

template <class Policy, class Spec>
void BM_AdjointSweep(benchmark::State& state) {
  const index M = state.range(0);
  recorded_run<Spec> run;
  const index P = run.model.parameter_count();
  hydra::matrix<T, B> directions(M, P);
  hydra::bench::fill(directions.flat(), 3, T(1e-2));
  for (auto _ : state) {
    auto projections = hydra::adjoint_projections<Policy>(run.model, run.loss, run.train, run.order, run.trajectory,
                                                          std::as_const(directions).view(), run.optimizer,
                                                          {.progress = hydra::progress_mode::never});
    benchmark::DoNotOptimize(projections.view().data);
  }
  const auto it = state.iterations();
  state.counters["steps/s"] = per_second(static_cast<double>(Spec::steps), it);
  state.counters["samples/s"] = per_second(static_cast<double>(run.train.size()), it);  // attributed, all of them
  state.counters["directions/s"] = per_second(static_cast<double>(M * Spec::steps), it);
}

template <class Spec>
void BM_Training(benchmark::State& state) {
  recorded_run<Spec> run;
  for (auto _ : state) {
    run.train_once();
    benchmark::DoNotOptimize(run.w.view().data);
  }
  const auto it = state.iterations();
  state.counters["steps/s"] = per_second(static_cast<double>(Spec::steps), it);
  state.counters["samples/s"] = per_second(static_cast<double>(run.train.size()), it);
}

BENCHMARK_TEMPLATE(BM_Training, mlp_128)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_AdjointSweep, hydra::Exact, mlp_128)->ArgName("M")->Arg(1)->Arg(4)->Arg(10)->Arg(16)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_AdjointSweep, hydra::HessianFree, mlp_128)->ArgName("M")->Arg(1)->Arg(10)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_Training, lenet5)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_AdjointSweep, hydra::Exact, lenet5)->ArgName("M")->Arg(1)->Arg(10)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_AdjointSweep, hydra::HessianFree, lenet5)->ArgName("M")->Arg(1)->Unit(benchmark::kMillisecond);

} // namespace
