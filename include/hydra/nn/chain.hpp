#pragma once
// Chain<T, B>: layers applied in order, itself a Layer, so chains nest inside chains, residual
// blocks and dense blocks (blocks.hpp). The parts are any_layer, a run-time list: DenseNet-40's 39
// convolutions and 39 batch norms compile as one type. Parameters are the parts' slices in order.
//
// A Layer's passes receive the chain's input x and output y; the chain keeps its inner activations
// (and tangents) from forward (tangent) for the backward (second_backward) pass that follows on
// the same x and w, as every model calls them.
//
// Invariant of the R-passes (as in basic_network): an empty r_x means the chain's input does not
// depend on w; then parts before the first with parameters are skipped, and r_d_x is empty too.

#include <algorithm>
#include <functional>
#include <typeinfo>
#include <string>
#include <utility>
#include <vector>

#include "hydra/backend/concepts.hpp"
#include "hydra/backend/fwd.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/nn/any_layer.hpp"

namespace hydra {

template <Scalar T, Backend B = default_backend>
class Chain {
public:
  using scalar_type = T;
  using backend_type = B;
  using part_type = any_layer<T, B>;

  explicit Chain(std::vector<part_type> parts) : parts_(std::move(parts)) { connect(); }
  template <class... Layers>
    requires(sizeof...(Layers) > 0 && (Layer<Layers> && ...))
  explicit Chain(Layers... layers) : Chain(parts<T, B>(std::move(layers)...)) {}

  [[nodiscard]] index input_size() const noexcept { return input_size_; }
  [[nodiscard]] index output_size() const noexcept { return widths_.back(); }
  [[nodiscard]] index parameter_count() const noexcept { return offsets_.back(); }
  [[nodiscard]] const char* name() const noexcept { return "Chain"; }
  [[nodiscard]] index size() const noexcept { return static_cast<index>(parts_.size()); }
  [[nodiscard]] const part_type& part(index l) const { return parts_[static_cast<std::size_t>(l)]; }
  [[nodiscard]] part_type& part(index l) { return parts_[static_cast<std::size_t>(l)]; }
  /// Where part l's slice starts inside the chain's parameters; entry size() is the total.
  [[nodiscard]] const std::vector<index>& parameter_offsets() const noexcept { return offsets_; }

  [[nodiscard]] bool couples_samples() const {
    return std::ranges::any_of(parts_, [](const part_type& p) { return p.couples_samples(); });
  }
  [[nodiscard]] index workspace_per_direction(index batch) const {
    index elements = 0, widest = input_size_;
    for (index l = 0; l < size(); ++l) {
      elements += part(l).workspace_per_direction(batch) + (l + 1 < size() ? batch * width(l) : 0);
      widest = std::max(widest, width(l));
    }
    return elements + 2 * batch * widest;
  }

  template <class Uniform>
  void initialize(T* w, Uniform&& uniform) const {
    for (index l = 0; l < size(); ++l) part(l).initialize(w + offset(l), uniform);
  }

  void forward(const T* w, matrix_view<const T> x, matrix_view<T> y) const {
    for (index l = 0; l < size(); ++l) {
      if (l + 1 < size()) acts_[l].resize(x.rows, width(l));
      part(l).forward(w + offset(l), input(l, x), l + 1 < size() ? acts_[l].view() : y);
    }
  }

  void backward(const T* w, matrix_view<const T> x, matrix_view<const T> y, matrix_view<const T> d_y,
                matrix_view<T> d_x, T* grad) const {
    propagate(w, x, y, d_y, d_x, [&](index l, matrix_view<const T> d_out) {
      if (grad != nullptr && part(l).parameter_count() > 0)
        part(l).backward(w + offset(l), input(l, x), output(l, y), d_out, {}, grad + offset(l));
    });
  }

  /// Row b of g: ∇ of sample b's loss, d_y row b being ∂ℓ_b/∂y_b (parts that couple samples make
  /// this the direct term only; models then use whole backward passes, network.hpp).
  void per_sample_gradients(const T* w, matrix_view<const T> x, matrix_view<const T> y, matrix_view<const T> d_y,
                            matrix_view<T> g) const {
    propagate(w, x, y, d_y, {}, [&](index l, matrix_view<const T> d_out) {
      if (part(l).parameter_count() > 0)
        part(l).per_sample_gradients(w + offset(l), input(l, x), output(l, y), d_out, slice(g, l));
    });
  }

  void tangent(const T* w, matrix_view<const T> dir, matrix_view<const T> x, matrix_view<const T> y,
               matrix_view<const T> r_x, matrix_view<T> r_y) const {
    const index first = r_x.empty() ? first_parametrised_ : 0;
    if (first == size()) {  // nothing here depends on w
      B::fill(T(0), r_y);
      return;
    }
    for (index l = first; l < size(); ++l) {
      if (l + 1 < size()) r_acts_[l].resize(r_y.rows, width(l));
      part(l).tangent(w + offset(l), slice(dir, l), input(l, x), output(l, y), l == first ? r_x : r_acts_[l - 1].view(),
                      l + 1 < size() ? r_acts_[l].view() : r_y);
    }
  }

  void second_backward(const T* w, matrix_view<const T> dir, matrix_view<const T> x, matrix_view<const T> y,
                       matrix_view<const T> r_x, matrix_view<const T> d_y, matrix_view<const T> r_d_y,
                       matrix_view<T> r_d_x, matrix_view<T> hv) const {
    const index first = r_x.empty() ? first_parametrised_ : 0;
    const index lowest = r_d_x.empty() ? first_parametrised_ : 0;
    matrix_view<const T> d = d_y, r_d = r_d_y;
    int next = 0;
    for (index l = size() - 1; l >= lowest && l >= 0; --l) {
      const bool below = l > lowest;
      matrix_view<T> r_d_in = r_d_x;
      if (below) {
        delta_[next].resize(d_y.rows, input_width(l));
        r_delta_[next].resize(r_d_y.rows, input_width(l));
        r_d_in = r_delta_[next].view();
      }
      part(l).second_backward(w + offset(l), slice(dir, l), input(l, x), output(l, y),
                              l == first ? r_x : r_acts_[l - 1].view(), d, r_d, r_d_in, slice(hv, l));
      if (below) {
        part(l).backward(w + offset(l), input(l, x), output(l, y), d, delta_[next].view(), nullptr);
        d = delta_[next].view();
        r_d = r_delta_[next].view();
        next = 1 - next;
      }
    }
  }

  /// For hydra::for_each_layer: visit the parts.
  void for_each_erased(const std::type_info& type, const std::function<void(void*)>& f) {
    for (auto& p : parts_) p.for_each_erased(type, f);
  }

private:
  void connect() {
    if (parts_.empty()) throw invalid_argument("hydra::Chain: a chain needs at least one layer");
    const index n = size();
    offsets_.assign(static_cast<std::size_t>(n + 1), 0);
    widths_.assign(static_cast<std::size_t>(n), 0);
    first_parametrised_ = n;
    for (index l = 0; l < n; ++l) {
      auto& p = part(l);
      if (p.input_size() == 0 && (l == 0 || !p.set_width(width(l - 1))))
        throw invalid_argument("hydra::Chain: part 0 (" + std::string(p.name()) +
                               ") needs a size (an activation first in a chain needs a width)");
      if (l > 0 && p.input_size() != width(l - 1))
        throw shape_error("hydra::Chain: part " + std::to_string(l) + " (" + p.name() + ") takes " +
                          std::to_string(p.input_size()) + " inputs but part " + std::to_string(l - 1) + " (" +
                          part(l - 1).name() + ") gives " + std::to_string(width(l - 1)));
      if (l == 0) input_size_ = p.input_size();
      widths_[static_cast<std::size_t>(l)] = p.output_size();
      offsets_[static_cast<std::size_t>(l + 1)] = offset(l) + p.parameter_count();
      if (p.parameter_count() > 0 && first_parametrised_ == n) first_parametrised_ = l;
    }
    acts_.resize(static_cast<std::size_t>(n));
    r_acts_.resize(static_cast<std::size_t>(n));
  }

  /// δ from the top down to the lowest part that needs it: visit(l, δ at l's output) at every part
  /// with parameters, δ carried below by the parts' backward. Below the first part with parameters
  /// only d_x (when wanted) needs δ.
  template <class Visit>
  void propagate(const T* w, matrix_view<const T> x, matrix_view<const T> y, matrix_view<const T> d_y,
                 matrix_view<T> d_x, Visit&& visit) const {
    const index lowest = d_x.empty() ? first_parametrised_ : 0;
    matrix_view<const T> d = d_y;
    int next = 0;
    for (index l = size() - 1; l >= lowest && l >= 0; --l) {
      visit(l, d);
      matrix_view<T> d_in = d_x;
      if (l > lowest) {
        delta_[next].resize(d_y.rows, input_width(l));
        d_in = delta_[next].view();
      }
      if (!d_in.empty()) part(l).backward(w + offset(l), input(l, x), output(l, y), d, d_in, nullptr);
      if (l > lowest) {
        d = delta_[next].view();
        next = 1 - next;
      }
    }
  }

  index offset(index l) const { return offsets_[static_cast<std::size_t>(l)]; }
  index width(index l) const { return widths_[static_cast<std::size_t>(l)]; }
  index input_width(index l) const { return l == 0 ? input_size_ : width(l - 1); }
  matrix_view<const T> input(index l, matrix_view<const T> x) const { return l == 0 ? x : acts_[l - 1].view(); }
  matrix_view<const T> output(index l, matrix_view<const T> y) const {
    return l + 1 < size() ? std::as_const(acts_[l]).view() : y;
  }
  template <class U>
  matrix_view<U> slice(matrix_view<U> m, index l) const {
    return m.col_block(offset(l), offset(l + 1) - offset(l));
  }

  std::vector<part_type> parts_;
  std::vector<index> offsets_;
  std::vector<index> widths_;
  index input_size_ = 0;
  index first_parametrised_ = 0;
  // Workspace: inner activations and tangents (the last part writes the caller's y / r_y), δ and R{δ}.
  mutable std::vector<matrix<T, B>> acts_, r_acts_;
  mutable matrix<T, B> delta_[2], r_delta_[2];
};

} // namespace hydra
