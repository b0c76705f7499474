// Tests of the learning-rate schedules (include/hydra/optim/schedules.hpp): literal expected
// values over sequences of steps and epochs, the plateau rule, errors and state round trips.

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "hydra/optim/schedules.hpp"
#include "support/messages.hpp"

namespace {

using hydra::index;
constexpr double absent = std::numeric_limits<double>::quiet_NaN();

using hydra::test::contains;
using hydra::test::message_of;

/// Runs `steps_per_epoch` steps, then reports an epoch with the given losses.
template <class S>
void run_epoch(S& s, index steps_per_epoch, double training_loss, double validation_loss = absent) {
  for (index i = 0; i < steps_per_epoch; ++i) s.step_completed();
  s.epoch_completed(hydra::epoch_metrics{training_loss, validation_loss});
}

bool same_state(const hydra::schedule_state& a, const hydra::schedule_state& b) {
  const auto same_double = [](double x, double y) { return x == y || (std::isnan(x) && std::isnan(y)); };
  return a.kind == b.kind && same_double(a.learning_rate, b.learning_rate) && a.steps_completed == b.steps_completed &&
         a.epochs_completed == b.epochs_completed && same_double(a.best, b.best) && a.bad_epochs == b.bad_epochs &&
         a.reductions == b.reductions;
}

} // namespace

TEST_CASE("constant_schedule") {
  hydra::constant_schedule s(0.1);
  CHECK(s.learning_rate() == 0.1);
  for (int e = 0; e < 3; ++e) run_epoch(s, 4, 1.0);
  CHECK(s.learning_rate() == 0.1);
  CHECK(s.steps_completed() == 12);
  CHECK(s.epochs_completed() == 3);

  CHECK(contains(message_of<hydra::invalid_argument>([] { hydra::constant_schedule bad(0.0); }),
                 "hydra::constant_schedule: learning_rate must be finite and > 0, got 0"));
  CHECK(contains(message_of<hydra::invalid_argument>([] { hydra::constant_schedule bad(-1.0); }), "got -1"));
  CHECK(contains(message_of<hydra::invalid_argument>([] { hydra::constant_schedule bad(absent); }), "got nan"));
  CHECK(contains(message_of<hydra::invalid_argument>(
                     [] { hydra::constant_schedule bad(std::numeric_limits<double>::infinity()); }),
                 "got inf"));
}

TEST_CASE("step_schedule: the paper's MNIST setting, lr 0.01 times 0.1 at epoch 5") {
  hydra::step_schedule s(0.01, {5}, 0.1);
  // Zero-based epochs 0..4 run at 0.01, epochs 5.. at 0.001; steps inside an epoch change nothing.
  const double expected[10] = {0.01, 0.01, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001, 0.001, 0.001};
  for (int e = 0; e < 10; ++e) {
    CAPTURE(e);
    for (int i = 0; i < 3; ++i) {
      CHECK(s.learning_rate() == doctest::Approx(expected[e]).epsilon(1e-15));
      s.step_completed();
    }
    s.epoch_completed({1.0, absent});
  }
  CHECK(s.steps_completed() == 30);
  CHECK(s.epochs_completed() == 10);
}

TEST_CASE("step_schedule: several, unsorted and repeated milestones") {
  // Like MultiStepLR(milestones=[4, 2, 4], gamma=0.5): x0.5 after epoch 2, x0.25 after epoch 4.
  hydra::step_schedule s(1.0, {4, 2, 4}, 0.5);
  CHECK(s.milestone_epochs() == std::vector<index>{2, 4, 4});
  const double expected[7] = {1.0, 1.0, 0.5, 0.5, 0.125, 0.125, 0.125};
  for (int e = 0; e < 7; ++e) {
    CAPTURE(e);
    CHECK(s.learning_rate() == expected[e]);
    run_epoch(s, 2, 1.0);
  }
  hydra::step_schedule none(0.3, {}, 0.5);
  for (int e = 0; e < 3; ++e) run_epoch(none, 1, 1.0);
  CHECK(none.learning_rate() == 0.3);
}

TEST_CASE("step_schedule: errors") {
  using E = hydra::invalid_argument;
  CHECK(contains(message_of<E>([] { hydra::step_schedule bad(0.1, {0, 3}, 0.1); }),
                 "milestone_epochs[0] must be >= 1 (epochs are counted from 1), got 0"));
  CHECK(contains(message_of<E>([] { hydra::step_schedule bad(0.1, {5}, 0.0); }), "gamma must be in (0, 1], got 0"));
  CHECK(contains(message_of<E>([] { hydra::step_schedule bad(0.1, {5}, 1.5); }), "gamma must be in (0, 1], got 1.5"));
  CHECK(contains(message_of<E>([] { hydra::step_schedule bad(-0.1, {5}, 0.1); }), "learning_rate"));
  CHECK_NOTHROW(hydra::step_schedule(0.1, {5}, 1.0));
}

TEST_CASE("exponential_schedule: multiplies by gamma after every step") {
  hydra::exponential_schedule s(1.0, 0.5);
  const double expected[5] = {1.0, 0.5, 0.25, 0.125, 0.0625};
  for (int t = 0; t < 5; ++t) {
    CHECK(s.learning_rate() == expected[t]);
    s.step_completed();
  }
  s.epoch_completed({1.0, absent});  // epochs do not change the rate
  CHECK(s.learning_rate() == 0.03125);
  CHECK(s.steps_completed() == 5);

  hydra::exponential_schedule d(0.1, 0.9);
  const double decimal[4] = {0.1, 0.09, 0.081, 0.0729};
  for (int t = 0; t < 4; ++t) {
    CHECK(d.learning_rate() == doctest::Approx(decimal[t]).epsilon(1e-14));
    d.step_completed();
  }
  hydra::exponential_schedule grow(1.0, 2.0);  // gamma > 1 is allowed
  grow.step_completed();
  CHECK(grow.learning_rate() == 2.0);

  using E = hydra::invalid_argument;
  CHECK(contains(message_of<E>([] { hydra::exponential_schedule bad(0.1, 0.0); }),
                 "hydra::exponential_schedule: gamma must be finite and > 0, got 0"));
  CHECK(contains(message_of<E>([] { hydra::exponential_schedule bad(0.1, -0.5); }), "got -0.5"));
  CHECK(contains(message_of<E>([] { hydra::exponential_schedule bad(0.0, 0.5); }), "learning_rate"));
}

TEST_CASE("plateau_schedule: improving metrics never reduce") {
  hydra::plateau_schedule s(0.1, 0.5);
  for (double loss : {1.0, 0.9, 0.81, 0.729, 0.6561, 0.59049}) run_epoch(s, 2, loss);
  CHECK(s.learning_rate() == 0.1);
  CHECK(s.reductions() == 0);
  CHECK(s.best() == 0.59049);
  CHECK(s.bad_epochs() == 0);
}

TEST_CASE("plateau_schedule: a flat metric reduces every `patience` epochs") {
  hydra::plateau_schedule s(0.1, 0.5);  // patience 2, threshold 1e-4
  CHECK(s.patience() == 2);
  CHECK(s.threshold() == 1e-4);
  CHECK(s.best() == std::numeric_limits<double>::infinity());
  // epoch:                1    2    3     4    5      6
  // bad epochs after it:  0    1    0(2)  1    0(2)   1
  // learning rate after:  0.1  0.1  0.05  0.05 0.025  0.025
  const double lr_after[6] = {0.1, 0.1, 0.05, 0.05, 0.025, 0.025};
  const index bad_after[6] = {0, 1, 0, 1, 0, 1};
  for (int e = 0; e < 6; ++e) {
    CAPTURE(e);
    run_epoch(s, 3, 1.0);
    CHECK(s.learning_rate() == lr_after[e]);
    CHECK(s.bad_epochs() == bad_after[e]);
  }
  CHECK(s.reductions() == 2);
  CHECK(s.best() == 1.0);
}

TEST_CASE("plateau_schedule: improvements below 0.01% of the best count as a plateau") {
  hydra::plateau_schedule s(0.1, 0.5);
  // 0.004% per epoch: 0.99996 and 0.99992 are not below 1 * (1 - 1e-4) = 0.9999, so epochs 2 and 3
  // are bad and the rate halves; 0.99988 is below 0.9999 (the best stays 1 until then), an
  // improvement.
  run_epoch(s, 1, 1.0);
  run_epoch(s, 1, 0.99996);
  CHECK(s.bad_epochs() == 1);
  CHECK(s.best() == 1.0);
  run_epoch(s, 1, 0.99992);
  CHECK(s.learning_rate() == 0.05);
  CHECK(s.reductions() == 1);
  run_epoch(s, 1, 0.99988);
  CHECK(s.best() == 0.99988);
  CHECK(s.bad_epochs() == 0);
  CHECK(s.learning_rate() == 0.05);

  // 0.02% per epoch is enough: 0.9998 < 0.9999, 0.9996 < 0.9998 * 0.9999 = 0.99970002, ...
  hydra::plateau_schedule t(0.1, 0.5);
  for (double loss : {1.0, 0.9998, 0.9996, 0.9994, 0.9992}) run_epoch(t, 1, loss);
  CHECK(t.reductions() == 0);
  CHECK(t.learning_rate() == 0.1);
}

TEST_CASE("plateau_schedule: watches training + validation loss, or training loss alone") {
  // Training loss falls, validation loss rises by as much: the sum 2.0 is flat.
  hydra::plateau_schedule both(0.1, 0.5);
  run_epoch(both, 1, 1.0, 1.0);
  run_epoch(both, 1, 0.8, 1.2);
  run_epoch(both, 1, 0.6, 1.4);
  CHECK(both.best() == 2.0);
  CHECK(both.learning_rate() == 0.05);
  // Without a validation set (NaN) the same training losses are an improvement.
  hydra::plateau_schedule train_only(0.1, 0.5);
  run_epoch(train_only, 1, 1.0);
  run_epoch(train_only, 1, 0.8);
  run_epoch(train_only, 1, 0.6);
  CHECK(train_only.best() == 0.6);
  CHECK(train_only.learning_rate() == 0.1);
}

TEST_CASE("plateau_schedule: patience") {
  hydra::plateau_schedule p1(1.0, 0.5, 1);  // PyTorch ReduceLROnPlateau(patience=0)
  const double p1_after[4] = {1.0, 0.5, 0.25, 0.125};
  for (int e = 0; e < 4; ++e) {
    run_epoch(p1, 1, 3.0);
    CHECK(p1.learning_rate() == p1_after[e]);
  }
  hydra::plateau_schedule p3(1.0, 0.5, 3);  // PyTorch ReduceLROnPlateau(patience=2)
  const double p3_after[8] = {1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25};
  for (int e = 0; e < 8; ++e) {
    run_epoch(p3, 1, 3.0);
    CHECK(p3.learning_rate() == p3_after[e]);
  }
  CHECK(p3.reductions() == 2);
  // An improvement resets the count: bad, improve, bad, bad -> one reduction at the 5th epoch.
  hydra::plateau_schedule p2(1.0, 0.5, 2);
  for (double loss : {3.0, 3.0, 2.0, 2.0}) run_epoch(p2, 1, loss);
  CHECK(p2.learning_rate() == 1.0);
  run_epoch(p2, 1, 2.0);
  CHECK(p2.learning_rate() == 0.5);
}

TEST_CASE("plateau_schedule: min_learning_rate is a floor") {
  hydra::plateau_schedule s(0.1, 0.1, 1, 1e-4, 0.005);
  CHECK(s.min_learning_rate() == 0.005);
  run_epoch(s, 1, 1.0);  // sets best
  run_epoch(s, 1, 1.0);  // 0.1 -> 0.01
  CHECK(s.learning_rate() == doctest::Approx(0.01).epsilon(1e-15));
  run_epoch(s, 1, 1.0);  // 0.01 -> max(0.001, 0.005) = 0.005
  CHECK(s.learning_rate() == 0.005);
  run_epoch(s, 1, 1.0);  // at the floor: no change, not counted
  CHECK(s.learning_rate() == 0.005);
  CHECK(s.reductions() == 2);
}

TEST_CASE("plateau_schedule: errors") {
  using E = hydra::invalid_argument;
  CHECK(contains(message_of<E>([] { hydra::plateau_schedule bad(0.1, 0.0); }), "gamma must be in (0, 1], got 0"));
  CHECK(contains(message_of<E>([] { hydra::plateau_schedule bad(0.1, 2.0); }), "gamma must be in (0, 1], got 2"));
  CHECK(contains(message_of<E>([] { hydra::plateau_schedule bad(absent, 0.5); }), "learning_rate must be finite and > 0, got nan"));
  CHECK(contains(message_of<E>([] { hydra::plateau_schedule bad(0.1, 0.5, 0); }), "patience must be >= 1, got 0"));
  CHECK(contains(message_of<E>([] { hydra::plateau_schedule bad(0.1, 0.5, 2, 1.0); }), "threshold must be in [0, 1), got 1"));
  CHECK(contains(message_of<E>([] { hydra::plateau_schedule bad(0.1, 0.5, 2, -1e-4); }), "threshold must be in [0, 1), got -1e-04"));
  CHECK(contains(message_of<E>([] { hydra::plateau_schedule bad(0.1, 0.5, 2, 1e-4, -1.0); }),
                 "min_learning_rate must be finite and >= 0, got -1"));
  CHECK(contains(message_of<E>([] { hydra::plateau_schedule bad(0.1, 0.5, 2, 1e-4, 0.2); }),
                 "min_learning_rate 0.2 exceeds learning_rate 0.1"));
  hydra::plateau_schedule s(0.1, 0.5);
  run_epoch(s, 1, 1.0);
  const auto m = message_of<E>([&] { s.epoch_completed({absent, 1.0}); });
  CHECK(contains(m, "epoch 2"));
  CHECK(contains(m, "training_loss nan"));
  CHECK(contains(message_of<E>([&] { s.epoch_completed({1.0, std::numeric_limits<double>::infinity()}); }),
                 "validation_loss inf"));
  CHECK(s.epochs_completed() == 1);  // rejected epochs are not counted
}

TEST_CASE("list_schedule") {
  hydra::list_schedule s({0.1, 0.2, 0.05});
  CHECK(s.size() == 3);
  const double expected[3] = {0.1, 0.2, 0.05};
  for (int t = 0; t < 3; ++t) {
    CHECK(s.learning_rate() == expected[t]);
    s.step_completed();
    if (t == 1) s.epoch_completed({1.0, absent});  // epochs do not change the index
  }
  CHECK(s.steps_completed() == 3);
  const auto past = message_of<hydra::invalid_argument>([&] { (void)s.learning_rate(); });
  CHECK(contains(past, "no learning rate for step 3"));
  CHECK(contains(past, "the list has 3 entries"));
  CHECK(std::isnan(s.state().learning_rate));

  using E = hydra::invalid_argument;
  CHECK(contains(message_of<E>([] { hydra::list_schedule bad({0.1, 0.0, 0.2}); }),
                 "per_step[1] must be finite and > 0, got 0"));
  CHECK(contains(message_of<E>([] { hydra::list_schedule bad({0.1, 0.2, absent}); }), "per_step[2]"));
  CHECK(contains(message_of<E>([] { hydra::list_schedule bad({-0.5}); }), "per_step[0] must be finite and > 0, got -0.5"));
  CHECK(contains(message_of<E>([] { hydra::list_schedule bad(std::vector<double>{}); }), "empty"));
}

TEST_CASE("schedule_state is plain data") {
  static_assert(std::is_trivially_copyable_v<hydra::schedule_state>);
  static_assert(std::is_standard_layout_v<hydra::schedule_state>);
  static_assert(std::is_trivially_copyable_v<hydra::epoch_metrics>);
  CHECK(std::isnan(hydra::epoch_metrics{}.validation_loss));
}

namespace {
/// Drives `original` through a prefix, restores its state into `fresh`, then checks that both
/// continue identically (same rates after every step and epoch of the suffix).
template <class S>
void check_round_trip(S original, S fresh, const std::vector<double>& prefix, const std::vector<double>& suffix) {
  for (double loss : prefix) run_epoch(original, 2, loss);
  const hydra::schedule_state saved = original.state();
  fresh.restore(saved);
  CHECK(same_state(fresh.state(), saved));
  CHECK(fresh.steps_completed() == original.steps_completed());
  for (double loss : suffix) {
    for (int i = 0; i < 2; ++i) {
      CHECK(fresh.learning_rate() == original.learning_rate());
      original.step_completed();
      fresh.step_completed();
    }
    original.epoch_completed({loss, absent});
    fresh.epoch_completed({loss, absent});
    CHECK(same_state(fresh.state(), original.state()));
  }
}
} // namespace

TEST_CASE("state() and restore() round trip") {
  check_round_trip(hydra::constant_schedule(0.1), hydra::constant_schedule(0.1), {1, 1}, {1, 1});
  check_round_trip(hydra::step_schedule(0.01, {2, 4}, 0.1), hydra::step_schedule(0.01, {2, 4}, 0.1), {1, 1, 1},
                   {1, 1, 1});
  check_round_trip(hydra::exponential_schedule(0.1, 0.9), hydra::exponential_schedule(0.1, 0.9), {1, 1}, {1, 1});
  check_round_trip(hydra::list_schedule({0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8}),
                   hydra::list_schedule({0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8}), {1, 1}, {1, 1});
  // Plateau saved with one bad epoch pending: the restored copy reduces on the next flat epoch.
  check_round_trip(hydra::plateau_schedule(0.1, 0.5), hydra::plateau_schedule(0.1, 0.5), {2.0, 1.0, 1.0, 1.0},
                   {1.0, 1.0, 1.0, 0.5});

  hydra::plateau_schedule p(0.1, 0.5);
  for (double loss : {2.0, 1.0, 1.0}) run_epoch(p, 3, loss);
  const auto st = p.state();
  CHECK(st.kind == hydra::schedule_kind::plateau);
  CHECK(st.learning_rate == 0.1);
  CHECK(st.steps_completed == 9);
  CHECK(st.epochs_completed == 3);
  CHECK(st.best == 1.0);
  CHECK(st.bad_epochs == 1);
  CHECK(st.reductions == 0);
  hydra::plateau_schedule q(0.1, 0.5);
  q.restore(st);
  run_epoch(q, 1, 1.0);
  CHECK(q.learning_rate() == 0.05);
  CHECK(q.reductions() == 1);
}

TEST_CASE("restore() rejects a foreign or invalid state") {
  using E = hydra::invalid_argument;
  hydra::plateau_schedule p(0.1, 0.5);
  const auto foreign = hydra::step_schedule(0.1, {1}, 0.5).state();
  CHECK(contains(message_of<E>([&] { p.restore(foreign); }),
                 "hydra::plateau_schedule::restore: the state belongs to a step_schedule, not a plateau_schedule"));
  auto st = p.state();
  st.steps_completed = -1;
  CHECK(contains(message_of<E>([&] { p.restore(st); }), "steps_completed must be >= 0, got -1"));
  st = p.state();
  st.learning_rate = 0;
  CHECK(contains(message_of<E>([&] { p.restore(st); }), "learning_rate must be finite and > 0, got 0"));
  st = p.state();
  st.bad_epochs = -2;
  CHECK(contains(message_of<E>([&] { p.restore(st); }), "bad_epochs must be >= 0, got -2"));
  // A list state past the end carries a NaN rate and still restores.
  hydra::list_schedule l({0.1});
  l.step_completed();
  hydra::list_schedule l2({0.1});
  CHECK_NOTHROW(l2.restore(l.state()));
  CHECK(l2.steps_completed() == 1);
}

namespace {
/// A user-defined schedule without state()/restore(): eta_t = 1 / (t + 1).
struct harmonic_schedule {
  index t = 0;
  [[nodiscard]] double learning_rate() const { return 1.0 / static_cast<double>(t + 1); }
  void step_completed() { ++t; }
  void epoch_completed(const hydra::epoch_metrics& /*m*/) {}
  [[nodiscard]] index steps_completed() const { return t; }
};
} // namespace

TEST_CASE("any_schedule: runtime choice behaves like the held schedule") {
  std::vector<hydra::any_schedule> all;
  all.emplace_back(hydra::constant_schedule(0.1));
  all.emplace_back(hydra::step_schedule(1.0, {1}, 0.5));
  all.emplace_back(hydra::exponential_schedule(1.0, 0.5));
  all.emplace_back(hydra::plateau_schedule(1.0, 0.5, 1));
  all.emplace_back(hydra::list_schedule({1.0, 0.75, 0.5, 0.25}));
  all.emplace_back(harmonic_schedule{});
  // After two steps and one flat epoch, then two more steps and another flat epoch:
  const double after_first_epoch[6] = {0.1, 0.5, 0.25, 1.0, 0.5, 1.0 / 3.0};
  const double after_second_epoch[6] = {0.1, 0.5, 0.0625, 0.5, absent, 0.2};
  for (std::size_t i = 0; i < all.size(); ++i) {
    CAPTURE(i);
    run_epoch(all[i], 2, 1.0);
    CHECK(all[i].learning_rate() == doctest::Approx(after_first_epoch[i]).epsilon(1e-15));
    run_epoch(all[i], 2, 1.0);
    if (i == 4) {
      CHECK_THROWS_AS((void)all[i].learning_rate(), hydra::invalid_argument);
    } else {
      CHECK(all[i].learning_rate() == doctest::Approx(after_second_epoch[i]).epsilon(1e-15));
    }
    CHECK(all[i].steps_completed() == 4);
  }
  REQUIRE(all[3].target<hydra::plateau_schedule>() != nullptr);
  CHECK(all[3].target<hydra::plateau_schedule>()->reductions() == 1);
  CHECK(all[3].target<hydra::step_schedule>() == nullptr);
  CHECK(std::as_const(all[1]).target<hydra::step_schedule>()->gamma() == 0.5);

  // Built-in schedules checkpoint through any_schedule; a user type without state() does not.
  CHECK(all[3].checkpointable());
  const auto st = all[3].state();
  hydra::any_schedule fresh = hydra::plateau_schedule(1.0, 0.5, 1);
  fresh.restore(st);
  CHECK(fresh.learning_rate() == 0.5);
  CHECK(!all[5].checkpointable());
  CHECK(contains(message_of<hydra::invalid_argument>([&] { (void)all[5].state(); }), "cannot be checkpointed"));
  CHECK(contains(message_of<hydra::invalid_argument>([&] { all[5].restore(st); }), "cannot be checkpointed"));

  hydra::any_schedule moved = std::move(fresh);
  CHECK(moved.learning_rate() == 0.5);
  CHECK_THROWS_AS((void)fresh.learning_rate(), hydra::error);  // NOLINT(bugprone-use-after-move)
}
