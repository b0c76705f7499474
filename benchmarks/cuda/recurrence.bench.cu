// The fused hypergradient recurrence on the GPU, against a device-to-device copy of the same size
// measured in the same binary (docs/performance.md, "GPU (hydra::cuda)"):
//
//   BM_CudaUpdate<T>/n:N/P:P    hydra::cuda::hypergradient_update, the eager Hessian-free step
//                               (hv empty): dv ← p·dv + λ·grad + w_r·s_r, grad ← grad − η·dv over
//                               n × P states, a gradient row for the first min(n, 64) rows.
//   BM_CudaTransfer<T>/n:N/P:P  hydra::cuda::hypergradient_transfer, the lazy step, listing all n
//                               rows (count = n) with one non-zero 2 × 2 transfer each (so every
//                               state is read), a gradient row for the first min(n, 64): the same
//                               traffic as the update.
//   BM_CudaCopy<T>/n:N/P:P      cudaMemcpyAsync device → device of the two states' bytes,
//                               2·n·P·sizeof(T), on hydra::cuda::stream(): the bandwidth reference.
//
// bytes/s counts bytes read plus bytes written, in GiB/s: for the update and the transfer
// (4·n + min(n, 64))·P·sizeof(T) per call (dv and grad read and written, the gradient rows read;
// the per-row index, weight and transfer arrays, a few bytes per row, are left out); for the copy
// 2 × its size, i.e. 4·n·P·sizeof(T). The goal is update (and transfer) bytes/s ≥ 0.8 × copy bytes/s.
//
// Both recurrence calls return whether every value written is finite: the kernel raises a device
// flag, and the call copies it back, so it WAITS FOR THE STREAM every call (a device → host copy of
// 8 bytes and a synchronisation, a few microseconds). They are measured as they are, that wait
// included; the case's label says so. The copy reference does not wait inside the call.
//
// P ∈ {101 770 (Mlp 784→128→10), 61 706 (LeNet-5)}, n ∈ {64, 256, 1024}, float and double. The
// states at n = 1024, P = 101 770 in double are 1.67 GB (the copy case holds twice that). States
// start at zero and evolve from call to call; p = 0.9, λ = 5e-4, η = 1e-3 and gradient rows of
// size 1e-3 weighted by N/B = 50 000/64 keep them finite (a non-finite answer fails the case).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "cuda/device.cuh"
#include "hydra/backend/cuda.cuh"
#include "hydra/core/tensor.hpp"
#include "support/inputs.hpp"

namespace {

using hydra::index;
using hydra::bench::byte_rate;
using namespace hydra::bench::cuda_bench;

constexpr index kBatch = 64;  // gradient rows per step: one batch's per-sample gradients
constexpr double kTrainingSetSize = 50000;
constexpr double kMomentum = 0.9, kWeightDecay = 5e-4, kLearningRate = 1e-3;

/// n × P states, the batch's gradient rows and the per-row arguments of both recurrence calls.
template <class T>
struct recurrence_fixture {
  index n, P;
  hydra::matrix<T, device> dv, grad;  // zero-initialised
  hydra::matrix<T, device> sources;   // min(n, B) × P gradient rows
  device::buffer<index> source_rows;  // row r < min(n, B): r; beyond: −1 (no gradient term)
  device::buffer<T> weights;          // N / B for rows with a gradient row
  device::buffer<index> state_rows;   // transfer: 0 .. n−1
  device::buffer<T> transfers;        // transfer: n row-major 2 × 2 matrices, all the same

  recurrence_fixture(index rows, index parameters)
      : n(rows), P(parameters), dv(rows, parameters), grad(rows, parameters),
        sources(random_matrix<T>(std::min(rows, kBatch), parameters, 3, T(1e-3))) {
    std::vector<index> src(static_cast<std::size_t>(n), -1), all(static_cast<std::size_t>(n));
    std::vector<T> w(static_cast<std::size_t>(n), T(0)), m;
    for (index r = 0; r < n; ++r) {
      all[static_cast<std::size_t>(r)] = r;
      if (r < kBatch) {
        src[static_cast<std::size_t>(r)] = r;
        w[static_cast<std::size_t>(r)] = static_cast<T>(kTrainingSetSize / kBatch);
      }
      // One step of Eq. 35–36 as a 2 × 2 map of (dv, grad): [[p, λ], [−η·p, 1 − η·λ]].
      const T p = static_cast<T>(kMomentum), l = static_cast<T>(kWeightDecay), e = static_cast<T>(kLearningRate);
      m.insert(m.end(), {p, l, -e * p, T(1) - e * l});
    }
    source_rows = upload(src);
    weights = upload(w);
    state_rows = upload(all);
    transfers = upload(m);
    device::synchronize();
  }

  /// Bytes read plus written by one update or transfer call.
  [[nodiscard]] double bytes() const {
    return (4.0 * static_cast<double>(n) + static_cast<double>(std::min(n, kBatch))) * static_cast<double>(P) *
           sizeof(T);
  }
  bool update() {
    return device::hypergradient_update(static_cast<T>(kMomentum), static_cast<T>(kWeightDecay),
                                        static_cast<T>(kLearningRate), hydra::matrix_view<const T>{},
                                        source_rows.data(), weights.data(), std::as_const(sources).view(), dv.view(),
                                        grad.view());
  }
  bool transfer() {
    return device::hypergradient_transfer(n, state_rows.data(), transfers.data(), source_rows.data(), weights.data(),
                                          static_cast<T>(kLearningRate), std::as_const(sources).view(), dv.view(),
                                          grad.view());
  }
};

template <class T, bool Lazy>
void recurrence(benchmark::State& state) {
  if (!require_device(state)) return;
  guarded(state, [&] {
    recurrence_fixture<T> f(state.range(0), state.range(1));
    stream_timer timer;
    bool finite = Lazy ? f.transfer() : f.update();  // untimed: first launch (module load) and context
    for (auto _ : state) {
      timer.start();
      finite &= Lazy ? f.transfer() : f.update();
      state.SetIterationTime(timer.seconds());
    }
    if (!finite) {
      state.SkipWithError("a state became non-finite: the benchmark's constants are wrong");
      return;
    }
    state.SetLabel("waits for the stream every call (finiteness flag read back)");
    state.counters["bytes/s"] = byte_rate(f.bytes(), state.iterations());
  });
}
template <class T>
void BM_CudaUpdate(benchmark::State& state) {
  recurrence<T, false>(state);
}
template <class T>
void BM_CudaTransfer(benchmark::State& state) {
  recurrence<T, true>(state);
}

/// cudaMemcpyAsync of the two n × P states' bytes into another buffer, on hydra's stream.
template <class T>
void BM_CudaCopy(benchmark::State& state) {
  if (!require_device(state)) return;
  guarded(state, [&] {
    const index elements = 2 * state.range(0) * state.range(1);
    const std::size_t size = static_cast<std::size_t>(elements) * sizeof(T);
    device::buffer<T> src(elements), dst(elements);
    stream_timer timer;
    const auto copy = [&] {
      hydra::detail::cuda::check(cudaMemcpyAsync(dst.data(), src.data(), size, cudaMemcpyDeviceToDevice, device::stream()),
                                 "cudaMemcpyAsync");
    };
    copy();  // untimed
    for (auto _ : state) {
      timer.start();
      copy();
      state.SetIterationTime(timer.seconds());
    }
    state.counters["bytes/s"] = byte_rate(2.0 * static_cast<double>(size), state.iterations());
  });
}

/// Names read "BM_CudaUpdate<float>/n:1024/P:101770".
void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "P"})->UseManualTime()->Unit(benchmark::kMillisecond);
  for (index P : {index{101770}, index{61706}})
    for (index n : {index{64}, index{256}, index{1024}}) b->Args({n, P});
}

BENCHMARK_TEMPLATE(BM_CudaUpdate, float)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_CudaTransfer, float)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_CudaCopy, float)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_CudaUpdate, double)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_CudaTransfer, double)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_CudaCopy, double)->Apply(shapes);

} // namespace
