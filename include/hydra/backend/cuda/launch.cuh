#pragma once
// Kernel launchers behind hydra::cuda: a grid-stride loop over [0, n) that calls a lambda per
// index (with or without a per-thread flag), a count, and a deterministic two-pass sum. Every
// launch is on the calling thread's stream and is checked by name. Under host emulation
// (runtime.cuh) each is a host loop over the same lambda, in a scattered order.

#include <algorithm>
#include <numeric>

#include "hydra/backend/cuda/context.cuh"
#include "hydra/backend/cuda/runtime.cuh"
#include "hydra/core/types.hpp"

// The annotation of every kernel lambda in hydra::cuda: device code, and host code too under host
// emulation, where the loops of this file call it on the host.
#if defined(HYDRA_CUDA_EMULATE_ON_HOST)
#define HYDRA_CUDA_LAMBDA __host__ __device__
#else
#define HYDRA_CUDA_LAMBDA __device__
#endif

namespace hydra::detail::cuda {

/// Host emulation calls g(i) once for every i in [0, n), in a scattered order (a stride coprime
/// with n, about 0.62·n, wrapping) rather than 0, 1, 2, …: a GPU runs a launch's threads in no
/// fixed order, so a kernel in which one index reads what another writes should fail the emulated
/// tests, not pass them by the luck of a forward loop.
template <class G>
void emulated_scattered(index n, G g) {
  if (n <= 0) return;
  index stride = (n / 2 + n / 8 + 1) % n;
  while (std::gcd(stride, n) != 1) stride = (stride + 1) % n;
  for (index k = 0, i = 0; k < n; ++k, i = (i + stride) % n) g(i);
}

inline constexpr int threads_per_block = 256;
inline constexpr index max_blocks = index{1} << 16;  // grid-stride beyond: enough to fill any current GPU

inline unsigned blocks_for(index n) {
  return static_cast<unsigned>(std::clamp<index>((n + threads_per_block - 1) / threads_per_block, 1, max_blocks));
}

template <class F>
__global__ void for_each_index_kernel(index n, F f) {
  const index step = static_cast<index>(blockDim.x) * gridDim.x;
  for (index i = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) f(i);
}

/// f(i) for every i in [0, n), in parallel on this thread's stream. `name` is the hydra::cuda
/// operation, for the error message of a failed launch.
template <class F>
void for_each_index(index n, F f, const char* name) {
  if (n <= 0) return;
  if constexpr (host_emulation) {
    [[maybe_unused]] const device_work scope;
    emulated_scattered(n, f);
    return;
  }
  for_each_index_kernel<<<blocks_for(n), threads_per_block, 0, this_thread_context().stream()>>>(n, f);
  check_launch(name);
}

/// The grid of a rows × cols launch: x strides over the columns of a row (coalesced), y over rows,
/// so no thread divides an index.
inline dim3 grid_for(index rows, index cols) {
  return dim3(static_cast<unsigned>(std::clamp<index>((cols + threads_per_block - 1) / threads_per_block, 1, 4096)),
              static_cast<unsigned>(std::clamp<index>(rows, 1, 65535)));
}

template <class F>
__global__ void for_each_element_kernel(index rows, index cols, F f) {
  const index step = static_cast<index>(blockDim.x) * gridDim.x;
  for (index r = blockIdx.y; r < rows; r += gridDim.y)
    for (index j = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; j < cols; j += step) f(r, j);
}

/// f(r, j) for every element of a rows × cols matrix.
template <class F>
void for_each_element(index rows, index cols, F f, const char* name) {
  if (rows <= 0 || cols <= 0) return;
  if constexpr (host_emulation) {
    [[maybe_unused]] const device_work scope;
    emulated_scattered(rows, [&](index r) { emulated_scattered(cols, [&](index j) { f(r, j); }); });
    return;
  }
  for_each_element_kernel<<<grid_for(rows, cols), threads_per_block, 0, this_thread_context().stream()>>>(rows, cols,
                                                                                                        f);
  check_launch(name);
}

template <class F>
__global__ void any_element_kernel(index rows, index cols, F f, unsigned long long* flag) {
  const index step = static_cast<index>(blockDim.x) * gridDim.x;
  bool raised = false;
  for (index r = blockIdx.y; r < rows; r += gridDim.y)
    for (index j = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; j < cols; j += step) raised |= f(r, j);
  if (raised) *flag = 1;  // every writer writes the same value: no atomic needed
}

/// f(r, j) -> bool for every element of a rows × cols matrix; returns whether any call returned
/// true. Reading the answer waits for the stream.
template <class F>
bool any_element(index rows, index cols, F f, const char* name) {
  if (rows <= 0 || cols <= 0) return false;
  if constexpr (host_emulation) {
    [[maybe_unused]] const device_work scope;
    bool raised = false;
    emulated_scattered(rows, [&](index r) { emulated_scattered(cols, [&](index j) { raised |= f(r, j); }); });
    return raised;
  }
  auto& ctx = this_thread_context();
  ctx.clear_flag();
  any_element_kernel<<<grid_for(rows, cols), threads_per_block, 0, ctx.stream()>>>(rows, cols, f, ctx.flag());
  check_launch(name);
  return ctx.read_flag() != 0;
}

template <class F>
__global__ void for_each_index_flagged_kernel(index n, F f, unsigned long long* flag) {
  const index step = static_cast<index>(blockDim.x) * gridDim.x;
  bool raised = false;
  for (index i = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) raised |= f(i);
  if (raised) *flag = 1;  // every writer writes the same value: no atomic needed
}

/// f(i) -> bool for every i in [0, n); returns whether any call returned true. Reading the answer
/// waits for the stream.
template <class F>
bool any_index(index n, F f, const char* name) {
  if (n <= 0) return false;
  if constexpr (host_emulation) {
    [[maybe_unused]] const device_work scope;
    bool raised = false;
    emulated_scattered(n, [&](index i) { raised |= f(i); });
    return raised;
  }
  auto& ctx = this_thread_context();
  ctx.clear_flag();
  for_each_index_flagged_kernel<<<blocks_for(n), threads_per_block, 0, ctx.stream()>>>(n, f, ctx.flag());
  check_launch(name);
  return ctx.read_flag() != 0;
}

template <class F>
__global__ void count_kernel(index n, F f, unsigned long long* count) {
  const index step = static_cast<index>(blockDim.x) * gridDim.x;
  unsigned long long mine = 0;
  for (index i = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) mine += f(i) ? 1 : 0;
  if (mine) atomicAdd(count, mine);
}

/// The number of i in [0, n) for which f(i) is true; waits for the stream.
template <class F>
index count_if(index n, F f, const char* name) {
  if (n <= 0) return 0;
  if constexpr (host_emulation) {
    [[maybe_unused]] const device_work scope;
    index count = 0;
    emulated_scattered(n, [&](index i) { count += f(i) ? 1 : 0; });
    return count;
  }
  auto& ctx = this_thread_context();
  ctx.clear_flag();
  count_kernel<<<blocks_for(n), threads_per_block, 0, ctx.stream()>>>(n, f, ctx.flag());
  check_launch(name);
  return static_cast<index>(ctx.read_flag());
}

inline constexpr int sum_blocks = 256;

/// One block's share of Σ f(i): a fixed partition and a fixed tree, so the result does not
/// depend on timing (unlike atomics).
template <class T, class F>
__global__ void partial_sums_kernel(index n, F f, T* partials) {
  __shared__ T shared[threads_per_block];
  T mine = T(0);
  const index step = static_cast<index>(blockDim.x) * gridDim.x;
  for (index i = static_cast<index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) mine += f(i);
  shared[threadIdx.x] = mine;
  __syncthreads();
  for (int half = threads_per_block / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) partials[blockIdx.x] = shared[0];
}

template <class T>
__global__ void final_sum_kernel(const T* partials, T* result) {
  __shared__ T shared[sum_blocks];
  shared[threadIdx.x] = partials[threadIdx.x];
  __syncthreads();
  for (int half = sum_blocks / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) *result = shared[0];
}

/// Σ_{i < n} f(i), deterministic; `scratch` holds sum_blocks + 1 device elements. Waits for the
/// stream to return the value.
template <class T, class F>
T sum_of(index n, F f, T* scratch, const char* name) {
  if constexpr (host_emulation) {
    [[maybe_unused]] const device_work scope;
    T sum = T(0);  // f is pure here: the order changes only the rounding, so keep cpu's
    for (index i = 0; i < n; ++i) sum += f(i);
    return sum;
  }
  auto& ctx = this_thread_context();
  partial_sums_kernel<T><<<sum_blocks, threads_per_block, 0, ctx.stream()>>>(n, f, scratch);
  check_launch(name);
  final_sum_kernel<T><<<1, sum_blocks, 0, ctx.stream()>>>(scratch, scratch + sum_blocks);
  check_launch(name);
  T value{};
  copy(&value, scratch + sum_blocks, sizeof(T), cudaMemcpyDeviceToHost, ctx.stream(), true);
  return value;
}

} // namespace hydra::detail::cuda
