#pragma once
// Input checks and small helpers shared by the metrics: every message starts with the function's
// name and names the argument, index or size at fault.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <numeric>
#include <ranges>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"
#include "hydra/metrics/concepts.hpp"

namespace hydra::detail {

/// A value as %.9g: enough to tell 1e-9 from 0, which std::to_string(double) cannot.
[[nodiscard]] inline std::string format_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

[[nodiscard]] inline std::string prefix(const char* fn) { return std::string(fn) + ": "; }

/// numerical_error naming the first NaN or Inf of `values`.
template <Scalar T>
void check_finite(const char* fn, const char* name, std::span<const T> values) {
  for (std::size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i]))
      throw numerical_error(prefix(fn) + name + "[" + std::to_string(i) + "] = " + format_value(values[i]) +
                            " is not finite");
}

/// shape_error unless a and b have the same length; invalid_argument when both are empty.
inline void check_pair_sizes(const char* fn, const char* name_a, std::size_t size_a, const char* name_b,
                             std::size_t size_b) {
  if (size_a != size_b)
    throw shape_error(prefix(fn) + name_a + " has " + std::to_string(size_a) + " values but " + name_b + " has " +
                      std::to_string(size_b));
  if (size_a == 0) throw invalid_argument(prefix(fn) + name_a + " and " + name_b + " are empty");
}

/// Element i of a LabelRange, checked to lie in [0, bound).
template <LabelRange R>
[[nodiscard]] index label_at(const char* fn, const char* name, const R& labels, std::size_t i, index bound) {
  using V = std::remove_cvref_t<std::ranges::range_value_t<const R>>;
  const V v = std::ranges::begin(labels)[static_cast<std::ranges::range_difference_t<const R>>(i)];
  if constexpr (std::same_as<V, bool>) {
    const index value = v ? 1 : 0;
    if (value < bound) return value;
    throw invalid_argument(prefix(fn) + name + "[" + std::to_string(i) + "] = " + std::to_string(value) +
                           " is outside [0, " + std::to_string(bound) + ")");
  } else {
    if (std::cmp_greater_equal(v, 0) && std::cmp_less(v, bound)) return static_cast<index>(v);
    throw invalid_argument(prefix(fn) + name + "[" + std::to_string(i) + "] = " + std::to_string(v) +
                           " is outside [0, " + std::to_string(bound) + ")");
  }
}

/// The exponent e with max|values| · 2^-e in [0.5, 1); 0 when every value is 0. Scaling by a power
/// of two is exact, and values in [-1, 1] cannot overflow when squared and summed.
template <Scalar T>
[[nodiscard]] int scale_exponent(std::span<const T> values) {
  double largest = 0;
  for (const T v : values) largest = std::max(largest, std::abs(static_cast<double>(v)));
  int e = 0;
  if (largest > 0) std::frexp(largest, &e);
  return e;
}

/// True when all values compare equal (0.0 and -0.0 are equal).
template <Scalar T>
[[nodiscard]] bool is_constant(std::span<const T> values) {
  return std::all_of(values.begin(), values.end(), [&](T v) { return v == values.front(); });
}

/// 1-based ranks; tied values share the mean of the positions they occupy.
template <Scalar T>
[[nodiscard]] std::vector<double> average_ranks(std::span<const T> values) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return values[x] < values[y]; });
  std::vector<double> ranks(values.size());
  for (std::size_t first = 0; first < order.size();) {
    std::size_t last = first;  // [first, last] is one group of equal values
    while (last + 1 < order.size() && values[order[last + 1]] == values[order[first]]) ++last;
    // Positions first..last hold ranks first+1..last+1; their mean:
    const double rank = 0.5 * static_cast<double>(first + last) + 1.0;
    for (std::size_t p = first; p <= last; ++p) ranks[order[p]] = rank;
    first = last + 1;
  }
  return ranks;
}

} // namespace hydra::detail
