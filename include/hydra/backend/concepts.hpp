#pragma once
// The backend seam. Everything above it (layers, models, losses, optimizers, the trainer) talks
// to memory and arithmetic only through a Backend type; see docs/backend.md for the operation
// set and its exact semantics.

#include <concepts>

#include "hydra/core/types.hpp"

namespace hydra {

namespace detail {
// One requires-expression per group of operations, all instantiated for both scalar types.
template <class B, class T>
concept backend_memory = requires(index n, typename B::template buffer<T>& buf, const T* src, T* dst) {
  { typename B::template buffer<T>(n) };
  { buf.data() } -> std::same_as<T*>;
  { buf.size() } -> std::convertible_to<index>;
  B::copy_from_host(src, n, dst);
  B::copy_to_host(src, n, dst);
};

template <class B, class T>
concept backend_blas = requires(T a, matrix_view<const T> ca, matrix_view<T> m, vector_view<const T> cx,
                                vector_view<T> x, index n) {
  B::gemm(transpose::no, transpose::yes, a, ca, ca, a, m);
  B::gemm_batched(transpose::no, transpose::yes, a, ca, n, ca, n, a, m, n, n);
  B::axpy(a, cx, x);
  B::scal(a, x);
  B::copy(cx, x);
  B::copy(ca, m);
  B::fill(a, x);
  B::fill(a, m);
  { B::dot(cx, cx) } -> std::same_as<T>;
  { B::sum(cx) } -> std::same_as<T>;
  B::add_row_vector(cx, m);
  B::add_row_vectors(ca, m);
  B::column_sums(a, ca, a, x);
  B::column_sums_batched(a, ca, n, m);
  B::row_outer_products(ca, ca, m);
  { B::all_finite(cx) } -> std::same_as<bool>;
  {
    B::hypergradient_update(a, a, a, ca, static_cast<const index*>(nullptr), static_cast<const T*>(nullptr), ca, m, m)
  } -> std::same_as<bool>;
  {
    B::hypergradient_transfer(n, static_cast<const index*>(nullptr), static_cast<const T*>(nullptr),
                              static_cast<const index*>(nullptr), static_cast<const T*>(nullptr), a, ca, m, m)
  } -> std::same_as<bool>;
};

template <class B, class T>
concept backend_convolutions = requires(const conv_geometry& g, matrix_view<const T> c, matrix_view<T> m, index n) {
  B::im2col(g, c, m);
  B::col2im(g, c, m);
  B::swap_leading_axes(c, n, n, m);
};

template <class B, class T>
concept backend_pooling = requires(const pool_geometry& g, matrix_view<const T> c, matrix_view<T> m) {
  B::max_pool_forward(g, c, m);
  B::max_pool_backward(g, c, c, m);
  B::max_pool_tangent(g, c, c, m);
  B::avg_pool_forward(g, c, m);
  B::avg_pool_backward(g, c, m);
};

template <class B, class T>
concept backend_activations = requires(activation f, matrix_view<const T> c, matrix_view<T> m) {
  B::activation_forward(f, c, m);
  B::activation_backward(f, c, c, c, m);
  B::activation_tangent(f, c, c, c, m);
  B::activation_second_backward(f, c, c, c, c, c, m);
};

template <class B, class T>
concept backend_losses = requires(matrix_view<const T> c, matrix_view<T> m, const label_type* y, vector_view<T> x,
                                  T s) {
  B::softmax_cross_entropy(c, y, m, x);
  B::softmax_cross_entropy_gradient(c, y, s, m);
  B::softmax_cross_entropy_hessian_product(c, c, s, m);
  B::squared_error(c, y, c, x);
  B::squared_error_gradient(c, y, c, s, m);
  { B::count_correct(c, y) } -> std::convertible_to<index>;
};
} // namespace detail

/// A Backend owns memory (`buffer<T>`) and provides the operation set of docs/backend.md for
/// float and double.
template <class B>
concept Backend = requires {
  { B::name } -> std::convertible_to<const char*>;
  { B::host_accessible } -> std::convertible_to<bool>;
} && detail::backend_memory<B, float> && detail::backend_memory<B, double> && detail::backend_blas<B, float> &&
                  detail::backend_blas<B, double> && detail::backend_convolutions<B, float> &&
                  detail::backend_convolutions<B, double> && detail::backend_pooling<B, float> &&
                  detail::backend_pooling<B, double> && detail::backend_activations<B, float> &&
                  detail::backend_activations<B, double> && detail::backend_losses<B, float> &&
                  detail::backend_losses<B, double>;

/// `static_assert(hydra::check_backend<B>())`: one sentence per missing group of operations.
template <class B>
consteval bool check_backend() {
  static_assert(requires { B::name; B::host_accessible; },
                "hydra: a backend must declare `static constexpr const char* name` and `static constexpr bool "
                "host_accessible`; see docs/backend.md, section 'How to add a backend'.");
  static_assert(detail::backend_memory<B, float> && detail::backend_memory<B, double>,
                "hydra: a backend must provide buffer<T> and copy_from_host/copy_to_host for float and double; see "
                "docs/backend.md.");
  static_assert(detail::backend_blas<B, float> && detail::backend_blas<B, double>,
                "hydra: a backend must provide the BLAS-like operations of docs/backend.md (gemm, gemm_batched, axpy, "
                "...) for float and double.");
  static_assert(detail::backend_convolutions<B, float> && detail::backend_convolutions<B, double>,
                "hydra: a backend must provide im2col, col2im and swap_leading_axes of docs/backend.md.");
  static_assert(detail::backend_pooling<B, float> && detail::backend_pooling<B, double>,
                "hydra: a backend must provide the pooling kernels of docs/backend.md (max_pool_forward, "
                "max_pool_backward, max_pool_tangent, avg_pool_forward, avg_pool_backward).");
  static_assert(detail::backend_activations<B, float> && detail::backend_activations<B, double>,
                "hydra: a backend must provide the four activation operations of docs/backend.md.");
  static_assert(detail::backend_losses<B, float> && detail::backend_losses<B, double>,
                "hydra: a backend must provide the loss kernels of docs/backend.md.");
  return true;
}

/// Whether code on the host may dereference a Backend's memory directly.
template <class B>
inline constexpr bool host_accessible_v = B::host_accessible;

} // namespace hydra
