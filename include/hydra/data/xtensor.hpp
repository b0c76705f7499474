#pragma once
// Optional: hydra's host-side N-d data as xtensor expressions. Include this header only if you use
// xtensor; no other hydra header includes it, and <hydra/hydra.hpp> does not.
//
//   as_xtensor(matrix_view<T> m)        rows × cols (2-d), m's row stride kept (a strided view)
//   as_xtensor(vector_view<T> v)        size (1-d)
//   as_xtensor(matrix<T, B>& m), as_xtensor(vector<T, B>& v)
//                                       a container's memory (2-d row-major, 1-d), host backends only
//   features_as_xtensor(dataset<T>& ds) N × sample shape (e.g. N × 1 × 28 × 28): any rank, an xarray;
//   features_as_xtensor<Rank>(ds)       the same with the rank fixed at compile time, an xtensor
//                                       (faster indexing); shape_error if ds has another rank
//
// Every one is xt::adapt(..., xt::no_ownership(), ...) over hydra's own memory: nothing is copied,
// element (i, j, ...) is hydra's element (i, j, ...) at the same address, writes through an adaptor
// of mutable data land in hydra's storage, and the adaptor is valid only as long as that memory.
// Const data (matrix_view<const T>, a const container or dataset) give read-only adaptors.
//
// Where the memory lives: a view (matrix_view, vector_view) does not know, so adapting a view of
// device memory (hydra::cuda) is the caller's error, as dereferencing it would be. A container
// knows its backend at compile time: as_xtensor of a matrix or vector on a backend that is not
// host_accessible does not compile (copy it to the host first with to_host()).

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xstrided_view.hpp>

#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/core/types.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/data/detail/checked.hpp"

namespace hydra {

namespace detail {
template <std::size_t Rank>
[[nodiscard]] std::array<std::size_t, Rank> xtensor_shape(const std::array<index, Rank>& extents) {
  std::array<std::size_t, Rank> shape{};
  for (std::size_t k = 0; k < Rank; ++k) shape[k] = static_cast<std::size_t>(extents[k]);
  return shape;
}

/// Row-major contiguous memory of the given extents.
template <class T, std::size_t Rank>
[[nodiscard]] auto adapt_contiguous(T* data, const std::array<index, Rank>& extents) {
  const auto shape = xtensor_shape(extents);
  std::size_t size = 1;
  for (auto n : shape) size *= n;
  return xt::adapt(static_cast<T*>(data), size, xt::no_ownership(), shape);
}

/// The same, for a container of backend B: refused at compile time unless B's memory is the host's.
template <class B, class T, std::size_t Rank>
[[nodiscard]] auto adapt_host(T* data, const std::array<index, Rank>& extents) {
  static_assert(B::host_accessible,
                "hydra::as_xtensor: this container's backend is not host_accessible (its memory is on a device); "
                "copy it to the host with to_host() and adapt that, see hydra/data/xtensor.hpp.");
  return adapt_contiguous(data, extents);
}

template <class T>
[[nodiscard]] auto adapt_rows(T* data, index rows, index cols, index stride) {
  // To xtensor an adaptor's buffer is the product of its shape, and it copies assigned values into
  // it linearly; a view with stride > cols spans more. So: the span as a 1-d buffer, seen through
  // a strided view (xtensor's convention: an axis of length 1 has stride 0).
  const index span = rows == 0 || cols == 0 ? 0 : (rows - 1) * stride + cols;
  std::array<std::size_t, 2> shape = xtensor_shape(std::array{rows, cols});
  std::array<std::ptrdiff_t, 2> strides{rows == 1 ? 0 : stride, cols == 1 ? 0 : 1};
  return xt::strided_view(adapt_contiguous(data, std::array{span}), std::move(shape), std::move(strides));
}

template <class Shape, class T>  // Shape: std::vector (any rank) or std::array (a fixed rank)
[[nodiscard]] auto adapt_features(T* data, std::size_t size, index samples, std::span<const index> sample_shape) {
  Shape shape{};
  if constexpr (requires { shape.resize(std::size_t{}); }) shape.resize(sample_shape.size() + 1);
  shape[0] = static_cast<std::size_t>(samples);
  for (std::size_t k = 0; k < sample_shape.size(); ++k) shape[k + 1] = static_cast<std::size_t>(sample_shape[k]);
  return xt::adapt(static_cast<T*>(data), size, xt::no_ownership(), shape);
}

template <std::size_t Rank, Scalar T>
void check_features_rank(const dataset<T>& ds) {
  if (ds.sample_shape().size() + 1 != Rank)
    throw shape_error("hydra::features_as_xtensor<" + std::to_string(Rank) + ">: the samples have shape " +
                      shape_string(ds.sample_shape()) + ", so the features have rank " +
                      std::to_string(ds.sample_shape().size() + 1));
}
} // namespace detail

/// m as a rows × cols xtensor expression over m's memory: a strided view, strides {m.stride, 1}.
template <class T>
[[nodiscard]] auto as_xtensor(matrix_view<T> m) {
  return detail::adapt_rows(m.data, m.rows, m.cols, m.stride);
}

/// v as a 1-d xtensor expression of v.size elements over v's memory.
template <class T>
[[nodiscard]] auto as_xtensor(vector_view<T> v) {
  return detail::adapt_contiguous(v.data, std::array{v.size});
}

/// A host container's memory: a matrix as a rows × cols (row-major, contiguous), a vector as a 1-d
/// xtensor expression. A temporary container is refused (it would be gone before its adaptor is used).
template <Scalar T, class B>
[[nodiscard]] auto as_xtensor(matrix<T, B>& m) {
  return detail::adapt_host<B>(m.data(), std::array{m.rows(), m.cols()});
}
template <Scalar T, class B>
[[nodiscard]] auto as_xtensor(const matrix<T, B>& m) {
  return detail::adapt_host<B>(m.data(), std::array{m.rows(), m.cols()});
}
template <Scalar T, class B>
[[nodiscard]] auto as_xtensor(vector<T, B>& v) {
  return detail::adapt_host<B>(v.data(), std::array{v.size()});
}
template <Scalar T, class B>
[[nodiscard]] auto as_xtensor(const vector<T, B>& v) {
  return detail::adapt_host<B>(v.data(), std::array{v.size()});
}
template <Scalar T, class B>
void as_xtensor(matrix<T, B>&&) = delete;
template <Scalar T, class B>
void as_xtensor(vector<T, B>&&) = delete;

/// The features of ds as an N × sample_shape... xarray expression over ds's storage (read-only
/// for a const ds). A temporary data set is refused.
template <Scalar T>
[[nodiscard]] auto features_as_xtensor(const dataset<T>& ds) {
  const auto x = ds.features();
  return detail::adapt_features<std::vector<std::size_t>>(x.data(), x.size(), ds.size(), ds.sample_shape());
}
template <Scalar T>
[[nodiscard]] auto features_as_xtensor(dataset<T>& ds) {
  const auto x = ds.mutable_features();
  return detail::adapt_features<std::vector<std::size_t>>(x.data(), x.size(), ds.size(), ds.sample_shape());
}
template <Scalar T>
void features_as_xtensor(dataset<T>&&) = delete;

/// As above with the rank fixed: an xtensor of Rank = 1 + the sample rank axes; shape_error otherwise.
template <std::size_t Rank, Scalar T>
[[nodiscard]] auto features_as_xtensor(const dataset<T>& ds) {
  detail::check_features_rank<Rank>(ds);
  const auto x = ds.features();
  return detail::adapt_features<std::array<std::size_t, Rank>>(x.data(), x.size(), ds.size(), ds.sample_shape());
}
template <std::size_t Rank, Scalar T>
[[nodiscard]] auto features_as_xtensor(dataset<T>& ds) {
  detail::check_features_rank<Rank>(ds);
  const auto x = ds.mutable_features();
  return detail::adapt_features<std::array<std::size_t, Rank>>(x.data(), x.size(), ds.size(), ds.sample_shape());
}
template <std::size_t Rank, Scalar T>
void features_as_xtensor(dataset<T>&&) = delete;

} // namespace hydra
