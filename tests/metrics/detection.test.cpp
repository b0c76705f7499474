// Mislabel-detection AUC against pair counts worked out by hand, against the trapezoid area under
// an explicit ROC curve built here by sweeping the threshold, and on bad input.
//
// Tolerances: the AUC is a count of pairs (multiples of 1/2) divided by P·Q, each computed
// exactly in double; 1e-12 leaves room only for the final division's rounding. The trapezoid
// cross-check sums ~100 rounded areas: 1e-12 again (each term is exact to ~1e-16).
#include "hydra/metrics/detection.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include <doctest/doctest.h>

#include "hydra/core/random.hpp"

namespace hydra::test {
namespace {
constexpr double tol = 1e-12;

// ROC curve by sweeping the threshold over the distinct scores from the highest down (flag every
// score >= threshold), then the trapezoid rule — no ranks, no pair counting.
template <class T>
double trapezoid_auc(const std::vector<T>& scores, const std::vector<int>& flipped) {
  double P = 0, Q = 0;
  for (int f : flipped) (f ? P : Q) += 1;
  std::vector<T> thresholds = scores;
  std::sort(thresholds.begin(), thresholds.end(), [](T x, T y) { return x > y; });
  thresholds.erase(std::unique(thresholds.begin(), thresholds.end()), thresholds.end());
  double area = 0, fpr_prev = 0, tpr_prev = 0;
  for (T t : thresholds) {
    double tp = 0, fp = 0;
    for (std::size_t i = 0; i < scores.size(); ++i)
      if (scores[i] >= t) (flipped[i] ? tp : fp) += 1;
    const double fpr = fp / Q, tpr = tp / P;
    area += (fpr - fpr_prev) * (tpr + tpr_prev) / 2;
    fpr_prev = fpr;
    tpr_prev = tpr;
  }
  return area;  // the last threshold flags everything: (1, 1)
}
} // namespace

TEST_CASE_TEMPLATE("detection_auc of a 5-sample case by counting pairs", T, float, double) {
  // scores   0.9  0.8  0.8  0.3  0.1
  // flipped   1    0    1    0    0     -> P = 2 flipped, Q = 3 clean, 6 pairs:
  // flipped 0.9 vs clean 0.8, 0.3, 0.1: 3 wins
  // flipped 0.8 vs clean 0.8 (tie: 1/2), 0.3, 0.1 (2 wins)
  // AUC = (3 + 0.5 + 2) / 6 = 5.5/6 = 11/12
  const std::vector<T> scores{T(0.9), T(0.8), T(0.8), T(0.3), T(0.1)};
  const std::vector<int> flipped{1, 0, 1, 0, 0};
  CHECK(detection_auc(scores, flipped) == doctest::Approx(11.0 / 12.0).epsilon(tol));
  CHECK(trapezoid_auc(scores, flipped) == doctest::Approx(11.0 / 12.0).epsilon(tol));
  // The flags may come as std::vector<bool> too.
  const std::vector<bool> as_bool{true, false, true, false, false};
  CHECK(detection_auc(scores, as_bool) == doctest::Approx(11.0 / 12.0).epsilon(tol));
  // The complement labelling is scored by the reversed ranking: 1 − 11/12.
  const std::vector<int> complement{0, 1, 0, 1, 1};
  CHECK(detection_auc(scores, complement) == doctest::Approx(1.0 / 12.0).epsilon(tol));
}

TEST_CASE_TEMPLATE("detection_auc: perfect, backwards, all tied", T, float, double) {
  const std::vector<std::uint8_t> flipped{0, 1, 0, 1};
  // Flipped samples score 3 and 4, clean ones 1 and 2: all 4 pairs right -> 1.
  CHECK(detection_auc(std::vector<T>{1, 3, 2, 4}, flipped) == 1.0);
  // Reversed: 0 of 4 -> 0.
  CHECK(detection_auc(std::vector<T>{4, 2, 3, 1}, flipped) == 0.0);
  // All equal: 4 ties of 1/2 -> 0.5.
  CHECK(detection_auc(std::vector<T>{7, 7, 7, 7}, flipped) == 0.5);
  // The direction is "higher = more suspicious": contributions C must be negated. C below gives
  // the flipped samples the lowest (most harmful) values, so −C scores 1 and C scores 0.
  const std::vector<T> C{T(0.5), T(-0.25), T(0.75), T(-1)};
  std::vector<T> minus_C;
  for (T c : C) minus_C.push_back(-c);
  CHECK(detection_auc(minus_C, flipped) == 1.0);
  CHECK(detection_auc(C, flipped) == 0.0);
}

TEST_CASE_TEMPLATE("detection_auc equals the trapezoid area under the explicit ROC curve", T, float, double) {
  // Scores on a coarse grid (0..6) so that many ties cross the two classes.
  xoshiro256ss rng(7);
  std::vector<T> scores(120);
  std::vector<int> flipped(120);
  for (std::size_t i = 0; i < scores.size(); ++i) {
    flipped[i] = uniform01(rng) < 0.3 ? 1 : 0;
    // Flipped samples score a little higher on average, so the AUC is neither 0.5 nor 1.
    scores[i] = static_cast<T>(bounded(rng, 5) + static_cast<std::uint64_t>(flipped[i] ? bounded(rng, 3) : 0));
  }
  const double expected = trapezoid_auc(scores, flipped);
  CHECK(expected > 0.55);
  CHECK(expected < 0.95);
  CHECK(detection_auc(scores, flipped) == doctest::Approx(expected).epsilon(tol));
}

TEST_CASE_TEMPLATE("detection_auc: bad input", T, float, double) {
  const std::vector<T> scores{1, 2, 3};
  CHECK_THROWS_WITH_AS((void)detection_auc(scores, std::vector<int>{1, 0}),
                       "detection_auc: scores has 3 values but is_flipped has 2", shape_error);
  CHECK_THROWS_WITH_AS((void)detection_auc(std::vector<T>{}, std::vector<int>{}),
                       "detection_auc: scores and is_flipped are empty", invalid_argument);
  CHECK_THROWS_WITH_AS((void)detection_auc(scores, std::vector<int>{0, 0, 0}),
                       "detection_auc: the 3 samples are all clean, so the AUC is undefined", invalid_argument);
  CHECK_THROWS_WITH_AS((void)detection_auc(scores, std::vector<bool>{true, true, true}),
                       "detection_auc: the 3 samples are all flipped, so the AUC is undefined", invalid_argument);
  CHECK_THROWS_WITH_AS((void)detection_auc(scores, std::vector<int>{0, 2, 1}),
                       "detection_auc: is_flipped[1] = 2 is outside [0, 2)", invalid_argument);
  CHECK_THROWS_AS((void)detection_auc(scores, std::vector<long long>{0, -1, 1}), invalid_argument);
  auto bad = scores;
  bad[2] = std::numeric_limits<T>::quiet_NaN();
  CHECK_THROWS_WITH_AS((void)detection_auc(bad, std::vector<int>{0, 1, 0}),
                       "detection_auc: scores[2] = nan is not finite", numerical_error);
  bad[2] = std::numeric_limits<T>::infinity();
  CHECK_THROWS_AS((void)detection_auc(bad, std::vector<int>{0, 1, 0}), numerical_error);
}

} // namespace hydra::test
