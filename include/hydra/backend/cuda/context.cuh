#pragma once
// The per-thread CUDA context: one non-blocking stream and one cuBLAS handle bound to it. Every
// operation of hydra::cuda is enqueued on the calling thread's stream, so work from one thread
// runs in program order without any device-wide synchronisation.

#include <cstddef>
#include <string>
#include <utility>

#include "hydra/backend/cuda/runtime.cuh"

namespace hydra::detail::cuda {

class context {
public:
  context() {
    if constexpr (host_emulation) return;  // the kernels run in host loops: nothing to create
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    try {
      check(cublasCreate(&blas_), "cublasCreate");
      check(cublasSetStream(blas_, stream_), "cublasSetStream");
      // Scalars (alpha, beta) are host values: no device round trip for them.
      check(cublasSetPointerMode(blas_, CUBLAS_POINTER_MODE_HOST), "cublasSetPointerMode");
      check(cudaMalloc(reinterpret_cast<void**>(&flag_), sizeof(unsigned long long)), "cudaMalloc");
      check(cudaMalloc(&scratch_, scratch_bytes), "cudaMalloc");
    } catch (...) {
      release();
      throw;
    }
  }
  context(const context&) = delete;
  context& operator=(const context&) = delete;
  ~context() { release(); }

  [[nodiscard]] cudaStream_t stream() const noexcept { return stream_; }
  [[nodiscard]] cublasHandle_t blas() const noexcept { return blas_; }
  /// One device word for the kernels that report a count or a flag back (count_correct,
  /// all_finite, the recurrence's finiteness check); read with read_flag().
  [[nodiscard]] unsigned long long* flag() const noexcept { return flag_; }

  /// Device scratch of scratch_bytes for the two-pass sums (launch.cuh's sum_of).
  [[nodiscard]] void* scratch() const noexcept { return scratch_; }
  static constexpr std::size_t scratch_bytes = 512 * sizeof(double);

  void clear_flag() const { check(cudaMemsetAsync(flag_, 0, sizeof(*flag_), stream_), "cudaMemsetAsync"); }
  /// Waits for the stream and returns the flag word.
  [[nodiscard]] unsigned long long read_flag() const {
    unsigned long long value = 0;
    copy(&value, flag_, sizeof(value), cudaMemcpyDeviceToHost, stream_, true);
    return value;
  }

private:
  void release() noexcept {
    if (scratch_) cudaFree(scratch_);
    if (flag_) cudaFree(flag_);
    if (blas_) cublasDestroy(blas_);
    if (stream_) cudaStreamDestroy(stream_);
    scratch_ = nullptr;
    flag_ = nullptr;
    blas_ = nullptr;
    stream_ = nullptr;
  }
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  unsigned long long* flag_ = nullptr;
  void* scratch_ = nullptr;
};

/// The calling thread's context, created on first use.
inline context& this_thread_context() {
  thread_local context instance;
  return instance;
}

} // namespace hydra::detail::cuda
