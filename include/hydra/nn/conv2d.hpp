#pragma once
// Conv2d: a 2-d convolution (cross-correlation, as PyTorch's nn.Conv2d) with zero padding, a
// stride, groups and an optional bias, on inputs stored one sample per row as C × H × W.
// Parameters: weight out × (C / groups) × kh × kw row-major, then bias out when there is one
// (PyTorch's parameters_to_vector order).
//
// Groups split the channels: output channels [g·out/G, (g+1)·out/G) see only input channels
// [g·C/G, (g+1)·C/G) (groups = C: depthwise, as MobileNetV2's). The im2col matrix orders its rows
// channel by channel, so group g's patch rows are one row block of it and group g's weights one row
// block of W: every product below is one GEMM per group on those blocks.
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

/// What PyTorch's nn.Conv2d takes besides the sizes: groups (in and out channels must both divide
/// by it) and whether there is a bias.
struct conv_options {
  index groups = 1;
  bool bias = true;
};

template <Scalar T, Backend B = default_backend>
class Conv2d {
public:
  using scalar_type = T;
  using backend_type = B;

  /// in_channels × height × width inputs, out_channels square kernels of side `kernel`.
  Conv2d(index in_channels, index height, index width, index out_channels, index kernel, index stride = 1,
         index padding = 0, conv_options options = {})
      : g_{in_channels, height, width, kernel, kernel, stride, padding}, out_(out_channels),
        groups_(options.groups), bias_(options.bias) {
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
    if (groups_ <= 0 || in_channels % groups_ != 0 || out_channels % groups_ != 0)
      throw invalid_argument("hydra::Conv2d: groups " + std::to_string(groups_) + " must be positive and divide both " +
                             std::to_string(in_channels) + " input and " + std::to_string(out_channels) +
                             " output channels");
  }

  [[nodiscard]] const conv_geometry& geometry() const noexcept { return g_; }
  [[nodiscard]] index out_channels() const noexcept { return out_; }
  [[nodiscard]] index input_size() const noexcept { return g_.input_size(); }
  [[nodiscard]] index output_size() const noexcept { return out_ * g_.out_pixels(); }
  [[nodiscard]] index groups() const noexcept { return groups_; }
  [[nodiscard]] bool has_bias() const noexcept { return bias_; }
  [[nodiscard]] index parameter_count() const noexcept { return weight_size() + (bias_ ? out_ : 0); }
  [[nodiscard]] const char* name() const noexcept { return "Conv2d"; }

  /// Extra workspace per direction of a Hessian-vector product (the im2col of the tangents and the
  /// channel-major tangent outputs), for memory-bounded chunking.
  [[nodiscard]] index workspace_per_direction(index batch) const noexcept {
    return batch * g_.out_pixels() * (g_.patch_size() + 2 * out_);
  }

  /// PyTorch's default for nn.Conv2d: weight and bias uniform in ±1/√(fan_in), fan_in = (C/G)·kh·kw.
  template <class Uniform>
  void initialize(T* w, Uniform&& uniform) const {
    const double bound = 1.0 / std::sqrt(static_cast<double>(group_patch()));
    for (index i = 0; i < parameter_count(); ++i) w[i] = static_cast<T>(uniform(-bound, bound));
  }

  void forward(const T* w, matrix_view<const T> x, matrix_view<T> y) const {
    const index batch = x.rows;
    const auto cols = im2col(x, cols_);
    auto out = resized(channel_major_, out_, batch * pixels());
    for (index g = 0; g < groups_; ++g)
      B::gemm(transpose::no, transpose::no, T(1), weight(w, g), patch_rows(cols, g), T(0), out_rows(out, g));
    if (bias_)
      B::gemm(transpose::no, transpose::no, T(1), bias_column(w), ones(batch * pixels()).as_row(), T(1), out);
    B::swap_leading_axes(std::as_const(out), batch, pixels(), y);
  }

  /// grad = [δ ⋆ x, Σ δ] (when grad is not null; Σ δ with a bias only); d_x = Wᵀ ⋆ δ (when d_x is
  /// not empty).
  void backward(const T* w, matrix_view<const T> x, matrix_view<const T> /*y*/, matrix_view<const T> d_y,
                matrix_view<T> d_x, T* grad) const {
    const index batch = x.rows;
    const auto d = channel_major(d_y, delta_);
    if (grad != nullptr) {
      const auto cols = im2col(x, cols_);
      for (index g = 0; g < groups_; ++g)
        B::gemm(transpose::no, transpose::yes, T(1), out_rows(d, g), patch_rows(cols, g), T(0), weight_block(grad, g));
      if (bias_)
        B::gemm(transpose::no, transpose::no, T(1), d, ones(batch * pixels()).as_column(), T(0),
                matrix_view<T>(grad + weight_size(), out_, 1, 1));
    }
    if (!d_x.empty()) {
      auto dcols = resized(dcols_, g_.patch_size(), batch * pixels());
      for (index g = 0; g < groups_; ++g)
        B::gemm(transpose::yes, transpose::no, T(1), weight(w, g), out_rows(d, g), T(0), patch_rows(dcols, g));
      B::col2im(g_, std::as_const(dcols), d_x);
    }
  }

  /// Row b of G: [δ_b ⋆ x_b, Σ δ_b], one strided-batched GEMM over the batch per group.
  void per_sample_gradients(matrix_view<const T> x, matrix_view<const T> d_y, matrix_view<T> G) const {
    const index batch = x.rows, og = out_ / groups_;
    const auto cols = im2col(x, cols_);
    for (index g = 0; g < groups_; ++g)
      B::gemm_batched(transpose::no, transpose::yes, T(1),
                      matrix_view<const T>(d_y.data + g * og * pixels(), og, pixels(), pixels()), d_y.stride,
                      patch_rows(cols, g).col_block(0, pixels()), pixels(), T(0), weight_block(G.data, g), G.stride,
                      batch);
    if (bias_)
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
      const auto r_cols = im2col(r_x, r_cols_);
      for (index g = 0; g < groups_; ++g)
        B::gemm(transpose::no, transpose::no, T(1), weight(w, g), patch_rows(r_cols, g), T(0), out_rows(out, g));
      beta = T(1);
    }
    const auto cols = im2col(x, cols_);
    for (index g = 0; g < groups_; ++g)
      B::gemm_batched(transpose::no, transpose::no, T(1), direction_weight(dir, g), dir.stride, patch_rows(cols, g), 0,
                      beta, out_rows(out, g).col_block(0, span), span, k);
    if (bias_)
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
    const auto cols = im2col(x, cols_);
    for (index g = 0; g < groups_; ++g)
      B::gemm_batched(transpose::no, transpose::yes, T(1), out_rows(rd, g).col_block(0, span), span,
                      patch_rows(cols, g), 0, T(1), weight_block(hv.data, g), hv.stride, k);
    if (!r_x.empty()) {
      const auto r_cols = im2col(r_x, r_cols_);
      for (index g = 0; g < groups_; ++g)
        B::gemm_batched(transpose::no, transpose::yes, T(1), out_rows(d, g), 0,
                        patch_rows(r_cols, g).col_block(0, span), span, T(1), weight_block(hv.data, g), hv.stride, k);
    }
    if (bias_)
      B::gemm_batched(transpose::no, transpose::no, T(1), rd.col_block(0, span), span, ones(span).as_column(), 0,
                      T(1), matrix_view<T>(hv.data + weight_size(), out_, 1, 1), hv.stride, k);
    if (!r_d_x.empty()) {
      auto dcols = resized(dcols_, g_.patch_size(), k * span);
      for (index g = 0; g < groups_; ++g) {
        B::gemm(transpose::yes, transpose::no, T(1), weight(w, g), out_rows(rd, g), T(0), patch_rows(dcols, g));
        B::gemm_batched(transpose::yes, transpose::no, T(1), direction_weight(dir, g), dir.stride, out_rows(d, g), 0,
                        T(1), patch_rows(dcols, g).col_block(0, span), span, k);
      }
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
  /// A group's patch: (C / G)·kh·kw, the rows of im2col and the columns of W that belong to it.
  index group_patch() const noexcept { return g_.patch_size() / groups_; }
  index weight_size() const noexcept { return out_ * group_patch(); }
  /// Group g's weights (out/G × group_patch) inside the parameters (or a direction, a gradient).
  matrix_view<const T> weight(const T* w, index g) const {
    const index og = out_ / groups_;
    return {w + g * og * group_patch(), og, group_patch(), group_patch()};
  }
  matrix_view<T> weight_block(T* w, index g) const {
    const index og = out_ / groups_;
    return {w + g * og * group_patch(), og, group_patch(), group_patch()};
  }
  matrix_view<const T> direction_weight(matrix_view<const T> dir, index g) const { return weight(dir.data, g); }
  /// Group g's rows of an im2col matrix, and of a channel-major out × … matrix.
  template <class U>
  matrix_view<U> patch_rows(matrix_view<U> m, index g) const {
    return m.row_block(g * group_patch(), group_patch());
  }
  template <class U>
  matrix_view<U> out_rows(matrix_view<U> m, index g) const {
    return m.row_block(g * (out_ / groups_), out_ / groups_);
  }
  matrix_view<const T> bias_column(const T* w) const { return {w + weight_size(), out_, 1, 1}; }
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
  index groups_;
  bool bias_;
  // Workspace reused across calls (a model is used by one thread at a time, see docs/nn.md).
  mutable matrix<T, B> cols_, r_cols_, dcols_, channel_major_, delta_, r_delta_;
  mutable vector<T, B> ones_;
};

} // namespace hydra
