#pragma once
// The inter-class contribution matrix of the paper's "Inter-class Contribution" experiment
// (main text Eq. 23 and Figure 2): how much the training samples of class a contribute, on
// average, to the test points of class b, and the normalisation used for the heatmaps.

#include <cmath>
#include <cstddef>
#include <ranges>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"
#include "hydra/metrics/concepts.hpp"
#include "hydra/metrics/detail/checks.hpp"

namespace hydra {

/// A K × K matrix over classes: row a = class of the training samples, column b = class of the
/// test points.
struct class_matrix {
  index classes = 0;           // K
  std::vector<double> values;  // K × K, row-major

  [[nodiscard]] double operator()(index a, index b) const noexcept {
    return values[static_cast<std::size_t>(a * classes + b)];
  }
  [[nodiscard]] matrix_view<const double> view() const noexcept { return {values.data(), classes, classes, classes}; }
};

namespace detail {
template <Scalar T, LabelRange L, LabelRange M>
[[nodiscard]] class_matrix inter_class_contribution(matrix_view<const T> c, const L& train_labels,
                                                    const M& test_labels, index num_classes) {
  constexpr const char* fn = "inter_class_contribution";
  if (num_classes <= 0)
    throw invalid_argument(prefix(fn) + "num_classes = " + std::to_string(num_classes) + " must be positive");
  if (std::cmp_not_equal(c.rows, std::ranges::size(train_labels)))
    throw shape_error(prefix(fn) + "contributions has " + std::to_string(c.rows) + " rows (training samples) but " +
                      std::to_string(std::ranges::size(train_labels)) + " training labels were given");
  if (std::cmp_not_equal(c.cols, std::ranges::size(test_labels)))
    throw shape_error(prefix(fn) + "contributions has " + std::to_string(c.cols) + " columns (test points) but " +
                      std::to_string(std::ranges::size(test_labels)) + " test labels were given");
  if (c.data == nullptr && c.size() > 0)
    throw invalid_argument(prefix(fn) + "the contributions view has no data (null pointer)");

  const auto K = static_cast<std::size_t>(num_classes);
  std::vector<std::size_t> test_class(static_cast<std::size_t>(c.cols));
  std::vector<double> train_count(K, 0), test_count(K, 0);
  for (std::size_t j = 0; j < test_class.size(); ++j) {
    test_class[j] = static_cast<std::size_t>(label_at(fn, "test_labels", test_labels, j, num_classes));
    test_count[test_class[j]] += 1;
  }
  class_matrix out{num_classes, std::vector<double>(K * K, 0.0)};
  for (index i = 0; i < c.rows; ++i) {
    const auto a = static_cast<std::size_t>(label_at(fn, "train_labels", train_labels, static_cast<std::size_t>(i),
                                                     num_classes));
    train_count[a] += 1;
    for (index j = 0; j < c.cols; ++j) {
      const double v = static_cast<double>(c.row(i)[j]);
      if (!std::isfinite(v))
        throw numerical_error(prefix(fn) + "contributions(" + std::to_string(i) + ", " + std::to_string(j) +
                              ") = " + format_value(v) + " is not finite");
      out.values[a * K + test_class[static_cast<std::size_t>(j)]] += v;
    }
  }
  for (std::size_t a = 0; a < K; ++a) {
    // An average over an empty class is 0/0.
    if (train_count[a] == 0)
      throw invalid_argument(prefix(fn) + "class " + std::to_string(a) + " has no training sample");
    if (test_count[a] == 0) throw invalid_argument(prefix(fn) + "class " + std::to_string(a) + " has no test point");
  }
  for (std::size_t a = 0; a < K; ++a)
    for (std::size_t b = 0; b < K; ++b) out.values[a * K + b] /= train_count[a] * test_count[b];
  return out;
}
} // namespace detail

/// Eq. 23 for every pair of classes: entry (a, b) is the MEAN signed contribution
///     C(S_a, T_b) = 1 / (|S_a| · |T_b|) · Σ_{i ∈ S_a} Σ_{j ∈ T_b} C(i, j)
/// over the training samples S_a of class a and the test points T_b of class b. `contributions`
/// is the n_train × n_test host matrix C (entry (i, j) = C(i, j), as contributions() returns it);
/// train_labels has n_train and test_labels n_test classes in [0, num_classes). No absolute
/// values are taken: positive = class a, on average, helps (lowers the loss of) class b.
///
/// Throws shape_error when the label counts do not match the rows / columns; invalid_argument for
/// num_classes <= 0, a label outside [0, num_classes) (naming the array and index) or a class
/// with no training sample or no test point (its average is 0/0); numerical_error for a NaN or
/// Inf contribution (naming the entry).
template <LabelRange L, LabelRange M>
[[nodiscard]] class_matrix inter_class_contribution(matrix_view<const float> contributions, const L& train_labels,
                                                    const M& test_labels, index num_classes) {
  return detail::inter_class_contribution(contributions, train_labels, test_labels, num_classes);
}
template <LabelRange L, LabelRange M>
[[nodiscard]] class_matrix inter_class_contribution(matrix_view<const double> contributions, const L& train_labels,
                                                    const M& test_labels, index num_classes) {
  return detail::inter_class_contribution(contributions, train_labels, test_labels, num_classes);
}

/// The paper's normalisation of the inter-class matrix for its heatmaps ("we divide every matrix
/// entry by √(column sum × row sum)"):
///     N(a, b) = M(a, b) / √(r_a · k_b),   r_a = Σ_b' M(a, b'),   k_b = Σ_a' M(a', b),
/// with the row and column sums taken over the signed entries of M (normally the output of
/// inter_class_contribution). The result is unchanged when M is multiplied by a positive number.
///
/// Throws invalid_argument, naming the row, the column and both sums, when r_a · k_b <= 0 for some
/// entry (a zero sum, or sums of opposite signs: the square root is undefined); shape_error when
/// values does not hold classes² entries; numerical_error for a NaN or Inf entry.
[[nodiscard]] inline class_matrix normalize_inter_class(const class_matrix& m) {
  constexpr const char* fn = "normalize_inter_class";
  if (m.classes <= 0 || std::cmp_not_equal(m.values.size(), m.classes * m.classes))
    throw shape_error(detail::prefix(fn) + "a matrix of " + std::to_string(m.classes) + " classes holds " +
                      std::to_string(m.values.size()) + " values; expected classes² > 0");
  detail::check_finite<double>(fn, "values", m.values);
  const auto K = static_cast<std::size_t>(m.classes);
  std::vector<double> row(K, 0), col(K, 0);
  for (std::size_t a = 0; a < K; ++a)
    for (std::size_t b = 0; b < K; ++b) {
      row[a] += m.values[a * K + b];
      col[b] += m.values[a * K + b];
    }
  class_matrix out{m.classes, std::vector<double>(K * K)};
  for (std::size_t a = 0; a < K; ++a)
    for (std::size_t b = 0; b < K; ++b) {
      if (!((row[a] > 0 && col[b] > 0) || (row[a] < 0 && col[b] < 0)))
        throw invalid_argument(detail::prefix(fn) + "row sum " + std::to_string(a) + " = " +
                               detail::format_value(row[a]) + " times column sum " + std::to_string(b) + " = " +
                               detail::format_value(col[b]) +
                               " is not positive, so √(row sum × column sum) is undefined");
      // √|r|·√|k| rather than √(r·k): the product of two large sums could overflow.
      out.values[a * K + b] = m.values[a * K + b] / (std::sqrt(std::abs(row[a])) * std::sqrt(std::abs(col[b])));
    }
  return out;
}

} // namespace hydra
