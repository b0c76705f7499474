// hydra::LabelRange, positively and negatively: which arrays the metrics take as labels or flags.
#include "hydra/metrics/concepts.hpp"

#include <array>
#include <cstdint>
#include <list>
#include <span>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "hydra/core/types.hpp"
#include "hydra/metrics/detection.hpp"

namespace hydra::test {

static_assert(LabelRange<std::vector<bool>>);  // not contiguous, but random access: accepted
static_assert(LabelRange<std::vector<int>>);
static_assert(LabelRange<std::vector<index>>);
static_assert(LabelRange<std::vector<std::uint8_t>>);
static_assert(LabelRange<std::span<const label_type>>);
static_assert(LabelRange<std::array<std::int64_t, 3>>);

static_assert(!LabelRange<std::vector<double>>);  // scores are not labels
static_assert(!LabelRange<std::vector<char>>);    // text: '1' would read as 49
static_assert(!LabelRange<std::string>);
static_assert(!LabelRange<std::list<int>>);  // no random access
static_assert(!LabelRange<int>);

TEST_CASE("LabelRange: every accepted element type reads the same flags") {
  // Flags 0 1 1 0 against scores 1 2 3 4: the flipped samples score 2 and 3, the clean 1 and 4:
  // of the 4 pairs, 2 > 1 and 3 > 1 are right, 2 < 4 and 3 < 4 are wrong -> AUC 2/4.
  const std::vector<double> scores{1, 2, 3, 4};
  CHECK(detection_auc(scores, std::vector<bool>{false, true, true, false}) == 0.5);
  CHECK(detection_auc(scores, std::vector<std::uint8_t>{0, 1, 1, 0}) == 0.5);
  CHECK(detection_auc(scores, std::array<std::int64_t, 4>{0, 1, 1, 0}) == 0.5);
  const std::vector<label_type> flags{0, 1, 1, 0};
  CHECK(detection_auc(scores, std::span<const label_type>(flags)) == 0.5);
  // And a case that is not 1/2 whatever the reading, so that a misread flag would show.
  CHECK(detection_auc(scores, std::vector<std::uint8_t>{0, 0, 1, 1}) == 1.0);
  CHECK(detection_auc(scores, std::vector<bool>{true, true, false, false}) == 0.0);
  // A large unsigned value must not wrap into range.
  CHECK_THROWS_AS((void)detection_auc(scores, std::vector<std::uint64_t>{0, 1, 1, ~std::uint64_t{0}}),
                  invalid_argument);
}

} // namespace hydra::test
