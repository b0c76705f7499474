// Sign error rate, Pearson, Spearman and relative error against values worked out by hand below,
// against independent formulas (Spearman without ties = 1 − 6Σd²/(n(n²−1))), and on bad input.
//
// Tolerances: every input is exactly representable in float, so float and double inputs give the
// same doubles, and the results go through a handful of double roundings (means, sums of < 100
// terms, one square root): 1e-12 relative is ~10^4 ulps of headroom, far below any real mistake
// (a wrong tie rank moves the Spearman value below in the second decimal).
#include "hydra/metrics/agreement.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <doctest/doctest.h>

#include "hydra/core/random.hpp"

namespace hydra::test {
namespace {
constexpr double tol = 1e-12;

template <class T>
std::vector<T> values(std::initializer_list<double> v) {
  std::vector<T> out;
  for (double x : v) out.push_back(static_cast<T>(x));
  return out;
}
} // namespace

TEST_CASE_TEMPLATE("sign_error_rate counts entries whose three-valued signs differ", T, float, double) {
  // a signs: +  −  0  +  −  0
  // b signs: +  +  0  −  −  +
  // differ:      x     x     x   -> 3 of 6 (the zero/zero pair agrees, zero/positive differs)
  const auto a = values<T>({1, -2, 0, 3, -0.5, 0});
  const auto b = values<T>({2, 1, 0, -1, -4, 5});
  CHECK(sign_error_rate(a, b) == doctest::Approx(0.5).epsilon(tol));
  CHECK(sign_error_rate(b, a) == doctest::Approx(0.5).epsilon(tol));  // symmetric
  CHECK(sign_error_rate(a, a) == 0.0);
  // -0.0 and +0.0 both have sign 0; magnitudes do not matter: 0 of 3.
  CHECK(sign_error_rate(values<T>({-0.0, 1e-3, -7}), values<T>({0.0, 100, -1e-3})) == 0.0);
  // Every sign flipped: 1.
  CHECK(sign_error_rate(values<T>({1, -1}), values<T>({-2, 2})) == 1.0);
  // One value each: 1 of 1, then 0 of 1.
  CHECK(sign_error_rate(values<T>({0}), values<T>({-3})) == 1.0);
  CHECK(sign_error_rate(values<T>({4}), values<T>({3})) == 0.0);
}

TEST_CASE_TEMPLATE("pearson on a hand-computed case", T, float, double) {
  // a = 1 2 3 4, mean 2.5, deviations −1.5 −0.5 0.5 1.5, Σ da² = 2.25+0.25+0.25+2.25 = 5
  // b = 2 4 5 9, mean 5,   deviations −3   −1   0   4,   Σ db² = 9+1+0+16 = 26
  // Σ da·db = 4.5 + 0.5 + 0 + 6 = 11  ->  r = 11 / √(5·26) = 11/√130
  const auto a = values<T>({1, 2, 3, 4});
  const auto b = values<T>({2, 4, 5, 9});
  const double expected = 11.0 / std::sqrt(130.0);  // 0.96476...
  CHECK(pearson(a, b) == doctest::Approx(expected).epsilon(tol));
  CHECK(pearson(b, a) == doctest::Approx(expected).epsilon(tol));
  CHECK(pearson(a, a) == doctest::Approx(1.0).epsilon(tol));
  // Negating one array negates r; a positive affine map of one array leaves it alone.
  CHECK(pearson(a, values<T>({-2, -4, -5, -9})) == doctest::Approx(-expected).epsilon(tol));
  CHECK(pearson(values<T>({3, 5, 7, 9}), b) == doctest::Approx(expected).epsilon(tol));  // 2a + 1
  // Two values: always ±1.
  CHECK(pearson(values<T>({0, 1}), values<T>({5, -5})) == doctest::Approx(-1.0).epsilon(tol));
}

TEST_CASE("pearson and relative_error do not overflow or underflow on extreme magnitudes") {
  // Squaring 1e300 overflows double; the scaled computation must give the same answers as for
  // the unscaled arrays (the hand-computed 11/√130 and √5/3 of the other cases).
  const std::vector<double> a{1e300, 2e300, 3e300, 4e300}, b{2e300, 4e300, 5e300, 9e300};
  CHECK(pearson(a, b) == doctest::Approx(11.0 / std::sqrt(130.0)).epsilon(tol));
  const std::vector<double> tiny_a{1e-310, 2e-310, 3e-310, 4e-310}, tiny_b{2e-310, 4e-310, 5e-310, 9e-310};
  // Subnormal inputs carry fewer significant bits: 1e-6 relative.
  CHECK(pearson(tiny_a, tiny_b) == doctest::Approx(11.0 / std::sqrt(130.0)).epsilon(1e-6));
  const std::vector<double> ea{1e300, 0, 3e300}, eb{1e300, 2e300, 2e300};
  CHECK(relative_error(ea, eb) == doctest::Approx(std::sqrt(5.0) / 3.0).epsilon(tol));
}

TEST_CASE_TEMPLATE("average_ranks gives tied values the mean of their positions", T, float, double) {
  // sorted: 10 (pos 1), 20 20 (pos 2, 3 -> 2.5), 30 (pos 4); input order 30 20 10 20
  const auto r = average_ranks(values<T>({30, 20, 10, 20}));
  REQUIRE(r.size() == 4);
  CHECK(r[0] == 4.0);
  CHECK(r[1] == 2.5);
  CHECK(r[2] == 1.0);
  CHECK(r[3] == 2.5);
  // Three-way tie at positions 2, 3, 4 -> 3; -0.0 ties with 0.0.
  const auto s = average_ranks(values<T>({-1, 0.0, -0.0, 0.0}));
  CHECK(s == std::vector<double>{1, 3, 3, 3});
}

TEST_CASE_TEMPLATE("spearman with ties on a hand-computed case", T, float, double) {
  // a = 1 2 2 3 5  -> ranks 1, 2.5, 2.5, 4, 5
  // b = 2 1 4 4 6  -> ranks 2, 1, 3.5, 3.5, 5   (sorted: 1, 2, 4, 4, 6)
  // both rank means are 3:
  // ra − 3 = −2 −0.5 −0.5 1 2,  Σ² = 4 + 0.25 + 0.25 + 1 + 4 = 9.5
  // rb − 3 = −1 −2    0.5 0.5 2, Σ² = 1 + 4 + 0.25 + 0.25 + 4 = 9.5
  // Σ product = 2 + 1 − 0.25 + 0.5 + 4 = 7.25   ->  ρ = 7.25 / 9.5 = 29/38 = 0.76315...
  const auto a = values<T>({1, 2, 2, 3, 5});
  const auto b = values<T>({2, 1, 4, 4, 6});
  CHECK(spearman(a, b) == doctest::Approx(29.0 / 38.0).epsilon(tol));
  CHECK(spearman(b, a) == doctest::Approx(29.0 / 38.0).epsilon(tol));
  // Ranking tied values by position instead (2, 3 and 3, 4) would give 0.9: the test tells them apart.
  // Spearman depends on order only: any increasing map of a leaves it alone (here x -> x³ + 100).
  CHECK(spearman(values<T>({101, 108, 108, 127, 225}), b) == doctest::Approx(29.0 / 38.0).epsilon(tol));
  // Monotone but not linear: Spearman 1, Pearson below 1.
  const auto x = values<T>({1, 2, 3, 4, 5});
  const auto x_cubed = values<T>({1, 8, 27, 64, 125});
  CHECK(spearman(x, x_cubed) == doctest::Approx(1.0).epsilon(tol));
  CHECK(pearson(x, x_cubed) < 0.95);
}

TEST_CASE("spearman without ties matches 1 − 6Σd²/(n(n²−1))") {
  // An independent formula, valid only when all ranks are distinct: random distinct values.
  xoshiro256ss rng(42);
  const std::size_t n = 57;
  std::vector<double> a(n), b(n);
  for (std::size_t i = 0; i < n; ++i) {
    a[i] = uniform01(rng) - 0.5;
    b[i] = a[i] + 0.7 * (uniform01(rng) - 0.5);  // correlated, not identical
  }
  // Ranks by counting: rank(i) = 1 + #{k : v[k] < v[i]} (no ties among doubles drawn this way).
  auto rank = [&](const std::vector<double>& v, std::size_t i) {
    double r = 1;
    for (double w : v) r += w < v[i] ? 1 : 0;
    return r;
  };
  double d2 = 0;
  for (std::size_t i = 0; i < n; ++i) d2 += (rank(a, i) - rank(b, i)) * (rank(a, i) - rank(b, i));
  const double nn = static_cast<double>(n);
  const double expected = 1 - 6 * d2 / (nn * (nn * nn - 1));
  CHECK(expected > 0.5);  // the case is not trivial
  CHECK(expected < 0.99);
  CHECK(spearman(a, b) == doctest::Approx(expected).epsilon(tol));
}

TEST_CASE_TEMPLATE("relative_error takes b as the reference", T, float, double) {
  // b = 1 2 2, ‖b‖ = 3;  a = 1 0 3, a − b = 0 −2 1, ‖a − b‖ = √5  ->  √5 / 3
  // Swapped: ‖a‖ = √10, so relative_error(b, a) = √5/√10 = √0.5.
  const auto a = values<T>({1, 0, 3});
  const auto b = values<T>({1, 2, 2});
  CHECK(relative_error(a, b) == doctest::Approx(std::sqrt(5.0) / 3.0).epsilon(tol));
  CHECK(relative_error(b, a) == doctest::Approx(std::sqrt(0.5)).epsilon(tol));
  CHECK(relative_error(b, b) == 0.0);
  // a = 0: the error is the whole reference, 1.
  CHECK(relative_error(values<T>({0, 0, 0}), b) == doctest::Approx(1.0).epsilon(tol));
}

TEST_CASE_TEMPLATE("constant arrays make the correlations undefined", T, float, double) {
  const auto constant = values<T>({2, 2, 2});
  const auto varying = values<T>({1, 2, 3});
  CHECK_THROWS_AS((void)pearson(constant, varying), invalid_argument);
  CHECK_THROWS_AS((void)pearson(varying, constant), invalid_argument);
  CHECK_THROWS_AS((void)spearman(constant, varying), invalid_argument);
  CHECK_THROWS_WITH_AS((void)spearman(varying, constant), doctest::Contains("b is constant"), invalid_argument);
  CHECK_THROWS_WITH_AS((void)pearson(constant, varying), doctest::Contains("a is constant (all 3 values equal 2)"),
                       invalid_argument);
  // A single value is constant; so is 0.0 against -0.0.
  CHECK_THROWS_AS((void)pearson(values<T>({1}), values<T>({2})), invalid_argument);
  CHECK_THROWS_AS((void)spearman(values<T>({0.0, -0.0}), values<T>({1, 2})), invalid_argument);
  // sign_error_rate and relative_error are defined for constant arrays; a zero reference is not.
  CHECK(sign_error_rate(constant, varying) == 0.0);
  CHECK(relative_error(varying, constant) == doctest::Approx(std::sqrt(2.0) / std::sqrt(12.0)).epsilon(tol));
  CHECK_THROWS_WITH_AS((void)relative_error(varying, values<T>({0, -0.0, 0})), doctest::Contains("all zeros"),
                       invalid_argument);
}

TEST_CASE_TEMPLATE("bad input: different lengths, empty arrays, NaN and Inf", T, float, double) {
  const auto three = values<T>({1, 2, 3});
  const auto four = values<T>({1, 2, 3, 4});
  const std::vector<T> empty;
  CHECK_THROWS_WITH_AS((void)sign_error_rate(three, four), "sign_error_rate: a has 3 values but b has 4",
                       shape_error);
  CHECK_THROWS_AS((void)pearson(four, three), shape_error);
  CHECK_THROWS_AS((void)spearman(three, four), shape_error);
  CHECK_THROWS_AS((void)relative_error(three, four), shape_error);
  CHECK_THROWS_AS((void)relative_error(empty, three), shape_error);

  CHECK_THROWS_WITH_AS((void)spearman(empty, empty), "spearman: a and b are empty", invalid_argument);
  CHECK_THROWS_AS((void)pearson(empty, empty), invalid_argument);
  CHECK_THROWS_AS((void)sign_error_rate(empty, empty), invalid_argument);
  CHECK_THROWS_AS((void)relative_error(empty, empty), invalid_argument);

  auto with_nan = three;
  with_nan[1] = std::numeric_limits<T>::quiet_NaN();
  auto with_inf = four;
  with_inf[3] = -std::numeric_limits<T>::infinity();
  CHECK_THROWS_WITH_AS((void)pearson(three, with_nan), "pearson: b[1] = nan is not finite", numerical_error);
  CHECK_THROWS_WITH_AS((void)spearman(with_inf, four), "spearman: a[3] = -inf is not finite", numerical_error);
  CHECK_THROWS_AS((void)sign_error_rate(with_nan, three), numerical_error);
  CHECK_THROWS_AS((void)relative_error(four, with_inf), numerical_error);
  CHECK_THROWS_WITH_AS((void)average_ranks(with_nan), "average_ranks: values[1] = nan is not finite",
                       numerical_error);
}

} // namespace hydra::test
