// The supplement's training-time study ("Growth of Training Time", its Figure 1: LeNet5, DenseNet-40
// and MobileNet V2 tracking 400, 2 000 and 10 000 training points) scaled to a 2-core CPU with
// 23 GiB: the time of one training step, batch 64, with a hypergradient_tracker of n samples, as
// trainer::fit takes it (include/hydra/train/trainer.hpp):
//
//   { training_scope: gradient of the batch on batch statistics; running estimates updated }
//   tracker.before_update(ctx)     HessianFree or Exact, eager (Algorithm 1: every state, every step)
//   SGD step (momentum 0.9, weight decay 5e-4)
//
// n = 0 is the same step without a tracker. The tracked samples are 0..n−1 and the batch is
// samples 0..63 of a training set of N = 50 000 (CIFAR-10's), so every step with n ≥ 1 computes the
// batch's per-sample gradients and adds min(n, 64) of them (the worst case, which random batches
// approach once n ≳ N/64 ≈ 800: P(a tracked sample in a batch) = 1 − (1 − n/N)^64). The tracker
// runs in the model's attribution setting (set_batch_norm_statistics): `batch` (exact; per-sample
// gradients cost one backward pass per sample, 64 per step) or `running` (the eval-mode
// approximation, one batched pass). The models' batch norms use momentum 1, so their running
// estimates are the statistics of the last training batch: with the same batch at every step
// that is where PyTorch's momentum 0.1 converges, and it keeps running-mode activations on the
// scale of training.
//
// Memory bounds n: the states are 2·n·|w| floats (LeNet-5 0.49 MB, DenseNet-40 1.41 MB,
// MobileNetV2 17.9 MB per tracked sample), so n stops at 10 000, 4 000 and 256 (4.9, 5.6 and
// 4.6 GB). Exact runs one Hessian-vector product per tracked sample per step; with the tracker's
// default 256 MiB of HVP workspace DenseNet-40 and MobileNetV2 take one direction per call.
//
// BM_StateUpdate is the eager update kernel alone (cpu::hypergradient_update) on states of the
// same shapes: the part of a HessianFree step that grows with n. Results, linear fits
// (benchmarks/training_time_fit.py) and the comparison with the paper: docs/performance.md,
// "DenseNet-40 and MobileNetV2 (CPU)".

#include <benchmark/benchmark.h>

#include <algorithm>
#include <ctime>
#include <initializer_list>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/hypergradient/policy.hpp"
#include "hydra/hypergradient/tracker.hpp"
#include "hydra/nn/batch_norm_state.hpp"
#include "hydra/nn/densenet.hpp"
#include "hydra/nn/lenet.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/mobilenet.hpp"
#include "hydra/nn/training_mode.hpp"
#include "hydra/optim/sgd.hpp"
#include "support/flops.hpp"
#include "support/inputs.hpp"

namespace {

using hydra::index;
using hydra::bench::byte_rate;
using hydra::bench::giga_rate;
using T = float;
using B = hydra::cpu;
using statistics = hydra::batch_norm_statistics;
using loss_type = hydra::SoftmaxCrossEntropy<T>;

using lenet5 = hydra::LeNet5<T, B>;
using densenet40 = hydra::DenseNet40<T, B>;
using mobilenet_v2 = hydra::MobileNetV2<T, B>;

constexpr index kBatch = 64;
constexpr index kClasses = 10;
constexpr index kTrainingSetSize = 50000;
constexpr T kLearningRate = T(1e-3);
constexpr hydra::sgd_options kSgd{.momentum = 0.9, .weight_decay = 5e-4};
/// Running estimates = the last training batch's statistics (see the top).
constexpr hydra::batch_norm_options kBatchNorm{.momentum = 1.0, .eps = 1e-5};

template <class Net>
Net make_network();
template <>
lenet5 make_network<lenet5>() {
  return lenet5();
}
template <>
densenet40 make_network<densenet40>() {
  return densenet40(kBatchNorm);
}
template <>
mobilenet_v2 make_network<mobilenet_v2>() {
  return mobilenet_v2(hydra::mobilenet_v2_options{.batch_norm = kBatchNorm});
}

/// Multiply-adds per sample of the layers with parameters (benchmarks/support/flops.hpp; LeNet-5's
/// as in benchmarks/nn/lenet.bench.cpp), for the Exact steps' GFLOP/s.
template <class Net>
std::vector<double> macs_of();
template <>
std::vector<double> macs_of<lenet5>() {
  return {6.0 * 28 * 28 * 25, 16.0 * 10 * 10 * 150, 400.0 * 120, 120.0 * 84, 84.0 * 10};
}
template <>
std::vector<double> macs_of<densenet40>() {
  return hydra::bench::densenet_macs();
}
template <>
std::vector<double> macs_of<mobilenet_v2>() {
  return hydra::bench::mobilenet_v2_macs();
}

/// CPU time of this process in seconds (what Google Benchmark reports by default).
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

/// A training run at one step: the model, its parameters, SGD, one batch and, for n > 0, the
/// tracker. Built outside the timed loop.
template <class Net, class Policy>
struct training_run {
  Net model = make_network<Net>();
  loss_type loss;
  hydra::vector<T, B> w{model.parameter_count()};
  hydra::vector<T, B> gradient{model.parameter_count()};
  hydra::matrix<T, B> x{kBatch, model.input_size()};
  std::vector<hydra::label_type> labels;
  std::vector<index> batch;
  hydra::SGD<T, B> optimizer{model.parameter_count(), kSgd};
  std::optional<hydra::hypergradient_tracker<Net, loss_type, Policy>> tracker;
  index step = 0;
  double tracker_seconds = 0;  // CPU time inside before_update, summed over timed steps

  training_run(index n, statistics s) {
    model.initialize(w.view(), hydra::bench::deterministic_uniform(1));
    hydra::bench::fill_pixels(x.flat(), 2);
    for (index b = 0; b < kBatch; ++b) {
      labels.push_back(static_cast<hydra::label_type>((b * 7) % kClasses));
      batch.push_back(b);
    }
    hydra::set_batch_norm_statistics(model, s);  // the attribution setting; training_scope overrides it
    if (n > 0) {
      std::vector<index> tracked(static_cast<std::size_t>(n));
      std::iota(tracked.begin(), tracked.end(), index{0});
      hydra::tracker_options options;
      options.update = hydra::update_mode::eager;
      tracker.emplace(model, loss, optimizer, std::move(tracked), kTrainingSetSize, options);
    }
  }

  /// One step as trainer::fit takes it.
  void take_step(bool timed) {
    T value;
    {
      hydra::training_scope<Net> training(model, step);
      value = model.gradient(std::as_const(w).view(), std::as_const(x).view(), {labels.data(), {}}, loss,
                             gradient.view());
      training.update_running_statistics();
    }
    if (tracker) {
      const double start = timed ? cpu_seconds() : 0;
      tracker->before_update({step, 0, batch, kLearningRate, std::as_const(w).view(), std::as_const(x).view(),
                              {labels.data(), {}}, value, std::as_const(gradient).view()});
      if (timed) tracker_seconds += cpu_seconds() - start;
    }
    optimizer.step(w.view(), std::as_const(gradient).view(), kLearningRate);
    ++step;
  }
};

/// Google Benchmark calls a case's function again for each repetition; the run (up to 5.6 GB of
/// states) is kept between the calls of one case and freed before the next case builds its own.
struct holder_base {
  virtual ~holder_base() = default;
};
template <class F>
struct holder final : holder_base {
  template <class... A>
  explicit holder(A&&... args) : value(std::forward<A>(args)...) {}
  F value;
};
std::string g_key;
std::unique_ptr<holder_base> g_fixture;

template <class F, class... A>
F& fixture(const std::string& key, bool& fresh, A&&... args) {
  fresh = !g_fixture || key != g_key;
  if (fresh) {
    g_fixture.reset();
    g_key = key;
    g_fixture = std::make_unique<holder<F>>(std::forward<A>(args)...);
  }
  return static_cast<holder<F>&>(*g_fixture).value;
}

/// state.range(0) = n tracked samples, range(1) = 1 for batch statistics in the attribution
/// passes, 0 for running, range(2) = 1 to take one untimed step first (sizes the buffers and
/// touches the states' pages; 0 for the minutes-long batch-mode DenseNet-40 step).
template <class Net, class Policy>
void BM_TrainingStep(benchmark::State& state) {
  const index n = state.range(0);
  const statistics s = state.range(1) != 0 ? statistics::batch : statistics::running;
  bool fresh = false;
  const std::string key = std::string(__PRETTY_FUNCTION__) + "/" + std::to_string(n) + "/" + std::to_string(state.range(1));
  auto& run = fixture<training_run<Net, Policy>>(key, fresh, n, s);
  if (fresh && state.range(2) != 0) run.take_step(false);
  run.tracker_seconds = 0;
  for (auto _ : state) {
    run.take_step(true);
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(run.w.data());
  const auto it = static_cast<double>(state.iterations());
  const index P = run.model.parameter_count();
  state.counters["params"] = static_cast<double>(P);
  state.counters["tracker s"] = run.tracker_seconds / it;  // CPU seconds per step in before_update
  state.counters["state GB"] = 2.0 * static_cast<double>(n) * static_cast<double>(P) * sizeof(T) * 1e-9;
  if constexpr (Policy::hessian_aware) {
    if (n > 0) {
      const index chunk = hydra::hvp_directions_per_call(run.model, kBatch, hydra::tracker_options{}.hvp_memory_bytes);
      const auto macs = macs_of<Net>();
      double flops = 0;
      for (index first = 0; first < n; first += chunk) flops += hydra::bench::hvp_flops(macs, kBatch, std::min(chunk, n - first));
      state.counters["chunks"] = static_cast<double>((n + chunk - 1) / chunk);
      state.counters["HVP GFLOP/s"] = giga_rate(flops, state.iterations());
    }
  }
}

/// The eager update kernel alone on n × |w| states with min(n, 64) gradient rows (what a
/// HessianFree step adds per tracked sample); range(0) = n, range(1) = |w|. bytes/s counts both
/// states read and written once plus the gradient rows read.
void BM_StateUpdate(benchmark::State& state) {
  const index n = state.range(0), P = state.range(1);
  struct states {
    hydra::matrix<T, B> dv, grad, sources;
    std::vector<index> rows;
    std::vector<T> weights;
    states(index n, index P)
        : dv(n, P), grad(n, P), sources(kBatch, P), rows(static_cast<std::size_t>(n), -1),
          weights(static_cast<std::size_t>(n), T(0)) {
      hydra::bench::fill(sources.flat(), 3, T(1e-3));
      for (index r = 0; r < std::min(n, kBatch); ++r) {
        rows[static_cast<std::size_t>(r)] = r;
        weights[static_cast<std::size_t>(r)] = static_cast<T>(kTrainingSetSize) / static_cast<T>(kBatch);
      }
    }
  };
  bool fresh = false;
  auto& f = fixture<states>("update/" + std::to_string(n) + "/" + std::to_string(P), fresh, n, P);
  for (auto _ : state) {
    B::hypergradient_update(T(0.9), T(5e-4), kLearningRate, hydra::matrix_view<const T>{}, f.rows.data(),
                            f.weights.data(), std::as_const(f.sources).view(), f.dv.view(), f.grad.view());
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(f.grad.data());
  const double bytes = (4.0 * static_cast<double>(n) + static_cast<double>(std::min(n, kBatch))) *
                       static_cast<double>(P) * sizeof(T);
  state.counters["bytes/s"] = byte_rate(bytes, state.iterations());
  state.counters["samples/s"] = hydra::bench::per_second(static_cast<double>(n), state.iterations());
}

// ---- registration -------------------------------------------------------------------------------
// Names read "BM_TrainingStep<densenet40, hydra::HessianFree>/n:400/batch:0/warm:1".

void hessian_free(benchmark::internal::Benchmark* b, std::initializer_list<index> tracked) {
  b->ArgNames({"n", "batch", "warm"})->Unit(benchmark::kMillisecond);
  for (index n : tracked) b->Args({n, 0, 1});
}

BENCHMARK_TEMPLATE(BM_TrainingStep, lenet5, hydra::HessianFree)
    ->Apply([](benchmark::internal::Benchmark* b) { hessian_free(b, {0, 64, 400, 2000, 10000}); });
BENCHMARK_TEMPLATE(BM_TrainingStep, lenet5, hydra::Exact)->ArgNames({"n", "batch", "warm"})->Args({64, 0, 1})->Unit(benchmark::kMillisecond);

BENCHMARK_TEMPLATE(BM_TrainingStep, densenet40, hydra::HessianFree)
    ->Apply([](benchmark::internal::Benchmark* b) { hessian_free(b, {0, 4, 400, 2000, 4000}); });
BENCHMARK_TEMPLATE(BM_TrainingStep, densenet40, hydra::Exact)->ArgNames({"n", "batch", "warm"})->Args({4, 0, 1})->Unit(benchmark::kMillisecond);
// Batch statistics: 64 backward passes of the whole batch per step (about 2.5 minutes on the
// machine of docs/performance.md), so a single step, no warm-up, one repetition.
BENCHMARK_TEMPLATE(BM_TrainingStep, densenet40, hydra::HessianFree)
    ->ArgNames({"n", "batch", "warm"})
    ->Args({4, 1, 0})
    ->Iterations(1)
    ->Repetitions(1)
    ->Unit(benchmark::kMillisecond);

BENCHMARK_TEMPLATE(BM_TrainingStep, mobilenet_v2, hydra::HessianFree)
    ->Apply([](benchmark::internal::Benchmark* b) { hessian_free(b, {0, 4, 16, 64, 256}); });
BENCHMARK_TEMPLATE(BM_TrainingStep, mobilenet_v2, hydra::Exact)->ArgNames({"n", "batch", "warm"})->Args({4, 0, 1})->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_TrainingStep, mobilenet_v2, hydra::HessianFree)
    ->ArgNames({"n", "batch", "warm"})
    ->Args({4, 1, 1})
    ->Unit(benchmark::kMillisecond);

// The update kernel at each model's largest n.
BENCHMARK(BM_StateUpdate)
    ->ArgNames({"n", "P"})
    ->Args({10000, 61706})
    ->Args({4000, 176122})
    ->Args({256, 2236682})
    ->Unit(benchmark::kMillisecond);

} // namespace
