#pragma once
// The backend seam. Everything above it (layers, models, losses, optimizers, the trainer) talks
// to memory and arithmetic only through a Backend type; see docs/backend.md for the operation
// set and its exact semantics.

#include <concepts>
#include <string>
#include <vector>

#include "hydra/backend/device_info.hpp"
#include "hydra/core/types.hpp"

namespace hydra {

// ---- the operation groups: each a concept a new backend can check on its own ----------------
// One requires-expression per group, for one scalar type T; Backend asks each for float and double.

/// Memory: an owning buffer<T> and copies between it and the host.
template <class B, class T>
concept BackendStorage = requires(index n, typename B::template buffer<T>& buf, const T* src, T* dst) {
  { typename B::template buffer<T>(n) };
  { buf.data() } -> std::same_as<T*>;
  { buf.size() } -> std::convertible_to<index>;
  B::copy_from_host(src, n, dst);
  B::copy_to_host(src, n, dst);
};

/// BLAS levels 1 and 3 on views: gemm, batched gemm, axpy, scal, copy, fill, dot.
template <class B, class T>
concept BackendBlas = requires(T a, matrix_view<const T> ca, matrix_view<T> m, vector_view<const T> cx,
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
};

/// Reductions: sums, column sums (plain and per batch of rows), the finiteness check.
template <class B, class T>
concept BackendReductions = requires(T a, matrix_view<const T> ca, matrix_view<T> m, vector_view<const T> cx,
                                     vector_view<T> x, index n) {
  { B::sum(cx) } -> std::same_as<T>;
  B::column_sums(a, ca, a, x);
  B::column_sums_batched(a, ca, n, m);
  { B::all_finite(cx) } -> std::same_as<bool>;
};

/// Element-wise and broadcast operations: bias rows, outer products, the activations and their
/// first and second derivatives.
template <class B, class T>
concept BackendElementwise = requires(activation f, matrix_view<const T> ca, matrix_view<T> m,
                                      vector_view<const T> cx) {
  B::add_row_vector(cx, m);
  B::add_row_vectors(ca, m);
  B::row_outer_products(ca, ca, m);
  B::activation_forward(f, ca, m);
  B::activation_backward(f, ca, ca, ca, m);
  B::activation_tangent(f, ca, ca, ca, m);
  B::activation_second_backward(f, ca, ca, ca, ca, ca, m);
};

/// The hypergradient recurrence (hypergradient/recurrence.hpp): the eager step of every state and
/// the lazy transfer of listed states, each reporting whether all it wrote is finite.
template <class B, class T>
concept BackendRecurrence = requires(T a, matrix_view<const T> ca, matrix_view<T> m, index n) {
  {
    B::hypergradient_update(a, a, a, ca, static_cast<const index*>(nullptr), static_cast<const T*>(nullptr), ca, m, m)
  } -> std::same_as<bool>;
  {
    B::hypergradient_transfer(n, static_cast<const index*>(nullptr), static_cast<const T*>(nullptr),
                              static_cast<const index*>(nullptr), static_cast<const T*>(nullptr), a, ca, m, m)
  } -> std::same_as<bool>;
};

/// Image layout for convolutions and pooling: im2col/col2im, axis swaps, max and average pooling.
template <class B, class T>
concept BackendImages = requires(const conv_geometry& cg, const pool_geometry& pg, matrix_view<const T> ca,
                                 matrix_view<T> m, index n) {
  B::im2col(cg, ca, m);
  B::col2im(cg, ca, m);
  B::swap_leading_axes(ca, n, n, m);
  B::max_pool_forward(pg, ca, m);
  B::max_pool_backward(pg, ca, ca, m);
  B::max_pool_tangent(pg, ca, ca, m);
  B::avg_pool_forward(pg, ca, m);
  B::avg_pool_backward(pg, ca, m);
};

/// Per-channel arithmetic on images stored R × (C·P) (C channels of P pixels per row, rows in
/// blocks of block_rows, one block per direction of a batched pass): channel sums of products,
/// per-channel affine combinations, and an elementwise 1/√(x + shift) (batch normalisation).
template <class B, class T>
concept BackendChannels = requires(T a, matrix_view<const T> ca, matrix_view<T> m, index n) {
  B::channel_sums(a, ca, ca, n, n, a, m);
  B::channel_combine(a, ca, ca, ca, ca, ca, n, n, a, m);
  B::inverse_sqrt(a, ca, m);
};

/// The loss kernels: softmax cross-entropy and squared error with their derivatives, accuracy.
template <class B, class T>
concept BackendLosses = requires(matrix_view<const T> c, matrix_view<T> m, const label_type* y, vector_view<T> x,
                                 T s) {
  B::softmax_cross_entropy(c, y, m, x);
  B::softmax_cross_entropy_gradient(c, y, s, m);
  B::softmax_cross_entropy_hessian_product(c, c, s, m);
  B::squared_error(c, y, c, x);
  B::squared_error_gradient(c, y, c, s, m);
  { B::count_correct(c, y) } -> std::convertible_to<index>;
};

/// What a backend says about itself: its name, whether the host may read its memory, and the
/// devices it can run on (tools list them; none is an empty list with no_device_reason() saying why).
template <class B>
concept BackendDevices = requires {
  { B::name } -> std::convertible_to<const char*>;
  { B::host_accessible } -> std::convertible_to<bool>;
  { B::devices() } -> std::same_as<std::vector<device_info>>;
  { B::no_device_reason() } -> std::same_as<std::string>;
};

namespace detail {
template <class B, class T>
concept backend_operations = BackendStorage<B, T> && BackendBlas<B, T> && BackendReductions<B, T> &&
                             BackendElementwise<B, T> && BackendRecurrence<B, T> && BackendImages<B, T> &&
                             BackendChannels<B, T> && BackendLosses<B, T>;
} // namespace detail

/// A Backend owns memory (`buffer<T>`) and provides the operation set of docs/backend.md for
/// float and double: every group above.
template <class B>
concept Backend = BackendDevices<B> && detail::backend_operations<B, float> && detail::backend_operations<B, double>;

/// `static_assert(hydra::check_backend<B>())`: one sentence per missing group of operations.
template <class B>
consteval bool check_backend() {
  static_assert(requires { B::name; B::host_accessible; },
                "hydra: a backend must declare `static constexpr const char* name` and `static constexpr bool "
                "host_accessible`; see docs/backend.md, section 'How to add a backend'.");
  static_assert(BackendDevices<B>,
                "hydra: a backend must provide `static std::vector<hydra::device_info> devices()` and `static "
                "std::string no_device_reason()` (hydra::BackendDevices); see docs/backend.md.");
  static_assert(BackendStorage<B, float> && BackendStorage<B, double>,
                "hydra: a backend must provide buffer<T> and copy_from_host/copy_to_host for float and double "
                "(hydra::BackendStorage); see docs/backend.md.");
  static_assert(BackendBlas<B, float> && BackendBlas<B, double>,
                "hydra: a backend must provide the BLAS operations of docs/backend.md (gemm, gemm_batched, axpy, "
                "scal, copy, fill, dot) for float and double (hydra::BackendBlas).");
  static_assert(BackendReductions<B, float> && BackendReductions<B, double>,
                "hydra: a backend must provide sum, column_sums, column_sums_batched and all_finite of "
                "docs/backend.md (hydra::BackendReductions).");
  static_assert(BackendElementwise<B, float> && BackendElementwise<B, double>,
                "hydra: a backend must provide add_row_vector(s), row_outer_products and the four activation "
                "operations of docs/backend.md (hydra::BackendElementwise).");
  static_assert(BackendRecurrence<B, float> && BackendRecurrence<B, double>,
                "hydra: a backend must provide hypergradient_update and hypergradient_transfer of docs/backend.md "
                "(hydra::BackendRecurrence; the arithmetic is hypergradient/recurrence.hpp's).");
  static_assert(BackendImages<B, float> && BackendImages<B, double>,
                "hydra: a backend must provide im2col, col2im, swap_leading_axes and the pooling kernels of "
                "docs/backend.md (hydra::BackendImages).");
  static_assert(BackendChannels<B, float> && BackendChannels<B, double>,
                "hydra: a backend must provide channel_sums, channel_combine and inverse_sqrt of docs/backend.md "
                "(hydra::BackendChannels; batch normalisation uses them).");
  static_assert(BackendLosses<B, float> && BackendLosses<B, double>,
                "hydra: a backend must provide the loss kernels of docs/backend.md (hydra::BackendLosses).");
  return true;
}

/// Whether code on the host may dereference a Backend's memory directly.
template <class B>
inline constexpr bool host_accessible_v = B::host_accessible;

} // namespace hydra
