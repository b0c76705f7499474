#pragma once
// What the hydra::cuda benchmarks (benchmarks/cuda/*.bench.cu, executable hydra_bench_cuda) share:
// the no-device skip, a stream-ordered timer for Google Benchmark's manual time, exceptions turned
// into a failed case, and deterministic device data filled on the host (support/inputs.hpp's hash
// formula) and copied once, outside the timed loop.
//
// Timing: every hydra::cuda call is enqueued on the calling thread's stream (hydra::cuda::stream())
// and may return before the device has finished, so host clocks around a call measure the launch,
// not the work. stream_timer records a CUDA event before and after the timed calls on that stream
// and waits for the second one; the elapsed time between the two events is what the case reports
// through state.SetIterationTime (the benchmarks are registered with UseManualTime()). Calls that
// wait for the stream themselves (the recurrence's finiteness answer, the trainer's loss) are
// timed the same way, the wait included.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <vector>

#include "hydra/backend/cuda.cuh"
#include "hydra/core/tensor.hpp"
#include "support/inputs.hpp"

namespace hydra::bench::cuda_bench {

using device = hydra::cuda;

/// True when a CUDA device is there. Otherwise marks the case failed with "no CUDA device: <the
/// runtime's reason>" (the smoke test's skip pattern) and returns false: the caller returns before
/// touching the device (not even the per-thread stream and cuBLAS handle are created).
inline bool require_device(benchmark::State& state) {
  if (device::device_count() > 0) return true;
  state.SkipWithError(("no CUDA device: " + device::no_device_reason()).c_str());
  return false;
}

/// Runs body(); a hydra (or any) exception marks the case failed with its message instead of
/// terminating the binary, so one failing case does not hide the others.
template <class F>
void guarded(benchmark::State& state, F&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

/// Two CUDA events on hydra::cuda::stream(): start() before the timed calls, seconds() after them
/// (waits for the second event and returns the device time between the two).
class stream_timer {
public:
  stream_timer() {
    detail::cuda::check(cudaEventCreate(&start_), "cudaEventCreate");
    const cudaError_t status = cudaEventCreate(&stop_);
    if (status != cudaSuccess) {
      cudaEventDestroy(start_);
      detail::cuda::check(status, "cudaEventCreate");
    }
  }
  stream_timer(const stream_timer&) = delete;
  stream_timer& operator=(const stream_timer&) = delete;
  ~stream_timer() {
    cudaEventDestroy(stop_);
    cudaEventDestroy(start_);
  }

  void start() { detail::cuda::check(cudaEventRecord(start_, device::stream()), "cudaEventRecord"); }
  [[nodiscard]] double seconds() {
    detail::cuda::check(cudaEventRecord(stop_, device::stream()), "cudaEventRecord");
    detail::cuda::check(cudaEventSynchronize(stop_), "cudaEventSynchronize");
    float ms = 0;
    detail::cuda::check(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime");
    return static_cast<double>(ms) * 1e-3;
  }

private:
  cudaEvent_t start_ = nullptr;
  cudaEvent_t stop_ = nullptr;
};

/// A rows × cols device matrix of scale · pseudo_random(i, seed) (support/inputs.hpp).
template <class T>
matrix<T, device> random_matrix(index rows, index cols, std::uint32_t seed, T scale = T(1)) {
  std::vector<T> host(static_cast<std::size_t>(rows * cols));
  hydra::bench::fill(vector_view<T>{host.data(), rows * cols}, seed, scale);
  return matrix<T, device>::from_host(std::span<const T>(host), rows, cols);
}

/// Device memory holding `values`.
template <class T>
typename device::template buffer<T> upload(const std::vector<T>& values) {
  typename device::template buffer<T> out(static_cast<index>(values.size()));
  device::copy_from_host(values.data(), static_cast<index>(values.size()), out.data());
  return out;
}

} // namespace hydra::bench::cuda_bench
