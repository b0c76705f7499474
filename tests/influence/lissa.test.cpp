// LiSSA against the test's own solve of the reference Hessian on softmax regression with weight
// decay, where every eigenvalue of H (and of every mini-batch Hessian) lies in [λ, s] for the
// scale s used here, so each step contracts by ρ = 1 − λ/s. Whole-set batches: a deterministic
// iteration with a provable error bound. Mini-batches: unbiasedness checked statistically over
// independent seeds. Then determinism, divergence with too small a scale, and bad options.

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/influence/lissa.hpp"
#include "hydra/influence/objective.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "influence/support.hpp"
#include "support/finite_difference.hpp"

namespace hydra::test {
namespace {

struct problem {
  dataset<double> train = make_data(20, 4, 3, 1);
  SoftmaxRegression<double> model{4, 3};  // 15 parameters
  SoftmaxCrossEntropy<double> loss;
  index P = model.parameter_count();
  double lambda = 0.25;
  std::vector<double> w;
  /// ≥ the largest eigenvalue of every (mini-batch) Hessian of the objective (support.hpp).
  double scale = 0;
  std::vector<double> A;  // reference H, row-major
  index k = 3;
  std::vector<double> V;

  problem() {
    w.resize(static_cast<std::size_t>(P));
    model.initialize(vector_view<double>(w.data(), P), 5);
    scale = 1 / softmax_regression_step(train, lambda);
    A = reference_hessian(model, loss, train, w, lambda);
    V = normal_vector(static_cast<std::size_t>(k * P), 23);
  }
  training_objective<SoftmaxRegression<double>, SoftmaxCrossEntropy<double>> objective() {
    return {model, loss, train, vector_view<const double>(w.data(), P), lambda, {.batch_size = 8}};
  }
  std::vector<double> run(const lissa_options& options, lissa_report* report = nullptr) {
    auto op = objective();
    std::vector<double> X(V.size());
    const auto r = lissa(op, matrix_view<const double>(V.data(), k, P), matrix_view<double>(X.data(), k, P), options);
    if (report) *report = r;
    return X;
  }
  /// Row j of (H + shift·I)⁻¹ V, by the test's own elimination.
  std::vector<double> solve(index j, double shift) const {
    auto B = A;
    for (index c = 0; c < P; ++c) B[static_cast<std::size_t>(c * P + c)] += shift;
    return gaussian_solve(B, row_of(V, static_cast<std::size_t>(j), static_cast<std::size_t>(P)));
  }
};

} // namespace

TEST_CASE("LiSSA on whole-set batches converges to (H + s·δ·I)⁻¹ v within its contraction bound") {
  problem p;
  for (const double damping : {0.0, 0.05}) {
    CAPTURE(damping);
    // x_t − x* = M^t (v/s − x*), M = (1 − δ)I − H/s with eigenvalues in [−δ, 1 − δ − λ/s].
    const double rho = std::max(damping, 1 - damping - p.lambda / p.scale);
    const auto depth = static_cast<index>(std::ceil(std::log(1e-11) / std::log(rho)));
    lissa_report report;
    const auto X = p.run({.damping = damping, .scale = p.scale, .depth = depth, .batch_size = 1000,
                          .residual_check = true},
                         &report);
    CHECK(report.effective_damping == p.scale * damping);
    CHECK(report.batch_hvp_calls == depth);
    CHECK(report.hvp_passes == 1);
    for (index j = 0; j < p.k; ++j) {
      CAPTURE(j);
      const auto reference = p.solve(j, p.scale * damping);
      auto start = row_of(p.V, static_cast<std::size_t>(j), static_cast<std::size_t>(p.P));
      for (std::size_t i = 0; i < start.size(); ++i) start[i] = start[i] / p.scale - reference[i];
      const double bound = std::pow(rho, static_cast<double>(depth)) * norm(start);
      const auto x = row_of(X, static_cast<std::size_t>(j), static_cast<std::size_t>(p.P));
      // Rounding adds ~ε·‖x*‖/(1 − ρ) ≈ 1e-14 relative; 1e-12 leaves room.
      CHECK(relative_error(x, reference) * norm(reference) <= bound + 1e-12 * norm(reference));
      CHECK(relative_error(x, reference) <= 1e-9);
      CHECK(report.relative_residuals[static_cast<std::size_t>(j)] <= 1e-9);
      CHECK(report.final_relative_change[static_cast<std::size_t>(j)] <= 1e-10);
    }
  }
  // Too few iterations is visibly off: the check above has teeth.
  const auto early = p.run({.scale = p.scale, .depth = 20, .batch_size = 1000});
  CHECK(relative_error(row_of(early, 0, static_cast<std::size_t>(p.P)), p.solve(0, 0)) > 1e-2);
}

TEST_CASE("LiSSA on mini-batches is unbiased: the mean over seeds is within 4 standard errors of H⁻¹v") {
  problem p;
  const double rho = 1 - p.lambda / p.scale;
  // Each mini-batch step contracts too (every batch Hessian's eigenvalues lie in [λ, s]), so the
  // start is forgotten like ρ^depth ≤ 1e-8, far below the noise; E[H_batch] = H makes the
  // expected iterate follow the exact iteration, so the only error left is variance.
  const auto depth = static_cast<index>(std::ceil(std::log(1e-8) / std::log(rho)));
  const index runs = 64;
  std::vector<std::vector<double>> estimates;
  for (index r = 0; r < runs; ++r)
    estimates.push_back(
        p.run({.scale = p.scale, .depth = depth, .batch_size = 5, .seed = static_cast<std::uint64_t>(100 + r)}));
  const auto averaged = p.run({.scale = p.scale, .depth = depth, .repeats = runs, .batch_size = 5, .seed = 7});

  for (index j = 0; j < p.k; ++j) {
    CAPTURE(j);
    const auto P = static_cast<std::size_t>(p.P);
    const auto reference = p.solve(j, 0);
    std::vector<double> mean(P, 0.0);
    for (const auto& e : estimates)
      for (std::size_t i = 0; i < P; ++i) mean[i] += e[static_cast<std::size_t>(j) * P + i] / static_cast<double>(runs);
    double spread = 0;  // Σ_r ‖x_r − mean‖² / (runs − 1): an estimate of tr Cov(x_r)
    for (const auto& e : estimates)
      for (std::size_t i = 0; i < P; ++i) spread += std::pow(e[static_cast<std::size_t>(j) * P + i] - mean[i], 2);
    spread /= static_cast<double>(runs - 1);
    const double standard_error = std::sqrt(spread / static_cast<double>(runs));
    // ‖mean − x*‖² / (tr Cov / runs) has expectation 1 and a chi-square-like tail: beyond 16
    // (4 standard errors) has probability < 1e-4 for a correct implementation.
    const double error_of_mean = relative_error(mean, reference) * norm(reference);
    const double error_of_repeats =
        relative_error(row_of(averaged, static_cast<std::size_t>(j), P), reference) * norm(reference);
    CHECK(error_of_mean <= 4 * standard_error);
    CHECK(error_of_repeats <= 4 * standard_error);
    // The test has power: the noise is small against x*, so a bias of 10% would be caught.
    CHECK(standard_error <= 0.02 * norm(reference));
    // And the runs really are random (a spread of 0 would make the checks above vacuous).
    CHECK(spread > 0);
  }
}

TEST_CASE("LiSSA is reproducible for a seed and differs for another; whole-set batches ignore the seed") {
  problem p;
  const lissa_options options{.scale = p.scale, .depth = 200, .repeats = 2, .batch_size = 4, .seed = 42};
  const auto a = p.run(options);
  const auto b = p.run(options);
  CHECK(a == b);  // bit for bit
  auto other = options;
  other.seed = 43;
  const auto c = p.run(other);
  CHECK(relative_error(c, a) > 1e-4);

  const auto full_a = p.run({.scale = p.scale, .depth = 50, .batch_size = 20, .seed = 1});
  const auto full_b = p.run({.scale = p.scale, .depth = 50, .batch_size = 20, .seed = 2});
  CHECK(full_a == full_b);
}

TEST_CASE("LiSSA with too small a scale diverges and says so, naming the iteration") {
  problem p;
  // s = scale/100 is far below the largest eigenvalue of H: the iteration multiplies that
  // component by about 1 − 100·μ_max/scale per step and overflows long before depth.
  for (const index batch : {index{1000}, index{4}}) {
    CAPTURE(batch);
    CHECK_THROWS_AS(p.run({.scale = p.scale / 100, .depth = 100000, .batch_size = batch}), numerical_error);
    try {
      p.run({.scale = p.scale / 100, .depth = 100000, .batch_size = batch});
    } catch (const numerical_error& e) {
      const std::string message = e.what();
      CAPTURE(message);
      CHECK(message.find("use a larger scale (lissa_options::scale)") != std::string::npos);
      const auto at = message.find("became NaN or Inf at iteration ");
      REQUIRE(at != std::string::npos);
      const long iteration = std::stol(message.substr(at + 31));
      // Growth by a factor ≳ 10 per step reaches 1e308 within a few hundred steps.
      CHECK(iteration > 1);
      CHECK(iteration < 2000);
    }
  }
}

TEST_CASE("LiSSA refuses bad options and mismatched shapes") {
  problem p;
  CHECK_THROWS_WITH_AS(p.run({.damping = 1}), doctest::Contains("damping 1.0"), invalid_argument);
  CHECK_THROWS_WITH_AS(p.run({.damping = -0.1}), doctest::Contains("damping -0.1"), invalid_argument);
  CHECK_THROWS_WITH_AS(p.run({.scale = 0}), doctest::Contains("scale 0"), invalid_argument);
  CHECK_THROWS_WITH_AS(p.run({.depth = 0}), doctest::Contains("depth 0"), invalid_argument);
  CHECK_THROWS_WITH_AS(p.run({.repeats = 0}), doctest::Contains("repeats 0"), invalid_argument);
  CHECK_THROWS_WITH_AS(p.run({.batch_size = 0}), doctest::Contains("batch_size 0"), invalid_argument);
  auto op = p.objective();
  std::vector<double> X(p.V.size());
  CHECK_THROWS_WITH_AS(lissa(op, matrix_view<const double>(p.V.data(), 1, p.P - 1),
                             matrix_view<double>(X.data(), 1, p.P - 1)),
                       doctest::Contains("right-hand sides 1 x 14"), shape_error);
  CHECK_THROWS_WITH_AS(lissa(op, matrix_view<const double>(p.V.data(), 2, p.P), matrix_view<double>(X.data(), 3, p.P)),
                       doctest::Contains("solutions 3 x 15, expected both k x 15"), shape_error);
}

} // namespace hydra::test
