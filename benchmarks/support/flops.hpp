#pragma once
// FLOP counts of the dense-model derivatives, shared by the benchmark executables
// (benchmarks/nn/network.bench.cpp, benchmarks/hypergradient/tracker.bench.cpp). `widths` is the
// Dense chain of an Mlp, inputs → hidden… → outputs (784 → 256 → 10 is {784, 256, 10}); the counts
// are GEMMs only, 2 FLOPs per multiply-add. Derivation: docs/performance.md, "Dense models (CPU)".

#include <cstddef>
#include <span>

#include "hydra/core/types.hpp"

namespace hydra::bench {

/// Σ over Dense layers of in·out.
constexpr double dense_macs(std::span<const index> widths) {
  double n = 0;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) n += static_cast<double>(widths[l] * widths[l + 1]);
  return n;
}

/// FLOPs of one model.hessian_vector_products call (batch B, k directions), counting GEMMs only
/// (2 FLOPs per multiply-add) and ignoring elementwise work (bias adds, ReLU masks, the softmax
/// Hessian product, column sums). For a Dense layer in→out, n = in·out, from dense.hpp and
/// network.hpp:
///   first order   forward  y = x Wᵀ                                   2·B·n
///                 backward d_x = d_y W        (only if a Dense lies below)  2·B·n
///                 (no weight gradient: backward is called with grad = nullptr)
///   tangent       r_x Wᵀ                      (only if r_x ≠ 0)        2·k·B·n
///                 x R{W}_jᵀ, j < k            (gemm_batched)           2·k·B·n
///   second_backward R{d_y}_jᵀ x, j < k                                 2·k·B·n
///                 d_yᵀ r_x,j                  (only if r_x ≠ 0)        2·k·B·n
///                 r_d_y W                     (only if a Dense lies below)  2·k·B·n
///                 d_y R{W}_j                  (only if a Dense lies below)  2·k·B·n
/// In an Mlp the first Dense has r_x = 0 and nothing below it, every later Dense has both, so
///   first Dense:  2·B·n + 4·k·B·n        later Dense:  4·B·n + 12·k·B·n.
/// For 784→256→10 at B = 64: 2·64·(200704 + 2·2560) + 64·k·(4·200704 + 12·2560)
///                         = 2.63e7 + 5.33e7·k  (k = 256: 1.37e10).
constexpr double hvp_flops(std::span<const index> widths, index batch, index k) {
  const double B = static_cast<double>(batch);
  const double K = static_cast<double>(k);
  double flops = 0;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    const double n = static_cast<double>(widths[l] * widths[l + 1]);
    flops += l == 0 ? 2 * B * n + 4 * K * B * n : 4 * B * n + 12 * K * B * n;
  }
  return flops;
}

/// FLOPs of one model.gradient call: forward 2·B·n per Dense, weight gradient d_yᵀ x 2·B·n per
/// Dense, d_x = d_y W 2·B·n per Dense above the first.
constexpr double gradient_flops(std::span<const index> widths, index batch) {
  const double B = static_cast<double>(batch);
  return 4 * B * dense_macs(widths) + 2 * B * (dense_macs(widths) - static_cast<double>(widths[0] * widths[1]));
}

} // namespace hydra::bench
