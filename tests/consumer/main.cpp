// A downstream program built against the installed hydra package: trains softmax regression on a
// tiny separable problem through <hydra/hydra.hpp> and returns non-zero unless it learns it.
#include <hydra/hydra.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  std::vector<double> x;
  std::vector<hydra::label_type> y;
  for (int i = 0; i < 64; ++i) {
    const double a = std::sin(0.5 * i), b = std::cos(0.3 * i);
    if (std::abs(a - b) < 0.1) continue;
    x.insert(x.end(), {a, b});
    y.push_back(a > b ? 1 : 0);
  }
  const hydra::dataset<double> data({2}, std::move(x), std::move(y));
  hydra::SoftmaxRegression<double> model(2, 2);
  hydra::SoftmaxCrossEntropy<double> loss;
  hydra::SGD<double> optimizer(model.parameter_count(), {.momentum = 0.9});
  hydra::constant_schedule schedule(0.5);
  hydra::trainer fit(model, loss, optimizer, schedule, {.progress = hydra::progress_mode::never});
  hydra::vector<double, hydra::cpu> w(model.parameter_count());
  fit.fit(w.view(), data, hydra::batch_order::shuffled(data.size(), 8, 30, 1), nullptr);
  const auto result = fit.evaluate(w.view(), data);
  std::printf("consumer: installed hydra trained softmax regression to accuracy %.3f\n", result.accuracy);
  return result.accuracy >= 0.95 ? 0 : 1;
}
