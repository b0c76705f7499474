#pragma once
// FLOP counts of model derivatives, shared by the benchmark executables. A model is described by
// the multiply-adds per sample of each of its layers with parameters, in order (`macs`): in·out for
// a Dense layer, (out·Ho·Wo)·(C/groups·kh·kw) for a Conv2d (conv_macs; densenet_macs and
// mobilenet_v2_macs list them for the two networks). `widths` is the Dense chain of an Mlp,
// inputs → hidden… → outputs (784 → 256 → 10 is {784, 256, 10}). The counts are GEMMs only,
// 2 FLOPs per multiply-add; elementwise work (activations, pooling, batch norms, bias adds, the
// loss) is left out. Derivation: docs/performance.md, "Dense models (CPU)".

#include <cstddef>
#include <span>
#include <vector>

#include "hydra/core/types.hpp"

namespace hydra::bench {

/// The multiply-adds per sample of each Dense layer of a chain: in·out.
inline std::vector<double> dense_macs(std::span<const index> widths) {
  std::vector<double> macs;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) macs.push_back(static_cast<double>(widths[l] * widths[l + 1]));
  return macs;
}

/// FLOPs of one model.hessian_vector_products call (batch B, k directions), counting GEMMs only
/// (2 FLOPs per multiply-add) and ignoring elementwise work (bias adds, ReLU masks, the softmax
/// Hessian product, column sums). For a layer of n multiply-adds per sample (Dense in→out: n = in·out;
/// Conv2d the same terms as GEMMs against im2col columns), from dense.hpp, conv2d.hpp and network.hpp:
///   first order   forward  y = x Wᵀ                                   2·B·n
///                 backward d_x = d_y W        (only if a layer with parameters lies below)  2·B·n
///                 (no weight gradient: backward is called with grad = nullptr)
///   tangent       r_x Wᵀ                      (only if r_x ≠ 0)        2·k·B·n
///                 x R{W}_jᵀ, j < k            (gemm_batched)           2·k·B·n
///   second_backward R{d_y}_jᵀ x, j < k                                 2·k·B·n
///                 d_yᵀ r_x,j                  (only if r_x ≠ 0)        2·k·B·n
///                 r_d_y W                     (only if a layer lies below)  2·k·B·n
///                 d_y R{W}_j                  (only if a layer lies below)  2·k·B·n
/// The first layer has r_x = 0 and nothing below it, every later layer has both, so
///   first layer:  2·B·n + 4·k·B·n        later layers:  4·B·n + 12·k·B·n.
/// For 784→256→10 at B = 64: 2·64·(200704 + 2·2560) + 64·k·(4·200704 + 12·2560)
///                         = 2.63e7 + 5.33e7·k  (k = 256: 1.37e10).
inline double hvp_flops(std::span<const double> macs, index batch, index k) {
  const double B = static_cast<double>(batch);
  const double K = static_cast<double>(k);
  double flops = 0;
  for (std::size_t l = 0; l < macs.size(); ++l)
    flops += l == 0 ? 2 * B * macs[l] + 4 * K * B * macs[l] : 4 * B * macs[l] + 12 * K * B * macs[l];
  return flops;
}
inline double hvp_flops(std::span<const index> widths, index batch, index k) {
  return hvp_flops(dense_macs(widths), batch, k);
}

/// FLOPs of one model.gradient call, and of one per_sample_gradients call (the same GEMMs, split by
/// sample): forward 2·B·n per layer, weight gradient δᵀx 2·B·n per layer, d_x = δ W 2·B·n per
/// layer above the first.
inline double gradient_flops(std::span<const double> macs, index batch) {
  const double B = static_cast<double>(batch);
  double flops = 0;
  for (std::size_t l = 0; l < macs.size(); ++l) flops += (l == 0 ? 4 : 6) * B * macs[l];
  return flops;
}
inline double gradient_flops(std::span<const index> widths, index batch) {
  return gradient_flops(dense_macs(widths), batch);
}

/// FLOPs of one per_sample_gradients call of a model whose samples are coupled (batch norms on
/// batch statistics, network.hpp's coupled_per_sample_gradients): one forward pass, then one
/// backward pass per sample over the whole batch (its δ reaches every row through the batch
/// statistics), each computing every layer's weight gradient and d_x above the first layer.
inline double coupled_per_sample_gradient_flops(std::span<const double> macs, index batch) {
  const double B = static_cast<double>(batch);
  double flops = 0;
  for (std::size_t l = 0; l < macs.size(); ++l) flops += 2 * B * macs[l] + B * (l == 0 ? 2 : 4) * B * macs[l];
  return flops;
}

/// Multiply-adds per sample of one Conv2d: each of the out·Ho·Wo outputs is a dot product over its
/// group's (C / groups)·k² patch (the GEMM W_g (out/G × C/G·k²) · im2col_g (C/G·k² × Ho·Wo) per
/// group, summed over the G groups).
inline double conv_macs(index in_channels, index out_channels, index kernel, index out_side, index groups = 1) {
  return static_cast<double>(out_channels) * static_cast<double>(out_side * out_side) *
         static_cast<double>(in_channels / groups * kernel * kernel);
}

/// Per-layer multiply-adds per sample of hydra::DenseNet (include/hydra/nn/densenet.hpp), layers
/// with parameters in forward order (batch norms left out: elementwise), for square `image` inputs
/// of `channels` channels. With L = (depth − 4)/6 bottleneck layers per block, c the running channel
/// count (2·growth after the stem) and s the side (image, then halved by each transition):
///   stem        Conv 3 × 3, channels → 2g at s × s             2g·s²·(channels·9)
///   block layer Conv 1 × 1, c + l·g → 4g, then Conv 3 × 3, 4g → g   4g·s²·(c + l·g) + g·s²·(4g·9)
///   transition  Conv 1 × 1, c → ⌊θ·c⌋ at s × s (before the pool)  ⌊θc⌋·s²·c
///   head        Dense c → classes                                c·classes
/// DenseNet40 (depth 40, g = 12, θ = 0.5, 3 × 32 × 32, 10 classes): 39 convolutions and the Dense,
/// 72 364 032 convolution multiply-adds + 1 320 Dense = 72 365 352 per sample. By hand, block 1's
/// 3 × 3 convolution is 12 outputs × 1 024 pixels × (48·9 = 432) = 5 308 416 multiply-adds per
/// sample (benchmarks/nn/architectures.bench.cpp checks this entry and the total against the
/// Conv2d and Dense layers of the built model).
inline std::vector<double> densenet_macs(index depth = 40, index growth = 12, double compression = 0.5,
                                         index image = 32, index channels = 3, index classes = 10) {
  const index per_block = (depth - 4) / 6, g = growth;
  index c = 2 * g, side = image;
  std::vector<double> macs{conv_macs(channels, c, 3, side)};
  for (index block = 0; block < 3; ++block) {
    for (index l = 0; l < per_block; ++l) {
      macs.push_back(conv_macs(c + l * g, 4 * g, 1, side));
      macs.push_back(conv_macs(4 * g, g, 3, side));
    }
    c += per_block * g;
    if (block < 2) {
      const auto out = static_cast<index>(static_cast<double>(c) * compression);
      macs.push_back(conv_macs(c, out, 1, side));
      c = out;
      side /= 2;
    }
  }
  macs.push_back(static_cast<double>(c * classes));
  return macs;
}

/// Per-layer multiply-adds per sample of hydra::MobileNetV2 at width 1.0 (torchvision's table; at
/// width 1 every channel count is already a multiple of 8), square `image` inputs:
///   stem      Conv 3 × 3 stride 2, channels → 32: s = ⌊(image − 1)/2⌋ + 1     32·s²·(channels·9)
///   block     (t, c_out, n, stride) rows; hidden = t·c_in; s' = ⌊(s − 1)/stride⌋ + 1
///             expand  Conv 1 × 1, c_in → hidden at s × s (t ≠ 1)        hidden·s²·c_in
///             depthwise Conv 3 × 3, groups = hidden, at s' × s'            hidden·s'²·9
///             project Conv 1 × 1, hidden → c_out at s' × s'              c_out·s'²·hidden
///   last      Conv 1 × 1, 320 → 1280 at s × s                             1280·s²·320
///   head      Dense 1280 → classes
/// At 3 × 32 × 32 the maps are 16 × 16 after the stem and 1 × 1 from the stride-2 row of 160 on:
/// 52 convolutions and the Dense, 6 112 128 convolution multiply-adds + 12 800 Dense per sample.
inline std::vector<double> mobilenet_v2_macs(index image = 32, index channels = 3, index classes = 10) {
  struct row {
    index t, c, n, s;
  };
  constexpr row table[] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                           {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  const auto out_side = [](index side, index stride) { return (side + 2 - 3) / stride + 1; };
  index c = 32, side = out_side(image, 2);
  std::vector<double> macs{conv_macs(channels, c, 3, side)};
  for (const row& r : table)
    for (index i = 0; i < r.n; ++i) {
      const index stride = i == 0 ? r.s : 1, hidden = c * r.t, next = out_side(side, stride);
      if (r.t != 1) macs.push_back(conv_macs(c, hidden, 1, side));
      macs.push_back(conv_macs(hidden, hidden, 3, next, hidden));
      macs.push_back(conv_macs(hidden, r.c, 1, next));
      c = r.c;
      side = next;
    }
  macs.push_back(conv_macs(c, 1280, 1, side));
  macs.push_back(static_cast<double>(1280 * classes));
  return macs;
}

} // namespace hydra::bench
