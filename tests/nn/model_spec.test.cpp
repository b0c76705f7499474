// The text model specifications of command-line tools.

#include <doctest/doctest.h>

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
  CHECK(parse_model_spec("mlp:4,8,3").kind == model_spec::family::mlp);
  CHECK(parse_model_spec("lenet5").kind == model_spec::family::lenet5);
}

TEST_CASE("bad model specs name the problem") {
  CHECK_THROWS_WITH_AS(parse_model_spec("lenet"), doctest::Contains("unknown model spec 'lenet': expected softmax:D,C"),
                       invalid_argument);
  CHECK_THROWS_WITH_AS(parse_model_spec("lenet6"), doctest::Contains("or lenet5"), invalid_argument);
  CHECK_THROWS_WITH_AS(parse_model_spec("cnn:1,2"), doctest::Contains("unknown model spec 'cnn:1,2'"), invalid_argument);
  CHECK_THROWS_WITH_AS(parse_model_spec("softmax:784"), doctest::Contains("exactly D,C"), invalid_argument);
  CHECK_THROWS_WITH_AS(parse_model_spec("mlp:784,10"), doctest::Contains("at least one hidden width"), invalid_argument);
  CHECK_THROWS_WITH_AS(parse_model_spec("mlp:784,x,10"), doctest::Contains("'x' is not a positive size"), invalid_argument);
  CHECK_THROWS_WITH_AS(parse_model_spec("mlp:784,0,10"), doctest::Contains("'0' is not a positive size"), invalid_argument);
  CHECK_THROWS_WITH_AS(parse_model_spec("mlp:4,8,3:gelu"), doctest::Contains("unknown activation 'gelu'"), invalid_argument);
  CHECK_THROWS_AS(parse_model_spec("softmax:4,"), invalid_argument);
}

} // namespace hydra::test
