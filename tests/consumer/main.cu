// The consumer's CUDA program: the softmax regression of main.cpp on hydra::cuda, through the
// installed package's hydra::cuda target. Without a device it says so and succeeds (it was built
// and linked, which is what a machine without a GPU can check).
#include <hydra/backend/cuda.cuh>
#include <hydra/hydra.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  if (hydra::cuda::device_count() == 0) {
    std::printf("consumer_cuda: built and linked; not run: no CUDA device (%s)\n",
                hydra::cuda::no_device_reason().c_str());
    return 0;
  }
  using B = hydra::cuda;
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
  const auto result = fit.evaluate(w.view(), data);
  std::printf("consumer_cuda: installed hydra trained softmax regression on the GPU to accuracy %.3f\n",
              result.accuracy);
  return result.accuracy >= 0.95 ? 0 : 1;
}
