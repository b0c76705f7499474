// Contributions against retraining (a small sample-weight change moves each test loss by
// −N·ε·C(i, j) to first order), against an explicit double loop, and the ranking helpers.

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "hydra/attribution/contributions.hpp"
#include "hydra/attribution/ranking.hpp"
#include "hydra/backend/cpu.hpp"
#include "hydra/hypergradient/tracker.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "hypergradient/retraining.hpp"
#include "support/finite_difference.hpp"

namespace hydra::test {
namespace {
dataset<double> make_data(index n, index features, index classes, unsigned seed) {
  auto x = normal_vector(static_cast<std::size_t>(n * features), seed);
  std::vector<label_type> y(static_cast<std::size_t>(n));
  for (index i = 0; i < n; ++i) y[static_cast<std::size_t>(i)] = static_cast<label_type>((i * 7 + seed) % classes);
  return dataset<double>({features}, std::move(x), std::move(y), classes);
}
} // namespace

TEST_CASE("contributions predict the change of every test loss under a small sample-weight change") {
  const auto train = make_data(12, 3, 3, 1);
  const auto test = make_data(5, 3, 3, 2);
  const auto order = batch_order::shuffled(12, 4, 3, 11);
  Mlp<double> model(3, {5}, 3, activation::tanh);
  SoftmaxCrossEntropy<double> loss;
  const index P = model.parameter_count(), N = train.size();
  const sgd_run run{0.9, 0.01, std::vector<double>(static_cast<std::size_t>(order.steps()), 0.25)};
  std::vector<double> w0(static_cast<std::size_t>(P));
  model.initialize(vector_view<double>(w0.data(), P), 5);

  std::vector<double> w = w0;
  SGD<double> optimizer(P, {.momentum = run.momentum, .weight_decay = run.weight_decay});
  list_schedule schedule(run.rates);
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  const std::vector<index> tracked{2, 6, 10};
  hypergradient_tracker<Mlp<double>, SoftmaxCrossEntropy<double>, Exact> tracker(model, loss, optimizer, tracked, N);
  fit.fit(vector_view<double>(w.data(), P), train, order, nullptr, tracker);
  const auto G = per_sample_gradients(model, loss, vector_view<const double>(w.data(), P), test, 2);
  const auto C = contributions<cpu>(tracker.hypergradients(), G.view(), N);
  const auto C_mean = mean_over_test_points(C.view());

  // Each test loss after retraining with sample i weighted 1/N + ε.
  auto test_losses = [&](index i, double eps) {
    const auto wT = retrain(model, loss, train, order, w0, run, i, eps);
    std::vector<double> out(static_cast<std::size_t>(test.size()));
    for (index j = 0; j < test.size(); ++j) {
      label_type y = test.label(j);
      out[static_cast<std::size_t>(j)] =
          model.loss(vector_view<const double>(wT.data(), P),
                     matrix_view<const double>(test.sample(j).data(), 1, test.sample_size()), {&y, {}}, loss);
    }
    return out;
  };
  for (std::size_t r = 0; r < tracked.size(); ++r) {
    CAPTURE(tracked[r]);
    const double h = 1e-3;  // Richardson-extrapolated central differences, error O(h⁴)
    const auto up = test_losses(tracked[r], h), down = test_losses(tracked[r], -h);
    const auto up2 = test_losses(tracked[r], h / 2), down2 = test_losses(tracked[r], -h / 2);
    std::vector<double> predicted(static_cast<std::size_t>(test.size())), measured(predicted.size());
    double mean_measured = 0;
    for (index j = 0; j < test.size(); ++j) {
      const auto k = static_cast<std::size_t>(j);
      const double d = (4 * (up2[k] - down2[k]) / h - (up[k] - down[k]) / (2 * h)) / 3;  // dℓ_j/dε
      measured[k] = -d / static_cast<double>(N);                                            // C(i, j) by definition
      predicted[k] = C(static_cast<index>(r), j);
      mean_measured += measured[k] / static_cast<double>(test.size());
    }
    CHECK(relative_error(predicted, measured) <= 1e-6);
    CHECK(C_mean[r] == doctest::Approx(mean_measured).epsilon(1e-6));
  }
}

TEST_CASE("contributions equal −(1/N) Σ_k ∇_{T,i,k} ∇ℓ_{j,k} written out") {
  const index n = 3, M = 4, P = 5, N = 50;
  const auto H = normal_vector(n * P, 1), G = normal_vector(M * P, 2);
  matrix<double, cpu> C(n, M);
  contributions<cpu>(matrix_view<const double>(H.data(), n, P), matrix_view<const double>(G.data(), M, P), N, C.view());
  for (index i = 0; i < n; ++i)
    for (index j = 0; j < M; ++j) {
      double s = 0;
      for (index k = 0; k < P; ++k) s += H[static_cast<std::size_t>(i * P + k)] * G[static_cast<std::size_t>(j * P + k)];
      CHECK(C(i, j) == doctest::Approx(-s / N).epsilon(1e-14));
    }
  matrix<double, cpu> wrong(n, M + 1);
  CHECK_THROWS_AS(contributions<cpu>(matrix_view<const double>(H.data(), n, P), matrix_view<const double>(G.data(), M, P),
                                     N, wrong.view()),
                  shape_error);
}

TEST_CASE("most helpful, most harmful and the ranking") {
  const std::vector<index> tracked{40, 7, 19, 3};
  // rows: tracked samples; columns: two test points
  const std::vector<double> C{0.5, -0.1,   //
                              -2.0, 0.3,   //
                              1.5, 0.3,    //
                              0.0, -4.0};
  const matrix_view<const double> view(C.data(), 4, 2);
  const auto helpful = most_helpful<double>(tracked, view, 0, 2);
  REQUIRE(helpful.size() == 2);
  CHECK(helpful[0].sample == 19);
  CHECK(helpful[0].score == 1.5);
  CHECK(helpful[1].sample == 40);
  const auto harmful = most_harmful<double>(tracked, view, 1, 3);
  REQUIRE(harmful.size() == 3);
  CHECK(harmful[0].sample == 3);
  CHECK(harmful[0].score == -4.0);
  CHECK(harmful[1].sample == 40);
  const auto all = most_helpful<double>(tracked, view, 1, 10);  // k larger than n: everything
  CHECK(all.size() == 4);
  CHECK(all[0].sample == 7);  // tie 0.3 with 19: the earlier tracked row first
  CHECK(all[1].sample == 19);
  const std::vector<double> totals{0.2, -1.0, 0.9, 0.1};
  const auto ranked = rank_by_contribution<double>(tracked, totals);
  CHECK(ranked.front().sample == 19);
  CHECK(ranked.back().sample == 7);
  CHECK_THROWS_AS(most_helpful<double>(tracked, view, 2, 1), invalid_argument);
  CHECK_THROWS_AS(rank_by_contribution<double>(tracked, std::vector<double>{1.0}), shape_error);
}

} // namespace hydra::test
