#pragma once
// The algorithms every feed-forward model shares, written once over a sequence of layers:
// forward, mean gradient, per-sample gradients from one batched backward pass, and batched
// Hessian-vector products by Pearlmutter's R-operator (a tangent forward pass and a second-order
// backward pass over k directions at once). Sequential (layers fixed at compile time) and Mlp
// (depth chosen at run time) differ only in how they store their layers.

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <limits>
#include <functional>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "hydra/backend/concepts.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/random.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/nn/any_layer.hpp"
#include "hydra/nn/concepts.hpp"

namespace hydra {

/// Layers: a type with `size()` and `visit(i, f)` calling f(layer_i) (see sequential.hpp, mlp.hpp).
template <Scalar T, class B, class Layers>
class basic_network {
  static_assert(check_backend<B>());

public:
  using scalar_type = T;
  using backend_type = B;

  explicit basic_network(Layers layers) : layers_(std::move(layers)) { connect(); }

  [[nodiscard]] index input_size() const noexcept { return input_size_; }
  [[nodiscard]] index output_size() const noexcept { return output_size_; }
  [[nodiscard]] index parameter_count() const noexcept { return offsets_.back(); }
  [[nodiscard]] index layer_count() const noexcept { return layers_.size(); }
  /// Where layer l's slice of the flat parameter vector starts; entry layer_count() is the total.
  [[nodiscard]] const std::vector<index>& parameter_offsets() const noexcept { return offsets_; }
  [[nodiscard]] const Layers& layers() const noexcept { return layers_; }

  /// Workspace elements hessian_vector_products needs per direction for a batch of `batch`
  /// samples (tangents of every layer output plus the two R{δ} buffers); callers that bound
  /// memory chunk their directions with it.
  [[nodiscard]] index tangent_elements_per_direction(index batch) const noexcept {
    index widths = 0, widest = input_size_, layer_workspace = 0;
    for (index l = first_parametrised_; l < layer_count(); ++l) {
      widths += width_after(l);
      widest = std::max(widest, width_after(l));
      layers_.visit(l, [&](const auto& layer) {
        if constexpr (requires { layer.workspace_per_direction(batch); })
          layer_workspace += layer.workspace_per_direction(batch);
      });
    }
    return batch * (widths + 2 * widest) + layer_workspace;
  }

  /// Fills w layer by layer with PyTorch's default ranges, drawing from uniform(lo, hi).
  template <class Uniform>
    requires std::invocable<Uniform&, double, double>
  void initialize(vector_view<T> w, Uniform&& uniform) {
    check_parameters(w);
    std::vector<T> host(static_cast<std::size_t>(w.size));
    for (index l = 0; l < layer_count(); ++l)
      layers_.visit(l, [&](const auto& layer) { layer.initialize(host.data() + offsets_[l], uniform); });
    B::copy_from_host(host.data(), w.size, w.data);
  }

  /// The same, drawing from hydra's portable generator: identical parameters on every machine
  /// for a given seed.
  void initialize(vector_view<T> w, std::uint64_t seed) {
    xoshiro256ss engine(seed);
    initialize(w, [&](double lo, double hi) { return lo + (hi - lo) * uniform01(engine); });
  }

  /// logits = f(x; w) for a B x input_size batch.
  void forward(vector_view<const T> w, matrix_view<const T> x, matrix_view<T> logits) {
    check_parameters(w);
    run_forward(w, x);
    B::copy(output(), logits);
  }

  /// Mean loss over the batch.
  template <Loss L>
  T loss(vector_view<const T> w, matrix_view<const T> x, batch_targets<T> y, L& loss_fn) {
    check_parameters(w);
    run_forward(w, x);
    return mean_loss(y, loss_fn);
  }

  /// grad = ∇_w (1/B) Σ_b ℓ(x_b, y_b; w); returns the mean loss.
  template <Loss L>
  T gradient(vector_view<const T> w, matrix_view<const T> x, batch_targets<T> y, L& loss_fn, vector_view<T> grad) {
    check_parameters(w);
    check_parameters(grad);
    run_forward(w, x);
    const T value = mean_loss(y, loss_fn);
    const index batch = x.rows;
    delta_[0].resize(batch, output_size_);
    loss_fn.gradient(output(), y, T(1) / static_cast<T>(batch), delta_[0].view());
    B::fill(T(0), grad);  // layers without parameters before the first Dense leave their zeros
    run_backward(w, x, [&](index l, auto& layer, matrix_view<const T> in, matrix_view<const T> d_out) {
      layer.backward(w.data + offsets_[l], in, activation_of(l), d_out, {}, grad.data + offsets_[l]);
    });
    return value;
  }

  /// Row b of grads (B x parameter_count) = ∇_w ℓ(x_b, y_b; w), the gradient of sample b's own
  /// (unaveraged) loss, from one batched backward pass. Returns the mean loss.
  template <Loss L>
  T per_sample_gradients(vector_view<const T> w, matrix_view<const T> x, batch_targets<T> y, L& loss_fn,
                         matrix_view<T> grads) {
    check_parameters(w);
    if (grads.rows != x.rows || grads.cols != parameter_count())
      throw shape_error("per_sample_gradients: output is " + shape(grads.rows, grads.cols) + ", expected " +
                        shape(x.rows, parameter_count()));
    run_forward(w, x);
    const T value = mean_loss(y, loss_fn);
    delta_[0].resize(x.rows, output_size_);
    loss_fn.gradient(output(), y, T(1), delta_[0].view());
    if (couples_samples()) {
      coupled_per_sample_gradients(w, x, grads);
      return value;
    }
    if (first_parametrised_ > 0) B::fill(T(0), grads.col_block(0, offsets_[first_parametrised_]));
    run_backward(w, x, [&](index l, auto& layer, matrix_view<const T> in, matrix_view<const T> d_out) {
      detail::layer_per_sample_gradients(layer, w.data + offsets_[l], in, activation_of(l), d_out,
                                         grads.col_block(offsets_[l], offsets_[l + 1] - offsets_[l]));
    });
    return value;
  }

  /// Whether a sample's output depends on the other samples of its batch (a layer normalising by
  /// batch statistics): then a per-sample gradient is a whole backward pass of its own.
  [[nodiscard]] bool couples_samples() const {
    bool coupled = false;
    for (index l = 0; l < layer_count(); ++l)
      layers_.visit(l, [&](const auto& layer) { coupled = coupled || detail::layer_couples_samples(layer); });
    return coupled;
  }

  /// Calls f(void*) on every layer of `type`, inside composites too; hydra::for_each_layer<L>(model, f)
  /// is the typed way in (how a model's batch norms are switched between statistics).
  void for_each_erased(const std::type_info& type, const std::function<void(void*)>& f) {
    for (index l = 0; l < layer_count(); ++l)
      layers_.visit(l, [&](auto& layer) {
        if (typeid(layer) == type) f(&layer);
        if constexpr (requires { layer.for_each_erased(type, f); }) layer.for_each_erased(type, f);
      });
  }

  /// products.row(j) = H directions.row(j), H = ∇²_w (1/B) Σ_b ℓ(x_b, y_b; w), for all k =
  /// directions.rows directions in one tangent pass and one second-order backward pass.
  template <Loss L>
  void hessian_vector_products(vector_view<const T> w, matrix_view<const T> x, batch_targets<T> y, L& loss_fn,
                               matrix_view<const T> directions, matrix_view<T> products) {
    hessian_vector_products(w, x, y, loss_fn, directions, products, matrix_view<T>{});
  }

  /// The same, and directional_derivatives(b, j) = directions.row(j)·∇_w ℓ(x_b, y_b; w) (B × k), the
  /// derivative of sample b's own loss along direction j: ∂ℓ_b/∂z_b·R{z_b}, read off the tangent
  /// pass for k·B·|z| multiply-adds instead of B per-sample gradients and a GEMM (the adjoint
  /// sweep needs both at each step). An empty view skips it.
  template <Loss L>
  void hessian_vector_products(vector_view<const T> w, matrix_view<const T> x, batch_targets<T> y, L& loss_fn,
                               matrix_view<const T> directions, matrix_view<T> products,
                               matrix_view<T> directional_derivatives) {
    check_parameters(w);
    const index k = directions.rows;
    if (directions.cols != parameter_count() || products.rows != k || products.cols != parameter_count())
      throw shape_error("hessian_vector_products: directions " + shape(k, directions.cols) + " and products " +
                        shape(products.rows, products.cols) + ", expected both " + shape(k, parameter_count()));
    const bool derivatives = !directional_derivatives.empty();
    if (derivatives && (directional_derivatives.rows != x.rows || directional_derivatives.cols != k))
      throw shape_error("hessian_vector_products: directional derivatives " +
                        shape(directional_derivatives.rows, directional_derivatives.cols) + ", expected " +
                        shape(x.rows, k));
    B::fill(T(0), products);
    if (k == 0) return;
    const index batch = x.rows;
    run_forward(w, x);
    run_tangent(w, x, directions);
    // Second-order backward pass, carrying δ (first order) and R{δ} together.
    const T scale = T(1) / static_cast<T>(batch);
    delta_[0].resize(batch, output_size_);
    r_delta_[0].resize(k * batch, output_size_);
    loss_fn.gradient(output(), y, scale, delta_[0].view());
    loss_fn.hessian_product(output(), y, scale, r_acts_[layer_count() - 1].view(), r_delta_[0].view());
    if (derivatives) loss_derivatives_along(k, static_cast<T>(batch), directional_derivatives);
    int cur = 0;
    for (index l = layer_count() - 1; l >= first_parametrised_; --l) {
      const bool below = l > first_parametrised_;
      if (below) {  // below the first layer with parameters nothing needs δ or R{δ}
        delta_[1 - cur].resize(batch, width_after(l - 1));
        r_delta_[1 - cur].resize(k * batch, width_after(l - 1));
      }
      layers_.visit(l, [&](const auto& layer) {
        layer.second_backward(w.data + offsets_[l], slice(directions, l), input_of(l, x), activation_of(l),
                              r_input_of(l), delta_[cur].view(), r_delta_[cur].view(),
                              below ? r_delta_[1 - cur].view() : matrix_view<T>{}, slice(products, l));
        if (below)
          layer.backward(w.data + offsets_[l], input_of(l, x), activation_of(l), delta_[cur].view(),
                         delta_[1 - cur].view(), nullptr);
      });
      cur = 1 - cur;
    }
  }

  /// out(b, j) = directions.row(j)·∇_w ℓ(x_b, y_b; w) (B × k), the derivative of sample b's own
  /// loss along direction j, by one forward and one tangent pass (forward mode: no per-sample
  /// gradients, no backward pass).
  template <Loss L>
  void directional_derivatives(vector_view<const T> w, matrix_view<const T> x, batch_targets<T> y, L& loss_fn,
                               matrix_view<const T> directions, matrix_view<T> out) {
    check_parameters(w);
    const index k = directions.rows;
    if (directions.cols != parameter_count() || out.rows != x.rows || out.cols != k)
      throw shape_error("directional_derivatives: directions " + shape(k, directions.cols) + " and output " +
                        shape(out.rows, out.cols) + ", expected " + shape(k, parameter_count()) + " and " +
                        shape(x.rows, k));
    if (k == 0) return;
    run_forward(w, x);
    run_tangent(w, x, directions);
    delta_[0].resize(x.rows, output_size_);
    loss_fn.gradient(output(), y, T(1), delta_[0].view());
    loss_derivatives_along(k, T(1), out);
  }

private:
  static std::string shape(index r, index c) { return std::to_string(r) + " x " + std::to_string(c); }

  void connect() {
    const index n = layers_.size();
    if (n == 0) throw invalid_argument("hydra: a model needs at least one layer");
    offsets_.assign(static_cast<std::size_t>(n + 1), 0);
    widths_.assign(static_cast<std::size_t>(n), 0);
    first_parametrised_ = n;
    index width = 0;
    for (index l = 0; l < n; ++l) {
      layers_.visit(l, [&](auto& layer) {
        if constexpr (requires { layer.set_width(index{}); }) {
          if (layer.input_size() == 0) {
            if (l == 0) throw invalid_argument("hydra: the first layer must have a size (an activation needs a width)");
            layer.set_width(width);
          }
        }
        if (l > 0 && layer.input_size() != width)
          throw shape_error("hydra: layer " + std::to_string(l) + " (" + layer.name() + ") takes " +
                            std::to_string(layer.input_size()) + " inputs but layer " + std::to_string(l - 1) +
                            " gives " + std::to_string(width));
        if (l == 0) input_size_ = layer.input_size();
        width = layer.output_size();
        widths_[l] = width;
        if (layer.parameter_count() > std::numeric_limits<index>::max() - offsets_[l])
          throw invalid_argument("hydra: the model's layers have more parameters in all than an index holds (" +
                                 std::to_string(std::numeric_limits<index>::max()) + "); layer " + std::to_string(l) +
                                 " (" + layer.name() + ") adds " + std::to_string(layer.parameter_count()));
        offsets_[l + 1] = offsets_[l] + layer.parameter_count();
        if (layer.parameter_count() > 0 && first_parametrised_ == n) first_parametrised_ = l;
      });
    }
    output_size_ = width;
    if (first_parametrised_ == n) throw invalid_argument("hydra: a model needs at least one layer with parameters");
    acts_.resize(static_cast<std::size_t>(n));
    r_acts_.resize(static_cast<std::size_t>(n));
  }

  void check_parameters(vector_view<const T> w) const {
    if (w.size != parameter_count())
      throw shape_error("hydra: the parameter vector has " + std::to_string(w.size) + " entries, the model has " +
                        std::to_string(parameter_count()) + " parameters");
  }

  void run_forward(vector_view<const T> w, matrix_view<const T> x) {
    if (x.cols != input_size_)
      throw shape_error("hydra: the input batch has " + std::to_string(x.cols) + " features per sample, the model takes " +
                        std::to_string(input_size_));
    for (index l = 0; l < layer_count(); ++l) {
      acts_[l].resize(x.rows, width_after(l));
      layers_.visit(l, [&](const auto& layer) { layer.forward(w.data + offsets_[l], input_of(l, x), acts_[l].view()); });
    }
  }

  /// Tangent pass for k directions: r_acts_[l] = R{output of layer l} ((k·B) × width, direction
  /// j in rows j·B …), from the first layer with parameters on; run_forward first.
  void run_tangent(vector_view<const T> w, matrix_view<const T> x, matrix_view<const T> directions) {
    const index k = directions.rows;
    for (index l = first_parametrised_; l < layer_count(); ++l) {
      r_acts_[l].resize(k * x.rows, width_after(l));
      layers_.visit(l, [&](const auto& layer) {
        layer.tangent(w.data + offsets_[l], slice(directions, l), input_of(l, x), activation_of(l),
                      r_input_of(l), r_acts_[l].view());
      });
    }
  }

  /// out(b, j) = factor·δ_b·R{z}_{j,b}: row b of delta_[0] against row b of each direction's block
  /// of the output tangent, as B tiny GEMMs (1 × |z| times |z| × k) in one batched call.
  void loss_derivatives_along(index k, T factor, matrix_view<T> out) {
    const auto r_z = std::as_const(r_acts_[layer_count() - 1]).view();
    const auto d_z = std::as_const(delta_[0]).view();
    const index batch = d_z.rows;
    B::gemm_batched(transpose::no, transpose::yes, factor, d_z.row_block(0, 1), d_z.stride,
                    matrix_view<const T>{r_z.data, k, r_z.cols, batch * r_z.stride}, r_z.stride, T(0),
                    out.row_block(0, 1), out.stride, batch);
  }

  /// Backward from delta_[0] (∂loss/∂output) down to the first layer with parameters; calls
  /// visit_layer(l, layer, input, d_output) at each layer, then propagates δ below it.
  template <class Visit>
  void run_backward(vector_view<const T> w, matrix_view<const T> x, Visit&& visit_layer) {
    int cur = 0;
    for (index l = layer_count() - 1; l >= first_parametrised_; --l) {
      const bool below = l > first_parametrised_;
      if (below) delta_[1 - cur].resize(x.rows, width_after(l - 1));
      layers_.visit(l, [&](auto& layer) {
        visit_layer(l, layer, input_of(l, x), delta_[cur].view());
        if (below)
          layer.backward(w.data + offsets_[l], input_of(l, x), activation_of(l), delta_[cur].view(),
                         delta_[1 - cur].view(), nullptr);
      });
      cur = 1 - cur;
    }
  }

  /// Row b of grads = ∇_w ℓ_b when ℓ_b depends on the whole batch (batch statistics): one backward
  /// pass per sample from δ_out = e_b ⊗ ∂ℓ_b/∂z_b, through every layer's exact batch Jacobian. B
  /// times the cost of the batched pass; the price of exactness. delta_[0] holds ∂ℓ_b/∂z_b.
  void coupled_per_sample_gradients(vector_view<const T> w, matrix_view<const T> x, matrix_view<T> grads) {
    seed_.resize(x.rows, output_size_);
    B::copy(std::as_const(delta_[0]).view(), seed_.view());
    B::fill(T(0), grads);
    for (index b = 0; b < x.rows; ++b) {
      delta_[0].resize(x.rows, output_size_);  // the previous pass's ping-pong left another width in it
      B::fill(T(0), delta_[0].view());
      B::copy(std::as_const(seed_).view().row_block(b, 1), delta_[0].view().row_block(b, 1));
      T* row = grads.data + b * grads.stride;
      run_backward(w, x, [&](index l, auto& layer, matrix_view<const T> in, matrix_view<const T> d_out) {
        layer.backward(w.data + offsets_[l], in, activation_of(l), d_out, {}, row + offsets_[l]);
      });
    }
  }

  template <Loss L>
  T mean_loss(batch_targets<T> y, L& loss_fn) {
    losses_.resize(output().rows);
    loss_fn.values(output(), y, losses_.view());
    return B::sum(losses_.view()) / static_cast<T>(output().rows);
  }

  index width_after(index l) const { return widths_[static_cast<std::size_t>(l)]; }
  matrix_view<const T> output() const { return acts_.back().view(); }
  matrix_view<const T> activation_of(index l) const { return acts_[static_cast<std::size_t>(l)].view(); }
  matrix_view<const T> input_of(index l, matrix_view<const T> x) const { return l == 0 ? x : activation_of(l - 1); }
  matrix_view<const T> r_input_of(index l) const {
    return l == first_parametrised_ ? matrix_view<const T>{} : r_acts_[static_cast<std::size_t>(l - 1)].view();
  }
  template <class U>
  matrix_view<U> slice(matrix_view<U> m, index l) const {
    return m.col_block(offsets_[l], offsets_[l + 1] - offsets_[l]);
  }

  Layers layers_;
  std::vector<index> offsets_;
  std::vector<index> widths_;
  index input_size_ = 0;
  index output_size_ = 0;
  index first_parametrised_ = 0;
  // Workspace, reused across calls: activations per layer, their tangents, δ and R{δ} ping-pong.
  std::vector<matrix<T, B>> acts_;
  std::vector<matrix<T, B>> r_acts_;
  matrix<T, B> delta_[2];
  matrix<T, B> r_delta_[2];
  vector<T, B> losses_;
  matrix<T, B> seed_;
};

} // namespace hydra
