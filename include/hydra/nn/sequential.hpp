#pragma once
// Sequential<Layers...>: a model whose layers are fixed at compile time, e.g.
//   Sequential<Dense<double>, Tanh<double>, Dense<double>> net(Dense<double>(4, 8), Tanh<double>(), Dense<double>(8, 3));

#include <tuple>
#include <utility>

#include "hydra/nn/concepts.hpp"
#include "hydra/nn/network.hpp"

namespace hydra {

namespace detail {
/// Layers held in a tuple; visit(i, f) dispatches a run-time index to the i-th element.
template <class... Layers>
struct layer_tuple {
  std::tuple<Layers...> items;

  [[nodiscard]] static constexpr index size() noexcept { return sizeof...(Layers); }
  template <class F>
  void visit(index i, F&& f) {
    visit_impl(*this, i, f, std::index_sequence_for<Layers...>{});
  }
  template <class F>
  void visit(index i, F&& f) const {
    visit_impl(*this, i, f, std::index_sequence_for<Layers...>{});
  }

private:
  template <class Self, class F, std::size_t... I>
  static void visit_impl(Self& self, index i, F& f, std::index_sequence<I...>) {
    ((i == static_cast<index>(I) ? (void)f(std::get<I>(self.items)) : void()), ...);
  }
};

/// The base of Sequential<Layers...>, reached only after every layer passed check_layer, so a
/// type that is not a layer gets a sentence rather than a failed member lookup.
template <class First, class... Rest>
struct sequential_base {
  static_assert(check_layer<First>() && (check_layer<Rest>() && ...));
  static_assert((std::is_same_v<typename Rest::scalar_type, typename First::scalar_type> && ...),
                "hydra::Sequential: all layers must use the same scalar type (see docs/nn.md)");
  static_assert((std::is_same_v<typename Rest::backend_type, typename First::backend_type> && ...),
                "hydra::Sequential: all layers must use the same backend (see docs/nn.md)");
  using type = basic_network<typename First::scalar_type, typename First::backend_type, layer_tuple<First, Rest...>>;
};
} // namespace detail

template <class... Layers>
  requires(sizeof...(Layers) > 0)
class Sequential : public detail::sequential_base<Layers...>::type {
  using base = typename detail::sequential_base<Layers...>::type;

public:
  explicit Sequential(Layers... layers) : base(detail::layer_tuple<Layers...>{{std::move(layers)...}}) {}
};

} // namespace hydra
