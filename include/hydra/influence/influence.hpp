#pragma once
// Influence functions (Koh & Liang 2017; main text Eq. 20), the baseline HYDRA is compared with,
// on the same sign and scale as HYDRA's C(i, j) (docs/influence.md):
//
//   C_IF(i, j) = (1/N) · ∇ℓ(test_j; ŵ)ᵀ · H⁻¹ · ∇ℓ(z_i; ŵ),   H = ∇²[(1/N) Σ_k ℓ_k + (λ/2)‖w‖²](ŵ)
//
// Removing sample i is the weight change ε_i = −1/N, which moves the minimiser by
// Δŵ ≈ −ε_i·H⁻¹∇ℓ_i = (1/N)·H⁻¹∇ℓ_i and test loss j by ∇ℓ_testᵀΔŵ = C_IF(i, j). Positive:
// removing i would raise test loss j (the sample helps). s_test = H⁻¹∇ℓ_test is solved once per
// test point (all of them as k directions) and reused for every training sample: one GEMM.
//
// This header includes the rest of the component: the objective, the three inverse-HVP methods,
// and the gradient-similarity baselines (Grad-Dot, Grad-Cos, TracIn; gradient_similarity.hpp).

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hydra/attribution/contributions.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/influence/concepts.hpp"
#include "hydra/influence/conjugate_gradient.hpp"
#include "hydra/influence/explicit.hpp"
#include "hydra/influence/gradient_similarity.hpp"
#include "hydra/influence/inverse_hvp.hpp"
#include "hydra/influence/lissa.hpp"
#include "hydra/influence/objective.hpp"

namespace hydra {

/// out (n × M) = (1/N) · train_gradients (n × |w|) · s_testᵀ (|w| × M): one GEMM. Row r of
/// train_gradients is ∇ℓ(z_i; ŵ) of a training sample, row j of s_test is H⁻¹∇ℓ(test_j; ŵ).
template <class B, Scalar T>
void influence_contributions(matrix_view<const T> train_gradients, matrix_view<const T> s_test,
                             index training_set_size, matrix_view<T> out) {
  if (train_gradients.cols != s_test.cols || out.rows != train_gradients.rows || out.cols != s_test.rows)
    throw shape_error("influence_contributions: training gradients " + std::to_string(train_gradients.rows) + " x " +
                      std::to_string(train_gradients.cols) + ", s_test " + std::to_string(s_test.rows) + " x " +
                      std::to_string(s_test.cols) + ", output " + std::to_string(out.rows) + " x " +
                      std::to_string(out.cols));
  if (training_set_size <= 0)
    throw invalid_argument("influence_contributions: the training set size N must be positive");
  B::gemm(transpose::no, transpose::yes, T(1) / static_cast<T>(training_set_size), train_gradients, s_test, T(0), out);
}

/// The same, allocating the n × M result.
template <class B, Scalar T>
[[nodiscard]] matrix<T, B> influence_contributions(matrix_view<const T> train_gradients,
                                                   matrix_view<const T> s_test, index training_set_size) {
  matrix<T, B> out(train_gradients.rows, s_test.rows);
  influence_contributions<B>(train_gradients, s_test, training_set_size, out.view());
  return out;
}

template <Scalar T, class B>
struct s_test_result {
  matrix<T, B> s_test;  ///< M × |w|, row j = (H + damping)⁻¹ ∇ℓ(test_j; ŵ)
  ihvp_report report;
};

/// s_test for every point of `test`, all M as directions of one inverse-HVP solve against
/// `objective` (usually a training_objective at the same ŵ). Memory: the M × |w| test gradients,
/// s_test and the method's workspace (CG and LiSSA: 3–4 more M × |w| matrices); split a large
/// test set and call this per part.
template <class M, class L, class O>
[[nodiscard]] s_test_result<typename M::scalar_type, typename M::backend_type>
compute_s_test(M& model, L& loss, vector_view<const typename M::scalar_type> w,
               const dataset<typename M::scalar_type>& test, O& objective, const ihvp_options& options = {},
               index batch_size = 256) {
  static_assert(check_sampled_hessian_operator<O>());
  if (objective.parameter_count() != model.parameter_count())
    throw shape_error("compute_s_test: the objective has " + std::to_string(objective.parameter_count()) +
                      " parameters, the model " + std::to_string(model.parameter_count()));
  s_test_result<typename M::scalar_type, typename M::backend_type> result{
      per_sample_gradients(model, loss, w, test, batch_size), {}};
  result.report = inverse_hvp(objective, std::as_const(result.s_test).view(), result.s_test.view(), options);
  return result;
}

struct influence_options {
  ihvp_options ihvp{};
  objective_options objective{};
  /// Samples per batch when computing the training and test gradients.
  index gradient_batch = 256;
};

template <Scalar T, class B>
struct influence_result {
  matrix<T, B> contributions;  ///< n_tracked × M, entry (r, j) = C_IF(tracked[r], j)
  matrix<T, B> s_test;         ///< M × |w|
  ihvp_report report;
};

/// C_IF for the training samples `tracked` (indices into `train`, the whole training set the
/// model was trained on, N = train.size()) and every point of `test`, at the trained parameters
/// w with the training run's weight decay λ.
template <class M, class L>
[[nodiscard]] influence_result<typename M::scalar_type, typename M::backend_type>
influence(M& model, L& loss, vector_view<const typename M::scalar_type> w,
          const dataset<typename M::scalar_type>& train, std::span<const index> tracked,
          const dataset<typename M::scalar_type>& test, typename M::scalar_type weight_decay,
          const influence_options& options = {}) {
  using B = typename M::backend_type;
  for (std::size_t r = 0; r < tracked.size(); ++r)
    if (tracked[r] < 0 || tracked[r] >= train.size())
      throw invalid_argument("influence: tracked[" + std::to_string(r) + "] = " + std::to_string(tracked[r]) +
                             " is outside the training set [0, " + std::to_string(train.size()) + ")");
  if (test.sample_size() != train.sample_size() && !test.empty())
    throw shape_error("influence: test samples have " + std::to_string(test.sample_size()) +
                      " features, training samples " + std::to_string(train.sample_size()));
  training_objective objective(model, loss, train, w, weight_decay, options.objective);
  auto solved = compute_s_test(model, loss, w, test, objective, options.ihvp, options.gradient_batch);
  const auto train_gradients = per_sample_gradients(model, loss, w, subset(train, tracked), options.gradient_batch);
  auto C = influence_contributions<B>(train_gradients.view(), std::as_const(solved.s_test).view(), train.size());
  return {std::move(C), std::move(solved.s_test), std::move(solved.report)};
}

} // namespace hydra
