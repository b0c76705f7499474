// recurrence.hpp, the one statement of supplement Eq. 35–36: its functions against the equations
// written out here (and evaluated at compile time), the 2 × 2 form against the two-line form, and
// hydra::cpu's kernels against recurrence.hpp on random inputs (tests/support/recurrence_reference.hpp
// states the rounding allowed; tests/backend/cuda.test.cu holds the same check for hydra::cuda).

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/hypergradient/recurrence.hpp"
#include "support/recurrence_reference.hpp"

namespace hydra::test {
namespace {

// Dyadic values: every product and sum below is exact, so the results are known exactly.
constexpr recurrence::step_coefficients<double> c{0.5, 0.25, 0.125};

constexpr bool step_matches_eq_35_36() {
  double dv = 2, grad = -4;
  recurrence::step(c, dv, grad, 1.0, 3.0);  // H∇ = 1, w·g = 3
  // Eq. 35: 0.5·2 + 0.25·(−4) + 1 + 3 = 4;  Eq. 36: −4 − 0.125·4 = −4.5
  return dv == 4 && grad == -4.5;
}
static_assert(step_matches_eq_35_36());

constexpr bool transfer_is_the_step_as_a_matrix() {
  // A_t·(dv, ∇) + w·g·(1, −η) with A_t = step_transfer(p, λ, η) is the same map as one step.
  const auto A = step_transfer(c.p, c.lambda, c.eta);
  double dv = 2, grad = -4, dv2 = 2, grad2 = -4;
  recurrence::transfer(A.data(), 1.5, c.eta, 2.0, dv, grad);
  recurrence::step(c, dv2, grad2, 1.5 * 2.0);
  return dv == dv2 && grad == grad2;
}
static_assert(transfer_is_the_step_as_a_matrix());

constexpr bool start_is_the_transfer_from_zero() {
  double dv = 0, grad = 0, dv2 = 123, grad2 = 456;  // start() must not read its state
  recurrence::transfer(step_transfer(c.p, c.lambda, c.eta).data(), 3.0, c.eta, 0.5, dv, grad);
  recurrence::start(3.0, c.eta, 0.5, dv2, grad2);
  return dv == dv2 && grad == grad2 && recurrence::is_fresh(transfer_matrix{}.data()) &&
         !recurrence::is_fresh(identity_transfer.data());
}
static_assert(start_is_the_transfer_from_zero());

TEST_CASE("recurrence.hpp: step follows Eq. 35-36 and the 2 x 2 transfer composes steps, on random values") {
  const auto in = random_recurrence_inputs<double>(6, 50, 2, 7);
  // Three steps with different η, done eagerly and as one composed transfer A_3·A_2·A_1: equal
  // to rounding (the matrix form associates the products differently).
  const double etas[] = {0.1, 0.05, 0.3};
  transfer_matrix product = identity_transfer;
  for (const double eta : etas) product = step_transfer(in.p, in.lambda, eta) * product;
  double worst = 0;
  for (std::size_t e = 0; e < in.dv.size(); ++e) {
    double dv = in.dv[e], grad = in.grad[e];
    for (const double eta : etas) {
      const double d_old = dv;
      recurrence::step(recurrence::step_coefficients<double>{in.p, in.lambda, eta}, dv, grad, in.hv[e]);
      // Eq. 35–36 written out, long double
      const long double want_dv = static_cast<long double>(in.p) * d_old +
                                  static_cast<long double>(in.lambda) * (grad + eta * dv) + in.hv[e];
      CHECK(std::abs(static_cast<long double>(dv) - want_dv) <= 1e-15L * (1 + std::abs(want_dv)));
    }
    // without the Hessian term, the composed transfer
    double dv_eager = in.dv[e], grad_eager = in.grad[e], dv_lazy = in.dv[e], grad_lazy = in.grad[e];
    for (const double eta : etas)
      recurrence::step(recurrence::step_coefficients<double>{in.p, in.lambda, eta}, dv_eager, grad_eager);
    recurrence::transfer(product.data(), dv_lazy, grad_lazy);
    worst = std::max({worst, std::abs(dv_lazy - dv_eager) / (1 + std::abs(dv_eager)),
                      std::abs(grad_lazy - grad_eager) / (1 + std::abs(grad_eager))});
  }
  CHECK(worst <= 1e-15);
}

TEST_CASE_TEMPLATE("cpu::hypergradient_update departs from recurrence::step by rounding only", T, float, double) {
  const index rows = 7, cols = 2048 + 301, batch = 3;  // more than one block of the kernel, and a tail
  const auto in = random_recurrence_inputs<T>(rows, cols, batch, 11);
  for (const bool with_hessian : {false, true})
    for (const bool with_sources : {false, true}) {
      CAPTURE(with_hessian);
      CAPTURE(with_sources);
      const auto want = expected_update(in, with_hessian, with_sources);
      auto dv = in.dv, grad = in.grad;
      CHECK(cpu::hypergradient_update(in.p, in.lambda, in.eta,
                                      with_hessian ? matrix_view<const T>(in.hv.data(), rows, cols) : matrix_view<const T>{},
                                      with_sources ? in.source_rows.data() : nullptr,
                                      with_sources ? in.weights.data() : nullptr,
                                      matrix_view<const T>(in.sources.data(), batch, cols),
                                      matrix_view<T>(dv.data(), rows, cols), matrix_view<T>(grad.data(), rows, cols)));
      CHECK(recurrence_departure(dv, want.dv, want.dv_allowance, cols, "dv") == "");
      CHECK(recurrence_departure(grad, want.grad, want.grad_allowance, cols, "grad") == "");
    }
}

TEST_CASE_TEMPLATE("cpu::hypergradient_transfer departs from recurrence::transfer by rounding only", T, float, double) {
  const index rows = 9, cols = 2048 + 77, batch = 4;
  const auto in = random_recurrence_inputs<T>(rows, cols, batch, 12);
  const auto want = expected_transfer(in);
  auto dv = in.dv, grad = in.grad;
  CHECK(cpu::hypergradient_transfer(static_cast<index>(in.state_rows.size()), in.state_rows.data(), in.transfers.data(),
                                    in.source_rows.data(), in.weights.data(), in.eta,
                                    matrix_view<const T>(in.sources.data(), batch, cols),
                                    matrix_view<T>(dv.data(), rows, cols), matrix_view<T>(grad.data(), rows, cols)));
  CHECK(recurrence_departure(dv, want.dv, want.dv_allowance, cols, "dv") == "");
  CHECK(recurrence_departure(grad, want.grad, want.grad_allowance, cols, "grad") == "");
}

TEST_CASE("the departure check catches a kernel that departs from the recurrence") {
  // The check itself must be able to fail: a 'kernel' that uses the old dv in Eq. 36.
  const index rows = 4, cols = 33, batch = 2;
  const auto in = random_recurrence_inputs<double>(rows, cols, batch, 13);
  const auto want = expected_update(in, false, false);
  auto dv = in.dv, grad = in.grad;
  for (std::size_t e = 0; e < dv.size(); ++e) {
    const double d = dv[e];
    dv[e] = in.p * dv[e] + in.lambda * grad[e];
    grad[e] -= in.eta * d;
  }
  CHECK(recurrence_departure(dv, want.dv, want.dv_allowance, cols, "dv") == "");
  CHECK(recurrence_departure(grad, want.grad, want.grad_allowance, cols, "grad") != "");
}

} // namespace
} // namespace hydra::test
