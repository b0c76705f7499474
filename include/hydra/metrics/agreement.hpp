#pragma once
// Agreement between two contribution arrays of the same shape: how often their signs differ, how
// well their orders and their values correlate, and how far one is from the other. The paper's
// "Approximation Error" experiment scores HYDRA and influence functions against the Hessian-aware
// contributions by sign error rate and Spearman correlation.
//
// Every function takes two host arrays of float or double (a std::vector, std::array or std::span
// converts; for a contiguous n × M matrix pass its n·M values) and returns a double: the sums are
// accumulated in double whatever the input type.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"
#include "hydra/metrics/detail/checks.hpp"

namespace hydra {

namespace detail {

template <Scalar T>
void check_agreement_inputs(const char* fn, std::span<const T> a, std::span<const T> b) {
  check_pair_sizes(fn, "a", a.size(), "b", b.size());
  check_finite(fn, "a", a);
  check_finite(fn, "b", b);
}

// A correlation divides by both standard deviations; a constant array has none.
template <Scalar T>
void check_not_constant(const char* fn, const char* name, std::span<const T> values) {
  if (is_constant(values))
    throw invalid_argument(prefix(fn) + name + " is constant (all " + std::to_string(values.size()) +
                           " values equal " + format_value(static_cast<double>(values.front())) +
                           "), so the correlation is undefined");
}

template <Scalar T>
[[nodiscard]] int sign_of(T v) noexcept {
  return (v > T(0)) - (v < T(0));
}

template <Scalar T>
[[nodiscard]] double sign_error_rate(std::span<const T> a, std::span<const T> b) {
  check_agreement_inputs("sign_error_rate", a, b);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (sign_of(a[i]) != sign_of(b[i])) ++differ;
  return static_cast<double>(differ) / static_cast<double>(a.size());
}

// Pearson of inputs already checked (same size, finite, neither constant).
template <Scalar T, Scalar U>
[[nodiscard]] double pearson_checked(const char* fn, std::span<const T> a, std::span<const U> b) {
  // Pearson is unchanged by positive scaling: scale each array into [-1, 1] (exactly, by a power of
  // two) so that squares of values near the largest double do not overflow.
  const int ea = scale_exponent(a), eb = scale_exponent(b);
  const auto n = static_cast<double>(a.size());
  double ma = 0, mb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    ma += std::ldexp(static_cast<double>(a[i]), -ea);
    mb += std::ldexp(static_cast<double>(b[i]), -eb);
  }
  ma /= n;
  mb /= n;
  // Two passes (mean first, then deviations) rather than Σxy − n·x̄·ȳ, which cancels badly.
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double da = std::ldexp(static_cast<double>(a[i]), -ea) - ma;
    const double db = std::ldexp(static_cast<double>(b[i]), -eb) - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  if (!(saa > 0) || !(sbb > 0))  // only from values so close that the deviations round to zero
    throw invalid_argument(prefix(fn) + (saa > 0 ? "b" : "a") +
                           " has no variance in double precision, so the correlation is undefined");
  // Rounding can carry |r| a few ulps past 1.
  return std::clamp(sab / (std::sqrt(saa) * std::sqrt(sbb)), -1.0, 1.0);
}

template <Scalar T>
[[nodiscard]] double pearson(std::span<const T> a, std::span<const T> b) {
  check_agreement_inputs("pearson", a, b);
  check_not_constant("pearson", "a", a);
  check_not_constant("pearson", "b", b);
  return pearson_checked("pearson", a, b);
}

template <Scalar T>
[[nodiscard]] double spearman(std::span<const T> a, std::span<const T> b) {
  check_agreement_inputs("spearman", a, b);
  check_not_constant("spearman", "a", a);
  check_not_constant("spearman", "b", b);
  const auto ra = average_ranks(a), rb = average_ranks(b);
  return pearson_checked<double, double>("spearman", ra, rb);
}

template <Scalar T>
[[nodiscard]] double relative_error(std::span<const T> a, std::span<const T> b) {
  check_agreement_inputs("relative_error", a, b);
  const int eb = scale_exponent(b);
  if (std::all_of(b.begin(), b.end(), [](T v) { return v == T(0); }))
    throw invalid_argument("relative_error: the reference b is all zeros, so the error relative to it is undefined");
  // One common power-of-two scale for both arrays keeps the ratio exact and the squares finite.
  const int e = std::max(scale_exponent(a), eb);
  double diff = 0, ref = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double ai = std::ldexp(static_cast<double>(a[i]), -e), bi = std::ldexp(static_cast<double>(b[i]), -e);
    diff += (ai - bi) * (ai - bi);
    ref += bi * bi;
  }
  return std::sqrt(diff) / std::sqrt(ref);
}

} // namespace detail

/// Ranks of `values`, 1-based, in input order; tied values share the mean of the positions they
/// occupy (average ranks: {10, 20, 20, 30} -> {1, 2.5, 2.5, 4}). Throws numerical_error for a NaN
/// or Inf, naming the index.
[[nodiscard]] inline std::vector<double> average_ranks(std::span<const float> values) {
  detail::check_finite("average_ranks", "values", values);
  return detail::average_ranks(values);
}
[[nodiscard]] inline std::vector<double> average_ranks(std::span<const double> values) {
  detail::check_finite("average_ranks", "values", values);
  return detail::average_ranks(values);
}

/// Fraction of entries i with sign(a[i]) != sign(b[i]), where sign is -1, 0 or +1 (0.0 and -0.0
/// have sign 0). So a zero against a zero agrees, and a zero against a nonzero value counts as an
/// error. In [0, 1]; symmetric in a and b.
/// Throws shape_error for different lengths, invalid_argument for empty arrays, numerical_error
/// for a NaN or Inf (naming the array and index).
[[nodiscard]] inline double sign_error_rate(std::span<const float> a, std::span<const float> b) {
  return detail::sign_error_rate(a, b);
}
[[nodiscard]] inline double sign_error_rate(std::span<const double> a, std::span<const double> b) {
  return detail::sign_error_rate(a, b);
}

/// Pearson correlation Σ(a−ā)(b−b̄) / √(Σ(a−ā)² · Σ(b−b̄)²), in [-1, 1].
/// Throws invalid_argument when a or b is constant (including a single value): the correlation
/// is 0/0 there. Other errors as sign_error_rate.
[[nodiscard]] inline double pearson(std::span<const float> a, std::span<const float> b) {
  return detail::pearson(a, b);
}
[[nodiscard]] inline double pearson(std::span<const double> a, std::span<const double> b) {
  return detail::pearson(a, b);
}

/// Spearman rank correlation: the Pearson correlation of average_ranks(a) and average_ranks(b),
/// so ties share their mean rank. In [-1, 1]. Errors as pearson (constant arrays have constant
/// ranks).
[[nodiscard]] inline double spearman(std::span<const float> a, std::span<const float> b) {
  return detail::spearman(a, b);
}
[[nodiscard]] inline double spearman(std::span<const double> a, std::span<const double> b) {
  return detail::spearman(a, b);
}

/// ‖a − b‖₂ / ‖b‖₂: the error of the estimate a relative to the REFERENCE b (not symmetric).
/// Throws invalid_argument when b is all zeros. Other errors as sign_error_rate.
[[nodiscard]] inline double relative_error(std::span<const float> a, std::span<const float> b) {
  return detail::relative_error(a, b);
}
[[nodiscard]] inline double relative_error(std::span<const double> a, std::span<const double> b) {
  return detail::relative_error(a, b);
}

} // namespace hydra
