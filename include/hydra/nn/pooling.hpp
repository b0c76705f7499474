#pragma once
// Pooling layers (no parameters) on inputs stored one sample per row as C × H × W:
// MaxPool2d and AvgPool2d with square windows, PyTorch's defaults (stride = window, no padding),
// and GlobalAvgPool2d, the mean of each channel's whole map.
//
// Average pooling is linear, so its tangent is the forward map and its second backward the
// backward map. Max pooling is piecewise linear: away from ties the argmax of each window is
// locally constant, so R{y} routes R{x} through the first-order argmax and R{δ_x} routes R{δ_y}
// back the same way (the δ ⊙ f'' term vanishes).

#include <string>

#include "hydra/backend/concepts.hpp"
#include "hydra/backend/fwd.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"

namespace hydra {
namespace detail {

/// What MaxPool2d and AvgPool2d share: the geometry, its validation and the Layer bookkeeping.
class pooling_base {
public:
  [[nodiscard]] const pool_geometry& geometry() const noexcept { return g_; }
  [[nodiscard]] index input_size() const noexcept { return g_.input_size(); }
  [[nodiscard]] index output_size() const noexcept { return g_.output_size(); }
  [[nodiscard]] static constexpr index parameter_count() noexcept { return 0; }

  template <class T, class Uniform>
  void initialize(T*, Uniform&&) const {}
  template <class T>
  void per_sample_gradients(matrix_view<const T>, matrix_view<const T>, matrix_view<T>) const {}

protected:
  /// `stride` 0 means "the window", as PyTorch's stride=None.
  pooling_base(const char* layer, index channels, index height, index width, index window, index stride)
      : g_{channels, height, width, window, stride == 0 ? window : stride} {
    if (channels <= 0 || height <= 0 || width <= 0 || window <= 0 || stride < 0)
      throw invalid_argument(std::string("hydra::") + layer +
                             ": channels, image size and window must be positive and stride non-negative; got " +
                             std::to_string(channels) + " x " + std::to_string(height) + " x " + std::to_string(width) +
                             ", window " + std::to_string(window) + ", stride " + std::to_string(stride));
    if (window > height || window > width)
      throw invalid_argument(std::string("hydra::") + layer + ": a " + std::to_string(window) + " x " +
                             std::to_string(window) + " window does not fit a " + std::to_string(height) + " x " +
                             std::to_string(width) + " image");
  }

  pool_geometry g_;
};

} // namespace detail

/// Max over each window; gradients go to the first maximum of the window in row-major order.
template <Scalar T, Backend B = default_backend>
class MaxPool2d : public detail::pooling_base {
public:
  using scalar_type = T;
  using backend_type = B;

  MaxPool2d(index channels, index height, index width, index window, index stride = 0)
      : pooling_base("MaxPool2d", channels, height, width, window, stride) {}

  [[nodiscard]] const char* name() const noexcept { return "MaxPool2d"; }

  void forward(const T*, matrix_view<const T> x, matrix_view<T> y) const { B::max_pool_forward(g_, x, y); }
  void backward(const T*, matrix_view<const T> x, matrix_view<const T>, matrix_view<const T> d_y, matrix_view<T> d_x,
                T*) const {
    if (!d_x.empty()) B::max_pool_backward(g_, x, d_y, d_x);
  }
  void tangent(const T*, matrix_view<const T>, matrix_view<const T> x, matrix_view<const T>,
               matrix_view<const T> r_x, matrix_view<T> r_y) const {
    B::max_pool_tangent(g_, x, r_x, r_y);
  }
  void second_backward(const T*, matrix_view<const T>, matrix_view<const T> x, matrix_view<const T>,
                       matrix_view<const T>, matrix_view<const T>, matrix_view<const T> r_d_y, matrix_view<T> r_d_x,
                       matrix_view<T>) const {
    if (!r_d_x.empty()) B::max_pool_backward(g_, x, r_d_y, r_d_x);
  }
};

/// Mean over each window.
template <Scalar T, Backend B = default_backend>
class AvgPool2d : public detail::pooling_base {
public:
  using scalar_type = T;
  using backend_type = B;

  AvgPool2d(index channels, index height, index width, index window, index stride = 0)
      : pooling_base("AvgPool2d", channels, height, width, window, stride) {}

  [[nodiscard]] const char* name() const noexcept { return "AvgPool2d"; }

  void forward(const T*, matrix_view<const T> x, matrix_view<T> y) const { B::avg_pool_forward(g_, x, y); }
  void backward(const T*, matrix_view<const T>, matrix_view<const T>, matrix_view<const T> d_y, matrix_view<T> d_x,
                T*) const {
    if (!d_x.empty()) B::avg_pool_backward(g_, d_y, d_x);
  }
  void tangent(const T*, matrix_view<const T>, matrix_view<const T>, matrix_view<const T>, matrix_view<const T> r_x,
               matrix_view<T> r_y) const {
    B::avg_pool_forward(g_, r_x, r_y);
  }
  void second_backward(const T*, matrix_view<const T>, matrix_view<const T>, matrix_view<const T>,
                       matrix_view<const T>, matrix_view<const T>, matrix_view<const T> r_d_y, matrix_view<T> r_d_x,
                       matrix_view<T>) const {
    if (!r_d_x.empty()) B::avg_pool_backward(g_, r_d_y, r_d_x);
  }
};

/// The mean of each channel's whole H × W map: C × H × W → C, what PyTorch's
/// AdaptiveAvgPool2d(1) followed by flatten computes at the head of DenseNet and MobileNetV2. An
/// AvgPool2d whose window is the map, so square maps only (every CIFAR-10 network of the paper ends
/// on one); a non-square map is refused.
template <Scalar T, Backend B = default_backend>
class GlobalAvgPool2d : public AvgPool2d<T, B> {
public:
  GlobalAvgPool2d(index channels, index height, index width)
      : AvgPool2d<T, B>(channels, height, square(height, width), height) {}

  [[nodiscard]] const char* name() const noexcept { return "GlobalAvgPool2d"; }

private:
  static index square(index height, index width) {
    if (height != width)
      throw invalid_argument("hydra::GlobalAvgPool2d: the map is " + std::to_string(height) + " x " +
                             std::to_string(width) + "; only square maps are supported");
    return width;
  }
};

} // namespace hydra
