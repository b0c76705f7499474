#pragma once
// Dropout: PyTorch's nn.Dropout(p) during a training step, the identity everywhere else. While
// training, each value is kept with probability 1 − p and scaled by 1/(1 − p), else zeroed.
//
// The mask is not drawn from a running generator: value (r, c) of the batch at training step t is
// kept when hash(seed, t, r, c) says so (a splitmix64 chain, uniform in [0, 1)). So a step's mask
// depends on nothing but the seed and the step: a resumed run, a replay of the trajectory and a
// retraining with one sample's weight changed see the same masks as the original run. The trainer
// switches a model's dropouts on for each step's gradient (training_scope, training_mode.hpp) and
// leaves them off for evaluation and for the attribution passes (the tracker's per-sample
// gradients and HVPs use the network without dropout: its expected map, an approximation of the
// step that was taken; docs/nn.md).
//
// With a mask fixed, the layer is linear: y = m ⊙ x, so backward, the tangent and the second
// backward are the same product (R{y} = m ⊙ R{x}, R{d_x} = m ⊙ R{d_y}).

#include <cstdint>
#include <string>
#include <vector>

#include "hydra/backend/concepts.hpp"
#include "hydra/backend/fwd.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/random.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/core/types.hpp"

namespace hydra {

template <Scalar T, Backend B = default_backend>
class Dropout {
public:
  using scalar_type = T;
  using backend_type = B;

  /// Drops each value with probability p in [0, 1) while training; width 0 = the previous layer's.
  explicit Dropout(index width = 0, double p = 0.5, std::uint64_t seed = 0) : width_(width), p_(p), seed_(seed) {
    if (width < 0 || !(p >= 0 && p < 1))
      throw invalid_argument("hydra::Dropout: the width must be non-negative and p in [0, 1), got width " +
                             std::to_string(width) + ", p " + std::to_string(p));
  }

  [[nodiscard]] index input_size() const noexcept { return width_; }
  [[nodiscard]] index output_size() const noexcept { return width_; }
  [[nodiscard]] static constexpr index parameter_count() noexcept { return 0; }
  [[nodiscard]] const char* name() const noexcept { return "Dropout"; }
  [[nodiscard]] double probability() const noexcept { return p_; }
  void set_width(index width) noexcept { width_ = width; }

  /// Dropping at training step `step` (the mask of that step), or not at all.
  void set_training_step(std::uint64_t step) noexcept {
    active_ = p_ > 0;
    step_ = step;
    mask_rows_ = 0;  // drawn again for this step at the next forward
  }
  void stop_training() noexcept { active_ = false; }
  [[nodiscard]] bool active() const noexcept { return active_; }

  /// Whether value (row, column) of the batch is kept at `step`: hash(seed, step, row, column) ≥ p.
  [[nodiscard]] bool kept(std::uint64_t step, index row, index column) const noexcept {
    splitmix64 h(seed_ ^ 0x9e3779b97f4a7c15ULL);
    std::uint64_t v = h() ^ step;
    v = splitmix64(v)() ^ static_cast<std::uint64_t>(row);
    v = splitmix64(v)() ^ static_cast<std::uint64_t>(column);
    const double u = static_cast<double>(splitmix64(v)() >> 11) * 0x1.0p-53;
    return u >= p_;
  }

  template <class Uniform>
  void initialize(T*, Uniform&&) const {}

  void forward(const T*, matrix_view<const T> x, matrix_view<T> y) const { apply(x, y); }
  void backward(const T*, matrix_view<const T>, matrix_view<const T>, matrix_view<const T> d_y, matrix_view<T> d_x,
                T*) const {
    if (!d_x.empty()) apply(d_y, d_x);
  }
  void per_sample_gradients(matrix_view<const T>, matrix_view<const T>, matrix_view<T>) const {}
  void tangent(const T*, matrix_view<const T>, matrix_view<const T>, matrix_view<const T>, matrix_view<const T> r_x,
               matrix_view<T> r_y) const {
    apply(r_x, r_y);
  }
  void second_backward(const T*, matrix_view<const T>, matrix_view<const T>, matrix_view<const T>,
                       matrix_view<const T>, matrix_view<const T>, matrix_view<const T> r_d_y, matrix_view<T> r_d_x,
                       matrix_view<T>) const {
    if (!r_d_x.empty()) apply(r_d_y, r_d_x);
  }

private:
  /// out = m ⊙ in, with in's rows in blocks of the batch's row count (the k directions of a
  /// tangent share the mask of their batch); the identity when not training.
  void apply(matrix_view<const T> in, matrix_view<T> out) const {
    if (!active_) {
      B::copy(in, out);
      return;
    }
    const index batch = mask_rows_ > 0 ? mask_rows_ : in.rows;
    if (mask_rows_ == 0) draw(batch);
    if (in.rows % batch != 0)
      throw shape_error("hydra::Dropout: " + std::to_string(in.rows) + " rows after a forward pass of " +
                        std::to_string(batch) + " (the passes of one step share its mask)");
    const matrix_view<const T> none{};
    for (index j = 0; j < in.rows / batch; ++j)
      B::channel_combine(T(1), std::as_const(mask_).view(), in.row_block(j * batch, batch), none, none, none, 1, 1,
                         T(0), out.row_block(j * batch, batch));
  }

  void draw(index rows) const {
    std::vector<T> host(static_cast<std::size_t>(rows * width_));
    const T scale = T(1) / static_cast<T>(1 - p_);
    for (index r = 0; r < rows; ++r)
      for (index c = 0; c < width_; ++c)
        host[static_cast<std::size_t>(r * width_ + c)] = kept(step_, r, c) ? scale : T(0);
    mask_.resize(rows, width_);
    B::copy_from_host(host.data(), rows * width_, mask_.data());
    mask_rows_ = rows;
  }

  index width_;
  double p_;
  std::uint64_t seed_;
  bool active_ = false;
  std::uint64_t step_ = 0;
  mutable index mask_rows_ = 0;
  mutable matrix<T, B> mask_;
};

} // namespace hydra
