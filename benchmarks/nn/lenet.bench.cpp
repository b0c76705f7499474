// Benchmarks of the paper's LeNet-5 (include/hydra/nn/lenet.hpp, 61,706 parameters) on hydra::cpu at
// batch B = 64: per-sample gradients, the mean gradient, one SGD training step (gradient + momentum
// update: what benchmarks/pytorch_lenet.py times in PyTorch), and batched Hessian-vector products
// with k directions. Results, and the comparison with PyTorch: docs/performance.md, "LeNet-5 (CPU)".

#include <benchmark/benchmark.h>

#include <array>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/nn/lenet.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/optim/sgd.hpp"
#include "support/flops.hpp"
#include "support/inputs.hpp"
#include "support/problem.hpp"

namespace {

using hydra::index;
using hydra::bench::giga_rate;
using hydra::bench::per_second;

constexpr index kBatch = 64;
constexpr index kClasses = 10;

/// Multiply-adds per sample of LeNet-5's layers with parameters:
/// conv1 (6·28·28 outputs × 1·5·5), conv2 (16·10·10 × 6·5·5), then Dense 400→120→84→10.
constexpr std::array<double, 5> kMacs{6.0 * 28 * 28 * 25, 16.0 * 10 * 10 * 150, 400.0 * 120, 120.0 * 84, 84.0 * 10};

template <class T>
struct problem : hydra::bench::classification_batch<hydra::LeNet5<T>> {
  problem() : hydra::bench::classification_batch<hydra::LeNet5<T>>(hydra::LeNet5<T>(), kBatch) {}
};

template <class T>
void BM_LeNetPerSampleGradients(benchmark::State& state) {
  problem<T> p;
  hydra::matrix<T, hydra::cpu> grads(kBatch, p.model.parameter_count());
  p.model.per_sample_gradients(p.w.view(), p.x.view(), p.y(), p.loss, grads.view());  // sizes the workspace
  for (auto _ : state) {
    T value = p.model.per_sample_gradients(p.w.view(), p.x.view(), p.y(), p.loss, grads.view());
    benchmark::DoNotOptimize(value);
    benchmark::DoNotOptimize(grads.data());
    benchmark::ClobberMemory();
  }
  state.counters["samples/s"] = per_second(kBatch, state.iterations());
  state.counters["GFLOP/s"] = giga_rate(hydra::bench::gradient_flops(kMacs, kBatch), state.iterations());
}

template <class T>
void BM_LeNetGradient(benchmark::State& state) {
  problem<T> p;
  hydra::vector<T, hydra::cpu> grad(p.model.parameter_count());
  p.model.gradient(p.w.view(), p.x.view(), p.y(), p.loss, grad.view());
  for (auto _ : state) {
    T value = p.model.gradient(p.w.view(), p.x.view(), p.y(), p.loss, grad.view());
    benchmark::DoNotOptimize(value);
    benchmark::DoNotOptimize(grad.data());
    benchmark::ClobberMemory();
  }
  state.counters["samples/s"] = per_second(kBatch, state.iterations());
  state.counters["GFLOP/s"] = giga_rate(hydra::bench::gradient_flops(kMacs, kBatch), state.iterations());
}

/// One step of training as the trainer takes it: the mean gradient, then SGD with momentum 0.9 and
/// weight decay 2e-5 (the paper's Fashion-MNIST settings). Tiny rate so the weights stay put.
template <class T>
void BM_LeNetTrainingStep(benchmark::State& state) {
  problem<T> p;
  hydra::vector<T, hydra::cpu> grad(p.model.parameter_count());
  hydra::SGD<T> optimizer(p.model.parameter_count(), {.momentum = 0.9, .weight_decay = 2e-5});
  for (auto _ : state) {
    T value = p.model.gradient(p.w.view(), p.x.view(), p.y(), p.loss, grad.view());
    optimizer.step(p.w.view(), grad.view(), T(1e-6));
    benchmark::DoNotOptimize(value);
    benchmark::DoNotOptimize(p.w.data());
    benchmark::ClobberMemory();
  }
  state.counters["samples/s"] = per_second(kBatch, state.iterations());
}

template <class T>
void BM_LeNetHessianVectorProducts(benchmark::State& state) {
  const index k = state.range(0);
  problem<T> p;
  const index P = p.model.parameter_count();
  hydra::matrix<T, hydra::cpu> directions(k, P);
  hydra::matrix<T, hydra::cpu> products(k, P);
  hydra::bench::fill(directions.flat(), 3);
  p.model.hessian_vector_products(p.w.view(), p.x.view(), p.y(), p.loss, directions.view(), products.view());
  for (auto _ : state) {
    p.model.hessian_vector_products(p.w.view(), p.x.view(), p.y(), p.loss, directions.view(), products.view());
    benchmark::DoNotOptimize(products.data());
    benchmark::ClobberMemory();
  }
  state.counters["directions/s"] = per_second(static_cast<double>(k), state.iterations());
  state.counters["GFLOP/s"] = giga_rate(hydra::bench::hvp_flops(kMacs, kBatch, k), state.iterations());
}

BENCHMARK_TEMPLATE(BM_LeNetPerSampleGradients, float)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_LeNetPerSampleGradients, double)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_LeNetGradient, float)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_LeNetTrainingStep, float)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_LeNetHessianVectorProducts, float)->ArgName("k")->Arg(1)->Arg(8)->Arg(32)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_LeNetHessianVectorProducts, double)->ArgName("k")->Arg(8)->Unit(benchmark::kMillisecond);

} // namespace
