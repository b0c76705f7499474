// Training a model with batch norms: the trainer's step runs them on batch statistics and moves
// each running estimate once (checked against the exponential average of the batches' own means
// and unbiased variances, computed here from the data and the batch order), evaluation uses the
// running estimates, the attribution setting survives training, and a checkpoint holds the
// running estimates so that a resumed run ends with the same bits as an uninterrupted one.

#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/data/batch_order.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/nn/activation.hpp"
#include "hydra/nn/batch_norm_state.hpp"
#include "hydra/nn/chain.hpp"
#include "hydra/nn/conv2d.hpp"
#include "hydra/nn/dense.hpp"
#include "hydra/nn/dynamic_network.hpp"
#include "hydra/nn/flatten.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "hydra/train/trainer.hpp"
#include "support/finite_difference.hpp"
#include "support/messages.hpp"
#include "support/temp_dir.hpp"

namespace hydra::test {
namespace {
using D = double;

struct crash {};
/// Dies in step `step` before its update, standing for the process being killed.
struct crash_at_step {
  index step;
  template <class Ctx>
  void before_update(const Ctx& c) {
    if (c.step == step) throw crash{};
  }
};
using net_type = Network<D>;
using trainer_type = trainer<net_type, SoftmaxCrossEntropy<D>, SGD<D>, constant_schedule>;

/// 2 × 3 × 3 images: BN first (its input is the data, so its running statistics can be computed
/// from the data alone), conv, BN, ReLU, dense.
net_type small_net() {
  return net_type(parts<D>(BatchNorm2d<D>(2, 3, 3), Conv2d<D>(2, 3, 3, 3, 2, 1, 0, {.bias = false}),
                           BatchNorm2d<D>(3, 2, 2), ReLU<D>(), Flatten<D>(), Dense<D>(12, 3)));
}

dataset<D> images(index n, unsigned seed) {
  auto x = normal_vector(static_cast<std::size_t>(n * 18), seed);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 1.5 * x[i] + (i % 18 < 9 ? 0.7 : -0.4);  // channel offsets
  std::vector<label_type> y;
  for (index i = 0; i < n; ++i) y.push_back(static_cast<label_type>((i * 5 + seed) % 3));
  return dataset<D>({2, 3, 3}, std::move(x), std::move(y), 3);
}

struct run {
  net_type model = small_net();
  SoftmaxCrossEntropy<D> loss;
  SGD<D> optimizer{model.parameter_count(), {.momentum = 0.9, .weight_decay = 1e-3}};
  constant_schedule schedule{0.05};
  std::vector<D> w = std::vector<D>(static_cast<std::size_t>(model.parameter_count()));
  trainer_type fit;
  explicit run(trainer_options options = {.progress = progress_mode::never})
      : fit(model, loss, optimizer, schedule, std::move(options)) {
    model.initialize(vector_view<D>(w.data(), model.parameter_count()), 3);
  }
  vector_view<D> view() { return {w.data(), static_cast<index>(w.size())}; }
};
} // namespace

TEST_CASE("the training step moves the running statistics as PyTorch's train mode does") {
  const auto train = images(24, 1);
  const auto order = batch_order::shuffled(24, 6, 2, 7);  // 8 steps
  run r;
  r.fit.fit(r.view(), train, order, nullptr);

  // The first batch norm sees the data: per channel, the EMA (momentum 0.1) of each batch's mean
  // and unbiased variance over its 6 × 9 values, from running mean 0 and variance 1.
  std::vector<double> mean(2, 0.0), var(2, 1.0);
  for (index t = 0; t < order.steps(); ++t) {
    const auto batch = order.batch(t);
    for (index c = 0; c < 2; ++c) {
      double sum = 0, squares = 0;
      for (index i : batch)
        for (index p = 0; p < 9; ++p) sum += train.sample(i)[static_cast<std::size_t>(c * 9 + p)];
      const double n = static_cast<double>(batch.size() * 9), mu = sum / n;
      for (index i : batch)
        for (index p = 0; p < 9; ++p) {
          const double d = train.sample(i)[static_cast<std::size_t>(c * 9 + p)] - mu;
          squares += d * d;
        }
      mean[c] = 0.9 * mean[c] + 0.1 * mu;
      var[c] = 0.9 * var[c] + 0.1 * squares / (n - 1);
    }
  }
  const auto buffers = model_buffers(r.model);
  REQUIRE(buffers.size() == 2 * 2 + 2 * 3);
  for (index c = 0; c < 2; ++c) {
    CHECK(buffers[static_cast<std::size_t>(c)] == doctest::Approx(mean[c]).epsilon(1e-12));
    CHECK(buffers[static_cast<std::size_t>(2 + c)] == doctest::Approx(var[c]).epsilon(1e-12));
  }
  // The second batch norm's estimates moved too (its input depends on w, so only their change).
  CHECK(buffers[4] != 0.0);
  CHECK(buffers[7] != 1.0);
}

TEST_CASE("evaluation uses the running statistics; the attribution setting survives training") {
  const auto train = images(24, 2);
  run r;
  set_batch_norm_statistics(r.model, batch_norm_statistics::running);
  r.fit.fit(r.view(), train, batch_order::shuffled(24, 6, 1, 3), nullptr);
  index running = 0;
  for_each_layer<BatchNorm2d<D>>(r.model, [&](BatchNorm2d<D>& bn) {
    running += bn.statistics() == batch_norm_statistics::running ? 1 : 0;
  });
  CHECK(running == 2);

  // evaluate() = the mean loss of a forward pass on running statistics, not on batch statistics.
  const auto test = images(10, 3);
  const auto result = r.fit.evaluate(r.view(), test);
  auto mean_loss = [&](batch_norm_statistics s) {
    set_batch_norm_statistics(r.model, s);
    return r.model.loss(vector_view<const D>(r.w.data(), r.model.parameter_count()), test.features_view(),
                        {test.labels().data(), {}}, r.loss);
  };
  CHECK(result.loss == doctest::Approx(mean_loss(batch_norm_statistics::running)).epsilon(1e-12));
  CHECK(std::abs(result.loss - mean_loss(batch_norm_statistics::batch)) > 1e-6);
  set_batch_norm_statistics(r.model, batch_norm_statistics::batch);
  CHECK(r.fit.evaluate(r.view(), test).loss == result.loss);  // whatever the attribution setting
}

TEST_CASE("a checkpoint holds the running statistics: resuming ends with the same bits") {
  const auto train = images(24, 4);
  const auto order = batch_order::shuffled(24, 6, 3, 5);  // 4 steps per epoch, 12 steps
  temp_dir dir;
  run whole;
  whole.fit.fit(whole.view(), train, order, nullptr);

  trainer_options options{.progress = progress_mode::never};
  options.checkpoint.directory = dir.path();
  {
    run first(options);
    crash_at_step stop{6};  // checkpoint after epoch 0 (4 steps); dies in epoch 1
    CHECK_THROWS_AS(first.fit.fit(first.view(), train, order, nullptr, stop), crash);
  }
  run resumed(options);  // a new process: fresh running statistics (0 and 1) until the checkpoint
  resumed.fit.resume(dir.path(), resumed.view(), train, order, nullptr);
  CHECK(resumed.w == whole.w);
  CHECK(model_buffers(resumed.model) == model_buffers(whole.model));

}

TEST_CASE("set_model_buffers checks the count and each variance") {
  auto net = small_net();
  CHECK(batch_norm_count(net) == 2);
  std::vector<D> values(10, 0.5);
  set_model_buffers(net, std::span<const D>(values));
  CHECK(model_buffers(net) == values);
  CHECK(contains(message_of<shape_error>([&] { set_model_buffers(net, std::span<const D>(values).first(9)); }),
                 "9 values for a model whose batch norms hold 10"));
  values[3] = -1;
  CHECK_THROWS_AS(set_model_buffers(net, std::span<const D>(values)), invalid_argument);
}

} // namespace hydra::test
