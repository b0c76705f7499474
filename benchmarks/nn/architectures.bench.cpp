// Benchmarks of the convolutional networks of issue 17 on hydra::cpu in float: the BatchNorm2d layer
// alone (include/hydra/nn/batch_norm.hpp), and DenseNet40 (176,122 parameters) and MobileNetV2
// (2,236,682) at batch B = 64 on 3 × 32 × 32 inputs: forward, mean gradient, per-sample gradients and
// batched Hessian-vector products, in both batch-norm settings (set_batch_norm_statistics):
//   batch   the training step's exact derivatives; samples are coupled, so per-sample gradients are
//           one backward pass per sample (network.hpp, coupled_per_sample_gradients)
//   running the eval-mode approximation; samples are independent, one batched pass
// and, as references measured in the same run, the GEMMs of the same shapes: every first-order
// GEMM of each network's convolutions and Dense layer replayed alone through hydra::cpu::gemm
// (BM_LayerGemms: the GEMM FLOPs of a mean gradient, without im2col, batch norms, activations or
// layout swaps), and single GEMMs of the dominant im2col shapes (BM_ConvGemm). Results and their
// reading: docs/performance.md, "DenseNet-40 and MobileNetV2 (CPU)".
//
// Rates are per CPU second of this single-threaded process. Inputs are deterministic (a hash
// formula, pixels in [0, 1)), parameters in PyTorch's default ranges (batch norms γ = 1, β = 0).
// The running statistics are those of the benchmark's own batch (one batch-mode forward with
// momentum 1), so that running-mode activations have the scale of training: with the initial
// running_var = 1 they shrink layer by layer towards float denormals in MobileNetV2's 52 layers.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/nn/batch_norm.hpp"
#include "hydra/nn/batch_norm_state.hpp"
#include "hydra/nn/conv2d.hpp"
#include "hydra/nn/dense.hpp"
#include "hydra/nn/densenet.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/mobilenet.hpp"
#include "support/flops.hpp"
#include "support/inputs.hpp"
#include "support/problem.hpp"

namespace {

using hydra::index;
using hydra::bench::byte_rate;
using hydra::bench::fill;
using hydra::bench::giga_rate;
using hydra::bench::per_second;
using T = float;
using B = hydra::cpu;
using statistics = hydra::batch_norm_statistics;

constexpr index kBatch = 64;

/// state.range(0) of every case with a batch-norm setting: 1 = batch statistics, 0 = running.
statistics statistics_of(std::int64_t arg) { return arg != 0 ? statistics::batch : statistics::running; }

// ---- BatchNorm2d alone ------------------------------------------------------------------------
//
// One layer on B = 64 samples of C × side × side, k = 1 direction for the R-passes. The bytes/s
// counter counts the arrays of B·C·side² values that the pass's backend calls read or write
// (batch_norm.hpp: each channel_sums reads its operands — one array when both are the same — and
// each channel_combine reads its array operands, out too when beta ≠ 0, and writes out):
//
//   pass              batch statistics                        running statistics
//   forward           8: −μ, x − μ, σ², ·s, γx̂ + β            4: x̂, γx̂ + β
//   backward (d_x, γβ)  6: Σgx̂, Σg, d_x                        5: Σgx̂, Σg, d_x
//   tangent           6: m1, mR, R{y}                         3: R{y}
//   second_backward   18: seven channel means, two combines   8: three sums, one combine
//
// The coefficient arrays (1 × C, k × C) are not counted. The copy reference moves one array
// (std::memcpy: read + written, 2 arrays) of the same size.

enum class bn_pass { forward, backward, tangent, second_backward };

constexpr double bn_arrays(bn_pass pass, statistics s) {
  const bool batch = s == statistics::batch;
  switch (pass) {
    case bn_pass::forward: return batch ? 8 : 4;
    case bn_pass::backward: return batch ? 6 : 5;
    case bn_pass::tangent: return batch ? 6 : 3;
    case bn_pass::second_backward: return batch ? 18 : 8;
  }
  return 0;
}

struct bn_fixture {
  hydra::BatchNorm2d<T, B> bn;
  index n;  // values per array: B·C·side²
  hydra::vector<T, B> w, grad;
  hydra::matrix<T, B> x, y, d_y, d_x, dir, r_x, r_y, r_d_y, r_d_x, hv;

  bn_fixture(index channels, index side, statistics s)
      : bn(channels, side, side), n(kBatch * channels * side * side), w(2 * channels), grad(2 * channels),
        x(kBatch, channels * side * side), y(kBatch, channels * side * side), d_y(kBatch, channels * side * side),
        d_x(kBatch, channels * side * side), dir(1, 2 * channels), r_x(kBatch, channels * side * side),
        r_y(kBatch, channels * side * side), r_d_y(kBatch, channels * side * side),
        r_d_x(kBatch, channels * side * side), hv(1, 2 * channels) {
    fill(w.view(), 1, T(0.5));
    fill(x.flat(), 2);
    fill(d_y.flat(), 3, T(1e-3));
    fill(dir.flat(), 4, T(1e-2));
    fill(r_x.flat(), 5, T(1e-2));
    fill(r_d_y.flat(), 6, T(1e-3));
    if (s == statistics::running) {  // the running estimates of this batch, as after training
      bn.forward(w.data(), std::as_const(x).view(), y.view());
      std::vector<T> mean(static_cast<std::size_t>(channels), T(0)), var(static_cast<std::size_t>(channels), T(1));
      for (index b = 0; b < kBatch; ++b)
        for (index c = 0; c < channels; ++c)
          for (index p = 0; p < side * side; ++p) mean[static_cast<std::size_t>(c)] += x.data()[b * x.cols() + c * side * side + p];
      for (auto& m : mean) m /= static_cast<T>(kBatch * side * side);
      bn.set_running_statistics(mean, var);
    }
    bn.set_statistics(s);
    bn.forward(w.data(), std::as_const(x).view(), y.view());  // prepares every other pass
  }
};

template <bn_pass Pass>
void batch_norm_case(benchmark::State& state) {
  const statistics s = statistics_of(state.range(0));
  bn_fixture f(state.range(1), state.range(2), s);
  const auto cx = std::as_const(f.x).view();
  const auto cy = std::as_const(f.y).view();
  for (auto _ : state) {
    if constexpr (Pass == bn_pass::forward) {
      f.bn.forward(f.w.data(), cx, f.y.view());
    } else if constexpr (Pass == bn_pass::backward) {
      f.bn.backward(f.w.data(), cx, cy, std::as_const(f.d_y).view(), f.d_x.view(), f.grad.data());
    } else if constexpr (Pass == bn_pass::tangent) {
      f.bn.tangent(f.w.data(), std::as_const(f.dir).view(), cx, cy, std::as_const(f.r_x).view(), f.r_y.view());
    } else {
      f.bn.second_backward(f.w.data(), std::as_const(f.dir).view(), cx, cy, std::as_const(f.r_x).view(),
                           std::as_const(f.d_y).view(), std::as_const(f.r_d_y).view(), f.r_d_x.view(), f.hv.view());
    }
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(f.y.data());
  benchmark::DoNotOptimize(f.d_x.data());
  benchmark::DoNotOptimize(f.r_d_x.data());
  state.counters["bytes/s"] = byte_rate(bn_arrays(Pass, s) * static_cast<double>(f.n) * sizeof(T), state.iterations());
}
void BM_BatchNormForward(benchmark::State& state) { batch_norm_case<bn_pass::forward>(state); }
void BM_BatchNormBackward(benchmark::State& state) { batch_norm_case<bn_pass::backward>(state); }
void BM_BatchNormTangent(benchmark::State& state) { batch_norm_case<bn_pass::tangent>(state); }
void BM_BatchNormSecondBackward(benchmark::State& state) { batch_norm_case<bn_pass::second_backward>(state); }

/// std::memcpy of one array of B·C·side² floats: bytes/s counts read + written (2 arrays).
void BM_BatchNormCopyReference(benchmark::State& state) {
  const index n = kBatch * state.range(0) * state.range(1) * state.range(1);
  hydra::matrix<T, B> src(1, n), dst(1, n);
  fill(src.flat(), 7);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), static_cast<std::size_t>(n) * sizeof(T));
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(dst.data());
  state.counters["bytes/s"] = byte_rate(2.0 * static_cast<double>(n) * sizeof(T), state.iterations());
}

// ---- the networks ---------------------------------------------------------------------------

using densenet40 = hydra::DenseNet40<T, B>;
using mobilenet_v2 = hydra::MobileNetV2<T, B>;

/// Momentum 1: one update of the running statistics sets them to the batch's.
constexpr hydra::batch_norm_options kSetOnce{.momentum = 1.0, .eps = 1e-5};

template <class Net>
Net make_network();
template <>
densenet40 make_network<densenet40>() {
  return densenet40(kSetOnce);
}
template <>
mobilenet_v2 make_network<mobilenet_v2>() {
  return mobilenet_v2(hydra::mobilenet_v2_options{.batch_norm = kSetOnce});
}

/// Multiply-adds per sample of each layer with parameters (benchmarks/support/flops.hpp).
template <class Net>
std::vector<double> macs_of();
template <>
std::vector<double> macs_of<densenet40>() {
  return hydra::bench::densenet_macs();
}
template <>
std::vector<double> macs_of<mobilenet_v2>() {
  return hydra::bench::mobilenet_v2_macs();
}

/// The model, parameters and one batch (support/problem.hpp), its running statistics set from
/// that batch, and every batch norm on `s`.
template <class Net>
struct network_problem : hydra::bench::classification_batch<Net> {
  network_problem(index batch, statistics s) : hydra::bench::classification_batch<Net>(make_network<Net>(), batch) {
    hydra::matrix<T, B> logits(batch, this->model.output_size());
    {
      hydra::batch_norm_scope<Net> training(this->model, statistics::batch);
      this->model.forward(std::as_const(this->w).view(), std::as_const(this->x).view(), logits.view());
      training.update_running_statistics();
    }
    hydra::set_batch_norm_statistics(this->model, s);
  }
  auto cw() const { return std::as_const(this->w).view(); }
  auto cx() const { return std::as_const(this->x).view(); }
};

template <class Net>
void BM_NetForward(benchmark::State& state) {
  network_problem<Net> p(kBatch, statistics_of(state.range(0)));
  hydra::matrix<T, B> logits(kBatch, p.model.output_size());
  p.model.forward(p.cw(), p.cx(), logits.view());
  for (auto _ : state) {
    p.model.forward(p.cw(), p.cx(), logits.view());
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(logits.data());
  const auto macs = macs_of<Net>();
  state.counters["samples/s"] = per_second(kBatch, state.iterations());
  state.counters["GFLOP/s"] =
      giga_rate(2.0 * kBatch * std::accumulate(macs.begin(), macs.end(), 0.0), state.iterations());
}

template <class Net>
void BM_NetGradient(benchmark::State& state) {
  network_problem<Net> p(kBatch, statistics_of(state.range(0)));
  hydra::vector<T, B> grad(p.model.parameter_count());
  p.model.gradient(p.cw(), p.cx(), p.y(), p.loss, grad.view());
  for (auto _ : state) {
    T value = p.model.gradient(p.cw(), p.cx(), p.y(), p.loss, grad.view());
    benchmark::DoNotOptimize(value);
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(grad.data());
  state.counters["samples/s"] = per_second(kBatch, state.iterations());
  state.counters["GFLOP/s"] = giga_rate(hydra::bench::gradient_flops(macs_of<Net>(), kBatch), state.iterations());
}

/// range(0): batch statistics (1) or running (0); range(1): the batch size b. In batch mode this is
/// one forward and b backward passes over the whole batch (GFLOP/s from
/// coupled_per_sample_gradient_flops); in running mode one batched pass.
template <class Net>
void BM_NetPerSampleGradients(benchmark::State& state) {
  const statistics s = statistics_of(state.range(0));
  const index batch = state.range(1);
  network_problem<Net> p(batch, s);
  hydra::matrix<T, B> grads(batch, p.model.parameter_count());
  p.model.per_sample_gradients(p.cw(), p.cx(), p.y(), p.loss, grads.view());
  for (auto _ : state) {
    T value = p.model.per_sample_gradients(p.cw(), p.cx(), p.y(), p.loss, grads.view());
    benchmark::DoNotOptimize(value);
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(grads.data());
  const auto macs = macs_of<Net>();
  const double flops = s == statistics::batch ? hydra::bench::coupled_per_sample_gradient_flops(macs, batch)
                                              : hydra::bench::gradient_flops(macs, batch);
  state.counters["samples/s"] = per_second(static_cast<double>(batch), state.iterations());
  state.counters["GFLOP/s"] = giga_rate(flops, state.iterations());
  state.counters["bytes/s"] =
      byte_rate(static_cast<double>(batch * p.model.parameter_count()) * sizeof(T), state.iterations());
}

/// range(0): batch statistics (1) or running (0); range(1): k directions in one call.
template <class Net>
void BM_NetHessianVectorProducts(benchmark::State& state) {
  const index k = state.range(1);
  network_problem<Net> p(kBatch, statistics_of(state.range(0)));
  const index P = p.model.parameter_count();
  hydra::matrix<T, B> directions(k, P), products(k, P);
  fill(directions.flat(), 8, T(1e-2));
  p.model.hessian_vector_products(p.cw(), p.cx(), p.y(), p.loss, std::as_const(directions).view(), products.view());
  for (auto _ : state) {
    p.model.hessian_vector_products(p.cw(), p.cx(), p.y(), p.loss, std::as_const(directions).view(),
                                    products.view());
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(products.data());
  state.counters["directions/s"] = per_second(static_cast<double>(k), state.iterations());
  state.counters["GFLOP/s"] = giga_rate(hydra::bench::hvp_flops(macs_of<Net>(), kBatch, k), state.iterations());
  state.counters["tangent MB"] =
      static_cast<double>(p.model.tangent_elements_per_direction(kBatch) * k) * sizeof(T) * 1e-6;
}

// ---- GEMMs of the same shapes ------------------------------------------------------------------

/// One im2col GEMM shape of a layer: per group, W_g (M × K) times the patches (K × N), N = B·Ho·Wo.
struct layer_shape {
  index M, K, N, groups;
  bool dense;  // a Dense layer: x (B × K) times Wᵀ (K × M)
};

/// The shapes of the model's Conv2d and Dense layers, in no particular order (the check below
/// compares sums), from the layers themselves.
template <class Net>
std::vector<layer_shape> layer_shapes(Net& model, index batch) {
  std::vector<layer_shape> shapes;
  hydra::for_each_layer<hydra::Conv2d<T, B>>(model, [&](const hydra::Conv2d<T, B>& conv) {
    const auto& g = conv.geometry();
    shapes.push_back({conv.out_channels() / conv.groups(), g.patch_size() / conv.groups(), batch * g.out_pixels(),
                      conv.groups(), false});
  });
  hydra::for_each_layer<hydra::Dense<T, B>>(model, [&](const hydra::Dense<T, B>& dense) {
    shapes.push_back({dense.output_size(), dense.input_size(), batch, 1, true});
  });
  return shapes;
}

/// Every first-order GEMM of a mean gradient, replayed alone at the model's own shapes: per layer
/// and group, forward W_g·cols_g, weight gradient δ_g·cols_gᵀ and, except for the stem (the one layer
/// whose input is 3 × 32 × 32 images), d_cols_g = W_gᵀ·δ_g. Its FLOPs equal gradient_flops of the
/// architecture's count (checked: the case fails otherwise), so the two GFLOP/s compare directly.
template <class Net>
void BM_LayerGemms(benchmark::State& state) {
  auto model = make_network<Net>();
  const auto shapes = layer_shapes(model, kBatch);
  const auto macs = macs_of<Net>();
  // The architecture's count against the built model's layers: the sum, and the hand-computed
  // entry of flops.hpp (DenseNet40 block 1's 3 × 3 convolution).
  double built = 0, largest_k = 0, largest_m = 0, largest_n = 0;
  for (const auto& s : shapes) {
    built += static_cast<double>(s.M * s.K * s.groups) * static_cast<double>(s.N / kBatch);
    largest_k = std::max(largest_k, static_cast<double>(s.K * s.groups));
    largest_m = std::max(largest_m, static_cast<double>(s.M * s.groups));
    largest_n = std::max(largest_n, static_cast<double>(s.N));
    if (s.dense) {  // x and d_x are B × K in the patch buffers, y is B × M in the output buffer
      largest_k = std::max(largest_k, static_cast<double>(s.N));
      largest_n = std::max({largest_n, static_cast<double>(s.K), static_cast<double>(s.M)});
      largest_m = std::max(largest_m, static_cast<double>(s.N));
    }
  }
  const double counted = std::accumulate(macs.begin(), macs.end(), 0.0);
  if (built != counted || (std::is_same_v<Net, densenet40> && macs[2] != 12.0 * 1024 * 48 * 9)) {
    state.SkipWithError("the multiply-add count of flops.hpp does not match the model's layers");
    return;
  }
  const auto stem = std::find_if(shapes.begin(), shapes.end(), [](const layer_shape& s) { return !s.dense && s.K == 27; });
  const auto M = static_cast<index>(largest_m), K = static_cast<index>(largest_k), N = static_cast<index>(largest_n);
  // Inputs (weights, patches, δ) hold small values and are only read; outputs go to their own
  // buffers, so the values stay the same from one iteration to the next.
  hydra::matrix<T, B> weights(M, K), cols(K, N), delta(M, N), out(M, N), weight_grad(M, K), dcols(K, N);
  fill(weights.flat(), 9, T(0.05));
  fill(cols.flat(), 10);
  fill(delta.flat(), 11, T(1e-3));
  const auto in = [](const hydra::matrix<T, B>& m, index r0, index c0, index rows, index cols_) {
    return std::as_const(m).view().row_block(r0, rows).col_block(c0, cols_);
  };
  const auto at = [](hydra::matrix<T, B>& m, index r0, index c0, index rows, index cols_) {
    return m.view().row_block(r0, rows).col_block(c0, cols_);
  };
  const auto no = hydra::transpose::no, yes = hydra::transpose::yes;
  double flops = 0;
  for (auto _ : state) {
    flops = 0;
    for (const auto& s : shapes) {
      const bool below = &s != &*stem;
      if (s.dense) {  // y = x Wᵀ (B × M), ∇W = δᵀ x (M × K), d_x = δ W (B × K)
        B::gemm(no, yes, T(1), in(cols, 0, 0, s.N, s.K), in(weights, 0, 0, s.M, s.K), T(0), at(out, 0, 0, s.N, s.M));
        B::gemm(yes, no, T(1), in(delta, 0, 0, s.N, s.M), in(cols, 0, 0, s.N, s.K), T(0), at(weight_grad, 0, 0, s.M, s.K));
        B::gemm(no, no, T(1), in(delta, 0, 0, s.N, s.M), in(weights, 0, 0, s.M, s.K), T(0), at(dcols, 0, 0, s.N, s.K));
      } else {
        for (index g = 0; g < s.groups; ++g) {  // Conv2d: one GEMM per group on row blocks, as conv2d.hpp
          const auto w = in(weights, g * s.M, 0, s.M, s.K);
          const auto c = in(cols, g * s.K, 0, s.K, s.N);
          const auto d = in(delta, g * s.M, 0, s.M, s.N);
          B::gemm(no, no, T(1), w, c, T(0), at(out, g * s.M, 0, s.M, s.N));
          B::gemm(no, yes, T(1), d, c, T(0), at(weight_grad, g * s.M, 0, s.M, s.K));
          if (below) B::gemm(yes, no, T(1), w, d, T(0), at(dcols, g * s.K, 0, s.K, s.N));
        }
      }
      flops += (below ? 6.0 : 4.0) * static_cast<double>(s.M * s.K * s.groups) * static_cast<double>(s.N);
    }
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(out.data());
  benchmark::DoNotOptimize(weight_grad.data());
  benchmark::DoNotOptimize(dcols.data());
  const double expected = hydra::bench::gradient_flops(macs, kBatch);
  if (std::abs(flops - expected) > 1e-9 * expected) {
    state.SkipWithError("the replayed GEMMs do not add up to gradient_flops");
    return;
  }
  index calls = 0;
  for (const auto& s : shapes) calls += s.groups * 3;
  state.counters["GFLOP/s"] = giga_rate(flops, state.iterations());
  state.counters["gemm calls"] = static_cast<double>(calls - 1);
}

/// One im2col GEMM C (M × N) = W (M × K) · cols (K × N), the forward shape of a convolution with M
/// output channels, K = C·k² and N = B·Ho·Wo.
void BM_ConvGemm(benchmark::State& state) {
  const index M = state.range(0), K = state.range(1), N = state.range(2);
  hydra::matrix<T, B> w(M, K), cols(K, N), out(M, N);
  fill(w.flat(), 12, T(0.05));
  fill(cols.flat(), 13);
  for (auto _ : state) {
    B::gemm(hydra::transpose::no, hydra::transpose::no, T(1), std::as_const(w).view(), std::as_const(cols).view(),
            T(0), out.view());
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(out.data());
  state.counters["GFLOP/s"] = giga_rate(2.0 * static_cast<double>(M * K) * static_cast<double>(N), state.iterations());
}

// ---- registration -----------------------------------------------------------------------------
// Names read "BM_BatchNormForward/batch:1/C:48/side:32" and "BM_NetGradient<densenet40>/batch:1".
// BatchNorm2d shapes: 48 × 32 × 32 (DenseNet-40's bottleneck batch norm in block 1, 12.6 MB per
// array at B = 64) and 132 × 8 × 8 (its head batch norm, 2.2 MB).

void bn_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"batch", "C", "side"})->Unit(benchmark::kMicrosecond);
  for (int batch : {1, 0}) b->Args({batch, 48, 32})->Args({batch, 132, 8});
}
BENCHMARK(BM_BatchNormForward)->Apply(bn_shapes);
BENCHMARK(BM_BatchNormBackward)->Apply(bn_shapes);
BENCHMARK(BM_BatchNormTangent)->Apply(bn_shapes);
BENCHMARK(BM_BatchNormSecondBackward)->Apply(bn_shapes);
BENCHMARK(BM_BatchNormCopyReference)->ArgNames({"C", "side"})->Args({48, 32})->Args({132, 8})->Unit(benchmark::kMicrosecond);

void both_settings(benchmark::internal::Benchmark* b) {
  b->ArgName("batch")->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond);
}
/// Per-sample gradients: running statistics at B = 64 (one batched pass); batch statistics at
/// B = 16 (16 backward passes of the 16-sample batch: B = 64 would be 64 passes of 64, ~16× longer).
void per_sample_settings(benchmark::internal::Benchmark* b) {
  b->ArgNames({"batch", "B"})->Args({0, 64})->Args({1, 16})->Unit(benchmark::kMillisecond);
}
void hvp_settings(benchmark::internal::Benchmark* b) {
  b->ArgNames({"batch", "k"})->Unit(benchmark::kMillisecond);
  for (int batch : {1, 0}) b->Args({batch, 1})->Args({batch, 4});
}

BENCHMARK_TEMPLATE(BM_NetForward, densenet40)->Apply(both_settings);
BENCHMARK_TEMPLATE(BM_NetGradient, densenet40)->Apply(both_settings);
BENCHMARK_TEMPLATE(BM_NetPerSampleGradients, densenet40)->Apply(per_sample_settings);
BENCHMARK_TEMPLATE(BM_NetHessianVectorProducts, densenet40)->Apply(hvp_settings);
BENCHMARK_TEMPLATE(BM_LayerGemms, densenet40)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_NetForward, mobilenet_v2)->Apply(both_settings);
BENCHMARK_TEMPLATE(BM_NetGradient, mobilenet_v2)->Apply(both_settings);
BENCHMARK_TEMPLATE(BM_NetPerSampleGradients, mobilenet_v2)->Apply(per_sample_settings);
BENCHMARK_TEMPLATE(BM_NetHessianVectorProducts, mobilenet_v2)->Apply(hvp_settings);
BENCHMARK_TEMPLATE(BM_LayerGemms, mobilenet_v2)->Unit(benchmark::kMillisecond);

// The dominant forward im2col shapes (M output channels × K = C·k² × N = B·Ho·Wo at B = 64):
// DenseNet-40 block 1's 3 × 3 convolution (6 of them: 44 % of its multiply-adds), a block-1 1 × 1
// bottleneck (K = 24 … 84; 48 × 60 is the middle one) and block 2's 3 × 3 at 16 × 16;
// MobileNetV2's last 1 × 1 convolution (320 → 1280 on 1 × 1 maps: N = B) and an expansion / a
// projection of its 96-channel stage on 2 × 2 maps.
BENCHMARK(BM_ConvGemm)
    ->ArgNames({"M", "K", "N"})
    ->Args({12, 432, 65536})
    ->Args({48, 60, 65536})
    ->Args({12, 432, 16384})
    ->Args({1280, 320, 64})
    ->Args({576, 96, 256})
    ->Args({96, 576, 256})
    ->Unit(benchmark::kMillisecond);

} // namespace
