#pragma once
// any_layer<T, B>: any Layer on (T, B) behind one type, chosen at run time. The composite layers
// (Chain, Residual, DenseBlock) hold their parts as any_layer, so a 36-layer DenseNet is a run-time
// list, not a 36-deep template instantiation, and blocks nest. One virtual call per layer per pass:
// the passes are whole-batch GEMMs, so the indirection costs nothing measurable.
//
// The pass helpers below (layer_per_sample_gradients, layer_couples_samples, …) are how a network
// or a composite calls a layer whatever it provides: a plain layer's per-sample gradients need
// only its input and δ; a composite's need w and its output too (to carry δ through its parts).

#include <functional>
#include <memory>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "hydra/backend/concepts.hpp"
#include "hydra/backend/fwd.hpp"
#include "hydra/core/types.hpp"
#include "hydra/nn/concepts.hpp"

namespace hydra {

namespace detail {
template <class L>
using layer_scalar_t = typename L::scalar_type;

/// Row b of g: the gradient of sample b's loss with respect to this layer's parameters, given the
/// batch's δ at the layer's output (d_y row b = ∂ℓ_b/∂y_b).
template <class L, class T>
void layer_per_sample_gradients(const L& layer, const T* w, matrix_view<const T> x, matrix_view<const T> y,
                                matrix_view<const T> d_y, matrix_view<T> g) {
  if constexpr (requires { layer.per_sample_gradients(w, x, y, d_y, g); })
    layer.per_sample_gradients(w, x, y, d_y, g);
  else
    layer.per_sample_gradients(x, d_y, g);
}

/// Whether sample b's output depends on other samples of the batch (batch normalisation on batch
/// statistics). Then per-sample gradients are not one batched backward pass (network.hpp).
template <class L>
bool layer_couples_samples(const L& layer) {
  if constexpr (requires { layer.couples_samples(); })
    return layer.couples_samples();
  else
    return false;
}

template <class L>
index layer_workspace_per_direction(const L& layer, index batch) {
  if constexpr (requires { layer.workspace_per_direction(batch); })
    return layer.workspace_per_direction(batch);
  else
    return 0;
}
} // namespace detail

template <Scalar T, Backend B = default_backend>
class any_layer {
public:
  using scalar_type = T;
  using backend_type = B;
  using uniform_function = std::function<double(double, double)>;

  template <class L>
    requires(!std::is_same_v<std::remove_cvref_t<L>, any_layer> && Layer<std::remove_cvref_t<L>>)
  any_layer(L&& layer)  // NOLINT(google-explicit-constructor): a layer is an any_layer
      : self_(std::make_unique<holder<std::remove_cvref_t<L>>>(std::forward<L>(layer))) {
    static_assert(std::is_same_v<typename std::remove_cvref_t<L>::scalar_type, T> &&
                      std::is_same_v<typename std::remove_cvref_t<L>::backend_type, B>,
                  "hydra::any_layer: the layer must use the same scalar type and backend");
  }
  // Move-only, as the layers are: they own workspace (device memory on a GPU backend).
  any_layer(any_layer&&) noexcept = default;
  any_layer& operator=(any_layer&&) noexcept = default;
  ~any_layer() = default;

  [[nodiscard]] index input_size() const { return self_->input_size(); }
  [[nodiscard]] index output_size() const { return self_->output_size(); }
  [[nodiscard]] index parameter_count() const { return self_->parameter_count(); }
  [[nodiscard]] const char* name() const { return self_->name(); }
  [[nodiscard]] bool couples_samples() const { return self_->couples_samples(); }
  [[nodiscard]] index workspace_per_direction(index batch) const { return self_->workspace_per_direction(batch); }
  /// Fills a width of 0 ("the previous layer's") when the layer has one to fill; false otherwise.
  bool set_width(index width) { return self_->set_width(width); }

  template <class Uniform>
  void initialize(T* w, Uniform&& uniform) const {
    uniform_function f = [&](double lo, double hi) { return static_cast<double>(uniform(lo, hi)); };
    self_->initialize(w, f);
  }

  void forward(const T* w, matrix_view<const T> x, matrix_view<T> y) const { self_->forward(w, x, y); }
  void backward(const T* w, matrix_view<const T> x, matrix_view<const T> y, matrix_view<const T> d_y,
                matrix_view<T> d_x, T* grad) const {
    self_->backward(w, x, y, d_y, d_x, grad);
  }
  void per_sample_gradients(const T* w, matrix_view<const T> x, matrix_view<const T> y, matrix_view<const T> d_y,
                            matrix_view<T> g) const {
    self_->per_sample_gradients(w, x, y, d_y, g);
  }
  void tangent(const T* w, matrix_view<const T> dir, matrix_view<const T> x, matrix_view<const T> y,
               matrix_view<const T> r_x, matrix_view<T> r_y) const {
    self_->tangent(w, dir, x, y, r_x, r_y);
  }
  void second_backward(const T* w, matrix_view<const T> dir, matrix_view<const T> x, matrix_view<const T> y,
                       matrix_view<const T> r_x, matrix_view<const T> d_y, matrix_view<const T> r_d_y,
                       matrix_view<T> r_d_x, matrix_view<T> hv) const {
    self_->second_backward(w, dir, x, y, r_x, d_y, r_d_y, r_d_x, hv);
  }

  /// The held layer when it is an L (to reach its settings), else null.
  template <class L>
  [[nodiscard]] L* target() noexcept {
    auto* h = dynamic_cast<holder<L>*>(self_.get());
    return h != nullptr ? &h->layer : nullptr;
  }
  template <class L>
  [[nodiscard]] const L* target() const noexcept {
    const auto* h = dynamic_cast<const holder<L>*>(self_.get());
    return h != nullptr ? &h->layer : nullptr;
  }
  /// Calls f(void*) on the held layer if it is of `type`, then on those inside it (composites);
  /// hydra::for_each_layer<L> is the typed way in.
  void for_each_erased(const std::type_info& type, const std::function<void(void*)>& f) {
    self_->for_each_erased(type, f);
  }

private:
  struct interface {
    virtual ~interface() = default;
    [[nodiscard]] virtual index input_size() const = 0;
    [[nodiscard]] virtual index output_size() const = 0;
    [[nodiscard]] virtual index parameter_count() const = 0;
    [[nodiscard]] virtual const char* name() const = 0;
    [[nodiscard]] virtual bool couples_samples() const = 0;
    [[nodiscard]] virtual index workspace_per_direction(index batch) const = 0;
    virtual bool set_width(index width) = 0;
    virtual void initialize(T* w, uniform_function& uniform) const = 0;
    virtual void forward(const T*, matrix_view<const T>, matrix_view<T>) const = 0;
    virtual void backward(const T*, matrix_view<const T>, matrix_view<const T>, matrix_view<const T>, matrix_view<T>,
                          T*) const = 0;
    virtual void per_sample_gradients(const T*, matrix_view<const T>, matrix_view<const T>, matrix_view<const T>,
                                      matrix_view<T>) const = 0;
    virtual void tangent(const T*, matrix_view<const T>, matrix_view<const T>, matrix_view<const T>,
                         matrix_view<const T>, matrix_view<T>) const = 0;
    virtual void second_backward(const T*, matrix_view<const T>, matrix_view<const T>, matrix_view<const T>,
                                 matrix_view<const T>, matrix_view<const T>, matrix_view<const T>, matrix_view<T>,
                                 matrix_view<T>) const = 0;
    virtual void for_each_erased(const std::type_info& type, const std::function<void(void*)>& f) = 0;
  };

  template <class L>
  struct holder final : interface {
    L layer;
    explicit holder(L l) : layer(std::move(l)) {}
    index input_size() const override { return layer.input_size(); }
    index output_size() const override { return layer.output_size(); }
    index parameter_count() const override { return layer.parameter_count(); }
    const char* name() const override { return layer.name(); }
    bool couples_samples() const override { return detail::layer_couples_samples(layer); }
    index workspace_per_direction(index batch) const override {
      return detail::layer_workspace_per_direction(layer, batch);
    }
    bool set_width(index width) override {
      if constexpr (requires { layer.set_width(width); }) {
        layer.set_width(width);
        return true;
      } else {
        return false;
      }
    }
    void initialize(T* w, uniform_function& uniform) const override { layer.initialize(w, uniform); }
    void forward(const T* w, matrix_view<const T> x, matrix_view<T> y) const override { layer.forward(w, x, y); }
    void backward(const T* w, matrix_view<const T> x, matrix_view<const T> y, matrix_view<const T> d_y,
                  matrix_view<T> d_x, T* grad) const override {
      layer.backward(w, x, y, d_y, d_x, grad);
    }
    void per_sample_gradients(const T* w, matrix_view<const T> x, matrix_view<const T> y, matrix_view<const T> d_y,
                              matrix_view<T> g) const override {
      detail::layer_per_sample_gradients(layer, w, x, y, d_y, g);
    }
    void tangent(const T* w, matrix_view<const T> dir, matrix_view<const T> x, matrix_view<const T> y,
                 matrix_view<const T> r_x, matrix_view<T> r_y) const override {
      layer.tangent(w, dir, x, y, r_x, r_y);
    }
    void second_backward(const T* w, matrix_view<const T> dir, matrix_view<const T> x, matrix_view<const T> y,
                         matrix_view<const T> r_x, matrix_view<const T> d_y, matrix_view<const T> r_d_y,
                         matrix_view<T> r_d_x, matrix_view<T> hv) const override {
      layer.second_backward(w, dir, x, y, r_x, d_y, r_d_y, r_d_x, hv);
    }
    void for_each_erased(const std::type_info& type, const std::function<void(void*)>& f) override {
      if (type == typeid(L)) f(&layer);
      if constexpr (requires { layer.for_each_erased(type, f); }) layer.for_each_erased(type, f);
    }
  };

  std::unique_ptr<interface> self_;
};

/// The layers as a vector of any_layer (moved in), for Chain and DenseBlock:
///   DenseBlock<float>(24, 256, 12, parts<float>(bottleneck(24), bottleneck(36), …))
template <Scalar T, Backend B = default_backend, class... Layers>
std::vector<any_layer<T, B>> parts(Layers&&... layers) {
  std::vector<any_layer<T, B>> out;
  out.reserve(sizeof...(Layers));
  (out.emplace_back(std::forward<Layers>(layers)), ...);
  return out;
}

/// Calls f(layer) on every layer of type L in `root` (a layer or model that has for_each_erased),
/// looking inside composites: how a network's batch norms are reached to switch their statistics.
template <class L, class Root, class F>
void for_each_layer(Root& root, F&& f) {
  root.for_each_erased(typeid(L), [&](void* layer) { f(*static_cast<L*>(layer)); });
}

} // namespace hydra
