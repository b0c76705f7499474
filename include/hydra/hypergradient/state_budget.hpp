#pragma once
// How much memory a tracker's states take, and the refusal, before anything is allocated, of
// states larger than the memory they may fill.

#include <cstddef>
#include <string>

#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"

namespace hydra {

/// Bytes of the two states for n tracked samples of a model with P parameters.
template <Scalar T>
[[nodiscard]] constexpr double hypergradient_state_bytes(index n, index parameters) noexcept {
  return 2.0 * static_cast<double>(n) * static_cast<double>(parameters) * sizeof(T);
}

/// Throws allocation_error when n states of `width` values each exceed `limit` bytes; limit 0 is
/// the backend's own bound (B::memory_available(): a device's free memory, the host's physical
/// memory).
template <Scalar T, class B>
void check_state_budget(index n, index width, std::size_t limit) {
  const double bytes = hypergradient_state_bytes<T>(n, width);
  const double available = static_cast<double>(limit > 0 ? limit : B::memory_available());
  if (bytes > available)
    throw allocation_error("hypergradient_tracker: tracking " + std::to_string(n) + " samples with " +
                           std::to_string(width) + " values each needs " +
                           std::to_string(static_cast<long long>(bytes)) + " bytes for the two states, more than the " +
                           std::to_string(static_cast<long long>(available)) +
                           " bytes available; track fewer samples, use lean mode or a state directory");
}

} // namespace hydra
