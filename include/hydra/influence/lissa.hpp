#pragma once
// LiSSA (Agarwal, Bullins & Hazan 2017), the paper's Eq. 21 in the damped and scaled form of
// Koh & Liang's code: starting from h = v,
//
//   h ← v + (1 − δ)·h − H_batch·h / s        (a fresh uniformly drawn mini-batch each time)
//
// and after `depth` iterations H⁻¹v ≈ h / s. Its fixed point is h = s·(H + s·δ·I)⁻¹ v, so the
// result estimates (H + s·δ·I)⁻¹ v: the effective damping is s·δ. Since E[H_batch] = H and each
// batch is independent of h, the expected iterate follows the exact iteration, which converges
// when every eigenvalue μ of H satisfies 0 < δ + μ/s < 2; `repeats` independent runs are
// averaged to reduce the variance. Too small an s makes h grow geometrically until it overflows.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/random.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/influence/concepts.hpp"

namespace hydra {

struct lissa_options {
  /// δ in the recursion, in [0, 1); the solve is damped by scale·δ.
  double damping = 0;
  /// s, > 0: must exceed about half the largest eigenvalue of the mini-batch Hessians.
  double scale = 25;
  /// Iterations per repeat.
  index depth = 5000;
  /// Independent runs averaged.
  index repeats = 1;
  /// Samples per mini-batch, drawn without replacement; ≥ N uses the whole training set every
  /// iteration (then the iteration is deterministic and the seed unused).
  index batch_size = 32;
  /// Seeds hydra's portable generator (xoshiro256**): the same seed gives the same batches and
  /// the same result on every machine.
  std::uint64_t seed = 0;
  /// After the runs, compute ‖(H + s·δ·I)x − v‖/‖v‖ per direction with one whole-training-set
  /// HVP call (costs one pass over the training set).
  bool residual_check = false;
};

struct lissa_report {
  index depth = 0;
  index repeats = 0;
  /// s·δ: the result approximates (H + s·δ·I)⁻¹ v.
  double effective_damping = 0;
  /// Per direction: ‖h_depth − h_{depth−1}‖ / ‖h_depth‖ of the last iteration, the largest over the
  /// repeats. It stalls at the mini-batch noise level rather than reaching 0.
  std::vector<double> final_relative_change;
  /// Per direction: ‖(H + s·δ·I)x − v‖/‖v‖ when residual_check was set, else empty.
  std::vector<double> relative_residuals;
  /// Mini-batch HVP calls (depth · repeats) and whole-training-set ones (1 with residual_check).
  index batch_hvp_calls = 0;
  index hvp_passes = 0;
};

/// solutions.row(j) ≈ (H + s·δ·I)⁻¹ rhs.row(j) for all k directions at once (they share the
/// mini-batches); solutions may be rhs itself. Throws numerical_error when the estimate becomes
/// NaN or Inf, naming the iteration (the usual cause: scale too small).
template <class O>
lissa_report lissa(O& op, matrix_view<const typename O::scalar_type> rhs,
                   matrix_view<typename O::scalar_type> solutions, const lissa_options& options = {}) {
  static_assert(check_sampled_hessian_operator<O>());
  using T = typename O::scalar_type;
  using B = typename O::backend_type;
  const index P = op.parameter_count(), k = rhs.rows, N = op.training_set_size();
  if (rhs.cols != P || solutions.rows != k || solutions.cols != P)
    throw shape_error("lissa: right-hand sides " + std::to_string(k) + " x " + std::to_string(rhs.cols) +
                      " and solutions " + std::to_string(solutions.rows) + " x " + std::to_string(solutions.cols) +
                      ", expected both k x " + std::to_string(P));
  if (!(options.damping >= 0 && options.damping < 1))
    throw invalid_argument("lissa: damping " + std::to_string(options.damping) + " must be in [0, 1)");
  if (!(options.scale > 0) || !std::isfinite(options.scale))
    throw invalid_argument("lissa: scale " + std::to_string(options.scale) + " must be finite and > 0");
  if (options.depth <= 0) throw invalid_argument("lissa: depth " + std::to_string(options.depth) + " must be positive");
  if (options.repeats <= 0)
    throw invalid_argument("lissa: repeats " + std::to_string(options.repeats) + " must be positive");
  if (options.batch_size <= 0)
    throw invalid_argument("lissa: batch_size " + std::to_string(options.batch_size) + " must be positive");
  if (N <= 0) throw invalid_argument("lissa: the operator's training set is empty");

  lissa_report report;
  report.depth = options.depth;
  report.repeats = options.repeats;
  report.effective_damping = options.scale * options.damping;
  report.final_relative_change.assign(static_cast<std::size_t>(k), 0.0);

  auto row = [P](auto m, index j) { return vector_view(m.row(j), P); };
  // The recursion as an increment, h ← h + d with d = v − δ·h − H_batch·h/s: the same update,
  // one k × |w| buffer fewer, and the last step's change ‖d‖ comes for free.
  matrix<T, B> v(k, P), h(k, P), step(k, P), sum(k, P);
  B::copy(rhs, v.view());  // rhs is read only here, so solutions may alias it
  B::fill(T(0), sum.view());
  const auto cv = [&] { return std::as_const(v).view(); };
  const auto ch = [&] { return std::as_const(h).view(); };

  // A uniformly random subset per iteration: a partial Fisher–Yates shuffle of `order` leaves
  // its first `batch` entries uniform without replacement whatever order it starts in.
  xoshiro256ss rng(options.seed);
  std::vector<index> order(static_cast<std::size_t>(N));
  std::iota(order.begin(), order.end(), index{0});
  const index batch = std::min(options.batch_size, N);
  const auto draw = [&]() -> std::span<const index> {
    if (batch < N)
      for (index a = 0; a < batch; ++a) {
        const auto b = a + static_cast<index>(bounded(rng, static_cast<std::uint64_t>(N - a)));
        std::swap(order[static_cast<std::size_t>(a)], order[static_cast<std::size_t>(b)]);
      }
    return std::span<const index>(order).first(static_cast<std::size_t>(batch));
  };

  const T damping = static_cast<T>(options.damping);
  const T shrink = static_cast<T>(-1 / options.scale);
  for (index repeat = 0; repeat < options.repeats; ++repeat) {
    B::copy(cv(), h.view());
    for (index iteration = 1; iteration <= options.depth; ++iteration) {
      op.batch_hessian_vector_products(draw(), ch(), step.view());
      ++report.batch_hvp_calls;
      B::scal(shrink, step.view());
      if (damping != T(0)) B::axpy(-damping, ch(), step.view());
      B::axpy(T(1), cv(), step.view());
      B::axpy(T(1), std::as_const(step).view(), h.view());
      if (!B::all_finite(std::as_const(h).flat())) {
        index j = 0;
        while (j + 1 < k && B::all_finite(row(ch(), j))) ++j;
        throw numerical_error("lissa: the estimate of direction " + std::to_string(j) +
                              " became NaN or Inf at iteration " + std::to_string(iteration) + " of " +
                              std::to_string(options.depth) + " (repeat " + std::to_string(repeat) +
                              "): the recursion diverges when the scale s = " + std::to_string(options.scale) +
                              " is below about half the largest eigenvalue of the mini-batch Hessians; use a larger "
                              "scale (lissa_options::scale)");
      }
    }
    for (index j = 0; j < k; ++j) {
      const auto d = row(std::as_const(step).view(), j), hj = row(ch(), j);
      const double hn = std::sqrt(static_cast<double>(B::dot(hj, hj)));
      const double change = hn > 0 ? std::sqrt(static_cast<double>(B::dot(d, d))) / hn : 0.0;
      auto& worst = report.final_relative_change[static_cast<std::size_t>(j)];
      worst = std::max(worst, change);
    }
    B::axpy(static_cast<T>(1 / (options.scale * static_cast<double>(options.repeats))), ch(), sum.view());
  }
  B::copy(std::as_const(sum).view(), solutions);

  if (options.residual_check) {
    auto& residual = step;
    op.hessian_vector_products(std::as_const(sum).view(), residual.view());
    ++report.hvp_passes;
    B::axpy(static_cast<T>(report.effective_damping), std::as_const(sum).view(), residual.view());
    B::axpy(T(-1), cv(), residual.view());
    report.relative_residuals.assign(static_cast<std::size_t>(k), 0.0);
    for (index j = 0; j < k; ++j) {
      const auto r = row(std::as_const(residual).view(), j), vj = row(cv(), j);
      const double vn = std::sqrt(static_cast<double>(B::dot(vj, vj)));
      report.relative_residuals[static_cast<std::size_t>(j)] =
          vn > 0 ? std::sqrt(static_cast<double>(B::dot(r, r))) / vn : 0.0;
    }
  }
  return report;
}

} // namespace hydra
