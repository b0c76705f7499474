#pragma once
// The segmented reduction behind hydra::cuda::channel_sums: one thread block per output (a
// direction block and a channel), its threads striding over the segment's terms (consecutive
// threads on consecutive pixels of a row, so the loads coalesce), then a fixed shared-memory tree.
// The partition and the tree are fixed, so the result does not depend on timing (no atomics).
// Under host emulation (runtime.cuh) each segment is a host loop over the same lambdas, the
// segments visited in a scattered order.

#include <algorithm>

#include "hydra/backend/cuda/context.cuh"
#include "hydra/backend/cuda/launch.cuh"
#include "hydra/backend/cuda/runtime.cuh"
#include "hydra/backend/cuda/status.cuh"
#include "hydra/core/types.hpp"

namespace hydra::detail::cuda {

template <class T, class Term, class Finish>
__global__ void segment_sums_kernel(index segments, index length, Term term, Finish finish) {
  __shared__ T shared[threads_per_block];
  for (index s = blockIdx.x; s < segments; s += gridDim.x) {
    T mine = T(0);
    for (index i = threadIdx.x; i < length; i += blockDim.x) mine += term(s, i);
    shared[threadIdx.x] = mine;
    __syncthreads();
    for (int half = threads_per_block / 2; half > 0; half /= 2) {
      if (static_cast<int>(threadIdx.x) < half) shared[threadIdx.x] += shared[threadIdx.x + half];
      __syncthreads();
    }
    if (threadIdx.x == 0) finish(s, shared[0]);
    __syncthreads();  // `shared` is reused by this block's next segment
  }
}

/// For every segment s in [0, segments): finish(s, Σ_{i < length} term(s, i)), one launch on this
/// thread's stream (one block per segment, grid-stride beyond max_blocks). `name` is the
/// hydra::cuda operation, for the error message of a failed launch.
template <class T, class Term, class Finish>
void segment_sums(index segments, index length, Term term, Finish finish, const char* name) {
  if (segments <= 0) return;
  if constexpr (host_emulation) {
    [[maybe_unused]] const device_work scope;
    emulated_scattered(segments, [&](index s) {
      T sum = T(0);
      for (index i = 0; i < length; ++i) sum += term(s, i);
      finish(s, sum);
    });
    return;
  }
  const auto blocks = static_cast<unsigned>(std::clamp<index>(segments, 1, max_blocks));
  segment_sums_kernel<T><<<blocks, threads_per_block, 0, this_thread_context().stream()>>>(segments, length, term,
                                                                                           finish);
  check_launch(name);
}

} // namespace hydra::detail::cuda
