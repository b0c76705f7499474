#pragma once
// Owning containers on a backend: hydra::vector<T, B> and hydra::matrix<T, B> (row-major).
// Element access from the host exists only for host-accessible backends; moving data between
// host and device is spelled out (to_host / from_host), never hidden.

#include <span>
#include <string>
#include <vector>

#include "hydra/backend/concepts.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"

namespace hydra {

template <Scalar T, class B>
class vector {
public:
  using value_type = T;
  using backend_type = B;

  vector() = default;
  explicit vector(index n) : buf_(n) {}

  [[nodiscard]] index size() const noexcept { return buf_.size(); }
  [[nodiscard]] T* data() noexcept { return buf_.data(); }
  [[nodiscard]] const T* data() const noexcept { return buf_.data(); }
  [[nodiscard]] vector_view<T> view() noexcept { return {data(), size()}; }
  [[nodiscard]] vector_view<const T> view() const noexcept { return {data(), size()}; }
  operator vector_view<T>() noexcept { return view(); }              // NOLINT
  operator vector_view<const T>() const noexcept { return view(); }  // NOLINT

  /// Keeps the contents only when the size is unchanged.
  void resize(index n) {
    if (n != size()) buf_ = typename B::template buffer<T>(n);
  }

  T& operator[](index i) noexcept
    requires(B::host_accessible)
  {
    return data()[i];
  }
  const T& operator[](index i) const noexcept
    requires(B::host_accessible)
  {
    return data()[i];
  }

  static vector from_host(std::span<const T> values) {
    vector v(static_cast<index>(values.size()));
    B::copy_from_host(values.data(), v.size(), v.data());
    return v;
  }
  [[nodiscard]] std::vector<T> to_host() const {
    std::vector<T> out(static_cast<std::size_t>(size()));
    B::copy_to_host(data(), size(), out.data());
    return out;
  }

private:
  typename B::template buffer<T> buf_;
};

template <Scalar T, class B>
class matrix {
public:
  using value_type = T;
  using backend_type = B;

  matrix() = default;
  matrix(index rows, index cols) : buf_(checked_size(rows, cols)), rows_(rows), cols_(cols) {}

  [[nodiscard]] index rows() const noexcept { return rows_; }
  [[nodiscard]] index cols() const noexcept { return cols_; }
  [[nodiscard]] index size() const noexcept { return rows_ * cols_; }
  [[nodiscard]] T* data() noexcept { return buf_.data(); }
  [[nodiscard]] const T* data() const noexcept { return buf_.data(); }
  [[nodiscard]] matrix_view<T> view() noexcept { return {data(), rows_, cols_, cols_}; }
  [[nodiscard]] matrix_view<const T> view() const noexcept { return {data(), rows_, cols_, cols_}; }
  operator matrix_view<T>() noexcept { return view(); }              // NOLINT
  operator matrix_view<const T>() const noexcept { return view(); }  // NOLINT
  [[nodiscard]] vector_view<T> flat() noexcept { return {data(), size()}; }
  [[nodiscard]] vector_view<const T> flat() const noexcept { return {data(), size()}; }

  /// Reallocates only when the element count grows; contents are unspecified afterwards.
  void resize(index rows, index cols) {
    if (checked_size(rows, cols) > buf_.size()) buf_ = typename B::template buffer<T>(rows * cols);
    rows_ = rows;
    cols_ = cols;
  }

  T& operator()(index r, index c) noexcept
    requires(B::host_accessible)
  {
    return data()[r * cols_ + c];
  }
  const T& operator()(index r, index c) const noexcept
    requires(B::host_accessible)
  {
    return data()[r * cols_ + c];
  }

  static matrix from_host(std::span<const T> values, index rows, index cols) {
    if (static_cast<index>(values.size()) != rows * cols)
      throw shape_error("hydra::matrix::from_host: " + std::to_string(values.size()) + " values for a " +
                        std::to_string(rows) + " x " + std::to_string(cols) + " matrix");
    matrix m(rows, cols);
    B::copy_from_host(values.data(), m.size(), m.data());
    return m;
  }
  [[nodiscard]] std::vector<T> to_host() const {
    std::vector<T> out(static_cast<std::size_t>(size()));
    B::copy_to_host(data(), size(), out.data());
    return out;
  }

private:
  static index checked_size(index rows, index cols) {
    if (rows < 0 || cols < 0)
      throw invalid_argument("hydra::matrix: negative shape " + std::to_string(rows) + " x " + std::to_string(cols));
    return rows * cols;
  }
  typename B::template buffer<T> buf_;
  index rows_ = 0;
  index cols_ = 0;
};

} // namespace hydra
