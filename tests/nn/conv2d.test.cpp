// Conv2d: forward against a direct convolution loop, the parameter layout, and every derivative
// check inside small convolutional models (double), plus float against double.

#include <doctest/doctest.h>

#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/nn/activation.hpp"
#include "hydra/nn/conv2d.hpp"
#include "hydra/nn/dense.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/sequential.hpp"
#include "support/model_checks.hpp"

namespace hydra::test {
namespace {
/// y[b, o, i, j] = bias[o] + Σ_{c in o's group, u, v} W[o, c', u, v] · x[b, c, i·s − p + u, j·s − p + v],
/// zero outside; c' = c − (o's group)·C/G, W is out × C/G × k × k, the bias follows it (if any).
std::vector<double> direct_convolution(const std::vector<double>& x, index batch, index C, index H, index W,
                                       const std::vector<double>& w, index out, index k, index s, index p,
                                       index groups = 1, bool bias = true) {
  const index Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1, Cg = C / groups, Og = out / groups;
  std::vector<double> y(static_cast<std::size_t>(batch * out * Ho * Wo));
  for (index b = 0; b < batch; ++b)
    for (index o = 0; o < out; ++o)
      for (index i = 0; i < Ho; ++i)
        for (index j = 0; j < Wo; ++j) {
          double acc = bias ? w[static_cast<std::size_t>(out * Cg * k * k + o)] : 0.0;
          const index first = (o / Og) * Cg;
          for (index c = first; c < first + Cg; ++c)
            for (index u = 0; u < k; ++u)
              for (index v = 0; v < k; ++v) {
                const index h = i * s - p + u, q = j * s - p + v;
                if (h < 0 || h >= H || q < 0 || q >= W) continue;
                acc += w[static_cast<std::size_t>(((o * Cg + (c - first)) * k + u) * k + v)] *
                       x[static_cast<std::size_t>(((b * C + c) * H + h) * W + q)];
              }
          y[static_cast<std::size_t>(((b * out + o) * Ho + i) * Wo + j)] = acc;
        }
  return y;
}
} // namespace

TEST_CASE("Conv2d forward equals a direct convolution (stride, padding, channels, groups, bias)") {
  struct shape {
    index C, H, W, out, k, s, p, groups = 1;
    bool bias = true;
  };
  // Ungrouped with a bias, then grouped and depthwise (groups = C), with and without a bias.
  for (const auto& sh : {shape{1, 5, 5, 2, 3, 1, 0}, shape{3, 6, 5, 4, 3, 2, 1}, shape{2, 7, 7, 3, 5, 1, 2},
                         shape{2, 4, 6, 1, 2, 2, 0}, shape{4, 5, 5, 6, 3, 1, 1, 2, true},
                         shape{4, 6, 5, 4, 3, 2, 1, 4, false}, shape{3, 5, 5, 6, 3, 1, 1, 3, false},
                         shape{6, 4, 4, 3, 2, 1, 0, 3, true}}) {
    CAPTURE(sh.C);
    CAPTURE(sh.k);
    CAPTURE(sh.groups);
    CAPTURE(sh.bias);
    Conv2d<double> conv(sh.C, sh.H, sh.W, sh.out, sh.k, sh.s, sh.p, {.groups = sh.groups, .bias = sh.bias});
    const index batch = 3;
    const auto x = normal_vector(static_cast<std::size_t>(batch * sh.C * sh.H * sh.W), 1);
    const auto w = normal_vector(static_cast<std::size_t>(conv.parameter_count()), 2);
    std::vector<double> y(static_cast<std::size_t>(batch * conv.output_size()));
    conv.forward(w.data(), matrix_view<const double>(x.data(), batch, conv.input_size()),
                 matrix_view<double>(y.data(), batch, conv.output_size()));
    CHECK(relative_error(y, direct_convolution(x, batch, sh.C, sh.H, sh.W, w, sh.out, sh.k, sh.s, sh.p, sh.groups,
                                               sh.bias)) <= 1e-14);
  }
}

TEST_CASE("grouped Conv2d counts PyTorch's parameters and refuses groups that do not divide the channels") {
  // nn.Conv2d(4, 6, 3, groups=2): weight 6 × 2 × 3 × 3, bias 6; MobileNetV2's depthwise
  // nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False): weight 32 × 1 × 3 × 3.
  CHECK(Conv2d<double>(4, 8, 8, 6, 3, 1, 0, {.groups = 2}).parameter_count() == 6 * 2 * 9 + 6);
  const Conv2d<double> depthwise(32, 16, 16, 32, 3, 1, 1, {.groups = 32, .bias = false});
  CHECK(depthwise.parameter_count() == 32 * 9);
  CHECK(depthwise.groups() == 32);
  CHECK_FALSE(depthwise.has_bias());
  CHECK_THROWS_WITH_AS(Conv2d<double>(4, 8, 8, 6, 3, 1, 0, {.groups = 3}),
                       doctest::Contains("groups 3 must be positive and divide both 4 input and 6 output channels"),
                       invalid_argument);
  CHECK_THROWS_AS(Conv2d<double>(4, 8, 8, 6, 3, 1, 0, {.groups = 0}), invalid_argument);
}

TEST_CASE("grouped and depthwise convolutions without bias pass every derivative check") {
  // grouped (2 groups, with bias) → tanh → depthwise (groups = channels, no bias, stride 2) →
  // sigmoid → dense: the depthwise layer sees a tangent input, so every grouped product is probed.
  using Net = Sequential<Conv2d<double>, Tanh<double>, Conv2d<double>, Sigmoid<double>, Dense<double>>;
  Net net(Conv2d<double>(2, 5, 5, 4, 3, 1, 1, {.groups = 2}), Tanh<double>(),
          Conv2d<double>(4, 5, 5, 4, 3, 2, 1, {.groups = 4, .bias = false}), Sigmoid<double>(),
          Dense<double>(4 * 3 * 3, 3));
  SoftmaxCrossEntropy<double> loss;
  const auto b = random_batch(3, 2 * 5 * 5, 3, 45);
  check_model_derivatives(net, loss, b, normal_vector(static_cast<std::size_t>(net.parameter_count()), 46, 0.5));
}

TEST_CASE("Conv2d's parameters are PyTorch's: weight out × in × kh × kw, then bias") {
  Conv2d<double> conv1(1, 28, 28, 6, 5, 1, 2);
  CHECK(conv1.parameter_count() == 6 * 1 * 5 * 5 + 6);
  CHECK(conv1.output_size() == 6 * 28 * 28);
  Conv2d<double> conv2(6, 14, 14, 16, 5);
  CHECK(conv2.parameter_count() == 16 * 6 * 25 + 16);
  CHECK(conv2.output_size() == 16 * 10 * 10);
  CHECK_THROWS_AS(Conv2d<double>(1, 3, 3, 2, 5), invalid_argument);
  CHECK_THROWS_AS(Conv2d<double>(0, 3, 3, 2, 1), invalid_argument);
}

TEST_CASE("a convolutional model passes every derivative check") {
  // conv (padding 1) → tanh → conv (stride 2) → dense: both convolutions see a tangent input
  // except the first, and the second receives R{x} ≠ 0.
  using Net = Sequential<Conv2d<double>, Tanh<double>, Conv2d<double>, Sigmoid<double>, Dense<double>>;
  Net net(Conv2d<double>(2, 5, 5, 3, 3, 1, 1), Tanh<double>(), Conv2d<double>(3, 5, 5, 2, 3, 2, 0), Sigmoid<double>(),
          Dense<double>(2 * 2 * 2, 3));
  SoftmaxCrossEntropy<double> loss;
  const auto b = random_batch(3, 2 * 5 * 5, 3, 41);
  check_model_derivatives(net, loss, b, normal_vector(static_cast<std::size_t>(net.parameter_count()), 42, 0.4));
}

TEST_CASE("a model that starts and ends with a convolution passes every derivative check") {
  using Net = Sequential<Conv2d<double>, Tanh<double>, Conv2d<double>>;
  Net net(Conv2d<double>(1, 4, 4, 2, 2, 1, 0), Tanh<double>(), Conv2d<double>(2, 3, 3, 3, 3, 1, 0));  // 3 outputs
  MeanSquaredError<double> loss;
  const auto b = random_batch(4, 16, 3, 43, /*real_targets=*/true);
  check_model_derivatives(net, loss, b, normal_vector(static_cast<std::size_t>(net.parameter_count()), 44, 0.5));
}

TEST_CASE("Conv2d in float agrees with double") {
  using NetF = Sequential<Conv2d<float>, Tanh<float>, Dense<float>>;
  using NetD = Sequential<Conv2d<double>, Tanh<double>, Dense<double>>;
  NetF nf(Conv2d<float>(2, 6, 6, 4, 3, 1, 1), Tanh<float>(), Dense<float>(4 * 36, 5));
  NetD nd(Conv2d<double>(2, 6, 6, 4, 3, 1, 1), Tanh<double>(), Dense<double>(4 * 36, 5));
  SoftmaxCrossEntropy<float> lf;
  SoftmaxCrossEntropy<double> ld;
  const auto b = random_batch(6, 72, 5, 45);
  const auto w = normal_vector(static_cast<std::size_t>(nd.parameter_count()), 46, 0.2);
  const index P = nd.parameter_count();
  const auto xf = cast<float>(b.x);
  const auto wf = cast<float>(w);
  std::vector<float> gf(static_cast<std::size_t>(P));
  nf.gradient(vector_view<const float>(wf.data(), P), matrix_view<const float>(xf.data(), b.rows, b.cols),
              {b.labels.data(), {}}, lf, vector_view<float>(gf.data(), P));
  // float rounding (6e-8) over sums of ~100 terms: 1e-5 relative.
  CHECK(relative_error(cast<double>(gf), gradient_at(nd, ld, b, w)) <= 1e-5);
}

} // namespace hydra::test
