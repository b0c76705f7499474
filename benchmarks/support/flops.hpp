#pragma once
// FLOP counts of model derivatives, shared by the benchmark executables. A model is described by
// the multiply-adds per sample of each of its layers with parameters, in order (`macs`): in·out for
// a Dense layer, (out·Ho·Wo)·(C·kh·kw) for a Conv2d. `widths` is the Dense chain of an Mlp, inputs →
// hidden… → outputs (784 → 256 → 10 is {784, 256, 10}). The counts are GEMMs only, 2 FLOPs per
// multiply-add; elementwise work (activations, pooling, bias adds, the loss) is left out.
// Derivation: docs/performance.md, "Dense models (CPU)".

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

} // namespace hydra::bench
