// The retraining harness (attribution/retraining.hpp) against computations written here:
// trajectory_specific against a host loop of per-sample gradients with the zero-weight rule,
// against replay_sgd where the two conventions coincide; fresh_order against explicit training on
// subset(train, kept); margins against the formula on forward outputs; threads; resumption and
// the manifest; divergence; bad input.

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "hydra/attribution/ground_truth.hpp"
#include "hydra/attribution/retraining.hpp"
#include "hydra/attribution/subsets.hpp"
#include "hydra/backend/cpu.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "support/classification_data.hpp"
#include "support/finite_difference.hpp"
#include "support/model_checks.hpp"
#include "support/temp_dir.hpp"

namespace hydra::test {
namespace {

const auto make_mlp = [] { return Mlp<double>(4, {5}, 3, activation::tanh); };
const auto make_loss = [] { return SoftmaxCrossEntropy<double>(); };

/// 24 training samples in 3 classes, 7 test points, w0 from seed 4, and a recorded run of 3
/// epochs of batches of 6 (12 steps) with decaying rates, momentum and weight decay.
struct problem {
  dataset<double> train = classification_data(24, 4, 3, 11);
  dataset<double> test = classification_data(7, 4, 3, 12, 2, 0);
  batch_order order = batch_order::shuffled(24, 6, 3, 5);
  std::vector<double> rates;
  sgd_options optimizer{.momentum = 0.9, .weight_decay = 0.01};
  std::vector<double> w0;

  problem() {
    auto model = make_mlp();
    w0.resize(static_cast<std::size_t>(model.parameter_count()));
    model.initialize(vector_view<double>(w0.data(), model.parameter_count()), 4);
    for (index t = 0; t < order.steps(); ++t) rates.push_back(0.2 * std::pow(0.93, static_cast<double>(t)));
  }
  [[nodiscard]] vector_view<const double> initial() const { return {w0.data(), static_cast<index>(w0.size())}; }
  [[nodiscard]] retraining_options trajectory() const {
    retraining_options o;
    o.protocol = retraining_protocol::trajectory_specific;
    o.order = &order;
    o.learning_rates = rates;
    o.optimizer = optimizer;
    o.progress = progress_mode::never;
    return o;
  }
};

/// Plain SGD on the host from w0 along `order` with the samples in `removed` at loss weight zero:
/// each batch's gradient is (1/|B_t|)·Σ of the kept samples' own gradients, one sample at a time.
template <class M, class L>
std::vector<double> zero_weight_replay(M& model, L& loss, const dataset<double>& data, const batch_order& order,
                                       std::vector<double> w, const std::vector<double>& rates, sgd_options o,
                                       const std::vector<index>& removed) {
  std::vector<double> v(w.size(), 0.0), g(w.size());
  for (index t = 0; t < order.steps(); ++t) {
    std::fill(g.begin(), g.end(), 0.0);
    const auto batch = order.batch(t);
    for (index s : batch) {
      if (std::find(removed.begin(), removed.end(), s) != removed.end()) continue;
      host_batch one{1, data.sample_size(), {}, {data.label(s)}, {}, 0};
      one.x.assign(data.sample(s).begin(), data.sample(s).end());
      const auto gs = gradient_at(model, loss, one, w);
      for (std::size_t k = 0; k < w.size(); ++k) g[k] += gs[k];
    }
    for (std::size_t k = 0; k < w.size(); ++k) {
      v[k] = o.momentum * v[k] + (g[k] / static_cast<double>(batch.size()) + o.weight_decay * w[k]);
      w[k] -= rates[static_cast<std::size_t>(t)] * v[k];
    }
  }
  return w;
}

/// Cross-entropy and margin of every test point from the model's logits, written out without
/// shifts (the logits here are small).
template <class M>
void direct_losses_and_margins(M& model, const std::vector<double>& w, const dataset<double>& test,
                               std::vector<double>& losses, std::vector<double>& margins) {
  const index C = model.output_size();
  std::vector<double> z(static_cast<std::size_t>(test.size() * C));
  model.forward(vector_view<const double>(w.data(), static_cast<index>(w.size())), test.features_view(),
                matrix_view<double>(z.data(), test.size(), C));
  losses.clear();
  margins.clear();
  for (index j = 0; j < test.size(); ++j) {
    const double* zj = z.data() + j * C;
    const auto y = static_cast<index>(test.label(j));
    double all = 0, others = 0;
    for (index k = 0; k < C; ++k) {
      all += std::exp(zj[k]);
      if (k != y) others += std::exp(zj[k]);
    }
    losses.push_back(std::log(all) - zj[y]);
    margins.push_back(zj[y] - std::log(others));
  }
}

std::vector<double> row(const matrix<double, cpu>& m, index r) {
  return {m.data() + r * m.cols(), m.data() + (r + 1) * m.cols()};
}

bool same_bits(const matrix<double, cpu>& a, const matrix<double, cpu>& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(double)) == 0;
}

std::vector<index> kept_by(const subset_design& design, index s) {
  std::vector<index> kept;
  const auto& removed = design.removed[static_cast<std::size_t>(s)];
  for (index i = 0; i < design.training_set_size; ++i)
    if (!std::binary_search(removed.begin(), removed.end(), i)) kept.push_back(i);
  return kept;
}

} // namespace

TEST_CASE("trajectory_specific equals a host loop with the removed samples at weight zero") {
  problem p;
  auto model = make_mlp();
  auto loss = make_loss();
  // One removal each, then two samples of one batch and a whole class but one sample.
  subset_design design = leave_one_out_design(24, std::vector<index>{0, 7, 23});
  const auto first = p.order.batch(0);
  std::vector<index> pair{first[0], first[1]};
  std::sort(pair.begin(), pair.end());
  design.removed.push_back(pair);
  std::vector<index> most_of_class0;  // all but the last of class 0's 8 samples
  for (index i = 0; i < 24; ++i)
    if (p.train.label(i) == 0) most_of_class0.push_back(i);
  most_of_class0.pop_back();
  design.removed.push_back(most_of_class0);

  auto options = p.trajectory();
  options.threads = 2;
  const auto result = retrain_subsets(make_mlp, make_loss, p.train, p.test, design, p.initial(), options);
  REQUIRE(result.losses.rows() == design.subsets());
  REQUIRE(result.losses.cols() == p.test.size());
  REQUIRE(result.margins.rows() == design.subsets());
  CHECK(result.models_trained == design.subsets());
  CHECK(result.models_loaded == 0);
  CHECK(result.complete());
  CHECK(result.diverged.empty());
  for (index s = 0; s < design.subsets(); ++s) {
    CAPTURE(s);
    const auto w = zero_weight_replay(model, loss, p.train, p.order, p.w0, p.rates, p.optimizer,
                                      design.removed[static_cast<std::size_t>(s)]);
    std::vector<double> losses, margins;
    direct_losses_and_margins(model, w, p.test, losses, margins);
    CHECK(relative_error(row(result.losses, s), losses) <= 1e-12);
    CHECK(relative_error(row(result.margins, s), margins) <= 1e-12);
  }
}

TEST_CASE("trajectory_specific: no removal is the recorded run, and a batch of one coincides with replay_sgd") {
  problem p;
  auto model = make_mlp();
  auto loss = make_loss();

  // Nothing removed: every gradient is the batch mean unscaled, so the bits of replay_sgd's run.
  const subset_design nothing{24, {{}, {3}}};
  const auto full = retrain_subsets(make_mlp, make_loss, p.train, p.test, nothing, p.initial(), p.trajectory());
  const auto w_T = replay_sgd(model, loss, p.train, p.order, p.initial(), {p.rates, p.optimizer});
  CHECK(row(full.losses, 0) == per_sample_losses(model, loss, std::as_const(w_T).view(), p.test));

  // With batches of 6, zero weight (÷ |B|) and ground_truth's leave-one-out (÷ |B| − 1) differ ...
  const auto loo = replay_sgd(model, loss, p.train, p.order, p.initial(), {p.rates, p.optimizer},
                              sample_change::remove(3));
  CHECK(row(full.losses, 1) != per_sample_losses(model, loss, std::as_const(loo).view(), p.test));

  // ... and with batches of one they coincide: the batch of sample 3 alone gives a zero gradient
  // under both (momentum and weight decay still act), every other batch is untouched.
  const auto singles = batch_order::sequential(24, 1, 1);
  const std::vector<double> rates(24, 0.1);
  auto options = p.trajectory();
  options.order = &singles;
  options.learning_rates = rates;
  const auto one = retrain_subsets(make_mlp, make_loss, p.train, p.test, nothing, p.initial(), options);
  const auto w3 = replay_sgd(model, loss, p.train, singles, p.initial(), {rates, p.optimizer}, sample_change::remove(3));
  CHECK(row(one.losses, 1) == per_sample_losses(model, loss, std::as_const(w3).view(), p.test));
}

TEST_CASE("fresh_order equals explicit training on subset(train, kept), averaged over the seeds") {
  problem p;
  auto model = make_mlp();
  auto loss = make_loss();
  const auto design = random_subsets(24, 3, 0.75, 17);
  const std::vector<double> per_epoch{0.2, 0.1};
  retraining_options options;
  options.protocol = retraining_protocol::fresh_order;
  options.epochs = 2;
  options.batch_size = 5;  // 18 kept: 3 samples dropped per epoch
  options.learning_rates = per_epoch;
  options.optimizer = p.optimizer;
  options.seeds = {3, 8};
  options.threads = 1;
  options.progress = progress_mode::never;
  const auto result = retrain_subsets(make_mlp, make_loss, p.train, p.test, design, p.initial(), options);
  CHECK(result.models_trained == 6);

  for (index s = 0; s < 3; ++s) {
    CAPTURE(s);
    const auto kept = kept_by(design, s);
    const auto sub = subset(p.train, kept);
    std::vector<double> loss_sum(static_cast<std::size_t>(p.test.size())), margin_sum(loss_sum.size());
    for (std::uint64_t seed : options.seeds) {
      const auto order = batch_order::shuffled(sub.size(), 5, 2, fresh_order_seed(seed, s));
      vector<double, cpu> w(model.parameter_count()), g(model.parameter_count());
      cpu::copy(p.initial(), w.view());
      SGD<double> sgd(model.parameter_count(), p.optimizer);
      device_batch<double, cpu> batch;
      for (index t = 0; t < order.steps(); ++t) {
        batch.load(sub, order.batch(t));
        model.gradient(std::as_const(w).view(), batch.features(), batch.targets(), loss, g.view());
        sgd.step(w.view(), std::as_const(g).view(), per_epoch[static_cast<std::size_t>(order.epoch_of(t))]);
      }
      const auto losses = per_sample_losses(model, loss, std::as_const(w).view(), p.test);
      std::vector<double> direct, margins;
      direct_losses_and_margins(model, w.to_host(), p.test, direct, margins);
      CHECK(relative_error(losses, direct) <= 1e-13);
      for (std::size_t j = 0; j < losses.size(); ++j) {
        loss_sum[j] += losses[j];
        margin_sum[j] += margins[j];
      }
    }
    for (auto& v : loss_sum) v /= 2;
    for (auto& v : margin_sum) v /= 2;
    CHECK(row(result.losses, s) == loss_sum);  // bit for bit: the same batches of the same rows
    CHECK(relative_error(row(result.margins, s), margin_sum) <= 1e-12);
  }

  // A constant rate is the same as that rate for every epoch.
  const std::vector<double> constant{0.15}, both{0.15, 0.15};
  options.learning_rates = constant;
  const auto a = retrain_subsets(make_mlp, make_loss, p.train, p.test, design, p.initial(), options);
  options.learning_rates = both;
  const auto b = retrain_subsets(make_mlp, make_loss, p.train, p.test, design, p.initial(), options);
  CHECK(same_bits(a.losses, b.losses));
}

TEST_CASE("one thread and two give the same bits") {
  problem p;
  const auto design = random_subsets(24, 5, 0.5, 3);
  retraining_options options;
  options.protocol = retraining_protocol::fresh_order;
  options.epochs = 3;
  options.batch_size = 4;
  const std::vector<double> rate{0.1};
  options.learning_rates = rate;
  options.optimizer = p.optimizer;
  options.seeds = {1, 2, 3};
  options.progress = progress_mode::never;
  options.threads = 1;
  const auto one = retrain_subsets(make_mlp, make_loss, p.train, p.test, design, p.initial(), options);
  options.threads = 2;
  const auto two = retrain_subsets(make_mlp, make_loss, p.train, p.test, design, p.initial(), options);
  CHECK(same_bits(one.losses, two.losses));
  CHECK(same_bits(one.margins, two.margins));

  auto trajectory = p.trajectory();
  trajectory.threads = 1;
  const auto t1 = retrain_subsets(make_mlp, make_loss, p.train, p.test, design, p.initial(), trajectory);
  trajectory.threads = 3;
  const auto t3 = retrain_subsets(make_mlp, make_loss, p.train, p.test, design, p.initial(), trajectory);
  CHECK(same_bits(t1.losses, t3.losses));
  CHECK(same_bits(t1.margins, t3.margins));
}

TEST_CASE("an interrupted run resumes to the bits of an uninterrupted one") {
  problem p;
  temp_dir dir("retraining");
  const auto design = random_subsets(24, 4, 0.75, 9);
  retraining_options options;
  options.protocol = retraining_protocol::fresh_order;
  options.epochs = 2;
  options.batch_size = 6;
  const std::vector<double> rate{0.1};
  options.learning_rates = rate;
  options.optimizer = p.optimizer;
  options.seeds = {5, 6};
  options.threads = 2;
  options.progress = progress_mode::never;
  const auto reference = retrain_subsets(make_mlp, make_loss, p.train, p.test, design, p.initial(), options);

  options.directory = dir.path();
  options.max_models = 3;  // stops after 3 of the 8 models, as a kill would
  const auto part = retrain_subsets(make_mlp, make_loss, p.train, p.test, design, p.initial(), options);
  CHECK(part.models_trained == 3);
  CHECK(part.models_missing == 5);
  CHECK_FALSE(part.complete());
  CHECK(std::isnan(part.losses(1, 0)));  // subset 1 has one of its two seeds
  CHECK(std::filesystem::exists(retraining_manifest_path(dir.path())));
  CHECK(std::filesystem::exists(retraining_result_path(dir.path(), 1, 0)));
  CHECK_FALSE(std::filesystem::exists(retraining_result_path(dir.path(), 1, 1)));
  // A kill during a write leaves only a temporary file, which is not a result.
  std::ofstream(retraining_result_path(dir.path(), 2, 0).string() + ".tmp") << "half a file";

  options.max_models.reset();
  const auto rest = retrain_subsets(make_mlp, make_loss, p.train, p.test, design, p.initial(), options);
  CHECK(rest.models_loaded == 3);
  CHECK(rest.models_trained == 5);
  CHECK(rest.complete());
  CHECK(same_bits(rest.losses, reference.losses));
  CHECK(same_bits(rest.margins, reference.margins));

  // Everything is there now: nothing trains, and a deleted result is trained again.
  std::filesystem::remove(retraining_result_path(dir.path(), 0, 1));
  const auto again = retrain_subsets(make_mlp, make_loss, p.train, p.test, design, p.initial(), options);
  CHECK(again.models_loaded == 7);
  CHECK(again.models_trained == 1);
  CHECK(same_bits(again.losses, reference.losses));
  CHECK(same_bits(again.margins, reference.margins));
}

TEST_CASE("a directory of another design is refused, naming the first field that differs") {
  problem p;
  temp_dir dir("retraining");
  const auto design = random_subsets(24, 2, 0.75, 9);
  auto options = p.trajectory();
  options.directory = dir.path();
  (void)retrain_subsets(make_mlp, make_loss, p.train, p.test, design, p.initial(), options);

  const auto refused = [&](const subset_design& d, const retraining_options& o, std::vector<double> w0,
                           const std::string& field) {
    CAPTURE(field);
    try {
      (void)retrain_subsets(make_mlp, make_loss, p.train, p.test, d, vector_view<const double>(w0.data(), static_cast<index>(w0.size())), o);
      FAIL("no error for another design");
    } catch (const invalid_argument& e) {
      const std::string what = e.what();
      CHECK(what.find("manifest's " + field + " is") != std::string::npos);
      CHECK(what.find(dir.path().string()) != std::string::npos);
    }
  };
  refused(random_subsets(24, 2, 0.75, 10), options, p.w0, "removed");
  auto other_rates = p.rates;
  other_rates.back() *= 2;
  auto o = options;
  o.learning_rates = other_rates;
  refused(design, o, p.w0, "learning_rates");
  o = options;
  o.optimizer.momentum = 0.5;
  refused(design, o, p.w0, "momentum");
  o = options;
  o.seeds = {1};
  refused(design, o, p.w0, "seeds");
  auto w0 = p.w0;
  w0[0] += 1e-12;
  refused(design, options, w0, "w0");

  // The same design loads everything and trains nothing.
  const auto same = retrain_subsets(make_mlp, make_loss, p.train, p.test, design, p.initial(), options);
  CHECK(same.models_loaded == 2);
  CHECK(same.models_trained == 0);
}

TEST_CASE("a diverging model is reported with its subset, seed and step, and its row is NaN") {
  // A linear softmax model and one training sample with features 1e200: its first visit makes the
  // weights ~1e199, its second multiplies them by 1e200 again and the batch loss is no longer
  // finite. A subset without that sample trains normally.
  auto data = classification_data(12, 4, 3, 21);
  for (double& v : data.mutable_features().subspan(5 * 4, 4)) v *= 1e200;
  const auto test = classification_data(5, 4, 3, 22);
  const auto make_linear = [] { return Mlp<double>(4, {}, 3); };
  auto model = make_linear();
  std::vector<double> w0(static_cast<std::size_t>(model.parameter_count()));
  model.initialize(vector_view<double>(w0.data(), model.parameter_count()), 2);
  const vector_view<const double> initial(w0.data(), model.parameter_count());

  const auto order = batch_order::sequential(12, 4, 2);  // sample 5 in steps 1 and 4
  const std::vector<double> rates(6, 0.05);
  retraining_options options;
  options.order = &order;
  options.learning_rates = rates;
  options.progress = progress_mode::never;
  const subset_design design{12, {{5}, {0}, {11}}};
  const auto result = retrain_subsets(make_linear, make_loss, data, test, design, initial, options);
  REQUIRE(result.diverged_count() == 2);
  CHECK(result.diverged[0].subset == 1);
  CHECK(result.diverged[0].step == 4);
  CHECK(result.diverged[1].subset == 2);
  CHECK(result.diverged[1].step == 4);
  for (index j = 0; j < test.size(); ++j) {
    CHECK(std::isfinite(result.losses(0, j)));
    CHECK(std::isfinite(result.margins(0, j)));
    CHECK(std::isnan(result.losses(1, j)));
    CHECK(std::isnan(result.margins(2, j)));
  }

  // fresh_order with a dropped remainder: a seed's order may visit sample 5 twice or not. A
  // subset's averaged row is NaN exactly when one of its seeds diverged, never a mean over fewer.
  retraining_options fresh;
  fresh.protocol = retraining_protocol::fresh_order;
  fresh.epochs = 2;
  fresh.batch_size = 4;  // 11 kept, 3 left out of each epoch
  const std::vector<double> rate{0.05};
  fresh.learning_rates = rate;
  fresh.progress = progress_mode::never;
  const subset_design keeps5{12, {{0}}};
  std::vector<std::uint64_t> good, bad;
  for (std::uint64_t seed = 0; seed < 8; ++seed) {
    fresh.seeds = {seed};
    const auto one = retrain_subsets(make_linear, make_loss, data, test, keeps5, initial, fresh);
    (one.diverged.empty() ? good : bad).push_back(seed);
    CHECK(std::isnan(one.losses(0, 0)) == !one.diverged.empty());
  }
  REQUIRE(!good.empty());
  REQUIRE(!bad.empty());
  fresh.seeds = {good[0], bad[0]};
  const auto mixed = retrain_subsets(make_linear, make_loss, data, test, keeps5, initial, fresh);
  REQUIRE(mixed.diverged_count() == 1);
  CHECK(mixed.diverged[0].seed == bad[0]);
  CHECK(std::isnan(mixed.losses(0, 0)));
  CHECK(std::isnan(mixed.margins(0, 0)));
  fresh.seeds = {good[0]};
  CHECK(std::isfinite(retrain_subsets(make_linear, make_loss, data, test, keeps5, initial, fresh).losses(0, 0)));
}

TEST_CASE("retrain_subsets checks everything before training") {
  problem p;
  temp_dir dir("retraining");
  const auto design = random_subsets(24, 2, 0.75, 9);
  auto options = p.trajectory();
  options.directory = dir.path() / "never";
  const auto run = [&](const subset_design& d, const retraining_options& o, const dataset<double>& test,
                       vector_view<const double> w0) {
    (void)retrain_subsets(make_mlp, make_loss, p.train, test, d, w0, o);
  };
  CHECK_THROWS_AS(run(random_subsets(25, 2, 0.75, 9), options, p.test, p.initial()), shape_error);
  CHECK_THROWS_AS(run(subset_design{24, {}}, options, p.test, p.initial()), invalid_argument);
  std::vector<index> class0;
  for (index i = 0; i < 24; ++i)
    if (p.train.label(i) == 0) class0.push_back(i);
  CHECK_THROWS_WITH_AS(run(subset_design{24, {{}, class0}}, options, p.test, p.initial()),
                       doctest::Contains("subset 1 removes every sample of class 0"), invalid_argument);
  CHECK_THROWS_AS(run(subset_design{24, {{3, 2}}}, options, p.test, p.initial()), invalid_argument);
  CHECK_THROWS_AS(run(design, options, p.test, vector_view<const double>(p.w0.data(), 5)), shape_error);
  auto o = options;
  o.learning_rates = std::span<const double>(p.rates).first(11);
  CHECK_THROWS_WITH_AS(run(design, o, p.test, p.initial()), doctest::Contains("11 learning rates for 12 steps"),
                       invalid_argument);
  o = options;
  o.order = nullptr;
  CHECK_THROWS_AS(run(design, o, p.test, p.initial()), invalid_argument);
  const dataset<double> empty({4}, {}, {}, 3);
  CHECK_THROWS_WITH_AS(run(design, options, empty, p.initial()), doctest::Contains("test set is empty"),
                       invalid_argument);
  o = options;
  o.seeds.clear();
  CHECK_THROWS_AS(run(design, o, p.test, p.initial()), invalid_argument);
  o.seeds = {1, 2};
  CHECK_THROWS_AS(run(design, o, p.test, p.initial()), invalid_argument);  // trajectory_specific: one run

  retraining_options fresh;
  fresh.protocol = retraining_protocol::fresh_order;
  fresh.epochs = 2;
  fresh.batch_size = 19;  // subsets keep 18
  const std::vector<double> rate{0.1}, three{0.1, 0.1, 0.1}, negative{-0.1};
  fresh.learning_rates = rate;
  fresh.directory = options.directory;
  CHECK_THROWS_WITH_AS(run(design, fresh, p.test, p.initial()), doctest::Contains("subset 0 keeps 18"),
                       invalid_argument);
  fresh.batch_size = 4;
  fresh.learning_rates = three;
  CHECK_THROWS_AS(run(design, fresh, p.test, p.initial()), invalid_argument);
  fresh.learning_rates = negative;
  CHECK_THROWS_AS(run(design, fresh, p.test, p.initial()), invalid_argument);
  fresh.learning_rates = rate;
  fresh.seeds = {4, 4};
  CHECK_THROWS_AS(run(design, fresh, p.test, p.initial()), invalid_argument);
  CHECK_FALSE(std::filesystem::exists(options.directory));  // nothing was written
}

} // namespace hydra::test
