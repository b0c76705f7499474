// Composite layers (Chain, Residual, DenseBlock): forward against the same maps written out with
// separate layers, every derivative check of model_checks.hpp with the composites in every
// position (first with parameters, so R{x} = 0; behind another layer; nested), sample-coupled
// models through a test-only batch-centering layer, and the errors.

#include <doctest/doctest.h>

#include <utility>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/nn/activation.hpp"
#include "hydra/nn/blocks.hpp"
#include "hydra/nn/chain.hpp"
#include "hydra/nn/conv2d.hpp"
#include "hydra/nn/dense.hpp"
#include "hydra/nn/flatten.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/pooling.hpp"
#include "hydra/nn/sequential.hpp"
#include "support/messages.hpp"
#include "support/model_checks.hpp"

namespace hydra::test {
namespace {
using D = double;

/// y = x − mean over the batch of x: no parameters, but every sample's output depends on the whole
/// batch, as batch normalisation's does. Its Jacobian is I − 11ᵀ/B per feature, symmetric and
/// constant, so tangent and both backward passes are the same centring, per direction block.
struct batch_centering {
  using scalar_type = D;
  using backend_type = cpu;
  index width = 0;
  [[nodiscard]] index input_size() const { return width; }
  [[nodiscard]] index output_size() const { return width; }
  [[nodiscard]] static index parameter_count() { return 0; }
  [[nodiscard]] const char* name() const { return "batch_centering"; }
  [[nodiscard]] bool couples_samples() const { return true; }
  template <class U>
  void initialize(D*, U&&) const {}
  static void center(matrix_view<const D> in, index batch, matrix_view<D> out) {
    std::vector<D> means(static_cast<std::size_t>(in.rows / batch * in.cols), 0.0);
    matrix_view<D> m(means.data(), in.rows / batch, in.cols);
    cpu::column_sums_batched(D(-1) / static_cast<D>(batch), in, batch, m);
    cpu::copy(in, out);
    cpu::add_row_vectors(matrix_view<const D>(m), out);
  }
  void forward(const D*, matrix_view<const D> x, matrix_view<D> y) const { center(x, x.rows, y); }
  void backward(const D*, matrix_view<const D> x, matrix_view<const D>, matrix_view<const D> d_y, matrix_view<D> d_x,
                D*) const {
    if (!d_x.empty()) center(d_y, x.rows, d_x);
  }
  void per_sample_gradients(matrix_view<const D>, matrix_view<const D>, matrix_view<D>) const {}
  void tangent(const D*, matrix_view<const D>, matrix_view<const D> x, matrix_view<const D>, matrix_view<const D> r_x,
               matrix_view<D> r_y) const {
    center(r_x, x.rows, r_y);
  }
  void second_backward(const D*, matrix_view<const D>, matrix_view<const D> x, matrix_view<const D>,
                       matrix_view<const D>, matrix_view<const D>, matrix_view<const D> r_d_y, matrix_view<D> r_d_x,
                       matrix_view<D>) const {
    if (!r_d_x.empty()) center(r_d_y, x.rows, r_d_x);
  }
};

/// Scale 0.3 keeps the logits moderate: a sample whose loss is ~1e-8 has a gradient that central
/// differences (rounding ε·ℓ/h) cannot resolve to the 1e-7 the checks ask for.
std::vector<D> parameters_of(index count, unsigned seed, double scale = 0.5) {
  return normal_vector(static_cast<std::size_t>(count), seed, scale);
}

template <class L>
std::vector<D> forward_of(const L& layer, const std::vector<D>& w, const std::vector<D>& x, index rows) {
  std::vector<D> y(static_cast<std::size_t>(rows * layer.output_size()));
  layer.forward(w.data(), matrix_view<const D>(x.data(), rows, layer.input_size()),
                matrix_view<D>(y.data(), rows, layer.output_size()));
  return y;
}
} // namespace

TEST_CASE("Residual and DenseBlock compute what their parts compute, written out") {
  const index rows = 3;
  SUBCASE("residual: body(x) + x and body(x) + projection(x)") {
    const Chain<D> body(Dense<D>(4, 4), Tanh<D>());
    Residual<D> identity(Chain<D>(Dense<D>(4, 4), Tanh<D>()));
    const auto w = parameters_of(identity.parameter_count(), 1);
    const auto x = normal_vector(static_cast<std::size_t>(rows * 4), 2);
    auto expected = forward_of(body, w, x, rows);
    for (std::size_t i = 0; i < x.size(); ++i) expected[i] += x[i];
    CHECK(forward_of(identity, w, x, rows) == expected);

    const Dense<D> projection(4, 3);
    Residual<D> projected(Chain<D>(Dense<D>(4, 3), Sigmoid<D>()), Dense<D>(4, 3));
    const auto v = parameters_of(projected.parameter_count(), 3);
    const std::vector<D> v_body(v.begin(), v.begin() + 15), v_projection(v.begin() + 15, v.end());
    auto sum = forward_of(Chain<D>(Dense<D>(4, 3), Sigmoid<D>()), v_body, x, rows);
    const auto shortcut = forward_of(projection, v_projection, x, rows);
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += shortcut[i];
    CHECK(forward_of(projected, v, x, rows) == sum);
  }
  SUBCASE("dense block: [x, g0(x), g1([x, g0]), g2([x, g0, g1])]") {
    // One pixel per channel, so each layer is a Dense on the concatenated channels.
    const index c0 = 2, growth = 3;
    DenseBlock<D> block(c0, 1, growth,
                        parts<D>(Chain<D>(Dense<D>(2, 3), Tanh<D>()), Chain<D>(Dense<D>(5, 3), Tanh<D>()),
                                 Chain<D>(Dense<D>(8, 3), Tanh<D>())));
    CHECK(block.output_size() == 11);
    CHECK(block.out_channels() == 11);
    const auto w = parameters_of(block.parameter_count(), 4);
    const auto x = normal_vector(static_cast<std::size_t>(rows * c0), 5);
    std::vector<D> expected;
    for (index r = 0; r < rows; ++r) {
      std::vector<D> features(x.begin() + r * c0, x.begin() + (r + 1) * c0);
      index offset = 0;
      for (index in : {2, 5, 8}) {
        const index count = 3 * in + 3;
        const std::vector<D> wl(w.begin() + offset, w.begin() + offset + count);
        const auto g = forward_of(Chain<D>(Dense<D>(in, 3), Tanh<D>()), wl, features, 1);
        features.insert(features.end(), g.begin(), g.end());
        offset += count;
      }
      expected.insert(expected.end(), features.begin(), features.end());
    }
    CHECK(forward_of(block, w, x, rows) == expected);
  }
}

TEST_CASE("a chain inside a model passes every derivative check, first and behind another layer, nested") {
  SoftmaxCrossEntropy<D> loss;
  const auto b = random_batch(4, 5, 3, 11);
  SUBCASE("first") {
    Sequential<Chain<D>, Dense<D>> net(Chain<D>(Dense<D>(5, 4), Tanh<D>(), Dense<D>(4, 4), Sigmoid<D>()),
                                       Dense<D>(4, 3));
    check_model_derivatives(net, loss, b, parameters_of(net.parameter_count(), 12));
  }
  SUBCASE("behind a layer, nested, with parameter-free parts first") {
    Chain<D> inner(Tanh<D>(4), Dense<D>(4, 4), Sigmoid<D>());
    Sequential<Dense<D>, Chain<D>, Dense<D>> net(Dense<D>(5, 4), Chain<D>(ReLU<D>(4), std::move(inner), Tanh<D>()),
                                                 Dense<D>(4, 3));
    check_model_derivatives(net, loss, b, parameters_of(net.parameter_count(), 13));
  }
}

TEST_CASE("residual blocks pass every derivative check (identity and projection shortcuts)") {
  SoftmaxCrossEntropy<D> loss;
  const auto b = random_batch(3, 5, 3, 21);
  SUBCASE("identity shortcut behind a layer") {
    Sequential<Dense<D>, Residual<D>, Dense<D>> net(
        Dense<D>(5, 4), Residual<D>(Chain<D>(Tanh<D>(4), Dense<D>(4, 4), Sigmoid<D>())), Dense<D>(4, 3));
    check_model_derivatives(net, loss, b, parameters_of(net.parameter_count(), 22));
  }
  SUBCASE("projection shortcut first in the model (R{x} = 0) and nested residuals") {
    Residual<D> inner(Chain<D>(Dense<D>(4, 4), Tanh<D>()));
    Sequential<Residual<D>, Residual<D>, Dense<D>> net(
        Residual<D>(Chain<D>(Dense<D>(5, 4), Tanh<D>()), Dense<D>(5, 4)),
        Residual<D>(Chain<D>(std::move(inner), Sigmoid<D>())),
        Dense<D>(4, 3));
    check_model_derivatives(net, loss, b, parameters_of(net.parameter_count(), 23));
  }
}

TEST_CASE("a convolutional dense block passes every derivative check, first and behind a convolution") {
  // 2 channels of 4 × 4, growth 2, three layers tanh → 3 × 3 conv (padding 1) to 2 channels.
  auto layers = [](index c0) {
    std::vector<any_layer<D>> parts;
    for (index l = 0; l < 3; ++l)
      parts.emplace_back(Chain<D>(Tanh<D>((c0 + 2 * l) * 16), Conv2d<D>(c0 + 2 * l, 4, 4, 2, 3, 1, 1)));
    return parts;
  };
  SoftmaxCrossEntropy<D> loss;
  SUBCASE("first") {
    Sequential<DenseBlock<D>, GlobalAvgPool2d<D>, Dense<D>> net(DenseBlock<D>(2, 16, 2, layers(2)),
                                                                 GlobalAvgPool2d<D>(8, 4, 4), Dense<D>(8, 3));
    const auto b = random_batch(3, 2 * 16, 3, 31);
    check_model_derivatives(net, loss, b, parameters_of(net.parameter_count(), 32));
  }
  SUBCASE("behind a convolution, with a 1 × 1 convolution after it") {
    Sequential<Conv2d<D>, DenseBlock<D>, Conv2d<D>, Flatten<D>, Dense<D>> net(
        Conv2d<D>(1, 4, 4, 3, 3, 1, 1), DenseBlock<D>(3, 16, 2, layers(3)), Conv2d<D>(9, 4, 4, 2, 1), Flatten<D>(),
        Dense<D>(32, 3));
    const auto b = random_batch(3, 16, 3, 33);
    check_model_derivatives(net, loss, b, parameters_of(net.parameter_count(), 34, 0.3));
  }
}

TEST_CASE("a model whose samples are coupled gets exact per-sample gradients, one backward pass each") {
  // Centring over the batch makes sample b's loss depend on every sample: the per-sample gradient
  // checks difference sample b's loss inside its batch, and fail for a batched backward pass.
  SoftmaxCrossEntropy<D> loss;
  const auto b = random_batch(4, 5, 3, 41);
  Sequential<Dense<D>, batch_centering, Chain<D>> net(Dense<D>(5, 4), batch_centering{4},
                                                      Chain<D>(Tanh<D>(4), Dense<D>(4, 3)));
  CHECK(net.couples_samples());
  check_model_derivatives(net, loss, b, parameters_of(net.parameter_count(), 42));

  const Chain<D> nested(Dense<D>(5, 4), batch_centering{4});
  CHECK(nested.couples_samples());
  CHECK(Residual<D>(Chain<D>(batch_centering{5})).couples_samples());
  CHECK_FALSE(Chain<D>(Dense<D>(5, 4)).couples_samples());
}

TEST_CASE("for_each_layer reaches layers inside composites") {
  Sequential<Dense<D>, Chain<D>, Residual<D>> net(
      Dense<D>(3, 4), Chain<D>(Tanh<D>(4), Dense<D>(4, 4)),
      Residual<D>(Chain<D>(Dense<D>(4, 4), Chain<D>(Dense<D>(4, 4), Tanh<D>()))));
  index dense = 0, tanh = 0;
  for_each_layer<Dense<D>>(net, [&](Dense<D>& layer) { dense += layer.input_size() == 4 ? 1 : 10; });
  for_each_layer<Tanh<D>>(net, [&](Tanh<D>&) { ++tanh; });
  CHECK(dense == 13);  // the model's own first Dense (3 inputs) and the three inside
  CHECK(tanh == 2);
}

TEST_CASE("composites refuse parts that do not fit, naming them") {
  CHECK(message_of<shape_error>([] { Chain<D>(Dense<D>(3, 4), Dense<D>(5, 2)); }) ==
        "hydra::Chain: part 1 (Dense) takes 5 inputs but part 0 (Dense) gives 4");
  CHECK_THROWS_AS(Chain<D>(std::vector<any_layer<D>>{}), invalid_argument);
  CHECK(contains(message_of<invalid_argument>([] { Chain<D>(Tanh<D>(), Dense<D>(3, 2)); }), "part 0 (tanh)"));
  CHECK(contains(message_of<shape_error>([] { Residual<D>(Chain<D>(Dense<D>(3, 4))); }), "maps 3 to 4"));
  CHECK(contains(message_of<shape_error>([] { Residual<D>(Dense<D>(3, 4), Dense<D>(3, 5)); }),
                 "the projection maps 3 to 5, the body 3 to 4"));
  CHECK(message_of<shape_error>([] { DenseBlock<D>(2, 1, 3, parts<D>(Dense<D>(2, 3), Dense<D>(4, 3))); }) ==
        "hydra::DenseBlock: layer 1 (Dense) maps 4 to 3 values, expected 5 to 3");
  CHECK_THROWS_AS(DenseBlock<D>(2, 1, 0, parts<D>(Dense<D>(2, 3))), invalid_argument);
}

} // namespace hydra::test
