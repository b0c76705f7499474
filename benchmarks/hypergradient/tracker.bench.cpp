// Benchmarks of one step of the hypergradient recurrence, hypergradient_tracker::before_update
// (include/hydra/hypergradient/tracker.hpp), for both policies on hydra::cpu in float:
//
//   (a) against the number n of tracked samples at a fixed model (Mlp 784→128→10, |w| = 101 770):
//       HessianFree n ∈ {16, 64, 256, 1024, 4096}, Exact n ∈ {16, 64, 256, 1024};
//   (b) against the model size at n = 256: Mlp 784→H→10 with H ∈ {32, 128, 512}
//       (|w| = 795·H + 10 = 25 450, 101 770, 407 050).
//
// The supplement's Figure 1 ("Growth of Training Time") reports time growing linearly in both.
// As references measured in the same run: a plain copy of the same number of bytes as the
// HessianFree state traffic (std::memcpy and hydra::cpu::copy), the bare update kernel
// hydra::cpu::hypergradient_update on states of the same shape (its finiteness check fused in),
// cpu::all_finite of both states (what a separate finiteness scan would add to a step, the
// design the fused check replaced), and the model derivatives a step
// is built from (mean gradient, per-sample gradients, one batched HVP). Results and their reading:
// docs/performance.md, "Hypergradient engine (CPU)".
//
// Each tracker benchmark builds its own step_context, as the trainer does before the optimizer step:
// a batch of B = 64 training-sample indices 0..63 out of a training set of N = 50 000, features
// 64 × 784 of deterministic data (a hash formula, no RNG state), labels, learning rate, the
// parameters w and the mean batch loss and gradient there. The tracked set is 0..n−1, so
// min(n, 64) tracked samples are in every batch: the per-sample-gradient path (one
// model.per_sample_gradients call for the whole batch, then a gradient row added to min(n, 64)
// rows of dv) runs at every step, and the other n − 64 rows take only the momentum / weight-decay
// (and, for Exact, Hessian) terms. The same batch and parameters are reused at every iteration,
// so the states evolve (they stay finite: η = 1e-3, p = 0.9, λ = 5e-4) but the work per step does
// not depend on their values. Rates are per CPU second of this single-threaded process.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <numeric>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/hypergradient/policy.hpp"
#include "hydra/hypergradient/tracker.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "hydra/train/trainer.hpp"
#include "support/flops.hpp"
#include "support/inputs.hpp"

namespace {

using hydra::index;
using hydra::bench::byte_rate;
using hydra::bench::fill;
using hydra::bench::giga_rate;
using T = float;
using B = hydra::cpu;
using model_type = hydra::Mlp<T, B>;
using loss_type = hydra::SoftmaxCrossEntropy<T>;

constexpr index kBatch = 64;
constexpr index kInputs = 784;
constexpr index kClasses = 10;
constexpr index kTrainingSetSize = 50000;
constexpr T kLearningRate = T(1e-3);
constexpr T kMomentum = T(0.9);
constexpr T kWeightDecay = T(5e-4);

/// Mlp 784→H→10 with its parameters, one batch of B = 64 samples (indices 0..63), and the mean
/// loss and gradient at w: everything a step_context points to. Built outside the timed loop.
struct problem {
  index hidden;
  model_type model;
  loss_type loss;
  hydra::vector<T, B> w;
  hydra::matrix<T, B> x{kBatch, kInputs};
  std::vector<hydra::label_type> labels;
  std::vector<index> batch;
  hydra::vector<T, B> gradient;
  T loss_value = 0;

  explicit problem(index h)
      : hidden(h), model(kInputs, {h}, kClasses, hydra::activation::relu), w(model.parameter_count()),
        gradient(model.parameter_count()) {
    model.initialize(w.view(), hydra::bench::deterministic_uniform(1));
    hydra::bench::fill_pixels(x.flat(), 2);
    for (index b = 0; b < kBatch; ++b) {
      labels.push_back(static_cast<hydra::label_type>((b * 7) % kClasses));
      batch.push_back(b);
    }
    loss_value = model.gradient(std::as_const(w).view(), std::as_const(x).view(), y(), loss, gradient.view());
  }
  [[nodiscard]] index parameters() const noexcept { return model.parameter_count(); }
  [[nodiscard]] hydra::batch_targets<T> y() const { return {labels.data(), {}}; }
  [[nodiscard]] std::array<index, 3> widths() const noexcept { return {kInputs, hidden, kClasses}; }
  [[nodiscard]] hydra::step_context<T, B> context(index step) const {
    return {step, 0, batch, kLearningRate, std::as_const(w).view(), std::as_const(x).view(), y(), loss_value,
            std::as_const(gradient).view()};
  }
};

/// Tracked samples 0..n−1.
std::vector<index> first(index n) {
  std::vector<index> tracked(static_cast<std::size_t>(n));
  std::iota(tracked.begin(), tracked.end(), index{0});
  return tracked;
}

/// Bytes of one HessianFree step's state traffic: both states read and written once
/// (4·n·|w|·sizeof(T)), plus the min(n, B) per-sample gradient rows read.
double hessian_free_bytes(index n, index parameters) {
  return (4.0 * static_cast<double>(n) + static_cast<double>(std::min(n, kBatch))) *
         static_cast<double>(parameters) * sizeof(T);
}

/// Google Benchmark runs each case several times while it settles the iteration count, calling
/// the function anew each time. Building a fixture of up to 3.3 GB that often costs seconds of
/// page faults per case on a virtual machine, so one fixture is kept between the runs of the same
/// case: a single slot, freed before the next case builds its own (peak memory is one fixture).
struct fixture_base {
  virtual ~fixture_base() = default;
};
template <class F>
struct fixture_holder final : fixture_base {
  template <class... A>
  explicit fixture_holder(A&&... args) : value(std::forward<A>(args)...) {}
  F value;
};
std::string g_fixture_key;
std::unique_ptr<fixture_base> g_fixture;

/// The fixture of this case (`key` names it, with its arguments), built on first use. `fresh`
/// tells whether it was just built.
template <class F, class... A>
F& fixture(const std::string& key, bool& fresh, A&&... args) {
  fresh = !g_fixture || key != g_fixture_key;
  if (fresh) {
    g_fixture.reset();
    g_fixture_key = key;
    g_fixture = std::make_unique<fixture_holder<F>>(std::forward<A>(args)...);
  }
  return static_cast<fixture_holder<F>&>(*g_fixture).value;
}
template <class... I>
std::string key_of(const char* family, I... args) {
  std::string key = family;
  ((key += "/" + std::to_string(args)), ...);
  return key;
}

// ---- one tracker step: state.range(0) = n tracked samples, range(1) = H, range(2) = check_finite --
template <class Policy>
struct tracker_fixture {
  problem p;
  hydra::hypergradient_tracker<model_type, loss_type, Policy> tracker;
  index step = 0;
  tracker_fixture(index n, index hidden, hydra::tracker_options options)
      : p(hidden), tracker(p.model, p.loss, first(n), kTrainingSetSize, kMomentum, kWeightDecay, options) {}
};

template <class Policy>
void tracker_step(benchmark::State& state) {
  const index n = state.range(0);
  hydra::tracker_options options;
  options.check_finite = state.range(2) != 0;
  // The same batch every step: the step-by-step update of Algorithm 1 is what this sweep measures
  // (a lazy tracker would touch only those 64 rows; see BM_TrackAllStep).
  options.update = hydra::update_mode::eager;
  bool fresh = false;
  auto& f = fixture<tracker_fixture<Policy>>(key_of(Policy::name, n, state.range(1), state.range(2)), fresh, n,
                                             state.range(1), options);
  const index P = f.p.parameters();
  // One untimed step sizes the tracker's per-sample-gradient and HVP buffers and the model's
  // workspace (the states are allocated and zeroed by the constructor), so the loop measures the
  // steady state of a training run.
  if (fresh) f.tracker.before_update(f.p.context(f.step++));
  for (auto _ : state) {
    f.tracker.before_update(f.p.context(f.step++));
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(f.tracker.hypergradients().data);

  const auto it = state.iterations();
  state.counters["params"] = static_cast<double>(P);
  state.counters["samples/s"] = benchmark::Counter(static_cast<double>(n * it), benchmark::Counter::kIsRate);
  if constexpr (Policy::hessian_aware) {
    // k = n directions in chunks of the tracker's size (tracker.hpp, chunk_size): each chunk
    // repeats the first-order part of the HVP, so the FLOPs are summed over chunks.
    const auto per_direction = static_cast<std::size_t>(P + f.p.model.tangent_elements_per_direction(kBatch));
    const index chunk = std::max<index>(1, static_cast<index>(options.hvp_memory_bytes / (sizeof(T) * per_direction)));
    const auto widths = f.p.widths();
    double flops = 0;
    for (index begin = 0; begin < n; begin += chunk) flops += hydra::bench::hvp_flops(widths, kBatch, std::min(chunk, n - begin));
    state.counters["chunks"] = static_cast<double>((n + chunk - 1) / chunk);
    state.counters["GFLOP/s"] = giga_rate(flops, it);
  } else {
    state.counters["bytes/s"] = byte_rate(hessian_free_bytes(n, P), it);
  }
}
void BM_HessianFreeStep(benchmark::State& state) { tracker_step<hydra::HessianFree>(state); }
void BM_ExactStep(benchmark::State& state) { tracker_step<hydra::Exact>(state); }


// ---- every sample tracked: lazy against eager --------------------------------------------------

/// All n samples tracked; step t's batch is samples 64t .. 64t + 63 (mod n), so every step touches
/// fresh rows as an epoch does. state.range(0) = n, range(1) = H, range(2) = 1 for lazy.
struct track_all_fixture {
  problem p;
  hydra::hypergradient_tracker<model_type, loss_type, hydra::HessianFree> tracker;
  std::vector<index> batch;
  index step = 0;
  track_all_fixture(index n, index hidden, hydra::update_mode mode)
      : p(hidden), tracker(p.model, p.loss, first(n), n, kMomentum, kWeightDecay, {.update = mode}),
        batch(static_cast<std::size_t>(kBatch)) {}
  hydra::step_context<T, B> next() {
    const index n = tracker.tracked_count();
    for (index b = 0; b < kBatch; ++b) batch[static_cast<std::size_t>(b)] = (step * kBatch + b) % n;
    auto ctx = p.context(step++);
    ctx.batch = batch;
    return ctx;
  }
};

void BM_TrackAllStep(benchmark::State& state) {
  const index n = state.range(0);
  const bool lazy = state.range(2) != 0;
  bool fresh = false;
  auto& f = fixture<track_all_fixture>(key_of("track-all", n, state.range(1), state.range(2)), fresh, n,
                                       state.range(1), lazy ? hydra::update_mode::lazy : hydra::update_mode::eager);
  if (fresh)  // one pass over all rows first, so that lazy steps meet written (not zero) states
    for (index t = 0; t < (n + kBatch - 1) / kBatch; ++t) f.tracker.before_update(f.next());
  for (auto _ : state) {
    f.tracker.before_update(f.next());
    benchmark::ClobberMemory();
  }
  state.counters["params"] = static_cast<double>(f.p.parameters());
  state.counters["steps/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["groups"] = static_cast<double>(f.tracker.pending_groups());
}

/// Reading a lazy tracker: every state brought to the current step (one pass over both states).
void BM_TrackAllRead(benchmark::State& state) {
  const index n = state.range(0);
  bool fresh = false;
  auto& f = fixture<track_all_fixture>(key_of("track-all", n, state.range(1), 1), fresh, n, state.range(1),
                                       hydra::update_mode::lazy);
  for (auto _ : state) {
    state.PauseTiming();
    f.tracker.before_update(f.next());  // leaves 64 rows current and the rest one step behind
    state.ResumeTiming();
    benchmark::DoNotOptimize(f.tracker.hypergradients().data);
  }
  state.counters["bytes/s"] =
      byte_rate(4.0 * static_cast<double>(n * f.p.parameters()) * sizeof(T), state.iterations());
}

// ---- references ---------------------------------------------------------------------------------

/// n × |w| states and min(n, B) gradient rows for the bare update kernel.
struct kernel_fixture {
  hydra::matrix<T, B> dv, grad, sources;
  std::vector<index> rows;
  std::vector<T> weights;
  kernel_fixture(index n, index parameters)
      : dv(n, parameters), grad(n, parameters), sources(kBatch, parameters), rows(static_cast<std::size_t>(n), -1),
        weights(static_cast<std::size_t>(n), T(0)) {
    fill(sources.flat(), 3, T(1e-3));
    for (index r = 0; r < std::min(n, kBatch); ++r) {
      rows[static_cast<std::size_t>(r)] = r;
      weights[static_cast<std::size_t>(r)] = static_cast<T>(kTrainingSetSize) / static_cast<T>(kBatch);
    }
  }
};

/// |w| of Mlp 784→H→10: 784·H + H + H·10 + 10.
constexpr index mlp_parameters(index hidden) { return 795 * hidden + 10; }

/// The bare update kernel that a HessianFree step calls once: cpu::hypergradient_update on n × |w|
/// states with the same min(n, B) gradient rows, without the tracker (no per-sample gradients, no
/// batch bookkeeping; the kernel's fused finiteness check included).
void BM_UpdateKernel(benchmark::State& state) {
  const index n = state.range(0);
  const index P = mlp_parameters(state.range(1));
  bool fresh = false;
  auto& f = fixture<kernel_fixture>(key_of("kernel", n, P), fresh, n, P);
  for (auto _ : state) {
    B::hypergradient_update(kMomentum, kWeightDecay, kLearningRate, hydra::matrix_view<const T>{}, f.rows.data(),
                            f.weights.data(), std::as_const(f.sources).view(), f.dv.view(), f.grad.view());
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(f.grad.data());
  state.counters["bytes/s"] = byte_rate(hessian_free_bytes(n, P), state.iterations());
}

/// cpu::all_finite over both n × |w| states: what a separate finiteness scan after the update would
/// add to each step (the fused check in hypergradient_update makes it unnecessary; read-only, 2·n·|w|·sizeof(T) bytes, counted in bytes/s).
void BM_AllFinite(benchmark::State& state) {
  const index n = state.range(0);
  const index P = mlp_parameters(state.range(1));
  bool fresh = false;
  auto& f = fixture<kernel_fixture>(key_of("kernel", n, P), fresh, n, P);
  for (auto _ : state) {
    bool ok = B::all_finite(std::as_const(f.grad).flat()) && B::all_finite(std::as_const(f.dv).flat());
    benchmark::DoNotOptimize(ok);
  }
  state.counters["bytes/s"] = byte_rate(2.0 * static_cast<double>(n * P) * sizeof(T), state.iterations());
}

/// Source and destination of 2·n·|w| floats each.
struct copy_fixture {
  hydra::matrix<T, B> src, dst;
  copy_fixture(index n, index parameters) : src(2 * n, parameters), dst(2 * n, parameters) { fill(src.flat(), 4); }
};

/// Memory-bandwidth reference: copy 2·n·|w| floats into another buffer, i.e. 4·n·|w| floats read
/// plus written, the HessianFree state traffic (without its gradient rows) of the same n and |w|.
/// `bytes/s` counts read + written bytes, as the tracker's counter does.
template <bool UseMemcpy>
void copy_reference(benchmark::State& state) {
  const index n = state.range(0);
  const index P = mlp_parameters(state.range(1));
  bool fresh = false;
  auto& f = fixture<copy_fixture>(key_of("copy", n, P), fresh, n, P);
  for (auto _ : state) {
    if constexpr (UseMemcpy) std::memcpy(f.dst.data(), f.src.data(), static_cast<std::size_t>(f.src.size()) * sizeof(T));
    else B::copy(std::as_const(f.src).view(), f.dst.view());
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(f.dst.data());
  state.counters["bytes/s"] = byte_rate(4.0 * static_cast<double>(n * P) * sizeof(T), state.iterations());
}
void BM_Memcpy(benchmark::State& state) { copy_reference<true>(state); }
void BM_CpuCopy(benchmark::State& state) { copy_reference<false>(state); }

/// model.gradient: one mean gradient of the batch, the unit for an Exact direction's cost.
void BM_MeanGradient(benchmark::State& state) {
  problem p(state.range(0));
  hydra::vector<T, B> grad(p.parameters());
  for (auto _ : state) {
    T value = p.model.gradient(std::as_const(p.w).view(), std::as_const(p.x).view(), p.y(), p.loss, grad.view());
    benchmark::DoNotOptimize(value);
    benchmark::ClobberMemory();
  }
  const auto widths = p.widths();
  state.counters["GFLOP/s"] = giga_rate(hydra::bench::gradient_flops(widths, kBatch), state.iterations());
}

/// model.per_sample_gradients of the whole batch (B × |w|), which every step with a tracked sample
/// in the batch computes.
void BM_PerSampleGradients(benchmark::State& state) {
  problem p(state.range(0));
  hydra::matrix<T, B> grads(kBatch, p.parameters());
  p.model.per_sample_gradients(std::as_const(p.w).view(), std::as_const(p.x).view(), p.y(), p.loss, grads.view());
  for (auto _ : state) {
    T value = p.model.per_sample_gradients(std::as_const(p.w).view(), std::as_const(p.x).view(), p.y(), p.loss,
                                           grads.view());
    benchmark::DoNotOptimize(value);
    benchmark::ClobberMemory();
  }
  state.counters["bytes/s"] =
      byte_rate(static_cast<double>(kBatch * p.parameters()) * sizeof(T), state.iterations());
}

/// model.hessian_vector_products with k = state.range(0) directions in one call (Exact's main cost).
void BM_HessianVectorProducts(benchmark::State& state) {
  const index k = state.range(0);
  problem p(state.range(1));
  hydra::matrix<T, B> directions(k, p.parameters()), products(k, p.parameters());
  fill(directions.flat(), 5, T(1e-2));
  p.model.hessian_vector_products(std::as_const(p.w).view(), std::as_const(p.x).view(), p.y(), p.loss,
                                  std::as_const(directions).view(), products.view());
  for (auto _ : state) {
    p.model.hessian_vector_products(std::as_const(p.w).view(), std::as_const(p.x).view(), p.y(), p.loss,
                                    std::as_const(directions).view(), products.view());
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(products.data());
  const auto widths = p.widths();
  state.counters["GFLOP/s"] = giga_rate(hydra::bench::hvp_flops(widths, kBatch, k), state.iterations());
}

// ---- registration -------------------------------------------------------------------------------
// Names read "BM_HessianFreeStep/n:256/H:128/check:1". The largest case, HessianFree n = 4096 at
// H = 128, holds 2·4096·101 770 floats = 3.33 GB of states; the references stop at n = 1024
// (a copy reference holds twice the states' bytes: 1.67 GB there), since beyond the 32 MiB L3
// every n ≥ 256 is already a DRAM stream. Exact stops at n = 1024 (about 0.7 s a step at H = 128
// with AVX2, 4 HVP chunks). The whole binary runs in about a minute.

constexpr std::array<index, 5> kTracked{16, 64, 256, 1024, 4096};

void hessian_free_cases(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "H", "check"})->Unit(benchmark::kMillisecond);
  for (index n : kTracked) b->Args({n, 128, 1});  // (a)
  b->Args({256, 32, 1})->Args({256, 512, 1});     // (b), with (256, 128) above
  // check_finite = false: the same work (the kernel always computes the check; the option only
  // decides whether a non-finite state throws), kept to show that the check costs nothing.
  for (index n : kTracked) b->Args({n, 128, 0});
  b->Args({256, 32, 0})->Args({256, 512, 0});
}
void exact_cases(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "H", "check"})->Unit(benchmark::kMillisecond);
  for (index n : kTracked)
    if (n <= 1024) b->Args({n, 128, 1});
  b->Args({256, 32, 1})->Args({256, 512, 1});
}
/// (n, H) of both sweeps up to n = 1024.
void state_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "H"})->Unit(benchmark::kMillisecond);
  for (index n : kTracked)
    if (n <= 1024) b->Args({n, 128});
  b->Args({256, 32})->Args({256, 512});
}
void model_sizes(benchmark::internal::Benchmark* b) {
  b->ArgName("H")->Arg(32)->Arg(128)->Arg(512)->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_HessianFreeStep)->Apply(hessian_free_cases);
BENCHMARK(BM_ExactStep)->Apply(exact_cases);
BENCHMARK(BM_UpdateKernel)->Apply(state_sizes);
BENCHMARK(BM_AllFinite)->ArgNames({"n", "H"})->Args({16, 128})->Args({256, 128})->Args({1024, 128})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Memcpy)->Apply(state_sizes);
BENCHMARK(BM_CpuCopy)->Apply(state_sizes);
BENCHMARK(BM_MeanGradient)->Apply(model_sizes);
BENCHMARK(BM_PerSampleGradients)->Apply(model_sizes);
// Every sample tracked, n = 4096 at H = 32 (2 · 4096 · 25 450 floats = 0.83 GB of states): the
// eager step streams all of them, the lazy step 64 rows; the predicted ratio of their state
// traffic is n / B = 64.
BENCHMARK(BM_TrackAllStep)->ArgNames({"n", "H", "lazy"})->Args({4096, 32, 0})->Args({4096, 32, 1})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TrackAllRead)->ArgNames({"n", "H"})->Args({4096, 32})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HessianVectorProducts)->ArgNames({"k", "H"})->Args({256, 128})->Unit(benchmark::kMillisecond);

} // namespace
