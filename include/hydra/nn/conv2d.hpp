#pragma once
// Conv2d: a 2-d convolution (cross-correlation, as PyTorch's nn.Conv2d) with zero padding and a
// stride, on inputs stored one sample per row as C × H × W. Parameters: weight out × C × kh × kw
// row-major, then bias out (PyTorch's parameters_to_vector order).
//
// Everything is im2col + GEMM. With cols = im2col(x) ((C·kh·kw) × (B·Ho·Wo)) the layer is
// Y = W·cols + b·1ᵀ in channel-major order (out × B·Ho·Wo), swapped into the batch-major layout of
// the model. Being linear in (x, W, b) like Dense, its R-operator is
//   R{y}_j = W ⋆ R{x}_j + R{W}_j ⋆ x + R{b}_j
//   (Hv_j)_W = R{δ}_j ⋆ x + δ ⋆ R{x}_j,  (Hv_j)_b = Σ R{δ}_j,  R{δ_x}_j = Wᵀ ⋆ R{δ}_j + R{W}_jᵀ ⋆ δ
// and every ⋆ is a GEMM against the im2col matrices (one call for all k directions, or one
// strided-batched call over them).

#include <cmath>
#include <string>

#include "hydra/backend/concepts.hpp"
#include "hydra/backend/fwd.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/core/types.hpp"

namespace hydra {

template <Scalar T, Backend B = default_backend>
class Conv2d {
public:
  using scalar_type = T;
  using backend_type = B;

  /// in_channels × height × width inputs, out_channels square kernels of side `kernel`.
  Conv2d(index in_channels, index height, index width, index out_channels, index kernel, index stride = 1,
         index padding = 0)
      : g_{in_channels, height, width, kernel, kernel, stride, padding}, out_(out_channels) {
    if (in_channels <= 0 || height <= 0 || width <= 0 || out_channels <= 0 || kernel <= 0 || stride <= 0 || padding < 0)
      throw invalid_argument("hydra::Conv2d: channels, image size, kernel and stride must be positive and padding "
                             "non-negative; got in " + std::to_string(in_channels) + ", image " + std::to_string(height) +
                             " x " + std::to_string(width) + ", out " + std::to_string(out_channels) + ", kernel " +
                             std::to_string(kernel) + ", stride " + std::to_string(stride) + ", padding " +
                             std::to_string(padding));
    if (height + 2 * padding < kernel || width + 2 * padding < kernel)
      throw invalid_argument("hydra::Conv2d: a " + std::to_string(kernel) + " x " + std::to_string(kernel) +
                             " kernel does not fit a padded " + std::to_string(height + 2 * padding) + " x " +
                             std::to_string(width + 2 * padding) + " image");
  }

  [[nodiscard]] const conv_geometry& geometry() const noexcept { return g_; }
  [[nodiscard]] index out_channels() const noexcept { return out_; }
  [[nodiscard]] index input_size() const noexcept { return g_.input_size(); }
  [[nodiscard]] index output_size() const noexcept { return out_ * g_.out_pixels(); }
  [[nodiscard]] index parameter_count() const noexcept { return weight_size() + out_; }
  [[nodiscard]] const char* name() const noexcept { return "Conv2d"; }

  /// Extra workspace per direction of a Hessian-vector product (the im2col of the tangents and the
  /// channel-major tangent outputs), for memory-bounded chunking.
  [[nodiscard]] index workspace_per_direction(index batch) const noexcept {
    return batch * g_.out_pixels() * (g_.patch_size() + 2 * out_);
  }

  /// PyTorch's default for nn.Conv2d: weight and bias uniform in ±1/√(C·kh·kw).
  template <class Uniform>
  void initialize(T* w, Uniform&& uniform) const {
    const double bound = 1.0 / std::sqrt(static_cast<double>(g_.patch_size()));
    for (index i = 0; i < parameter_count(); ++i) w[i] = static_cast<T>(uniform(-bound, bound));
  }

  void forward(const T* w, matrix_view<const T> x, matrix_view<T> y) const {
    const index batch = x.rows;
    const auto cols = im2col(x, cols_);
    auto out = resized(channel_major_, out_, batch * pixels());
    B::gemm(transpose::no, transpose::no, T(1), weight(w), cols, T(0), out);
    B::gemm(transpose::no, transpose::no, T(1), bias_column(w), ones(batch * pixels()).as_row(), T(1), out);
    B::swap_leading_axes(std::as_const(out), batch, pixels(), y);
  }

  /// grad = [δ ⋆ x, Σ δ] (when grad is not null); d_x = Wᵀ ⋆ δ (when d_x is not empty).
  void backward(const T* w, matrix_view<const T> x, matrix_view<const T> /*y*/, matrix_view<const T> d_y,
                matrix_view<T> d_x, T* grad) const {
    const index batch = x.rows;
    const auto d = channel_major(d_y, delta_);
    if (grad != nullptr) {
      const auto cols = im2col(x, cols_);
      B::gemm(transpose::no, transpose::yes, T(1), d, cols, T(0), matrix_view<T>(grad, out_, g_.patch_size()));
      B::gemm(transpose::no, transpose::no, T(1), d, ones(batch * pixels()).as_column(), T(0),
              matrix_view<T>(grad + weight_size(), out_, 1, 1));
    }
    if (!d_x.empty()) {
      auto dcols = resized(dcols_, g_.patch_size(), batch * pixels());
      B::gemm(transpose::yes, transpose::no, T(1), weight(w), d, T(0), dcols);
      B::col2im(g_, std::as_const(dcols), d_x);
    }
  }

  /// Row b of G: [δ_b ⋆ x_b, Σ δ_b], one strided-batched GEMM over the batch.
  void per_sample_gradients(matrix_view<const T> x, matrix_view<const T> d_y, matrix_view<T> G) const {
    const index batch = x.rows;
    const auto cols = im2col(x, cols_);
    B::gemm_batched(transpose::no, transpose::yes, T(1), matrix_view<const T>(d_y.data, out_, pixels(), pixels()),
                    d_y.stride, cols.col_block(0, pixels()), pixels(), T(0),
                    matrix_view<T>(G.data, out_, g_.patch_size(), g_.patch_size()), G.stride, batch);
    B::gemm_batched(transpose::no, transpose::no, T(1), matrix_view<const T>(d_y.data, out_, pixels(), pixels()),
                    d_y.stride, ones(pixels()).as_column(), 0, T(0),
                    matrix_view<T>(G.data + weight_size(), out_, 1, 1), G.stride, batch);
  }

  /// R{y}_j = W ⋆ R{x}_j + R{W}_j ⋆ x + R{b}_j for the k = dir.rows directions.
  void tangent(const T* w, matrix_view<const T> dir, matrix_view<const T> x, matrix_view<const T> /*y*/,
               matrix_view<const T> r_x, matrix_view<T> r_y) const {
    const index batch = x.rows, k = dir.rows, span = batch * pixels();
    auto out = resized(channel_major_, out_, k * span);
    T beta = T(0);
    if (!r_x.empty()) {
      B::gemm(transpose::no, transpose::no, T(1), weight(w), im2col(r_x, r_cols_), T(0), out);
      beta = T(1);
    }
    const auto cols = im2col(x, cols_);
    B::gemm_batched(transpose::no, transpose::no, T(1), direction_weight(dir), dir.stride, cols, 0, beta,
                    out.col_block(0, span), span, k);
    B::gemm_batched(transpose::no, transpose::no, T(1), direction_bias(dir), dir.stride, ones(span).as_row(), 0,
                    T(1), out.col_block(0, span), span, k);
    B::swap_leading_axes(std::as_const(out), k * batch, pixels(), r_y);
  }

  /// hv_j += [R{δ}_j ⋆ x + δ ⋆ R{x}_j, Σ R{δ}_j]; R{δ_x}_j = Wᵀ ⋆ R{δ}_j + R{W}_jᵀ ⋆ δ when r_d_x is
  /// not empty.
  void second_backward(const T* w, matrix_view<const T> dir, matrix_view<const T> x, matrix_view<const T> /*y*/,
                       matrix_view<const T> r_x, matrix_view<const T> d_y, matrix_view<const T> r_d_y,
                       matrix_view<T> r_d_x, matrix_view<T> hv) const {
    const index batch = x.rows, k = dir.rows, span = batch * pixels();
    const auto d = channel_major(d_y, delta_);
    const auto rd = channel_major(r_d_y, r_delta_);  // out × (k·B·Ho·Wo), direction j at columns j·span
    const matrix_view<T> hv_weight(hv.data, out_, g_.patch_size(), g_.patch_size());
    const auto cols = im2col(x, cols_);
    B::gemm_batched(transpose::no, transpose::yes, T(1), rd.col_block(0, span), span, cols, 0, T(1), hv_weight,
                    hv.stride, k);
    if (!r_x.empty()) {
      const auto r_cols = im2col(r_x, r_cols_);
      B::gemm_batched(transpose::no, transpose::yes, T(1), d, 0, r_cols.col_block(0, span), span, T(1), hv_weight,
                      hv.stride, k);
    }
    B::gemm_batched(transpose::no, transpose::no, T(1), rd.col_block(0, span), span, ones(span).as_column(), 0, T(1),
                    matrix_view<T>(hv.data + weight_size(), out_, 1, 1), hv.stride, k);
    if (!r_d_x.empty()) {
      auto dcols = resized(dcols_, g_.patch_size(), k * span);
      B::gemm(transpose::yes, transpose::no, T(1), weight(w), rd, T(0), dcols);
      B::gemm_batched(transpose::yes, transpose::no, T(1), direction_weight(dir), dir.stride, d, 0, T(1),
                      dcols.col_block(0, span), span, k);
      B::col2im(g_, std::as_const(dcols), r_d_x);
    }
  }

private:
  /// A vector of ones on the backend, viewable as a row or a column.
  struct ones_view {
    const T* data;
    index n;
    [[nodiscard]] matrix_view<const T> as_row() const { return {data, 1, n, n}; }
    [[nodiscard]] matrix_view<const T> as_column() const { return {data, n, 1, 1}; }
  };

  index pixels() const noexcept { return g_.out_pixels(); }
  index weight_size() const noexcept { return out_ * g_.patch_size(); }
  matrix_view<const T> weight(const T* w) const { return {w, out_, g_.patch_size(), g_.patch_size()}; }
  matrix_view<const T> bias_column(const T* w) const { return {w + weight_size(), out_, 1, 1}; }
  matrix_view<const T> direction_weight(matrix_view<const T> dir) const {
    return {dir.data, out_, g_.patch_size(), g_.patch_size()};
  }
  matrix_view<const T> direction_bias(matrix_view<const T> dir) const { return {dir.data + weight_size(), out_, 1, 1}; }

  static matrix_view<T> resized(matrix<T, B>& m, index rows, index cols) {
    m.resize(rows, cols);
    return m.view();
  }
  matrix_view<const T> im2col(matrix_view<const T> x, matrix<T, B>& buffer) const {
    auto cols = resized(buffer, g_.patch_size(), x.rows * pixels());
    B::im2col(g_, x, cols);
    return cols;
  }
  /// A batch-major (rows × out·Ho·Wo) matrix in channel-major order: out × (rows·Ho·Wo).
  matrix_view<const T> channel_major(matrix_view<const T> m, matrix<T, B>& buffer) const {
    auto out = resized(buffer, out_, m.rows * pixels());
    B::swap_leading_axes(m, out_, pixels(), out);
    return out;
  }
  ones_view ones(index n) const {
    if (ones_.size() < n) {
      ones_ = vector<T, B>(n);
      B::fill(T(1), ones_.view());
    }
    return {ones_.data(), n};
  }

  conv_geometry g_;
  index out_;
  // Workspace reused across calls (a model is used by one thread at a time, see docs/nn.md).
  mutable matrix<T, B> cols_, r_cols_, dcols_, channel_major_, delta_, r_delta_;
  mutable vector<T, B> ones_;
};

} // namespace hydra
