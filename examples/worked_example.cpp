// docs/attribution.md's worked example, checked: one training sample, one test sample, one step
// of gradient descent on z = a·x + b with the squared error (z − y)².
//
//   training (x, y) = (1, 1), test (x, y) = (2, 2), w_0 = (a, b) = (0, 0), η = 0.1, N = 1
//   g      = 2(a + b − 1)·(1, 1)           = (−2, −2)
//   w_1    = w_0 − η g                     = (0.2, 0.2)
//   ∇_1    = −η·(N/|B|)·g                  = (0.2, 0.2)          (dw_1/dε)
//   ∇ℓ_test(w_1) = 2(2a + b − 2)·(2, 1)    = (−5.6, −2.8)
//   C      = −(1/N)·∇ℓ_test·∇_1            = +1.68              (the sample helps)
//   actual: without the sample w stays 0 and the test loss rises from 1.96 to 4, by 2.04.

#include <cmath>
#include <cstdio>
#include <vector>

#include <hydra/attribution/contributions.hpp>
#include <hydra/hydra.hpp>
#include <hydra/hypergradient/tracker.hpp>

int main() {
  using T = double;
  const hydra::dataset<T> train({1}, {1.0}, {0}, {1.0}, 1);
  const hydra::dataset<T> test({1}, {2.0}, {0}, {2.0}, 1);
  hydra::LinearRegression<T> model(1, 1);
  hydra::MeanSquaredError<T> loss;
  hydra::SGD<T> optimizer(model.parameter_count());  // momentum 0, weight decay 0
  hydra::constant_schedule schedule(0.1);
  hydra::trainer fit(model, loss, optimizer, schedule, {.progress = hydra::progress_mode::never});
  hydra::hypergradient_tracker<hydra::LinearRegression<T>, hydra::MeanSquaredError<T>, hydra::Exact> tracker(
      model, loss, optimizer, {0}, train.size());
  hydra::vector<T, hydra::cpu> w(model.parameter_count());  // (a, b) = (0, 0)
  fit.fit(w.view(), train, hydra::batch_order::sequential(1, 1, 1), nullptr, tracker);

  const auto C = hydra::test_contributions(model, loss, w.view(), test, tracker.hypergradients(), train.size());
  const double with_sample = fit.evaluate(w.view(), test).loss;
  hydra::vector<T, hydra::cpu> untrained(model.parameter_count());
  const double without_sample = fit.evaluate(untrained.view(), test).loss;
  std::printf("w_1 = (%.2f, %.2f), dw_1/de = (%.2f, %.2f)\n", w[0], w[1], tracker.hypergradients().row(0)[0],
              tracker.hypergradients().row(0)[1]);
  std::printf("C(0, 0) = %+.4f; removing the sample changes the test loss from %.4f to %.4f (%+.4f)\n", C(0, 0),
              with_sample, without_sample, without_sample - with_sample);
  const bool ok = std::abs(C(0, 0) - 1.68) < 1e-12 && std::abs(with_sample - 1.96) < 1e-12 &&
                  std::abs(without_sample - 4.0) < 1e-12;
  return ok ? 0 : 1;
}
