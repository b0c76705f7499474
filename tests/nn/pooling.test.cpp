// MaxPool2d, AvgPool2d and Flatten inside small convolutional models: every first- and
// second-order derivative against finite differences (double), geometry and argument checks.
// The kernels themselves are checked against window loops in tests/backend/cpu_pooling.test.cpp.

#include <doctest/doctest.h>

#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/nn/activation.hpp"
#include "hydra/nn/conv2d.hpp"
#include "hydra/nn/dense.hpp"
#include "hydra/nn/flatten.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/pooling.hpp"
#include "hydra/nn/sequential.hpp"
#include "support/model_checks.hpp"

namespace hydra::test {

static_assert(Layer<MaxPool2d<float>> && Layer<AvgPool2d<double>> && Layer<Flatten<double>>);

TEST_CASE("pooling layers know their sizes and reject bad geometry") {
  MaxPool2d<double> pool(6, 28, 28, 2);
  CHECK(pool.geometry().stride == 2);  // stride 0 = the window, as PyTorch's default
  CHECK(pool.input_size() == 6 * 28 * 28);
  CHECK(pool.output_size() == 6 * 14 * 14);
  CHECK(pool.parameter_count() == 0);
  AvgPool2d<double> overlapping(3, 5, 7, 3, 2);
  CHECK(overlapping.output_size() == 3 * 2 * 3);
  CHECK_THROWS_AS(MaxPool2d<double>(1, 2, 2, 3), invalid_argument);
  CHECK_THROWS_AS(AvgPool2d<double>(0, 4, 4, 2), invalid_argument);
  CHECK_THROWS_AS(MaxPool2d<double>(1, 4, 4, 2, -1), invalid_argument);
  CHECK_THROWS_AS(Flatten<double>(-1), invalid_argument);
}

TEST_CASE("a conv → relu → max-pool → flatten → dense model passes every derivative check") {
  // Random inputs and weights leave no two entries of a window within the finite-difference step,
  // so the argmax is locally constant and max pooling is differentiable where it is probed.
  using Net = Sequential<Conv2d<double>, ReLU<double>, MaxPool2d<double>, Flatten<double>, Dense<double>>;
  Net net(Conv2d<double>(1, 6, 6, 2, 3, 1, 1), ReLU<double>(), MaxPool2d<double>(2, 6, 6, 2), Flatten<double>(),
          Dense<double>(2 * 3 * 3, 3));
  SoftmaxCrossEntropy<double> loss;
  const auto b = random_batch(3, 36, 3, 61);
  check_model_derivatives(net, loss, b, normal_vector(static_cast<std::size_t>(net.parameter_count()), 62, 0.5));
}

TEST_CASE("overlapping max and average pooling between convolutions pass every derivative check") {
  // The second pooling feeds a convolution, so its tangent input and second backward are both used.
  using Net = Sequential<Conv2d<double>, Tanh<double>, MaxPool2d<double>, Conv2d<double>, Sigmoid<double>,
                         AvgPool2d<double>, Dense<double>>;
  Net net(Conv2d<double>(2, 7, 7, 3, 3, 1, 1), Tanh<double>(), MaxPool2d<double>(3, 7, 7, 3, 2),
          Conv2d<double>(3, 3, 3, 2, 2, 1, 1), Sigmoid<double>(), AvgPool2d<double>(2, 4, 4, 2), Dense<double>(8, 2));
  MeanSquaredError<double> loss;
  const auto b = random_batch(2, 2 * 7 * 7, 2, 63, true);
  check_model_derivatives(net, loss, b, normal_vector(static_cast<std::size_t>(net.parameter_count()), 64, 0.5));
}

} // namespace hydra::test
