// Checkpoint and resume of a training run. The acceptance test: a run interrupted by a simulated
// crash and resumed from its last checkpoint ends with the same bits (parameters, velocity,
// schedule state, history but its timings, a stateful callback's state) as the run that was never
// interrupted, in double and float, for plateau, list and step schedules, with checkpoints at
// epoch ends only and every 3 steps, interrupted mid-epoch and right after an epoch end. Also:
// when checkpoints are written and what they hold, refusal of another run's checkpoint, a crash
// while a checkpoint is written, and the compile- and run-time requirements.

#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <unistd.h>

#include "hydra/backend/cpu.hpp"
#include "hydra/core/archive.hpp"
#include "hydra/data/batch_order.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "hydra/train/checkpoint.hpp"
#include "hydra/train/trainer.hpp"
#include "support/messages.hpp"
#include "support/temp_dir.hpp"

namespace hydra::test {
namespace {

namespace fs = std::filesystem;


/// Three classes in four features with overlapping clusters, so the loss stays well above zero.
template <class T>
dataset<T> classification_data(int n, int seed) {
  std::vector<T> x;
  std::vector<label_type> y;
  for (int i = 0; i < n; ++i) {
    const double u = 0.37 * i + seed, label = (i * 7 + seed) % 3;
    x.push_back(static_cast<T>(std::sin(u) + 0.6 * label));
    x.push_back(static_cast<T>(std::cos(1.7 * u) - 0.4 * label));
    x.push_back(static_cast<T>(std::sin(2.3 * u + 1.0)));
    x.push_back(static_cast<T>(0.5 * std::cos(0.9 * u) + 0.3 * label));
    y.push_back(static_cast<label_type>(label));
  }
  return dataset<T>({4}, std::move(x), std::move(y), 3);
}

/// 40 training samples in batches of 8: 5 steps per epoch, 6 epochs, 30 steps.
template <class T>
struct problem {
  dataset<T> train = classification_data<T>(40, 1);
  dataset<T> validation = classification_data<T>(20, 2);
  batch_order order = batch_order::shuffled(40, 8, 6, /*seed=*/11);
};

/// Thrown by a callback to stand for the process dying at that point.
struct simulated_crash {};

/// Dies at step `step`: in before_update (right after the previous step's checkpoint) or in
/// after_update (after the update, before this step's checkpoint).
struct crash_at {
  index step;
  bool before_update_;
  template <class Ctx>
  void before_update(const Ctx& c) {
    if (before_update_ && c.step == step) throw simulated_crash{};
  }
  template <class Ctx>
  void after_update(const Ctx& c) {
    if (!before_update_ && c.step == step) throw simulated_crash{};
  }
};

/// A stateful callback: the learning rate of every step it saw, the sum of the batch losses and
/// the epochs; saved with the checkpoint and restored from it.
struct trace {
  std::vector<double> rates;
  double loss_sum = 0;
  std::int64_t epochs = 0;

  template <class Ctx>
  void before_update(const Ctx& c) {
    rates.push_back(static_cast<double>(c.learning_rate));
    loss_sum += static_cast<double>(c.loss);
  }
  void on_epoch_end(const epoch_report&) { ++epochs; }
  void save_state(archive_writer& out) const {
    out.write<double>("trace.rates", rates);
    out.write_value("trace.loss_sum", loss_sum);
    out.write_value("trace.epochs", epochs);
  }
  void load_state(archive_reader& in) {
    rates = in.read_vector<double>("trace.rates", 1 << 20);
    loss_sum = in.read_value<double>("trace.loss_sum");
    epochs = in.read_value<std::int64_t>("trace.epochs");
  }
};

/// The first step a run takes and its learning rate (no state: not saved).
struct first_step {
  index step = -1;
  double rate = 0;
  template <class Ctx>
  void before_update(const Ctx& c) {
    if (step < 0) {
      step = c.step;
      rate = static_cast<double>(c.learning_rate);
    }
  }
};

/// One "process": its own model, optimizer, schedule, trainer and parameters.
template <class T, class Schedule>
struct process {
  Mlp<T> model{4, {6}, 3, activation::tanh};
  SoftmaxCrossEntropy<T> loss;
  SGD<T> optimizer{model.parameter_count(), {.momentum = 0.9, .weight_decay = 1e-3}};
  Schedule schedule;
  trainer<Mlp<T>, SoftmaxCrossEntropy<T>, SGD<T>, Schedule> fit;
  std::vector<T> w;

  process(Schedule s, trainer_options options)
      : schedule(std::move(s)),
        fit(model, loss, optimizer, schedule, std::move(options)),
        w(static_cast<std::size_t>(model.parameter_count())) {
    model.initialize(view(), 5);
  }
  vector_view<T> view() { return {w.data(), static_cast<index>(w.size())}; }
  std::vector<T> velocity() const {
    const vector_view<const T> v = optimizer.velocity();
    return std::vector<T>(v.data, v.data + v.size);
  }
};

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}
bool same_bits(double a, double b) { return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b); }

bool same_state(const schedule_state& a, const schedule_state& b) {
  return a.kind == b.kind && same_bits(a.learning_rate, b.learning_rate) && a.steps_completed == b.steps_completed &&
         a.epochs_completed == b.epochs_completed && same_bits(a.best, b.best) && a.bad_epochs == b.bad_epochs &&
         a.reductions == b.reductions;
}

/// Every field but the timing.
bool same_history(const std::vector<epoch_report>& a, const std::vector<epoch_report>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t e = 0; e < a.size(); ++e) {
    if (a[e].epoch != b[e].epoch || a[e].steps != b[e].steps || !same_bits(a[e].training_loss, b[e].training_loss) ||
        !same_bits(a[e].validation_loss, b[e].validation_loss) ||
        !same_bits(a[e].validation_accuracy, b[e].validation_accuracy) ||
        !same_bits(a[e].learning_rate, b[e].learning_rate))
      return false;
  }
  return true;
}

bool same_trace(const trace& a, const trace& b) {
  return same_bits(a.rates, b.rates) && same_bits(a.loss_sum, b.loss_sum) && a.epochs == b.epochs;
}

/// The step count a checkpoint was taken at.
std::int64_t steps_done_in(const fs::path& directory) {
  archive_reader in(checkpoint_path(directory));
  (void)in.read_string("format");
  (void)in.read_value<std::uint32_t>("version");
  return in.read_value<std::int64_t>("steps_done");
}

trainer_options with_checkpoints(const fs::path& directory, index every_steps) {
  trainer_options o;
  o.progress = progress_mode::never;
  o.checkpoint.directory = directory;
  o.checkpoint.every_steps = every_steps;
  return o;
}

trainer_options quiet() { return {.progress = progress_mode::never}; }

/// The acceptance test for one configuration.
template <class T, class Schedule>
void check_resume_is_bit_identical(const char* schedule_name, const Schedule& prototype, index every_steps,
                                   bool crash_after_epoch_end) {
  CAPTURE(schedule_name);
  CAPTURE(every_steps);
  CAPTURE(crash_after_epoch_end);
  const problem<T> p;

  // The run that is never interrupted, without checkpoints.
  process<T, Schedule> reference(prototype, quiet());
  const auto initial_w = reference.w;
  trace reference_trace;
  const auto reference_history =
      reference.fit.fit(reference.view(), p.train, p.order, &p.validation, reference_trace);
  REQUIRE(reference_history.size() == 6);
  CHECK(!same_bits(reference.w, initial_w));

  // The same run with checkpoints, dying at step 10 before its update (right after the end of
  // epoch 1) or at step 12 after its update (in the middle of epoch 2).
  temp_dir dir;
  const auto options = with_checkpoints(dir.path(), every_steps);
  const index crash_step = crash_after_epoch_end ? 10 : 12;
  {
    process<T, Schedule> first(prototype, options);
    trace t;
    crash_at crash{crash_step, crash_after_epoch_end};
    CHECK_THROWS_AS(first.fit.fit(first.view(), p.train, p.order, &p.validation, t, crash), simulated_crash);
  }
  const index resumed_at = crash_after_epoch_end || every_steps == 0 ? 10 : 12;
  CHECK(steps_done_in(dir.path()) == resumed_at);
  CHECK(!fs::exists(checkpoint_path(dir.path()).string() + ".tmp"));
  // The schedule's state in the checkpoint is not its initial state: every schedule here has
  // lowered the rate by then (the plateau rule at the end of epoch 1, the step milestone after
  // epoch 2, the list by itself).
  CHECK(reference_trace.rates[static_cast<std::size_t>(resumed_at)] < reference_trace.rates[0]);

  // A new process resumes: everything but the data, the order and the configuration comes from
  // the checkpoint (the parameters it starts with are garbage).
  process<T, Schedule> second(prototype, options);
  std::fill(second.w.begin(), second.w.end(), T(7));
  trace t;
  first_step probe;
  const auto history = second.fit.resume(dir.path(), second.view(), p.train, p.order, &p.validation, t, probe);
  CHECK(probe.step == resumed_at);
  CHECK(same_bits(probe.rate, reference_trace.rates[static_cast<std::size_t>(resumed_at)]));
  CHECK(probe.rate < reference_trace.rates[0]);

  CHECK(same_bits(second.w, reference.w));
  CHECK(same_bits(second.velocity(), reference.velocity()));
  CHECK(same_state(second.schedule.state(), reference.schedule.state()));
  CHECK(same_history(history, reference_history));
  CHECK(same_trace(t, reference_trace));
  CHECK(steps_done_in(dir.path()) == 30);  // the resumed run went on writing checkpoints
}

template <class T>
void check_every_configuration() {
  // Patience 1 and a 40 % threshold: the plateau rule lowers the rate at the end of epoch 1.
  const plateau_schedule plateau(0.3, 0.5, /*patience=*/1, /*threshold=*/0.4);
  std::vector<double> per_step;
  for (int t = 0; t < 30; ++t) per_step.push_back(0.3 * std::pow(0.95, t) + 0.01 * (t % 3));
  const list_schedule list(per_step);
  const step_schedule step(0.3, {2, 4}, 0.5);  // the milestone after epoch 2 is inside the checkpoint
  for (const index every : {index{0}, index{3}}) {
    for (const bool after_epoch_end : {false, true}) {
      check_resume_is_bit_identical<T>("plateau_schedule", plateau, every, after_epoch_end);
      check_resume_is_bit_identical<T>("list_schedule", list, every, after_epoch_end);
      check_resume_is_bit_identical<T>("step_schedule", step, every, after_epoch_end);
    }
  }
}

/// A callback that records when checkpoints are taken (save_state is called while writing one).
struct save_log {
  std::vector<std::int64_t>* saves = nullptr;  // steps seen at each save
  std::vector<std::int64_t>* epochs_at_save = nullptr;
  std::int64_t steps = 0;
  std::int64_t epochs = 0;
  template <class Ctx>
  void after_update(const Ctx&) {
    ++steps;
  }
  void on_epoch_end(const epoch_report&) { ++epochs; }
  void save_state(archive_writer& out) const {
    saves->push_back(steps);
    epochs_at_save->push_back(epochs);
    out.write_value("log.steps", steps);
    out.write_value("log.epochs", epochs);
  }
  void load_state(archive_reader& in) {
    steps = in.read_value<std::int64_t>("log.steps");
    epochs = in.read_value<std::int64_t>("log.epochs");
  }
};

/// Throws from save_state on its fail_at-th call, half-way through writing its sections.
struct flaky_saver {
  int* calls = nullptr;
  int fail_at = -1;
  void save_state(archive_writer& out) const {
    out.write_value<std::int32_t>("flaky.calls", ++*calls);
    if (*calls == fail_at) throw simulated_crash{};
    out.write_value<std::int32_t>("flaky.end", 1);
  }
  void load_state(archive_reader& in) {
    (void)in.read_value<std::int32_t>("flaky.calls");
    (void)in.read_value<std::int32_t>("flaky.end");
  }
};

/// An optimizer without set_velocity(): fine for fit(), not for checkpoints.
struct sgd_without_set_velocity {
  using value_type = double;
  SGD<double> inner;
  void step(vector_view<double> w, vector_view<const double> g, double eta) { inner.step(w, g, eta); }
  [[nodiscard]] double momentum() const { return inner.momentum(); }
  [[nodiscard]] double weight_decay() const { return inner.weight_decay(); }
  [[nodiscard]] vector_view<const double> velocity() const { return inner.velocity(); }
};

/// A schedule without state()/restore().
struct bare_schedule {
  index steps = 0;
  [[nodiscard]] double learning_rate() const { return 0.1; }
  void step_completed() { ++steps; }
  void epoch_completed(const epoch_metrics&) {}
  [[nodiscard]] index steps_completed() const { return steps; }
};

struct load_only {
  void load_state(archive_reader&) {}
};
struct save_only {
  void save_state(archive_writer&) const {}
};

// The callback of the docs/train.md example, as written there.
struct loss_log {  // a callback with state: saved with every checkpoint, restored by resume
  std::vector<double> losses;
  void after_update(const hydra::step_context<float, hydra::cpu>& c) { losses.push_back(c.loss); }
  void save_state(hydra::archive_writer& out) const { out.write<double>("loss_log.losses", losses); }
  void load_state(hydra::archive_reader& in) { losses = in.read_vector<double>("loss_log.losses", 1 << 24); }
};

static_assert(CheckpointableOptimizer<SGD<double>> && CheckpointableOptimizer<SGD<float>>);
static_assert(Optimizer<sgd_without_set_velocity> && !CheckpointableOptimizer<sgd_without_set_velocity>);
static_assert(CheckpointableCallback<trace> && CheckpointableCallback<save_log>);
static_assert(!SavesState<crash_at> && !LoadsState<crash_at>);
static_assert(LoadsState<load_only> && !SavesState<load_only> && !CheckpointableCallback<load_only>);
static_assert(SavesState<save_only> && !CheckpointableCallback<save_only>);
static_assert(trainer<Mlp<double>, SoftmaxCrossEntropy<double>, SGD<double>, plateau_schedule>::checkpointable);
static_assert(!trainer<Mlp<double>, SoftmaxCrossEntropy<double>, sgd_without_set_velocity, plateau_schedule>::checkpointable);
static_assert(!trainer<Mlp<double>, SoftmaxCrossEntropy<double>, SGD<double>, bare_schedule>::checkpointable);

} // namespace

TEST_CASE("an interrupted and resumed run is bit-identical to an uninterrupted one (double)") {
  check_every_configuration<double>();
}

TEST_CASE("an interrupted and resumed run is bit-identical to an uninterrupted one (float)") {
  check_every_configuration<float>();
}

TEST_CASE("checkpoints are taken after every epoch and every k-th step, after the step's whole processing") {
  const problem<double> p;
  for (const index every : {index{0}, index{3}, index{7}}) {
    CAPTURE(every);
    temp_dir dir;
    process<double, plateau_schedule> run(plateau_schedule(0.3, 0.5, 1, 0.4), with_checkpoints(dir.path() / "a" / "b", every));
    std::vector<std::int64_t> saves, epochs_at_save;
    save_log log{&saves, &epochs_at_save};
    (void)run.fit.fit(run.view(), p.train, p.order, &p.validation, log);
    std::vector<std::int64_t> expected, expected_epochs;
    for (std::int64_t s = 1; s <= 30; ++s) {
      if (s % 5 == 0 || (every > 0 && s % every == 0)) {
        expected.push_back(s);
        expected_epochs.push_back(s / 5);  // on_epoch_end already ran at an epoch-end checkpoint
      }
    }
    CHECK(saves == expected);
    CHECK(epochs_at_save == expected_epochs);
    CHECK(fs::is_directory(dir.path() / "a" / "b"));  // created
    CHECK(steps_done_in(dir.path() / "a" / "b") == 30);
  }

  // Without a directory nothing is written and save_state is never called.
  process<double, plateau_schedule> run(plateau_schedule(0.3, 0.5), quiet());
  std::vector<std::int64_t> saves, epochs_at_save;
  save_log log{&saves, &epochs_at_save};
  (void)run.fit.fit(run.view(), p.train, p.order, &p.validation, log);
  CHECK(saves.empty());
}

TEST_CASE("a checkpoint holds the documented sections in the documented order") {
  const problem<float> p;
  temp_dir dir;
  process<float, step_schedule> run(step_schedule(0.3, {2}, 0.5), with_checkpoints(dir.path(), 4));
  trace t;
  crash_at crash{12, true};  // dies right after the checkpoint at 12 steps: two steps into epoch 2
  CHECK_THROWS_AS(run.fit.fit(run.view(), p.train, p.order, &p.validation, t, crash), simulated_crash);

  const auto n = static_cast<std::size_t>(run.model.parameter_count());
  archive_reader in(checkpoint_path(dir.path()));
  CHECK(in.read_string("format") == "hydra.trainer.checkpoint");
  CHECK(in.read_value<std::uint32_t>("version") == 2);
  CHECK(in.read_value<std::int64_t>("steps_done") == 12);
  CHECK(in.read_value<std::int64_t>("batch_order.steps") == 30);
  CHECK(in.read_value<std::int64_t>("batch_order.batch_size") == 8);
  CHECK(in.read_value<std::int64_t>("batch_order.num_samples") == 40);
  CHECK(in.read_value<std::int64_t>("batch_order.steps_per_epoch") == 5);
  CHECK(in.read_value<std::uint64_t>("batch_order.fingerprint") == fingerprint(p.order));
  CHECK(in.read_value<std::int64_t>("parameter_count") == run.model.parameter_count());
  CHECK(in.read_string("scalar_type") == "float32");
  CHECK(same_bits(in.read_vector<float>("parameters", n), run.w));
  CHECK(in.read_value<float>("optimizer.momentum") == 0.9f);
  CHECK(in.read_value<float>("optimizer.weight_decay") == 1e-3f);
  CHECK(same_bits(in.read_vector<float>("optimizer.velocity", n), run.velocity()));
  CHECK(in.read_value<std::int64_t>("model.buffer_count") == 0);  // no batch norms in an Mlp
  CHECK(in.read_vector<float>("model.buffers", 1).empty());
  const auto s = load_schedule_state(in);
  CHECK(same_state(s, run.schedule.state()));
  CHECK(s.steps_completed == 12);
  CHECK(s.epochs_completed == 2);
  CHECK(s.learning_rate == 0.15);  // the milestone after epoch 2 halved it
  CHECK(in.read_value<double>("epoch.loss_sum") > 0);
  CHECK(in.read_value<std::int64_t>("epoch.steps") == 2);
  CHECK(in.read_value<double>("epoch.seconds") >= 0);
  const auto epochs = in.read_vector<std::int64_t>("history.epoch", 10);
  CHECK(epochs == std::vector<std::int64_t>{0, 1});
  CHECK(in.read_vector<std::int64_t>("history.steps", 10) == std::vector<std::int64_t>{5, 5});
  for (const char* column : {"history.training_loss", "history.validation_loss", "history.validation_accuracy",
                             "history.learning_rate", "history.seconds"})
    CHECK(in.read_vector<double>(column, 10).size() == 2);
  CHECK(in.read_value<std::int64_t>("callbacks") == 1);
  CHECK(in.read_value<std::int64_t>("callback") == 0);
  CHECK(in.read_vector<double>("trace.rates", 100).size() == 12);
  (void)in.read_value<double>("trace.loss_sum");
  CHECK(in.read_value<std::int64_t>("trace.epochs") == 2);
  in.finish();
}

TEST_CASE("resume of a finished run restores its end and trains no further") {
  const problem<double> p;
  temp_dir dir;
  process<double, list_schedule> first(list_schedule(std::vector<double>(30, 0.2)), with_checkpoints(dir.path(), 0));
  trace t1;
  const auto history = first.fit.fit(first.view(), p.train, p.order, &p.validation, t1);
  process<double, list_schedule> second(list_schedule(std::vector<double>(30, 0.2)), with_checkpoints(dir.path(), 0));
  trace t2;
  first_step probe;
  const auto resumed = second.fit.resume(dir.path(), second.view(), p.train, p.order, &p.validation, t2, probe);
  CHECK(probe.step == -1);
  CHECK(same_bits(second.w, first.w));
  CHECK(same_bits(second.velocity(), first.velocity()));
  CHECK(same_history(resumed, history));
  for (std::size_t e = 0; e < history.size(); ++e) CHECK(same_bits(resumed[e].seconds, history[e].seconds));
  CHECK(same_trace(t2, t1));
}

TEST_CASE("resume refuses another run's checkpoint, naming the file and the field, and restores nothing") {
  const problem<double> p;
  temp_dir dir;
  {
    process<double, plateau_schedule> run(plateau_schedule(0.3, 0.5), with_checkpoints(dir.path(), 0));
    trace t;
    crash_at crash{7, true};
    CHECK_THROWS_AS(run.fit.fit(run.view(), p.train, p.order, &p.validation, t, crash), simulated_crash);
  }
  const auto file = checkpoint_path(dir.path()).string();

  process<double, plateau_schedule> fresh(plateau_schedule(0.3, 0.5), quiet());
  std::fill(fresh.w.begin(), fresh.w.end(), 7.0);
  const auto untouched = [&] {
    const auto velocity = fresh.velocity();
    return std::all_of(fresh.w.begin(), fresh.w.end(), [](double v) { return v == 7.0; }) &&
           fresh.schedule.steps_completed() == 0 &&
           std::all_of(velocity.begin(), velocity.end(), [](double v) { return v == 0.0; });
  };
  trace t;

  const auto other_seed = batch_order::shuffled(40, 8, 6, /*seed=*/12);
  const auto seed_message = message_of<format_error>([&] { (void)fresh.fit.resume(dir.path(), fresh.view(), p.train, other_seed, &p.validation, t); });
  CHECK(contains(seed_message, file));
  CHECK(contains(seed_message, "batch_order.fingerprint"));
  CHECK(untouched());

  const auto other_batch = batch_order::shuffled(40, 4, 3, 11);
  const auto batch_message = message_of<shape_error>([&] { (void)fresh.fit.resume(dir.path(), fresh.view(), p.train, other_batch, &p.validation, t); });
  CHECK(contains(batch_message, file));
  CHECK(contains(batch_message, "its batch_order.batch_size is 8, this run's is 4"));

  const auto longer = batch_order::shuffled(40, 8, 7, 11);
  CHECK(contains(message_of<shape_error>([&] { (void)fresh.fit.resume(dir.path(), fresh.view(), p.train, longer, &p.validation, t); }),
                 "its batch_order.steps is 30, this run's is 35"));

  {  // another model size
    Mlp<double> wider(4, {7}, 3, activation::tanh);
    SoftmaxCrossEntropy<double> loss;
    SGD<double> optimizer(wider.parameter_count(), {.momentum = 0.9, .weight_decay = 1e-3});
    plateau_schedule schedule(0.3, 0.5);
    trainer fit(wider, loss, optimizer, schedule, quiet());
    std::vector<double> w(static_cast<std::size_t>(wider.parameter_count()));
    const auto message = message_of<shape_error>(
        [&] { (void)fit.resume(dir.path(), vector_view<double>(w.data(), wider.parameter_count()), p.train, p.order, &p.validation, t); });
    CHECK(contains(message, file));
    CHECK(contains(message, "its parameter_count is " + std::to_string(fresh.model.parameter_count()) + ", this run's is " +
                                std::to_string(wider.parameter_count())));
  }
  {  // another scalar type
    const problem<float> pf;
    process<float, plateau_schedule> single(plateau_schedule(0.3, 0.5), quiet());
    const auto message =
        message_of<format_error>([&] { (void)single.fit.resume(dir.path(), single.view(), pf.train, pf.order, &pf.validation, t); });
    CHECK(contains(message, file));
    CHECK(contains(message, "its scalar_type is float64, this run's is float32"));
  }
  {  // another momentum
    Mlp<double> model(4, {6}, 3, activation::tanh);
    SoftmaxCrossEntropy<double> loss;
    SGD<double> optimizer(model.parameter_count(), {.momentum = 0.5, .weight_decay = 1e-3});
    plateau_schedule schedule(0.3, 0.5);
    trainer fit(model, loss, optimizer, schedule, quiet());
    std::vector<double> w(static_cast<std::size_t>(model.parameter_count()));
    const auto message = message_of<invalid_argument>(
        [&] { (void)fit.resume(dir.path(), vector_view<double>(w.data(), model.parameter_count()), p.train, p.order, &p.validation, t); });
    CHECK(contains(message, "its optimizer.momentum is 0.9"));
  }
  {  // another kind of schedule: restore() refuses it
    process<double, step_schedule> run(step_schedule(0.3, {2}, 0.5), quiet());
    CHECK(contains(message_of<invalid_argument>([&] { (void)run.fit.resume(dir.path(), run.view(), p.train, p.order, &p.validation, t); }),
                   "the state belongs to a plateau_schedule, not a step_schedule"));
    CHECK(run.schedule.steps_completed() == 0);
  }
  CHECK(same_trace(t, trace{}));  // no callback was restored by a refused resume

  // Not the callbacks it was written with.
  const auto callbacks = message_of<format_error>([&] { (void)fresh.fit.resume(dir.path(), fresh.view(), p.train, p.order, &p.validation); });
  CHECK(contains(callbacks, file));
  CHECK(contains(callbacks, "holds the state of 1 callbacks, but resume() was given 0"));
  CHECK(untouched());

  // No checkpoint at all.
  temp_dir empty;
  const auto missing = message_of<io_error>([&] { (void)fresh.fit.resume(empty.path(), fresh.view(), p.train, p.order, &p.validation, t); });
  CHECK(contains(missing, checkpoint_path(empty.path()).string()));

  // A damaged checkpoint: found by the checksum before anything, callbacks included, is restored.
  {
    std::fstream damage(file, std::ios::in | std::ios::out | std::ios::binary);
    damage.seekp(600);
    damage.put('\x55');
  }
  trace before = t;
  const auto corrupt = message_of<format_error>([&] { (void)fresh.fit.resume(dir.path(), fresh.view(), p.train, p.order, &p.validation, t); });
  CHECK(contains(corrupt, file));
  CHECK(contains(corrupt, "corrupt"));
  CHECK(untouched());
  CHECK(same_trace(t, before));
}

TEST_CASE("a crash while a checkpoint is written leaves the previous checkpoint, from which the run resumes") {
  const problem<double> p;
  process<double, plateau_schedule> reference(plateau_schedule(0.3, 0.5, 1, 0.4), quiet());
  trace reference_trace;
  const auto reference_history = reference.fit.fit(reference.view(), p.train, p.order, &p.validation, reference_trace);

  temp_dir dir;
  const auto options = with_checkpoints(dir.path(), 3);
  {
    process<double, plateau_schedule> first(plateau_schedule(0.3, 0.5, 1, 0.4), options);
    trace t;
    int calls = 0;
    flaky_saver flaky{&calls, /*fail_at=*/5};  // checkpoints at 3, 5, 6, 9, then dies writing 10
    CHECK_THROWS_AS(first.fit.fit(first.view(), p.train, p.order, &p.validation, t, flaky), simulated_crash);
    CHECK(calls == 5);
  }
  CHECK(steps_done_in(dir.path()) == 9);
  CHECK(!fs::exists(checkpoint_path(dir.path()).string() + ".tmp"));
  archive_reader::verify(checkpoint_path(dir.path()));

  process<double, plateau_schedule> second(plateau_schedule(0.3, 0.5, 1, 0.4), options);
  trace t;
  int calls = 0;
  flaky_saver steady{&calls};
  const auto history = second.fit.resume(dir.path(), second.view(), p.train, p.order, &p.validation, t, steady);
  CHECK(same_bits(second.w, reference.w));
  CHECK(same_bits(second.velocity(), reference.velocity()));
  CHECK(same_state(second.schedule.state(), reference.schedule.state()));
  CHECK(same_history(history, reference_history));
  CHECK(same_trace(t, reference_trace));
}

TEST_CASE("checkpoints need a checkpointable optimizer and schedule; fit without them is unchanged") {
  const problem<double> p;
  Mlp<double> model(4, {6}, 3, activation::tanh);
  SoftmaxCrossEntropy<double> loss;
  std::vector<double> w(static_cast<std::size_t>(model.parameter_count()));
  model.initialize(vector_view<double>(w.data(), model.parameter_count()), 5);
  const vector_view<double> view(w.data(), model.parameter_count());
  temp_dir dir;

  sgd_without_set_velocity plain{SGD<double>(model.parameter_count(), {.momentum = 0.9})};
  plateau_schedule schedule(0.3, 0.5);
  trainer plain_fit(model, loss, plain, schedule, quiet());
  CHECK(plain_fit.fit(view, p.train, p.order, &p.validation).size() == 6);  // no checkpoints: as ever
  trainer plain_checkpointed(model, loss, plain, schedule, with_checkpoints(dir.path(), 0));
  const auto message = message_of<invalid_argument>([&] { (void)plain_checkpointed.fit(view, p.train, p.order, &p.validation); });
  CHECK(contains(message, "hydra::trainer::fit: checkpoints into '" + dir.path().string() + "' need an optimizer with set_velocity()"));
  CHECK(contains(message, "docs/train.md"));

  SGD<double> sgd(model.parameter_count());
  any_schedule bare = bare_schedule{};
  trainer any_fit(model, loss, sgd, bare, with_checkpoints(dir.path(), 0));
  CHECK(contains(message_of<invalid_argument>([&] { (void)any_fit.fit(view, p.train, p.order, &p.validation); }),
                 "the any_schedule holds one without"));
  any_schedule plateau = plateau_schedule(0.3, 0.5);
  trainer any_plateau(model, loss, sgd, plateau, with_checkpoints(dir.path(), 0));
  CHECK(any_plateau.fit(view, p.train, p.order, &p.validation).size() == 6);
  CHECK(steps_done_in(dir.path()) == 30);

  trainer negative(model, loss, sgd, schedule, with_checkpoints(dir.path(), -1));
  CHECK(contains(message_of<invalid_argument>([&] { (void)negative.fit(view, p.train, p.order, &p.validation); }),
                 "checkpoint.every_steps must be >= 0, got -1"));

  const auto not_a_directory = dir.path() / "file";
  std::ofstream(not_a_directory) << "x";
  trainer blocked(model, loss, sgd, schedule, with_checkpoints(not_a_directory / "sub", 0));
  CHECK(contains(message_of<io_error>([&] { (void)blocked.fit(view, p.train, p.order, &p.validation); }),
                 "cannot create the checkpoint directory"));
}

TEST_CASE("the docs/train.md checkpoint example") {
  const problem<float> p;
  const auto& train = p.train;
  const auto& validation = p.validation;
  const auto& order = p.order;
  temp_dir scratch;
  const fs::path run_directory = scratch.path() / "run-1";

  // One start of the program: a fresh process that resumes when it finds a checkpoint. The first
  // start dies at step 17 (unless `crash` is false); the second finishes the run.
  struct outcome {
    std::vector<epoch_report> history;
    std::vector<float> w;
    std::vector<double> losses;
  };
  const auto start = [&](const fs::path& directory, bool crash) {
    hydra::Mlp<float> model(4, {6}, 3);
    hydra::SoftmaxCrossEntropy<float> loss;
    hydra::SGD<float> optimizer(model.parameter_count(), {.momentum = 0.9, .weight_decay = 2e-5});
    hydra::plateau_schedule schedule(0.1, 0.5);
    hydra::vector<float, hydra::cpu> w(model.parameter_count());
    model.initialize(w.view(), 3);
    crash_at dies{crash ? 17 : -1, false};

    hydra::trainer_options options;
    options.checkpoint = {.directory = directory, .every_steps = 7};
    hydra::trainer fit(model, loss, optimizer, schedule, options);
    loss_log log;
    const bool restarting = std::filesystem::exists(hydra::checkpoint_path(directory));
    const auto history = restarting ? fit.resume(directory, w.view(), train, order, &validation, log, dies)
                                    : fit.fit(w.view(), train, order, &validation, log, dies);
    return outcome{history, w.to_host(), log.losses};
  };
  CHECK_THROWS_AS(start(run_directory, true), simulated_crash);
  CHECK(steps_done_in(run_directory) == 15);  // the end of epoch 2 (the 7-step mark, 14, came before)
  const auto resumed = start(run_directory, false);
  const auto uninterrupted = start(scratch.path() / "run-2", false);
  CHECK(same_history(resumed.history, uninterrupted.history));
  CHECK(same_bits(resumed.w, uninterrupted.w));
  CHECK(same_bits(resumed.losses, uninterrupted.losses));
  CHECK(resumed.losses.size() == 30);
}

TEST_CASE("the batch order's fingerprint covers every batch") {
  const auto a = batch_order::shuffled(40, 8, 6, 11);
  CHECK(fingerprint(a) == fingerprint(batch_order::shuffled(40, 8, 6, 11)));
  CHECK(fingerprint(a) != fingerprint(batch_order::shuffled(40, 8, 6, 12)));
  CHECK(fingerprint(a) != fingerprint(batch_order::shuffled(40, 8, 5, 11)));
  std::vector<index> table(a.table().begin(), a.table().end());
  CHECK(fingerprint(batch_order::from_table(table, 30, 8, 40, 5)) == fingerprint(a));
  std::swap(table[100], table[101]);  // two samples swapped inside one batch
  CHECK(fingerprint(batch_order::from_table(table, 30, 8, 40, 5)) != fingerprint(a));
}

} // namespace hydra::test
