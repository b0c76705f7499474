#pragma once
// Ready models: LinearRegression and SoftmaxRegression (one Dense layer; pair them with
// MeanSquaredError and SoftmaxCrossEntropy respectively) and Mlp (any depth and widths, one
// activation kind after every hidden layer, the depth chosen at run time).

#include <string>
#include <variant>
#include <vector>

#include "hydra/nn/activation.hpp"
#include "hydra/nn/dense.hpp"
#include "hydra/nn/network.hpp"
#include "hydra/nn/sequential.hpp"

namespace hydra {

/// y = x Wᵀ + b with `outputs` real outputs.
template <Scalar T, Backend B = default_backend>
class LinearRegression : public Sequential<Dense<T, B>> {
public:
  LinearRegression(index inputs, index outputs) : Sequential<Dense<T, B>>(Dense<T, B>(inputs, outputs)) {}
};

/// Multinomial logistic regression: logits = x Wᵀ + b over `classes` classes.
template <Scalar T, Backend B = default_backend>
class SoftmaxRegression : public Sequential<Dense<T, B>> {
public:
  SoftmaxRegression(index inputs, index classes) : Sequential<Dense<T, B>>(Dense<T, B>(inputs, classes)) {}
};

namespace detail {
/// Layers held in a vector of variants, for models whose depth is a run-time value.
template <class... Alternatives>
struct layer_vector {
  std::vector<std::variant<Alternatives...>> items;

  [[nodiscard]] index size() const noexcept { return static_cast<index>(items.size()); }
  template <class F>
  void visit(index i, F&& f) {
    std::visit(f, items[static_cast<std::size_t>(i)]);
  }
  template <class F>
  void visit(index i, F&& f) const {
    std::visit(f, items[static_cast<std::size_t>(i)]);
  }
};

template <Scalar T, Backend B>
layer_vector<Dense<T, B>, Activation<T, B>> mlp_layers(index inputs, const std::vector<index>& hidden, index outputs,
                                                       activation kind) {
  layer_vector<Dense<T, B>, Activation<T, B>> layers;
  index width = inputs;
  for (index h : hidden) {
    layers.items.emplace_back(Dense<T, B>(width, h));
    layers.items.emplace_back(Activation<T, B>(kind, h));
    width = h;
  }
  layers.items.emplace_back(Dense<T, B>(width, outputs));
  return layers;
}
} // namespace detail

/// Dense(inputs, h1) → f → Dense(h1, h2) → f → … → Dense(h_last, outputs). With no hidden layers
/// it is a single Dense layer.
template <Scalar T, Backend B = default_backend>
class Mlp : public basic_network<T, B, detail::layer_vector<Dense<T, B>, Activation<T, B>>> {
  using base = basic_network<T, B, detail::layer_vector<Dense<T, B>, Activation<T, B>>>;

public:
  Mlp(index inputs, std::vector<index> hidden, index outputs, activation kind = activation::relu)
      : base(detail::mlp_layers<T, B>(inputs, hidden, outputs, kind)), hidden_(std::move(hidden)), kind_(kind) {}

  [[nodiscard]] const std::vector<index>& hidden_sizes() const noexcept { return hidden_; }
  [[nodiscard]] activation hidden_activation() const noexcept { return kind_; }

private:
  std::vector<index> hidden_;
  activation kind_;
};

} // namespace hydra
