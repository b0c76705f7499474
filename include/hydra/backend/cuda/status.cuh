#pragma once
// Every CUDA runtime and cuBLAS call goes through check(): a failure becomes a hydra::cuda_error
// whose message names the call and the runtime's own description of the status.

#include <string>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "hydra/core/error.hpp"

namespace hydra {

/// A CUDA runtime or cuBLAS call failed (the message names the call and the status).
class cuda_error : public error {
public:
  using error::error;
};

namespace detail::cuda {

inline const char* cublas_status_name(cublasStatus_t status) noexcept {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "unknown cuBLAS status";
  }
}

/// Throws cuda_error("hydra::cuda: <call> failed: <name> (<description>)") unless status is success.
inline void check(cudaError_t status, const char* call) {
  if (status == cudaSuccess) return;
  throw cuda_error(std::string("hydra::cuda: ") + call + " failed: " + cudaGetErrorName(status) + " (" +
                   cudaGetErrorString(status) + ")");
}
inline void check(cublasStatus_t status, const char* call) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw cuda_error(std::string("hydra::cuda: ") + call + " failed: " + cublas_status_name(status));
}

/// After a kernel launch: a bad configuration or an earlier asynchronous fault, named by kernel.
inline void check_launch(const char* kernel) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) check(status, kernel);
}

} // namespace detail::cuda
} // namespace hydra
