#pragma once
// Small helpers shared by the data readers: overflow-checked size arithmetic (file headers are
// untrusted, so every product of header fields is checked before it sizes anything) and the
// quoting of paths in error messages.

#include <cstdint>
#include <filesystem>
#include <limits>
#include <span>
#include <string>

#include "hydra/core/types.hpp"

namespace hydra::detail {

/// a * b, or false when the product would not fit in an index (or an operand is negative).
[[nodiscard]] constexpr bool checked_mul(index a, index b, index& out) noexcept {
  if (a < 0 || b < 0) return false;
  if (a != 0 && b > std::numeric_limits<index>::max() / a) return false;
  out = a * b;
  return true;
}

/// The product of all dims, or false on overflow or a negative dim. The empty product is 1.
[[nodiscard]] constexpr bool checked_product(std::span<const index> dims, index& out) noexcept {
  index p = 1;
  for (index d : dims) {
    if (!checked_mul(p, d, p)) return false;
  }
  out = p;
  return true;
}

/// "'path'" for messages.
[[nodiscard]] inline std::string quoted(const std::filesystem::path& path) { return "'" + path.string() + "'"; }

/// "(a, b, c)" for messages.
[[nodiscard]] inline std::string shape_string(std::span<const index> dims) {
  std::string s = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + ")";
}

} // namespace hydra::detail
