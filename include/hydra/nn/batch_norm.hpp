#pragma once
// BatchNorm2d: PyTorch's nn.BatchNorm2d (affine) on inputs stored one sample per row as C × H × W,
// with exact first and second derivatives. Parameters: weight γ (C), then bias β (C), PyTorch's
// parameters_to_vector order; running_mean and running_var are buffers, not parameters.
//
// Per channel c, over the n values it has in the batch (n = B·H·W in batch mode):
//   batch statistics (PyTorch's train mode):  μ = mean(x), σ² = mean((x − μ)²) (biased),
//     s = 1/√(σ² + eps), x̂ = (x − μ)·s, y = γ·x̂ + β.
//   running statistics (PyTorch's eval mode): s = 1/√(running_var + eps),
//     x̂ = (x − running_mean)·s, y = γ·x̂ + β: a per-channel affine map, separable per sample.
//
// In batch mode x̂ depends on every value of its channel, through μ and s. Its Jacobian is the
// symmetric per-channel map J u = s·(u − mean(u) − x̂·mean(x̂·u)), so (g = ∂L/∂y)
//   backward:  dγ = Σ g·x̂, dβ = Σ g, dx = J(γ·g) = s·(γg − mean(γg) − x̂·mean(x̂·γg))
//   tangent:   R{x̂} = J R{x},  R{y} = R{γ}·x̂ + γ·R{x̂} + R{β}
//   second backward (u = γg, ũ = R{γ}·g + γ·R{g}):
//     hv_γ += Σ (R{g}·x̂ + g·R{x̂}),  hv_β += Σ R{g},  R{dx} = J ũ + R{J} u,
//     R{J} u = −s·mean(x̂·R{x})·(J u) − s·R{x̂}·mean(x̂·u) − s·x̂·mean(R{x̂}·u)
// (R{s} = −s²·mean(x̂·R{x}) and R{x̂} = J R{x} give R{J}; eps does not change either). Expanded
// over the four arrays R{g}, g, x̂, R{x} with per-(direction, channel) coefficients (means over the
// channel's n values; m1 = mean(x̂·R{x}), mR = mean(R{x}), q = mean(g·R{x̂})
//   = s·(mean(R{x}·g) − mR·mean(g) − m1·mean(x̂·g))):
//   R{dx} = sγ·R{g} + (s·R{γ} − s²γ·m1)·g − s²γ·mean(x̂g)·R{x}
//         + (−s·mean(x̂g)·R{γ} − sγ·(mean(x̂·R{g}) + q) + 2s²γ·mean(x̂g)·m1)·x̂
//         + (−s·mean(g)·R{γ} − sγ·mean(R{g}) + s²γ·mean(g)·m1 + s²γ·mean(x̂g)·mR)
// Every direction j (rows j·B … of the tangents) has its own R quantities and channel means. In
// running mode J = s·I and R{J} = 0, leaving the passes of an affine map.
//
// The big arrays go through two backend calls (docs/backend.md, "Channels"): channel_sums (one
// pass per mean) and channel_combine (one pass per result); the coefficients above are 1 × C or
// k × C arrays formed by small channel_combine calls with one pixel per channel.
//
// forward keeps x̂ and s (and, in batch mode, −μ and σ²) in mutable workspace, as Conv2d keeps
// its im2col buffers: backward, per_sample_gradients, tangent and second_backward must follow a
// forward on the same batch in the same mode (checked by the batch's row count and the mode).

#include <cmath>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hydra/backend/concepts.hpp"
#include "hydra/backend/fwd.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/core/types.hpp"

namespace hydra {

/// Which statistics normalise: the batch's own (PyTorch's train mode) or the running estimates
/// (PyTorch's eval mode).
enum class batch_norm_statistics { batch, running };

/// PyTorch's nn.BatchNorm2d defaults: running = (1 − momentum)·running + momentum·batch statistic,
/// and eps added to the variance.
struct batch_norm_options {
  double momentum = 0.1;
  double eps = 1e-5;
};

template <Scalar T, Backend B = default_backend>
class BatchNorm2d {
public:
  using scalar_type = T;
  using backend_type = B;

  /// channels × height × width inputs; batch statistics, running_mean = 0, running_var = 1.
  BatchNorm2d(index channels, index height, index width, batch_norm_options options = {})
      : channels_(channels), height_(height), width_(width), options_(options) {
    if (channels <= 0 || height <= 0 || width <= 0)
      throw invalid_argument("hydra::BatchNorm2d: channels and image size must be positive, got " +
                             std::to_string(channels) + " x " + std::to_string(height) + " x " + std::to_string(width));
    if (height > std::numeric_limits<index>::max() / width ||
        channels > std::numeric_limits<index>::max() / (height * width))
      throw invalid_argument("hydra::BatchNorm2d: " + std::to_string(channels) + " x " + std::to_string(height) + " x " +
                             std::to_string(width) + " has more values than an index holds");
    if (!(options.momentum >= 0 && options.momentum <= 1) || !(options.eps >= 0) || !std::isfinite(options.eps))
      throw invalid_argument("hydra::BatchNorm2d: momentum must lie in [0, 1] and eps be finite and non-negative, got "
                             "momentum " + std::to_string(options.momentum) + ", eps " + std::to_string(options.eps));
    running_mean_ = vector<T, B>(channels);  // zeroed
    running_var_ = vector<T, B>(channels);
    B::fill(T(1), running_var_.view());
  }

  [[nodiscard]] index channels() const noexcept { return channels_; }
  [[nodiscard]] index input_size() const noexcept { return channels_ * pixels(); }
  [[nodiscard]] index output_size() const noexcept { return input_size(); }
  [[nodiscard]] index parameter_count() const noexcept { return 2 * channels_; }
  [[nodiscard]] const char* name() const noexcept { return "BatchNorm2d"; }
  [[nodiscard]] const batch_norm_options& options() const noexcept { return options_; }

  [[nodiscard]] batch_norm_statistics statistics() const noexcept { return statistics_; }
  void set_statistics(batch_norm_statistics statistics) noexcept { statistics_ = statistics; }
  /// True in batch mode: sample b's output depends on the whole batch, so a per-sample gradient is
  /// not the batch's backward pass split by rows (the model runs one backward pass per sample).
  [[nodiscard]] bool couples_samples() const noexcept { return statistics_ == batch_norm_statistics::batch; }

  /// Small per-direction workspace of tangent and second_backward: 8 channel coefficients per
  /// direction (the big arrays are written straight into the model's tangent buffers).
  [[nodiscard]] index workspace_per_direction(index /*batch*/) const noexcept { return 8 * channels_; }

  /// PyTorch's default: γ = 1, β = 0 (the uniform draw is not used).
  template <class Uniform>
  void initialize(T* w, Uniform&& /*uniform*/) const {
    for (index c = 0; c < channels_; ++c) {
      w[c] = T(1);
      w[channels_ + c] = T(0);
    }
  }

  /// running = (1 − momentum)·running + momentum·(the last forward's batch statistics), with the
  /// unbiased variance σ²·n/(n − 1) for running_var (n = B·H·W), as PyTorch's train-mode forward
  /// does. Once per forward in batch mode; anything else is an invalid_argument.
  void update_running_statistics() {
    if (!update_pending_)
      throw invalid_argument("hydra::BatchNorm2d::update_running_statistics: no forward pass with batch statistics "
                             "since the last update");
    update_pending_ = false;
    const T m = static_cast<T>(options_.momentum);
    const T unbias = static_cast<T>(static_cast<double>(values_) / static_cast<double>(values_ - 1));
    // running_mean = (1 − m)·running_mean − m·(−μ);  running_var = (1 − m)·running_var + m·n/(n − 1)·σ²
    B::channel_combine(-m, none(), stat(negative_mean), none(), none(), none(), 1, 1, T(1) - m, as_row(running_mean_));
    B::channel_combine(m * unbias, none(), stat(variance), none(), none(), none(), 1, 1, T(1) - m, as_row(running_var_));
  }

  /// Host copies of the running buffers (C values each).
  [[nodiscard]] std::vector<T> running_mean() const { return running_mean_.to_host(); }
  [[nodiscard]] std::vector<T> running_var() const { return running_var_.to_host(); }
  /// Replaces the running buffers (e.g. with PyTorch's): C values each, variances non-negative.
  void set_running_statistics(std::span<const T> mean, std::span<const T> var) {
    if (static_cast<index>(mean.size()) != channels_ || static_cast<index>(var.size()) != channels_)
      throw shape_error("hydra::BatchNorm2d::set_running_statistics: " + std::to_string(mean.size()) + " means and " +
                        std::to_string(var.size()) + " variances for " + std::to_string(channels_) + " channels");
    for (std::size_t c = 0; c < var.size(); ++c)
      if (!(var[c] >= T(0)))
        throw invalid_argument("hydra::BatchNorm2d::set_running_statistics: variance " + std::to_string(var[c]) +
                               " of channel " + std::to_string(c) + " is not a non-negative number");
    B::copy_from_host(mean.data(), channels_, running_mean_.data());
    B::copy_from_host(var.data(), channels_, running_var_.data());
  }

  /// y = γ·x̂ + β, x̂ normalised by the batch's or the running statistics (see the top).
  void forward(const T* w, matrix_view<const T> x, matrix_view<T> y) const {
    const index batch = x.rows, P = pixels();
    auto xhat = resized(xhat_, batch, input_size());
    stats_.resize(3, channels_);
    if (statistics_ == batch_norm_statistics::batch) {
      const index n = batch * P;
      if (n <= 1)
        throw invalid_argument("hydra::BatchNorm2d: batch statistics need more than 1 value per channel, got " +
                               std::to_string(batch) + " sample(s) of " + std::to_string(height_) + " x " +
                               std::to_string(width_) + " (PyTorch: \"Expected more than 1 value per channel when "
                               "training\"); normalise by the running statistics instead");
      const T inv_n = T(1) / static_cast<T>(n);
      B::channel_sums(-inv_n, x, none(), P, batch, T(0), stat_out(negative_mean));       // −μ
      B::channel_combine(T(1), none(), x, none(), none(), stat(negative_mean), P, batch, T(0), xhat);  // x − μ
      B::channel_sums(inv_n, xhat, xhat, P, batch, T(0), stat_out(variance));            // σ² (two-pass)
      B::inverse_sqrt(static_cast<T>(options_.eps), stat(variance), stat_out(inverse_std));  // s
      B::channel_combine(T(1), stat(inverse_std), xhat, none(), none(), none(), P, batch, T(0), xhat);  // x̂
      values_ = n;
      update_pending_ = true;
    } else {
      B::inverse_sqrt(static_cast<T>(options_.eps), as_row(running_var_), stat_out(inverse_std));
      // −s·running_mean, then x̂ = s·x − s·running_mean
      B::channel_combine(T(-1), stat(inverse_std), as_row(running_mean_), none(), none(), none(), 1, 1, T(0),
                         stat_out(negative_mean));
      B::channel_combine(T(1), stat(inverse_std), x, none(), none(), stat(negative_mean), P, batch, T(0), xhat);
      update_pending_ = false;  // the batch statistics in stats_ are gone
    }
    B::channel_combine(T(1), gamma(w), xhat, none(), none(), beta(w), P, batch, T(0), y);
    prepared_rows_ = batch;
    prepared_statistics_ = statistics_;
  }

  /// grad = [Σ g·x̂, Σ g] (when grad is not null); d_x = J(γg) in batch mode, s·γ·g in running mode
  /// (when d_x is not empty).
  void backward(const T* w, matrix_view<const T> x, matrix_view<const T> /*y*/, matrix_view<const T> d_y,
                matrix_view<T> d_x, T* grad) const {
    check_prepared(x, "backward");
    const index batch = x.rows, P = pixels();
    // Row 0: Σ g·x̂, row 1: Σ g — the gradient's own layout [γ, β].
    const matrix_view<T> sums = grad != nullptr ? matrix_view<T>(grad, 2, channels_, channels_)
                                                : resized(sums_, 2, channels_);
    B::channel_sums(T(1), d_y, xhat(), P, batch, T(0), sums.row_block(0, 1));
    B::channel_sums(T(1), d_y, none(), P, batch, T(0), sums.row_block(1, 1));
    if (d_x.empty()) return;
    auto k = resized(vectors_, 3, channels_);
    B::channel_combine(T(1), gamma(w), stat(inverse_std), none(), none(), none(), 1, 1, T(0), k.row_block(0, 1));
    const matrix_view<const T> gs = k.row_block(0, 1);  // γ·s
    if (prepared_statistics_ == batch_norm_statistics::running) {
      B::channel_combine(T(1), gs, d_y, none(), none(), none(), P, batch, T(0), d_x);
      return;
    }
    // dx = γs·g − (γs/n)·Σ(g·x̂)·x̂ − (γs/n)·Σg
    B::channel_combine(T(-1) / static_cast<T>(batch * P), gs, sums, none(), none(), none(), 1, 1, T(0),
                       k.row_block(1, 2));
    B::channel_combine(T(1), gs, d_y, k.row_block(1, 1), xhat(), k.row_block(2, 1), P, batch, T(0), d_x);
  }

  /// Row b of G: [Σ_p d_y,b·x̂_b, Σ_p d_y,b] per channel — the layer's own parameter part for
  /// sample b's δ at this layer. Exact for γ, β given that δ; in batch mode the δ of one sample's
  /// loss reaches every row (couples_samples()), which the model accounts for, not this call.
  void per_sample_gradients(matrix_view<const T> x, matrix_view<const T> d_y, matrix_view<T> G) const {
    check_prepared(x, "per_sample_gradients");
    B::channel_sums(T(1), d_y, xhat(), pixels(), 1, T(0), G.col_block(0, channels_));
    B::channel_sums(T(1), d_y, none(), pixels(), 1, T(0), G.col_block(channels_, channels_));
  }

  /// R{y}_j = R{γ}_j·x̂ + γ·R{x̂}_j + R{β}_j with R{x̂} = J R{x} (batch mode) or s·R{x} (running);
  /// an empty r_x means R{x} = 0.
  void tangent(const T* w, matrix_view<const T> dir, matrix_view<const T> x, matrix_view<const T> /*y*/,
               matrix_view<const T> r_x, matrix_view<T> r_y) const {
    check_prepared(x, "tangent");
    const index batch = x.rows, k = dir.rows, P = pixels();
    const auto r_gamma = dir.col_block(0, channels_), r_beta = dir.col_block(channels_, channels_);
    if (r_x.empty()) {
      B::channel_combine(T(1), r_gamma, xhat(), none(), none(), r_beta, P, batch, T(0), r_y);
      return;
    }
    auto v = resized(vectors_, 1, channels_);
    B::channel_combine(T(1), gamma(w), stat(inverse_std), none(), none(), none(), 1, 1, T(0), v);
    const matrix_view<const T> gs = v;  // γ·s
    if (prepared_statistics_ == batch_norm_statistics::running) {
      B::channel_combine(T(1), gs, r_x, r_gamma, xhat(), r_beta, P, batch, T(0), r_y);
      return;
    }
    // R{y} = γs·R{x} + (R{γ} − γs·m1)·x̂ + (R{β} − γs·mR), m1 = mean(x̂·R{x}), mR = mean(R{x})
    auto m = resized(per_direction_, 2 * k, channels_);
    const auto coef_x = m.row_block(0, k), coef_1 = m.row_block(k, k);
    const T minus_inv_n = T(-1) / static_cast<T>(batch * P);
    B::channel_sums(minus_inv_n, r_x, xhat(), P, batch, T(0), coef_x);  // −m1
    B::channel_sums(minus_inv_n, r_x, none(), P, batch, T(0), coef_1);  // −mR
    B::channel_combine(T(1), gs, coef_x, none(), r_gamma, none(), 1, 1, T(0), coef_x);
    B::channel_combine(T(1), gs, coef_1, none(), r_beta, none(), 1, 1, T(0), coef_1);
    B::channel_combine(T(1), gs, r_x, coef_x, xhat(), coef_1, P, batch, T(0), r_y);
  }

  /// hv_j += [Σ (R{g}_j·x̂ + g·R{x̂}_j), Σ R{g}_j]; R{d_x}_j = J ũ_j + R{J}_j u (batch mode, see the
  /// top) or s·(R{γ}_j·g + γ·R{g}_j) (running mode) when r_d_x is not empty. g = d_y.
  void second_backward(const T* w, matrix_view<const T> dir, matrix_view<const T> x, matrix_view<const T> /*y*/,
                       matrix_view<const T> r_x, matrix_view<const T> d_y, matrix_view<const T> r_d_y,
                       matrix_view<T> r_d_x, matrix_view<T> hv) const {
    check_prepared(x, "second_backward");
    if (prepared_statistics_ == batch_norm_statistics::running)
      running_second_backward(w, dir, x, r_x, d_y, r_d_y, r_d_x, hv);
    else
      batch_second_backward(w, dir, x, r_x, d_y, r_d_y, r_d_x, hv);
  }

private:
  // Rows of stats_ (1 × C each), written by forward.
  static constexpr index negative_mean = 0;  // −μ (batch), −s·running_mean (running)
  static constexpr index variance = 1;       // σ², biased (batch mode only)
  static constexpr index inverse_std = 2;    // s

  index pixels() const noexcept { return height_ * width_; }
  static matrix_view<const T> none() { return {}; }
  matrix_view<const T> gamma(const T* w) const { return {w, 1, channels_, channels_}; }
  matrix_view<const T> beta(const T* w) const { return {w + channels_, 1, channels_, channels_}; }
  matrix_view<const T> stat(index row) const { return std::as_const(stats_).view().row_block(row, 1); }
  matrix_view<T> stat_out(index row) const { return stats_.view().row_block(row, 1); }
  matrix_view<const T> xhat() const { return std::as_const(xhat_).view(); }
  static matrix_view<T> as_row(vector<T, B>& v) { return v.view().as_matrix(1, v.size()); }
  static matrix_view<const T> as_row(const vector<T, B>& v) { return v.view().as_matrix(1, v.size()); }
  static matrix_view<T> resized(matrix<T, B>& m, index rows, index cols) {
    m.resize(rows, cols);
    return m.view();
  }

  void check_prepared(matrix_view<const T> x, const char* pass) const {
    if (prepared_rows_ != x.rows || prepared_statistics_ != statistics_)
      throw invalid_argument(std::string("hydra::BatchNorm2d::") + pass +
                             ": needs a forward pass on the same batch with the same statistics first (its "
                             "normalised input is kept from there)");
  }

  void running_second_backward(const T* w, matrix_view<const T> dir, matrix_view<const T> x, matrix_view<const T> r_x,
                               matrix_view<const T> g, matrix_view<const T> r_g, matrix_view<T> r_d_x,
                               matrix_view<T> hv) const {
    const index batch = x.rows, k = dir.rows, P = pixels();
    const auto r_gamma = dir.col_block(0, channels_);
    const auto s = stat(inverse_std);
    auto hv_gamma = hv.col_block(0, channels_), hv_beta = hv.col_block(channels_, channels_);
    B::channel_sums(T(1), r_g, none(), P, batch, T(1), hv_beta);   // += Σ R{g}
    B::channel_sums(T(1), r_g, xhat(), P, batch, T(1), hv_gamma);  // += Σ R{g}·x̂
    auto m = resized(per_direction_, k, channels_);
    if (!r_x.empty()) {  // += s·Σ g·R{x}
      B::channel_sums(T(1), r_x, g, P, batch, T(0), m);
      B::channel_combine(T(1), s, m, none(), none(), none(), 1, 1, T(1), hv_gamma);
    }
    if (r_d_x.empty()) return;
    // R{dx} = γs·R{g} + (s·R{γ})·g
    auto v = resized(vectors_, 1, channels_);
    B::channel_combine(T(1), gamma(w), s, none(), none(), none(), 1, 1, T(0), v);
    B::channel_combine(T(1), s, r_gamma, none(), none(), none(), 1, 1, T(0), m);
    B::channel_combine(T(1), v, r_g, m, g, none(), P, batch, T(0), r_d_x);
  }

  void batch_second_backward(const T* w, matrix_view<const T> dir, matrix_view<const T> x, matrix_view<const T> r_x,
                             matrix_view<const T> g, matrix_view<const T> r_g, matrix_view<T> r_d_x,
                             matrix_view<T> hv) const {
    const index batch = x.rows, k = dir.rows, P = pixels(), n = batch * P;
    const T inv_n = T(1) / static_cast<T>(n);
    const auto r_gamma = dir.col_block(0, channels_);
    const auto s = stat(inverse_std);
    const auto xh = xhat();
    // 1 × C: mean(g), mean(x̂g), γs, −s²γ, A_R = −s²γ·mean(x̂g), s·mean(x̂g), s·mean(g), −s²γ·mean(g)
    auto v = resized(vectors_, 8, channels_);
    const auto vec = [&](index i) { return v.row_block(i, 1); };
    const auto cvec = [&](index i) { return matrix_view<const T>(v.row_block(i, 1)); };
    enum : index { mean_g, mean_xg, gs, minus_ssg, coef_r_x, s_mean_xg, s_mean_g, minus_ssg_mean_g };
    // k × C per direction: mean(R{g}), mean(x̂R{g}), mR, m1, q (then mean(x̂R{g}) + q), and the
    // coefficients of g, x̂ and 1 in R{dx}.
    auto m = resized(per_direction_, 8 * k, channels_);
    const auto dirs = [&](index i) { return m.row_block(i * k, k); };
    const auto cdirs = [&](index i) { return matrix_view<const T>(m.row_block(i * k, k)); };
    enum : index { mean_rg, mean_xrg, mean_rx, m1, q, coef_g, coef_xhat, coef_one };

    B::channel_sums(inv_n, g, none(), P, batch, T(0), vec(mean_g));
    B::channel_sums(inv_n, g, xh, P, batch, T(0), vec(mean_xg));
    B::channel_sums(inv_n, r_g, none(), P, batch, T(0), dirs(mean_rg));
    B::channel_sums(inv_n, r_g, xh, P, batch, T(0), dirs(mean_xrg));
    if (!r_x.empty()) {
      B::channel_sums(inv_n, r_x, none(), P, batch, T(0), dirs(mean_rx));
      B::channel_sums(inv_n, r_x, xh, P, batch, T(0), dirs(m1));
      B::channel_sums(inv_n, r_x, g, P, batch, T(0), dirs(q));
      // q = s·(mean(R{x}g) − mR·mean(g) − m1·mean(x̂g)) = mean(g·R{x̂})
      B::channel_combine(T(-1), cvec(mean_g), cdirs(mean_rx), cvec(mean_xg), cdirs(m1), none(), 1, 1, T(1), dirs(q));
      B::channel_combine(T(1), s, cdirs(q), none(), none(), none(), 1, 1, T(0), dirs(q));
    } else {
      B::fill(T(0), m.row_block(mean_rx * k, 3 * k));  // R{x} = 0: mR = m1 = q = 0
    }
    // hv_β += n·mean(R{g});  hv_γ += n·(mean(x̂R{g}) + q), the sum kept in q's rows.
    B::channel_combine(T(1), none(), cdirs(mean_xrg), none(), none(), none(), 1, 1, T(1), dirs(q));
    B::channel_combine(static_cast<T>(n), none(), cdirs(mean_rg), none(), none(), none(), 1, 1, T(1),
                       hv.col_block(channels_, channels_));
    B::channel_combine(static_cast<T>(n), none(), cdirs(q), none(), none(), none(), 1, 1, T(1),
                       hv.col_block(0, channels_));
    if (r_d_x.empty()) return;

    const auto product = [&](T alpha, matrix_view<const T> a, matrix_view<const T> b, matrix_view<T> out) {
      B::channel_combine(alpha, a, b, none(), none(), none(), 1, 1, T(0), out);
    };
    product(T(1), gamma(w), s, vec(gs));
    product(T(-1), s, cvec(gs), vec(minus_ssg));
    product(T(1), cvec(minus_ssg), cvec(mean_xg), vec(coef_r_x));
    product(T(1), s, cvec(mean_xg), vec(s_mean_xg));
    product(T(1), s, cvec(mean_g), vec(s_mean_g));
    product(T(1), cvec(minus_ssg), cvec(mean_g), vec(minus_ssg_mean_g));
    // g: s·R{γ} − s²γ·m1
    B::channel_combine(T(1), s, r_gamma, cvec(minus_ssg), cdirs(m1), none(), 1, 1, T(0), dirs(coef_g));
    // x̂: −s·mean(x̂g)·R{γ} − γs·(mean(x̂R{g}) + q) − 2·A_R·m1
    B::channel_combine(T(-1), cvec(s_mean_xg), r_gamma, cvec(gs), cdirs(q), none(), 1, 1, T(0), dirs(coef_xhat));
    B::channel_combine(T(-2), cvec(coef_r_x), cdirs(m1), none(), none(), none(), 1, 1, T(1), dirs(coef_xhat));
    // 1: −s·mean(g)·R{γ} − γs·mean(R{g}) − (−s²γ·mean(g)·m1 + A_R·mR)
    B::channel_combine(T(-1), cvec(s_mean_g), r_gamma, cvec(gs), cdirs(mean_rg), none(), 1, 1, T(0), dirs(coef_one));
    B::channel_combine(T(-1), cvec(minus_ssg_mean_g), cdirs(m1), cvec(coef_r_x), cdirs(mean_rx), none(), 1, 1, T(1),
                       dirs(coef_one));
    // R{dx} = coef_g·g + coef_x̂·x̂ + coef_1, then += γs·R{g} + A_R·R{x}
    B::channel_combine(T(1), cdirs(coef_g), g, cdirs(coef_xhat), xh, cdirs(coef_one), P, batch, T(0), r_d_x);
    B::channel_combine(T(1), cvec(gs), r_g, cvec(coef_r_x), r_x, none(), P, batch, T(1), r_d_x);
  }

  index channels_;
  index height_;
  index width_;
  batch_norm_options options_;
  batch_norm_statistics statistics_ = batch_norm_statistics::batch;
  vector<T, B> running_mean_, running_var_;
  // Workspace reused across calls (a model is used by one thread at a time, see docs/nn.md):
  // x̂ and the statistics from forward, then scratch for the other passes.
  mutable matrix<T, B> xhat_, stats_, sums_, vectors_, per_direction_;
  mutable index prepared_rows_ = -1;
  mutable batch_norm_statistics prepared_statistics_ = batch_norm_statistics::batch;
  mutable index values_ = 0;  // n = B·H·W of the last batch-mode forward
  mutable bool update_pending_ = false;
};

} // namespace hydra
