#pragma once
// Conjugate gradient on (H + δI) x = v, for k right-hand sides at once: k independent CG
// recurrences that share each Hessian-vector-product call (one pass over the training set per
// iteration for all directions still running). A direction stops when its relative residual
// ‖v − (H + δI)x‖/‖v‖ reaches the tolerance, when the iteration cap is hit, or when its search
// direction meets non-positive curvature; none of these throws — the report says which.

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/influence/concepts.hpp"

namespace hydra {

struct cg_options {
  /// δ added to H.
  double damping = 0;
  /// Stop a direction when ‖r‖/‖v‖ ≤ tolerance (r the recursively updated residual).
  double tolerance = 1e-6;
  /// At most this many iterations (each one whole-training-set HVP call).
  index max_iterations = 100;
};

enum class cg_status {
  converged,              ///< relative residual ≤ tolerance
  max_iterations,         ///< the cap was reached first; the last iterate is returned
  not_positive_definite,  ///< pᵀ(H + δI)p ≤ 0 for the search direction p; the last iterate is returned
};

[[nodiscard]] constexpr const char* name_of(cg_status s) noexcept {
  switch (s) {
    case cg_status::converged: return "converged";
    case cg_status::max_iterations: return "max_iterations";
    case cg_status::not_positive_definite: return "not_positive_definite";
  }
  return "?";
}

/// Per right-hand side j: what its CG did.
struct cg_report {
  std::vector<index> iterations;
  std::vector<double> relative_residuals;  ///< ‖r‖/‖v‖ of the returned iterate (0 for v = 0)
  std::vector<cg_status> status;
  /// HVP calls on the operator (whole-training-set passes for training_objective).
  index hvp_passes = 0;

  [[nodiscard]] bool converged() const {
    return std::all_of(status.begin(), status.end(), [](cg_status s) { return s == cg_status::converged; });
  }
  [[nodiscard]] double max_relative_residual() const {
    return relative_residuals.empty() ? 0.0 : *std::max_element(relative_residuals.begin(), relative_residuals.end());
  }
  [[nodiscard]] index max_iterations() const {
    return iterations.empty() ? 0 : *std::max_element(iterations.begin(), iterations.end());
  }
};

/// solutions.row(j) ≈ (H + δI)⁻¹ rhs.row(j), starting from 0; solutions may be rhs itself.
/// Throws numerical_error if a Hessian-vector product turns NaN or Inf (naming the iteration
/// and the direction).
template <class O>
cg_report conjugate_gradient(O& op, matrix_view<const typename O::scalar_type> rhs,
                             matrix_view<typename O::scalar_type> solutions, const cg_options& options = {}) {
  static_assert(check_hessian_operator<O>());
  using T = typename O::scalar_type;
  using B = typename O::backend_type;
  const index P = op.parameter_count(), k = rhs.rows;
  if (rhs.cols != P || solutions.rows != k || solutions.cols != P)
    throw shape_error("conjugate_gradient: right-hand sides " + std::to_string(k) + " x " + std::to_string(rhs.cols) +
                      " and solutions " + std::to_string(solutions.rows) + " x " + std::to_string(solutions.cols) +
                      ", expected both k x " + std::to_string(P));
  if (!(options.damping >= 0) || !std::isfinite(options.damping))
    throw invalid_argument("conjugate_gradient: damping " + std::to_string(options.damping) +
                           " must be finite and >= 0");
  if (!(options.tolerance > 0) || !std::isfinite(options.tolerance))
    throw invalid_argument("conjugate_gradient: tolerance " + std::to_string(options.tolerance) +
                           " must be finite and > 0");
  if (options.max_iterations <= 0)
    throw invalid_argument("conjugate_gradient: max_iterations " + std::to_string(options.max_iterations) +
                           " must be positive");

  auto row = [P](auto m, index j) { return vector_view(m.row(j), P); };
  cg_report report;
  report.iterations.assign(static_cast<std::size_t>(k), 0);
  report.relative_residuals.assign(static_cast<std::size_t>(k), 0.0);
  report.status.assign(static_cast<std::size_t>(k), cg_status::converged);

  // r = v − (H + δI)·0 = v, p = r; rhs is read only here, so solutions may alias it.
  matrix<T, B> r(k, P), p(k, P), gathered, products;
  B::copy(rhs, r.view());
  B::copy(std::as_const(r).view(), p.view());
  B::fill(T(0), solutions);
  std::vector<double> norm_v(static_cast<std::size_t>(k)), rr(static_cast<std::size_t>(k));
  std::vector<index> active;
  for (index j = 0; j < k; ++j) {
    const auto s = static_cast<std::size_t>(j);
    const auto rj = row(std::as_const(r).view(), j);
    rr[s] = static_cast<double>(B::dot(rj, rj));
    norm_v[s] = std::sqrt(rr[s]);
    if (!std::isfinite(norm_v[s]))
      throw numerical_error("conjugate_gradient: right-hand side " + std::to_string(j) + " has a NaN or Inf");
    if (norm_v[s] > 0) {
      active.push_back(j);
      report.relative_residuals[s] = 1.0;
    }
  }

  for (index iteration = 1; iteration <= options.max_iterations && !active.empty(); ++iteration) {
    // (H + δI) p for the directions still running, gathered into one block unless all run.
    const auto ka = static_cast<index>(active.size());
    const bool all = ka == k;
    if (!all) {
      gathered.resize(ka, P);
      for (index a = 0; a < ka; ++a)
        B::copy(row(std::as_const(p).view(), active[static_cast<std::size_t>(a)]), row(gathered.view(), a));
    }
    const matrix_view<const T> search = all ? std::as_const(p).view() : std::as_const(gathered).view();
    products.resize(ka, P);
    op.hessian_vector_products(search, products.view());
    if (options.damping != 0) B::axpy(static_cast<T>(options.damping), search, products.view());
    ++report.hvp_passes;

    std::vector<index> still;
    for (index a = 0; a < ka; ++a) {
      const index j = active[static_cast<std::size_t>(a)];
      const auto s = static_cast<std::size_t>(j);
      const auto pj = row(p.view(), j), rj = row(r.view(), j), xj = row(solutions, j);
      const auto Apj = row(std::as_const(products).view(), a);
      const double curvature = static_cast<double>(B::dot(vector_view<const T>(pj), Apj));
      if (!std::isfinite(curvature))
        throw numerical_error("conjugate_gradient: the Hessian-vector product of direction " + std::to_string(j) +
                              " is NaN or Inf at iteration " + std::to_string(iteration));
      report.iterations[s] = iteration;
      if (!(curvature > 0)) {  // CG's step is undefined: H + δI is not positive definite
        report.status[s] = cg_status::not_positive_definite;
        continue;
      }
      const double alpha = rr[s] / curvature;
      B::axpy(static_cast<T>(alpha), vector_view<const T>(pj), xj);
      B::axpy(static_cast<T>(-alpha), Apj, rj);
      const double rr_next = static_cast<double>(B::dot(vector_view<const T>(rj), vector_view<const T>(rj)));
      if (!std::isfinite(rr_next))
        throw numerical_error("conjugate_gradient: the residual of direction " + std::to_string(j) +
                              " is NaN or Inf at iteration " + std::to_string(iteration));
      report.relative_residuals[s] = std::sqrt(rr_next) / norm_v[s];
      if (report.relative_residuals[s] <= options.tolerance) continue;  // converged
      B::scal(static_cast<T>(rr_next / rr[s]), pj);                      // p ← r + β p
      B::axpy(T(1), vector_view<const T>(rj), pj);
      rr[s] = rr_next;
      still.push_back(j);
    }
    active = std::move(still);
  }
  for (index j : active) report.status[static_cast<std::size_t>(j)] = cg_status::max_iterations;
  return report;
}

} // namespace hydra
