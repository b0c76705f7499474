// Benchmarks of the dense-model derivatives in include/hydra/nn/network.hpp on hydra::cpu, in float
// and double: per-sample gradients, batched Hessian-vector products (k directions at once), and,
// as references measured in the same run, the mean gradient and a plain GEMM of the shape that
// dominates the HVP. Results and their reading: docs/performance.md.
//
// The model is the Fashion-MNIST MLP, Dense(784→256) → ReLU → Dense(256→10), with
// SoftmaxCrossEntropy, at batch B = 64. Inputs are deterministic (a fixed formula, no RNG state).

#include <benchmark/benchmark.h>

#include <array>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "support/flops.hpp"
#include "support/inputs.hpp"
#include "support/problem.hpp"

namespace {

using hydra::index;
using hydra::bench::fill;
using hydra::bench::giga_rate;

constexpr index kBatch = 64;
constexpr index kInputs = 784;
constexpr index kHidden = 256;
constexpr index kClasses = 10;
/// Widths of the Dense chain 784 → 256 → 10.
constexpr std::array<index, 3> kWidths{kInputs, kHidden, kClasses};

/// The model, its parameters and one batch, built once per benchmark run (outside the timed loop).
/// Rates are per CPU second of this (single-threaded) process, Google Benchmark's default, which
/// is less disturbed than wall time when the machine is shared.
template <class T>
struct problem : hydra::bench::classification_batch<hydra::Mlp<T>> {
  problem()
      : hydra::bench::classification_batch<hydra::Mlp<T>>(
            hydra::Mlp<T>(kInputs, {kHidden}, kClasses, hydra::activation::relu), kBatch) {}
};

/// FLOP counts of this model (formulas and their derivation: benchmarks/support/flops.hpp).
inline double hvp_flops(index batch, index k) { return hydra::bench::hvp_flops(kWidths, batch, k); }
inline double gradient_flops(index batch) { return hydra::bench::gradient_flops(kWidths, batch); }

// ---- per-sample gradients: B × |w| rows, each sample's own gradient -----------------------------
template <class T>
void BM_PerSampleGradients(benchmark::State& state) {
  problem<T> p;
  const index P = p.model.parameter_count();
  hydra::matrix<T, hydra::cpu> grads(kBatch, P);
  p.model.per_sample_gradients(p.w.view(), p.x.view(), p.y(), p.loss, grads.view());  // sizes the workspace
  for (auto _ : state) {
    T value = p.model.per_sample_gradients(p.w.view(), p.x.view(), p.y(), p.loss, grads.view());
    benchmark::DoNotOptimize(value);
    benchmark::DoNotOptimize(grads.data());
    benchmark::ClobberMemory();
  }
  const auto it = state.iterations();
  state.counters["samples/s"] = benchmark::Counter(static_cast<double>(kBatch * it), benchmark::Counter::kIsRate);
  state.counters["bytes/s"] = benchmark::Counter(static_cast<double>(kBatch * P) * sizeof(T) * static_cast<double>(it),
                                                 benchmark::Counter::kIsRate, benchmark::Counter::OneK::kIs1024);
}

// ---- mean gradient (reference for per-sample gradients) ---------------------------------------
template <class T>
void BM_Gradient(benchmark::State& state) {
  problem<T> p;
  hydra::vector<T, hydra::cpu> grad(p.model.parameter_count());
  p.model.gradient(p.w.view(), p.x.view(), p.y(), p.loss, grad.view());  // sizes the workspace
  for (auto _ : state) {
    T value = p.model.gradient(p.w.view(), p.x.view(), p.y(), p.loss, grad.view());
    benchmark::DoNotOptimize(value);
    benchmark::DoNotOptimize(grad.data());
    benchmark::ClobberMemory();
  }
  const auto it = state.iterations();
  state.counters["samples/s"] = benchmark::Counter(static_cast<double>(kBatch * it), benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = giga_rate(gradient_flops(kBatch), it);
}

// ---- batched Hessian-vector products, k = state.range(0) directions ---------------------------
template <class T>
void BM_HessianVectorProducts(benchmark::State& state) {
  const index k = state.range(0);
  problem<T> p;
  const index P = p.model.parameter_count();
  hydra::matrix<T, hydra::cpu> directions(k, P);
  hydra::matrix<T, hydra::cpu> products(k, P);
  fill(directions.flat(), 3);
  // One untimed call sizes the model's workspace (tangents and R{δ}, ~0.2 GB at k = 256 in double),
  // so the loop measures the steady state a caller sees when it reuses the model.
  p.model.hessian_vector_products(p.w.view(), p.x.view(), p.y(), p.loss, directions.view(), products.view());
  for (auto _ : state) {
    p.model.hessian_vector_products(p.w.view(), p.x.view(), p.y(), p.loss, directions.view(), products.view());
    benchmark::DoNotOptimize(products.data());
    benchmark::ClobberMemory();
  }
  const auto it = state.iterations();
  state.counters["directions/s"] = benchmark::Counter(static_cast<double>(k * it), benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = giga_rate(hvp_flops(kBatch, k), it);
}

// ---- plain GEMM of the dominant HVP shape: C (k·B × 256) = A (k·B × 784) · Wᵀ (784 × 256) -----
template <class T>
void BM_Gemm(benchmark::State& state) {
  const index rows = state.range(0) * kBatch;
  hydra::matrix<T, hydra::cpu> a(rows, kInputs);
  hydra::matrix<T, hydra::cpu> weight(kHidden, kInputs);
  hydra::matrix<T, hydra::cpu> c(rows, kHidden);
  fill(a.flat(), 4);
  fill(weight.flat(), 5, T(0.05));
  for (auto _ : state) {
    hydra::cpu::gemm(hydra::transpose::no, hydra::transpose::yes, T(1), a.view(), weight.view(), T(0), c.view());
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] =
      giga_rate(2.0 * static_cast<double>(rows) * static_cast<double>(kHidden * kInputs), state.iterations());
}

/// k ∈ {1, 32, 256}; names read "BM_HessianVectorProducts<float>/k:32" (the smoke test in
/// benchmarks/CMakeLists.txt filters on "<float>/k:1$").
void directions(benchmark::internal::Benchmark* b) {
  b->ArgName("k")->Arg(1)->Arg(32)->Arg(256)->Unit(benchmark::kMillisecond);
}

BENCHMARK_TEMPLATE(BM_PerSampleGradients, float)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_PerSampleGradients, double)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_Gradient, float)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_Gradient, double)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_HessianVectorProducts, float)->Apply(directions);
BENCHMARK_TEMPLATE(BM_HessianVectorProducts, double)->Apply(directions);
BENCHMARK_TEMPLATE(BM_Gemm, float)->Apply(directions);
BENCHMARK_TEMPLATE(BM_Gemm, double)->Apply(directions);

} // namespace
