// Grad-Dot, Grad-Cos and TracIn-CP against a direct computation written here: every per-sample
// gradient by central finite differences of the model's loss on that one sample (no gradient code
// of the library involved), then explicit dot products, cosines and the weighted sum. Then the
// identities between the methods, chunking, zero gradients, and every refusal.

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <span>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/influence/influence.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "influence/support.hpp"
#include "support/finite_difference.hpp"
#include "support/messages.hpp"

namespace hydra::test {
namespace {

struct problem {
  dataset<double> train = make_data(11, 3, 3, 21);
  dataset<double> test = make_data(4, 3, 3, 22);
  Mlp<double> model{3, {5}, 3, activation::tanh};  // 38 parameters
  SoftmaxCrossEntropy<double> loss;
  index P = model.parameter_count();
  std::vector<index> tracked{9, 0, 4, 4, 10, 2, 7};  // any order, a repeat
  std::vector<double> w = parameters(31);

  std::vector<double> parameters(unsigned seed) {
    std::vector<double> v(static_cast<std::size_t>(P));
    model.initialize(vector_view<double>(v.data(), P), seed);
    const auto noise = normal_vector(v.size(), seed + 100, 0.3);  // away from the initial scale
    for (std::size_t q = 0; q < v.size(); ++q) v[q] += noise[q];
    return v;
  }
  [[nodiscard]] vector_view<const double> view(const std::vector<double>& v) const { return {v.data(), P}; }

  /// ∇ℓ(sample j of data; w) by central differences of the loss of that sample alone, h = 1e-5:
  /// truncation ~h²·|ℓ'''| ≈ 1e-10, rounding ~ε·|ℓ|/h ≈ 1e-11, i.e. ~1e-9 relative to ‖∇ℓ‖.
  std::vector<double> fd_gradient(const dataset<double>& data, index j, const std::vector<double>& at) {
    const label_type y = data.label(j);
    const matrix_view<const double> x(data.sample(j).data(), 1, data.sample_size());
    return central_gradient([&](const std::vector<double>& v) { return model.loss(view(v), x, {&y, {}}, loss); }, at,
                            1e-5);
  }
};

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t q = 0; q < a.size(); ++q) s += a[q] * b[q];
  return s;
}

/// The n × M reference Σ_c weights[c] · f(g_test_j(w_c), g_train_i(w_c)), row-major.
template <class F>
std::vector<double> reference(problem& p, const std::vector<std::vector<double>>& ws,
                              const std::vector<double>& weights, F&& f) {
  const auto n = p.tracked.size();
  const auto M = static_cast<std::size_t>(p.test.size());
  std::vector<double> C(n * M, 0.0);
  for (std::size_t c = 0; c < ws.size(); ++c)
    for (std::size_t r = 0; r < n; ++r) {
      const auto gi = p.fd_gradient(p.train, p.tracked[r], ws[c]);
      for (std::size_t j = 0; j < M; ++j)
        C[r * M + j] += weights[c] * f(p.fd_gradient(p.test, static_cast<index>(j), ws[c]), gi);
    }
  return C;
}

} // namespace

// Tolerance of the three comparisons: the finite-difference gradients are ~1e-9 relative (above),
// so every dot product is off by ~1e-9·‖g_j‖‖g_i‖ and the whole n × M array by ~1e-9 in norm;
// 1e-7 leaves two orders of margin and still catches any wrong factor, sign or transposition.
// (Measured: 2e-11 for each method.)
TEST_CASE("grad_dot is (1/N)·∇ℓ_test·∇ℓ_train at w, against finite-difference gradients") {
  problem p;
  const auto C = grad_dot(p.model, p.loss, p.view(p.w), p.train, p.tracked, p.test);
  REQUIRE(C.rows() == static_cast<index>(p.tracked.size()));
  REQUIRE(C.cols() == p.test.size());
  const auto expected = reference(p, {p.w}, {1.0 / static_cast<double>(p.train.size())},
                                  [](const auto& a, const auto& b) { return dot(a, b); });
  CHECK(relative_error(C.to_host(), expected) <= 1e-7);
}

TEST_CASE("grad_cos is the cosine of the two gradients, against finite-difference gradients") {
  problem p;
  const auto C = grad_cos(p.model, p.loss, p.view(p.w), p.train, p.tracked, p.test);
  const auto expected = reference(p, {p.w}, {1.0}, [](const auto& a, const auto& b) {
    return dot(a, b) / std::sqrt(dot(a, a) * dot(b, b));
  });
  const auto got = C.to_host();
  CHECK(relative_error(got, expected) <= 1e-7);
  for (const double c : got) CHECK(std::abs(c) <= 1 + 1e-15);
  // The repeat of sample 4 gives the same row.
  const auto M = static_cast<std::size_t>(p.test.size());
  for (std::size_t j = 0; j < M; ++j) CHECK(got[2 * M + j] == got[3 * M + j]);
}

TEST_CASE("tracin is the weighted sum over checkpoints of ∇ℓ_test·∇ℓ_train, against finite differences") {
  problem p;
  const std::vector<std::vector<double>> ws{p.parameters(41), p.parameters(42), p.w};
  const std::vector<double> weights{0.25, 0.0, 0.0625};  // a zero weight is allowed: that checkpoint adds nothing
  std::vector<tracin_checkpoint<double>> checkpoints;
  for (std::size_t c = 0; c < ws.size(); ++c)
    checkpoints.push_back({static_cast<index>(3 * c + 3), p.view(ws[c]), weights[c]});
  const auto C = tracin(p.model, p.loss, std::span<const tracin_checkpoint<double>>(checkpoints), p.train, p.tracked,
                        p.test);
  const auto expected = reference(p, ws, weights, [](const auto& a, const auto& b) { return dot(a, b); });
  CHECK(relative_error(C.to_host(), expected) <= 1e-7);
  // Each checkpoint's gradients differ: the sum is not one checkpoint's term scaled.
  const auto first = reference(p, {ws[0]}, {weights[0]}, [](const auto& a, const auto& b) { return dot(a, b); });
  CHECK(relative_error(first, expected) >= 1e-2);
}

TEST_CASE("tracin with the one checkpoint w_T at weight 1/N is grad_dot, bit for bit") {
  problem p;
  const std::vector<tracin_checkpoint<double>> one{{7, p.view(p.w), 1.0 / static_cast<double>(p.train.size())}};
  const gradient_similarity_options options{.gradient_batch = 3, .train_chunk = 2};
  const auto C_tracin = tracin(p.model, p.loss, std::span<const tracin_checkpoint<double>>(one), p.train, p.tracked,
                               p.test, options);
  const auto C_dot = grad_dot(p.model, p.loss, p.view(p.w), p.train, p.tracked, p.test, options);
  CHECK(C_tracin.to_host() == C_dot.to_host());
}

TEST_CASE("chunking the training samples and batching the gradients change nothing but rounding") {
  problem p;
  const std::vector<double> w2 = p.parameters(43);
  const std::vector<tracin_checkpoint<double>> checkpoints{{1, p.view(w2), 0.5}, {2, p.view(p.w), 2.0}};
  const gradient_similarity_options whole{.gradient_batch = 1000, .train_chunk = 1000};
  const auto dot_whole = grad_dot(p.model, p.loss, p.view(p.w), p.train, p.tracked, p.test, whole).to_host();
  const auto cos_whole = grad_cos(p.model, p.loss, p.view(p.w), p.train, p.tracked, p.test, whole).to_host();
  const auto tracin_whole =
      tracin(p.model, p.loss, std::span<const tracin_checkpoint<double>>(checkpoints), p.train, p.tracked, p.test,
             whole)
          .to_host();
  for (const index chunk : {1, 2, 3, 7}) {
    for (const index batch : {1, 2, 5}) {
      CAPTURE(chunk);
      CAPTURE(batch);
      const gradient_similarity_options options{.gradient_batch = batch, .train_chunk = chunk};
      CHECK(relative_error(grad_dot(p.model, p.loss, p.view(p.w), p.train, p.tracked, p.test, options).to_host(),
                           dot_whole) <= 1e-14);
      CHECK(relative_error(grad_cos(p.model, p.loss, p.view(p.w), p.train, p.tracked, p.test, options).to_host(),
                           cos_whole) <= 1e-14);
      CHECK(relative_error(tracin(p.model, p.loss, std::span<const tracin_checkpoint<double>>(checkpoints), p.train,
                                  p.tracked, p.test, options)
                               .to_host(),
                           tracin_whole) <= 1e-14);
    }
  }
}

TEST_CASE("grad_cos of a zero gradient is 0, not NaN") {
  // Softmax regression whose weights make one test point's and one training point's logits differ
  // by 1e4: the softmax is exactly one-hot in double, so their gradients are exactly zero.
  SoftmaxRegression<double> model(3, 3);
  SoftmaxCrossEntropy<double> loss;
  const index P = model.parameter_count();
  std::vector<double> w(static_cast<std::size_t>(P), 0.0);
  w[0] = 1;  // weight (class 0, feature 0) in the (C × D weights, C biases) layout
  auto x = normal_vector(5 * 3, 51);
  x[0] = 1e4, x[1] = 0, x[2] = 0;  // training sample 0: x = 1e4·e_0, label 0
  const dataset<double> train({3}, x, std::vector<label_type>{0, 1, 2, 1, 0}, 3);
  auto xt = normal_vector(3 * 3, 52);
  xt[3] = 1e4, xt[4] = 0, xt[5] = 0;  // test point 1: the same
  const dataset<double> test({3}, xt, std::vector<label_type>{2, 0, 1}, 3);
  const vector_view<const double> wv(w.data(), P);
  const auto G = sample_gradients(model, loss, train, w);
  const auto Gt = sample_gradients(model, loss, test, w);
  REQUIRE(norm(row_of(G, 0, static_cast<std::size_t>(P))) == 0.0);
  REQUIRE(norm(row_of(Gt, 1, static_cast<std::size_t>(P))) == 0.0);
  REQUIRE(norm(row_of(G, 1, static_cast<std::size_t>(P))) > 0.0);

  const std::vector<index> tracked{0, 1, 2, 3, 4};
  const auto C = grad_cos(model, loss, wv, train, tracked, test).to_host();
  for (index r = 0; r < 5; ++r)
    for (index j = 0; j < 3; ++j) {
      CAPTURE(r);
      CAPTURE(j);
      const double c = C[static_cast<std::size_t>(r * 3 + j)];
      CHECK(std::isfinite(c));
      if (r == 0 || j == 1) CHECK(c == 0.0);
    }
  CHECK(C[static_cast<std::size_t>(1 * 3 + 0)] != 0.0);  // the others are real cosines
}

TEST_CASE("tracin_weight is η·K/(|B|(1 − μ)) and refuses what has no meaning") {
  CHECK(tracin_weight(0.1, 2, 10, 0.0) == doctest::Approx(0.02).epsilon(1e-15));
  CHECK(tracin_weight(0.1, 1, 4, 0.9) == doctest::Approx(0.25).epsilon(1e-14));
  CHECK_THROWS_WITH_AS((void)tracin_weight(0.0, 1, 4, 0.9), doctest::Contains("learning rate must be finite and > 0"),
                       invalid_argument);
  CHECK_THROWS_WITH_AS((void)tracin_weight(std::numeric_limits<double>::infinity(), 1, 4, 0.9),
                       doctest::Contains("learning rate"), invalid_argument);
  CHECK_THROWS_WITH_AS((void)tracin_weight(0.1, 0, 4, 0.9), doctest::Contains("epochs must be > 0, got 0"),
                       invalid_argument);
  CHECK_THROWS_WITH_AS((void)tracin_weight(0.1, 1, 0, 0.9), doctest::Contains("batch size must be > 0, got 0"),
                       invalid_argument);
  CHECK_THROWS_WITH_AS((void)tracin_weight(0.1, 1, 4, 1.0), doctest::Contains("momentum must be in [0, 1)"),
                       invalid_argument);
  CHECK_THROWS_WITH_AS((void)tracin_weight(0.1, 1, 4, -0.1), doctest::Contains("momentum must be in [0, 1)"),
                       invalid_argument);
}

TEST_CASE("gradient similarity: every bad input is refused in one line, before any gradient") {
  problem p;
  const auto w = p.view(p.w);
  const std::vector<double> w2 = p.parameters(44);
  using checkpoints = std::vector<tracin_checkpoint<double>>;
  auto run_tracin = [&](const checkpoints& cs, const std::vector<index>& tracked = {0, 1},
                        const gradient_similarity_options& options = {}) {
    (void)tracin(p.model, p.loss, std::span<const tracin_checkpoint<double>>(cs), p.train, tracked, p.test, options);
  };
  auto one_line = [](const std::string& m) { return m.find('\n') == std::string::npos; };

  SUBCASE("tracked indices outside the training set") {
    const std::vector<index> bad{0, 11};
    CHECK_THROWS_WITH_AS((void)grad_dot(p.model, p.loss, w, p.train, bad, p.test),
                         "grad_dot: tracked[1] = 11 is outside the training set [0, 11)", invalid_argument);
    CHECK_THROWS_WITH_AS((void)grad_cos(p.model, p.loss, w, p.train, std::vector<index>{-1}, p.test),
                         "grad_cos: tracked[0] = -1 is outside the training set [0, 11)", invalid_argument);
    CHECK_THROWS_WITH_AS(run_tracin({{0, w, 1.0}}, bad), doctest::Contains("tracin: tracked[1] = 11 is outside"),
                         invalid_argument);
  }
  SUBCASE("parameters and test samples of the wrong size") {
    const std::vector<double> short_w(5, 0.0);
    const vector_view<const double> w_short(short_w.data(), 5);
    CHECK_THROWS_WITH_AS((void)grad_dot(p.model, p.loss, w_short, p.train, p.tracked, p.test),
                         "grad_dot: w has 5 entries, the model has 38 parameters", shape_error);
    const dataset<double> wide = make_data(2, 4, 3, 23);
    CHECK_THROWS_WITH_AS((void)grad_cos(p.model, p.loss, w, p.train, p.tracked, wide),
                         "grad_cos: test samples have 4 features, training samples 3", shape_error);
    CHECK_THROWS_WITH_AS(run_tracin({{0, w, 1.0}, {1, vector_view<const double>(w2.data(), 37), 1.0}}),
                         "tracin: checkpoints[1] has 37 entries, the model has 38 parameters", shape_error);
  }
  SUBCASE("checkpoint steps that are not strictly increasing") {
    const auto message = message_of<invalid_argument>([&] { run_tracin({{2, w, 1.0}, {2, p.view(w2), 1.0}}); });
    CHECK(message == "tracin: checkpoints[1].step = 2 does not come after checkpoints[0].step = 2; checkpoint steps "
                     "must be strictly increasing");
    CHECK(one_line(message));
    CHECK_THROWS_WITH_AS(run_tracin({{0, w, 1.0}, {5, p.view(w2), 1.0}, {4, w, 1.0}}),
                         doctest::Contains("checkpoints[2].step = 4 does not come after checkpoints[1].step = 5"),
                         invalid_argument);
  }
  SUBCASE("weights that are negative or not finite") {
    CHECK_THROWS_WITH_AS(run_tracin({{0, w, 1.0}, {1, p.view(w2), -0.5}}),
                         "tracin: checkpoints[1].weight = -0.500000 must be finite and >= 0", invalid_argument);
    CHECK_THROWS_WITH_AS(run_tracin({{0, w, std::numeric_limits<double>::quiet_NaN()}}),
                         doctest::Contains("tracin: checkpoints[0].weight = nan must be finite"), invalid_argument);
    CHECK_THROWS_WITH_AS(run_tracin({{0, w, std::numeric_limits<double>::infinity()}}),
                         doctest::Contains("checkpoints[0].weight = inf must be finite"), invalid_argument);
  }
  SUBCASE("no checkpoints, sizes that are not positive") {
    CHECK_THROWS_WITH_AS(run_tracin({}), "tracin: no checkpoints", invalid_argument);
    CHECK_THROWS_WITH_AS(run_tracin({{0, w, 1.0}}, {0}, {.train_chunk = 0}),
                         "tracin: train_chunk must be > 0, got 0", invalid_argument);
    CHECK_THROWS_WITH_AS((void)grad_dot(p.model, p.loss, w, p.train, p.tracked, p.test, {.gradient_batch = -1}),
                         "grad_dot: gradient_batch must be > 0, got -1", invalid_argument);
  }
  SUBCASE("a gradient that is not finite names the sample") {
    auto bad = p.w;
    bad[0] = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH_AS((void)grad_cos(p.model, p.loss, p.view(bad), p.train, p.tracked, p.test),
                         "grad_cos: the gradient of test sample 0 at w is not finite; check the parameters",
                         numerical_error);
    CHECK_THROWS_WITH_AS(run_tracin({{0, w, 1.0}, {1, p.view(bad), 1.0}}),
                         "tracin: the gradient of test sample 0 at checkpoints[1] is not finite; check the parameters",
                         numerical_error);
  }
}

} // namespace hydra::test
