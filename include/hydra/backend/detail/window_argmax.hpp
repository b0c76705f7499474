#pragma once
// The one argmax rule of every max-pooling kernel of every backend (docs/backend.md, "Pooling"):
// the first largest entry of a window in row-major order, or its first NaN, so that a NaN
// propagates. hydra::cpu calls it on the host and hydra::cuda's kernels on the device.

#include "hydra/core/host_device.hpp"
#include "hydra/core/types.hpp"

namespace hydra::detail {

/// Offset, within one channel's H × W image, of the largest entry of pooling window (oh, ow).
template <class T>
HYDRA_HOST_DEVICE inline index window_argmax(const pool_geometry& g, const T* image, index oh, index ow) {
  const index corner = oh * g.stride * g.width + ow * g.stride;
  index best = corner;
  for (index i = 0; i < g.window; ++i)
    for (index j = 0; j < g.window; ++j) {
      const index at = corner + i * g.width + j;
      // best == best is false only for a NaN, which then stays; !(v <= best) is v > best or v NaN.
      if (image[best] == image[best] && !(image[at] <= image[best])) best = at;
    }
  return best;
}

} // namespace hydra::detail
