// BatchNorm2d in both modes: forward against a direct computation, the running-statistics update
// against PyTorch's formula, every pass (backward, per-sample gradients, tangent, second backward)
// against central differences in double, strided views, and inside small models.
//
// Tolerances. Differences of smooth functions in double: central differences with step h have
// truncation error O(h²·f''') and rounding error O(ε·|f|/h). For gradients (h = 1e-6) that is
// ~1e-12 and ~1e-10 relative; for directional derivatives of the passes (h = 1e-5) ~1e-10 and
// ~1e-11. The values here are O(1) (x̂ and γ of order one, eps = 1e-5 small beside the variances),
// so 1e-7 leaves two orders of margin, while a missing or wrong term of the formulas is off by
// O(1) (the R{J} check below shows that term alone moves R{dx} by more than 10 %). Direct
// computations of the same formula in another order agree to 1e-12 (a few hundred ε).

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/nn/activation.hpp"
#include "hydra/nn/batch_norm.hpp"
#include "hydra/nn/conv2d.hpp"
#include "hydra/nn/dense.hpp"
#include "hydra/nn/flatten.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/sequential.hpp"
#include "support/finite_difference.hpp"
#include "support/model_checks.hpp"

namespace hydra::test {

static_assert(Layer<BatchNorm2d<double>> && Layer<BatchNorm2d<float>>);

namespace {

using stats = batch_norm_statistics;
using vec = std::vector<double>;

constexpr double fd_tol = 1e-7;       // central differences (see the top)
constexpr double direct_tol = 1e-12;  // one formula computed two ways

/// A batch of B samples of C × H × W with per-channel offsets and scales (so that the statistics
/// matter), and parameters γ (around 1) then β.
struct problem {
  index C, H, W, B;
  vec x, w;
  [[nodiscard]] index P() const { return H * W; }
  [[nodiscard]] index D() const { return C * H * W; }
  [[nodiscard]] matrix_view<const double> input() const { return {x.data(), B, D()}; }
};

problem make_problem(index C, index H, index W, index B, unsigned seed) {
  problem p{C, H, W, B, normal_vector(static_cast<std::size_t>(B * C * H * W), seed), {}};
  for (index b = 0; b < B; ++b)
    for (index c = 0; c < C; ++c)
      for (index q = 0; q < H * W; ++q) {
        double& v = p.x[static_cast<std::size_t>((b * C + c) * H * W + q)];
        v = (0.5 + 0.7 * static_cast<double>(c)) * v + 1.5 - static_cast<double>(c);
      }
  p.w = normal_vector(static_cast<std::size_t>(2 * C), seed + 1, 0.4);
  for (index c = 0; c < C; ++c) p.w[static_cast<std::size_t>(c)] += 1;
  return p;
}

/// The layer's output for input x and parameters w.
vec run_forward(const BatchNorm2d<double>& bn, const vec& x, const vec& w, index B) {
  const index D = bn.input_size();
  vec y(x.size());
  bn.forward(w.data(), {x.data(), B, D}, {y.data(), B, D});
  return y;
}

/// Per channel: the mean and biased variance over all B·H·W values (direct loops).
struct channel_moments {
  vec mean, var;
};
channel_moments moments(const problem& p) {
  channel_moments m{vec(static_cast<std::size_t>(p.C), 0.0), vec(static_cast<std::size_t>(p.C), 0.0)};
  const auto n = static_cast<double>(p.B * p.P());
  for (index c = 0; c < p.C; ++c) {
    double s = 0;
    for (index b = 0; b < p.B; ++b)
      for (index q = 0; q < p.P(); ++q) s += p.x[static_cast<std::size_t>((b * p.C + c) * p.P() + q)];
    const double mu = s / n;
    double v = 0;
    for (index b = 0; b < p.B; ++b)
      for (index q = 0; q < p.P(); ++q) {
        const double d = p.x[static_cast<std::size_t>((b * p.C + c) * p.P() + q)] - mu;
        v += d * d;
      }
    m.mean[static_cast<std::size_t>(c)] = mu;
    m.var[static_cast<std::size_t>(c)] = v / n;
  }
  return m;
}

/// y = γ (x − mean) / √(var + eps) + β per channel, direct loops.
vec normalised(const problem& p, const vec& mean, const vec& var, double eps) {
  vec y(p.x.size());
  for (index b = 0; b < p.B; ++b)
    for (index c = 0; c < p.C; ++c)
      for (index q = 0; q < p.P(); ++q) {
        const auto i = static_cast<std::size_t>((b * p.C + c) * p.P() + q);
        const auto ch = static_cast<std::size_t>(c);
        y[i] = p.w[ch] * (p.x[i] - mean[ch]) / std::sqrt(var[ch] + eps) + p.w[ch + static_cast<std::size_t>(p.C)];
      }
  return y;
}

vec concat(const vec& a, const vec& b) {
  vec out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}
vec slice(const vec& v, std::size_t first, std::size_t count) {
  return {v.begin() + static_cast<std::ptrdiff_t>(first), v.begin() + static_cast<std::ptrdiff_t>(first + count)};
}

/// The incoming gradient as a function of the output, g = c + d ⊙ y (the gradient of
/// L = Σ c⊙y + ½ Σ d⊙y²), so that the second-order passes see R{g} = d ⊙ R{y} ≠ 0.
struct upstream {
  vec c, d;
  [[nodiscard]] vec at(const vec& y) const {
    vec g(y.size());
    for (std::size_t i = 0; i < y.size(); ++i) g[i] = c[i] + d[i] * y[i];
    return g;
  }
};

/// [grad; d_x] of the layer at z = [x; w] with g = up.at(y).
vec first_order(const BatchNorm2d<double>& bn, const problem& p, const upstream& up, const vec& z) {
  const auto nx = p.x.size();
  const vec x = slice(z, 0, nx), w = slice(z, nx, z.size() - nx);
  const vec y = run_forward(bn, x, w, p.B);
  const vec g = up.at(y);
  vec grad(w.size()), dx(nx);
  bn.backward(w.data(), {x.data(), p.B, p.D()}, {y.data(), p.B, p.D()}, {g.data(), p.B, p.D()},
              {dx.data(), p.B, p.D()}, grad.data());
  return concat(grad, dx);
}

/// The reference J u = s (u − mean(u) − x̂ mean(x̂ u)) per channel, by loops (batch mode).
vec apply_j(const problem& p, const vec& u) {
  const auto m = moments(p);
  const auto n = static_cast<double>(p.B * p.P());
  vec out(u.size());
  for (index c = 0; c < p.C; ++c) {
    const auto ch = static_cast<std::size_t>(c);
    const double s = 1 / std::sqrt(m.var[ch] + 1e-5);
    auto at = [&](index b, index q) { return static_cast<std::size_t>((b * p.C + c) * p.P() + q); };
    double mean_u = 0, mean_xu = 0;
    for (index b = 0; b < p.B; ++b)
      for (index q = 0; q < p.P(); ++q) {
        const double xh = (p.x[at(b, q)] - m.mean[ch]) * s;
        mean_u += u[at(b, q)] / n;
        mean_xu += xh * u[at(b, q)] / n;
      }
    for (index b = 0; b < p.B; ++b)
      for (index q = 0; q < p.P(); ++q) {
        const double xh = (p.x[at(b, q)] - m.mean[ch]) * s;
        out[at(b, q)] = s * (u[at(b, q)] - mean_u - xh * mean_xu);
      }
  }
  return out;
}

} // namespace

// ---- construction and errors ------------------------------------------------------------------

TEST_CASE("BatchNorm2d: sizes, PyTorch's initial parameters and buffers, argument checks") {
  BatchNorm2d<double> bn(3, 4, 5);
  CHECK(bn.input_size() == 60);
  CHECK(bn.output_size() == 60);
  CHECK(bn.parameter_count() == 6);
  CHECK(bn.channels() == 3);
  CHECK(std::string(bn.name()) == "BatchNorm2d");
  CHECK(bn.statistics() == stats::batch);
  CHECK(bn.couples_samples());
  bn.set_statistics(stats::running);
  CHECK_FALSE(bn.couples_samples());
  CHECK(bn.running_mean() == vec(3, 0.0));
  CHECK(bn.running_var() == vec(3, 1.0));
  vec w(6, 7.0);
  bn.initialize(w.data(), [](double, double) { return 0.5; });
  CHECK(w == vec{1, 1, 1, 0, 0, 0});

  CHECK_THROWS_AS(BatchNorm2d<double>(0, 4, 4), invalid_argument);
  CHECK_THROWS_AS(BatchNorm2d<double>(2, -1, 4), invalid_argument);
  CHECK_THROWS_AS(BatchNorm2d<double>(2, 4, 4, {.momentum = 1.5}), invalid_argument);
  CHECK_THROWS_AS(BatchNorm2d<double>(2, 4, 4, {.eps = -1e-5}), invalid_argument);

  const vec two{0.5, -1}, three{1, 2, 3};
  CHECK_THROWS_WITH_AS(bn.set_running_statistics(two, three), doctest::Contains("2 means and 3 variances for 3"),
                       shape_error);
  CHECK_THROWS_AS(bn.set_running_statistics(three, two), shape_error);
  CHECK_THROWS_AS(bn.set_running_statistics(three, vec{1, -2, 3}), invalid_argument);
  CHECK_THROWS_AS(bn.set_running_statistics(three, vec{1, std::nan(""), 3}), invalid_argument);
  bn.set_running_statistics(three, vec{4, 5, 6});
  CHECK(bn.running_mean() == three);
  CHECK(bn.running_var() == vec{4, 5, 6});
}

TEST_CASE("BatchNorm2d refuses batch statistics over one value per channel, as PyTorch") {
  BatchNorm2d<double> bn(3, 1, 1);
  const vec w{1, 1, 1, 0, 0, 0}, x{1, 2, 3};
  vec y(3);
  CHECK_THROWS_WITH_AS(bn.forward(w.data(), {x.data(), 1, 3}, {y.data(), 1, 3}),
                       doctest::Contains("BatchNorm2d: batch statistics need more than 1 value per channel, got 1 "
                                         "sample(s) of 1 x 1"),
                       invalid_argument);
  const vec x2{1, 2, 3, 4, 5, 6};  // two samples of 1 × 1: two values per channel, allowed
  vec y2(6);
  bn.forward(w.data(), {x2.data(), 2, 3}, {y2.data(), 2, 3});
  CHECK(y2[0] == doctest::Approx(-1).epsilon(1e-5));  // (1 − 2.5) / 1.5, eps aside
  bn.set_statistics(stats::running);  // one value is fine with running statistics
  bn.forward(w.data(), {x.data(), 1, 3}, {y.data(), 1, 3});
  CHECK(y[2] == doctest::Approx(3 / std::sqrt(1 + 1e-5)).epsilon(1e-14));
}

TEST_CASE("BatchNorm2d's passes need a forward on the same batch in the same mode first") {
  BatchNorm2d<double> bn(2, 2, 2);
  const auto p = make_problem(2, 2, 2, 3, 5);
  vec g(p.x.size(), 1.0), dx(p.x.size()), grad(4);
  const matrix_view<const double> gv(g.data(), p.B, p.D());
  CHECK_THROWS_WITH_AS(bn.backward(p.w.data(), p.input(), p.input(), gv, {dx.data(), p.B, p.D()}, grad.data()),
                       doctest::Contains("BatchNorm2d::backward: needs a forward pass"), invalid_argument);
  CHECK_THROWS_AS(bn.update_running_statistics(), invalid_argument);
  (void)run_forward(bn, p.x, p.w, p.B);
  bn.backward(p.w.data(), p.input(), p.input(), gv, {dx.data(), p.B, p.D()}, grad.data());
  bn.set_statistics(stats::running);
  CHECK_THROWS_AS(bn.backward(p.w.data(), p.input(), p.input(), gv, {dx.data(), p.B, p.D()}, grad.data()),
                  invalid_argument);
  (void)run_forward(bn, p.x, p.w, p.B);
  CHECK_THROWS_AS(bn.update_running_statistics(), invalid_argument);  // no batch statistics to fold in
}

// ---- 1. forward and the running statistics ---------------------------------------------------

TEST_CASE("BatchNorm2d forward equals the direct computation with batch and with running statistics") {
  const auto p = make_problem(3, 4, 5, 6, 11);
  BatchNorm2d<double> bn(3, 4, 5);
  const auto m = moments(p);
  CHECK(relative_error(run_forward(bn, p.x, p.w, p.B), normalised(p, m.mean, m.var, 1e-5)) <= direct_tol);

  bn.set_statistics(stats::running);
  const vec mean{0.3, -1.2, 2.0}, var{0.5, 2.5, 0.01};
  bn.set_running_statistics(mean, var);
  CHECK(relative_error(run_forward(bn, p.x, p.w, p.B), normalised(p, mean, var, 1e-5)) <= direct_tol);

  BatchNorm2d<double> wide(3, 4, 5, {.momentum = 0.1, .eps = 0.25});  // eps is used as given
  CHECK(relative_error(run_forward(wide, p.x, p.w, p.B), normalised(p, m.mean, m.var, 0.25)) <= direct_tol);
}

TEST_CASE("update_running_statistics follows PyTorch: momentum 0.1, unbiased running variance") {
  auto p = make_problem(2, 3, 3, 4, 13);
  BatchNorm2d<double> bn(2, 3, 3);
  const double n = static_cast<double>(p.B * p.P());
  vec want_mean{0, 0}, want_var{1, 1};
  for (int step = 0; step < 3; ++step) {
    CAPTURE(step);
    (void)run_forward(bn, p.x, p.w, p.B);
    bn.update_running_statistics();
    const auto m = moments(p);
    for (std::size_t c = 0; c < 2; ++c) {
      want_mean[c] = 0.9 * want_mean[c] + 0.1 * m.mean[c];
      want_var[c] = 0.9 * want_var[c] + 0.1 * m.var[c] * n / (n - 1);
    }
    CHECK(relative_error(bn.running_mean(), want_mean) <= direct_tol);
    CHECK(relative_error(bn.running_var(), want_var) <= direct_tol);
    CHECK_THROWS_AS(bn.update_running_statistics(), invalid_argument);  // once per forward
    for (auto& v : p.x) v = 0.8 * v + 0.3;                             // the next batch
  }
  BatchNorm2d<double> still(2, 3, 3, {.momentum = 0});
  (void)run_forward(still, p.x, p.w, p.B);
  still.update_running_statistics();
  CHECK(still.running_mean() == vec{0, 0});
  CHECK(still.running_var() == vec{1, 1});
}

// ---- 2. backward and per-sample gradients ------------------------------------------------------

TEST_CASE("BatchNorm2d backward: d_x and grad against differences of L = sum c*y, in both modes") {
  for (const stats mode : {stats::batch, stats::running}) {
    CAPTURE(mode == stats::batch);
    const auto p = make_problem(3, 2, 3, 4, 17);
    BatchNorm2d<double> bn(3, 2, 3);
    bn.set_statistics(mode);
    bn.set_running_statistics(vec{0.5, -0.25, 1.0}, vec{0.8, 1.7, 0.4});
    const vec c = normal_vector(p.x.size(), 18);
    auto loss = [&](const vec& x, const vec& w) {
      const vec y = run_forward(bn, x, w, p.B);
      double s = 0;
      for (std::size_t i = 0; i < y.size(); ++i) s += c[i] * y[i];
      return s;
    };
    // Batch mode: moving one value moves every output of its channel, across samples.
    const vec fd_x = central_gradient([&](const vec& x) { return loss(x, p.w); }, p.x);
    const vec fd_w = central_gradient([&](const vec& w) { return loss(p.x, w); }, p.w);
    const vec y = run_forward(bn, p.x, p.w, p.B);
    vec dx(p.x.size()), grad(p.w.size(), std::nan(""));
    bn.backward(p.w.data(), p.input(), {y.data(), p.B, p.D()}, {c.data(), p.B, p.D()}, {dx.data(), p.B, p.D()},
                grad.data());
    CHECK(relative_error(dx, fd_x) <= fd_tol);
    CHECK(relative_error(grad, fd_w) <= fd_tol);
    // d_x empty or grad null: the other output is unchanged.
    vec grad_only(p.w.size()), dx_only(p.x.size());
    bn.backward(p.w.data(), p.input(), {y.data(), p.B, p.D()}, {c.data(), p.B, p.D()}, {}, grad_only.data());
    bn.backward(p.w.data(), p.input(), {y.data(), p.B, p.D()}, {c.data(), p.B, p.D()},
                {dx_only.data(), p.B, p.D()}, nullptr);
    CHECK(grad_only == grad);
    CHECK(dx_only == dx);
  }
}

TEST_CASE("BatchNorm2d per_sample_gradients: each sample's own part, summing to the batch gradient") {
  for (const stats mode : {stats::batch, stats::running}) {
    CAPTURE(mode == stats::batch);
    const auto p = make_problem(2, 3, 2, 5, 19);
    BatchNorm2d<double> bn(2, 3, 2);
    bn.set_statistics(mode);
    const vec g = normal_vector(p.x.size(), 20);
    const vec y = run_forward(bn, p.x, p.w, p.B);
    vec G(static_cast<std::size_t>(p.B * 4), std::nan("")), grad(4);
    bn.per_sample_gradients(p.input(), {g.data(), p.B, p.D()}, {G.data(), p.B, 4});
    bn.backward(p.w.data(), p.input(), {y.data(), p.B, p.D()}, {g.data(), p.B, p.D()}, {}, grad.data());
    vec total(4, 0.0), direct(G.size());
    for (index b = 0; b < p.B; ++b)
      for (index c = 0; c < 2; ++c) {
        double sgx = 0, sg = 0;  // Σ_p g·x̂ with x̂ = (y − β)/γ
        for (index q = 0; q < p.P(); ++q) {
          const auto i = static_cast<std::size_t>((b * 2 + c) * p.P() + q);
          const auto ch = static_cast<std::size_t>(c);
          sgx += g[i] * (y[i] - p.w[ch + 2]) / p.w[ch];
          sg += g[i];
        }
        direct[static_cast<std::size_t>(b * 4 + c)] = sgx;
        direct[static_cast<std::size_t>(b * 4 + 2 + c)] = sg;
      }
    for (index b = 0; b < p.B; ++b)
      for (std::size_t q = 0; q < 4; ++q) total[q] += G[static_cast<std::size_t>(b * 4) + q];
    CHECK(relative_error(G, direct) <= direct_tol);
    CHECK(relative_error(total, grad) <= direct_tol);
  }
}

// ---- 3. tangent --------------------------------------------------------------------------------

TEST_CASE("BatchNorm2d tangent: R{y} against differences of forward, k = 3 directions, with and without r_x") {
  for (const stats mode : {stats::batch, stats::running}) {
    for (const bool with_r_x : {true, false}) {
      CAPTURE(mode == stats::batch);
      CAPTURE(with_r_x);
      const auto p = make_problem(3, 2, 2, 4, 23);
      BatchNorm2d<double> bn(3, 2, 2);
      bn.set_statistics(mode);
      bn.set_running_statistics(vec{0.1, 0.2, -0.3}, vec{1.5, 0.6, 2.2});
      const index k = 3, nx = p.B * p.D();
      const vec dir = normal_vector(static_cast<std::size_t>(k * 6), 24);  // k × [R{γ}, R{β}]
      const vec r_x = with_r_x ? normal_vector(static_cast<std::size_t>(k * nx), 25) : vec{};
      const vec y = run_forward(bn, p.x, p.w, p.B);
      vec r_y(static_cast<std::size_t>(k * nx), std::nan(""));
      bn.tangent(p.w.data(), {dir.data(), k, 6}, p.input(), {y.data(), p.B, p.D()},
                 with_r_x ? matrix_view<const double>(r_x.data(), k * p.B, p.D()) : matrix_view<const double>{},
                 {r_y.data(), k * p.B, p.D()});
      const vec z = concat(p.x, p.w);
      auto forward_at = [&](const vec& zz) {
        return run_forward(bn, slice(zz, 0, static_cast<std::size_t>(nx)), slice(zz, static_cast<std::size_t>(nx), 6),
                           p.B);
      };
      for (index j = 0; j < k; ++j) {
        CAPTURE(j);
        const vec v = concat(with_r_x ? slice(r_x, static_cast<std::size_t>(j * nx), static_cast<std::size_t>(nx))
                                      : vec(static_cast<std::size_t>(nx), 0.0),
                             slice(dir, static_cast<std::size_t>(j * 6), 6));
        CHECK(relative_error(slice(r_y, static_cast<std::size_t>(j * nx), static_cast<std::size_t>(nx)),
                             central_directional(forward_at, z, v)) <= fd_tol);
      }
    }
  }
}

// ---- 4. second backward ------------------------------------------------------------------------

TEST_CASE("BatchNorm2d second_backward: hv and R{d_x} against differences of the backward pass") {
  // g = c + d ⊙ y, so the backward pass is a function of (x, w) alone and R{g} = d ⊙ R{y}: the
  // differences see every second-order term, through g, through γ and through the statistics.
  for (const stats mode : {stats::batch, stats::running}) {
    for (const bool with_r_x : {true, false}) {
      CAPTURE(mode == stats::batch);
      CAPTURE(with_r_x);
      const auto p = make_problem(3, 2, 3, 4, 29);
      BatchNorm2d<double> bn(3, 2, 3);
      bn.set_statistics(mode);
      bn.set_running_statistics(vec{0.4, -0.6, 0.2}, vec{0.9, 1.3, 0.5});
      const upstream up{normal_vector(p.x.size(), 30), normal_vector(p.x.size(), 31, 0.5)};
      const index k = 3, nx = p.B * p.D();
      const auto unx = static_cast<std::size_t>(nx);
      const vec dir = normal_vector(static_cast<std::size_t>(k * 6), 32);
      const vec r_x = with_r_x ? normal_vector(static_cast<std::size_t>(k * nx), 33) : vec{};
      const auto r_x_view =
          with_r_x ? matrix_view<const double>(r_x.data(), k * p.B, p.D()) : matrix_view<const double>{};

      const vec y = run_forward(bn, p.x, p.w, p.B);
      vec r_y(static_cast<std::size_t>(k * nx));
      bn.tangent(p.w.data(), {dir.data(), k, 6}, p.input(), {y.data(), p.B, p.D()}, r_x_view,
                 {r_y.data(), k * p.B, p.D()});
      const vec g = up.at(y);
      vec r_g(r_y.size());
      for (std::size_t i = 0; i < r_y.size(); ++i) r_g[i] = up.d[i % unx] * r_y[i];
      const vec hv0 = normal_vector(static_cast<std::size_t>(k * 6), 34);  // second_backward adds to hv
      vec hv = hv0, r_d_x(static_cast<std::size_t>(k * nx), std::nan(""));
      bn.second_backward(p.w.data(), {dir.data(), k, 6}, p.input(), {y.data(), p.B, p.D()}, r_x_view,
                         {g.data(), p.B, p.D()}, {r_g.data(), k * p.B, p.D()}, {r_d_x.data(), k * p.B, p.D()},
                         {hv.data(), k, 6});

      const vec z = concat(p.x, p.w);
      auto backward_at = [&](const vec& zz) { return first_order(bn, p, up, zz); };
      for (index j = 0; j < k; ++j) {
        CAPTURE(j);
        const vec v = concat(with_r_x ? slice(r_x, static_cast<std::size_t>(j) * unx, unx) : vec(unx, 0.0),
                             slice(dir, static_cast<std::size_t>(j * 6), 6));
        const vec fd = central_directional(backward_at, z, v);  // [R{grad}; R{d_x}]
        const auto first = static_cast<std::size_t>(j * 6);
        vec hv_j(6);
        for (std::size_t q = 0; q < 6; ++q) hv_j[q] = hv[first + q] - hv0[first + q];
        const vec r_d_x_j = slice(r_d_x, static_cast<std::size_t>(j) * unx, unx);
        CHECK(relative_error(hv_j, slice(fd, 0, 6)) <= fd_tol);
        CHECK(relative_error(r_d_x_j, slice(fd, 6, unx)) <= fd_tol);
        if (mode == stats::batch && with_r_x) {
          // The R{J} term (the statistics moving with R{x}) is a large part of R{d_x}: without it,
          // R{d_x} would be J ũ, ũ = R{γ}·g + γ·R{g}, which misses by more than 10 %.
          vec u_tilde(unx);
          for (std::size_t i = 0; i < unx; ++i) {
            const auto c = static_cast<std::size_t>((static_cast<index>(i) / p.P()) % p.C);
            u_tilde[i] = dir[first + c] * g[i] + p.w[c] * r_g[static_cast<std::size_t>(j) * unx + i];
          }
          CHECK(relative_error(apply_j(p, u_tilde), r_d_x_j) > 0.1);
        }
      }
      // Without r_d_x (the model's first layer with parameters) hv is the same. The differences ran
      // forward at other points: forward on this batch again first.
      (void)run_forward(bn, p.x, p.w, p.B);
      vec hv_alone = hv0;
      bn.second_backward(p.w.data(), {dir.data(), k, 6}, p.input(), {y.data(), p.B, p.D()}, r_x_view,
                         {g.data(), p.B, p.D()}, {r_g.data(), k * p.B, p.D()}, {}, {hv_alone.data(), k, 6});
      CHECK(relative_error(hv_alone, hv) <= direct_tol);
    }
  }
}

// ---- 5. strided views --------------------------------------------------------------------------

TEST_CASE("BatchNorm2d honours strides: column blocks of wider buffers give the contiguous results") {
  for (const stats mode : {stats::batch, stats::running}) {
    CAPTURE(mode == stats::batch);
    const auto p = make_problem(2, 3, 2, 3, 37);
    const index k = 2, D = p.D(), nx = p.B * D, pad = 5;
    BatchNorm2d<double> bn(2, 3, 2);
    bn.set_statistics(mode);
    bn.set_running_statistics(vec{0.3, -0.1}, vec{0.7, 1.9});
    const vec dir = normal_vector(static_cast<std::size_t>(k * 4), 38);
    const vec g = normal_vector(static_cast<std::size_t>(nx), 39);
    const vec r_x = normal_vector(static_cast<std::size_t>(k * nx), 40);
    const vec r_g = normal_vector(static_cast<std::size_t>(k * nx), 41);

    // Contiguous.
    vec y(static_cast<std::size_t>(nx)), dx(y.size()), grad(4), G(static_cast<std::size_t>(p.B * 4));
    vec r_y(static_cast<std::size_t>(k * nx)), r_d_x(r_y.size()), hv(static_cast<std::size_t>(k * 4), 0.0);
    bn.forward(p.w.data(), p.input(), {y.data(), p.B, D});
    bn.backward(p.w.data(), p.input(), {y.data(), p.B, D}, {g.data(), p.B, D}, {dx.data(), p.B, D}, grad.data());
    bn.per_sample_gradients(p.input(), {g.data(), p.B, D}, {G.data(), p.B, 4});
    bn.tangent(p.w.data(), {dir.data(), k, 4}, p.input(), {y.data(), p.B, D}, {r_x.data(), k * p.B, D},
               {r_y.data(), k * p.B, D});
    bn.second_backward(p.w.data(), {dir.data(), k, 4}, p.input(), {y.data(), p.B, D}, {r_x.data(), k * p.B, D},
                       {g.data(), p.B, D}, {r_g.data(), k * p.B, D}, {r_d_x.data(), k * p.B, D}, {hv.data(), k, 4});

    // Every matrix a column block (offset 2) of a buffer `pad` columns wider; inputs padded with
    // NaN (must not be read), outputs with a sentinel (must survive).
    const double nan = std::numeric_limits<double>::quiet_NaN(), sentinel = 777.25;
    struct wide {
      index rows, cols, stride;
      vec data;
      wide(index r, index c, index s, double fill)
          : rows(r), cols(c), stride(s), data(static_cast<std::size_t>(r * s), fill) {}
      double& at(index r, index c) { return data[static_cast<std::size_t>(r * stride + 2 + c)]; }
      [[nodiscard]] matrix_view<double> view() { return {data.data() + 2, rows, cols, stride}; }
      [[nodiscard]] matrix_view<const double> cview() { return view(); }
      [[nodiscard]] vec block() {
        vec out;
        for (index r = 0; r < rows; ++r)
          for (index c = 0; c < cols; ++c) out.push_back(at(r, c));
        return out;
      }
      [[nodiscard]] bool outside_is(double v) const {
        for (index r = 0; r < rows; ++r)
          for (index c = 0; c < stride; ++c)
            if ((c < 2 || c >= 2 + cols) && !(data[static_cast<std::size_t>(r * stride + c)] == v)) return false;
        return true;
      }
    };
    auto input = [&](const vec& v, index rows, index cols) {
      wide m(rows, cols, cols + pad, nan);
      for (index r = 0; r < rows; ++r)
        for (index c = 0; c < cols; ++c) m.at(r, c) = v[static_cast<std::size_t>(r * cols + c)];
      return m;
    };
    auto output = [&](index rows, index cols, double fill_inside) {
      wide m(rows, cols, cols + pad, sentinel);
      for (index r = 0; r < rows; ++r)
        for (index c = 0; c < cols; ++c) m.at(r, c) = fill_inside;
      return m;
    };
    auto sx = input(p.x, p.B, D), sg = input(g, p.B, D), srx = input(r_x, k * p.B, D), srg = input(r_g, k * p.B, D);
    auto sdir = input(dir, k, 4);
    auto sy = output(p.B, D, nan), sdx = output(p.B, D, nan), sG = output(p.B, 4, nan);
    auto sry = output(k * p.B, D, nan), srdx = output(k * p.B, D, nan), shv = output(k, 4, 0.0);
    bn.forward(p.w.data(), sx.cview(), sy.view());
    bn.backward(p.w.data(), sx.cview(), sy.cview(), sg.cview(), sdx.view(), grad.data());
    bn.per_sample_gradients(sx.cview(), sg.cview(), sG.view());
    bn.tangent(p.w.data(), sdir.cview(), sx.cview(), sy.cview(), srx.cview(), sry.view());
    bn.second_backward(p.w.data(), sdir.cview(), sx.cview(), sy.cview(), srx.cview(), sg.cview(), srg.cview(),
                       srdx.view(), shv.view());
    // Equal up to the order of Eigen's vectorised sums, which follows the alignment of each row.
    CHECK(relative_error(sy.block(), y) <= direct_tol);
    CHECK(relative_error(sdx.block(), dx) <= direct_tol);
    CHECK(relative_error(sG.block(), G) <= direct_tol);
    CHECK(relative_error(sry.block(), r_y) <= direct_tol);
    CHECK(relative_error(srdx.block(), r_d_x) <= direct_tol);
    CHECK(relative_error(shv.block(), hv) <= direct_tol);
    for (auto* m : {&sy, &sdx, &sG, &sry, &srdx, &shv}) CHECK(m->outside_is(sentinel));
  }
}

TEST_CASE("BatchNorm2d in float agrees with double") {
  const auto p = make_problem(4, 5, 5, 8, 43);
  BatchNorm2d<double> bd(4, 5, 5);
  BatchNorm2d<float> bf(4, 5, 5);
  const vec g = normal_vector(p.x.size(), 44);
  const auto xf = cast<float>(p.x), wf = cast<float>(p.w), gf = cast<float>(g);
  const vec y = run_forward(bd, p.x, p.w, p.B);
  vec dx(p.x.size()), grad(8);
  bd.backward(p.w.data(), p.input(), {y.data(), p.B, p.D()}, {g.data(), p.B, p.D()}, {dx.data(), p.B, p.D()},
              grad.data());
  std::vector<float> yf(xf.size()), dxf(xf.size()), gradf(8);
  bf.forward(wf.data(), {xf.data(), p.B, p.D()}, {yf.data(), p.B, p.D()});
  bf.backward(wf.data(), {xf.data(), p.B, p.D()}, {yf.data(), p.B, p.D()}, {gf.data(), p.B, p.D()},
              {dxf.data(), p.B, p.D()}, gradf.data());
  // float rounding (6e-8) through sums of 200 values and the two-pass variance: 1e-5 relative.
  CHECK(relative_error(cast<double>(yf), y) <= 1e-5);
  CHECK(relative_error(cast<double>(dxf), dx) <= 1e-5);
  CHECK(relative_error(cast<double>(gradf), grad) <= 1e-5);
}

// ---- inside models -----------------------------------------------------------------------------

TEST_CASE("a model with batch statistics: gradient and batched HVPs against differences, explicit Hessian") {
  // The first BatchNorm2d is the first layer with parameters (no r_x, no r_d_x); the second sits
  // between a convolution and an activation (both r_x and r_d_x).
  using Net = Sequential<BatchNorm2d<double>, Conv2d<double>, BatchNorm2d<double>, Tanh<double>, Flatten<double>,
                         Dense<double>>;
  Net net(BatchNorm2d<double>(2, 3, 3), Conv2d<double>(2, 3, 3, 2, 2), BatchNorm2d<double>(2, 2, 2), Tanh<double>(),
          Flatten<double>(), Dense<double>(2 * 4, 3));
  SoftmaxCrossEntropy<double> loss;
  const auto b = random_batch(4, 2 * 9, 3, 47);
  const auto w = normal_vector(static_cast<std::size_t>(net.parameter_count()), 48, 0.5);
  const index P = net.parameter_count();
  auto f = [&](const vec& v) { return loss_at(net, loss, b, v); };
  CHECK(relative_error(gradient_at(net, loss, b, w), central_gradient(f, w)) <= fd_tol);
  const index k = 3;
  const auto V = normal_vector(static_cast<std::size_t>(k * P), 49);
  const auto HV = hvps_at(net, loss, b, w, V, k);
  auto G = [&](const vec& v) { return gradient_at(net, loss, b, v); };
  for (index j = 0; j < k; ++j) {
    const vec v = slice(V, static_cast<std::size_t>(j * P), static_cast<std::size_t>(P));
    CHECK(relative_error(slice(HV, static_cast<std::size_t>(j * P), static_cast<std::size_t>(P)),
                         central_directional(G, w, v)) <= fd_tol);
  }
  // Columns of the explicit Hessian from second differences of the loss: no gradient code at all.
  // Second differences carry O(h²) truncation and O(ε/h²) rounding: ~1e-8 at h = 1e-4.
  const auto H = second_differences_hessian(f, w);
  vec I(static_cast<std::size_t>(P * P), 0.0);
  for (index i = 0; i < P; ++i) I[static_cast<std::size_t>(i * P + i)] = 1;
  CHECK(relative_error(hvps_at(net, loss, b, w, I, P), H) <= 1e-6);
}

TEST_CASE("a model with running statistics passes every derivative check, per-sample gradients included") {
  using Net = Sequential<Conv2d<double>, BatchNorm2d<double>, ReLU<double>, Flatten<double>, Dense<double>>;
  BatchNorm2d<double> bn(2, 4, 4);
  bn.set_statistics(stats::running);
  bn.set_running_statistics(vec{0.2, -0.3}, vec{0.6, 1.4});
  Net net(Conv2d<double>(1, 3, 3, 2, 2, 1, 1), std::move(bn), ReLU<double>(), Flatten<double>(),
          Dense<double>(2 * 4 * 4, 3));
  SoftmaxCrossEntropy<double> loss;
  const auto b = random_batch(3, 9, 3, 51);
  check_model_derivatives(net, loss, b, normal_vector(static_cast<std::size_t>(net.parameter_count()), 52, 0.5));
}

} // namespace hydra::test
