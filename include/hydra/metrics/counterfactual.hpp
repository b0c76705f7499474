#pragma once
// Counterfactual evaluation of attribution scores: does the change of test loss that the scores
// predict for removing training samples agree with the change measured by retraining without them?
//
//   linear_datamodeling_score  - LDS (Park et al. 2023, TRAK; dattri's benchmark): per test point,
//                                the Spearman correlation over m retrained subsets between the sum
//                                of the scores of each subset's removed samples and the loss of the
//                                model retrained without them
//   leave_one_out_correlation  - per test point, Pearson and Spearman over n single removals
//                                between the scores and the measured change of loss
//
// Both average the per-test-point correlations over the test points and give a bootstrap standard
// error of that mean. Sign (hydra's convention): C(i, j) > 0 means removing training sample i
// RAISES the loss of test point j, so a good method correlates POSITIVELY with both measurements.
//
// Scores are float or double; the measured losses and changes are double (they are few, and a
// change of loss is a difference of two losses that float would round away). Sums are in double.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/random.hpp"
#include "hydra/core/types.hpp"
#include "hydra/metrics/agreement.hpp"
#include "hydra/metrics/detail/checks.hpp"

namespace hydra {

/// How the standard error of a mean correlation is estimated.
struct correlation_options {
  /// Bootstrap resamples of the test points (with replacement); at least 2.
  index bootstrap_resamples = 1000;
  /// Seeds the xoshiro256** stream the resamples draw from: the same seed, the same error.
  std::uint64_t seed = 0;
};

/// A correlation per test point and its average over the test points where it is defined.
struct correlation_score {
  /// Mean of per_test_point over the test points where it is defined.
  double mean = std::numeric_limits<double>::quiet_NaN();
  /// Bootstrap standard error of `mean`: the standard deviation (n − 1 denominator) of the means
  /// of `bootstrap_resamples` resamples, with replacement, of the defined per-test-point values.
  double standard_error = std::numeric_limits<double>::quiet_NaN();
  /// One value per test point, in [-1, 1]; NaN where the correlation is undefined (the
  /// predictions or the measurements are constant over the rows kept).
  std::vector<double> per_test_point;
  /// Test points averaged into `mean`.
  index test_points_used = 0;
  /// Test points left out of `mean` because their correlation is undefined.
  index undefined_test_points = 0;
  /// Rows (subsets, or removed samples for leave-one-out) left out of every correlation because
  /// their measurement has a NaN or Inf: retrainings that diverged.
  index subsets_left_out = 0;
};

/// leave_one_out_correlation's two correlations, over the same rows and test points.
struct leave_one_out_result {
  correlation_score pearson;
  correlation_score spearman;
};

namespace detail {

inline void check_positive(const char* fn, const char* name, index value) {
  if (value <= 0) throw invalid_argument(prefix(fn) + name + " = " + std::to_string(value) + " must be positive");
}

/// shape_error unless `size` = rows × cols (both already positive).
inline void check_matrix_size(const char* fn, const char* name, std::size_t size, const char* rows_name, index rows,
                              const char* cols_name, index cols) {
  const auto r = static_cast<std::size_t>(rows), c = static_cast<std::size_t>(cols);
  // r · c could wrap around for absurd sizes and then match by accident.
  if (r > std::numeric_limits<std::size_t>::max() / c || size != r * c)
    throw shape_error(prefix(fn) + name + " has " + std::to_string(size) + " values but " + rows_name + " x " +
                      cols_name + " = " + std::to_string(rows) + " x " + std::to_string(cols) +
                      (r > std::numeric_limits<std::size_t>::max() / c ? "" : " = " + std::to_string(r * c)));
}

/// numerical_error naming the (row, column) of the first NaN or Inf of a row-major matrix.
template <Scalar T>
void check_finite_matrix(const char* fn, const char* name, std::span<const T> values, index cols) {
  const auto c = static_cast<std::size_t>(cols);
  for (std::size_t k = 0; k < values.size(); ++k)
    if (!std::isfinite(values[k]))
      throw numerical_error(prefix(fn) + name + "(" + std::to_string(k / c) + ", " + std::to_string(k % c) +
                            ") = " + format_value(static_cast<double>(values[k])) + " is not finite");
}

/// The rows of a rows × cols matrix of measurements with no NaN or Inf, in order. A non-finite
/// measurement is a retraining that diverged: its row says nothing about the scores, so it is
/// left out rather than failing the whole evaluation. Fewer than 2 rows left: numerical_error.
inline std::vector<std::size_t> finite_rows(const char* fn, const char* name, const char* row_word,
                                            std::span<const double> values, index rows, index cols) {
  const auto c = static_cast<std::size_t>(cols);
  std::vector<std::size_t> kept;
  std::string first_bad;
  for (std::size_t r = 0; r < static_cast<std::size_t>(rows); ++r) {
    bool finite = true;
    for (std::size_t j = 0; j < c && finite; ++j)
      if (!std::isfinite(values[r * c + j])) {
        finite = false;
        if (first_bad.empty())
          first_bad = std::string(name) + "(" + std::to_string(r) + ", " + std::to_string(j) +
                      ") = " + format_value(values[r * c + j]);
      }
    if (finite) kept.push_back(r);
  }
  if (kept.size() < 2)
    throw numerical_error(prefix(fn) + "only " + std::to_string(kept.size()) + " of " + std::to_string(rows) + " " +
                          row_word + " have finite " + name + " (the first non-finite is " + first_bad +
                          "); a correlation needs at least 2");
  return kept;
}

inline void check_options(const char* fn, const correlation_options& options) {
  if (options.bootstrap_resamples < 2)
    throw invalid_argument(prefix(fn) + "options.bootstrap_resamples = " + std::to_string(options.bootstrap_resamples) +
                           " must be at least 2 (the standard error is the spread of the resampled means)");
}

enum class correlation_kind { pearson, spearman };

/// Per test point j, the correlation over rows r < rows of x(r, j) and y(r, j); then the mean
/// and its bootstrap standard error. A column where x or y is constant has no correlation (0/0):
/// NaN and counted, where agreement.hpp's pearson/spearman would throw for the whole call.
template <class X, class Y>
[[nodiscard]] correlation_score correlate_columns(const char* fn, const char* x_name, const char* y_name,
                                                  const char* row_word, std::size_t rows, index cols, X x, Y y,
                                                  correlation_kind kind, index rows_left_out,
                                                  const correlation_options& options) {
  correlation_score out;
  out.subsets_left_out = rows_left_out;
  out.per_test_point.assign(static_cast<std::size_t>(cols), std::numeric_limits<double>::quiet_NaN());
  std::vector<double> xs(rows), ys(rows), defined;
  for (index j = 0; j < cols; ++j) {
    for (std::size_t r = 0; r < rows; ++r) {
      xs[r] = x(r, j);
      ys[r] = y(r, j);
    }
    const std::span<const double> xv(xs), yv(ys);
    if (is_constant(xv) || is_constant(yv)) {
      ++out.undefined_test_points;
      continue;
    }
    const double r = kind == correlation_kind::pearson
                         ? pearson_checked<double, double>(fn, xv, yv)
                         : pearson_checked<double, double>(fn, average_ranks(xv), average_ranks(yv));
    out.per_test_point[static_cast<std::size_t>(j)] = r;
    defined.push_back(r);
  }
  if (defined.empty())
    throw numerical_error(prefix(fn) + "all " + std::to_string(cols) + " test points have constant " + x_name +
                          " or " + y_name + " over the " + std::to_string(rows) + " " + row_word +
                          " kept, so no correlation is defined");
  out.test_points_used = static_cast<index>(defined.size());

  double sum = 0;
  for (const double v : defined) sum += v;
  out.mean = sum / static_cast<double>(defined.size());

  // Bootstrap over test points: the test points are the sample the mean is estimated from, so
  // they are what is resampled. Welford's update keeps the spread exactly 0 when every resampled
  // mean is the same number (a two-pass mean of equal values can be off by an ulp).
  xoshiro256ss rng(options.seed);
  const auto n = static_cast<std::uint64_t>(defined.size());
  double running_mean = 0, squares = 0;
  for (index b = 0; b < options.bootstrap_resamples; ++b) {
    double s = 0;
    for (std::uint64_t k = 0; k < n; ++k) s += defined[static_cast<std::size_t>(bounded(rng, n))];
    const double resampled = s / static_cast<double>(n);
    const double delta = resampled - running_mean;
    running_mean += delta / static_cast<double>(b + 1);
    squares += delta * (resampled - running_mean);
  }
  out.standard_error = std::sqrt(squares / static_cast<double>(options.bootstrap_resamples - 1));
  return out;
}

template <Scalar T>
[[nodiscard]] correlation_score linear_datamodeling_score(std::span<const T> scores, index training_samples,
                                                          index test_points,
                                                          std::span<const std::vector<index>> removed,
                                                          std::span<const double> targets,
                                                          const correlation_options& options) {
  constexpr const char* fn = "linear_datamodeling_score";
  check_options(fn, options);
  check_positive(fn, "training_samples", training_samples);
  check_positive(fn, "test_points", test_points);
  if (removed.size() < 2)
    throw invalid_argument(prefix(fn) + std::to_string(removed.size()) +
                           " subsets given; a correlation over subsets needs at least 2");
  const auto m = static_cast<index>(removed.size());
  check_matrix_size(fn, "scores", scores.size(), "training_samples", training_samples, "test_points", test_points);
  check_matrix_size(fn, "targets", targets.size(), "removed.size()", m, "test_points", test_points);
  for (std::size_t s = 0; s < removed.size(); ++s)
    for (std::size_t k = 0; k < removed[s].size(); ++k) {
      const index i = removed[s][k];
      const std::string at = "removed[" + std::to_string(s) + "][" + std::to_string(k) + "] = " + std::to_string(i);
      if (i < 0 || i >= training_samples)
        throw invalid_argument(prefix(fn) + at + " is outside the training set [0, " +
                               std::to_string(training_samples) + ")");
      // A repeated sample would be counted twice in the prediction.
      if (k > 0 && i <= removed[s][k - 1])
        throw invalid_argument(prefix(fn) + at + " does not follow removed[" + std::to_string(s) + "][" +
                               std::to_string(k - 1) + "] = " + std::to_string(removed[s][k - 1]) +
                               ": each list must be sorted and distinct");
    }
  check_finite_matrix(fn, "scores", scores, test_points);
  const auto kept = finite_rows(fn, "targets", "subsets", targets, m, test_points);

  // p(s, j) = Σ_{i ∈ removed_s} C(i, j): one pass over each kept subset's removed rows, so the
  // cost is Σ|removed_s| · J rather than m · N · J for a dense membership mask.
  const auto J = static_cast<std::size_t>(test_points);
  std::vector<double> predicted(kept.size() * J, 0.0);
  for (std::size_t r = 0; r < kept.size(); ++r) {
    double* row = predicted.data() + r * J;
    for (const index i : removed[kept[r]]) {
      const T* c = scores.data() + static_cast<std::size_t>(i) * J;
      for (std::size_t j = 0; j < J; ++j) row[j] += static_cast<double>(c[j]);
    }
  }
  return correlate_columns(
      fn, "predictions", "targets", "subsets", kept.size(), test_points,
      [&](std::size_t r, index j) { return predicted[r * J + static_cast<std::size_t>(j)]; },
      [&](std::size_t r, index j) { return targets[kept[r] * J + static_cast<std::size_t>(j)]; },
      correlation_kind::spearman, m - static_cast<index>(kept.size()), options);
}

template <Scalar T>
[[nodiscard]] leave_one_out_result leave_one_out_correlation(std::span<const T> scores, std::span<const double> changes,
                                                             index removed_samples, index test_points,
                                                             const correlation_options& options) {
  constexpr const char* fn = "leave_one_out_correlation";
  check_options(fn, options);
  check_positive(fn, "test_points", test_points);
  if (removed_samples < 2)
    throw invalid_argument(prefix(fn) + "removed_samples = " + std::to_string(removed_samples) +
                           "; a correlation over removed samples needs at least 2");
  check_matrix_size(fn, "scores", scores.size(), "removed_samples", removed_samples, "test_points", test_points);
  check_matrix_size(fn, "changes", changes.size(), "removed_samples", removed_samples, "test_points", test_points);
  check_finite_matrix(fn, "scores", scores, test_points);
  const auto kept = finite_rows(fn, "changes", "removed samples", changes, removed_samples, test_points);

  const auto J = static_cast<std::size_t>(test_points);
  const auto x = [&](std::size_t r, index j) {
    return static_cast<double>(scores[kept[r] * J + static_cast<std::size_t>(j)]);
  };
  const auto y = [&](std::size_t r, index j) { return changes[kept[r] * J + static_cast<std::size_t>(j)]; };
  const index left_out = removed_samples - static_cast<index>(kept.size());
  return {correlate_columns(fn, "scores", "changes", "removed samples", kept.size(), test_points, x, y,
                            correlation_kind::pearson, left_out, options),
          correlate_columns(fn, "scores", "changes", "removed samples", kept.size(), test_points, x, y,
                            correlation_kind::spearman, left_out, options)};
}

} // namespace detail

/// Linear datamodeling score (LDS; Park et al. 2023, as in dattri's benchmark) of the scores
/// C (training_samples × test_points, row-major) against m retrainings.
///
/// removed[s] lists, sorted and distinct, the training samples subset s leaves out; targets
/// (m × test_points, row-major) holds the loss of test point j of the model retrained without
/// them (−margin works as well: see docs/metrics.md). The scores predict
///     p(s, j) = Σ_{i ∈ removed[s]} C(i, j),
/// the change of loss j from removing subset s's samples, up to a constant shared by all subsets.
/// The LDS of test point j is the Spearman correlation (average ranks for ties) over the subsets
/// of p(·, j) and targets(·, j); the result averages it over the test points. 1 = the scores order
/// every test point's retrained losses exactly; 0 = no relation; −1 = backwards.
///
/// A subset whose target row has a NaN or Inf (a diverged retraining) is left out of every
/// correlation and counted in subsets_left_out. A test point whose predictions or targets are
/// constant over the subsets kept has no correlation: NaN, counted in undefined_test_points and
/// left out of the mean.
/// Throws invalid_argument for training_samples or test_points ≤ 0, fewer than 2 subsets,
/// bootstrap_resamples < 2, or a removed index outside [0, training_samples), repeated or out of
/// order (naming the subset and position); shape_error when scores or targets have the wrong
/// number of values; numerical_error for a NaN or Inf score (naming its row and column), when
/// fewer than 2 subsets have finite targets, or when every test point is undefined.
[[nodiscard]] inline correlation_score linear_datamodeling_score(std::span<const float> scores, index training_samples,
                                                                 index test_points,
                                                                 std::span<const std::vector<index>> removed,
                                                                 std::span<const double> targets,
                                                                 const correlation_options& options = {}) {
  return detail::linear_datamodeling_score(scores, training_samples, test_points, removed, targets, options);
}
[[nodiscard]] inline correlation_score linear_datamodeling_score(std::span<const double> scores,
                                                                 index training_samples, index test_points,
                                                                 std::span<const std::vector<index>> removed,
                                                                 std::span<const double> targets,
                                                                 const correlation_options& options = {}) {
  return detail::linear_datamodeling_score(scores, training_samples, test_points, removed, targets, options);
}

/// Leave-one-out correlation: row k of scores (removed_samples × test_points, row-major) holds the
/// scores C(i_k, j) of the k-th removed training sample i_k, and row k of changes the measured
///     changes(k, j) = ℓ_j(w retrained without i_k) − ℓ_j(w),
/// positive when removing i_k raised the loss, the same sign as the scores. Per test point, the
/// Pearson and the Spearman correlation over the removed samples; each averaged over the test
/// points with a bootstrap standard error (the same resamples for both).
///
/// A row of changes with a NaN or Inf is left out of both and counted in subsets_left_out; a test
/// point whose scores or changes are constant over the rows kept is NaN and counted in
/// undefined_test_points. Errors as linear_datamodeling_score: invalid_argument for
/// removed_samples < 2 or test_points ≤ 0, shape_error for wrong sizes, numerical_error for a
/// non-finite score, fewer than 2 finite rows, or no defined test point.
[[nodiscard]] inline leave_one_out_result leave_one_out_correlation(std::span<const float> scores,
                                                                    std::span<const double> changes,
                                                                    index removed_samples, index test_points,
                                                                    const correlation_options& options = {}) {
  return detail::leave_one_out_correlation(scores, changes, removed_samples, test_points, options);
}
[[nodiscard]] inline leave_one_out_result leave_one_out_correlation(std::span<const double> scores,
                                                                    std::span<const double> changes,
                                                                    index removed_samples, index test_points,
                                                                    const correlation_options& options = {}) {
  return detail::leave_one_out_correlation(scores, changes, removed_samples, test_points, options);
}

} // namespace hydra
