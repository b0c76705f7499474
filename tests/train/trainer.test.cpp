// The training loop against an independent, hand-written SGD loop with closed-form gradients;
// callbacks, schedule notifications, evaluation and bad input.

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/data/batch_order.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "hydra/train/trainer.hpp"

namespace hydra::test {
namespace {

/// y = 2 x0 − x1 + 0.5 + small deterministic wiggle; 12 samples, 2 features, 1 real target.
dataset<double> regression_data() {
  std::vector<double> x, y;
  for (int i = 0; i < 12; ++i) {
    const double a = std::sin(1.3 * i), b = std::cos(0.7 * i + 0.2);
    x.push_back(a);
    x.push_back(b);
    y.push_back(2 * a - b + 0.5 + 0.01 * std::sin(5.0 * i));
  }
  return dataset<double>({2}, std::move(x), std::vector<label_type>(12, 0), std::move(y), 1);
}

struct recorder {
  std::vector<index> before_steps, after_steps, epochs;
  std::vector<double> first_parameter_before, first_parameter_after, rates;
  template <class Ctx>
  void before_update(const Ctx& c) {
    before_steps.push_back(c.step);
    first_parameter_before.push_back(c.parameters.data[0]);
    rates.push_back(c.learning_rate);
  }
  template <class Ctx>
  void after_update(const Ctx& c) {
    after_steps.push_back(c.step);
    first_parameter_after.push_back(c.parameters.data[0]);
  }
  void on_epoch_end(const epoch_report& r) { epochs.push_back(r.epoch); }
};

/// Plain gradient descent w ← w − η·g written as a user would: an update rule and nothing else
/// (no momentum, weight decay or velocity), which is all training needs of an optimizer.
struct gradient_descent {
  using value_type = double;
  void step(vector_view<double> w, vector_view<const double> g, double eta) {
    for (index k = 0; k < w.size; ++k) w.data[k] -= eta * g.data[k];
  }
};

struct double_cpu_hooks {
  void before_update(const step_context<double, cpu>&) {}
  void on_epoch_end(const epoch_report&) {}
};
struct float_hook {
  void after_update(const step_context<float, cpu>&) {}
};
struct mutable_context_hook {
  void before_update(step_context<double, cpu>&) {}
};
struct epoch_number_hook {
  void on_epoch_end(index) {}
};
struct no_hooks {};

// A named hook must be callable as the trainer calls it (compile_fail/callback_wrong_signature
// shows the sentence); a callback may have any subset of hooks, templates included.
static_assert(Callback<double_cpu_hooks, double, cpu>);
static_assert(Callback<recorder, double, cpu>);
static_assert(Callback<recorder, float, cpu>);
static_assert(Callback<no_hooks, float, cpu>);
static_assert(Callback<float_hook, float, cpu>);
static_assert(!Callback<float_hook, double, cpu>);
static_assert(!Callback<double_cpu_hooks, float, cpu>);
static_assert(!Callback<mutable_context_hook, double, cpu>);
static_assert(!Callback<epoch_number_hook, double, cpu>);
static_assert(Optimizer<gradient_descent> && !LinearizedOptimizer<gradient_descent> &&
              !CheckpointableOptimizer<gradient_descent>);

} // namespace

TEST_CASE("trainer trains with an update rule that is not SGD, and calls its callbacks' hooks") {
  const auto data = regression_data();
  const auto order = batch_order::sequential(data.size(), 4, 2);  // 3 steps per epoch, 6 steps
  LinearRegression<double> model(2, 1);
  MeanSquaredError<double> loss;
  gradient_descent optimizer;
  constant_schedule schedule(0.05);
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  std::vector<double> w{0.3, -0.2, 0.1};
  std::vector<double> reference = w;
  recorder rec;
  (void)fit.fit(vector_view<double>(w.data(), 3), data, order, nullptr, rec);
  for (index t = 0; t < order.steps(); ++t) {  // w ← w − η·∇ with the closed-form MSE gradient
    std::vector<double> g(3, 0.0);
    for (index i : order.batch(t)) {
      const auto xi = data.sample(i);
      const double r = reference[0] * xi[0] + reference[1] * xi[1] + reference[2] - data.target(i)[0];
      g[0] += 2 * r * xi[0] / 4;
      g[1] += 2 * r * xi[1] / 4;
      g[2] += 2 * r / 4;
    }
    for (int k = 0; k < 3; ++k) reference[k] -= 0.05 * g[k];
  }
  for (int k = 0; k < 3; ++k) CHECK(w[k] == doctest::Approx(reference[k]).epsilon(1e-13));
  CHECK(rec.before_steps == std::vector<index>{0, 1, 2, 3, 4, 5});
  CHECK(rec.epochs == std::vector<index>{0, 1});
}

TEST_CASE("trainer follows an independent SGD loop with momentum, weight decay and a decaying rate") {
  const auto data = regression_data();
  const auto order = batch_order::shuffled(data.size(), 4, 3, /*seed=*/7);  // 3 steps per epoch, 9 steps
  LinearRegression<double> model(2, 1);
  MeanSquaredError<double> loss;
  const double p = 0.9, lambda = 0.01, eta0 = 0.1, gamma = 0.8;
  SGD<double> optimizer(model.parameter_count(), {.momentum = p, .weight_decay = lambda});
  exponential_schedule schedule(eta0, gamma);
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});

  std::vector<double> w{0.3, -0.2, 0.1};  // W (1 × 2) then b
  std::vector<double> reference = w;
  recorder rec;
  const auto history = fit.fit(vector_view<double>(w.data(), 3), data, order, nullptr, rec);

  // Reference: the MSE gradient in closed form, ∇ = (2/B) Σ_b (w·x_b + b − y_b) [x_b, 1] (C = 1),
  // and PyTorch's SGD update v ← p v + ∇ + λ w, w ← w − η v with η_t = η0 γ^t.
  std::vector<double> v(3, 0.0);
  for (index t = 0; t < order.steps(); ++t) {
    std::vector<double> g(3, 0.0);
    const auto batch = order.batch(t);
    for (index i : batch) {
      const auto xi = data.sample(i);
      const double r = reference[0] * xi[0] + reference[1] * xi[1] + reference[2] - data.target(i)[0];
      g[0] += 2 * r * xi[0] / 4;
      g[1] += 2 * r * xi[1] / 4;
      g[2] += 2 * r / 4;
    }
    const double eta = eta0 * std::pow(gamma, static_cast<double>(t));
    CHECK(rec.rates[static_cast<std::size_t>(t)] == doctest::Approx(eta).epsilon(1e-15));
    CHECK(rec.first_parameter_before[static_cast<std::size_t>(t)] == doctest::Approx(reference[0]).epsilon(1e-13));
    for (int k = 0; k < 3; ++k) {
      v[k] = p * v[k] + g[k] + lambda * reference[k];
      reference[k] -= eta * v[k];
    }
    CHECK(rec.first_parameter_after[static_cast<std::size_t>(t)] == doctest::Approx(reference[0]).epsilon(1e-13));
  }
  for (int k = 0; k < 3; ++k) CHECK(w[k] == doctest::Approx(reference[k]).epsilon(1e-13));
  CHECK(rec.before_steps == std::vector<index>{0, 1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(rec.after_steps == rec.before_steps);
  CHECK(rec.epochs == std::vector<index>{0, 1, 2});
  REQUIRE(history.size() == 3);
  CHECK(history[2].steps == 3);
  CHECK(history[2].learning_rate == doctest::Approx(eta0 * std::pow(gamma, 8.0)));
  CHECK(schedule.steps_completed() == 9);
}

TEST_CASE("trainer learns a separable classification problem and evaluates it") {
  // Two Gaussian-free clusters on a grid: class = [x0 + x1 > 0].
  std::vector<float> x;
  std::vector<label_type> y;
  for (int i = 0; i < 200; ++i) {
    const float a = static_cast<float>(std::sin(0.37 * i) * 2), b = static_cast<float>(std::cos(0.91 * i) * 2);
    if (std::abs(a + b) < 0.2f) continue;  // keep a margin
    x.push_back(a);
    x.push_back(b);
    y.push_back(a + b > 0 ? 1 : 0);
  }
  const dataset<float> data({2}, std::move(x), std::move(y));
  SoftmaxRegression<float> model(2, 2);
  SoftmaxCrossEntropy<float> loss;
  SGD<float> optimizer(model.parameter_count(), {.momentum = 0.9});
  constant_schedule schedule(0.1);
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  std::vector<float> w(static_cast<std::size_t>(model.parameter_count()), 0.0f);
  const auto before = fit.evaluate(vector_view<const float>(w.data(), 6), data);
  CHECK(before.loss == doctest::Approx(std::log(2.0)).epsilon(1e-6));  // zero weights: p = 1/2 everywhere
  const auto history = fit.fit(vector_view<float>(w.data(), 6), data, batch_order::shuffled(data.size(), 16, 20, 1), &data);
  REQUIRE(history.size() == 20);
  CHECK(history.back().training_loss < 0.25 * history.front().training_loss);
  CHECK(history.back().validation_accuracy >= 0.98);
  const auto after = fit.evaluate(vector_view<const float>(w.data(), 6), data);
  CHECK(after.accuracy == doctest::Approx(history.back().validation_accuracy));
  CHECK(after.samples == data.size());
}

TEST_CASE("trainer stops at the first non-finite loss and names the step and the sample") {
  std::vector<double> x{1, 2, 3, 4, 5, 6, 7, 8};
  x[5] = std::nan("");  // one feature per sample: sample 5 is not finite
  const dataset<double> data({1}, std::move(x), std::vector<label_type>{0, 1, 0, 1, 0, 1, 0, 1});
  SoftmaxRegression<double> model(1, 2);
  SoftmaxCrossEntropy<double> loss;
  SGD<double> optimizer(model.parameter_count());
  constant_schedule schedule(0.1);
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  std::vector<double> w(4, 0.1);
  // Sequential batches of 2: sample 5 is in the batch of step 2.
  const auto order = batch_order::sequential(8, 2, 1);
  CHECK_THROWS_AS(fit.fit(vector_view<double>(w.data(), 4), data, order, nullptr), numerical_error);
  std::vector<double> w2(4, 0.1);
  CHECK_THROWS_WITH(fit.fit(vector_view<double>(w2.data(), 4), data, order, nullptr),
                    doctest::Contains("at step 2 (epoch 0)"));
  std::vector<double> w3(4, 0.1);
  try {
    fit.fit(vector_view<double>(w3.data(), 4), data, order, nullptr);
    FAIL("no divergence_error");
  } catch (const divergence_error& e) {
    CHECK(e.step() == 2);
    CHECK(e.epoch() == 0);
    CHECK(e.sample() == 5);  // batch {4, 5}: sample 4's loss is finite
    CHECK(std::isnan(e.batch_loss()));
  }
}

TEST_CASE("trainer's max_loss bound stops the run at the step a hand-written loop finds past it") {
  // Gradient descent on least squares with a rate far above 2/λ_max: the batch loss grows
  // geometrically and stays finite for many steps; the bound must stop it at the first step whose
  // batch loss exceeds it, naming that batch's sample of largest loss.
  const auto data = regression_data();
  const auto order = batch_order::shuffled(data.size(), 4, 20, /*seed=*/3);
  LinearRegression<double> model(2, 1);
  MeanSquaredError<double> loss;
  SGD<double> optimizer(model.parameter_count(), {.momentum = 0});
  const double eta = 2.5, bound = 1e6;
  constant_schedule schedule(eta);
  trainer_options settings{.progress = progress_mode::never};
  settings.max_loss = bound;
  trainer fit(model, loss, optimizer, schedule, settings);
  std::vector<double> w{0.3, -0.2, 0.1};

  // Reference: the same steps by hand, MSE per sample r² (C = 1), gradient (2/B) Σ r [x, 1].
  std::vector<double> v = w;
  index expected_step = -1, expected_sample = -1;
  double expected_loss = 0;
  for (index t = 0; t < order.steps() && expected_step < 0; ++t) {
    double batch_loss = 0, worst = -1;
    std::vector<double> g(3, 0.0);
    const auto batch = order.batch(t);
    for (index i : batch) {
      const auto xi = data.sample(i);
      const double r = v[0] * xi[0] + v[1] * xi[1] + v[2] - data.target(i)[0];
      batch_loss += r * r / 4;
      if (r * r > worst) {
        worst = r * r;
        expected_sample = i;
      }
      g[0] += 2 * r * xi[0] / 4;
      g[1] += 2 * r * xi[1] / 4;
      g[2] += 2 * r / 4;
    }
    if (batch_loss > bound) {
      expected_step = t;
      expected_loss = batch_loss;
    }
    for (int k = 0; k < 3; ++k) v[k] -= eta * g[k];
  }
  REQUIRE(expected_step > 3);  // a climb over several steps, not a blow-up at the start
  REQUIRE(std::isfinite(expected_loss));
  try {
    fit.fit(vector_view<double>(w.data(), 3), data, order, nullptr);
    FAIL("no divergence_error");
  } catch (const divergence_error& e) {
    CHECK(e.step() == expected_step);
    CHECK(e.epoch() == order.epoch_of(expected_step));
    CHECK(e.sample() == expected_sample);
    CHECK(e.batch_loss() == doctest::Approx(expected_loss).epsilon(1e-10));
    CHECK(std::string(e.what()).find("above the bound") != std::string::npos);
  }
}

TEST_CASE("trainer reports parameters that the last step made non-finite") {
  // One step of 4 samples: the loss at w_0 is finite, the update overflows double.
  const dataset<double> data({1}, std::vector<double>{10, 10, 10, 10}, std::vector<label_type>(4, 0),
                             std::vector<double>{0, 0, 0, 0}, 1);
  LinearRegression<double> model(1, 1);
  MeanSquaredError<double> loss;
  SGD<double> optimizer(model.parameter_count(), {.momentum = 0});
  constant_schedule schedule(1e307);
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  std::vector<double> w{1.0, 0.0};
  try {
    fit.fit(vector_view<double>(w.data(), 2), data, batch_order::sequential(4, 4, 1), nullptr);
    FAIL("no divergence_error");
  } catch (const divergence_error& e) {
    CHECK(e.step() == 0);
    CHECK(e.sample() == -1);
    CHECK(std::string(e.what()).find("parameter 0 is -inf after the last step (0)") != std::string::npos);
  }
}

TEST_CASE("trainer rejects labels, features and parameters that do not fit the model") {
  const dataset<double> data({3}, std::vector<double>(12, 0.5), std::vector<label_type>{0, 1, 2, 1});
  SoftmaxRegression<double> two_classes(3, 2);
  SoftmaxCrossEntropy<double> loss;
  SGD<double> optimizer(two_classes.parameter_count());
  constant_schedule schedule(0.1);
  trainer fit(two_classes, loss, optimizer, schedule, {.progress = progress_mode::never});
  std::vector<double> w(static_cast<std::size_t>(two_classes.parameter_count()));
  const auto order = batch_order::shuffled(4, 2, 1, 0);
  CHECK_THROWS_AS(fit.fit(vector_view<double>(w.data(), 8), data, order, nullptr), invalid_argument);
  CHECK_THROWS_WITH(fit.fit(vector_view<double>(w.data(), 8), data, order, nullptr),
                    doctest::Contains("label[2] = 2 is out of range for a model with 2 outputs"));

  SoftmaxRegression<double> wide(5, 3);
  SGD<double> opt3(wide.parameter_count());
  trainer fit_wide(wide, loss, opt3, schedule, {.progress = progress_mode::never});
  std::vector<double> w3(static_cast<std::size_t>(wide.parameter_count()));
  CHECK_THROWS_AS(fit_wide.fit(vector_view<double>(w3.data(), 18), data, order, nullptr), shape_error);

  SoftmaxRegression<double> three(3, 3);
  SGD<double> opt4(three.parameter_count());
  trainer fit_three(three, loss, opt4, schedule, {.progress = progress_mode::never});
  std::vector<double> short_w(5);
  CHECK_THROWS_WITH(fit_three.fit(vector_view<double>(short_w.data(), 5), data, order, nullptr),
                    doctest::Contains("the parameter vector has 5 entries"));
}

} // namespace hydra::test
