// The inter-class contribution matrix (main text Eq. 23) and its normalisation against values
// worked out by hand, against an independent one-hot matrix product, against the closed form of
// the normalisation of a rank-one matrix, and on bad input.
//
// Tolerances: the hand cases are averages of a few small integers (exact in double) and one
// square root each, 1e-12 relative; the one-hot product sums ~600 terms in another order,
// 1e-10 relative.
#include "hydra/metrics/class_matrix.hpp"

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
}

TEST_CASE_TEMPLATE("inter_class_contribution and its normalisation by hand", T, float, double) {
  // 3 training samples (rows) of classes 0 1 0, 3 test points (columns) of classes 0 1 0:
  //            test: j=0 (0)  j=1 (1)  j=2 (0)
  // i=0 (class 0)      5       -1        7
  // i=1 (class 1)      2        1        4
  // i=2 (class 0)      4        5        8
  // Eq. 23, the mean over the pairs of each block:
  // M(0,0) = (5 + 7 + 4 + 8) / (2·2) = 6      M(0,1) = (−1 + 5) / (2·1) = 2
  // M(1,0) = (2 + 4) / (1·2) = 3              M(1,1) = 1 / (1·1) = 1
  // (Sums instead of means would give 24, 4, 6, 1; absolute values would give M(0,1) = 3.)
  const std::vector<T> C{5, -1, 7, 2, 1, 4, 4, 5, 8};
  const std::vector<label_type> train{0, 1, 0}, test{0, 1, 0};
  const auto M = inter_class_contribution(matrix_view<const T>(C.data(), 3, 3), std::span<const label_type>(train),
                                          test, 2);
  REQUIRE(M.classes == 2);
  CHECK(M(0, 0) == doctest::Approx(6.0).epsilon(tol));
  CHECK(M(0, 1) == doctest::Approx(2.0).epsilon(tol));
  CHECK(M(1, 0) == doctest::Approx(3.0).epsilon(tol));
  CHECK(M(1, 1) == doctest::Approx(1.0).epsilon(tol));
  CHECK(M.view().rows == 2);
  CHECK(M.view().row(1)[0] == M(1, 0));

  // Row sums 6+2 = 8, 3+1 = 4; column sums 6+3 = 9, 2+1 = 3. Each entry over √(row · column):
  // 6/√(8·9) = 1/√2,  2/√(8·3) = 1/√6,  3/√(4·9) = 1/2,  1/√(4·3) = 1/√12
  // (Dividing by √(row b · column a) instead would give 2/√(4·9) = 1/3 at (0, 1).)
  const auto N = normalize_inter_class(M);
  CHECK(N(0, 0) == doctest::Approx(1 / std::sqrt(2.0)).epsilon(tol));
  CHECK(N(0, 1) == doctest::Approx(1 / std::sqrt(6.0)).epsilon(tol));
  CHECK(N(1, 0) == doctest::Approx(0.5).epsilon(tol));
  CHECK(N(1, 1) == doctest::Approx(1 / std::sqrt(12.0)).epsilon(tol));
}

TEST_CASE("normalize_inter_class: closed form of a rank-one matrix, scale invariance, negative sums") {
  // M = u vᵀ with u = (1, 3), v = (1, 2): row sums u_a·Σv, column sums v_b·Σu, so
  // N(a, b) = u_a v_b / √(u_a Σv · v_b Σu) = √(u_a v_b / (Σu Σv)) = √(u_a v_b / 12).
  const class_matrix M{2, {1, 2, 3, 6}};
  const auto N = normalize_inter_class(M);
  CHECK(N(0, 0) == doctest::Approx(std::sqrt(1.0 / 12)).epsilon(tol));
  CHECK(N(0, 1) == doctest::Approx(std::sqrt(2.0 / 12)).epsilon(tol));
  CHECK(N(1, 0) == doctest::Approx(std::sqrt(3.0 / 12)).epsilon(tol));
  CHECK(N(1, 1) == doctest::Approx(std::sqrt(6.0 / 12)).epsilon(tol));
  // Multiplying M by a positive number changes nothing.
  const auto N7 = normalize_inter_class(class_matrix{2, {7, 14, 21, 42}});
  for (std::size_t v = 0; v < 4; ++v) CHECK(N7.values[v] == doctest::Approx(N.values[v]).epsilon(tol));
  // All sums negative: the products are positive and the signs of the entries stay.
  // M = [[−1, −2], [−3, −4]]: rows −3, −7; columns −4, −6; N(0,0) = −1/√(3·4), N(1,1) = −4/√(7·6).
  const auto Nn = normalize_inter_class(class_matrix{2, {-1, -2, -3, -4}});
  CHECK(Nn(0, 0) == doctest::Approx(-1 / std::sqrt(12.0)).epsilon(tol));
  CHECK(Nn(1, 1) == doctest::Approx(-4 / std::sqrt(42.0)).epsilon(tol));
}

TEST_CASE_TEMPLATE("inter_class_contribution equals the one-hot product D_S⁻¹ Sᵀ C T D_T⁻¹", T, float, double) {
  // S (n × K) and T (m × K) one-hot class indicators, D_S and D_T the class counts: an
  // independent way to write Eq. 23, computed here with plain matrix products.
  const index n = 30, m = 20, K = 4;
  xoshiro256ss rng(5);
  std::vector<T> C(static_cast<std::size_t>(n * m));
  for (auto& v : C) v = static_cast<T>(uniform01(rng) - 0.5);
  std::vector<std::int64_t> train(static_cast<std::size_t>(n)), test(static_cast<std::size_t>(m));
  // The first K samples of each set cover every class; the rest are random.
  auto draw = [&](index i) { return i < K ? i : static_cast<std::int64_t>(bounded(rng, K)); };
  for (index i = 0; i < n; ++i) train[static_cast<std::size_t>(i)] = draw(i);
  for (index j = 0; j < m; ++j) test[static_cast<std::size_t>(j)] = draw(j);
  std::vector<double> S(static_cast<std::size_t>(n * K), 0), Tt(static_cast<std::size_t>(m * K), 0);
  std::vector<double> ns(static_cast<std::size_t>(K), 0), mt(static_cast<std::size_t>(K), 0);
  for (index i = 0; i < n; ++i) {
    S[static_cast<std::size_t>(i * K + train[static_cast<std::size_t>(i)])] = 1;
    ns[static_cast<std::size_t>(train[static_cast<std::size_t>(i)])] += 1;
  }
  for (index j = 0; j < m; ++j) {
    Tt[static_cast<std::size_t>(j * K + test[static_cast<std::size_t>(j)])] = 1;
    mt[static_cast<std::size_t>(test[static_cast<std::size_t>(j)])] += 1;
  }
  // CT = C · T (n × K), then Sᵀ · CT (K × K), then the two diagonal scalings.
  std::vector<double> CT(static_cast<std::size_t>(n * K), 0);
  for (index i = 0; i < n; ++i)
    for (index b = 0; b < K; ++b)
      for (index j = 0; j < m; ++j)
        CT[static_cast<std::size_t>(i * K + b)] +=
            static_cast<double>(C[static_cast<std::size_t>(i * m + j)]) * Tt[static_cast<std::size_t>(j * K + b)];
  const auto M = inter_class_contribution(matrix_view<const T>(C.data(), n, m), train, test, K);
  for (index a = 0; a < K; ++a)
    for (index b = 0; b < K; ++b) {
      double expected = 0;
      for (index i = 0; i < n; ++i)
        expected += S[static_cast<std::size_t>(i * K + a)] * CT[static_cast<std::size_t>(i * K + b)];
      expected /= ns[static_cast<std::size_t>(a)] * mt[static_cast<std::size_t>(b)];
      CHECK(M(a, b) == doctest::Approx(expected).epsilon(1e-10));
    }
}

TEST_CASE_TEMPLATE("inter_class_contribution: bad input", T, float, double) {
  const std::vector<T> C{5, -1, 7, 2, 1, 4, 4, 5, 8};
  const matrix_view<const T> c3(C.data(), 3, 3);
  const std::vector<int> labels{0, 1, 0};
  CHECK_THROWS_WITH_AS((void)inter_class_contribution(c3, std::vector<int>{0, 1}, labels, 2),
                       "inter_class_contribution: contributions has 3 rows (training samples) but 2 training labels "
                       "were given",
                       shape_error);
  CHECK_THROWS_WITH_AS((void)inter_class_contribution(c3, labels, std::vector<int>{0, 1, 0, 1}, 2),
                       "inter_class_contribution: contributions has 3 columns (test points) but 4 test labels were "
                       "given",
                       shape_error);
  CHECK_THROWS_WITH_AS((void)inter_class_contribution(c3, std::vector<int>{0, 2, 0}, labels, 2),
                       "inter_class_contribution: train_labels[1] = 2 is outside [0, 2)", invalid_argument);
  CHECK_THROWS_WITH_AS((void)inter_class_contribution(c3, labels, std::vector<int>{0, 1, -1}, 2),
                       "inter_class_contribution: test_labels[2] = -1 is outside [0, 2)", invalid_argument);
  CHECK_THROWS_AS((void)inter_class_contribution(c3, labels, labels, 0), invalid_argument);
  // An empty class: its mean is 0/0.
  CHECK_THROWS_WITH_AS((void)inter_class_contribution(c3, labels, labels, 3),
                       "inter_class_contribution: class 2 has no training sample", invalid_argument);
  CHECK_THROWS_WITH_AS((void)inter_class_contribution(c3, labels, std::vector<int>{0, 0, 0}, 2),
                       "inter_class_contribution: class 1 has no test point", invalid_argument);
  CHECK_THROWS_AS((void)inter_class_contribution(matrix_view<const T>(C.data(), 0, 3), std::vector<int>{}, labels, 2),
                  invalid_argument);
  auto bad = C;
  bad[5] = std::numeric_limits<T>::quiet_NaN();  // row 1, column 2
  CHECK_THROWS_WITH_AS((void)inter_class_contribution(matrix_view<const T>(bad.data(), 3, 3), labels, labels, 2),
                       "inter_class_contribution: contributions(1, 2) = nan is not finite", numerical_error);
}

TEST_CASE("normalize_inter_class: bad input") {
  // Row 0 sums to 1 − 3 = −2, column 0 to 1 + 2 = 3: √(−6) is undefined.
  CHECK_THROWS_WITH_AS((void)normalize_inter_class(class_matrix{2, {1, -3, 2, 1}}),
                       "normalize_inter_class: row sum 0 = -2 times column sum 0 = 3 is not positive, so √(row sum × "
                       "column sum) is undefined",
                       invalid_argument);
  // Zero sums.
  CHECK_THROWS_AS((void)normalize_inter_class(class_matrix{2, {1, -1, -1, 1}}), invalid_argument);
  CHECK_THROWS_AS((void)normalize_inter_class(class_matrix{2, {1, 2, 3}}), shape_error);
  CHECK_THROWS_AS((void)normalize_inter_class(class_matrix{}), shape_error);
  CHECK_THROWS_AS((void)normalize_inter_class(class_matrix{1, {std::numeric_limits<double>::infinity()}}),
                  numerical_error);
}

} // namespace hydra::test
