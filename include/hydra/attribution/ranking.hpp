#pragma once
// What a user reaches for first: the most helpful and most harmful training samples for a test
// point, and the training set ranked by contribution. All on host memory.

#include <algorithm>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"

namespace hydra {

/// A training sample and its contribution.
struct scored_sample {
  index sample;  // index into the training set
  double score;  // contribution C; positive helps (removing it would raise the test loss)
};

/// All tracked samples ordered by score, highest (most helpful) first; ties keep the order of
/// `tracked`. scores[r] belongs to tracked[r].
template <Scalar T>
[[nodiscard]] std::vector<scored_sample> rank_by_contribution(std::span<const index> tracked, std::span<const T> scores) {
  if (tracked.size() != scores.size())
    throw shape_error("rank_by_contribution: " + std::to_string(tracked.size()) + " tracked samples but " +
                      std::to_string(scores.size()) + " scores");
  std::vector<scored_sample> ranked(tracked.size());
  for (std::size_t r = 0; r < tracked.size(); ++r) ranked[r] = {tracked[r], static_cast<double>(scores[r])};
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
  return ranked;
}

namespace detail {
template <Scalar T>
std::vector<T> column(matrix_view<const T> c, index j) {
  if (j < 0 || j >= c.cols)
    throw invalid_argument("test point " + std::to_string(j) + " is outside [0, " + std::to_string(c.cols) + ")");
  std::vector<T> col(static_cast<std::size_t>(c.rows));
  for (index r = 0; r < c.rows; ++r) col[static_cast<std::size_t>(r)] = c.row(r)[j];
  return col;
}
} // namespace detail

/// The k tracked samples with the largest C(i, j) for test point j, largest first.
/// `contributions` is the n × M host matrix of contributions(), rows in the order of `tracked`.
template <Scalar T>
[[nodiscard]] std::vector<scored_sample> most_helpful(std::span<const index> tracked, matrix_view<const T> contributions,
                                                      index j, index k) {
  auto ranked = rank_by_contribution<T>(tracked, detail::column(contributions, j));
  ranked.resize(std::min<std::size_t>(ranked.size(), static_cast<std::size_t>(std::max<index>(k, 0))));
  return ranked;
}

/// The k tracked samples with the smallest (most negative) C(i, j), most harmful first.
template <Scalar T>
[[nodiscard]] std::vector<scored_sample> most_harmful(std::span<const index> tracked, matrix_view<const T> contributions,
                                                      index j, index k) {
  auto ranked = rank_by_contribution<T>(tracked, detail::column(contributions, j));
  std::reverse(ranked.begin(), ranked.end());
  ranked.resize(std::min<std::size_t>(ranked.size(), static_cast<std::size_t>(std::max<index>(k, 0))));
  return ranked;
}

} // namespace hydra
