#pragma once
// The two ways modern networks leave a chain, as Layers:
//   Residual:   y = f(x) + x, or y = f(x) + P(x) with a projection P (ResNet, MobileNetV2).
//   DenseBlock: L layers, layer l reading the channel concatenation of the block input and every
//               earlier layer's output (DenseNet): y = [x, g_0, g_1, …, g_{L-1}].
// Both are linear in their parts, so every pass is the parts' passes plus sums: the shortcut adds
// x (R{x}) to y (R{y}) and d_y (R{d_y}) to d_x (R{d_x}); a dense block adds each layer's δ (R{δ})
// into the columns of the inputs it read.
//
// Samples are stored C × H × W per row, so concatenating channels concatenates row segments: the
// dense block writes x once into the first columns of its output y and has each layer write its
// G·H·W columns behind the others, reading the columns before them as a strided view. The feature
// map is never copied again; the backward pass accumulates δ in one buffer of the same layout.

#include <functional>
#include <optional>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "hydra/backend/concepts.hpp"
#include "hydra/backend/fwd.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/nn/any_layer.hpp"

namespace hydra {

template <Scalar T, Backend B = default_backend>
class Residual {
public:
  using scalar_type = T;
  using backend_type = B;
  using part_type = any_layer<T, B>;

  /// y = body(x) + x: the body must keep the width.
  explicit Residual(part_type body) : body_(std::move(body)) {
    if (body_.input_size() != body_.output_size())
      throw shape_error("hydra::Residual: an identity shortcut needs a body that keeps the width; " +
                        std::string(body_.name()) + " maps " + std::to_string(body_.input_size()) + " to " +
                        std::to_string(body_.output_size()) + " (give a projection)");
  }
  /// y = body(x) + projection(x); parameters: the body's, then the projection's.
  Residual(part_type body, part_type projection) : body_(std::move(body)), projection_(std::move(projection)) {
    if (projection_->input_size() != body_.input_size() || projection_->output_size() != body_.output_size())
      throw shape_error("hydra::Residual: the projection maps " + std::to_string(projection_->input_size()) + " to " +
                        std::to_string(projection_->output_size()) + ", the body " +
                        std::to_string(body_.input_size()) + " to " + std::to_string(body_.output_size()));
  }

  [[nodiscard]] index input_size() const { return body_.input_size(); }
  [[nodiscard]] index output_size() const { return body_.output_size(); }
  [[nodiscard]] index parameter_count() const { return body_count() + (projection_ ? projection_->parameter_count() : 0); }
  [[nodiscard]] const char* name() const noexcept { return "Residual"; }
  [[nodiscard]] const part_type& body() const noexcept { return body_; }
  [[nodiscard]] bool couples_samples() const {
    return body_.couples_samples() || (projection_ && projection_->couples_samples());
  }
  [[nodiscard]] index workspace_per_direction(index batch) const {
    return body_.workspace_per_direction(batch) +
           (projection_ ? projection_->workspace_per_direction(batch) + 2 * batch * output_size() : 0);
  }

  template <class Uniform>
  void initialize(T* w, Uniform&& uniform) const {
    body_.initialize(w, uniform);
    if (projection_) projection_->initialize(w + body_count(), uniform);
  }

  void forward(const T* w, matrix_view<const T> x, matrix_view<T> y) const {
    body_out_.resize(x.rows, output_size());
    body_.forward(w, x, body_out_.view());
    B::copy(std::as_const(body_out_).view(), y);
    B::add_row_vectors(shortcut_forward(w, x), y);
  }

  void backward(const T* w, matrix_view<const T> x, matrix_view<const T> /*y*/, matrix_view<const T> d_y,
                matrix_view<T> d_x, T* grad) const {
    if (!d_x.empty() || (grad != nullptr && body_count() > 0)) body_.backward(w, x, body_out(), d_y, d_x, grad);
    if (projection_) {
      tmp_.resize(x.rows, input_size());
      projection_->backward(w + body_count(), x, projection_out(), d_y, d_x.empty() ? matrix_view<T>{} : tmp_.view(),
                            grad != nullptr ? grad + body_count() : nullptr);
      if (!d_x.empty()) B::add_row_vectors(std::as_const(tmp_).view(), d_x);
    } else if (!d_x.empty()) {
      B::add_row_vectors(d_y, d_x);
    }
  }

  void per_sample_gradients(const T* w, matrix_view<const T> x, matrix_view<const T> /*y*/, matrix_view<const T> d_y,
                            matrix_view<T> g) const {
    if (body_count() > 0) body_.per_sample_gradients(w, x, body_out(), d_y, g.col_block(0, body_count()));
    if (projection_)
      projection_->per_sample_gradients(w + body_count(), x, projection_out(), d_y,
                                        g.col_block(body_count(), projection_->parameter_count()));
  }

  void tangent(const T* w, matrix_view<const T> dir, matrix_view<const T> x, matrix_view<const T> /*y*/,
               matrix_view<const T> r_x, matrix_view<T> r_y) const {
    if (r_x.empty() && body_count() == 0)
      B::fill(T(0), r_y);
    else
      body_.tangent(w, dir.col_block(0, body_count()), x, body_out(), r_x, r_y);
    if (projection_) {
      r_tmp_.resize(r_y.rows, output_size());
      projection_->tangent(w + body_count(), dir.col_block(body_count(), projection_->parameter_count()), x,
                           projection_out(), r_x, r_tmp_.view());
      B::add_row_vectors(std::as_const(r_tmp_).view(), r_y);
    } else if (!r_x.empty()) {
      B::add_row_vectors(r_x, r_y);
    }
  }

  void second_backward(const T* w, matrix_view<const T> dir, matrix_view<const T> x, matrix_view<const T> /*y*/,
                       matrix_view<const T> r_x, matrix_view<const T> d_y, matrix_view<const T> r_d_y,
                       matrix_view<T> r_d_x, matrix_view<T> hv) const {
    if (!r_d_x.empty() || body_count() > 0)
      body_.second_backward(w, dir.col_block(0, body_count()), x, body_out(), r_x, d_y, r_d_y, r_d_x,
                            hv.col_block(0, body_count()));
    if (projection_) {
      r_tmp_.resize(r_d_y.rows, input_size());
      const index n = projection_->parameter_count();
      projection_->second_backward(w + body_count(), dir.col_block(body_count(), n), x, projection_out(), r_x, d_y,
                                   r_d_y, r_d_x.empty() ? matrix_view<T>{} : r_tmp_.view(),
                                   hv.col_block(body_count(), n));
      if (!r_d_x.empty()) B::add_row_vectors(std::as_const(r_tmp_).view(), r_d_x);
    } else if (!r_d_x.empty()) {
      B::add_row_vectors(r_d_y, r_d_x);
    }
  }

  void for_each_erased(const std::type_info& type, const std::function<void(void*)>& f) {
    body_.for_each_erased(type, f);
    if (projection_) projection_->for_each_erased(type, f);
  }

private:
  index body_count() const { return body_.parameter_count(); }
  matrix_view<const T> body_out() const { return std::as_const(body_out_).view(); }
  matrix_view<const T> projection_out() const { return std::as_const(projection_out_).view(); }
  matrix_view<const T> shortcut_forward(const T* w, matrix_view<const T> x) const {
    if (!projection_) return x;
    projection_out_.resize(x.rows, output_size());
    projection_->forward(w + body_count(), x, projection_out_.view());
    return projection_out();
  }

  part_type body_;
  std::optional<part_type> projection_;
  mutable matrix<T, B> body_out_, projection_out_, tmp_, r_tmp_;
};

/// DenseNet's dense block over in_channels maps of `pixels` (H·W) values: layer l maps
/// (in_channels + l·growth) channels to `growth` channels; the block outputs all of them,
/// in_channels + L·growth channels, the input's first.
template <Scalar T, Backend B = default_backend>
class DenseBlock {
public:
  using scalar_type = T;
  using backend_type = B;
  using part_type = any_layer<T, B>;

  DenseBlock(index in_channels, index pixels, index growth, std::vector<part_type> layers)
      : c0_(in_channels), pixels_(pixels), growth_(growth), layers_(std::move(layers)) {
    if (in_channels <= 0 || pixels <= 0 || growth <= 0 || layers_.empty())
      throw invalid_argument("hydra::DenseBlock: channels, pixels and growth must be positive and there must be a "
                             "layer; got " + std::to_string(in_channels) + " channels, " + std::to_string(pixels) +
                             " pixels, growth " + std::to_string(growth) + ", " + std::to_string(layers_.size()) +
                             " layers");
    offsets_.assign(layers_.size() + 1, 0);
    for (index l = 0; l < size(); ++l) {
      const auto& layer = layers_[static_cast<std::size_t>(l)];
      if (layer.input_size() != columns_before(l) || layer.output_size() != growth_ * pixels_)
        throw shape_error("hydra::DenseBlock: layer " + std::to_string(l) + " (" + layer.name() + ") maps " +
                          std::to_string(layer.input_size()) + " to " + std::to_string(layer.output_size()) +
                          " values, expected " + std::to_string(columns_before(l)) + " to " +
                          std::to_string(growth_ * pixels_));
      offsets_[static_cast<std::size_t>(l + 1)] = offset(l) + layer.parameter_count();
    }
  }

  [[nodiscard]] index input_size() const noexcept { return c0_ * pixels_; }
  [[nodiscard]] index output_size() const noexcept { return columns_before(size()); }
  [[nodiscard]] index out_channels() const noexcept { return c0_ + size() * growth_; }
  [[nodiscard]] index parameter_count() const noexcept { return offsets_.back(); }
  [[nodiscard]] index size() const noexcept { return static_cast<index>(layers_.size()); }
  [[nodiscard]] const char* name() const noexcept { return "DenseBlock"; }
  [[nodiscard]] bool couples_samples() const {
    for (const auto& l : layers_)
      if (l.couples_samples()) return true;
    return false;
  }
  [[nodiscard]] index workspace_per_direction(index batch) const {
    index elements = 0;
    for (const auto& l : layers_) elements += l.workspace_per_direction(batch);
    return elements + batch * (output_size() + columns_before(size() - 1));
  }

  template <class Uniform>
  void initialize(T* w, Uniform&& uniform) const {
    for (index l = 0; l < size(); ++l) layer(l).initialize(w + offset(l), uniform);
  }

  void forward(const T* w, matrix_view<const T> x, matrix_view<T> y) const {
    B::copy(x, y.col_block(0, input_size()));
    for (index l = 0; l < size(); ++l)
      layer(l).forward(w + offset(l), features(y, l), y.col_block(columns_before(l), growth_ * pixels_));
  }

  void backward(const T* w, matrix_view<const T> /*x*/, matrix_view<const T> y, matrix_view<const T> d_y,
                matrix_view<T> d_x, T* grad) const {
    accumulate_deltas(w, y, d_y, d_x.empty() ? 1 : 0, [&](index l, matrix_view<const T> d_out) {
      if (grad != nullptr) layer(l).backward(w + offset(l), features(y, l), output(y, l), d_out, {}, grad + offset(l));
    });
    if (!d_x.empty()) B::copy(std::as_const(delta_).view().col_block(0, input_size()), d_x);
  }

  void per_sample_gradients(const T* w, matrix_view<const T> /*x*/, matrix_view<const T> y, matrix_view<const T> d_y,
                            matrix_view<T> g) const {
    accumulate_deltas(w, y, d_y, 1, [&](index l, matrix_view<const T> d_out) {
      layer(l).per_sample_gradients(w + offset(l), features(y, l), output(y, l), d_out, slice(g, l));
    });
  }

  /// r_y's first columns are R{x} (zero when r_x is empty: the input does not depend on w).
  void tangent(const T* w, matrix_view<const T> dir, matrix_view<const T> /*x*/, matrix_view<const T> y,
               matrix_view<const T> r_x, matrix_view<T> r_y) const {
    if (r_x.empty())
      B::fill(T(0), r_y.col_block(0, input_size()));
    else
      B::copy(r_x, r_y.col_block(0, input_size()));
    for (index l = 0; l < size(); ++l)
      layer(l).tangent(w + offset(l), slice(dir, l), features(y, l), output(y, l), r_features(r_x, r_y, l),
                       r_y.col_block(columns_before(l), growth_ * pixels_));
    tangents_ = r_y;  // kept for second_backward: the tangents of every layer's input
  }

  void second_backward(const T* w, matrix_view<const T> dir, matrix_view<const T> /*x*/, matrix_view<const T> y,
                       matrix_view<const T> r_x, matrix_view<const T> d_y, matrix_view<const T> r_d_y,
                       matrix_view<T> r_d_x, matrix_view<T> hv) const {
    delta_.resize(d_y.rows, output_size());
    r_delta_.resize(r_d_y.rows, output_size());
    B::copy(d_y, delta_.view());
    B::copy(r_d_y, r_delta_.view());
    for (index l = size() - 1; l >= 0; --l) {
      const index in_cols = columns_before(l);
      const bool below = l > 0 || !r_d_x.empty();
      if (below) {
        d_in_.resize(d_y.rows, in_cols);
        r_d_in_.resize(r_d_y.rows, in_cols);
      }
      const auto d_out = std::as_const(delta_).view().col_block(in_cols, growth_ * pixels_);
      const auto r_d_out = std::as_const(r_delta_).view().col_block(in_cols, growth_ * pixels_);
      const auto r_in = r_features(r_x, matrix_view<const T>(tangents_), l);
      layer(l).second_backward(w + offset(l), slice(dir, l), features(y, l), output(y, l), r_in, d_out, r_d_out,
                               below ? r_d_in_.view() : matrix_view<T>{}, slice(hv, l));
      if (below) {
        if (l > 0) {
          layer(l).backward(w + offset(l), features(y, l), output(y, l), d_out, d_in_.view(), nullptr);
          B::add_row_vectors(std::as_const(d_in_).view(), delta_.view().col_block(0, in_cols));
        }
        B::add_row_vectors(std::as_const(r_d_in_).view(), r_delta_.view().col_block(0, in_cols));
      }
    }
    if (!r_d_x.empty()) B::copy(std::as_const(r_delta_).view().col_block(0, input_size()), r_d_x);
  }

  void for_each_erased(const std::type_info& type, const std::function<void(void*)>& f) {
    for (auto& l : layers_) l.for_each_erased(type, f);
  }

private:
  /// δ from the top: visit(l, δ at layer l's output) for l = L−1 … 0, each layer's input δ added
  /// into the columns it read. `lowest` is 0 when δ at the block input is wanted (then it is
  /// delta_'s first columns afterwards), 1 when the last input δ would be thrown away.
  template <class Visit>
  void accumulate_deltas(const T* w, matrix_view<const T> y, matrix_view<const T> d_y, index lowest,
                         Visit&& visit) const {
    delta_.resize(d_y.rows, output_size());
    B::copy(d_y, delta_.view());
    for (index l = size() - 1; l >= 0; --l) {
      const index in_cols = columns_before(l);
      const auto d_out = std::as_const(delta_).view().col_block(in_cols, growth_ * pixels_);
      visit(l, d_out);
      if (l >= lowest) {
        d_in_.resize(d_y.rows, in_cols);
        layer(l).backward(w + offset(l), features(y, l), output(y, l), d_out, d_in_.view(), nullptr);
        B::add_row_vectors(std::as_const(d_in_).view(), delta_.view().col_block(0, in_cols));
      }
    }
  }

  const part_type& layer(index l) const { return layers_[static_cast<std::size_t>(l)]; }
  index offset(index l) const { return offsets_[static_cast<std::size_t>(l)]; }
  index columns_before(index l) const { return (c0_ + l * growth_) * pixels_; }
  template <class U>
  matrix_view<U> features(matrix_view<U> y, index l) const {
    return y.col_block(0, columns_before(l));
  }
  matrix_view<const T> output(matrix_view<const T> y, index l) const {
    return y.col_block(columns_before(l), growth_ * pixels_);
  }
  /// Layer l's input tangent: empty for layer 0 when the block input does not depend on w.
  matrix_view<const T> r_features(matrix_view<const T> r_x, matrix_view<const T> r_y, index l) const {
    return l == 0 && r_x.empty() ? matrix_view<const T>{} : r_y.col_block(0, columns_before(l));
  }
  template <class U>
  matrix_view<U> slice(matrix_view<U> m, index l) const {
    return m.col_block(offset(l), offset(l + 1) - offset(l));
  }

  index c0_, pixels_, growth_;
  std::vector<part_type> layers_;
  std::vector<index> offsets_;
  mutable matrix_view<const T> tangents_{};  // the caller's r_y, valid until its second_backward
  mutable matrix<T, B> delta_, r_delta_, d_in_, r_d_in_;
};

} // namespace hydra
