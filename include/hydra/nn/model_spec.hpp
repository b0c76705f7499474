#pragma once
// Text specifications of ready models, as command-line tools take them ("mlp:784,64,10",
// "lenet5"), and the registry of the model families they name. Each row of model_families gives a
// family's name, its syntax, a one-line description, how to read its arguments and how to build
// the model; parse_model_spec, its error for a spec that no row matches, and the --help text of
// hydra-attribute's --model are all generated from the table, so adding a family is adding a row.

#include <charconv>
#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"
#include "hydra/nn/densenet.hpp"
#include "hydra/nn/lenet.hpp"
#include "hydra/nn/mobilenet.hpp"
#include "hydra/nn/models.hpp"

namespace hydra {

/// A parsed model specification: the family that reads it and the sizes it gives.
struct model_spec {
  std::string_view family;          // the name of its row in model_families: "softmax", "mlp", "lenet5"
  std::vector<index> sample_shape;  // of one input sample: {D}, or {1, 28, 28} for lenet5
  index inputs = 0;                 // values per input sample, the product of sample_shape
  std::vector<index> hidden;        // hidden layer widths (mlp)
  index outputs = 0;                // classes
  activation hidden_activation = activation::relu;
};

/// The scalar type and backend a family's build makes its model for: build(model_types<T, B>{}, spec).
template <Scalar T, class B>
struct model_types {};

/// A family's reader of its arguments: the text after "name:" and the whole spec (for messages).
using model_arguments_parser = model_spec (*)(std::string_view arguments, const std::string& spec);

/// One row of the registry. Build is the type of a generic callable
/// build(model_types<T, B>, const model_spec&) that returns the model.
template <class Build>
struct model_family {
  std::string_view name;         // what a spec of this family starts with
  std::string_view syntax;       // the whole spec: "name:ARGUMENTS", or "name" for a family without arguments
  std::string_view description;  // one line, for --help
  model_arguments_parser parse;  // the arguments into sizes (parse_model_spec sets model_spec::family)
  Build build;

  [[nodiscard]] constexpr bool takes_arguments() const noexcept { return syntax.size() > name.size(); }
};

namespace detail {
inline std::vector<index> parse_sizes(std::string_view list, const std::string& spec) {
  std::vector<index> sizes;
  while (true) {
    const auto comma = list.find(',');
    const auto item = list.substr(0, comma);
    index value = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (ec != std::errc{} || end != item.data() + item.size() || value <= 0)
      throw invalid_argument("model spec '" + spec + "': '" + std::string(item) + "' is not a positive size");
    sizes.push_back(value);
    if (comma == std::string_view::npos) return sizes;
    list.remove_prefix(comma + 1);
  }
}

/// Refuses a chain of Dense widths whose parameter count Σ w_{k+1}·(w_k + 1) does not fit in an
/// index, before any size derived from it is computed.
inline void check_dense_chain(const std::vector<index>& widths, const std::string& spec) {
  constexpr index most = std::numeric_limits<index>::max();
  index total = 0;
  for (std::size_t k = 0; k + 1 < widths.size(); ++k) {
    const index in = widths[k], out = widths[k + 1];
    if (in > most / out - 1 || out * (in + 1) > most - total)
      throw invalid_argument("model spec '" + spec + "': the layer " + std::to_string(in) + " -> " + std::to_string(out) +
                             " brings the parameter count past " + std::to_string(most) + ", the most an index holds");
    total += out * (in + 1);
  }
}

inline model_spec parse_softmax(std::string_view arguments, const std::string& spec) {
  const auto sizes = parse_sizes(arguments, spec);
  if (sizes.size() != 2) throw invalid_argument("model spec '" + spec + "': softmax takes exactly D,C");
  check_dense_chain(sizes, spec);
  model_spec result;
  result.sample_shape = {sizes[0]};
  result.inputs = sizes[0];
  result.outputs = sizes[1];
  return result;
}

inline model_spec parse_mlp(std::string_view arguments, const std::string& spec) {
  model_spec result;
  if (const auto colon = arguments.find(':'); colon != std::string_view::npos) {
    const auto name = arguments.substr(colon + 1);
    const auto f = activation_named(name);
    if (!f || *f == activation::identity)
      throw invalid_argument("model spec '" + spec + "': unknown activation '" + std::string(name) +
                             "' (relu, relu6, tanh or sigmoid)");
    result.hidden_activation = *f;
    arguments = arguments.substr(0, colon);
  }
  const auto sizes = parse_sizes(arguments, spec);
  if (sizes.size() < 3)
    throw invalid_argument("model spec '" + spec + "': an mlp needs D, at least one hidden width and C");
  check_dense_chain(sizes, spec);
  result.sample_shape = {sizes.front()};
  result.inputs = sizes.front();
  result.hidden.assign(sizes.begin() + 1, sizes.end() - 1);
  result.outputs = sizes.back();
  return result;
}

inline model_spec parse_lenet5(std::string_view, const std::string&) {
  model_spec result;
  result.sample_shape = {1, 28, 28};
  result.inputs = 784;
  result.outputs = 10;
  return result;
}

inline model_spec parse_cifar10_network(std::string_view, const std::string&) {
  model_spec result;
  result.sample_shape = {3, 32, 32};
  result.inputs = 3 * 32 * 32;
  result.outputs = 10;
  return result;
}

// The families' builds, named so that the rows below can name their types: Clang before 17 cannot
// deduce a template argument from a designated initializer (aggregate CTAD, P1816).
inline constexpr auto build_softmax = []<class T, class B>(model_types<T, B>, const model_spec& s) {
  return Mlp<T, B>(s.inputs, {}, s.outputs);
};
inline constexpr auto build_mlp = []<class T, class B>(model_types<T, B>, const model_spec& s) {
  return Mlp<T, B>(s.inputs, s.hidden, s.outputs, s.hidden_activation);
};
inline constexpr auto build_lenet5 = []<class T, class B>(model_types<T, B>, const model_spec&) {
  return LeNet5<T, B>();
};
inline constexpr auto build_densenet40 = []<class T, class B>(model_types<T, B>, const model_spec&) {
  return DenseNet40<T, B>();
};
inline constexpr auto build_mobilenetv2 = []<class T, class B>(model_types<T, B>, const model_spec&) {
  return MobileNetV2<T, B>();
};
} // namespace detail

/// The registry of model families, in the order --help and error messages list them.
inline constexpr std::tuple model_families{
    model_family<decltype(detail::build_softmax)>{
        .name = "softmax",
        .syntax = "softmax:D,C",
        .description = "softmax regression: D inputs, C classes (an mlp without hidden layers)",
        .parse = detail::parse_softmax,
        .build = detail::build_softmax},
    model_family<decltype(detail::build_mlp)>{
        .name = "mlp",
        .syntax = "mlp:D,H1[,H2,...],C[:relu|relu6|tanh|sigmoid]",
        .description = "an MLP with hidden widths H1, H2, ..., the activation after each (default relu)",
        .parse = detail::parse_mlp,
        .build = detail::build_mlp},
    model_family<decltype(detail::build_lenet5)>{
        .name = "lenet5",
        .syntax = "lenet5",
        .description = "the paper's LeNet-5: N x 1 x 28 x 28 inputs, 10 classes",
        .parse = detail::parse_lenet5,
        .build = detail::build_lenet5},
    model_family<decltype(detail::build_densenet40)>{
        .name = "densenet40",
        .syntax = "densenet40",
        .description = "the paper's DenseNet-BC-40 (growth 12): N x 3 x 32 x 32 inputs, 10 classes, 39 batch norms",
        .parse = detail::parse_cifar10_network,
        .build = detail::build_densenet40},
    model_family<decltype(detail::build_mobilenetv2)>{
        .name = "mobilenetv2",
        .syntax = "mobilenetv2",
        .description = "torchvision's MobileNetV2 (width 1.0): N x 3 x 32 x 32 inputs, 10 classes, 52 batch norms",
        .parse = detail::parse_cifar10_network,
        .build = detail::build_mobilenetv2},
};

/// Calls f(row) for every row of model_families, in the table's order.
template <class F>
constexpr void for_each_model_family(F&& f) {
  std::apply([&](const auto&... row) { (f(row), ...); }, model_families);
}

/// Every family's syntax, "softmax:D,C, mlp:…, lenet5, densenet40 or mobilenetv2".
[[nodiscard]] inline std::string model_spec_syntaxes() {
  constexpr std::size_t count = std::tuple_size_v<std::remove_cvref_t<decltype(model_families)>>;
  std::string text;
  std::size_t k = 0;
  for_each_model_family([&](const auto& row) {
    text += k == 0 ? "" : k + 1 == count ? " or " : ", ";
    text += row.syntax;
    ++k;
  });
  return text;
}

/// Parses a model specification: the row whose name starts the spec (up to the first ':') reads
/// the rest. Throws invalid_argument naming the specification and what is wrong with it; a spec
/// that no row takes (an unknown name, arguments given to lenet5 or missing after mlp) gets every
/// family's syntax.
[[nodiscard]] inline model_spec parse_model_spec(const std::string& spec) {
  const auto colon = spec.find(':');
  const bool has_arguments = colon != std::string::npos;
  const auto name = std::string_view(spec).substr(0, colon);
  const auto arguments = has_arguments ? std::string_view(spec).substr(colon + 1) : std::string_view();
  std::optional<model_spec> result;
  for_each_model_family([&](const auto& row) {
    if (result || row.name != name || row.takes_arguments() != has_arguments) return;
    result = row.parse(arguments, spec);
    result->family = row.name;
  });
  if (!result) throw invalid_argument("unknown model spec '" + spec + "': expected " + model_spec_syntaxes());
  return *std::move(result);
}

namespace detail {
template <std::size_t K, Scalar T, class B, class F>
decltype(auto) with_model_from(const model_spec& spec, F& f) {
  constexpr std::size_t count = std::tuple_size_v<std::remove_cvref_t<decltype(model_families)>>;
  const auto& row = std::get<K>(model_families);
  if constexpr (K + 1 < count) {
    if (spec.family != row.name) return with_model_from<K + 1, T, B>(spec, f);
  } else if (spec.family != row.name) {
    throw invalid_argument("hydra::with_model: no model family is named '" + std::string(spec.family) + "'");
  }
  auto model = row.build(model_types<T, B>{}, spec);
  return f(model);
}
} // namespace detail

/// Builds the model that spec describes (the type its family's row builds) in scalar type T on
/// backend B, and returns f(model). f is called with each family's model type, so it is generic
/// and returns the same type for all of them.
template <Scalar T, class B, class F>
decltype(auto) with_model(const model_spec& spec, F&& f) {
  return detail::with_model_from<0, T, B>(spec, f);
}

} // namespace hydra
