#pragma once
// Mislabel detection: how well a per-sample score singles out the training samples whose labels
// were flipped, as the area under the ROC curve (AUC).

#include <cstddef>
#include <ranges>
#include <span>
#include <string>

#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"
#include "hydra/metrics/concepts.hpp"
#include "hydra/metrics/detail/checks.hpp"

namespace hydra {

namespace detail {
template <Scalar T, LabelRange F>
[[nodiscard]] double detection_auc(std::span<const T> scores, const F& is_flipped) {
  constexpr const char* fn = "detection_auc";
  check_pair_sizes(fn, "scores", scores.size(), "is_flipped", std::ranges::size(is_flipped));
  check_finite(fn, "scores", scores);
  // Mann–Whitney: with average ranks, the rank sum of the flipped samples minus its smallest
  // possible value P(P+1)/2 counts the (flipped, clean) pairs the score orders correctly, a tie
  // counting 1/2.
  const auto ranks = average_ranks(scores);
  double rank_sum = 0;
  std::size_t positives = 0;
  for (std::size_t i = 0; i < scores.size(); ++i)
    if (label_at(fn, "is_flipped", is_flipped, i, 2) == 1) {
      rank_sum += ranks[i];
      ++positives;
    }
  const std::size_t negatives = scores.size() - positives;
  if (positives == 0 || negatives == 0)
    throw invalid_argument(prefix(fn) + "the " + std::to_string(scores.size()) + " samples are all " +
                           (positives == 0 ? "clean" : "flipped") + ", so the AUC is undefined");
  const auto p = static_cast<double>(positives), q = static_cast<double>(negatives);
  return (rank_sum - p * (p + 1) / 2) / (p * q);
}
} // namespace detail

/// Area under the ROC curve for finding the flipped samples by their score. HIGHER score = MORE
/// SUSPICIOUS: the curve is traced by flagging every sample whose score is at least a threshold,
/// from the highest threshold down. Equals the Mann–Whitney probability
///     P(score of a flipped sample > score of a clean one) + ½ · P(the two scores tie),
/// over all (flipped, clean) pairs: 1 = every flipped sample ranks above every clean one, 0.5 =
/// chance (or all scores equal), 0 = exactly backwards.
///
/// HYDRA's contributions C are positive for samples that help, so mislabelled samples are expected
/// to have the lowest C: pass the negated contributions (−C) as scores.
///
/// is_flipped[i] is 1 (or true) for a flipped sample, 0 for a clean one.
/// Throws shape_error for different lengths, invalid_argument for empty input, a flag other than
/// 0/1 (naming the index) or no flipped or no clean sample, numerical_error for a NaN or Inf score
/// (naming the index).
template <LabelRange F>
[[nodiscard]] double detection_auc(std::span<const float> scores, const F& is_flipped) {
  return detail::detection_auc(scores, is_flipped);
}
template <LabelRange F>
[[nodiscard]] double detection_auc(std::span<const double> scores, const F& is_flipped) {
  return detail::detection_auc(scores, is_flipped);
}

} // namespace hydra
