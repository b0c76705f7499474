#pragma once
// What the CUDA test files comparing hydra::cuda with hydra::cpu share: whether there is a device
// (skipping the case in the form CTest counts when there is none) and the comparison they
// tolerance-check.

#include <doctest/doctest.h>

#include <hydra/backend/cuda.cuh>

#include <algorithm>
#include <cmath>
#include <vector>

#include "support/skip.hpp"

namespace hydra::test {

/// Whether this process has a CUDA device; if not, says "[skipped] no CUDA device: REASON".
inline bool have_device() {
  if (cuda::device_count() > 0) return true;
  HYDRA_TEST_SKIP("no CUDA device: " << cuda::no_device_reason());
  return false;
}

/// max |a − b| / max |b| (0 for two empty vectors).
inline double relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double diff = 0, scale = 0;
  for (std::size_t k = 0; k < a.size(); ++k) {
    diff = std::max(diff, std::abs(a[k] - b[k]));
    scale = std::max(scale, std::abs(b[k]));
  }
  return scale > 0 ? diff / scale : diff;
}

} // namespace hydra::test
