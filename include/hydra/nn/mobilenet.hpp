#pragma once
// MobileNetV2 (Sandler et al. 2018) as torchvision defines it (torchvision.models.mobilenet_v2),
// the supplement's third network: with num_classes = 10 and width 1.0, 2,236,682 parameters.
//   stem      Conv2d 3 → 32, 3 × 3, stride 2, padding 1-BN-ReLU6
//   17 inverted residual blocks (t, c, n, s) = (1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2)
//             (6,96,3,1) (6,160,3,2) (6,320,1,1), each
//             [Conv2d 1 × 1 (c_in → t·c_in)-BN-ReLU6 when t ≠ 1]-
//             depthwise Conv2d 3 × 3 (stride s on the first of n, padding 1)-BN-ReLU6-
//             Conv2d 1 × 1 (→ c_out)-BN, plus the input when stride 1 and c_in = c_out (Residual)
//   last      Conv2d 1 × 1 (320 → 1280)-BN-ReLU6
//   head      global average pool-Dropout(0.2)-Dense(1280 → classes)
// Convolutions have no bias; channel counts are torchvision's _make_divisible(c·width, 8). The
// flat parameters are parameters_to_vector of torchvision's module. The dropout drops only in the
// trainer's steps (training_mode.hpp), by masks keyed on the step and `dropout_seed`.

#include <cmath>
#include <cstdint>
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
#include "hydra/nn/dropout.hpp"
#include "hydra/nn/dynamic_network.hpp"
#include "hydra/nn/pooling.hpp"

namespace hydra {

/// One row of MobileNetV2's table: expansion t, output channels c, repeats n, first stride s.
struct inverted_residual_setting {
  index expansion, channels, repeats, stride;
};

/// torchvision's MobileNetV2 arguments; the defaults are the supplement's network on CIFAR-10.
struct mobilenet_v2_options {
  index classes = 10;
  double width = 1.0;
  index round_nearest = 8;
  index image = 32;  ///< square inputs of `channels` × image × image
  index channels = 3;
  index stem_channels = 32;
  index last_channels = 1280;
  double dropout = 0.2;            ///< before the classifier, while training
  std::uint64_t dropout_seed = 0;  ///< keys its masks with the training step
  std::vector<inverted_residual_setting> settings{{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                                  {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  batch_norm_options batch_norm{};
};

namespace detail {
/// torchvision's _make_divisible: the multiple of `divisor` nearest v, at least divisor, and not
/// more than 10 % below v.
inline index make_divisible(double v, index divisor) {
  index rounded = std::max(divisor, static_cast<index>(v + static_cast<double>(divisor) / 2) / divisor * divisor);
  if (static_cast<double>(rounded) < 0.9 * v) rounded += divisor;
  return rounded;
}

template <Scalar T, Backend B>
std::vector<any_layer<T, B>> mobilenet_v2_layers(const mobilenet_v2_options& o) {
  if (o.classes <= 0 || !(o.width > 0) || o.round_nearest <= 0 || o.image <= 0 || o.channels <= 0 ||
      o.stem_channels <= 0 || o.last_channels <= 0 || o.settings.empty())
    throw invalid_argument("hydra::MobileNetV2: classes, width, rounding, image, channels and the stem and last "
                           "channel counts must be positive, and there must be a block setting");
  const conv_options no_bias{.groups = 1, .bias = false};
  auto bn = [&](index channels, index s) { return BatchNorm2d<T, B>(channels, s, s, o.batch_norm); };
  auto out_side = [](index side, index kernel, index stride) { return (side + 2 * (kernel / 2) - kernel) / stride + 1; };

  std::vector<any_layer<T, B>> net;
  index c = make_divisible(static_cast<double>(o.stem_channels) * o.width, o.round_nearest);
  index side = out_side(o.image, 3, 2);
  net.emplace_back(Chain<T, B>(Conv2d<T, B>(o.channels, o.image, o.image, c, 3, 2, 1, no_bias), bn(c, side),
                               ReLU6<T, B>()));
  for (const auto& s : o.settings) {
    if (s.expansion <= 0 || s.channels <= 0 || s.repeats <= 0 || s.stride <= 0)
      throw invalid_argument("hydra::MobileNetV2: a block setting (t, c, n, s) must be positive");
    const index out = make_divisible(static_cast<double>(s.channels) * o.width, o.round_nearest);
    for (index i = 0; i < s.repeats; ++i) {
      const index stride = i == 0 ? s.stride : 1;
      const auto hidden = static_cast<index>(std::lround(static_cast<double>(c * s.expansion)));
      const index next = out_side(side, 3, stride);
      std::vector<any_layer<T, B>> body;
      if (s.expansion != 1) {
        body.emplace_back(Conv2d<T, B>(c, side, side, hidden, 1, 1, 0, no_bias));
        body.emplace_back(bn(hidden, side));
        body.emplace_back(ReLU6<T, B>());
      }
      body.emplace_back(Conv2d<T, B>(hidden, side, side, hidden, 3, stride, 1, {.groups = hidden, .bias = false}));
      body.emplace_back(bn(hidden, next));
      body.emplace_back(ReLU6<T, B>());
      body.emplace_back(Conv2d<T, B>(hidden, next, next, out, 1, 1, 0, no_bias));
      body.emplace_back(bn(out, next));
      if (stride == 1 && c == out)
        net.emplace_back(Residual<T, B>(Chain<T, B>(std::move(body))));
      else
        net.emplace_back(Chain<T, B>(std::move(body)));
      c = out;
      side = next;
    }
  }
  const index last = make_divisible(static_cast<double>(o.last_channels) * std::max(1.0, o.width), o.round_nearest);
  net.emplace_back(Chain<T, B>(Conv2d<T, B>(c, side, side, last, 1, 1, 0, no_bias), bn(last, side), ReLU6<T, B>(),
                               GlobalAvgPool2d<T, B>(last, side, side), Dropout<T, B>(last, o.dropout, o.dropout_seed),
                               Dense<T, B>(last, o.classes)));
  return net;
}
} // namespace detail

template <Scalar T, Backend B = default_backend>
class MobileNetV2 : public Network<T, B> {
public:
  static constexpr index cifar10_parameters = 2236682;
  explicit MobileNetV2(const mobilenet_v2_options& options = {})
      : Network<T, B>(detail::mobilenet_v2_layers<T, B>(options)), options_(options) {}
  [[nodiscard]] const mobilenet_v2_options& options() const noexcept { return options_; }

private:
  mobilenet_v2_options options_;
};

} // namespace hydra
