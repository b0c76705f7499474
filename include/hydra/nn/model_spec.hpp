#pragma once
// Text specifications of ready models, as command-line tools take them:
//   softmax:D,C                      softmax regression, D inputs, C classes
//   mlp:D,H1[,H2,...],C[:act]        an MLP with hidden widths H1, H2, ... and act ∈ relu|tanh|sigmoid
//                                    after every hidden layer (default relu)
//   lenet5                           the paper's LeNet-5 on 1 × 28 × 28 inputs, 10 classes
// softmax:D,C is an Mlp without hidden layers, so the first two share one model type.

#include <charconv>
#include <string>
#include <string_view>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"

namespace hydra {

struct model_spec {
  enum class family { mlp, lenet5 };
  family kind = family::mlp;
  index inputs = 0;
  std::vector<index> hidden;
  index outputs = 0;
  activation hidden_activation = activation::relu;
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
} // namespace detail

/// Parses a model specification (see the top of this file); throws invalid_argument naming the
/// specification and what is wrong with it.
[[nodiscard]] inline model_spec parse_model_spec(const std::string& spec) {
  constexpr const char* expected_specs = "expected softmax:D,C, mlp:D,H1[,H2,...],C[:relu|tanh|sigmoid] or lenet5";
  if (spec == "lenet5") return {model_spec::family::lenet5, 784, {}, 10, activation::relu};
  const auto colon = spec.find(':');
  if (colon == std::string::npos)
    throw invalid_argument("unknown model spec '" + spec + "': " + expected_specs);
  const std::string_view kind(spec.data(), colon);
  std::string_view rest(spec.data() + colon + 1, spec.size() - colon - 1);
  model_spec result;
  if (kind == "mlp") {
    if (const auto second = rest.find(':'); second != std::string_view::npos) {
      const auto act = rest.substr(second + 1);
      const auto f = activation_named(act);
      if (!f || *f == activation::identity)
        throw invalid_argument("model spec '" + spec + "': unknown activation '" + std::string(act) + "' (relu, tanh or sigmoid)");
      result.hidden_activation = *f;
      rest = rest.substr(0, second);
    }
    const auto sizes = detail::parse_sizes(rest, spec);
    if (sizes.size() < 3)
      throw invalid_argument("model spec '" + spec + "': an mlp needs D, at least one hidden width and C");
    result.inputs = sizes.front();
    result.outputs = sizes.back();
    result.hidden.assign(sizes.begin() + 1, sizes.end() - 1);
    return result;
  }
  if (kind == "softmax") {
    const auto sizes = detail::parse_sizes(rest, spec);
    if (sizes.size() != 2) throw invalid_argument("model spec '" + spec + "': softmax takes exactly D,C");
    result.inputs = sizes[0];
    result.outputs = sizes[1];
    return result;
  }
  throw invalid_argument("unknown model spec '" + spec + "': " + expected_specs);
}

} // namespace hydra
