// hydra::cpu, part 2: the activation and loss kernels, each against closed forms evaluated in
// long double (tests/backend/reference.hpp), for float and double. Inputs are strided views with
// NaN padding (a read of it poisons the result); outputs are strided views with a sentinel in the
// padding that must survive. Memory and BLAS-like operations are in cpu.test.cpp.

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "backend/reference.hpp"
#include "hydra/backend/cpu.hpp"

namespace hydra::test {
namespace {

constexpr double sentinel = 777.25;  // exactly representable in float and double

// ---- closed forms ----
real f_ref(activation f, real x) {
  switch (f) {
    case activation::identity: return x;
    case activation::relu: return x > 0 ? x : 0;
    case activation::tanh: return std::tanh(x);
    case activation::sigmoid: return 1 / (1 + std::exp(-x));
    case activation::relu6: return x < 0 ? 0 : x > 6 ? 6 : x;
  }
  return std::numeric_limits<real>::quiet_NaN();
}
real fp_ref(activation f, real x) {  // f'
  switch (f) {
    case activation::identity: return 1;
    case activation::relu: return x > 0 ? 1 : 0;
    case activation::relu6: return x > 0 && x < 6 ? 1 : 0;
    case activation::tanh: {
      const real t = std::tanh(x);
      return 1 - t * t;
    }
    case activation::sigmoid: {
      const real s = 1 / (1 + std::exp(-x));
      return s * (1 - s);
    }
  }
  return std::numeric_limits<real>::quiet_NaN();
}
real fpp_ref(activation f, real x) {  // f''
  switch (f) {
    case activation::identity:
    case activation::relu:
    case activation::relu6: return 0;
    case activation::tanh: {
      const real t = std::tanh(x);
      return -2 * t * (1 - t * t);
    }
    case activation::sigmoid: {
      const real s = 1 / (1 + std::exp(-x));
      return s * (1 - s) * (1 - 2 * s);
    }
  }
  return std::numeric_limits<real>::quiet_NaN();
}

constexpr activation all_activations[] = {activation::identity, activation::relu, activation::tanh,
                                          activation::sigmoid, activation::relu6};

/// Pre-activations in [-3, 3]; for ReLU at least 0.1 away from its kink at 0; for ReLU6 in
/// [-3, 9], at least 0.1 away from its kinks at 0 and 6 (all three pieces drawn).
template <class T>
host_matrix<T> pre_activations(random_source& rng, activation f, index rows, index cols) {
  auto x = rng.filled<T>(rows, cols, cols + 2, -3, 3);
  if (f == activation::relu6)
    for (index i = 0; i < rows; ++i)
      for (index j = 0; j < cols; ++j) {
        const int piece = static_cast<int>((i * cols + j) % 3);  // below 0, inside, above 6
        x(i, j) = piece == 0 ? rng.uniform<T>(-3, -0.1) : piece == 1 ? rng.uniform<T>(0.1, 5.9) : rng.uniform<T>(6.1, 9);
      }
  if (f == activation::relu)
    for (index i = 0; i < rows; ++i)
      for (index j = 0; j < cols; ++j) {
        const T magnitude = rng.uniform<T>(0.1, 3);
        x(i, j) = rng.uniform<T>(-1, 1) < T(0) ? -magnitude : magnitude;
      }
  return x;
}

/// f(in) rounded to T, as the forward pass would have stored it (from the closed form).
template <class T>
host_matrix<T> stored_output(activation f, const host_matrix<T>& in) {
  host_matrix<T> out(in.rows, in.cols, in.cols + 1);
  for (index i = 0; i < in.rows; ++i)
    for (index j = 0; j < in.cols; ++j) out(i, j) = static_cast<T>(f_ref(f, real(in(i, j))));
  return out;
}

/// An output matrix: NaN in the elements (they must be overwritten), the sentinel in the padding.
template <class T>
host_matrix<T> output(index rows, index cols) {
  host_matrix<T> m(rows, cols, cols + 3, T(sentinel));
  for (index i = 0; i < rows; ++i)
    for (index j = 0; j < cols; ++j) m(i, j) = std::numeric_limits<T>::quiet_NaN();
  return m;
}

} // namespace

// ---- activations ------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("activation_forward: out = f(in)", T, float, double) {
  random_source rng(41);
  for (activation f : all_activations) {
    CAPTURE(name_of(f));
    const auto in = pre_activations<T>(rng, f, 5, 6);
    auto out = output<T>(5, 6);
    cpu::activation_forward(f, in.cview(), out.view());
    ref_matrix want(5, 6);
    for (index i = 0; i < 5; ++i)
      for (index j = 0; j < 6; ++j) want(i, j) = f_ref(f, real(in(i, j)));
    CHECK(relative_error(out, want) <= tol<T>);
    CHECK(out.padding_is(T(sentinel)));
  }
}

TEST_CASE_TEMPLATE("activation_forward saturates without overflow for large |in|", T, float, double) {
  host_matrix<T> in(1, 4);
  in(0, 0) = T(-1000);
  in(0, 1) = T(1000);
  in(0, 2) = T(-80);
  in(0, 3) = T(80);
  for (activation f : {activation::tanh, activation::sigmoid}) {
    CAPTURE(name_of(f));
    host_matrix<T> out(1, 4);
    cpu::activation_forward(f, in.cview(), out.view());
    for (index j = 0; j < 4; ++j) {
      CAPTURE(j);
      const real want = f_ref(f, real(in(0, j)));
      CHECK(std::fabs(real(out(0, j)) - want) <= tol<T>);
    }
  }
}

TEST_CASE_TEMPLATE("activation_backward: d_in = d_out ⊙ f'(in)", T, float, double) {
  random_source rng(42);
  const index rows = 4, cols = 5;
  for (activation f : all_activations) {
    CAPTURE(name_of(f));
    const auto in = pre_activations<T>(rng, f, rows, cols);
    const auto out = stored_output(f, in);
    const auto d_out = rng.filled<T>(rows, cols, cols + 1);
    auto d_in = output<T>(rows, cols);
    cpu::activation_backward(f, in.cview(), out.cview(), d_out.cview(), d_in.view());
    ref_matrix want(rows, cols);
    for (index i = 0; i < rows; ++i)
      for (index j = 0; j < cols; ++j) want(i, j) = real(d_out(i, j)) * fp_ref(f, real(in(i, j)));
    CHECK(relative_error(d_in, want) <= tol<T>);
    CHECK(d_in.padding_is(T(sentinel)));
  }
}

TEST_CASE_TEMPLATE("activation_tangent: r_out_j = f'(in) ⊙ r_in_j for k = 3 blocks", T, float, double) {
  random_source rng(43);
  const index batch = 4, cols = 3, k = 3;
  for (activation f : all_activations) {
    CAPTURE(name_of(f));
    const auto in = pre_activations<T>(rng, f, batch, cols);
    const auto out = stored_output(f, in);
    const auto r_in = rng.filled<T>(k * batch, cols, cols + 2);
    auto r_out = output<T>(k * batch, cols);
    cpu::activation_tangent(f, in.cview(), out.cview(), r_in.cview(), r_out.view());
    ref_matrix want(k * batch, cols);
    for (index i = 0; i < k * batch; ++i)
      for (index j = 0; j < cols; ++j) want(i, j) = fp_ref(f, real(in(i % batch, j))) * real(r_in(i, j));
    CHECK(relative_error(r_out, want) <= tol<T>);
    CHECK(r_out.padding_is(T(sentinel)));
  }
}

TEST_CASE_TEMPLATE("activation_second_backward: r_d_in_j = r_d_out_j ⊙ f' + d_out ⊙ f'' ⊙ r_in_j", T, float,
                   double) {
  random_source rng(44);
  const index batch = 3, cols = 4, k = 3;
  for (activation f : all_activations) {
    CAPTURE(name_of(f));
    const auto in = pre_activations<T>(rng, f, batch, cols);
    const auto out = stored_output(f, in);
    const auto d_out = rng.filled<T>(batch, cols, cols + 1);
    const auto r_in = rng.filled<T>(k * batch, cols, cols + 1);
    const auto r_d_out = rng.filled<T>(k * batch, cols, cols + 2);

    SUBCASE("with r_in") {
      auto r_d_in = output<T>(k * batch, cols);
      cpu::activation_second_backward(f, in.cview(), out.cview(), d_out.cview(), r_in.cview(), r_d_out.cview(),
                                      r_d_in.view());
      ref_matrix want(k * batch, cols);
      for (index i = 0; i < k * batch; ++i)
        for (index j = 0; j < cols; ++j) {
          const real x = in(i % batch, j);
          want(i, j) = real(r_d_out(i, j)) * fp_ref(f, x) + real(d_out(i % batch, j)) * fpp_ref(f, x) * real(r_in(i, j));
        }
      CHECK(relative_error(r_d_in, want) <= tol<T>);
      CHECK(r_d_in.padding_is(T(sentinel)));
    }
    SUBCASE("empty r_in drops the f'' term") {
      auto r_d_in = output<T>(k * batch, cols);
      cpu::activation_second_backward(f, in.cview(), out.cview(), d_out.cview(), matrix_view<const T>(),
                                      r_d_out.cview(), r_d_in.view());
      ref_matrix want(k * batch, cols), with_term(k * batch, cols);
      for (index i = 0; i < k * batch; ++i)
        for (index j = 0; j < cols; ++j) {
          const real x = in(i % batch, j);
          want(i, j) = real(r_d_out(i, j)) * fp_ref(f, x);
          with_term(i, j) = want(i, j) + real(d_out(i % batch, j)) * fpp_ref(f, x) * real(r_in(i, j));
        }
      CHECK(relative_error(r_d_in, want) <= tol<T>);
      CHECK(r_d_in.padding_is(T(sentinel)));
      // For the curved activations the dropped term is not negligible, so the check above tells
      // "dropped" from "computed with some r_in".
      if (f == activation::tanh || f == activation::sigmoid) CHECK(relative_error(r_d_in, with_term) > 1e-3);
    }
  }
}

// ---- softmax cross-entropy --------------------------------------------------------------------

TEST_CASE_TEMPLATE("softmax_cross_entropy: probabilities and losses", T, float, double) {
  random_source rng(51);
  const index rows = 6, cols = 5;
  const auto logits = rng.filled<T>(rows, cols, cols + 2, -4, 4);
  std::vector<label_type> labels;
  for (index b = 0; b < rows; ++b) labels.push_back(static_cast<label_type>((3 * b + 1) % cols));
  auto p = output<T>(rows, cols);
  std::vector<T> losses(static_cast<std::size_t>(rows) + 1, T(sentinel));
  cpu::softmax_cross_entropy(logits.cview(), labels.data(), p.view(), vector_view<T>(losses.data(), rows));

  // Naive reference: no max shift, in long double.
  ref_matrix want_p(rows, cols);
  std::vector<real> want_loss(static_cast<std::size_t>(rows));
  for (index b = 0; b < rows; ++b) {
    real total = 0;
    for (index c = 0; c < cols; ++c) total += std::exp(real(logits(b, c)));
    for (index c = 0; c < cols; ++c) want_p(b, c) = std::exp(real(logits(b, c))) / total;
    want_loss[b] = std::log(total) - real(logits(b, labels[b]));
  }
  CHECK(relative_error(p, want_p) <= tol<T>);
  CHECK(p.padding_is(T(sentinel)));
  for (index b = 0; b < rows; ++b) {
    CAPTURE(b);
    real total = 0;
    for (index c = 0; c < cols; ++c) total += p(b, c);
    CHECK(std::fabs(total - 1) <= tol<T>);
  }
  CHECK(losses[static_cast<std::size_t>(rows)] == T(sentinel));
  losses.pop_back();
  CHECK(relative_error(losses, want_loss) <= tol<T>);
}

TEST_CASE_TEMPLATE("softmax_cross_entropy stays finite and exact for huge logits", T, float, double) {
  // exp(±1000) overflows both float and double, but not long double (max ≈ 1e4932), so the naive
  // reference below is still exact.
  const index rows = 5, cols = 3;
  host_matrix<T> logits(rows, cols);
  const double z[rows][cols] = {{1000, -1000, 0}, {1000, -1000, 0}, {-1000, -1000, -1000}, {1000, 1000, -1000},
                                {-1000, 999, 1000}};
  for (index b = 0; b < rows; ++b)
    for (index c = 0; c < cols; ++c) logits(b, c) = T(z[b][c]);
  const std::vector<label_type> labels{0, 1, 2, 1, 1};
  host_matrix<T> p(rows, cols);
  std::vector<T> losses(static_cast<std::size_t>(rows));
  cpu::softmax_cross_entropy(logits.cview(), labels.data(), p.view(), vector_view<T>(losses.data(), rows));
  for (index b = 0; b < rows; ++b) {
    CAPTURE(b);
    real total = 0, psum = 0;
    for (index c = 0; c < cols; ++c) total += std::exp(real(logits(b, c)));
    for (index c = 0; c < cols; ++c) {
      CHECK(std::isfinite(p(b, c)));
      CHECK(std::fabs(real(p(b, c)) - std::exp(real(logits(b, c))) / total) <= tol<T>);
      psum += p(b, c);
    }
    CHECK(std::fabs(psum - 1) <= tol<T>);
    const real want = std::log(total) - real(logits(b, labels[b]));
    CAPTURE(static_cast<double>(want));
    CHECK(std::isfinite(losses[b]));
    // The loss is computed as (zmax − z_y) + log Σ exp(z − zmax): two non-negative terms, so it
    // keeps relative accuracy however large the logits (a left-to-right zmax + log(total) − z_y
    // would round log(total) to the ulp of zmax, 6.1e-5 near 1000 in float).
    CHECK(std::fabs(real(losses[b]) - want) <= tol<T> * std::max<real>(1, std::fabs(want)));
  }
  // The hand-computed values: 2000 for the label at -1000 next to 1000, log 3 and log 2 for ties.
  CHECK(losses[1] == T(2000));
  // Ties: log 3 and log 2 to float accuracy, not to the ulp of the huge logits.
  CHECK(relative_error(losses[2], std::log(real(3))) <= tol<T>);
  CHECK(relative_error(losses[3], std::log(real(2))) <= tol<T>);
}

TEST_CASE_TEMPLATE("softmax_cross_entropy_gradient: d = scale * (p - onehot(labels))", T, float, double) {
  random_source rng(52);
  const index rows = 5, cols = 4;
  const auto p = probabilities<T>(rng, rows, cols);
  const std::vector<label_type> labels{0, 3, 1, 1, 2};
  for (double scale : {1.0, 0.2, -3.0}) {
    CAPTURE(scale);
    auto d = output<T>(rows, cols);
    cpu::softmax_cross_entropy_gradient(p.cview(), labels.data(), T(scale), d.view());
    ref_matrix want(rows, cols);
    for (index b = 0; b < rows; ++b)
      for (index c = 0; c < cols; ++c) want(b, c) = real(T(scale)) * (real(p(b, c)) - (labels[b] == c ? 1 : 0));
    CHECK(relative_error(d, want) <= tol<T>);
    CHECK(d.padding_is(T(sentinel)));
  }
}

TEST_CASE_TEMPLATE("softmax_cross_entropy_hessian_product: scale * (diag(p) - p p^T) r_j, k = 3", T, float,
                   double) {
  random_source rng(53);
  const index batch = 4, cols = 5;
  for (index k : {1, 3}) {
    CAPTURE(k);
    const auto p = probabilities<T>(rng, batch, cols);
    const auto r = rng.filled<T>(k * batch, cols, cols + 2);
    const T scale = T(0.25);
    auto out = output<T>(k * batch, cols);
    cpu::softmax_cross_entropy_hessian_product(p.cview(), r.cview(), scale, out.view());
    ref_matrix want(k * batch, cols);
    for (index i = 0; i < k * batch; ++i) {
      const index b = i % batch;
      // The explicit per-sample Hessian H_b = diag(p_b) - p_b p_b^T.
      ref_matrix h(cols, cols);
      for (index c = 0; c < cols; ++c)
        for (index c2 = 0; c2 < cols; ++c2) h(c, c2) = (c == c2 ? real(p(b, c)) : 0) - real(p(b, c)) * real(p(b, c2));
      for (index c = 0; c < cols; ++c) {
        real s = 0;
        for (index c2 = 0; c2 < cols; ++c2) s += h(c, c2) * real(r(i, c2));
        want(i, c) = real(scale) * s;
      }
    }
    CHECK(relative_error(out, want) <= tol<T>);
    CHECK(out.padding_is(T(sentinel)));
  }
}

// ---- squared error ----------------------------------------------------------------------------

TEST_CASE_TEMPLATE("squared_error and its gradient with real targets and with one-hot labels", T, float, double) {
  random_source rng(61);
  const index rows = 5, cols = 4;
  const auto z = rng.filled<T>(rows, cols, cols + 1, -2, 2);
  const auto targets = rng.filled<T>(rows, cols, cols + 2, -2, 2);
  const std::vector<label_type> labels{2, 0, 3, 3, 1};
  for (bool one_hot : {false, true}) {
    CAPTURE(one_hot);
    const matrix_view<const T> t = one_hot ? matrix_view<const T>() : targets.cview();
    auto target = [&](index b, index c) -> real {
      return one_hot ? (labels[b] == c ? 1 : 0) : real(targets(b, c));
    };

    std::vector<T> losses(static_cast<std::size_t>(rows) + 1, T(sentinel));
    cpu::squared_error(z.cview(), labels.data(), t, vector_view<T>(losses.data(), rows));
    std::vector<real> want_loss(static_cast<std::size_t>(rows));
    for (index b = 0; b < rows; ++b) {
      real s = 0;
      for (index c = 0; c < cols; ++c) s += (real(z(b, c)) - target(b, c)) * (real(z(b, c)) - target(b, c));
      want_loss[b] = s / cols;
    }
    CHECK(losses[static_cast<std::size_t>(rows)] == T(sentinel));
    losses.pop_back();
    CHECK(relative_error(losses, want_loss) <= tol<T>);

    const T scale = T(-0.5);
    auto d = output<T>(rows, cols);
    cpu::squared_error_gradient(z.cview(), labels.data(), t, scale, d.view());
    ref_matrix want_d(rows, cols);
    for (index b = 0; b < rows; ++b)
      for (index c = 0; c < cols; ++c) want_d(b, c) = real(scale) * 2 / cols * (real(z(b, c)) - target(b, c));
    CHECK(relative_error(d, want_d) <= tol<T>);
    CHECK(d.padding_is(T(sentinel)));
  }
}

// ---- accuracy ---------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("count_correct: argmax per row, first maximum on ties", T, float, double) {
  const index rows = 6, cols = 3;
  host_matrix<T> z(rows, cols, cols + 1);  // NaN padding must not take part
  const double v[rows][cols] = {{1, 3, 3}, {1, 3, 3}, {5, 5, 5}, {-1, 2, 0}, {0, 0, 7}, {-3, -2, -2}};
  for (index b = 0; b < rows; ++b)
    for (index c = 0; c < cols; ++c) z(b, c) = T(v[b][c]);
  //                                    correct  wrong (tie)  correct  correct  wrong  correct
  const std::vector<label_type> labels{1, 2, 0, 1, 0, 1};
  CHECK(cpu::count_correct(z.cview(), labels.data()) == 4);
  CHECK(cpu::count_correct(z.view(), labels.data()) == 4);
  CHECK(cpu::count_correct(z.cview().row_block(0, 0), labels.data()) == 0);
  const std::vector<label_type> all_right{1, 1, 0, 1, 2, 1};
  CHECK(cpu::count_correct(z.cview(), all_right.data()) == rows);
}

} // namespace hydra::test
