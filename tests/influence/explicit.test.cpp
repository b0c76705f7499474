// The explicit inverse and IF through it, against an independent computation: the objective's
// Hessian from the model's own HVPs of unit vectors on the whole training set as one batch (no
// training_objective, no chunking), solved by the test's Gaussian elimination, and C_IF by a
// plain double loop. Then a hand-solved 3 × 3 system, and every refusal.

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/influence/influence.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "influence/support.hpp"
#include "support/finite_difference.hpp"

namespace hydra::test {
namespace {

/// C_IF(r, j) = (1/N) ∇ℓ(train_{tracked r})ᵀ (H + λI + δI)⁻¹ ∇ℓ(test_j), all on the host.
template <class M, class L>
std::vector<double> reference_influence(M& model, L& loss, const dataset<double>& train,
                                        const std::vector<index>& tracked, const dataset<double>& test,
                                        const std::vector<double>& w, double lambda, double damping,
                                        std::vector<double>& s_test) {
  const auto P = static_cast<std::size_t>(model.parameter_count());
  const auto H = reference_hessian(model, loss, train, w, lambda, damping);
  const auto G_train = sample_gradients(model, loss, train, w);
  const auto G_test = sample_gradients(model, loss, test, w);
  const auto M_test = static_cast<std::size_t>(test.size());
  s_test.assign(M_test * P, 0.0);
  std::vector<double> C(tracked.size() * M_test);
  for (std::size_t j = 0; j < M_test; ++j) {
    const auto s = gaussian_solve(H, row_of(G_test, j, P));
    std::copy(s.begin(), s.end(), s_test.begin() + static_cast<std::ptrdiff_t>(j * P));
    for (std::size_t r = 0; r < tracked.size(); ++r) {
      double dot = 0;
      for (std::size_t p = 0; p < P; ++p) dot += G_train[static_cast<std::size_t>(tracked[r]) * P + p] * s[p];
      C[r * M_test + j] = dot / static_cast<double>(train.size());
    }
  }
  return C;
}

template <class M, class L>
void check_explicit_influence(M& model, L& loss, const dataset<double>& train, const dataset<double>& test,
                              const std::vector<double>& w, double lambda, double damping) {
  const index P = model.parameter_count();
  const std::vector<index> tracked{0, 3, 7, 3, 9};  // a repeat is just another row
  influence_options options;
  options.ihvp.method = ihvp_method::explicit_hessian;
  options.ihvp.explicit_hessian.damping = damping;
  options.objective.batch_size = 4;  // chunks of 4, 4, 2 against the reference's single batch
  options.gradient_batch = 3;
  const auto result =
      influence(model, loss, vector_view<const double>(w.data(), P), train, tracked, test, lambda, options);

  std::vector<double> s_reference;
  const auto C_reference = reference_influence(model, loss, train, tracked, test, w, lambda, damping, s_reference);
  REQUIRE(result.contributions.rows() == static_cast<index>(tracked.size()));
  REQUIRE(result.contributions.cols() == test.size());
  // Both are direct solves of a system with condition number ≲ 1e2 in double; they differ only
  // in the order of rounding (chunked sums, Cholesky vs. pivoted elimination): ~1e-14.
  CHECK(relative_error(result.contributions.to_host(), C_reference) <= 1e-10);
  CHECK(relative_error(result.s_test.to_host(), s_reference) <= 1e-10);
  const auto& report = std::get<explicit_report>(result.report);
  CHECK(report.parameters == P);
  CHECK(report.damping == damping);
  CHECK(report.hvp_passes == 1);  // P ≤ 256: one block of the identity
  CHECK(report.relative_asymmetry <= 1e-14);
  CHECK(report.min_pivot > 0);
  CHECK(report.max_pivot >= report.min_pivot);
}

} // namespace

TEST_CASE("IF through the explicit inverse equals an independent solve: softmax regression with weight decay") {
  const auto train = make_data(10, 3, 3, 1);
  const auto test = make_data(4, 3, 3, 2);
  SoftmaxRegression<double> model(3, 3);
  SoftmaxCrossEntropy<double> loss;
  const index P = model.parameter_count();
  const double lambda = 0.05;
  std::vector<double> w0(static_cast<std::size_t>(P));
  model.initialize(vector_view<double>(w0.data(), P), 3);
  const auto w = gradient_descent(model, loss, train, w0, std::vector<double>(10, 1.0), lambda,
                                  softmax_regression_step(train, lambda), 1e-10);
  check_explicit_influence(model, loss, train, test, w, lambda, 0.0);
}

TEST_CASE("IF through the explicit inverse equals an independent solve: tanh MLP with damping") {
  const auto train = make_data(10, 2, 2, 5);
  const auto test = make_data(3, 2, 2, 6);
  Mlp<double> model(2, {3}, 2, activation::tanh);  // 17 parameters
  SoftmaxCrossEntropy<double> loss;
  const index P = model.parameter_count();
  std::vector<double> w(static_cast<std::size_t>(P));
  model.initialize(vector_view<double>(w.data(), P), 7);
  check_explicit_influence(model, loss, train, test, w, 0.01, 0.5);
}

TEST_CASE("explicit_inverse solves a hand-factored 3 x 3 system and reports its pivots") {
  // A = [4 2 0; 2 3 1; 0 1 2], x = (1, −1, 2), A x = (2, 1, 3). Cholesky pivots L_jj²:
  // 4, 3 − 2²/4 = 2, 2 − 1²/2 = 1.5; with δ = 1: 5, 4 − 4/5 = 3.2, 3 − 1/3.2 = 2.6875.
  matrix_operator A{{4, 2, 0, 2, 3, 1, 0, 1, 2}, 3};
  const explicit_inverse inverse(A);
  std::vector<double> b{2, 1, 3}, x(3);
  inverse.solve(matrix_view<const double>(b.data(), 1, 3), matrix_view<double>(x.data(), 1, 3));
  CHECK(relative_error(x, {1, -1, 2}) <= 1e-15);
  CHECK(inverse.report().min_pivot == doctest::Approx(1.5).epsilon(1e-15));
  CHECK(inverse.report().max_pivot == doctest::Approx(4).epsilon(1e-15));
  CHECK(A.calls == 1);

  const explicit_inverse damped(A, {.damping = 1});
  CHECK(damped.report().min_pivot == doctest::Approx(2.6875).epsilon(1e-15));
  CHECK(damped.report().max_pivot == doctest::Approx(5).epsilon(1e-15));
  // (A + I) y = b solved in place (solutions = rhs): check by multiplying back.
  std::vector<double> y = b;
  damped.solve(matrix_view<const double>(y.data(), 1, 3), matrix_view<double>(y.data(), 1, 3));
  auto Ay = multiply(A.A, y);
  for (std::size_t i = 0; i < 3; ++i) Ay[i] += y[i];
  CHECK(relative_error(Ay, b) <= 1e-15);
}

TEST_CASE("explicit_inverse on 70 x 70 matrices (several row blocks of the factorisation)") {
  const std::size_t n = 70;
  const auto B = normal_vector(n * n, 8);
  matrix_operator A{std::vector<double>(n * n, 0.0), static_cast<index>(n)};
  for (std::size_t r = 0; r < n; ++r)  // A = BᵀB/n + 0.1 I: symmetric positive definite
    for (std::size_t c = 0; c < n; ++c) {
      for (std::size_t k = 0; k < n; ++k) A.A[r * n + c] += B[k * n + r] * B[k * n + c] / static_cast<double>(n);
      if (r == c) A.A[r * n + c] += 0.1;
    }
  const explicit_inverse inverse(A);
  const auto V = normal_vector(3 * n, 9);
  std::vector<double> X(V.size());
  inverse.solve(matrix_view<const double>(V.data(), 3, 70), matrix_view<double>(X.data(), 3, 70));
  for (std::size_t j = 0; j < 3; ++j) {
    CAPTURE(j);
    // κ ≲ 4/0.1 = 40: both solves are accurate to ~1e-14.
    CHECK(relative_error(row_of(X, j, n), gaussian_solve(A.A, row_of(V, j, n))) <= 1e-12);
  }
  // A negative pivot in a later block is named by its own index.
  matrix_operator D{std::vector<double>(n * n, 0.0), static_cast<index>(n)};
  for (std::size_t r = 0; r < n; ++r) D.A[r * n + r] = r == 40 ? -1.0 : 1.0;
  CHECK_THROWS_WITH_AS(explicit_inverse{D}, doctest::Contains("Cholesky pivot 40 of 70 is -1.0"), numerical_error);
}

TEST_CASE("explicit_inverse refuses: size limit, not positive definite, singular, bad shapes and values") {
  SUBCASE("more parameters than the limit, default and configured") {
    const auto train = make_data(4, 80, 3, 1);
    Mlp<double> big(80, {64}, 3);  // 5 379 parameters > 5 000
    SoftmaxCrossEntropy<double> loss;
    std::vector<double> w(static_cast<std::size_t>(big.parameter_count()), 0.0);
    training_objective objective(big, loss, train, vector_view<const double>(w.data(), big.parameter_count()), 0.1);
    CHECK_THROWS_WITH_AS(explicit_inverse{objective}, doctest::Contains("|w| = 5379 parameters, more than "
                                                                        "explicit_options::max_parameters = 5000"),
                         invalid_argument);
    CHECK(objective.full_passes() == 0);  // refused before any work

    matrix_operator A{{4, 2, 0, 2, 3, 1, 0, 1, 2}, 3};
    CHECK_THROWS_WITH_AS((explicit_inverse{A, {.max_parameters = 2}}),
                         doctest::Contains("|w| = 3 parameters, more than explicit_options::max_parameters = 2"),
                         invalid_argument);
  }
  SUBCASE("an indefinite H names the failing pivot") {
    matrix_operator A{{1, 2, 2, 1}, 2};  // eigenvalues 3 and −1; second pivot 1 − 4 = −3
    CHECK_THROWS_WITH_AS(explicit_inverse{A}, doctest::Contains("not positive definite: Cholesky pivot 1 of 2 is -3.0"),
                         numerical_error);
    CHECK_NOTHROW((explicit_inverse{A, {.damping = 1.5}}));  // eigenvalues 4.5, 0.5
  }
  SUBCASE("a tanh MLP away from a minimum: H is indefinite, and damping past its spectrum fixes it") {
    const auto train = make_data(10, 2, 2, 5);
    Mlp<double> model(2, {3}, 2, activation::tanh);
    SoftmaxCrossEntropy<double> loss;
    const index P = model.parameter_count();
    std::vector<double> w(static_cast<std::size_t>(P));
    model.initialize(vector_view<double>(w.data(), P), 7);
    // Independent proof of indefiniteness: power iteration on cI − H (c ≥ every |eigenvalue|)
    // finds a v with vᵀHv < 0, and vᵀHv ≥ λ_min(H).
    const auto H = reference_hessian(model, loss, train, w, 0.0);
    const double c = gershgorin_bound(H, static_cast<std::size_t>(P));
    std::vector<double> v(static_cast<std::size_t>(P), 1.0);
    for (int it = 0; it < 2000; ++it) {
      auto u = multiply(H, v);
      for (std::size_t i = 0; i < u.size(); ++i) u[i] = c * v[i] - u[i];
      const double length = norm(u);
      for (std::size_t i = 0; i < u.size(); ++i) v[i] = u[i] / length;
    }
    const auto Hv = multiply(H, v);
    double rayleigh = 0;
    for (std::size_t i = 0; i < v.size(); ++i) rayleigh += v[i] * Hv[i];
    REQUIRE(rayleigh < -0.1);
    training_objective objective(model, loss, train, vector_view<const double>(w.data(), P), 0.0);
    CHECK_THROWS_WITH_AS(explicit_inverse{objective}, doctest::Contains("is not positive definite: Cholesky pivot"),
                         numerical_error);
    CHECK_NOTHROW((explicit_inverse{objective, {.damping = 1.01 * c}}));  // H + δI ⪰ 0.01c·I
  }
  SUBCASE("a singular H: exactly, to working precision, and softmax regression without weight decay") {
    matrix_operator exact{{1, 1, 1, 1}, 2};
    CHECK_THROWS_WITH_AS(explicit_inverse{exact}, doctest::Contains("pivot 1 of 2 is 0.0"), numerical_error);
    const double e = std::numeric_limits<double>::epsilon();
    matrix_operator nearly{{1, 1, 1, 1 + e}, 2};  // pivot ε, below the threshold 2ε
    CHECK_THROWS_WITH_AS(explicit_inverse{nearly}, doctest::Contains("singular to working precision"), numerical_error);

    // Softmax cross-entropy is unchanged when every class's logit moves together, so without
    // weight decay H has null directions (adding the same vector to every class's weights).
    const auto train = make_data(8, 2, 3, 3);
    SoftmaxRegression<double> model(2, 3);
    SoftmaxCrossEntropy<double> loss;
    std::vector<double> w(static_cast<std::size_t>(model.parameter_count()));
    model.initialize(vector_view<double>(w.data(), model.parameter_count()), 1);
    training_objective objective(model, loss, train, vector_view<const double>(w.data(), model.parameter_count()), 0.0);
    CHECK_THROWS_WITH_AS(explicit_inverse{objective}, doctest::Contains("Cholesky pivot"), numerical_error);
    CHECK_NOTHROW((explicit_inverse{objective, {.damping = 1e-3}}));
  }
  SUBCASE("non-finite H, negative damping, mismatched shapes") {
    matrix_operator nan{{1, 0, 0, std::nan("")}, 2};  // H e_0 = (1, 0·NaN) is already NaN
    CHECK_THROWS_WITH_AS(explicit_inverse{nan}, doctest::Contains("H e_0 has a NaN or Inf at entry 1"),
                         numerical_error);
    matrix_operator A{{2, 0, 0, 2}, 2};
    CHECK_THROWS_WITH_AS((explicit_inverse{A, {.damping = -1}}), doctest::Contains("damping -1"), invalid_argument);
    const explicit_inverse inverse(A);
    std::vector<double> v(6, 1.0), x(6);
    CHECK_THROWS_WITH_AS(inverse.solve(matrix_view<const double>(v.data(), 2, 3), matrix_view<double>(x.data(), 2, 3)),
                         doctest::Contains("right-hand sides 2 x 3"), shape_error);
    CHECK_THROWS_WITH_AS(inverse.solve(matrix_view<const double>(v.data(), 2, 2), matrix_view<double>(x.data(), 3, 2)),
                         doctest::Contains("solutions 3 x 2, expected both k x 2"), shape_error);
  }
}

} // namespace hydra::test
