#pragma once
// Dense (fully connected) layer: y = x Wᵀ + b with W out × in and b out, stored in that order in
// the layer's slice of the flat parameter vector (PyTorch's nn.Linear layout).

#include <cmath>
#include <limits>
#include <string>

#include "hydra/backend/concepts.hpp"
#include "hydra/backend/fwd.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"

namespace hydra {

template <Scalar T, Backend B = default_backend>
class Dense {
public:
  using scalar_type = T;
  using backend_type = B;

  Dense(index inputs, index outputs) : in_(inputs), out_(outputs) {
    if (inputs <= 0 || outputs <= 0)
      throw invalid_argument("hydra::Dense: sizes must be positive, got " + std::to_string(inputs) + " -> " +
                             std::to_string(outputs));
    // out·(in + 1) parameters must be an index: checked before any size derived from it is used.
    if (inputs > std::numeric_limits<index>::max() / outputs - 1)
      throw invalid_argument("hydra::Dense: " + std::to_string(inputs) + " -> " + std::to_string(outputs) +
                             " has more parameters than an index holds (" +
                             std::to_string(std::numeric_limits<index>::max()) + ")");
  }

  [[nodiscard]] index input_size() const noexcept { return in_; }
  [[nodiscard]] index output_size() const noexcept { return out_; }
  [[nodiscard]] index parameter_count() const noexcept { return out_ * in_ + out_; }
  [[nodiscard]] const char* name() const noexcept { return "Dense"; }

  /// PyTorch's default for nn.Linear: weight and bias uniform in ±1/√in.
  template <class Uniform>
  void initialize(T* w, Uniform&& uniform) const {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_));
    for (index i = 0; i < parameter_count(); ++i) w[i] = static_cast<T>(uniform(-bound, bound));
  }

  /// y = x Wᵀ + b
  void forward(const T* w, matrix_view<const T> x, matrix_view<T> y) const {
    B::gemm(transpose::no, transpose::yes, T(1), x, weight(w), T(0), y);
    B::add_row_vector(bias(w), y);
  }

  /// grad = [d_yᵀ x, Σ_b d_y] (when grad is not null); d_x = d_y W (when d_x is not empty).
  void backward(const T* w, matrix_view<const T> x, matrix_view<const T> /*y*/, matrix_view<const T> d_y,
                matrix_view<T> d_x, T* grad) const {
    if (grad != nullptr) {
      B::gemm(transpose::yes, transpose::no, T(1), d_y, x, T(0), matrix_view<T>(grad, out_, in_));
      B::column_sums(T(1), d_y, T(0), vector_view<T>(grad + out_ * in_, out_));
    }
    if (!d_x.empty()) B::gemm(transpose::no, transpose::no, T(1), d_y, weight(w), T(0), d_x);
  }

  /// Row b of g: [vec(d_y,b ⊗ x_b), d_y,b], the gradient of sample b's loss alone.
  void per_sample_gradients(matrix_view<const T> x, matrix_view<const T> d_y, matrix_view<T> g) const {
    B::row_outer_products(d_y, x, g.col_block(0, out_ * in_));
    B::copy(d_y, g.col_block(out_ * in_, out_));
  }

  /// R-forward with k = dir.rows directions (row j: this layer's slice of direction j):
  /// r_y,j = r_x,j Wᵀ + x R{W}_jᵀ + R{b}_j. An empty r_x means the input does not depend on w.
  void tangent(const T* w, matrix_view<const T> dir, matrix_view<const T> x, matrix_view<const T> /*y*/,
               matrix_view<const T> r_x, matrix_view<T> r_y) const {
    const index batch = x.rows;
    const index k = dir.rows;
    T beta = T(0);
    if (!r_x.empty()) {
      B::gemm(transpose::no, transpose::yes, T(1), r_x, weight(w), T(0), r_y);
      beta = T(1);
    }
    B::gemm_batched(transpose::no, transpose::yes, T(1), x, 0, direction_weight(dir), dir.stride, beta,
                    block(r_y, batch), batch * r_y.stride, k);
    B::add_row_vectors(dir.col_block(out_ * in_, out_), r_y);
  }

  /// R-backward: hv_j += [R{d_y}_jᵀ x + d_yᵀ r_x,j, Σ_b R{d_y}_j], and, when r_d_x is not empty,
  /// R{d_x}_j = R{d_y}_j W + d_y R{W}_j.
  void second_backward(const T* w, matrix_view<const T> dir, matrix_view<const T> x, matrix_view<const T> /*y*/,
                       matrix_view<const T> r_x, matrix_view<const T> d_y, matrix_view<const T> r_d_y,
                       matrix_view<T> r_d_x, matrix_view<T> hv) const {
    const index batch = x.rows;
    const index k = dir.rows;
    matrix_view<T> hv_weight(hv.data, out_, in_, in_);
    B::gemm_batched(transpose::yes, transpose::no, T(1), block(r_d_y, batch), batch * r_d_y.stride, x, 0, T(1),
                    hv_weight, hv.stride, k);
    if (!r_x.empty())
      B::gemm_batched(transpose::yes, transpose::no, T(1), d_y, 0, block(r_x, batch), batch * r_x.stride, T(1),
                      hv_weight, hv.stride, k);
    B::column_sums_batched(T(1), r_d_y, batch, hv.col_block(out_ * in_, out_));
    if (!r_d_x.empty()) {
      B::gemm(transpose::no, transpose::no, T(1), r_d_y, weight(w), T(0), r_d_x);
      B::gemm_batched(transpose::no, transpose::no, T(1), d_y, 0, direction_weight(dir), dir.stride, T(1),
                      block(r_d_x, batch), batch * r_d_x.stride, k);
    }
  }

private:
  matrix_view<const T> weight(const T* w) const { return {w, out_, in_, in_}; }
  vector_view<const T> bias(const T* w) const { return {w + out_ * in_, out_}; }
  /// The weight block of direction 0; direction j is dir.stride elements further.
  matrix_view<const T> direction_weight(matrix_view<const T> dir) const { return {dir.data, out_, in_, in_}; }
  /// The first batch-row block of a (k·batch) × n matrix.
  template <class U>
  static matrix_view<U> block(matrix_view<U> m, index batch) {
    return m.row_block(0, batch);
  }

  index in_;
  index out_;
};

} // namespace hydra
