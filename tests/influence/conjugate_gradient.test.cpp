// Conjugate gradient against the test's own solve of the reference Hessian (independent of the
// explicit inverse), with tolerances from the error bound ‖x − x*‖/‖x*‖ ≤ κ·‖r‖/‖v‖; its
// convergence report against residuals the test recomputes; and what it reports, without
// throwing, when it stops early or meets non-positive curvature.

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/influence/conjugate_gradient.hpp"
#include "hydra/influence/objective.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "influence/support.hpp"
#include "support/finite_difference.hpp"

namespace hydra::test {

TEST_CASE("CG solves (H + δI) x = v for k directions at once, within κ times its residual") {
  const auto train = make_data(12, 4, 3, 1);
  SoftmaxRegression<double> model(4, 3);  // 15 parameters
  SoftmaxCrossEntropy<double> loss;
  const index P = model.parameter_count(), k = 4;
  std::vector<double> w(static_cast<std::size_t>(P));
  model.initialize(vector_view<double>(w.data(), P), 2);
  const vector_view<const double> wv(w.data(), P);

  for (const double damping : {0.0, 0.3}) {
    CAPTURE(damping);
    const double lambda = 0.1;
    training_objective objective(model, loss, train, wv, lambda, {.batch_size = 5});
    // H = H_loss + λI with H_loss ⪰ 0 (softmax regression is convex): every eigenvalue of
    // H + δI is ≥ λ + δ and ≤ the Gershgorin bound, so κ ≤ bound / (λ + δ).
    const auto A = reference_hessian(model, loss, train, w, lambda, damping);
    const double kappa = gershgorin_bound(A, static_cast<std::size_t>(P)) / (lambda + damping);
    const auto V = normal_vector(static_cast<std::size_t>(k * P), 17);
    std::vector<double> X(V.size());
    const double tolerance = 1e-11;
    const auto report = conjugate_gradient(objective, matrix_view<const double>(V.data(), k, P),
                                           matrix_view<double>(X.data(), k, P),
                                           {.damping = damping, .tolerance = tolerance, .max_iterations = 200});
    CHECK(report.converged());
    CHECK(report.max_relative_residual() <= tolerance);
    // Exact arithmetic ends in ≤ P steps; rounding may add a few.
    CHECK(report.max_iterations() <= 2 * P);
    CHECK(report.hvp_passes == report.max_iterations());
    CHECK(objective.full_passes() == report.hvp_passes);
    for (index j = 0; j < k; ++j) {
      CAPTURE(j);
      const auto s = static_cast<std::size_t>(j);
      const auto v = row_of(V, s, static_cast<std::size_t>(P)), x = row_of(X, s, static_cast<std::size_t>(P));
      const auto reference = gaussian_solve(A, v);
      // The reported residual is the recursively updated one; the true one may differ by
      // rounding (≈ κ·ε·iterations), far below the tolerance here.
      auto r = multiply(A, x);
      for (std::size_t i = 0; i < r.size(); ++i) r[i] -= v[i];
      CHECK(norm(r) / norm(v) <= 2 * tolerance);
      CHECK(relative_error(x, reference) <= kappa * 2 * tolerance);
      CHECK(report.status[s] == cg_status::converged);
    }
  }
}

TEST_CASE("CG's block of directions equals solving each direction alone") {
  const auto train = make_data(9, 3, 2, 3);
  Mlp<double> model(3, {3}, 2, activation::tanh);
  SoftmaxCrossEntropy<double> loss;
  const index P = model.parameter_count(), k = 3;
  std::vector<double> w(static_cast<std::size_t>(P));
  model.initialize(vector_view<double>(w.data(), P), 4);
  training_objective objective(model, loss, train, vector_view<const double>(w.data(), P), 0.05);
  const cg_options options{.damping = 1.0, .tolerance = 1e-10, .max_iterations = 300};
  const auto V = normal_vector(static_cast<std::size_t>(k * P), 5);
  std::vector<double> X(V.size());
  const auto block = conjugate_gradient(objective, matrix_view<const double>(V.data(), k, P),
                                        matrix_view<double>(X.data(), k, P), options);
  REQUIRE(block.converged());
  for (index j = 0; j < k; ++j) {
    CAPTURE(j);
    std::vector<double> x(static_cast<std::size_t>(P));
    const auto single = conjugate_gradient(objective, matrix_view<const double>(V.data() + j * P, 1, P),
                                           matrix_view<double>(x.data(), 1, P), options);
    CHECK(single.iterations[0] == block.iterations[static_cast<std::size_t>(j)]);
    // The k-wide and the 1-wide HVP differ only in GEMM rounding.
    CHECK(relative_error(row_of(X, static_cast<std::size_t>(j), static_cast<std::size_t>(P)), x) <= 1e-12);
  }
  // In place: solutions = rhs.
  auto Y = V;
  conjugate_gradient(objective, matrix_view<const double>(Y.data(), k, P), matrix_view<double>(Y.data(), k, P),
                     options);
  CHECK(relative_error(Y, X) == 0.0);
}

TEST_CASE("directions that converge at different iterations leave the block one by one") {
  // Diagonal A with distinct eigenvalues: CG ends after as many steps as v has distinct
  // eigen-components (here 1, 4 and 2), so the block shrinks to 2 and then 1 direction, and
  // each direction's arithmetic is still that of its own CG.
  matrix_operator A{{1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 4}, 4};
  const std::vector<double> V{5, 0, 0, 0, 1, 1, 1, 1, 0, 2, 0, 3};
  std::vector<double> X(12);
  const cg_options options{.tolerance = 1e-12, .max_iterations = 10};
  const auto block = conjugate_gradient(A, matrix_view<const double>(V.data(), 3, 4),
                                        matrix_view<double>(X.data(), 3, 4), options);
  CHECK(block.iterations == std::vector<index>{1, 4, 2});
  CHECK(block.hvp_passes == 4);
  for (index j = 0; j < 3; ++j) {
    CAPTURE(j);
    std::vector<double> x(4);
    const auto single = conjugate_gradient(A, matrix_view<const double>(V.data() + 4 * j, 1, 4),
                                           matrix_view<double>(x.data(), 1, 4), options);
    CHECK(single.iterations[0] == block.iterations[static_cast<std::size_t>(j)]);
    CHECK(row_of(X, static_cast<std::size_t>(j), 4) == x);  // the same operations, bit for bit
    CHECK(relative_error(x, gaussian_solve(A.A, row_of(V, static_cast<std::size_t>(j), 4))) <= 1e-15);
  }
}

TEST_CASE("CG reports stopping early, non-positive curvature and zero right-hand sides, without throwing") {
  SUBCASE("the iteration cap: the report's residual is the true residual of the returned iterate") {
    matrix_operator A{{4, 1, 0, 0, 1, 3, 1, 0, 0, 1, 2, 1, 0, 0, 1, 5}, 4};
    std::vector<double> v{1, 2, 3, 4}, x(4);
    const auto report = conjugate_gradient(A, matrix_view<const double>(v.data(), 1, 4),
                                           matrix_view<double>(x.data(), 1, 4),
                                           {.tolerance = 1e-12, .max_iterations = 2});
    CHECK(report.status[0] == cg_status::max_iterations);
    CHECK(report.iterations[0] == 2);
    CHECK_FALSE(report.converged());
    auto r = multiply(A.A, x);
    for (std::size_t i = 0; i < 4; ++i) r[i] -= v[i];
    CHECK(report.relative_residuals[0] == doctest::Approx(norm(r) / norm(v)).epsilon(1e-12));
    CHECK(report.relative_residuals[0] > 1e-3);
    // Given four iterations, CG on a 4 x 4 system finishes (up to rounding).
    const auto full = conjugate_gradient(A, matrix_view<const double>(v.data(), 1, 4),
                                         matrix_view<double>(x.data(), 1, 4),
                                         {.tolerance = 1e-12, .max_iterations = 4});
    CHECK(full.converged());
    CHECK(relative_error(x, gaussian_solve(A.A, v)) <= 1e-13);
  }
  SUBCASE("negative curvature stops only the direction that meets it") {
    // Eigenvalues 3 (along (1, 1)) and −1 (along (1, −1)); the zero direction is done at once.
    matrix_operator A{{1, 2, 2, 1}, 2};
    std::vector<double> v{1, 1, 1, -1, 0, 0}, x(6, 7.0);
    const auto report = conjugate_gradient(A, matrix_view<const double>(v.data(), 3, 2),
                                           matrix_view<double>(x.data(), 3, 2), {.tolerance = 1e-12});
    CHECK(report.status[0] == cg_status::converged);
    CHECK(report.iterations[0] == 1);
    CHECK(x[0] == doctest::Approx(1.0 / 3));
    CHECK(x[1] == doctest::Approx(1.0 / 3));
    CHECK(report.status[1] == cg_status::not_positive_definite);
    CHECK(report.iterations[1] == 1);
    CHECK(x[2] == 0.0);  // the last iterate: the starting point
    CHECK(x[3] == 0.0);
    CHECK(report.status[2] == cg_status::converged);
    CHECK(report.iterations[2] == 0);
    CHECK(report.relative_residuals[2] == 0.0);
    CHECK(x[4] == 0.0);
    CHECK(x[5] == 0.0);
    CHECK_FALSE(report.converged());
    CHECK(std::string(name_of(report.status[1])) == "not_positive_definite");
    // Damping past the negative eigenvalue makes the system positive definite.
    const auto damped = conjugate_gradient(A, matrix_view<const double>(v.data(), 3, 2),
                                           matrix_view<double>(x.data(), 3, 2), {.damping = 2, .tolerance = 1e-12});
    CHECK(damped.converged());
    CHECK(x[2] == doctest::Approx(1.0));  // (A + 2I)(1, −1) = (1, −1)
    CHECK(x[3] == doctest::Approx(-1.0));
  }
}

TEST_CASE("CG refuses bad options, mismatched shapes and NaN") {
  matrix_operator A{{2, 0, 0, 2}, 2};
  std::vector<double> v{1, 2, 3, 4}, x(4);
  const matrix_view<const double> V(v.data(), 2, 2);
  const matrix_view<double> X(x.data(), 2, 2);
  CHECK_THROWS_WITH_AS(conjugate_gradient(A, V, X, {.tolerance = 0}), doctest::Contains("tolerance 0"),
                       invalid_argument);
  CHECK_THROWS_WITH_AS(conjugate_gradient(A, V, X, {.max_iterations = 0}), doctest::Contains("max_iterations 0"),
                       invalid_argument);
  CHECK_THROWS_WITH_AS(conjugate_gradient(A, V, X, {.damping = -1}), doctest::Contains("damping -1"), invalid_argument);
  CHECK_THROWS_WITH_AS(conjugate_gradient(A, matrix_view<const double>(v.data(), 1, 4),
                                          matrix_view<double>(x.data(), 1, 4)),
                       doctest::Contains("right-hand sides 1 x 4"), shape_error);
  CHECK_THROWS_WITH_AS(conjugate_gradient(A, V, matrix_view<double>(x.data(), 1, 2)),
                       doctest::Contains("solutions 1 x 2, expected both k x 2"), shape_error);
  v[3] = std::nan("");
  CHECK_THROWS_WITH_AS(conjugate_gradient(A, V, X), doctest::Contains("right-hand side 1 has a NaN"), numerical_error);
  matrix_operator nan{{1, 0, 0, std::nan("")}, 2};
  v[3] = 1;
  CHECK_THROWS_WITH_AS(conjugate_gradient(nan, V, X), doctest::Contains("NaN or Inf at iteration 1"), numerical_error);
}

} // namespace hydra::test
