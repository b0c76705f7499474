// LeNet5: the paper's architecture and parameter count, its derivatives (sampled coordinates and
// directions: the full finite-difference sweep over 61,706 parameters is what the per-layer tests
// do on small geometries) and exact hypergradients against retraining.

#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/hypergradient/tracker.hpp"
#include "hydra/nn/lenet.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "hypergradient/retraining.hpp"
#include "support/model_checks.hpp"

namespace hydra::test {

TEST_CASE("LeNet5 has the paper's 61,706 parameters in PyTorch's order") {
  LeNet5<float> net;
  CHECK(net.parameter_count() == 61706);
  CHECK(net.parameter_count() == LeNet5<float>::parameters);
  CHECK(net.input_size() == 784);
  CHECK(net.output_size() == 10);
  // conv1 (6·1·5·5 + 6), conv2 (16·6·5·5 + 16), fc 400→120, 120→84, 84→10
  CHECK(net.parameter_offsets() == std::vector<index>{0, 156, 156, 156, 2572, 2572, 2572, 2572, 50692, 50692, 60856,
                                                      60856, 61706});
}

TEST_CASE("LeNet5 derivatives on sampled coordinates and directions") {
  LeNet5<double> net;
  SoftmaxCrossEntropy<double> loss;
  const index P = net.parameter_count();
  std::vector<double> w(static_cast<std::size_t>(P));
  net.initialize(vector_view<double>(w.data(), P), 5);
  const auto b = random_batch(3, 784, 10, 51);
  auto f = [&](const std::vector<double>& v) { return loss_at(net, loss, b, v); };
  const auto g = gradient_at(net, loss, b, w);

  // 120 coordinates spread over every layer's weights and biases.
  std::vector<double> analytic, numeric;
  for (index q = 0; q < 120; ++q) {
    const index i = (q * 514229) % P;
    auto up = w, down = w;
    up[static_cast<std::size_t>(i)] += 1e-6;
    down[static_cast<std::size_t>(i)] -= 1e-6;
    analytic.push_back(g[static_cast<std::size_t>(i)]);
    numeric.push_back((f(up) - f(down)) / 2e-6);
  }
  CHECK(relative_error(analytic, numeric) <= 1e-7);

  // Directional: gᵀv against the derivative of the loss along v, and H v against the derivative
  // of the gradient along v, for three directions in one batched call.
  const index k = 3;
  const auto V = normal_vector(static_cast<std::size_t>(k * P), 52, 0.1);
  const auto HV = hvps_at(net, loss, b, w, V, k);
  auto G = [&](const std::vector<double>& v) { return gradient_at(net, loss, b, v); };
  for (index j = 0; j < k; ++j) {
    const std::vector<double> v(V.begin() + j * P, V.begin() + (j + 1) * P);
    const std::vector<double> hv(HV.begin() + j * P, HV.begin() + (j + 1) * P);
    CHECK(relative_error(hv, central_directional(G, w, v)) <= 1e-7);
    CHECK(relative_error(hv, hvps_at(net, loss, b, w, v, 1)) <= 1e-13);
  }

  // Per-sample gradients average to the mean gradient, and row 1 matches sample 1 alone.
  std::vector<double> rows(static_cast<std::size_t>(3 * P));
  net.per_sample_gradients(vector_view<const double>(w.data(), P), b.features(), b.y(), loss,
                           matrix_view<double>(rows.data(), 3, P));
  std::vector<double> mean(static_cast<std::size_t>(P));
  for (index i = 0; i < P; ++i)
    for (index s = 0; s < 3; ++s) mean[static_cast<std::size_t>(i)] += rows[static_cast<std::size_t>(s * P + i)] / 3;
  CHECK(relative_error(mean, g) <= 1e-13);
  host_batch one{1, 784, {b.x.begin() + 784, b.x.begin() + 2 * 784}, {b.labels[1]}, {}, 0};
  CHECK(relative_error(std::vector<double>(rows.begin() + P, rows.begin() + 2 * P), gradient_at(net, loss, one, w)) <=
        1e-13);
}

TEST_CASE("LeNet5 exact hypergradients equal finite differences of retraining") {
  const index N = 6;
  auto x = normal_vector(static_cast<std::size_t>(N * 784), 61);
  std::vector<label_type> y{0, 3, 7, 3, 1, 9};
  const dataset<double> data({1, 28, 28}, std::move(x), std::move(y), 10);
  const auto order = batch_order::shuffled(N, 3, 2, 4);  // 4 steps
  LeNet5<double> net;
  SoftmaxCrossEntropy<double> loss;
  const index P = net.parameter_count();
  std::vector<double> w0(static_cast<std::size_t>(P));
  net.initialize(vector_view<double>(w0.data(), P), 6);
  const sgd_run run{0.9, 0.01, {0.1, 0.09, 0.08, 0.07}};

  std::vector<double> w = w0;
  SGD<double> optimizer(P, {.momentum = run.momentum, .weight_decay = run.weight_decay});
  list_schedule schedule(run.rates);
  trainer fit(net, loss, optimizer, schedule, {.progress = progress_mode::never});
  const std::vector<index> tracked{1, 4};
  hypergradient_tracker<LeNet5<double>, SoftmaxCrossEntropy<double>, Exact> tracker(net, loss, optimizer, tracked, N);
  fit.fit(vector_view<double>(w.data(), P), data, order, nullptr, tracker);
  for (std::size_t r = 0; r < tracked.size(); ++r) {
    CAPTURE(tracked[r]);
    // ReLU and max pooling make retraining piecewise smooth in ε: a step of 1e-3 already flips an
    // activation or a window's argmax for sample 1 (the difference quotient is then off by ~100 %),
    // so the reference steps stay at 1e-5 and 1e-6, whose agreement shows no kink lies inside them.
    // Richardson truncation is O(h⁴) there and rounding ~eps/h ≈ 1e-11 to 1e-10 relative.
    const auto reference = retraining_derivative(net, loss, data, order, w0, run, tracked[r], 1e-5);
    const auto finer = retraining_derivative(net, loss, data, order, w0, run, tracked[r], 1e-6);
    CHECK(relative_error(finer, reference) <= 1e-8);
    const auto row = tracker.hypergradients().row(static_cast<index>(r));
    CHECK(relative_error(std::vector<double>(row, row + P), reference) <= 1e-8);
  }
}

} // namespace hydra::test
