#pragma once
// Helpers for the hydra::cpu tests: host matrices with padded rows, deterministic random fill,
// per-type tolerances and a norm-wise relative error against references computed in long double.
// The references themselves are written out as plain loops in the tests, never through Eigen or
// the backend under test.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <vector>

#include "hydra/core/types.hpp"

namespace hydra::test {

using real = long double;  // precision of every reference computation

/// Tolerances on the norm-wise relative error max|got − ref| / max|ref| (∞-norm), where ref is
/// computed in long double from the same (exactly representable) inputs.
template <class T>
struct tolerance;
template <>
struct tolerance<double> {
  // eps(double) ≈ 2.2e-16; every kernel here accumulates at most a few dozen rounding errors
  // (sums of ≤ 10 terms, exp/log/tanh from the C library or Eigen), so 1e-13 (≈ 450 eps) is ample
  // while any wrong formula shows up as an O(1) error.
  static constexpr double value = 1e-13;
};
template <>
struct tolerance<float> {
  // eps(float) ≈ 1.2e-7, and Eigen evaluates float tanh/exp with vectorised approximations that
  // are a few ulp off, on top of sums of ≤ 10 terms; 1e-5 (≈ 80 eps) covers that with margin and
  // is still five orders of magnitude below the error of any wrong formula.
  static constexpr double value = 1e-5;
};
template <class T>
inline constexpr double tol = tolerance<T>::value;

/// A rows × cols matrix on the host, row-major with `stride` elements per row; the padding
/// (columns [cols, stride)) holds `pad` so that tests can see reads of it (pad = NaN in an input
/// poisons the result) and writes to it (pad = a sentinel in an output must survive).
template <class T>
struct host_matrix {
  index rows = 0;
  index cols = 0;
  index stride = 0;
  std::vector<T> data;

  host_matrix() = default;
  host_matrix(index rows_, index cols_, index stride_, T pad = std::numeric_limits<T>::quiet_NaN())
      : rows(rows_), cols(cols_), stride(stride_), data(static_cast<std::size_t>(std::max<index>(rows_ * stride_, 1)), pad) {}
  host_matrix(index rows_, index cols_) : host_matrix(rows_, cols_, cols_) {}

  T& operator()(index r, index c) { return data[static_cast<std::size_t>(r * stride + c)]; }
  const T& operator()(index r, index c) const { return data[static_cast<std::size_t>(r * stride + c)]; }
  [[nodiscard]] matrix_view<T> view() { return {data.data(), rows, cols, stride}; }
  [[nodiscard]] matrix_view<const T> view() const { return {data.data(), rows, cols, stride}; }
  [[nodiscard]] matrix_view<const T> cview() const { return view(); }

  /// Every padding element still equals `pad` (compared bitwise-equal for a finite sentinel).
  [[nodiscard]] bool padding_is(T pad) const {
    for (index r = 0; r < rows; ++r)
      for (index c = cols; c < stride; ++c)
        if (!((*this)(r, c) == pad)) return false;
    return true;
  }
};

/// Deterministic uniform values in [lo, hi), rounded to T (so the exact inputs are known).
class random_source {
public:
  explicit random_source(unsigned seed) : engine_(seed) {}

  template <class T>
  T uniform(double lo, double hi) {
    return static_cast<T>(std::uniform_real_distribution<double>(lo, hi)(engine_));
  }
  template <class T>
  void fill(host_matrix<T>& m, double lo = -1, double hi = 1) {
    for (index r = 0; r < m.rows; ++r)
      for (index c = 0; c < m.cols; ++c) m(r, c) = uniform<T>(lo, hi);
  }
  template <class T>
  std::vector<T> values(index n, double lo = -1, double hi = 1) {
    std::vector<T> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = uniform<T>(lo, hi);
    return v;
  }
  template <class T>
  host_matrix<T> filled(index rows, index cols, index stride, double lo = -1, double hi = 1) {
    host_matrix<T> m(rows, cols, stride);
    fill(m, lo, hi);
    return m;
  }

private:
  std::mt19937 engine_;
};

/// A reference result: a rows × cols contiguous long double matrix.
struct ref_matrix {
  index rows = 0;
  index cols = 0;
  std::vector<real> data;

  ref_matrix(index rows_, index cols_) : rows(rows_), cols(cols_), data(static_cast<std::size_t>(rows_ * cols_), 0) {}
  real& operator()(index r, index c) { return data[static_cast<std::size_t>(r * cols + c)]; }
  real operator()(index r, index c) const { return data[static_cast<std::size_t>(r * cols + c)]; }
};

/// max|got − ref| / max|ref| over all elements; max|got − ref| when ref is all zero. NaN or Inf in
/// got gives +Inf, so it always fails a `<= tol` check.
template <class T>
double relative_error(const host_matrix<T>& got, const ref_matrix& ref) {
  REQUIRE(got.rows == ref.rows);
  REQUIRE(got.cols == ref.cols);
  real diff = 0, scale = 0;
  for (index r = 0; r < ref.rows; ++r)
    for (index c = 0; c < ref.cols; ++c) {
      const real g = got(r, c);
      if (!std::isfinite(g)) return std::numeric_limits<double>::infinity();
      diff = std::max(diff, std::fabs(g - ref(r, c)));
      scale = std::max(scale, std::fabs(ref(r, c)));
    }
  return static_cast<double>(scale > 0 ? diff / scale : diff);
}

template <class T>
double relative_error(const std::vector<T>& got, const std::vector<real>& ref) {
  REQUIRE(got.size() == ref.size());
  real diff = 0, scale = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const real g = got[i];
    if (!std::isfinite(g)) return std::numeric_limits<double>::infinity();
    diff = std::max(diff, std::fabs(g - ref[i]));
    scale = std::max(scale, std::fabs(ref[i]));
  }
  return static_cast<double>(scale > 0 ? diff / scale : diff);
}

/// |got − ref| / |ref| for one scalar (|got − ref| when ref == 0).
template <class T>
double relative_error(T got, real ref) {
  if (!std::isfinite(static_cast<real>(got))) return std::numeric_limits<double>::infinity();
  const real diff = std::fabs(static_cast<real>(got) - ref);
  return static_cast<double>(ref != 0 ? diff / std::fabs(ref) : diff);
}

/// A host matrix's elements (without padding) as a reference, e.g. the input of an in-place op.
template <class T>
ref_matrix to_ref(const host_matrix<T>& m) {
  ref_matrix r(m.rows, m.cols);
  for (index i = 0; i < m.rows; ++i)
    for (index j = 0; j < m.cols; ++j) r(i, j) = m(i, j);
  return r;
}

/// Rows of positive values summing to 1 (a softmax output), rounded to T; NaN padding.
template <class T>
host_matrix<T> probabilities(random_source& rng, index rows, index cols) {
  auto p = rng.filled<T>(rows, cols, cols + 1, 0.05, 1);
  for (index i = 0; i < rows; ++i) {
    real total = 0;
    for (index j = 0; j < cols; ++j) total += p(i, j);
    for (index j = 0; j < cols; ++j) p(i, j) = static_cast<T>(real(p(i, j)) / total);
  }
  return p;
}

} // namespace hydra::test
