#pragma once
// Network<T, B>: a model over a run-time list of layers (any_layer: plain layers or composites),
// the way DenseNet40 and MobileNetV2 are built. Sequential fixes its layer types at compile time;
// Network trades that for one type whatever the depth, at one virtual call per layer per pass.

#include <utility>
#include <vector>

#include "hydra/backend/concepts.hpp"
#include "hydra/backend/fwd.hpp"
#include "hydra/core/types.hpp"
#include "hydra/nn/any_layer.hpp"
#include "hydra/nn/network.hpp"

namespace hydra {

namespace detail {
/// Layers held as any_layer in a vector; visit(i, f) calls f(the i-th).
template <Scalar T, Backend B>
struct any_layer_list {
  std::vector<any_layer<T, B>> items;

  [[nodiscard]] index size() const noexcept { return static_cast<index>(items.size()); }
  template <class F>
  void visit(index i, F&& f) {
    f(items[static_cast<std::size_t>(i)]);
  }
  template <class F>
  void visit(index i, F&& f) const {
    f(items[static_cast<std::size_t>(i)]);
  }
};
} // namespace detail

template <Scalar T, Backend B = default_backend>
class Network : public basic_network<T, B, detail::any_layer_list<T, B>> {
  using base = basic_network<T, B, detail::any_layer_list<T, B>>;

public:
  explicit Network(std::vector<any_layer<T, B>> layers) : base(detail::any_layer_list<T, B>{std::move(layers)}) {}
};

} // namespace hydra
