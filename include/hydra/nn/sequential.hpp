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

template <class First, class...>
struct first_of {
  using type = First;
};
} // namespace detail

template <Layer... Layers>
  requires(sizeof...(Layers) > 0)
class Sequential
    : public basic_network<typename detail::first_of<Layers...>::type::scalar_type,
                           typename detail::first_of<Layers...>::type::backend_type, detail::layer_tuple<Layers...>> {
  using first = typename detail::first_of<Layers...>::type;
  static_assert((std::is_same_v<typename Layers::scalar_type, typename first::scalar_type> && ...),
                "hydra::Sequential: all layers must use the same scalar type (see docs/nn.md)");
  static_assert((std::is_same_v<typename Layers::backend_type, typename first::backend_type> && ...),
                "hydra::Sequential: all layers must use the same backend (see docs/nn.md)");
  using base = basic_network<typename first::scalar_type, typename first::backend_type, detail::layer_tuple<Layers...>>;

public:
  explicit Sequential(Layers... layers) : base(detail::layer_tuple<Layers...>{{std::move(layers)...}}) {}
};

} // namespace hydra
