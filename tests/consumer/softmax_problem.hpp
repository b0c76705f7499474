// The consumer's problem, shared by main.cpp (hydra::cpu) and main.cu (hydra::cuda): softmax
// regression on a tiny separable problem through <hydra/hydra.hpp>; returns the training accuracy.
#pragma once

#include <hydra/hydra.hpp>

#include <cmath>
#include <vector>

template <class B>
double train_softmax_regression() {
  std::vector<double> x;
  std::vector<hydra::label_type> y;
  for (int i = 0; i < 64; ++i) {
    const double a = std::sin(0.5 * i), b = std::cos(0.3 * i);
    if (std::abs(a - b) < 0.1) continue;
    x.insert(x.end(), {a, b});
    y.push_back(a > b ? 1 : 0);
  }
  const hydra::dataset<double> data({2}, std::move(x), std::move(y));
  hydra::SoftmaxRegression<double, B> model(2, 2);
  hydra::SoftmaxCrossEntropy<double, B> loss;
  hydra::SGD<double, B> optimizer(model.parameter_count(), {.momentum = 0.9});
  hydra::constant_schedule schedule(0.5);
  hydra::trainer fit(model, loss, optimizer, schedule, {.progress = hydra::progress_mode::never});
  hydra::vector<double, B> w(model.parameter_count());
  fit.fit(w.view(), data, hydra::batch_order::shuffled(data.size(), 8, 30, 1), nullptr);
  return fit.evaluate(w.view(), data).accuracy;
}
