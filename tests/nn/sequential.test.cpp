// Sequential: width inference for activations, a leading parameter-free layer, shape errors, and
// the derivative checks on a compile-time composition.

#include <doctest/doctest.h>

#include "hydra/backend/cpu.hpp"
#include "hydra/nn/activation.hpp"
#include "hydra/nn/dense.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/sequential.hpp"
#include "support/model_checks.hpp"

namespace hydra::test {

TEST_CASE("activations take the width of the layer before them") {
  Sequential<Dense<double>, Tanh<double>, Dense<double>, Sigmoid<double>> net(Dense<double>(4, 6), Tanh<double>(),
                                                                             Dense<double>(6, 3), Sigmoid<double>());
  CHECK(net.input_size() == 4);
  CHECK(net.output_size() == 3);
  CHECK(net.parameter_count() == 4 * 6 + 6 + 6 * 3 + 3);
  CHECK(net.parameter_offsets() == std::vector<index>{0, 30, 30, 51, 51});
}

TEST_CASE("a Sequential with a leading activation and a trailing one passes every derivative check") {
  // tanh(x) first: the input's nonlinearity has no parameters, so the R-pass starts at layer 1;
  // sigmoid last: the loss sees squashed outputs.
  Sequential<Tanh<double>, Dense<double>, Sigmoid<double>, Dense<double>> net(Tanh<double>(3), Dense<double>(3, 4),
                                                                            Sigmoid<double>(), Dense<double>(4, 2));
  SoftmaxCrossEntropy<double> loss;
  const auto b = random_batch(5, 3, 2, 31);
  check_model_derivatives(net, loss, b, normal_vector(static_cast<std::size_t>(net.parameter_count()), 32, 0.7));
}

TEST_CASE("Sequential reports a layer whose input does not match the previous output") {
  using S = Sequential<Dense<double>, ReLU<double>, Dense<double>>;
  CHECK_THROWS_AS(S(Dense<double>(4, 6), ReLU<double>(), Dense<double>(5, 2)), shape_error);
  CHECK_THROWS_WITH(S(Dense<double>(4, 6), ReLU<double>(), Dense<double>(5, 2)),
                    doctest::Contains("layer 2 (Dense) takes 5 inputs but layer 1 gives 6"));
  using A = Sequential<ReLU<double>, Dense<double>>;
  CHECK_THROWS_WITH(A(ReLU<double>(), Dense<double>(3, 2)), doctest::Contains("needs a width"));
  using N = Sequential<ReLU<double>>;
  CHECK_THROWS_WITH(N(ReLU<double>(3)), doctest::Contains("at least one layer with parameters"));
}

} // namespace hydra::test
