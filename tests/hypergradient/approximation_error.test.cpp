// The Exact-vs-HessianFree error monitor and the Theorem 1 condition check.

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/hypergradient/approximation_error.hpp"
#include "hydra/hypergradient/tracker.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "support/finite_difference.hpp"

namespace hydra::test {

TEST_CASE("the monitor records ‖∇ − ∇̃‖ per tracked sample at the chosen steps") {
  const index n = 10;
  auto x = normal_vector(static_cast<std::size_t>(n * 3), 3);
  std::vector<label_type> y(static_cast<std::size_t>(n));
  for (index i = 0; i < n; ++i) y[static_cast<std::size_t>(i)] = static_cast<label_type>(i % 3);
  const dataset<double> data({3}, std::move(x), std::move(y), 3);
  const auto order = batch_order::shuffled(n, 5, 4, 1);  // 8 steps
  Mlp<double> model(3, {4}, 3, activation::tanh);
  SoftmaxCrossEntropy<double> loss;
  const index P = model.parameter_count();
  std::vector<double> w(static_cast<std::size_t>(P));
  model.initialize(vector_view<double>(w.data(), P), 2);
  SGD<double> optimizer(P, {.momentum = 0.9, .weight_decay = 0.01});
  constant_schedule schedule(0.2);
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  const std::vector<index> tracked{1, 4, 8};
  hypergradient_tracker<Mlp<double>, SoftmaxCrossEntropy<double>, Exact> exact(model, loss, optimizer, tracked, n);
  hypergradient_tracker<Mlp<double>, SoftmaxCrossEntropy<double>, HessianFree> free(model, loss, optimizer, tracked, n);
  approximation_error_monitor monitor(exact, free, 3);
  fit.fit(vector_view<double>(w.data(), P), data, order, nullptr, exact, free, monitor);

  REQUIRE(monitor.history().size() == 2);  // after steps 3 and 6
  CHECK(monitor.history()[0].steps == 3);
  CHECK(monitor.history()[1].steps == 6);
  monitor.measure(order.steps());
  const auto& last = monitor.history().back();
  for (index r = 0; r < 3; ++r) {
    double s = 0;
    for (index k = 0; k < P; ++k) {
      const double d = exact.hypergradients().row(r)[k] - free.hypergradients().row(r)[k];
      s += d * d;
    }
    CHECK(last.norms[static_cast<std::size_t>(r)] == doctest::Approx(std::sqrt(s)).epsilon(1e-14));
    CHECK(last.norms[static_cast<std::size_t>(r)] > 0);
  }
  CHECK(last.mean() == doctest::Approx((last.norms[0] + last.norms[1] + last.norms[2]) / 3));

  hypergradient_tracker<Mlp<double>, SoftmaxCrossEntropy<double>, HessianFree> other(model, loss, optimizer, {4, 1, 8}, n);
  CHECK_THROWS_AS(approximation_error_monitor(exact, other, 3), invalid_argument);
}

TEST_CASE("Theorem 1's conditions: 0 < η·λ < 1 and non-increasing rates, each violation reported once") {
  std::vector<std::string> warnings;
  theorem1_conditions good(0.5, [&](const std::string& m) { warnings.push_back(m); });
  const std::vector<double> decreasing{1.0, 1.0, 0.5, 0.25};
  for (std::size_t t = 0; t < decreasing.size(); ++t) good.observe(static_cast<index>(t), decreasing[t]);
  CHECK(good.satisfied());

  warnings.clear();
  theorem1_conditions bad(0.5, [&](const std::string& m) { warnings.push_back(m); });
  const std::vector<double> rates{1.0, 0.5, 0.8, 3.0, 4.0, 0.1};  // rises at step 2; η·λ ≥ 1 from step 3
  for (std::size_t t = 0; t < rates.size(); ++t) bad.observe(static_cast<index>(t), rates[t]);
  CHECK_FALSE(bad.satisfied());
  CHECK(bad.first_increase() == 2);
  CHECK(bad.first_product_violation() == 3);
  REQUIRE(warnings.size() == 2);
  CHECK(warnings[0].find("rises from 0.5 to 0.8 at step 2") != std::string::npos);
  CHECK(warnings[1].find("at step 3 the learning rate 3 times the weight decay 0.5 is 1.5") != std::string::npos);

  theorem1_conditions no_decay(0.0, [&](const std::string& m) { warnings.push_back(m); });
  no_decay.observe(0, 0.1);
  CHECK(no_decay.first_product_violation() == 0);  // λ = 0 gives η·λ = 0, outside (0, 1)
}

} // namespace hydra::test
