// The linear datamodeling score and the leave-one-out correlation against independent
// computations: targets that are exact monotone functions of predictions summed in the test from a
// dense membership mask (LDS ±1), a small case with ties worked out by hand, Pearson by the
// textbook one-pass formula and Spearman by 1 − 6Σd²/(n(n²−1)), the bootstrap standard error
// against its closed-form expectation; then diverged subsets, undefined test points and bad input.
//
// Tolerances: 1e-12 relative where the math is exact — the correlations go through a few dozen
// double roundings (sums of < 100 terms, two square roots), so 1e-12 leaves ~10^4 ulps of headroom
// while a wrong tie rank or a wrong sum moves the values in the second decimal. The bootstrap
// tolerance is justified where it is used.
#include "hydra/metrics/counterfactual.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include <doctest/doctest.h>

#include "hydra/core/random.hpp"

namespace hydra::test {
namespace {
constexpr double tol = 1e-12;
constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();

template <class T>
std::vector<T> uniform_matrix(index rows, index cols, xoshiro256ss& rng) {
  std::vector<T> out(static_cast<std::size_t>(rows * cols));
  for (auto& v : out) v = static_cast<T>(2 * uniform01(rng) - 1);
  return out;
}

// Each sample removed with probability 1/2; sorted by construction.
std::vector<std::vector<index>> random_removals(index n, index m, xoshiro256ss& rng) {
  std::vector<std::vector<index>> removed(static_cast<std::size_t>(m));
  for (auto& list : removed)
    for (index i = 0; i < n; ++i)
      if (uniform01(rng) < 0.5) list.push_back(i);
  return removed;
}

// p(s, j) = Σ_i mask(s, i) · C(i, j), from a dense 0/1 membership mask: the textbook form, not the
// library's walk over the removed lists.
template <class T>
std::vector<double> dense_predictions(const std::vector<T>& C, index n, index J,
                                      const std::vector<std::vector<index>>& removed) {
  std::vector<double> p(removed.size() * static_cast<std::size_t>(J), 0.0);
  for (std::size_t s = 0; s < removed.size(); ++s) {
    std::vector<int> mask(static_cast<std::size_t>(n), 0);
    for (const index i : removed[s]) mask[static_cast<std::size_t>(i)] = 1;
    for (index i = 0; i < n; ++i)
      for (index j = 0; j < J; ++j)
        p[s * static_cast<std::size_t>(J) + static_cast<std::size_t>(j)] +=
            mask[static_cast<std::size_t>(i)] * static_cast<double>(C[static_cast<std::size_t>(i * J + j)]);
  }
  return p;
}

// Rows [first, first + count) of a row-major matrix with `cols` columns dropped.
template <class V>
std::vector<V> without_rows(const std::vector<V>& values, index cols, index first, index count) {
  std::vector<V> out(values.begin(), values.begin() + first * cols);
  out.insert(out.end(), values.begin() + (first + count) * cols, values.end());
  return out;
}

void check_same(const correlation_score& a, const correlation_score& b) {
  REQUIRE(a.per_test_point.size() == b.per_test_point.size());
  for (std::size_t j = 0; j < a.per_test_point.size(); ++j)
    CHECK((a.per_test_point[j] == b.per_test_point[j] ||
           (std::isnan(a.per_test_point[j]) && std::isnan(b.per_test_point[j]))));
  CHECK(a.mean == b.mean);
  CHECK(a.standard_error == b.standard_error);
  CHECK(a.test_points_used == b.test_points_used);
  CHECK(a.undefined_test_points == b.undefined_test_points);
}
} // namespace

TEST_CASE_TEMPLATE("LDS is 1 for targets increasing in the predictions and -1 for decreasing", T, float, double) {
  xoshiro256ss rng(11);
  const index N = 30, J = 6, m = 12;
  const auto C = uniform_matrix<T>(N, J, rng);
  const auto removed = random_removals(N, m, rng);
  const auto p = dense_predictions(C, N, J, removed);
  // exp and −x³ are strictly monotone and not affine: only the ranks of the predictions matter.
  std::vector<double> up(p.size()), down(p.size());
  for (std::size_t k = 0; k < p.size(); ++k) {
    up[k] = std::exp(p[k]);
    down[k] = -p[k] * p[k] * p[k];
  }
  const auto inc = linear_datamodeling_score(C, N, J, removed, up);
  const auto dec = linear_datamodeling_score(C, N, J, removed, down);
  REQUIRE(inc.per_test_point.size() == static_cast<std::size_t>(J));
  for (index j = 0; j < J; ++j) {
    CHECK(inc.per_test_point[static_cast<std::size_t>(j)] == doctest::Approx(1.0).epsilon(tol));
    CHECK(dec.per_test_point[static_cast<std::size_t>(j)] == doctest::Approx(-1.0).epsilon(tol));
  }
  CHECK(inc.mean == doctest::Approx(1.0).epsilon(tol));
  CHECK(dec.mean == doctest::Approx(-1.0).epsilon(tol));
  // Every point is ±1 up to a rounding of the final division: no spread to speak of.
  CHECK(inc.standard_error < tol);
  CHECK(dec.standard_error < tol);
  CHECK(inc.test_points_used == J);
  CHECK(inc.undefined_test_points == 0);
  CHECK(inc.subsets_left_out == 0);
}

TEST_CASE_TEMPLATE("LDS on a hand-computed case with ties", T, float, double) {
  // 3 training samples, 2 test points:      C(i, 0)  C(i, 1)
  //                                   i=0      1        1
  //                                   i=1      2        1
  //                                   i=2      4        2
  const std::vector<T> C{1, 1, 2, 1, 4, 2};
  const std::vector<std::vector<index>> removed{{0}, {1}, {0, 1}, {2}, {}};
  // Predictions (sum of the removed rows): column 0: 1 2 3 4 0; column 1: 1 1 2 2 0.
  // Targets:                               column 0: .5 .7 .7 .9 .6; column 1: 3 1 4 5 2.
  const std::vector<double> targets{0.5, 3, 0.7, 1, 0.7, 4, 0.9, 5, 0.6, 2};
  // Column 0: prediction ranks 2 3 4 5 1; target ranks 1 3.5 3.5 5 2 (the two .7 share 3 and 4).
  //   Both means 3; deviations −1 0 1 2 −2 and −2 .5 .5 2 −1:
  //   Σ dp·dt = 2 + 0 + .5 + 4 + 2 = 8.5, Σ dp² = 10, Σ dt² = 4 + .25 + .25 + 4 + 1 = 9.5
  //   -> 8.5 / √95.
  // Column 1: prediction ranks 2.5 2.5 4.5 4.5 1 (1,1 share 2 and 3; 2,2 share 4 and 5); target
  //   ranks 3 1 4 5 2. Deviations −.5 −.5 1.5 1.5 −2 and 0 −2 1 2 −1:
  //   Σ dp·dt = 0 + 1 + 1.5 + 3 + 2 = 7.5, Σ dp² = .25 + .25 + 2.25 + 2.25 + 4 = 9, Σ dt² = 10
  //   -> 7.5 / √90.
  const double r0 = 8.5 / std::sqrt(95.0), r1 = 7.5 / std::sqrt(90.0);
  const auto lds = linear_datamodeling_score(C, 3, 2, removed, targets);
  REQUIRE(lds.per_test_point.size() == 2);
  CHECK(lds.per_test_point[0] == doctest::Approx(r0).epsilon(tol));
  CHECK(lds.per_test_point[1] == doctest::Approx(r1).epsilon(tol));
  CHECK(lds.mean == doctest::Approx((r0 + r1) / 2).epsilon(tol));
  CHECK(lds.test_points_used == 2);
  CHECK(lds.undefined_test_points == 0);
  CHECK(lds.subsets_left_out == 0);
  // The bootstrap means of two values lie in [r1, r0], so their spread is below (r0 − r1)/2.
  CHECK(lds.standard_error > 0);
  CHECK(lds.standard_error < (r0 - r1) / 2);
}

TEST_CASE("LDS against the loss equals LDS against minus the margin") {
  // Softmax cross-entropy: loss = log(1 + exp(−margin)), strictly decreasing in the margin, so the
  // ranks over subsets of the loss and of −margin are the same and so is every Spearman value.
  xoshiro256ss rng(5);
  const index N = 25, J = 4, m = 15;
  const auto C = uniform_matrix<double>(N, J, rng);
  const auto removed = random_removals(N, m, rng);
  std::vector<double> margin(static_cast<std::size_t>(m * J)), loss(margin.size()), minus_margin(margin.size());
  for (std::size_t k = 0; k < margin.size(); ++k) {
    margin[k] = 6 * uniform01(rng) - 2;
    loss[k] = std::log1p(std::exp(-margin[k]));
    minus_margin[k] = -margin[k];
  }
  const auto by_loss = linear_datamodeling_score(C, N, J, removed, loss);
  const auto by_margin = linear_datamodeling_score(C, N, J, removed, minus_margin);
  check_same(by_loss, by_margin);
  CHECK(by_loss.test_points_used == J);
}

TEST_CASE("LDS over single removals is the leave-one-out Spearman") {
  // Subset k removes sample k alone, so p(k, j) = C(k, j); the retrained loss differs from the
  // change of loss by ℓ_j(w), a constant over the subsets, which ranks ignore.
  xoshiro256ss rng(8);
  const index n = 10, J = 5;
  const auto C = uniform_matrix<double>(n, J, rng);
  const auto changes = uniform_matrix<double>(n, J, rng);
  std::vector<std::vector<index>> removed;
  for (index k = 0; k < n; ++k) removed.push_back({k});
  std::vector<double> retrained(changes.size());
  for (std::size_t k = 0; k < changes.size(); ++k) retrained[k] = changes[k] + 2.0;  // ℓ_j(w) = 2 for every j
  const auto lds = linear_datamodeling_score(C, n, J, removed, retrained);
  const auto loo = leave_one_out_correlation(C, changes, n, J);
  for (std::size_t j = 0; j < static_cast<std::size_t>(J); ++j)
    CHECK(lds.per_test_point[j] == doctest::Approx(loo.spearman.per_test_point[j]).epsilon(tol));
}

TEST_CASE_TEMPLATE("leave-one-out Pearson and Spearman against textbook formulas", T, float, double) {
  xoshiro256ss rng(21);
  const index n = 9, J = 5;
  const auto C = uniform_matrix<T>(n, J, rng);
  const auto changes = uniform_matrix<double>(n, J, rng);
  const auto loo = leave_one_out_correlation(C, changes, n, J);
  double pearson_sum = 0, spearman_sum = 0;
  for (index j = 0; j < J; ++j) {
    std::vector<double> x, y;
    for (index k = 0; k < n; ++k) {
      x.push_back(static_cast<double>(C[static_cast<std::size_t>(k * J + j)]));
      y.push_back(changes[static_cast<std::size_t>(k * J + j)]);
    }
    // r = (nΣxy − ΣxΣy) / √((nΣx² − (Σx)²)(nΣy² − (Σy)²)): one pass, unlike the library's two.
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    for (index k = 0; k < n; ++k) {
      const auto i = static_cast<std::size_t>(k);
      sx += x[i];
      sy += y[i];
      sxx += x[i] * x[i];
      syy += y[i] * y[i];
      sxy += x[i] * y[i];
    }
    const double nn = static_cast<double>(n);
    const double r = (nn * sxy - sx * sy) / std::sqrt((nn * sxx - sx * sx) * (nn * syy - sy * sy));
    // Random values are distinct: rank = 1 + how many are smaller; ρ = 1 − 6Σd²/(n(n² − 1)).
    double d2 = 0;
    for (index a = 0; a < n; ++a) {
      double rx = 1, ry = 1;
      for (index b = 0; b < n; ++b) {
        rx += x[static_cast<std::size_t>(b)] < x[static_cast<std::size_t>(a)];
        ry += y[static_cast<std::size_t>(b)] < y[static_cast<std::size_t>(a)];
      }
      d2 += (rx - ry) * (rx - ry);
    }
    const double rho = 1 - 6 * d2 / (nn * (nn * nn - 1));
    CHECK(loo.pearson.per_test_point[static_cast<std::size_t>(j)] == doctest::Approx(r).epsilon(tol));
    CHECK(loo.spearman.per_test_point[static_cast<std::size_t>(j)] == doctest::Approx(rho).epsilon(tol));
    pearson_sum += r;
    spearman_sum += rho;
  }
  CHECK(loo.pearson.mean == doctest::Approx(pearson_sum / static_cast<double>(J)).epsilon(tol));
  CHECK(loo.spearman.mean == doctest::Approx(spearman_sum / static_cast<double>(J)).epsilon(tol));
  CHECK(loo.pearson.test_points_used == J);
  CHECK(loo.spearman.test_points_used == J);
  CHECK(loo.pearson.subsets_left_out == 0);
}

TEST_CASE_TEMPLATE("a diverged retraining is left out and counted", T, float, double) {
  xoshiro256ss rng(3);
  const index N = 20, J = 4, m = 10;
  const auto C = uniform_matrix<T>(N, J, rng);
  auto removed = random_removals(N, m, rng);
  auto targets = uniform_matrix<double>(m, J, rng);

  SUBCASE("linear_datamodeling_score") {
    for (const double bad : {nan, inf, -inf}) {
      auto diverged = targets;
      diverged[static_cast<std::size_t>(3 * J + 2)] = bad;  // subset 3, test point 2
      const auto with = linear_datamodeling_score(C, N, J, removed, diverged);
      auto fewer = removed;
      fewer.erase(fewer.begin() + 3);
      const auto without = linear_datamodeling_score(C, N, J, fewer, without_rows(targets, J, 3, 1));
      check_same(with, without);
      CHECK(with.subsets_left_out == 1);
      CHECK(without.subsets_left_out == 0);
    }
  }
  SUBCASE("leave_one_out_correlation") {
    const index n = 8;
    const auto scores = uniform_matrix<T>(n, J, rng);
    auto changes = uniform_matrix<double>(n, J, rng);
    auto diverged = changes;
    diverged[static_cast<std::size_t>(5 * J + 0)] = nan;  // removed sample 5, test point 0
    const auto with = leave_one_out_correlation(scores, diverged, n, J);
    const auto without =
        leave_one_out_correlation(without_rows(scores, J, 5, 1), without_rows(changes, J, 5, 1), n - 1, J);
    check_same(with.pearson, without.pearson);
    check_same(with.spearman, without.spearman);
    CHECK(with.pearson.subsets_left_out == 1);
    CHECK(with.spearman.subsets_left_out == 1);
  }
}

TEST_CASE_TEMPLATE("a constant column is an undefined test point, counted and left out of the mean", T, float, double) {
  // 3 samples, 4 test points, removals {0} {1} {2} {0,1,2}.
  //   columns 0 and 1: scores 1 2 4 -> predictions 1 2 4 7
  //   column 2: the same scores, constant targets -> undefined
  //   column 3: zero scores -> predictions all 0 -> undefined
  const std::vector<T> C{1, 1, 1, 0, 2, 2, 2, 0, 4, 4, 4, 0};
  const std::vector<std::vector<index>> removed{{0}, {1}, {2}, {0, 1, 2}};
  //                                 col 0 (up)  col 1 (down)  col 2 (constant)  col 3
  const std::vector<double> targets{0.1, 9, 0.25, 5,  //
                                    0.2, 8, 0.25, 6,  //
                                    0.3, 7, 0.25, 7,  //
                                    0.4, 6, 0.25, 8};
  const auto lds = linear_datamodeling_score(C, 3, 4, removed, targets);
  CHECK(lds.per_test_point[0] == doctest::Approx(1.0).epsilon(tol));
  CHECK(lds.per_test_point[1] == doctest::Approx(-1.0).epsilon(tol));
  CHECK(std::isnan(lds.per_test_point[2]));
  CHECK(std::isnan(lds.per_test_point[3]));
  CHECK(lds.test_points_used == 2);
  CHECK(lds.undefined_test_points == 2);
  CHECK(lds.mean == doctest::Approx(0.0).epsilon(tol));  // (1 + (−1)) / 2, not divided by 4 nor NaN

  // Leave-one-out: the same columns, the 4 "subsets" read as 4 removed samples.
  const std::vector<T> scores{1, 1, 1, 0, 2, 2, 2, 0, 4, 4, 4, 0, 7, 7, 7, 0};
  const auto loo = leave_one_out_correlation(scores, targets, 4, 4);
  CHECK(loo.spearman.per_test_point[0] == doctest::Approx(1.0).epsilon(tol));
  CHECK(loo.spearman.per_test_point[1] == doctest::Approx(-1.0).epsilon(tol));
  CHECK(std::isnan(loo.pearson.per_test_point[2]));
  CHECK(std::isnan(loo.pearson.per_test_point[3]));
  CHECK(loo.pearson.undefined_test_points == 2);
  CHECK(loo.spearman.undefined_test_points == 2);
}

TEST_CASE("the bootstrap standard error") {
  SUBCASE("is exactly 0 when every test point has the same value") {
    // Every column identical: bit-identical per-point values, so every resampled mean is the same.
    xoshiro256ss rng(4);
    const index N = 12, J = 7, m = 9;
    std::vector<double> C(static_cast<std::size_t>(N * J)), targets(static_cast<std::size_t>(m * J));
    for (index i = 0; i < N; ++i) {
      const double c = 2 * uniform01(rng) - 1;
      for (index j = 0; j < J; ++j) C[static_cast<std::size_t>(i * J + j)] = c;
    }
    for (index s = 0; s < m; ++s) {
      const double t = uniform01(rng);
      for (index j = 0; j < J; ++j) targets[static_cast<std::size_t>(s * J + j)] = t;
    }
    const auto lds = linear_datamodeling_score(C, N, J, random_removals(N, m, rng), targets);
    CHECK(lds.test_points_used == J);
    CHECK(lds.standard_error == 0.0);
  }
  SUBCASE("agrees with sd / sqrt(J) for many test points") {
    // Two removed samples, so each Pearson value is ±1: a test point is +1 when the changes order
    // the two samples as the scores do. 1400 of J = 2000 points agree, 600 disagree:
    //   mean = (1400 − 600) / 2000 = 0.4, population sd = 2√(0.7 · 0.3).
    // The bootstrap variance of the mean of J values is exactly (population variance) / J; B
    // resamples estimate its square root with a relative standard deviation of about
    // 1/√(2(B − 1)) (the resampled means are close to normal at J = 2000), 0.71% for B = 10000.
    // 4% is more than 5 of those, yet an error in the method (√J vs J, sample vs resample count)
    // would be off by a factor, not by percents.
    const index J = 2000, disagree = 600;
    std::vector<double> scores(static_cast<std::size_t>(2 * J)), changes(scores.size());
    for (index j = 0; j < J; ++j) {
      scores[static_cast<std::size_t>(j)] = 0;  // row 0
      scores[static_cast<std::size_t>(J + j)] = 1;  // row 1
      const bool flip = j % 10 < 3;                 // 3 in every 10
      changes[static_cast<std::size_t>(j)] = flip ? 1 : 0;
      changes[static_cast<std::size_t>(J + j)] = flip ? 0 : 1;
    }
    const correlation_options options{.bootstrap_resamples = 10000, .seed = 7};
    const auto loo = leave_one_out_correlation(scores, changes, 2, J, options);
    const double p = static_cast<double>(disagree) / static_cast<double>(J);
    const double expected = 2 * std::sqrt(p * (1 - p)) / std::sqrt(static_cast<double>(J));
    CHECK(loo.pearson.mean == doctest::Approx(0.4).epsilon(tol));
    CHECK(loo.pearson.standard_error == doctest::Approx(expected).epsilon(0.04).scale(0));
    // Pearson and Spearman are resampled over the same test points with the same draws.
    CHECK(loo.spearman.standard_error == loo.pearson.standard_error);
    // Deterministic for a seed; another seed draws other resamples, within the same tolerance.
    CHECK(leave_one_out_correlation(scores, changes, 2, J, options).pearson.standard_error ==
          loo.pearson.standard_error);
    const auto other = leave_one_out_correlation(scores, changes, 2, J, {.bootstrap_resamples = 10000, .seed = 8});
    CHECK(other.pearson.standard_error != loo.pearson.standard_error);
    CHECK(other.pearson.standard_error == doctest::Approx(expected).epsilon(0.04).scale(0));
  }
  SUBCASE("is 0 for a single defined test point") {
    const std::vector<double> scores{1, 0, 2, 0, 3, 0}, changes{1, 5, 3, 5, 2, 5};  // column 1: constant
    const auto loo = leave_one_out_correlation(scores, changes, 3, 2);
    CHECK(loo.pearson.test_points_used == 1);
    CHECK(loo.pearson.standard_error == 0.0);
  }
}

TEST_CASE_TEMPLATE("linear_datamodeling_score rejects bad input", T, float, double) {
  const std::vector<T> C{1, 2, 3, 4, 5, 6};  // 3 samples x 2 test points
  const std::vector<std::vector<index>> removed{{0}, {1, 2}, {2}};
  const std::vector<double> targets{1, 2, 2, 1, 3, 3};  // 3 subsets x 2 test points
  const auto lds = [](const std::vector<T>& c, index n, index j, const std::vector<std::vector<index>>& r,
                      const std::vector<double>& t, correlation_options o = {}) {
    return linear_datamodeling_score(c, n, j, r, t, o);
  };
  REQUIRE(lds(C, 3, 2, removed, targets).test_points_used == 2);  // the good call works

  CHECK_THROWS_WITH_AS((void)lds({1, 2, 3, 4, 5}, 3, 2, removed, targets),
                       "linear_datamodeling_score: scores has 5 values but training_samples x test_points = "
                       "3 x 2 = 6",
                       shape_error);
  CHECK_THROWS_AS((void)lds(C, 2, 2, removed, targets), shape_error);
  CHECK_THROWS_WITH_AS((void)lds(C, 3, 2, removed, {1, 2, 2, 1}),
                       "linear_datamodeling_score: targets has 4 values but removed.size() x test_points = "
                       "3 x 2 = 6",
                       shape_error);
  CHECK_THROWS_AS((void)lds(C, 3, 2, {{0}, {1}}, targets), shape_error);  // 2 subsets, 3 target rows
  CHECK_THROWS_WITH_AS((void)lds(C, 0, 2, removed, targets),
                       "linear_datamodeling_score: training_samples = 0 must be positive", invalid_argument);
  CHECK_THROWS_AS((void)lds(C, 3, -1, removed, targets), invalid_argument);
  CHECK_THROWS_WITH_AS((void)lds(C, 3, 2, {{0}}, {1, 2}),
                       "linear_datamodeling_score: 1 subsets given; a correlation over subsets needs at least 2",
                       invalid_argument);

  CHECK_THROWS_WITH_AS((void)lds(C, 3, 2, {{0}, {1, 3}, {2}}, targets),
                       "linear_datamodeling_score: removed[1][1] = 3 is outside the training set [0, 3)",
                       invalid_argument);
  CHECK_THROWS_WITH_AS((void)lds(C, 3, 2, {{0}, {1}, {-1}}, targets),
                       "linear_datamodeling_score: removed[2][0] = -1 is outside the training set [0, 3)",
                       invalid_argument);
  CHECK_THROWS_WITH_AS((void)lds(C, 3, 2, {{0}, {2, 2}, {2}}, targets),
                       "linear_datamodeling_score: removed[1][1] = 2 does not follow removed[1][0] = 2: each list "
                       "must be sorted and distinct",
                       invalid_argument);
  CHECK_THROWS_AS((void)lds(C, 3, 2, {{0}, {2, 1}, {2}}, targets), invalid_argument);

  auto bad = C;
  bad[3] = static_cast<T>(nan);  // sample 1, test point 1
  CHECK_THROWS_WITH_AS((void)lds(bad, 3, 2, removed, targets),
                       "linear_datamodeling_score: scores(1, 1) = nan is not finite", numerical_error);
  bad[3] = static_cast<T>(-inf);
  CHECK_THROWS_AS((void)lds(bad, 3, 2, removed, targets), numerical_error);

  CHECK_THROWS_WITH_AS((void)lds(C, 3, 2, removed, {1, nan, 2, 1, inf, 3}),
                       "linear_datamodeling_score: only 1 of 3 subsets have finite targets (the first non-finite is "
                       "targets(0, 1) = nan); a correlation needs at least 2",
                       numerical_error);
  // Every test point undefined: constant targets in both columns.
  CHECK_THROWS_WITH_AS((void)lds(C, 3, 2, removed, {1, 2, 1, 2, 1, 2}),
                       "linear_datamodeling_score: all 2 test points have constant predictions or targets over the "
                       "3 subsets kept, so no correlation is defined",
                       numerical_error);
  CHECK_THROWS_WITH_AS((void)lds(C, 3, 2, removed, targets, {.bootstrap_resamples = 1}),
                       "linear_datamodeling_score: options.bootstrap_resamples = 1 must be at least 2 (the standard "
                       "error is the spread of the resampled means)",
                       invalid_argument);
}

TEST_CASE_TEMPLATE("leave_one_out_correlation rejects bad input", T, float, double) {
  const std::vector<T> scores{1, 2, 3, 4, 5, 7};  // 3 removed samples x 2 test points
  const std::vector<double> changes{1, 2, 2, 1, 3, 3};
  const auto loo = [](const std::vector<T>& s, const std::vector<double>& c, index n, index j) {
    return leave_one_out_correlation(s, c, n, j);
  };
  REQUIRE(loo(scores, changes, 3, 2).pearson.test_points_used == 2);

  CHECK_THROWS_WITH_AS((void)loo(scores, {1, 2, 2, 1}, 3, 2),
                       "leave_one_out_correlation: changes has 4 values but removed_samples x test_points = 3 x 2 = 6",
                       shape_error);
  CHECK_THROWS_AS((void)loo({1, 2, 3, 4}, changes, 3, 2), shape_error);
  CHECK_THROWS_AS((void)loo(scores, changes, 3, 3), shape_error);
  CHECK_THROWS_WITH_AS((void)loo({1, 2}, {1, 2}, 1, 2),
                       "leave_one_out_correlation: removed_samples = 1; a correlation over removed samples needs at "
                       "least 2",
                       invalid_argument);
  CHECK_THROWS_AS((void)loo(scores, changes, 3, 0), invalid_argument);
  auto bad = scores;
  bad[4] = static_cast<T>(inf);
  CHECK_THROWS_WITH_AS((void)loo(bad, changes, 3, 2), "leave_one_out_correlation: scores(2, 0) = inf is not finite",
                       numerical_error);
  CHECK_THROWS_WITH_AS((void)loo(scores, {1, 2, nan, 1, 3, -inf}, 3, 2),
                       "leave_one_out_correlation: only 1 of 3 removed samples have finite changes (the first "
                       "non-finite is changes(1, 0) = nan); a correlation needs at least 2",
                       numerical_error);
  CHECK_THROWS_AS((void)loo(scores, {4, 4, 4, 4, 4, 4}, 3, 2), numerical_error);  // every column constant
  CHECK_THROWS_AS((void)leave_one_out_correlation(scores, changes, 3, 2, {.bootstrap_resamples = 0}),
                  invalid_argument);
}

} // namespace hydra::test

// Outside hydra::test, as a user would write it (and clear of the test helpers' names).
namespace docs_example {
TEST_CASE("docs example") {
  // docs/metrics.md, "Counterfactual evaluation", verbatim.
  // 4 training samples, 2 test points: C(i, j) > 0 means removing i raises the loss of j.
  const std::vector<double> C{0.5, -0.1,  0.2, 0.3,  -0.4, 0.1,  0.1, 0.6};
  // 4 retrainings, each without the listed samples (sorted).
  const std::vector<std::vector<hydra::index>> removed{{0, 1}, {2}, {1, 3}, {0, 2, 3}};
  // The test losses of the retrained models (4 × 2); retraining 3 diverged.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> loss{0.9, 0.4,  0.2, 0.6,  0.5, 1.1,  nan, nan};
  const auto lds = hydra::linear_datamodeling_score(C, 4, 2, removed, loss);

  CHECK(lds.per_test_point[0] == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(lds.per_test_point[1] == doctest::Approx(0.5).epsilon(1e-12));
  CHECK(lds.mean == doctest::Approx(0.75).epsilon(1e-12));
  CHECK(lds.subsets_left_out == 1);
  CHECK(lds.test_points_used == 2);
}
} // namespace docs_example
