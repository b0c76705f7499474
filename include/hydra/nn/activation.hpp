#pragma once
// Elementwise activation layers (no parameters): ReLU, ReLU6, Tanh, Sigmoid, and Activation with the
// kind chosen at run time (for Mlp). A width of 0 means "the width of the previous layer", filled
// in when the layer is placed in a model.

#include <string>

#include "hydra/backend/concepts.hpp"
#include "hydra/backend/fwd.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"

namespace hydra {

template <Scalar T, Backend B = default_backend>
class Activation {
public:
  using scalar_type = T;
  using backend_type = B;

  explicit Activation(activation kind, index width = 0) : kind_(kind), width_(width) {
    if (width < 0) throw invalid_argument("hydra::Activation: negative width " + std::to_string(width));
  }

  [[nodiscard]] activation kind() const noexcept { return kind_; }
  [[nodiscard]] index input_size() const noexcept { return width_; }
  [[nodiscard]] index output_size() const noexcept { return width_; }
  [[nodiscard]] static constexpr index parameter_count() noexcept { return 0; }
  [[nodiscard]] const char* name() const noexcept { return name_of(kind_); }
  void set_width(index width) noexcept { width_ = width; }

  template <class Uniform>
  void initialize(T*, Uniform&&) const {}

  void forward(const T*, matrix_view<const T> x, matrix_view<T> y) const { B::activation_forward(kind_, x, y); }
  void backward(const T*, matrix_view<const T> x, matrix_view<const T> y, matrix_view<const T> d_y,
                matrix_view<T> d_x, T*) const {
    if (!d_x.empty()) B::activation_backward(kind_, x, y, d_y, d_x);
  }
  void per_sample_gradients(matrix_view<const T>, matrix_view<const T>, matrix_view<T>) const {}
  /// r_y,j = f'(x) ⊙ r_x,j; r_x is never empty here (the model skips R-passes until the first
  /// layer with parameters).
  void tangent(const T*, matrix_view<const T>, matrix_view<const T> x, matrix_view<const T> y,
               matrix_view<const T> r_x, matrix_view<T> r_y) const {
    B::activation_tangent(kind_, x, y, r_x, r_y);
  }
  /// R{d_x}_j = R{d_y}_j ⊙ f'(x) + d_y ⊙ f''(x) ⊙ r_x,j
  void second_backward(const T*, matrix_view<const T>, matrix_view<const T> x, matrix_view<const T> y,
                       matrix_view<const T> r_x, matrix_view<const T> d_y, matrix_view<const T> r_d_y,
                       matrix_view<T> r_d_x, matrix_view<T>) const {
    if (!r_d_x.empty()) B::activation_second_backward(kind_, x, y, d_y, r_x, r_d_y, r_d_x);
  }

private:
  activation kind_;
  index width_;
};

template <Scalar T, Backend B = default_backend>
struct ReLU : Activation<T, B> {
  explicit ReLU(index width = 0) : Activation<T, B>(activation::relu, width) {}
};
/// min(max(x, 0), 6) (MobileNetV2); its derivative is 1 strictly inside (0, 6), as PyTorch's.
template <Scalar T, Backend B = default_backend>
struct ReLU6 : Activation<T, B> {
  explicit ReLU6(index width = 0) : Activation<T, B>(activation::relu6, width) {}
};
template <Scalar T, Backend B = default_backend>
struct Tanh : Activation<T, B> {
  explicit Tanh(index width = 0) : Activation<T, B>(activation::tanh, width) {}
};
template <Scalar T, Backend B = default_backend>
struct Sigmoid : Activation<T, B> {
  explicit Sigmoid(index width = 0) : Activation<T, B>(activation::sigmoid, width) {}
};

} // namespace hydra
