#pragma once
// Requirements on layers, losses and models (docs/nn.md). Each requirement is named once here.

#include <concepts>

#include "hydra/backend/concepts.hpp"
#include "hydra/core/types.hpp"

namespace hydra {

/// What a loss needs to know about a batch: integer labels (classification) and, for regression,
/// real-valued targets (rows of `values`; empty when absent). Both live in backend memory.
template <Scalar T>
struct batch_targets {
  const label_type* labels = nullptr;
  matrix_view<const T> values{};
};

namespace detail {
template <class X>
concept has_scalar_and_backend = requires {
  typename X::scalar_type;
  typename X::backend_type;
} && Scalar<typename X::scalar_type> && Backend<typename X::backend_type>;

template <class X>
concept sized_layer = requires(const X& x) {
  { x.input_size() } -> std::convertible_to<index>;
  { x.output_size() } -> std::convertible_to<index>;
  { x.parameter_count() } -> std::convertible_to<index>;
};
} // namespace detail

/// A layer maps a B x input_size batch to B x output_size through a slice of the flat parameter
/// vector, and provides the first- and second-order passes the model chains together.
template <class L>
concept Layer = detail::has_scalar_and_backend<L> && detail::sized_layer<L> &&
                requires(const L& l, const typename L::scalar_type* w, matrix_view<const typename L::scalar_type> c,
                         matrix_view<typename L::scalar_type> m, typename L::scalar_type* g) {
                  l.forward(w, c, m);
                  l.backward(w, c, c, c, m, g);
                  requires requires { l.per_sample_gradients(c, c, m); } ||
                               requires { l.per_sample_gradients(w, c, c, c, m); };
                  l.tangent(w, c, c, c, c, m);
                  l.second_backward(w, c, c, c, c, c, c, m, m);
                };

/// A loss turns B x C network outputs and the batch's targets into per-sample losses, their
/// gradient with respect to the outputs, and Hessian-vector products with respect to the outputs.
template <class L>
concept Loss = detail::has_scalar_and_backend<L> &&
               requires(L& l, matrix_view<const typename L::scalar_type> z, batch_targets<typename L::scalar_type> y,
                        vector_view<typename L::scalar_type> v, matrix_view<typename L::scalar_type> d,
                        typename L::scalar_type s) {
                 l.values(z, y, v);
                 l.gradient(z, y, s, d);
                 l.hessian_product(z, y, s, z, d);
               };

/// A model: a fixed architecture over a flat parameter vector with batched first- and
/// second-order derivatives of a loss. `SomeLoss` only names the scalar/backend pair in the
/// requirement; models accept any Loss on the same pair.
template <class M, class SomeLoss>
concept ModelFor =
    detail::has_scalar_and_backend<M> && detail::sized_layer<M> &&
    requires(M& m, vector_view<const typename M::scalar_type> w, vector_view<typename M::scalar_type> g,
             matrix_view<const typename M::scalar_type> c, matrix_view<typename M::scalar_type> out,
             batch_targets<typename M::scalar_type> y, SomeLoss& loss) {
      m.forward(w, c, out);
      { m.loss(w, c, y, loss) } -> std::same_as<typename M::scalar_type>;
      { m.gradient(w, c, y, loss, g) } -> std::same_as<typename M::scalar_type>;
      { m.per_sample_gradients(w, c, y, loss, out) } -> std::same_as<typename M::scalar_type>;
      m.hessian_vector_products(w, c, y, loss, c, out);
    };

namespace detail {
/// The simplest Loss on (T, B), used to state the Model requirement without naming a real loss.
template <Scalar T, class B>
struct archetype_loss {
  using scalar_type = T;
  using backend_type = B;
  void values(matrix_view<const T>, batch_targets<T>, vector_view<T>) {}
  void gradient(matrix_view<const T>, batch_targets<T>, T, matrix_view<T>) {}
  void hessian_product(matrix_view<const T>, batch_targets<T>, T, matrix_view<const T>, matrix_view<T>) {}
};
} // namespace detail

/// A model usable with every Loss on its scalar type and backend.
template <class M>
concept Model = detail::has_scalar_and_backend<M> &&
                ModelFor<M, detail::archetype_loss<typename M::scalar_type, typename M::backend_type>>;

/// `static_assert(hydra::check_layer<L>())` (Sequential does, for each layer): one sentence for a
/// type that is not a Layer.
template <class L>
consteval bool check_layer() {
  static_assert(detail::has_scalar_and_backend<L>,
                "hydra: a layer must declare `using scalar_type = float|double;` and `using backend_type = "
                "<a Backend>;`; see docs/nn.md, section 'The Layer concept'.");
  static_assert(detail::sized_layer<L>,
                "hydra: a layer must provide input_size(), output_size() and parameter_count(); see docs/nn.md, "
                "section 'The Layer concept'.");
  if constexpr (detail::has_scalar_and_backend<L>)
    static_assert(Layer<L>,
                  "hydra: a layer must provide forward, backward, per_sample_gradients, tangent and second_backward "
                  "with the signatures of docs/nn.md, section 'The Layer concept'.");
  return true;
}

/// `static_assert(hydra::check_model<M>())` (the trainer does) turns a type that misses the Model
/// requirements into one sentence instead of a template backtrace.
template <class M>
consteval bool check_model() {
  static_assert(detail::has_scalar_and_backend<M>,
                "hydra: a model must declare `using scalar_type = float|double;` and `using backend_type = "
                "<a Backend such as hydra::cpu>;`; see docs/nn.md, section 'The Model concept'.");
  static_assert(detail::sized_layer<M>,
                "hydra: a model must provide input_size(), output_size() and parameter_count(); see docs/nn.md, "
                "section 'The Model concept'.");
  if constexpr (detail::has_scalar_and_backend<M>)
    static_assert(Model<M>,
                  "hydra: a model must provide forward, loss, gradient, per_sample_gradients and "
                  "hessian_vector_products with the signatures of docs/nn.md, section 'The Model concept'.");
  return true;
}

/// `static_assert(hydra::check_loss<L>())`: one sentence for a type that is not a Loss.
template <class L>
consteval bool check_loss() {
  static_assert(detail::has_scalar_and_backend<L>,
                "hydra: a loss must declare `using scalar_type = float|double;` and `using backend_type = ...;`; "
                "see docs/nn.md, section 'The Loss concept'.");
  if constexpr (detail::has_scalar_and_backend<L>)
    static_assert(Loss<L>,
                  "hydra: a loss must provide values(outputs, targets, out), gradient(outputs, targets, scale, d) and "
                  "hessian_product(outputs, targets, scale, r, out); see docs/nn.md, section 'The Loss concept'.");
  return true;
}

} // namespace hydra
