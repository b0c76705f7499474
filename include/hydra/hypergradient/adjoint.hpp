#pragma once
// The adjoint (reverse-mode) form of the hypergradient recurrence: the projections u_j·∇_{T,i}
// of the hypergradients of ALL N training samples onto M given directions u_j (test-loss
// gradients at w_T), exactly as forward tracking of every sample would give them, for one
// backward replay of training and M Hessian-vector products per step instead of N.
//
// Derivation (docs/hypergradient.md, "The adjoint"). The recurrence (recurrence.hpp) is linear in
// the state: dv_t = p·dv_{t−1} + (H_t + λ)∇_{t−1} + s_{t,i}, ∇_t = ∇_{t−1} − η_t·dv_t, with the
// source s_{t,i} = [i ∈ B_t]·w_{t,i}·g_{t,i}. Carry a pair (a_t, m_t) with
//   u·∇_T = a_t·∇_t + m_t·dv_t + (the source terms of the steps after t),   (a_T, m_T) = (u, 0).
// Substituting step t and letting c_t = m_t − η_t·a_t:
//   a_t·∇_t + m_t·dv_t = a_t·∇_{t−1} + c_t·dv_t = (a_t + (H_t + λ)c_t)·∇_{t−1} + p·c_t·dv_{t−1} + c_t·s_{t,i}
// (H_t symmetric), so a_{t−1} = a_t + (H_t + λ)·c_t, m_{t−1} = p·c_t, and since ∇_0 = dv_0 = 0,
//   u·∇_{T,i} = Σ_t [i ∈ B_t]·w_{t,i}·(c_t·g_{t,i}).
// Per step backwards, Exact: one batched HVP of the M vectors c_t at w_{t−1}, whose tangent pass
// also gives the couplings c_t·g_{t,i} (∂ℓ_i/∂z_i·R{z_i}); HessianFree: a tangent pass alone for
// them (or, for M above the batch size, the batch's per-sample gradients and one GEMM). Without the Hessian term
// every a_t, m_t is a multiple of u, which is what lean mode carries forward.
//
// What the sweep needs of training is w_{t−1} and η_t of every step (trajectory.hpp: all of them
// kept, or checkpoints every K steps with each segment recomputed; the batch order gives the
// batches).

#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/data/batch_order.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/hypergradient/policy.hpp"
#include "hydra/hypergradient/trajectory.hpp"
#include "hydra/nn/concepts.hpp"
#include "hydra/nn/hvp_workspace.hpp"
#include "hydra/optim/concepts.hpp"
#include "hydra/train/batch.hpp"
#include "hydra/train/progress.hpp"

namespace hydra {

/// A model whose hessian_vector_products can also return the per-sample loss derivatives along
/// its directions (basic_network does; docs/nn.md).
template <class M, class L, class T>
concept fused_couplings = requires(M& m, L& loss, vector_view<const T> w, matrix_view<const T> x, batch_targets<T> y,
                                   matrix_view<T> out) {
  m.hessian_vector_products(w, x, y, loss, x, out, out);
};

/// A model with forward-mode per-sample loss derivatives, directional_derivatives (basic_network).
template <class M, class L, class T>
concept tangent_couplings = requires(M& m, L& loss, vector_view<const T> w, matrix_view<const T> x, batch_targets<T> y,
                                     matrix_view<T> out) {
  m.directional_derivatives(w, x, y, loss, x, out);
};

struct adjoint_options {
  /// Exact only: the most bytes of Hessian-vector-product workspace in use at once.
  std::size_t hvp_memory_bytes = std::size_t{256} << 20;
  /// Stop with numerical_error when the adjoint becomes NaN/Inf (naming the step).
  bool check_finite = true;
  /// A progress line on stderr for the backward sweep, as the trainer's (automatic: on a terminal).
  progress_mode progress = progress_mode::automatic;
};

/// Row i, column j: u_j·∇_{T,i} for every training sample i of `train` (N × M, backend memory), u_j
/// the rows of `directions` (M × |w|, backend memory), along the training run that `trajectory`
/// (a trajectory_recorder or checkpointed_trajectory) recorded with `order` and `optimizer` (its
/// step_coefficients give p, λ; η_t is the recorded one); the steps are visited from the last to
/// the first. Exact keeps the Hessian term, HessianFree drops it. C(i, j) = −(1/N)·result(i, j)
/// (contributions_from_projections) when u_j = ∇ℓ(test_j, w_T).
template <HypergradientPolicy Policy, class M, class L, class Trajectory, class O>
[[nodiscard]] matrix<typename M::scalar_type, typename M::backend_type>
adjoint_projections(M& model, L& loss, const dataset<typename M::scalar_type>& train, const batch_order& order,
                    Trajectory& trajectory, matrix_view<const typename M::scalar_type> directions, const O& optimizer,
                    adjoint_options options = {}) {
  using T = typename M::scalar_type;
  using B = typename M::backend_type;
  static_assert(check_model<M>());
  static_assert(check_linearized_optimizer<O>());
  const index P = model.parameter_count(), N = train.size(), count = directions.rows;
  if (order.num_samples() != N)
    throw invalid_argument("adjoint_projections: the batch order is for " + std::to_string(order.num_samples()) +
                           " samples, the training set has " + std::to_string(N));
  if (trajectory.steps() != order.steps())
    throw invalid_argument("adjoint_projections: the trajectory has " + std::to_string(trajectory.steps()) +
                           " steps, the batch order " + std::to_string(order.steps()));
  if (directions.cols != P)
    throw shape_error("adjoint_projections: directions have " + std::to_string(directions.cols) + " columns, the model has " +
                      std::to_string(P) + " parameters");

  matrix<T, B> a(count, P), m(count, P), c(count, P), products, gradients, couplings;
  B::copy(directions, a.view());  // (a_T, m_T) = (u, 0)
  const auto flat = [](matrix<T, B>& x) { return vector_view<T>(x.view().data, x.rows() * x.cols()); };
  std::vector<double> result(static_cast<std::size_t>(N * count), 0.0);
  std::vector<T> host_couplings;
  device_batch<T, B> batch;
  progress_line progress(options.progress);

  for (index t = order.steps() - 1; t >= 0; --t) {
    progress.update(order.steps() - t, order.steps(), "adjoint: back through step " + std::to_string(t));
    const auto indices = order.batch(t);
    const auto size = static_cast<index>(indices.size());
    const auto w = trajectory.parameters(t);
    const auto k = optimizer.step_coefficients(trajectory.learning_rate(t));
    batch.load(train, indices);

    B::copy(std::as_const(m).view(), c.view());  // c_t = m_t − η_t·a_t
    B::axpy(-k.eta, vector_view<const T>(flat(a)), flat(c));

    // The step's couplings c_t·g_{t,i} for each batch position, and (Exact) the M HVPs, in
    // chunks: a_{t−1} = a_t + (H_t + λ)·c_t. Exact: a model whose HVP also returns its
    // directions' per-sample loss derivatives gives the couplings from the HVP's tangent pass.
    // Otherwise a tangent pass alone when M ≤ |B_t| (M directions of forward mode cost less than
    // |B_t| per-sample gradients), else the per-sample gradients times c_tᵀ, one GEMM.
    couplings.resize(size, count);
    constexpr bool fused = Policy::hessian_aware && fused_couplings<M, L, T>;
    if constexpr (!fused) {
      bool by_tangent = false;
      if constexpr (tangent_couplings<M, L, T>) by_tangent = count <= size;
      if (by_tangent) {
        if constexpr (tangent_couplings<M, L, T>)
          model.directional_derivatives(w, batch.features(), batch.targets(), loss, std::as_const(c).view(),
                                        couplings.view());
      } else {
        gradients.resize(size, P);
        model.per_sample_gradients(w, batch.features(), batch.targets(), loss, gradients.view());
        B::gemm(transpose::no, transpose::yes, T(1), std::as_const(gradients).view(), std::as_const(c).view(), T(0),
                couplings.view());
      }
    }
    if constexpr (Policy::hessian_aware) {
      const index chunk = hvp_directions_per_call(model, size, options.hvp_memory_bytes);
      for (index first = 0; first < count; first += chunk) {
        const index n = std::min(chunk, count - first);
        products.resize(n, P);
        const auto directions_now = std::as_const(c).view().row_block(first, n);
        if constexpr (fused)
          model.hessian_vector_products(w, batch.features(), batch.targets(), loss, directions_now, products.view(),
                                        couplings.view().col_block(first, n));
        else
          model.hessian_vector_products(w, batch.features(), batch.targets(), loss, directions_now, products.view());
        B::axpy(T(1), vector_view<const T>(std::as_const(products).view().data, n * P),
                vector_view<T>(a.view().row(first), n * P));
      }
    }
    // The source terms: w_{t,i}·(c_t·g_{t,i}), N/|B_t| apiece.
    host_couplings.resize(static_cast<std::size_t>(size * count));
    B::copy_to_host(std::as_const(couplings).view().data, size * count, host_couplings.data());
    const double weight = static_cast<double>(N) / static_cast<double>(size);
    for (index b = 0; b < size; ++b) {
      double* row = result.data() + indices[static_cast<std::size_t>(b)] * count;
      for (index j = 0; j < count; ++j) row[j] += weight * static_cast<double>(host_couplings[static_cast<std::size_t>(b * count + j)]);
    }

    B::axpy(k.lambda, vector_view<const T>(flat(c)), flat(a));
    B::copy(std::as_const(c).view(), m.view());
    B::scal(k.p, flat(m));
    if (options.check_finite && (!B::all_finite(vector_view<const T>(flat(a))) || !B::all_finite(vector_view<const T>(flat(m)))))
      throw numerical_error("adjoint_projections: the adjoint became NaN or Inf at step " + std::to_string(t) +
                            " (going backwards from step " + std::to_string(order.steps() - 1) + ")");
  }

  progress.clear();
  std::vector<T> host(result.begin(), result.end());
  return matrix<T, B>::from_host(host, N, count);
}

} // namespace hydra
