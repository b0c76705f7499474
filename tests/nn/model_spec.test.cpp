// The text model specifications of command-line tools and the registry of model families.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/nn/model_spec.hpp"

namespace hydra::test {

TEST_CASE("model specs parse into MLP layouts") {
  const auto softmax = parse_model_spec("softmax:784,10");
  CHECK(softmax.inputs == 784);
  CHECK(softmax.hidden.empty());
  CHECK(softmax.outputs == 10);
  const auto mlp = parse_model_spec("mlp:784,256,128,10:tanh");
  CHECK(mlp.inputs == 784);
  CHECK(mlp.hidden == std::vector<index>{256, 128});
  CHECK(mlp.outputs == 10);
  CHECK(mlp.hidden_activation == activation::tanh);
  CHECK(parse_model_spec("mlp:4,8,3").hidden_activation == activation::relu);
  CHECK(parse_model_spec("mlp:4,8,3:sigmoid").hidden_activation == activation::sigmoid);
  CHECK(parse_model_spec("mlp:4,8,3:relu6").hidden_activation == activation::relu6);
  CHECK(parse_model_spec("mlp:4,8,3").family == "mlp");
  CHECK(parse_model_spec("mlp:4,8,3").sample_shape == std::vector<index>{4});
  CHECK(softmax.family == "softmax");
  const auto lenet = parse_model_spec("lenet5");
  CHECK(lenet.family == "lenet5");
  CHECK(lenet.sample_shape == std::vector<index>{1, 28, 28});
  CHECK(lenet.outputs == 10);
}

TEST_CASE("every family of the registry parses its own name and builds its model") {
  auto parameters = [](const std::string& spec) {
    return with_model<double, cpu>(parse_model_spec(spec), [](auto& model) { return model.parameter_count(); });
  };
  CHECK(parameters("softmax:3,4") == 3 * 4 + 4);  // Dense layers: in·out + out
  CHECK(parameters("mlp:4,8,3:tanh") == 4 * 8 + 8 + 8 * 3 + 3);
  CHECK(parameters("lenet5") == 61706);
  CHECK(parameters("densenet40") == 176122);
  CHECK(parameters("mobilenetv2") == 2236682);
  CHECK(parse_model_spec("densenet40").sample_shape == std::vector<index>{3, 32, 32});
  CHECK(parse_model_spec("mobilenetv2").outputs == 10);
  index rows = 0;
  for_each_model_family([&](const auto& family) {
    CAPTURE(family.name);
    ++rows;
    CHECK(family.syntax.substr(0, family.name.size()) == family.name);
    CHECK_FALSE(family.description.empty());
    CHECK(model_spec_syntaxes().find(family.syntax) != std::string::npos);
    // A family without arguments is its own spec; one with arguments refuses its bare name.
    const std::string bare(family.name);
    if (family.takes_arguments()) {
      CHECK_THROWS_WITH_AS((void)parse_model_spec(bare), doctest::Contains("unknown model spec"), invalid_argument);
    } else {
      CHECK(parse_model_spec(bare).family == family.name);
    }
  });
  CHECK(rows == 5);
  model_spec nameless;
  nameless.family = "transformer";
  auto build = [&] { return with_model<float, cpu>(nameless, [](auto& model) { return model.parameter_count(); }); };
  CHECK_THROWS_WITH_AS((void)build(), doctest::Contains("no model family is named 'transformer'"), invalid_argument);
}

TEST_CASE("bad model specs name the problem") {
  CHECK_THROWS_WITH_AS(parse_model_spec("lenet"), doctest::Contains("unknown model spec 'lenet': expected softmax:D,C"),
                       invalid_argument);
  CHECK_THROWS_WITH_AS(parse_model_spec("lenet6"), doctest::Contains(", lenet5, densenet40 or mobilenetv2"),
                       invalid_argument);
  CHECK_THROWS_WITH_AS(parse_model_spec("cnn:1,2"), doctest::Contains("unknown model spec 'cnn:1,2'"), invalid_argument);
  CHECK_THROWS_WITH_AS(parse_model_spec("softmax:784"), doctest::Contains("exactly D,C"), invalid_argument);
  CHECK_THROWS_WITH_AS(parse_model_spec("mlp:784,10"), doctest::Contains("at least one hidden width"), invalid_argument);
  CHECK_THROWS_WITH_AS(parse_model_spec("mlp:784,x,10"), doctest::Contains("'x' is not a positive size"), invalid_argument);
  CHECK_THROWS_WITH_AS(parse_model_spec("mlp:784,0,10"), doctest::Contains("'0' is not a positive size"), invalid_argument);
  CHECK_THROWS_WITH_AS(parse_model_spec("mlp:4,8,3:gelu"), doctest::Contains("unknown activation 'gelu'"), invalid_argument);
  CHECK_THROWS_AS(parse_model_spec("softmax:4,"), invalid_argument);
  // Parameter counts past 2^63 − 1 (they used to wrap and crash): refused at parse time, naming the
  // layer; the largest count that fits still parses.
  CHECK_THROWS_WITH_AS(parse_model_spec("mlp:6,5534023222112865490,3"),
                       doctest::Contains("the layer 6 -> 5534023222112865490 brings the parameter count past"),
                       invalid_argument);
  CHECK_THROWS_WITH_AS(parse_model_spec("mlp:6,1000000000000000000,3"), doctest::Contains("-> 3 brings"),
                       invalid_argument);  // 7e18 fits, the second layer's 3e18 more does not
  CHECK_THROWS_AS(parse_model_spec("softmax:6,4611686018427387904"), invalid_argument);
  CHECK_NOTHROW(parse_model_spec("softmax:1,4611686018427387903"));  // 2·(2^62 − 1) = 2^63 − 2
  CHECK_THROWS_WITH_AS(parse_model_spec("lenet5:1"),
                       doctest::Contains("unknown model spec 'lenet5:1': expected softmax:D,C, "
                                         "mlp:D,H1[,H2,...],C[:relu|relu6|tanh|sigmoid], lenet5, densenet40 or "
                                         "mobilenetv2"),
                       invalid_argument);
}

} // namespace hydra::test
