#pragma once
// DenseNet-BC (Huang et al. 2017) as the paper's CIFAR-10 network: DenseNet40 is depth 40,
// growth 12, compression 0.5, bottleneck layers, 176,122 trainable parameters on 3 × 32 × 32:
//   stem       Conv2d 3 → 2g, 3 × 3, padding 1
//   3 blocks   of n = (depth − 4) / 6 bottleneck layers, each
//              BN-ReLU-Conv2d 1 × 1 (c → 4g)-BN-ReLU-Conv2d 3 × 3 (4g → g, padding 1),
//              its output concatenated behind its input (DenseBlock)
//   2 transitions BN-ReLU-Conv2d 1 × 1 (c → ⌊c·θ⌋)-AvgPool2d 2, between the blocks
//   head       BN-ReLU-global average pool-Dense(c → classes)
// Convolutions have no bias; the 39 batch norms' γ, β are parameters. The flat parameter vector
// is parameters_to_vector of the same PyTorch module (modules in the order above, each conv's
// weight, each batch norm's weight then bias, the Linear's weight then bias).

#include <string>
#include <vector>

#include "hydra/backend/concepts.hpp"
#include "hydra/backend/fwd.hpp"
#include "hydra/core/error.hpp"
#include "hydra/nn/activation.hpp"
#include "hydra/nn/batch_norm.hpp"
#include "hydra/nn/blocks.hpp"
#include "hydra/nn/chain.hpp"
#include "hydra/nn/conv2d.hpp"
#include "hydra/nn/dense.hpp"
#include "hydra/nn/dynamic_network.hpp"
#include "hydra/nn/pooling.hpp"

namespace hydra {

/// The DenseNet-BC family; the defaults are DenseNet40 on CIFAR-10. Smaller members (depth 10,
/// growth 2, 8 × 8 images) are what the derivative tests run.
struct densenet_options {
  index depth = 40;
  index growth = 12;
  double compression = 0.5;
  index classes = 10;
  index channels = 3;
  index image = 32;  ///< square images; a multiple of 4 (two transitions halve it)
  batch_norm_options batch_norm{};
};

namespace detail {
template <Scalar T, Backend B>
std::vector<any_layer<T, B>> densenet_layers(const densenet_options& o) {
  if (o.depth < 10 || (o.depth - 4) % 6 != 0 || o.growth <= 0 || o.classes <= 0 || o.channels <= 0 || o.image <= 0 ||
      o.image % 4 != 0 || !(o.compression > 0 && o.compression <= 1))
    throw invalid_argument("hydra::DenseNet: depth " + std::to_string(o.depth) + " must be 6n + 4 (n ≥ 1), growth " +
                           std::to_string(o.growth) + ", classes, channels positive, image " +
                           std::to_string(o.image) + " a positive multiple of 4, compression " +
                           std::to_string(o.compression) + " in (0, 1]");
  const index per_block = (o.depth - 4) / 6, g = o.growth, bottleneck = 4 * g;
  const conv_options no_bias{.groups = 1, .bias = false};
  index c = 2 * g, side = o.image;
  auto bn = [&](index channels, index s) { return BatchNorm2d<T, B>(channels, s, s, o.batch_norm); };

  std::vector<any_layer<T, B>> net;
  net.emplace_back(Conv2d<T, B>(o.channels, side, side, c, 3, 1, 1, no_bias));
  for (index block = 0; block < 3; ++block) {
    std::vector<any_layer<T, B>> layers;
    for (index l = 0; l < per_block; ++l) {
      const index in = c + l * g;
      layers.emplace_back(Chain<T, B>(bn(in, side), ReLU<T, B>(), Conv2d<T, B>(in, side, side, bottleneck, 1, 1, 0, no_bias),
                                      bn(bottleneck, side), ReLU<T, B>(),
                                      Conv2d<T, B>(bottleneck, side, side, g, 3, 1, 1, no_bias)));
    }
    net.emplace_back(DenseBlock<T, B>(c, side * side, g, std::move(layers)));
    c += per_block * g;
    if (block < 2) {
      const auto out = static_cast<index>(static_cast<double>(c) * o.compression);
      net.emplace_back(Chain<T, B>(bn(c, side), ReLU<T, B>(), Conv2d<T, B>(c, side, side, out, 1, 1, 0, no_bias),
                                   AvgPool2d<T, B>(out, side, side, 2)));
      c = out;
      side /= 2;
    }
  }
  net.emplace_back(Chain<T, B>(bn(c, side), ReLU<T, B>(), GlobalAvgPool2d<T, B>(c, side, side), Dense<T, B>(c, o.classes)));
  return net;
}
} // namespace detail

template <Scalar T, Backend B = default_backend>
class DenseNet : public Network<T, B> {
public:
  explicit DenseNet(const densenet_options& options = {})
      : Network<T, B>(detail::densenet_layers<T, B>(options)), options_(options) {}
  [[nodiscard]] const densenet_options& options() const noexcept { return options_; }

private:
  densenet_options options_;
};

/// The paper's CIFAR-10 network (its supplement; the authors' model): 176,122 parameters.
template <Scalar T, Backend B = default_backend>
class DenseNet40 : public DenseNet<T, B> {
public:
  static constexpr index parameters = 176122;
  explicit DenseNet40(batch_norm_options batch_norm = {}) : DenseNet<T, B>(densenet_options{.batch_norm = batch_norm}) {}
};

} // namespace hydra
