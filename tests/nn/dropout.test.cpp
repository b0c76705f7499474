// Dropout: the identity unless a training step switched it on; then each value kept with
// probability 1 − p (a binomial check), scaled by 1/(1 − p), by a mask that depends on the seed,
// the step and the position only. With the mask fixed the model's gradient and HVPs match central
// differences; the trainer drops only in its steps (evaluation sees the network without dropout)
// and a resumed run ends with the same bits.

#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/nn/activation.hpp"
#include "hydra/nn/dense.hpp"
#include "hydra/nn/dropout.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/sequential.hpp"
#include "hydra/nn/training_mode.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "hydra/train/trainer.hpp"
#include "support/classification_data.hpp"
#include "support/messages.hpp"
#include "support/model_checks.hpp"
#include "support/temp_dir.hpp"

namespace hydra::test {
namespace {
using D = double;
using net = Sequential<Dense<D>, Tanh<D>, Dropout<D>, Dense<D>>;

net make_net(double p = 0.5) { return net(Dense<D>(4, 6), Tanh<D>(), Dropout<D>(0, p, 7), Dense<D>(6, 3)); }

/// A callback that counts the steps at which a dropout is active when it runs, and stands for the
/// process dying at step `stop`.
struct dropout_probe {
  net* model;
  index stop;
  index active_steps = 0;
  template <class Ctx>
  void before_update(const Ctx& c) {
    if (c.step == stop) throw std::runtime_error("crash");
    for_each_layer<Dropout<D>>(*model, [&](Dropout<D>& d) { active_steps += d.active() ? 1 : 0; });
  }
};

std::vector<D> forward_of(const Dropout<D>& d, const std::vector<D>& x, index rows) {
  std::vector<D> y(x.size());
  d.forward(nullptr, matrix_view<const D>(x.data(), rows, d.input_size()), matrix_view<D>(y.data(), rows, d.output_size()));
  return y;
}
} // namespace

TEST_CASE("dropout keeps each value with probability 1 - p, scaled, by a mask of seed, step and position") {
  Dropout<D> d(100, 0.3, 11);
  const index rows = 50;
  std::vector<D> x(static_cast<std::size_t>(rows * 100), 2.0);
  CHECK(forward_of(d, x, rows) == x);  // not training: the identity
  d.set_training_step(4);
  const auto y = forward_of(d, x, rows);
  index kept = 0;
  for (index r = 0; r < rows; ++r)
    for (index c = 0; c < 100; ++c) {
      const D v = y[static_cast<std::size_t>(r * 100 + c)];
      CHECK((v == 0.0 || v == doctest::Approx(2.0 / 0.7).epsilon(1e-15)));
      CHECK((v != 0.0) == d.kept(4, r, c));
      kept += v != 0.0 ? 1 : 0;
    }
  // 5,000 values, kept ~ Binomial(5000, 0.7): mean 3,500, sd 32.4; 5 sd either side.
  CHECK(std::abs(static_cast<double>(kept) - 3500.0) < 5 * 32.4);
  d.set_training_step(4);
  CHECK(forward_of(d, x, rows) == y);  // the same step, the same mask
  std::vector<D> other(x.size(), -1.0);
  const auto z = forward_of(d, other, rows);
  for (std::size_t i = 0; i < z.size(); ++i) CHECK((z[i] == 0.0) == (y[i] == 0.0));  // whatever the values
  d.set_training_step(5);
  CHECK(forward_of(d, x, rows) != y);
  d.stop_training();
  CHECK(forward_of(d, x, rows) == x);
  CHECK_THROWS_AS(Dropout<D>(3, 1.0), invalid_argument);
  CHECK_THROWS_AS(Dropout<D>(3, -0.1), invalid_argument);
}

TEST_CASE("with a step's mask, the gradient and the HVPs match central differences") {
  auto model = make_net();
  for_each_layer<Dropout<D>>(model, [](Dropout<D>& d) { d.set_training_step(2); });
  SoftmaxCrossEntropy<D> loss;
  const auto b = random_batch(5, 4, 3, 3);
  const auto w = normal_vector(static_cast<std::size_t>(model.parameter_count()), 4, 0.5);
  const index P = model.parameter_count();
  auto f = [&](const std::vector<D>& v) { return loss_at(model, loss, b, v); };
  const auto g = gradient_at(model, loss, b, w);
  CHECK(relative_error(g, central_gradient(f, w)) <= 1e-7);
  const auto V = normal_vector(static_cast<std::size_t>(3 * P), 5);
  const auto HV = hvps_at(model, loss, b, w, V, 3);
  auto G = [&](const std::vector<D>& v) { return gradient_at(model, loss, b, v); };
  for (index j = 0; j < 3; ++j) {
    const std::vector<D> v(V.begin() + j * P, V.begin() + (j + 1) * P), hv(HV.begin() + j * P, HV.begin() + (j + 1) * P);
    CHECK(relative_error(hv, central_directional(G, w, v)) <= 1e-7);
  }
  // Per-sample gradients (row b: sample b at its position in the batch) add up to the batch's.
  std::vector<D> rows(static_cast<std::size_t>(b.rows * P));
  model.per_sample_gradients(vector_view<const D>(w.data(), P), b.features(), b.y(), loss,
                             matrix_view<D>(rows.data(), b.rows, P));
  std::vector<D> mean(static_cast<std::size_t>(P), 0.0);
  for (index r = 0; r < b.rows; ++r)
    for (index k = 0; k < P; ++k) mean[static_cast<std::size_t>(k)] += rows[static_cast<std::size_t>(r * P + k)] / 5;
  CHECK(relative_error(mean, g) <= 1e-14);
  // And the dropout matters: without it the gradient differs.
  for_each_layer<Dropout<D>>(model, [](Dropout<D>& d) { d.stop_training(); });
  CHECK(relative_error(gradient_at(model, loss, b, w), g) > 1e-2);
}

TEST_CASE("the trainer drops only in its steps, and resuming keeps the masks") {
  const auto data = classification_data(24, 4, 3, 9);
  const auto order = batch_order::shuffled(24, 6, 3, 2);
  auto train = [&](const std::filesystem::path& dir, index crash_at, bool resume) {
    auto model = make_net(0.4);
    SoftmaxCrossEntropy<D> loss;
    SGD<D> optimizer(model.parameter_count(), {.momentum = 0.9, .weight_decay = 1e-3});
    constant_schedule schedule(0.1);
    trainer_options options{.progress = progress_mode::never};
    if (!dir.empty()) options.checkpoint.directory = dir;
    trainer fit(model, loss, optimizer, schedule, options);
    std::vector<D> w(static_cast<std::size_t>(model.parameter_count()));
    model.initialize(vector_view<D>(w.data(), model.parameter_count()), 1);
    dropout_probe p{&model, crash_at};
    const vector_view<D> view(w.data(), model.parameter_count());
    if (resume)
      fit.resume(dir, view, data, order, nullptr, p);
    else
      fit.fit(view, data, order, nullptr, p);
    CHECK(p.active_steps == 0);  // callbacks (the attribution passes) see the network without dropout
    // evaluate() is the no-dropout network's loss.
    const auto e = fit.evaluate(vector_view<const D>(w.data(), model.parameter_count()), data);
    CHECK(e.loss == doctest::Approx(model.loss(vector_view<const D>(w.data(), model.parameter_count()),
                                               data.features_view(), {data.labels().data(), {}}, loss))
                        .epsilon(1e-12));
    return w;
  };
  const auto whole = train({}, -1, false);
  temp_dir dir;
  CHECK_THROWS_AS(train(dir.path(), 8, false), std::runtime_error);  // checkpoint after epoch 0 (4 steps)
  CHECK(train(dir.path(), -1, true) == whole);
}

} // namespace hydra::test
