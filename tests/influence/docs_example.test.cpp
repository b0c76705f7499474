// The examples of docs/influence.md, compiled and run so that the page cannot drift from the
// code. Keep the two in sync: the bodies between the markers are the page's examples.
#include "hydra/backend/cpu.hpp"
#include "hydra/influence/influence.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <utility>
#include <variant>
#include <vector>

#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "influence/support.hpp"

namespace hydra::test {
namespace {

template <class Model, class Loss>
matrix<double, cpu> example(Model& model, Loss& loss, const vector<double, cpu>& w, const dataset<double>& train,
                            const dataset<double>& test) {
  // --- docs/influence.md example begins ---
  // w: the parameters after training on `train` with weight decay λ = 0.01.
  hydra::influence_options options;
  options.ihvp.method = hydra::ihvp_method::conjugate_gradient;
  options.ihvp.cg = {.damping = 0.001, .tolerance = 1e-8, .max_iterations = 200};
  const std::vector<hydra::index> tracked{0, 1, 2, 3};
  auto result = hydra::influence(model, loss, w.view(), train, tracked, test, /*weight_decay=*/0.01, options);

  const auto& cg = std::get<hydra::cg_report>(result.report);
  if (!cg.converged())
    std::printf("CG stopped early: worst relative residual %g\n", cg.max_relative_residual());
  // result.contributions (4 × M): C_IF(tracked[r], j), positive = removing the sample raises
  // test loss j. result.s_test (M × |w|) can be reused for other training samples:
  const std::vector<hydra::index> more{10, 11};
  const auto G = hydra::per_sample_gradients(model, loss, w.view(), hydra::subset(train, more));
  auto C_more = hydra::influence_contributions<hydra::cpu>(G.view(), std::as_const(result.s_test).view(), train.size());
  // --- docs/influence.md example ends ---
  CHECK(cg.converged());
  CHECK(result.contributions.rows() == 4);
  return C_more;
}

matrix<double, cpu> lissa_example(SoftmaxRegression<double>& model, SoftmaxCrossEntropy<double>& loss,
                                  const vector<double, cpu>& w, const dataset<double>& train,
                                  const dataset<double>& test) {
  // --- docs/influence.md LiSSA example begins ---
  hydra::training_objective objective(model, loss, train, w.view(), /*weight_decay=*/0.01);
  auto solved = hydra::compute_s_test(model, loss, w.view(), test, objective,
                                      {.method = hydra::ihvp_method::lissa,
                                       .lissa = {.damping = 0.001, .scale = 10, .depth = 2000, .repeats = 4,
                                                 .batch_size = 8, .seed = 1, .residual_check = true}});
  const auto& report = std::get<hydra::lissa_report>(solved.report);
  // report.effective_damping == 0.01 (= scale · damping); report.relative_residuals[j] is
  // ‖(H + 0.01·I)s_j − ∇ℓ(test_j)‖ / ‖∇ℓ(test_j)‖.
  // --- docs/influence.md LiSSA example ends ---
  CHECK(report.effective_damping == doctest::Approx(0.01));
  // Mini-batch noise: each s_j is an average of 4 noisy runs.
  for (const double r : report.relative_residuals) CHECK(r <= 0.2);
  return std::move(solved.s_test);
}

} // namespace

TEST_CASE("the examples of docs/influence.md run and agree with the explicit inverse") {
  const auto train = make_data(30, 3, 3, 2);
  const auto test = make_data(5, 3, 3, 3);
  SoftmaxRegression<double> model(3, 3);
  SoftmaxCrossEntropy<double> loss;
  const index P = model.parameter_count();
  std::vector<double> w0(static_cast<std::size_t>(P));
  model.initialize(vector_view<double>(w0.data(), P), 4);
  const auto trained = gradient_descent(model, loss, train, w0, std::vector<double>(30, 1.0), 0.01,
                                        softmax_regression_step(train, 0.01), 1e-10, 1000000);
  const auto w = vector<double, cpu>::from_host(trained);

  const auto C_more = example(model, loss, w, train, test);
  influence_options exact;
  exact.ihvp = {.method = ihvp_method::explicit_hessian, .explicit_hessian = {.damping = 0.001}};
  const std::vector<index> more{10, 11};
  const auto reference = influence(model, loss, w.view(), train, more, test, 0.01, exact);
  // CG to relative residual 1e-8 at κ ≤ ~1e3 (λ + δ = 0.011): 1e-5 relative.
  CHECK(relative_error(C_more.to_host(), reference.contributions.to_host()) <= 1e-5);

  const auto s_lissa = lissa_example(model, loss, w, train, test);
  exact.ihvp.explicit_hessian.damping = 0.01;  // LiSSA's effective damping
  const auto s_exact = influence(model, loss, w.view(), train, more, test, 0.01, exact).s_test.to_host();
  CHECK(relative_error(s_lissa.to_host(), s_exact) <= 0.2);
}

} // namespace hydra::test
