#pragma once
// Index type and the non-owning strided views that cross the backend seam. A view says nothing
// about where its memory lives; the owning containers (core/matrix.hpp) and the backend do.

#include <cassert>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

namespace hydra {

using index = std::ptrdiff_t;

/// Class labels as stored in datasets and batches.
using label_type = std::int32_t;

/// The scalar types hydra computes in.
template <class T>
concept Scalar = std::same_as<T, float> || std::same_as<T, double>;

/// A row-major rows x cols matrix whose row r starts at data + r * stride.
template <class T>
struct matrix_view {
  T* data = nullptr;
  index rows = 0;
  index cols = 0;
  index stride = 0;  // elements between the starts of consecutive rows, >= cols

  constexpr matrix_view() = default;
  constexpr matrix_view(T* data_, index rows_, index cols_, index stride_)
      : data(data_), rows(rows_), cols(cols_), stride(stride_) {
    assert(rows >= 0 && cols >= 0 && stride >= cols);
  }
  constexpr matrix_view(T* data_, index rows_, index cols_) : matrix_view(data_, rows_, cols_, cols_) {}

  // A view of mutable data converts to a view of const data, never the other way.
  template <class U>
    requires(std::is_same_v<std::remove_const_t<T>, U> && std::is_const_v<T>)
  constexpr matrix_view(const matrix_view<U>& other)  // NOLINT(google-explicit-constructor)
      : data(other.data), rows(other.rows), cols(other.cols), stride(other.stride) {}

  [[nodiscard]] constexpr bool empty() const noexcept { return data == nullptr || rows == 0 || cols == 0; }
  [[nodiscard]] constexpr index size() const noexcept { return rows * cols; }
  [[nodiscard]] constexpr bool contiguous() const noexcept { return stride == cols || rows <= 1; }
  [[nodiscard]] constexpr T* row(index r) const noexcept { return data + r * stride; }

  /// Rows [first, first + count).
  [[nodiscard]] constexpr matrix_view row_block(index first, index count) const noexcept {
    assert(first >= 0 && count >= 0 && first + count <= rows);
    return {data + first * stride, count, cols, stride};
  }
  /// Columns [first, first + count) of every row.
  [[nodiscard]] constexpr matrix_view col_block(index first, index count) const noexcept {
    assert(first >= 0 && count >= 0 && first + count <= cols);
    return {data + first, rows, count, stride};
  }
};

/// A contiguous vector of n elements.
template <class T>
struct vector_view {
  T* data = nullptr;
  index size = 0;

  constexpr vector_view() = default;
  constexpr vector_view(T* data_, index size_) : data(data_), size(size_) { assert(size >= 0); }
  template <class U>
    requires(std::is_same_v<std::remove_const_t<T>, U> && std::is_const_v<T>)
  constexpr vector_view(const vector_view<U>& other)  // NOLINT(google-explicit-constructor)
      : data(other.data), size(other.size) {}

  [[nodiscard]] constexpr vector_view segment(index first, index count) const noexcept {
    assert(first >= 0 && count >= 0 && first + count <= size);
    return {data + first, count};
  }
  /// The same memory as a rows x cols row-major matrix.
  [[nodiscard]] constexpr matrix_view<T> as_matrix(index rows, index cols) const noexcept {
    assert(rows * cols == size);
    return {data, rows, cols, cols};
  }
};

/// The geometry of a 2-d convolution (or of its im2col) on C × H × W inputs, PyTorch's
/// conventions: square zero padding on every side, one stride for both axes.
struct conv_geometry {
  index channels = 0;
  index height = 0;
  index width = 0;
  index kernel_h = 0;
  index kernel_w = 0;
  index stride = 1;
  index padding = 0;

  [[nodiscard]] constexpr index out_height() const noexcept { return (height + 2 * padding - kernel_h) / stride + 1; }
  [[nodiscard]] constexpr index out_width() const noexcept { return (width + 2 * padding - kernel_w) / stride + 1; }
  /// Rows of the im2col matrix: C · kh · kw.
  [[nodiscard]] constexpr index patch_size() const noexcept { return channels * kernel_h * kernel_w; }
  [[nodiscard]] constexpr index input_size() const noexcept { return channels * height * width; }
  [[nodiscard]] constexpr index out_pixels() const noexcept { return out_height() * out_width(); }
};

/// The geometry of a 2-d pooling on C × H × W inputs: square windows of side `window` moved by
/// `stride` along both axes, no padding (windows that would cross the border are dropped, as in
/// PyTorch). Windows overlap when stride < window.
struct pool_geometry {
  index channels = 0;
  index height = 0;
  index width = 0;
  index window = 0;
  index stride = 1;

  [[nodiscard]] constexpr index out_height() const noexcept { return (height - window) / stride + 1; }
  [[nodiscard]] constexpr index out_width() const noexcept { return (width - window) / stride + 1; }
  [[nodiscard]] constexpr index out_pixels() const noexcept { return out_height() * out_width(); }
  /// C · H · W: the columns of a pooling input.
  [[nodiscard]] constexpr index input_size() const noexcept { return channels * height * width; }
  /// C · Ho · Wo: the columns of a pooling output.
  [[nodiscard]] constexpr index output_size() const noexcept { return channels * out_pixels(); }
};

/// Whether a GEMM operand is used as stored or transposed.
enum class transpose : bool { no = false, yes = true };

/// Elementwise nonlinearities known to every backend.
/// relu6 is min(max(x, 0), 6), MobileNetV2's nonlinearity (PyTorch's ReLU6).
enum class activation { identity, relu, tanh, sigmoid, relu6 };

[[nodiscard]] constexpr const char* name_of(activation a) noexcept {
  switch (a) {
    case activation::identity: return "identity";
    case activation::relu: return "relu";
    case activation::tanh: return "tanh";
    case activation::sigmoid: return "sigmoid";
    case activation::relu6: return "relu6";
  }
  return "?";
}

/// The activation named by name_of's text ("relu", "tanh", ...), or nothing for any other text.
[[nodiscard]] constexpr std::optional<activation> activation_named(std::string_view name) noexcept {
  for (auto a : {activation::identity, activation::relu, activation::tanh, activation::sigmoid, activation::relu6})
    if (name == name_of(a)) return a;
  return std::nullopt;
}

} // namespace hydra
