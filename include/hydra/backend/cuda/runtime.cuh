#pragma once
// The few CUDA runtime and cuBLAS services hydra::cuda uses (memory, copies, waits, strided-batched
// GEMM, device queries), each behind one function. Compiled with HYDRA_CUDA_EMULATE_ON_HOST, the
// same functions run on the host instead (mappings, memcpy, a plain loop with cuBLAS's argument
// checks and column-major semantics) and the kernels' bodies run in host loops in a scattered
// order (launch.cuh): hydra's CUDA tests are built a second time that way, so every kernel body
// and the backend's cuBLAS argument mapping are checked against hydra::cpu on machines without a
// GPU. Emulated device memory is out of the
// host's reach except while an emulated kernel, copy or GEMM runs, so host code that dereferences
// device memory faults there as it would misbehave on a GPU. It is a test instrument, not a
// backend: the real device paths (launch configurations, shared-memory reductions, concurrency)
// need a GPU.

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>

#include <sys/mman.h>
#include <unistd.h>

#include "hydra/backend/cuda/status.cuh"
#include "hydra/core/types.hpp"

namespace hydra::detail::cuda {

#if defined(HYDRA_CUDA_EMULATE_ON_HOST)
inline constexpr bool host_emulation = true;
#else
inline constexpr bool host_emulation = false;
#endif

/// Host emulation's device memory: one private mapping per allocation, PROT_NONE while host code
/// runs and readable and writable only inside a device_work scope (an emulated kernel, copy or
/// GEMM). A host dereference of device memory is then a SIGSEGV in the tests instead of a bug that
/// only a GPU would show.
class emulated_memory {
public:
  static void* allocate_zeroed(std::size_t bytes) {
    const std::size_t length = round_to_pages(bytes);
    void* p = ::mmap(nullptr, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);  // zero-filled
    if (p == MAP_FAILED) throw allocation_error("hydra::cuda::buffer: " + std::to_string(bytes) + " bytes: out of memory");
    const std::lock_guard lock(mutex());
    mappings().emplace(p, length);
    if (depth() > 0) ::mprotect(p, length, PROT_READ | PROT_WRITE);
    return p;
  }
  static void release(void* p) noexcept {
    const std::lock_guard lock(mutex());
    const auto it = mappings().find(p);
    if (it == mappings().end()) return;
    ::munmap(it->first, it->second);
    mappings().erase(it);
  }

  /// Opens every mapping for the lifetime of the scope (nested scopes share one opening).
  class device_work {
  public:
    device_work() {
      const std::lock_guard lock(mutex());
      if (depth()++ == 0) protect_all(PROT_READ | PROT_WRITE);
    }
    ~device_work() {
      const std::lock_guard lock(mutex());
      if (--depth() == 0) protect_all(PROT_NONE);
    }
    device_work(const device_work&) = delete;
    device_work& operator=(const device_work&) = delete;
  };

private:
  static std::size_t round_to_pages(std::size_t bytes) {
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGE_SIZE));
    return (bytes + page - 1) / page * page;
  }
  static void protect_all(int protection) {
    for (const auto& [p, length] : mappings()) ::mprotect(p, length, protection);
  }
  static std::map<void*, std::size_t>& mappings() {
    static std::map<void*, std::size_t> instance;
    return instance;
  }
  static int& depth() {
    static int instance = 0;
    return instance;
  }
  static std::recursive_mutex& mutex() {
    static std::recursive_mutex instance;
    return instance;
  }
};

/// Under host emulation, the scope of one emulated device operation; nothing otherwise.
struct device_work {
#if defined(HYDRA_CUDA_EMULATE_ON_HOST)
  emulated_memory::device_work scope;
#endif
};

inline int device_count() noexcept {
  if constexpr (host_emulation) return 1;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the status of the failed query
    return 0;
  }
  return count;
}

inline std::string no_device_reason() {
  if constexpr (host_emulation) return "";
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  (void)cudaGetLastError();
  if (status != cudaSuccess) return std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
  return count == 0 ? "the runtime reports 0 devices" : "";
}

inline std::size_t memory_available() {
  if constexpr (host_emulation) {
    const long pages = ::sysconf(_SC_AVPHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) : 0;
  }
  std::size_t free = 0, total = 0;
  check(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
  return free;
}

/// Device k's name and total memory, as the runtime reports them (the host's memory under host
/// emulation).
inline std::pair<std::string, std::size_t> device_properties(int device) {
  if constexpr (host_emulation) return {"host emulation of a CUDA device", memory_available()};
  cudaDeviceProp properties{};
  check(cudaGetDeviceProperties(&properties, device), "cudaGetDeviceProperties");
  return {properties.name, properties.totalGlobalMem};
}

/// `bytes` of zeroed device memory; allocation_error when the device has too little.
inline void* allocate_zeroed(std::size_t bytes, cudaStream_t stream) {
  void* p = nullptr;
  if constexpr (host_emulation) return emulated_memory::allocate_zeroed(bytes);
  const cudaError_t status = cudaMalloc(&p, bytes);
  if (status == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    throw allocation_error("hydra::cuda::buffer: cudaMalloc of " + std::to_string(bytes) +
                           " bytes failed: out of device memory");
  }
  check(status, "cudaMalloc");
  const cudaError_t cleared = cudaMemsetAsync(p, 0, bytes, stream);
  if (cleared != cudaSuccess) {
    cudaFree(p);
    check(cleared, "cudaMemsetAsync");
  }
  return p;
}

inline void release(void* p) noexcept {
  if (p == nullptr) return;
  if constexpr (host_emulation) emulated_memory::release(p);
  else cudaFree(p);  // waits for the work on the memory (cudaFree synchronises the device)
}

inline void wait(cudaStream_t stream) {
  if constexpr (!host_emulation) check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
}

/// Enqueues a copy of `bytes` (any direction); `then_wait` waits for it.
inline void copy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, cudaStream_t stream,
                 bool then_wait) {
  if (bytes == 0) return;
  if constexpr (host_emulation) {
    [[maybe_unused]] const device_work scope;
    std::memcpy(dst, src, bytes);
    return;
  }
  check(cudaMemcpyAsync(dst, src, bytes, kind, stream), "cudaMemcpyAsync");
  if (then_wait) wait(stream);
}

/// `rows` rows of `width` bytes, from rows `src_pitch` bytes apart to rows `dst_pitch` apart.
inline void copy_rows(void* dst, std::size_t dst_pitch, const void* src, std::size_t src_pitch, std::size_t width,
                      std::size_t rows, cudaStream_t stream) {
  if (width == 0 || rows == 0) return;
  if constexpr (host_emulation) {
    [[maybe_unused]] const device_work scope;
    for (std::size_t r = 0; r < rows; ++r)
      std::memcpy(static_cast<char*>(dst) + r * dst_pitch, static_cast<const char*>(src) + r * src_pitch, width);
    return;
  }
  check(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, width, rows, cudaMemcpyDeviceToDevice, stream),
        "cudaMemcpy2DAsync");
}

/// cuBLAS's <t>gemmStridedBatched: for i < count, C_i = alpha·op(A_i)·op(B_i) + beta·C_i, all
/// column-major (m × n result, inner dimension k), X_i = X + i·stride_x; beta = 0 does not read C.
template <class T>
void gemm_strided_batched(cublasHandle_t handle, cublasOperation_t op_a, cublasOperation_t op_b, int m, int n, int k,
                          T alpha, const T* a, int lda, long long stride_a, const T* b, int ldb, long long stride_b,
                          T beta, T* c, int ldc, long long stride_c, int count) {
  constexpr const char* call = std::is_same_v<T, float> ? "cublasSgemmStridedBatched" : "cublasDgemmStridedBatched";
  if constexpr (host_emulation) {
    // cuBLAS's own argument checks first, so that a mapping cuBLAS would refuse fails here too.
    const bool op_a_n = op_a == CUBLAS_OP_N, op_b_n = op_b == CUBLAS_OP_N;
    const bool valid = m >= 0 && n >= 0 && k >= 0 && count >= 0 && (op_a_n || op_a == CUBLAS_OP_T) &&
                       (op_b_n || op_b == CUBLAS_OP_T) && lda >= std::max(1, op_a_n ? m : k) &&
                       ldb >= std::max(1, op_b_n ? k : n) && ldc >= std::max(1, m);
    check(valid ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE, call);
    // op(A)(i, l) is A(i, l) = a[i + l·lda] as stored, or A(l, i) = a[l + i·lda] transposed.
    [[maybe_unused]] const device_work scope;
    for (int batch = 0; batch < count; ++batch) {
      const T* A = a + batch * stride_a;
      const T* B = b + batch * stride_b;
      T* C = c + batch * stride_c;
      for (int j = 0; j < n; ++j)
        for (int i = 0; i < m; ++i) {
          T s = T(0);
          for (int l = 0; l < k; ++l) {
            const T x = op_a == CUBLAS_OP_N ? A[i + static_cast<index>(l) * lda] : A[l + static_cast<index>(i) * lda];
            const T y = op_b == CUBLAS_OP_N ? B[l + static_cast<index>(j) * ldb] : B[j + static_cast<index>(l) * ldb];
            s += x * y;
          }
          T& out = C[i + static_cast<index>(j) * ldc];
          out = beta == T(0) ? alpha * s : alpha * s + beta * out;
        }
    }
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    check(cublasSgemmStridedBatched(handle, op_a, op_b, m, n, k, &alpha, a, lda, stride_a, b, ldb, stride_b, &beta, c,
                                    ldc, stride_c, count),
          call);
  } else {
    check(cublasDgemmStridedBatched(handle, op_a, op_b, m, n, k, &alpha, a, lda, stride_a, b, ldb, stride_b, &beta, c,
                                    ldc, stride_c, count),
          call);
  }
}

} // namespace hydra::detail::cuda
