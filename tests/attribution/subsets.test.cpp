// Subset designs for counterfactual evaluation (attribution/subsets.hpp): the sizes, order and
// independence of random_subsets' draws, their reproducibility and extension to more subsets, the
// leave-one-out design, and check_subsets' refusals.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "hydra/attribution/subsets.hpp"

namespace hydra::test {
namespace {

bool sorted_distinct(const std::vector<index>& v) {
  return std::adjacent_find(v.begin(), v.end(), [](index a, index b) { return a >= b; }) == v.end();
}

TEST_CASE("random_subsets: every subset removes N - round(alpha N) distinct samples, sorted") {
  for (const double alpha : {0.5, 0.9, 0.99, 0.013}) {
    const index N = 1000;
    const auto design = random_subsets(N, 7, alpha, 11);
    CHECK(design.training_set_size == N);
    REQUIRE(design.subsets() == 7);
    const auto removed = N - static_cast<index>(std::llround(alpha * N));
    for (const auto& r : design.removed) {
      CHECK(static_cast<index>(r.size()) == removed);
      CHECK(sorted_distinct(r));
      CHECK(r.front() >= 0);
      CHECK(r.back() < N);
    }
  }
}

TEST_CASE("random_subsets: reproducible, extends to more subsets unchanged, and the subsets differ") {
  const auto a = random_subsets(500, 5, 0.5, 3);
  const auto b = random_subsets(500, 9, 0.5, 3);
  for (std::size_t s = 0; s < a.removed.size(); ++s) CHECK(a.removed[s] == b.removed[s]);
  CHECK(random_subsets(500, 5, 0.5, 4).removed[0] != a.removed[0]);
  for (std::size_t s = 1; s < b.removed.size(); ++s) CHECK(b.removed[s] != b.removed[0]);
}

TEST_CASE("random_subsets: each sample is removed about (1 - alpha) of the time") {
  // 400 subsets removing half of 200 samples: a sample's count is Binomial(400, 0.5), sd 10, so
  // every one of the 200 counts lies within 200 ± 50 (5 sd) unless the draw is biased.
  const auto design = random_subsets(200, 400, 0.5, 9);
  std::vector<index> count(200, 0);
  for (const auto& r : design.removed)
    for (index i : r) ++count[static_cast<std::size_t>(i)];
  for (index c : count) {
    CHECK(c > 150);
    CHECK(c < 250);
  }
}

TEST_CASE("random_subsets: refuses alpha outside (0, 1), m < 2 and subsets that keep or remove nothing") {
  CHECK_THROWS_WITH_AS(random_subsets(100, 10, 1.0, 0),
                       "random_subsets: the kept fraction alpha must be in (0, 1), got 1.000000", invalid_argument);
  CHECK_THROWS_AS(random_subsets(100, 10, 0.0, 0), invalid_argument);
  CHECK_THROWS_AS(random_subsets(100, 10, std::nan(""), 0), invalid_argument);
  CHECK_THROWS_WITH_AS(random_subsets(100, 1, 0.5, 0),
                       "random_subsets: a rank correlation over subsets needs m >= 2 subsets, got 1", invalid_argument);
  CHECK_THROWS_AS(random_subsets(10, 4, 0.99, 0), invalid_argument);  // keeps all 10
  CHECK_THROWS_AS(random_subsets(10, 4, 0.01, 0), invalid_argument);  // keeps none
}

TEST_CASE("leave_one_out_design: one subset per sample; an index outside the set is refused") {
  const std::vector<index> samples{4, 0, 9};
  const auto design = leave_one_out_design(10, samples);
  REQUIRE(design.subsets() == 3);
  CHECK(design.removed[0] == std::vector<index>{4});
  CHECK(design.removed[2] == std::vector<index>{9});
  const std::vector<index> bad{1, 10};
  CHECK_THROWS_WITH_AS(leave_one_out_design(10, bad),
                       "leave_one_out_design: samples[1] = 10 is outside the training set [0, 10)", invalid_argument);
}

TEST_CASE("check_subsets: refuses a subset that removes a whole class, and malformed lists") {
  const std::vector<label_type> labels{0, 1, 2, 0, 1, 2, 2};
  subset_design design{7, {{0, 1}, {1, 4}}};  // subset 1 removes both samples of class 1
  CHECK_THROWS_WITH_AS(check_subsets(design, labels),
                       "check_subsets: subset 1 removes every sample of class 1 (2 samples)", invalid_argument);
  design.removed[1] = {1, 2, 5};
  CHECK_NOTHROW(check_subsets(design, labels));
  design.removed[1] = {2, 1};
  CHECK_THROWS_AS(check_subsets(design, labels), invalid_argument);
  design.removed[1] = {2, 2};
  CHECK_THROWS_AS(check_subsets(design, labels), invalid_argument);
  design.removed[1] = {7};
  CHECK_THROWS_AS(check_subsets(design, labels), invalid_argument);
  design.removed[1] = {};  // removing nothing is the unchanged run: allowed
  CHECK_NOTHROW(check_subsets(design, labels));
  const std::vector<label_type> short_labels{0, 1};
  CHECK_THROWS_AS(check_subsets(design, short_labels), invalid_argument);
}

} // namespace
} // namespace hydra::test
