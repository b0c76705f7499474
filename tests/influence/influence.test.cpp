// What C_IF means, checked by retraining: on softmax regression with weight decay (strongly
// convex), trained to convergence by the test's own full-batch gradient descent,
//   (a) −(1/N)·dℓ_j/dε_i from retraining with sample i weighted 1/N + ε equals C_IF(i, j) (the
//       derivative IF claims to be, to finite-difference accuracy);
//   (b) removing sample i and retraining changes test loss j by C_IF(i, j) up to a remainder
//       that is second order: removing HALF of its weight leaves a quarter of that remainder.
// Then the three methods through influence() agree with each other as their bounds say, and
// the GEMM, the method names and the bad input.

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <variant>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/influence/influence.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "influence/support.hpp"
#include "support/finite_difference.hpp"

namespace hydra::test {
namespace {

struct trained_problem {
  dataset<double> train = make_data(160, 3, 3, 11);
  dataset<double> test = make_data(4, 3, 3, 12);
  SoftmaxRegression<double> model{3, 3};  // 12 parameters
  SoftmaxCrossEntropy<double> loss;
  index P = model.parameter_count();
  index N = train.size();
  double lambda = 0.1;
  double step = softmax_regression_step(train, lambda);
  std::vector<double> w;  // the minimiser ŵ

  trained_problem() {
    std::vector<double> w0(static_cast<std::size_t>(P));
    model.initialize(vector_view<double>(w0.data(), P), 13);
    w = retrain(std::vector<double>(static_cast<std::size_t>(N), 1.0), w0);
  }
  /// The minimiser of (1/N) Σ c_k ℓ_k + (λ/2)‖w‖², from `start`, to ‖∇‖ ≤ 1e-13.
  std::vector<double> retrain(const std::vector<double>& weights, const std::vector<double>& start) {
    return gradient_descent(model, loss, train, start, weights, lambda, step, 1e-13);
  }
  /// Test losses at the minimiser with sample i's weight 1 + t (t = −1 removes it).
  std::vector<double> test_losses_with(index i, double t) {
    std::vector<double> c(static_cast<std::size_t>(N), 1.0);
    c[static_cast<std::size_t>(i)] += t;
    return sample_losses(model, loss, test, retrain(c, w));
  }
  influence_result<double, cpu> influence_by(const ihvp_options& ihvp, std::span<const index> tracked) {
    influence_options options;
    options.ihvp = ihvp;
    options.objective.batch_size = 16;
    return influence(model, loss, vector_view<const double>(w.data(), P), train, tracked, test, lambda, options);
  }
};

} // namespace

TEST_CASE("C_IF is the first-order change of each test loss when a training sample is removed") {
  trained_problem p;
  const std::vector<index> tracked{0, 7, 19, 33, 61, 120};
  const auto result = p.influence_by({.method = ihvp_method::explicit_hessian}, tracked);
  const auto C = result.contributions.to_host();
  const auto M = static_cast<std::size_t>(p.test.size());
  const auto base = sample_losses(p.model, p.loss, p.test, p.w);

  std::vector<double> derivative(C.size()), removal(C.size()), remainder_full(C.size()), remainder_half(C.size());
  for (std::size_t r = 0; r < tracked.size(); ++r) {
    const index i = tracked[r];
    // (a) Sample weight (1/N)(1 + t): ε = t/N. Richardson-extrapolated central differences in t
    // (error O(h⁴) ≈ 1e-12); the retraining tolerance ‖∇‖ ≤ 1e-13 moves ŵ by ≤ 1e-13/λ, each
    // loss by ~1e-12, i.e. ~1e-9 after dividing by 2h: ~1e-8 relative at worst.
    const double h = 1e-2;
    const auto up = p.test_losses_with(i, h), down = p.test_losses_with(i, -h);
    const auto up2 = p.test_losses_with(i, h / 2), down2 = p.test_losses_with(i, -h / 2);
    // (b) Removal (t = −1) and half-removal (t = −1/2).
    const auto removed = p.test_losses_with(i, -1.0), halved = p.test_losses_with(i, -0.5);
    for (std::size_t j = 0; j < M; ++j) {
      const double coarse = (up[j] - down[j]) / (2 * h), fine = (up2[j] - down2[j]) / h;
      const double dl_dt = (4 * fine - coarse) / 3;  // dℓ_j/dt; ε = t/N so −(1/N)dℓ/dε = −dℓ/dt
      const std::size_t e = r * M + j;
      derivative[e] = -dl_dt;
      removal[e] = removed[j] - base[j];
      remainder_full[e] = removal[e] - C[e];
      remainder_half[e] = (halved[j] - base[j]) - 0.5 * C[e];
    }
  }
  // (a) The derivative itself, to finite-difference and convergence accuracy.
  CHECK(relative_error(C, derivative) <= 1e-6);
  // (b) The actual change. The remainder is O(‖Δŵ‖²) with ‖Δŵ‖ = O(1/N), so relative to the
  // first-order term it is c/N. Measured on this data for N = 40 … 640 (the relative error
  // halves each time N doubles), c ≈ 3 for typical samples and ≈ 6 with an influential one like
  // 61, so 2–4% at N = 160; 10% leaves a factor 2.5. The t² check below shows the remainder IS
  // the second-order term.
  CHECK(relative_error(removal, C) <= 0.1);
  for (std::size_t e = 0; e < C.size(); ++e)
    if (std::abs(C[e]) > 0.1 * norm(C) / std::sqrt(static_cast<double>(C.size()))) {
      CAPTURE(e);
      CHECK((removal[e] > 0) == (C[e] > 0));  // positive C: removing the sample raises the loss
    }
  // The remainder scales with t²: a wrong factor in C (1/(N−1), a sign, λ left out of H)
  // would leave a first-order remainder that only halves.
  const double ratio = norm(remainder_full) / norm(remainder_half);
  CHECK(ratio >= 3.5);
  CHECK(ratio <= 4.5);
}

TEST_CASE("the three inverse-HVP methods give the same C_IF within their bounds") {
  trained_problem p;
  const std::vector<index> tracked{1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144};
  const auto A = reference_hessian(p.model, p.loss, p.train, p.w, p.lambda);
  const double largest = gershgorin_bound(A, static_cast<std::size_t>(p.P));  // ≥ λ_max(H)
  const double kappa = largest / p.lambda;                                     // λ_min(H) ≥ λ

  const auto exact = p.influence_by({.method = ihvp_method::explicit_hessian}, tracked);
  const auto C = exact.contributions.to_host(), S = exact.s_test.to_host();
  CHECK(std::holds_alternative<explicit_report>(exact.report));
  // C = (1/N)·G·Sᵀ, so ‖ΔC‖_F ≤ (1/N)·‖G‖_F·‖ΔS‖_F: a bound on s_test's error carries over.
  const auto G = subset(p.train, std::span<const index>(tracked));
  const double G_norm = norm(sample_gradients(p.model, p.loss, G, p.w));
  auto C_error = [&](const std::vector<double>& other) { return relative_error(other, C) * norm(C); };
  auto C_bound = [&](double s_relative_error) {
    return G_norm * s_relative_error * norm(S) / static_cast<double>(p.N);
  };

  // CG: ‖s_j − s_j*‖/‖s_j*‖ ≤ κ·‖r_j‖/‖v_j‖ ≤ κ·tol for every test point j, hence for S.
  ihvp_options cg{.method = ihvp_method::conjugate_gradient};
  cg.cg.tolerance = 1e-10;
  const auto by_cg = p.influence_by(cg, tracked);
  const auto& cg_info = std::get<cg_report>(by_cg.report);
  CHECK(cg_info.converged());
  CHECK(cg_info.iterations.size() == static_cast<std::size_t>(p.test.size()));
  CHECK(relative_error(by_cg.s_test.to_host(), S) <= kappa * 1e-10);
  CHECK(C_error(by_cg.contributions.to_host()) <= C_bound(kappa * 1e-10));

  // LiSSA on whole-set batches with s ≥ λ_max: contraction ρ = 1 − λ/s per step (lissa.test.cpp).
  // ‖v/s‖ ≤ ‖v‖/λ_max ≤ ‖s*‖, so the start is off by ≤ 2‖s*‖ and the end by ≤ 2ρ^depth‖s*‖.
  ihvp_options lissa{.method = ihvp_method::lissa};
  lissa.lissa.scale = 1 / p.step;
  CHECK(lissa.lissa.scale >= largest);
  lissa.lissa.batch_size = p.N;
  const double rho = 1 - p.lambda / lissa.lissa.scale;
  lissa.lissa.depth = static_cast<index>(std::ceil(std::log(1e-10) / std::log(rho)));
  const auto by_lissa = p.influence_by(lissa, tracked);
  CHECK(std::get<lissa_report>(by_lissa.report).depth == lissa.lissa.depth);
  const double lissa_bound = 2 * std::pow(rho, static_cast<double>(lissa.lissa.depth)) + 1e-13;  // + rounding
  CHECK(relative_error(by_lissa.s_test.to_host(), S) <= lissa_bound);
  CHECK(C_error(by_lissa.contributions.to_host()) <= C_bound(lissa_bound));
}

TEST_CASE("influence_contributions is (1/N)·G·Sᵀ, and influence() tracks any subset in any order") {
  trained_problem p;
  const std::vector<index> all = [&] {
    std::vector<index> v(static_cast<std::size_t>(p.N));
    for (index i = 0; i < p.N; ++i) v[static_cast<std::size_t>(i)] = i;
    return v;
  }();
  const auto full = p.influence_by({.method = ihvp_method::explicit_hessian}, all);
  const std::vector<index> some{150, 4, 4};
  const auto part = p.influence_by({.method = ihvp_method::explicit_hessian}, some);
  const auto F = full.contributions.to_host(), S = part.contributions.to_host();
  const auto M = static_cast<std::size_t>(p.test.size());
  for (std::size_t r = 0; r < some.size(); ++r)
    for (std::size_t j = 0; j < M; ++j) {
      CAPTURE(r);
      CHECK(S[r * M + j] == doctest::Approx(F[static_cast<std::size_t>(some[r]) * M + j]).epsilon(1e-13));
    }
  // The GEMM against a plain loop.
  const auto G = sample_gradients(p.model, p.loss, p.train, p.w);
  const auto s_test = full.s_test.to_host();
  std::vector<double> loop(F.size());
  for (std::size_t i = 0; i < static_cast<std::size_t>(p.N); ++i)
    for (std::size_t j = 0; j < M; ++j) {
      double dot = 0;
      for (std::size_t c = 0; c < static_cast<std::size_t>(p.P); ++c)
        dot += G[i * static_cast<std::size_t>(p.P) + c] * s_test[j * static_cast<std::size_t>(p.P) + c];
      loop[i * M + j] = dot / static_cast<double>(p.N);
    }
  CHECK(relative_error(F, loop) <= 1e-14);
  // Nothing tracked, nothing to test: empty results, no error.
  const auto none = p.influence_by({.method = ihvp_method::conjugate_gradient}, {});
  CHECK(none.contributions.rows() == 0);
  CHECK(none.contributions.cols() == p.test.size());
}

TEST_CASE("method names round-trip; bad input is refused with the sizes named") {
  for (const auto m : {ihvp_method::explicit_hessian, ihvp_method::conjugate_gradient, ihvp_method::lissa})
    CHECK(parse_ihvp_method(name_of(m)) == m);
  CHECK(std::string(name_of(ihvp_method::conjugate_gradient)) == "cg");
  CHECK_THROWS_WITH_AS(static_cast<void>(parse_ihvp_method("newton")),
                       doctest::Contains("unknown inverse-HVP method 'newton': expected explicit, cg or lissa"),
                       invalid_argument);

  trained_problem p;
  const std::vector<index> outside{3, 160};
  CHECK_THROWS_WITH_AS(p.influence_by({}, outside),
                       doctest::Contains("tracked[1] = 160 is outside the training set [0, 160)"),
                       invalid_argument);
  const std::vector<index> tracked{0};
  const auto wide_test = make_data(2, 4, 3, 1);
  CHECK_THROWS_WITH_AS(influence(p.model, p.loss, vector_view<const double>(p.w.data(), p.P), p.train, tracked,
                                 wide_test, p.lambda),
                       doctest::Contains("test samples have 4 features, training samples 3"), shape_error);
  CHECK_THROWS_WITH_AS(influence(p.model, p.loss, vector_view<const double>(p.w.data(), p.P), p.train, tracked, p.test,
                                 -1.0),
                       doctest::Contains("weight decay"), invalid_argument);

  std::vector<double> g(6, 1.0), s(8, 1.0), out(4);
  CHECK_THROWS_WITH_AS(influence_contributions<cpu>(matrix_view<const double>(g.data(), 2, 3),
                                                    matrix_view<const double>(s.data(), 2, 4), 10,
                                                    matrix_view<double>(out.data(), 2, 2)),
                       doctest::Contains("training gradients 2 x 3, s_test 2 x 4"), shape_error);
  CHECK_THROWS_WITH_AS(influence_contributions<cpu>(matrix_view<const double>(g.data(), 2, 3),
                                                    matrix_view<const double>(s.data(), 2, 3), 10,
                                                    matrix_view<double>(out.data(), 1, 2)),
                       doctest::Contains("output 1 x 2"), shape_error);
  CHECK_THROWS_WITH_AS(influence_contributions<cpu>(matrix_view<const double>(g.data(), 2, 3),
                                                    matrix_view<const double>(s.data(), 2, 3), 0,
                                                    matrix_view<double>(out.data(), 2, 2)),
                       doctest::Contains("N must be positive"), invalid_argument);

  // An objective over another model's parameters.
  SoftmaxRegression<double> other(3, 2);
  std::vector<double> w_other(static_cast<std::size_t>(other.parameter_count()), 0.0);
  training_objective objective(other, p.loss, p.train,
                               vector_view<const double>(w_other.data(), other.parameter_count()), 0.1);
  CHECK_THROWS_WITH_AS(compute_s_test(p.model, p.loss, vector_view<const double>(p.w.data(), p.P), p.test, objective),
                       doctest::Contains("the objective has 8 parameters, the model 12"), shape_error);
}

} // namespace hydra::test

namespace hydra::test {

TEST_CASE("float: every method gives the double-precision C_IF to single-precision accuracy") {
  trained_problem p;
  const std::vector<index> tracked{0, 7, 19};
  const auto reference = p.influence_by({.method = ihvp_method::explicit_hessian}, tracked).contributions.to_host();

  auto to_float = [](const dataset<double>& d) {
    const auto x = d.features();
    const auto y = d.labels();
    return dataset<float>({d.sample_size()}, std::vector<float>(x.begin(), x.end()), {y.begin(), y.end()},
                          d.num_classes());
  };
  const auto train = to_float(p.train), test = to_float(p.test);
  SoftmaxRegression<float> model(3, 3);
  SoftmaxCrossEntropy<float> loss;
  const std::vector<float> w(p.w.begin(), p.w.end());
  ihvp_options cg{.method = ihvp_method::conjugate_gradient};
  cg.cg.tolerance = 1e-5;  // reachable in float at κ ≤ 7 (Gershgorin / λ, previous test case)
  ihvp_options lissa{.method = ihvp_method::lissa};
  lissa.lissa.scale = 1 / p.step;
  lissa.lissa.batch_size = p.N;
  lissa.lissa.depth = 1500;  // ρ^1500 ≈ 1e-10 (ρ = 1 − λ/s ≈ 0.985 as above)
  for (const auto& ihvp : {ihvp_options{.method = ihvp_method::explicit_hessian}, cg, lissa}) {
    CAPTURE(name_of(ihvp.method));
    influence_options options;
    options.ihvp = ihvp;
    const auto C = influence(model, loss, vector_view<const float>(w.data(), p.P), train, tracked, test,
                             static_cast<float>(p.lambda), options).contributions.to_host();
    // Float gradients and HVPs carry ~1e-7 relative rounding, amplified by κ ≤ 7 in the solve;
    // CG adds up to κ·1e-5 = 7e-5 from its tolerance: 2e-4 covers both.
    CHECK(relative_error(cast<double>(C), reference) <= 2e-4);
  }
}

} // namespace hydra::test
