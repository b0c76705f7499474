// MaxPool2d, AvgPool2d and Flatten inside small convolutional models: every first- and
// second-order derivative against finite differences (double), geometry and argument checks.
// The kernels themselves are checked against window loops in tests/backend/cpu_pooling.test.cpp.

#include <doctest/doctest.h>

#include <cmath>
#include <string>
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

static_assert(Layer<MaxPool2d<float>> && Layer<AvgPool2d<double>> && Layer<Flatten<double>> &&
              Layer<GlobalAvgPool2d<double>>);

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

TEST_CASE("GlobalAvgPool2d is each channel's mean over its whole map") {
  GlobalAvgPool2d<double> pool(3, 4, 4);
  CHECK(pool.input_size() == 3 * 16);
  CHECK(pool.output_size() == 3);
  CHECK(std::string(pool.name()) == "GlobalAvgPool2d");
  CHECK_THROWS_WITH_AS(GlobalAvgPool2d<double>(3, 4, 6), doctest::Contains("the map is 4 x 6"), invalid_argument);
  const auto x = normal_vector(2 * 48, 71);  // 2 samples of 3 × 4 × 4
  std::vector<double> y(2 * 3, std::nan(""));
  pool.forward(nullptr, matrix_view<const double>(x.data(), 2, 48), matrix_view<double>(y.data(), 2, 3));
  for (index b = 0; b < 2; ++b)
    for (index c = 0; c < 3; ++c) {
      double mean = 0;
      for (index p = 0; p < 16; ++p) mean += x[static_cast<std::size_t>(b * 48 + c * 16 + p)] / 16;
      CHECK(y[static_cast<std::size_t>(b * 3 + c)] == doctest::Approx(mean).epsilon(1e-14));
    }
}

TEST_CASE("a conv → relu6 → global average pool → dense head passes every derivative check") {
  // MobileNetV2's and DenseNet's head shape; the inputs scaled so that some pre-activations pass
  // ReLU6's top at 6.
  using Net = Sequential<Conv2d<double>, ReLU6<double>, GlobalAvgPool2d<double>, Dense<double>>;
  Net net(Conv2d<double>(2, 5, 5, 4, 3, 1, 1), ReLU6<double>(), GlobalAvgPool2d<double>(4, 5, 5), Dense<double>(4, 3));
  SoftmaxCrossEntropy<double> loss;
  auto b = random_batch(3, 2 * 5 * 5, 3, 73);
  for (auto& v : b.x) v *= 6;
  const auto w = normal_vector(static_cast<std::size_t>(net.parameter_count()), 74, 0.5);
  using Unclipped = Sequential<Conv2d<double>, ReLU<double>, GlobalAvgPool2d<double>, Dense<double>>;
  Unclipped relu(Conv2d<double>(2, 5, 5, 4, 3, 1, 1), ReLU<double>(), GlobalAvgPool2d<double>(4, 5, 5),
                 Dense<double>(4, 3));
  CHECK(std::fabs(loss_at(net, loss, b, w) - loss_at(relu, loss, b, w)) > 1e-3);  // the top at 6 is reached
  check_model_derivatives(net, loss, b, w);
}

} // namespace hydra::test
