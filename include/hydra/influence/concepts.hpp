#pragma once
// What the inverse-Hessian-vector-product methods need from the Hessian they invert (docs/influence.md).
// training_objective (objective.hpp) is the one hydra provides; a test or a user may pass any
// other operator with these members, such as a fixed matrix.

#include <concepts>
#include <span>

#include "hydra/backend/concepts.hpp"
#include "hydra/core/types.hpp"

namespace hydra {

namespace detail {
template <class O>
concept hessian_scalar_and_backend = requires {
  typename O::scalar_type;
  typename O::backend_type;
} && Scalar<typename O::scalar_type> && Backend<typename O::backend_type>;
} // namespace detail

/// A symmetric |w| × |w| operator applied to k directions at once: hv.row(j) = H v.row(j).
/// Explicit and conjugate-gradient solves need only this.
template <class O>
concept HessianOperator =
    detail::hessian_scalar_and_backend<O> &&
    requires(O& o, matrix_view<const typename O::scalar_type> v, matrix_view<typename O::scalar_type> hv) {
      { o.parameter_count() } -> std::convertible_to<index>;
      o.hessian_vector_products(v, hv);
    };

/// A HessianOperator that is a mean over training_set_size() samples and can also be applied
/// with the Hessian of a mini-batch of them (an unbiased estimate when the batch is drawn
/// uniformly). LiSSA needs this.
template <class O>
concept SampledHessianOperator =
    HessianOperator<O> &&
    requires(O& o, std::span<const index> batch, matrix_view<const typename O::scalar_type> v,
             matrix_view<typename O::scalar_type> hv) {
      { o.training_set_size() } -> std::convertible_to<index>;
      o.batch_hessian_vector_products(batch, v, hv);
    };

/// `static_assert(hydra::check_hessian_operator<O>())`: one sentence for a type that is not one.
template <class O>
consteval bool check_hessian_operator() {
  static_assert(detail::hessian_scalar_and_backend<O>,
                "hydra: a Hessian operator must declare `using scalar_type = float|double;` and `using backend_type "
                "= <a Backend>;`; see docs/influence.md, section 'The Hessian operator'.");
  if constexpr (detail::hessian_scalar_and_backend<O>)
    static_assert(HessianOperator<O>,
                  "hydra: a Hessian operator must provide parameter_count() and hessian_vector_products(directions, "
                  "products) on k x |w| matrix views; see docs/influence.md, section 'The Hessian operator'.");
  return true;
}

/// The same for LiSSA's requirement.
template <class O>
consteval bool check_sampled_hessian_operator() {
  static_assert(check_hessian_operator<O>());
  if constexpr (HessianOperator<O>)
    static_assert(SampledHessianOperator<O>,
                  "hydra: LiSSA needs a Hessian operator with training_set_size() and "
                  "batch_hessian_vector_products(batch_indices, directions, products); see docs/influence.md, "
                  "section 'The Hessian operator'.");
  return true;
}

} // namespace hydra
