// Tests of hydra::SGD (include/hydra/optim/sgd.hpp) against hand-computed trajectories.

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/optim/sgd.hpp"
#include "support/messages.hpp"

namespace {

using hydra::index;

template <class T>
hydra::vector<T, hydra::cpu> make(std::vector<T> values) {
  return hydra::vector<T, hydra::cpu>::from_host(values);
}

template <class T>
hydra::vector_view<const T> cview(const hydra::vector<T, hydra::cpu>& v) {
  return v.view();
}

using hydra::test::contains;
using hydra::test::message_of;

} // namespace

TEST_CASE_TEMPLATE("sgd: three steps with momentum and weight decay match a hand computation", T, float, double) {
  // p = 0.5, lambda = 0.25, eta = 0.5; all values are dyadic, so float and double are exact.
  hydra::SGD<T> opt(2, hydra::sgd_options{.momentum = 0.5, .weight_decay = 0.25});
  auto w = make<T>({1.0, -2.0});
  const auto g1 = make<T>({0.5, 1.0});
  const auto g2 = make<T>({-1.0, 0.25});
  const auto g3 = make<T>({0.0, 2.0});
  const T eta = 0.5;

  // Step 1: d = g1 + 0.25 w = [0.5 + 0.25, 1 - 0.5] = [0.75, 0.5]
  //         v = 0.5 * [0, 0] + d = [0.75, 0.5]
  //         w = [1 - 0.5 * 0.75, -2 - 0.5 * 0.5] = [0.625, -2.25]
  opt.step(w.view(), cview(g1), eta);
  CHECK(opt.velocity().data[0] == T(0.75));
  CHECK(opt.velocity().data[1] == T(0.5));
  CHECK(w[0] == T(0.625));
  CHECK(w[1] == T(-2.25));

  // Step 2: d = [-1 + 0.25 * 0.625, 0.25 + 0.25 * -2.25] = [-0.84375, -0.3125]
  //         v = 0.5 * [0.75, 0.5] + d = [0.375 - 0.84375, 0.25 - 0.3125] = [-0.46875, -0.0625]
  //         w = [0.625 + 0.5 * 0.46875, -2.25 + 0.5 * 0.0625] = [0.859375, -2.21875]
  opt.step(w.view(), cview(g2), eta);
  CHECK(opt.velocity().data[0] == T(-0.46875));
  CHECK(opt.velocity().data[1] == T(-0.0625));
  CHECK(w[0] == T(0.859375));
  CHECK(w[1] == T(-2.21875));

  // Step 3: d = [0 + 0.25 * 0.859375, 2 + 0.25 * -2.21875] = [0.21484375, 1.4453125]
  //         v = 0.5 * [-0.46875, -0.0625] + d = [-0.234375 + 0.21484375, -0.03125 + 1.4453125]
  //           = [-0.01953125, 1.4140625]
  //         w = [0.859375 + 0.5 * 0.01953125, -2.21875 - 0.5 * 1.4140625] = [0.869140625, -2.92578125]
  opt.step(w.view(), cview(g3), eta);
  CHECK(opt.velocity().data[0] == T(-0.01953125));
  CHECK(opt.velocity().data[1] == T(1.4140625));
  CHECK(w[0] == T(0.869140625));
  CHECK(w[1] == T(-2.92578125));
}

TEST_CASE_TEMPLATE("sgd: PyTorch-like hyperparameters (p = 0.9, lambda = 0.01, eta = 0.1)", T, float, double) {
  // One parameter, w0 = 2, gradients 1, -3, 0.5 (no weight decay in them).
  hydra::SGD<T> opt(1, {.momentum = 0.9, .weight_decay = 0.01});
  auto w = make<T>({2.0});
  const double tol = std::is_same_v<T, float> ? 1e-6 : 1e-14;
  const auto step = [&](double g) {
    const auto grad = make<T>({static_cast<T>(g)});
    opt.step(w.view(), cview(grad), T(0.1));
  };
  // 1: d = 1 + 0.01 * 2 = 1.02;            v = 1.02;                    w = 2 - 0.102 = 1.898
  step(1.0);
  CHECK(double(opt.velocity().data[0]) == doctest::Approx(1.02).epsilon(tol));
  CHECK(double(w[0]) == doctest::Approx(1.898).epsilon(tol));
  // 2: d = -3 + 0.01898 = -2.98102;         v = 0.918 - 2.98102 = -2.06302; w = 1.898 + 0.206302 = 2.104302
  step(-3.0);
  CHECK(double(opt.velocity().data[0]) == doctest::Approx(-2.06302).epsilon(tol));
  CHECK(double(w[0]) == doctest::Approx(2.104302).epsilon(tol));
  // 3: d = 0.5 + 0.02104302 = 0.52104302;   v = -1.856718 + 0.52104302 = -1.33567498
  //    w = 2.104302 + 0.133567498 = 2.237869498
  step(0.5);
  CHECK(double(opt.velocity().data[0]) == doctest::Approx(-1.33567498).epsilon(tol));
  CHECK(double(w[0]) == doctest::Approx(2.237869498).epsilon(tol));
}

TEST_CASE_TEMPLATE("sgd: momentum 0 is plain mini-batch gradient descent", T, float, double) {
  hydra::SGD<T> opt(2);  // defaults: momentum 0, weight decay 0
  CHECK(opt.momentum() == T(0));
  CHECK(opt.weight_decay() == T(0));
  CHECK(opt.parameter_count() == 2);
  auto w = make<T>({1.0, -2.0});
  const auto g1 = make<T>({0.5, 1.0});
  const auto g2 = make<T>({-1.0, 0.25});
  // w = [1 - 0.5 * 0.5, -2 - 0.5 * 1] = [0.75, -2.5]
  opt.step(w.view(), cview(g1), T(0.5));
  CHECK(w[0] == T(0.75));
  CHECK(w[1] == T(-2.5));
  // w = [0.75 + 0.5 * 1, -2.5 - 0.5 * 0.25] = [1.25, -2.625]; the velocity is the last gradient.
  opt.step(w.view(), cview(g2), T(0.5));
  CHECK(w[0] == T(1.25));
  CHECK(w[1] == T(-2.625));
  CHECK(opt.velocity().data[0] == T(-1.0));
  CHECK(opt.velocity().data[1] == T(0.25));
}

TEST_CASE_TEMPLATE("sgd: momentum 0 with weight decay", T, float, double) {
  hydra::SGD<T> opt(1, {.weight_decay = 0.5});
  auto w = make<T>({4.0});
  const auto g = make<T>({1.0});
  // d = 1 + 0.5 * 4 = 3, w = 4 - 0.25 * 3 = 3.25; then d = 1 + 1.625 = 2.625, w = 3.25 - 0.65625 = 2.59375
  opt.step(w.view(), cview(g), T(0.25));
  CHECK(w[0] == T(3.25));
  opt.step(w.view(), cview(g), T(0.25));
  CHECK(w[0] == T(2.59375));
  CHECK(opt.velocity().data[0] == T(2.625));
}

TEST_CASE("sgd: set_velocity, reset and options") {
  hydra::SGD<double> opt(2, {.momentum = 0.5});
  CHECK(opt.options().momentum == 0.5);
  CHECK(opt.options().weight_decay == 0.0);
  const auto v0 = make<double>({2.0, -4.0});
  opt.set_velocity(cview(v0));
  CHECK(opt.velocity().data[0] == 2.0);
  CHECK(opt.velocity().data[1] == -4.0);
  // v = 0.5 * [2, -4] + [1, 1] = [2, -1]; w = [0, 0] - 1 * v = [-2, 1]
  auto w = make<double>({0.0, 0.0});
  const auto g = make<double>({1.0, 1.0});
  opt.step(w.view(), cview(g), 1.0);
  CHECK(w[0] == -2.0);
  CHECK(w[1] == 1.0);
  opt.reset();
  CHECK(opt.velocity().data[0] == 0.0);
  CHECK(opt.velocity().data[1] == 0.0);
  CHECK(opt.velocity().size == 2);
}

TEST_CASE("sgd: the constructor rejects bad hyperparameters") {
  using E = hydra::invalid_argument;
  const auto nan = std::numeric_limits<double>::quiet_NaN();
  const auto inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_AS(hydra::SGD<double>(2, {.momentum = 1.0}), E);
  CHECK(contains(message_of<E>([] { hydra::SGD<double>(2, {.momentum = 1.0}); }), "momentum"));
  CHECK(contains(message_of<E>([] { hydra::SGD<double>(2, {.momentum = 1.5}); }), "got 1.5"));
  CHECK(contains(message_of<E>([] { hydra::SGD<double>(2, {.momentum = -0.1}); }), "got -0.1"));
  CHECK(contains(message_of<E>([&] { hydra::SGD<double>(2, {.momentum = nan}); }), "got nan"));
  CHECK(contains(message_of<E>([&] { hydra::SGD<float>(2, {.momentum = 0.999999999}); }), "rounds to 1"));
  CHECK_NOTHROW(hydra::SGD<double>(2, {.momentum = 0.999999999}));
  const auto wd = message_of<E>([] { hydra::SGD<double>(2, {.weight_decay = -0.001}); });
  CHECK(contains(wd, "weight_decay"));
  CHECK(contains(wd, "got -0.001"));
  CHECK(contains(message_of<E>([&] { hydra::SGD<double>(2, {.weight_decay = inf}); }), "got inf"));
  CHECK(contains(message_of<E>([] { hydra::SGD<double>(-1); }), "parameter_count must be >= 0, got -1"));
  // Every error is a hydra::error.
  CHECK_THROWS_AS(hydra::SGD<float>(2, {.momentum = 2}), hydra::error);
}

TEST_CASE_TEMPLATE("sgd: step rejects wrong sizes and bad learning rates", T, float, double) {
  hydra::SGD<T> opt(3, {.momentum = 0.9});
  auto w = make<T>({1, 2, 3});
  auto w_short = make<T>({1, 2});
  const auto g = make<T>({1, 1, 1});
  const auto g_long = make<T>({1, 1, 1, 1});

  const auto ws = message_of<hydra::shape_error>([&] { opt.step(w_short.view(), cview(g), T(0.1)); });
  CHECK(contains(ws, "parameter vector has 2 elements, expected 3"));
  const auto gs = message_of<hydra::shape_error>([&] { opt.step(w.view(), cview(g_long), T(0.1)); });
  CHECK(contains(gs, "gradient has 4 elements, expected 3"));
  const auto vs = message_of<hydra::shape_error>([&] { opt.set_velocity(cview(g_long)); });
  CHECK(contains(vs, "velocity has 4 elements, expected 3"));

  CHECK(contains(message_of<hydra::invalid_argument>([&] { opt.step(w.view(), cview(g), T(0)); }),
                 "learning_rate must be finite and > 0, got 0"));
  CHECK(contains(message_of<hydra::invalid_argument>([&] { opt.step(w.view(), cview(g), T(-0.5)); }), "got -0.5"));
  CHECK(contains(message_of<hydra::invalid_argument>(
                     [&] { opt.step(w.view(), cview(g), std::numeric_limits<T>::quiet_NaN()); }),
                 "got nan"));
  CHECK(contains(message_of<hydra::invalid_argument>(
                     [&] { opt.step(w.view(), cview(g), std::numeric_limits<T>::infinity()); }),
                 "got inf"));
  // A rejected step changes nothing.
  CHECK(w[0] == T(1));
  CHECK(opt.velocity().data[0] == T(0));
}

TEST_CASE("sgd: the docs/optim.md example") {
  // Keep in sync with the example in docs/optim.md.
  hydra::SGD<float> optimizer(3, {.momentum = 0.9, .weight_decay = 5e-4});
  auto w = hydra::vector<float, hydra::cpu>::from_host(std::vector<float>{0.1f, -0.2f, 0.3f});
  auto g = hydra::vector<float, hydra::cpu>::from_host(std::vector<float>{1.0f, 0.0f, -1.0f});
  optimizer.step(w.view(), std::as_const(g).view(), 0.01f);
  // v = g + 5e-4 w = [1.00005, -0.0001, -0.99985]; w = w - 0.01 v
  CHECK(double(w[0]) == doctest::Approx(0.1 - 0.0100005).epsilon(1e-6));
  CHECK(double(w[1]) == doctest::Approx(-0.2 + 0.000001).epsilon(1e-6));
  CHECK(double(w[2]) == doctest::Approx(0.3 + 0.0099985).epsilon(1e-6));
}
