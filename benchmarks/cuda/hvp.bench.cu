// Batched Hessian-vector products on the GPU, against cuBLAS SGEMM of the same shapes measured in
// the same binary (docs/performance.md, "GPU (hydra::cuda)"). float, batch B = 64, k directions
// per call, k ∈ {1, 8, 32}; SoftmaxCrossEntropy; parameters in PyTorch's default ranges.
//
//   BM_CudaMlpHvp/k:K         Mlp<float, cuda>(784, {128}, 10, relu), |w| = 101 770:
//                             model.hessian_vector_products(w, x, y, loss, V, HV), V and HV k × |w|
//   BM_CudaLeNetHvp/k:K       LeNet5<float, cuda>, |w| = 61 706, the same call
//   BM_CudaMlpSgemm/k:K       the GEMMs of one such HVP call, each as one cublasSgemm
//   BM_CudaLeNetSgemm/k:K     (hydra's cuBLAS handle and stream), and nothing else
//
// GFLOP/s counts GEMM FLOPs only, from support/flops.hpp's hvp_flops (2 FLOPs per multiply-add),
// the same count for an HVP case and the SGEMM case of the same model and k, so that
//   HVP GFLOP/s ÷ SGEMM GFLOP/s = (time of the bare GEMMs) ÷ (time of the HVP call);
// the goal is ≥ 0.5. Elementwise work (activations, pooling, im2col/col2im, axis swaps, bias adds,
// the softmax Hessian product) is in the HVP's time but not in its FLOPs, as in the CPU benchmarks.
//
// The SGEMM list (hvp_gemms below) has one entry per GEMM term of flops.hpp, from dense.hpp and
// conv2d.hpp, with the operand transposes and β of hydra's call. Where hydra issues one
// gemm_batched of k products that share an operand (x R{W}_jᵀ, R{δ}_jᵀ x, ...), the reference
// issues the single GEMM with the k products side by side (one dimension × k, the same FLOPs):
// the fastest way cuBLAS can do that work, so the ratio is conservative. Before touching the
// device each SGEMM case checks that its list adds up to hvp_flops (it fails otherwise), so the
// two counts cannot drift apart. Bias GEMMs against a ones vector are in neither count.

#include <benchmark/benchmark.h>

#include <array>
#include <cmath>
#include <span>
#include <utility>
#include <vector>

#include "cuda/device.cuh"
#include "hydra/backend/cuda.cuh"
#include "hydra/core/tensor.hpp"
#include "hydra/nn/lenet.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "support/flops.hpp"
#include "support/inputs.hpp"

namespace {

using hydra::index;
using hydra::bench::giga_rate;
using hydra::bench::per_second;
using namespace hydra::bench::cuda_bench;
using T = float;

constexpr index kBatch = 64;
constexpr index kInputs = 784, kHidden = 128, kClasses = 10;

/// Multiply-adds per sample of the layers with parameters (flops.hpp's `macs`).
constexpr std::array<double, 2> kMlpMacs{kInputs * kHidden, kHidden * kClasses};
/// LeNet-5: conv1 (6·28·28 outputs × 1·5·5), conv2 (16·10·10 × 6·5·5), Dense 400→120→84→10
/// (as benchmarks/nn/lenet.bench.cpp).
constexpr std::array<double, 5> kLeNetMacs{6.0 * 28 * 28 * 25, 16.0 * 10 * 10 * 150, 400.0 * 120, 120.0 * 84, 84.0 * 10};

// ---- the HVP itself -------------------------------------------------------------------------------

/// The model on the device, its parameters, one batch of B images with labels, and k directions.
template <class Model>
struct hvp_problem {
  Model model;
  hydra::SoftmaxCrossEntropy<T, device> loss;
  hydra::vector<T, device> w;
  hydra::matrix<T, device> x;
  device::buffer<hydra::label_type> labels;
  hydra::matrix<T, device> directions, products;

  hvp_problem(Model m, index k)
      : model(std::move(m)), w(model.parameter_count()), x(kBatch, model.input_size()),
        directions(random_matrix<T>(k, model.parameter_count(), 3)), products(k, model.parameter_count()) {
    model.initialize(w.view(), hydra::bench::deterministic_uniform(1));
    std::vector<T> pixels(static_cast<std::size_t>(kBatch * model.input_size()));
    hydra::bench::fill_pixels(hydra::vector_view<T>{pixels.data(), static_cast<index>(pixels.size())}, 2);
    device::copy_from_host(pixels.data(), static_cast<index>(pixels.size()), x.data());
    std::vector<hydra::label_type> y;
    for (index b = 0; b < kBatch; ++b) y.push_back(static_cast<hydra::label_type>((b * 7) % model.output_size()));
    labels = upload(y);
  }
  void run() {
    model.hessian_vector_products(std::as_const(w).view(), std::as_const(x).view(),
                                  hydra::batch_targets<T>{labels.data(), {}}, loss, std::as_const(directions).view(),
                                  products.view());
  }
};

template <class Model, std::size_t L>
void hvp(benchmark::State& state, const std::array<double, L>& macs, Model (*make)()) {
  if (!require_device(state)) return;
  guarded(state, [&] {
    const index k = state.range(0);
    hvp_problem<Model> p(make(), k);
    stream_timer timer;
    p.run();  // untimed: sizes the model's workspace (tangents and R{δ} of k directions)
    for (auto _ : state) {
      timer.start();
      p.run();
      state.SetIterationTime(timer.seconds());
    }
    state.counters["directions/s"] = per_second(static_cast<double>(k), state.iterations());
    state.counters["GFLOP/s"] = giga_rate(hydra::bench::hvp_flops(macs, kBatch, k), state.iterations());
  });
}

hydra::Mlp<T, device> make_mlp() { return hydra::Mlp<T, device>(kInputs, {kHidden}, kClasses, hydra::activation::relu); }
hydra::LeNet5<T, device> make_lenet() { return hydra::LeNet5<T, device>(); }

void BM_CudaMlpHvp(benchmark::State& state) { hvp(state, kMlpMacs, &make_mlp); }
void BM_CudaLeNetHvp(benchmark::State& state) { hvp(state, kLeNetMacs, &make_lenet); }

// ---- the same GEMMs, bare -------------------------------------------------------------------------

/// C (m × n, row-major) = op(A)·op(B) + β·C with inner dimension `inner`, as hydra::cuda::gemm
/// takes it: A is m × inner (inner × m when ta), B is inner × n (n × inner when tb).
struct gemm_shape {
  bool ta, tb;
  index m, n, inner;
  float beta;
  [[nodiscard]] double flops() const {
    return 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(inner);
  }
};

/// The GEMMs of one layer's part of an HVP call (batch B, k directions), in the order of
/// flops.hpp's table, for a layer that is the model's first with parameters (`first`: r_x = 0 and
/// no layer with parameters below, so no d_x terms) or not.
///
/// Dense in → out (dense.hpp): W is out × in, x B × in, δ = d_y B × out.
std::vector<gemm_shape> dense_gemms(index in, index out, index batch, index k, bool first) {
  std::vector<gemm_shape> g;
  g.push_back({false, true, batch, out, in, 0});  // forward x Wᵀ
  if (!first) g.push_back({false, false, batch, in, out, 0});  // backward d_x = δ W
  if (!first) g.push_back({false, true, k * batch, out, in, 0});  // tangent r_x Wᵀ
  g.push_back({false, true, batch, k * out, in, first ? 0.f : 1.f});  // tangent x R{W}_jᵀ, merged over j
  g.push_back({true, false, k * out, in, batch, 1});  // second backward R{δ}_jᵀ x, merged
  if (!first) {
    g.push_back({true, false, out, k * in, batch, 1});  // δᵀ r_x,j, merged
    g.push_back({false, false, k * batch, in, out, 0});  // R{δ} W (all k blocks at once)
    g.push_back({false, false, batch, k * in, out, 1});  // δ R{W}_j, merged
  }
  return g;
}
/// Conv2d (conv2d.hpp): W is out × patch (patch = C·kh·kw), im2col columns patch × span
/// (span = B·Ho·Wo), δ channel-major out × span.
std::vector<gemm_shape> conv_gemms(index out, index patch, index pixels, index batch, index k, bool first) {
  const index span = batch * pixels;
  std::vector<gemm_shape> g;
  g.push_back({false, false, out, span, patch, 0});  // forward W·cols
  if (!first) g.push_back({true, false, patch, span, out, 0});  // backward dcols = Wᵀ δ
  if (!first) g.push_back({false, false, out, k * span, patch, 0});  // tangent W·r_cols (all k)
  g.push_back({false, false, k * out, span, patch, first ? 0.f : 1.f});  // tangent R{W}_j·cols, merged
  g.push_back({false, true, k * out, patch, span, 1});  // second backward R{δ}_j·colsᵀ, merged
  if (!first) {
    g.push_back({false, true, out, k * patch, span, 1});  // δ·r_cols_jᵀ, merged
    g.push_back({true, false, patch, k * span, out, 0});  // Wᵀ·R{δ} (all k)
    g.push_back({true, false, k * patch, span, out, 1});  // R{W}_jᵀ·δ, merged
  }
  return g;
}

std::vector<gemm_shape> mlp_gemms(index k) {
  auto g = dense_gemms(kInputs, kHidden, kBatch, k, true);
  for (const auto& s : dense_gemms(kHidden, kClasses, kBatch, k, false)) g.push_back(s);
  return g;
}
std::vector<gemm_shape> lenet_gemms(index k) {
  std::vector<gemm_shape> g;
  const auto add = [&](std::vector<gemm_shape> more) { g.insert(g.end(), more.begin(), more.end()); };
  add(conv_gemms(6, 1 * 5 * 5, 28 * 28, kBatch, k, true));    // Conv2d(1, 6, 5, padding 2): 28 × 28 out
  add(conv_gemms(16, 6 * 5 * 5, 10 * 10, kBatch, k, false));  // Conv2d(6, 16, 5) on 14 × 14: 10 × 10 out
  add(dense_gemms(400, 120, kBatch, k, false));
  add(dense_gemms(120, 84, kBatch, k, false));
  add(dense_gemms(84, 10, kBatch, k, false));
  return g;
}

/// One shape's operands on the device.
struct gemm_operands {
  gemm_shape s;
  hydra::matrix<T, device> a, b, c;
  explicit gemm_operands(const gemm_shape& shape)
      : s(shape), a(random_matrix<T>(s.ta ? s.inner : s.m, s.ta ? s.m : s.inner, 4, T(0.1))),
        b(random_matrix<T>(s.tb ? s.n : s.inner, s.tb ? s.inner : s.n, 5, T(0.1))), c(s.m, s.n) {}
  /// cublasSgemm on hydra's handle (bound to hydra::cuda::stream()), with hydra::cuda::gemm's
  /// row-major → column-major mapping: Cᵀ = op(B)ᵀ·op(A)ᵀ.
  void run(cublasHandle_t h) {
    const float alpha = 1;
    const int m = static_cast<int>(s.n), n = static_cast<int>(s.m), k = static_cast<int>(s.inner);
    hydra::detail::cuda::check(cublasSgemm(h, s.tb ? CUBLAS_OP_T : CUBLAS_OP_N, s.ta ? CUBLAS_OP_T : CUBLAS_OP_N, m, n,
                                           k, &alpha, b.data(), static_cast<int>(b.cols()), a.data(),
                                           static_cast<int>(a.cols()), &s.beta, c.data(), static_cast<int>(c.cols())),
                               "cublasSgemm");
  }
};

template <std::size_t L>
void sgemm(benchmark::State& state, const std::array<double, L>& macs, std::vector<gemm_shape> (*shapes)(index)) {
  const index k = state.range(0);
  const auto list = shapes(k);
  double flops = 0;
  for (const auto& s : list) flops += s.flops();
  const double expected = hydra::bench::hvp_flops(macs, kBatch, k);
  if (std::abs(flops - expected) > 1e-9 * expected) {  // checked with or without a device
    state.SkipWithError("the SGEMM list does not add up to support/flops.hpp's hvp_flops");
    return;
  }
  if (!require_device(state)) return;
  guarded(state, [&] {
    std::vector<gemm_operands> ops;
    ops.reserve(list.size());
    for (const auto& s : list) ops.emplace_back(s);
    cublasHandle_t h = hydra::detail::cuda::this_thread_context().blas();
    stream_timer timer;
    for (auto& o : ops) o.run(h);  // untimed: cuBLAS picks and loads its kernels
    for (auto _ : state) {
      timer.start();
      for (auto& o : ops) o.run(h);
      state.SetIterationTime(timer.seconds());
    }
    state.counters["gemms"] = static_cast<double>(list.size());
    state.counters["GFLOP/s"] = giga_rate(flops, state.iterations());
  });
}

void BM_CudaMlpSgemm(benchmark::State& state) { sgemm(state, kMlpMacs, &mlp_gemms); }
void BM_CudaLeNetSgemm(benchmark::State& state) { sgemm(state, kLeNetMacs, &lenet_gemms); }

/// Names read "BM_CudaLeNetHvp/k:8/manual_time".
void directions(benchmark::internal::Benchmark* b) {
  b->ArgName("k")->Arg(1)->Arg(8)->Arg(32)->UseManualTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_CudaMlpHvp)->Apply(directions);
BENCHMARK(BM_CudaMlpSgemm)->Apply(directions);
BENCHMARK(BM_CudaLeNetHvp)->Apply(directions);
BENCHMARK(BM_CudaLeNetSgemm)->Apply(directions);

} // namespace
