#pragma once
// Flatten: the identity on rows. Samples are already stored flat (C × H × W row-major, as
// PyTorch's nn.Flatten reads them), so this layer only marks where a convolutional stack meets
// dense layers and checks that the widths agree.

#include <string>

#include "hydra/backend/concepts.hpp"
#include "hydra/backend/fwd.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"

namespace hydra {

template <Scalar T, Backend B = default_backend>
class Flatten {
public:
  using scalar_type = T;
  using backend_type = B;

  /// `size` = C · H · W; 0 means "the width of the previous layer".
  explicit Flatten(index size = 0) : size_(size) {
    if (size < 0) throw invalid_argument("hydra::Flatten: negative size " + std::to_string(size));
  }

  [[nodiscard]] index input_size() const noexcept { return size_; }
  [[nodiscard]] index output_size() const noexcept { return size_; }
  [[nodiscard]] static constexpr index parameter_count() noexcept { return 0; }
  [[nodiscard]] const char* name() const noexcept { return "Flatten"; }
  void set_width(index width) noexcept { size_ = width; }

  template <class Uniform>
  void initialize(T*, Uniform&&) const {}

  void forward(const T*, matrix_view<const T> x, matrix_view<T> y) const { B::copy(x, y); }
  void backward(const T*, matrix_view<const T>, matrix_view<const T>, matrix_view<const T> d_y, matrix_view<T> d_x,
                T*) const {
    if (!d_x.empty()) B::copy(d_y, d_x);
  }
  void per_sample_gradients(matrix_view<const T>, matrix_view<const T>, matrix_view<T>) const {}
  void tangent(const T*, matrix_view<const T>, matrix_view<const T>, matrix_view<const T>, matrix_view<const T> r_x,
               matrix_view<T> r_y) const {
    B::copy(r_x, r_y);
  }
  void second_backward(const T*, matrix_view<const T>, matrix_view<const T>, matrix_view<const T>,
                       matrix_view<const T>, matrix_view<const T>, matrix_view<const T> r_d_y, matrix_view<T> r_d_x,
                       matrix_view<T>) const {
    if (!r_d_x.empty()) B::copy(r_d_y, r_d_x);
  }

private:
  index size_;
};

} // namespace hydra
