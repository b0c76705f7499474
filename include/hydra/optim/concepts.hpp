#pragma once
// What the trainer and the hypergradient engine require of an optimizer (hydra::Optimizer) and of
// a learning-rate schedule (hydra::LearningRateSchedule), plus the two plain structs that cross
// the schedule interface: epoch_metrics (what a schedule sees after each epoch) and
// schedule_state (what a checkpoint stores). See docs/optim.md.

#include <concepts>
#include <cstdint>
#include <limits>

#include "hydra/core/types.hpp"

namespace hydra {

// ---- schedule interface structs ----------------------------------------------------------------

/// What a schedule is told after every epoch. validation_loss is NaN when there is no
/// validation set (plateau_schedule then watches the training loss alone).
struct epoch_metrics {
  double training_loss = std::numeric_limits<double>::quiet_NaN();
  double validation_loss = std::numeric_limits<double>::quiet_NaN();
};

/// Which built-in schedule a schedule_state came from; restore() refuses a foreign kind.
enum class schedule_kind : std::int32_t { constant = 0, step = 1, exponential = 2, plateau = 3, list = 4 };

[[nodiscard]] constexpr const char* name_of(schedule_kind k) noexcept {
  switch (k) {
    case schedule_kind::constant: return "constant_schedule";
    case schedule_kind::step: return "step_schedule";
    case schedule_kind::exponential: return "exponential_schedule";
    case schedule_kind::plateau: return "plateau_schedule";
    case schedule_kind::list: return "list_schedule";
  }
  return "?";
}

/// The running state of a schedule, trivially copyable so that a checkpoint can store it as
/// bytes. Configuration (gamma, milestones, patience, the list) is not in it: it comes from the
/// constructor. Fields a schedule does not use keep their defaults.
struct schedule_state {
  schedule_kind kind = schedule_kind::constant;
  double learning_rate = 0;  // eta for the next step (list_schedule: NaN past the end of the list)
  index steps_completed = 0;
  index epochs_completed = 0;
  double best = std::numeric_limits<double>::infinity();  // plateau_schedule: best metric so far
  index bad_epochs = 0;                                   // plateau_schedule
  index reductions = 0;                                   // plateau_schedule
};

// ---- the requirements, one small requires-expression each ------------------------------------

namespace detail::optim {
template <class O>
concept optimizer_value_type = requires { typename O::value_type; } && Scalar<typename O::value_type>;

template <class O, class T>
concept optimizer_step = requires(O& o, vector_view<T> w, vector_view<const T> g, T learning_rate) {
  o.step(w, g, learning_rate);
};

template <class O, class T>
concept optimizer_hyperparameters = requires(const O& o) {
  { o.momentum() } -> std::convertible_to<T>;
  { o.weight_decay() } -> std::convertible_to<T>;
};

template <class O, class T>
concept optimizer_velocity = requires(const O& o) {
  { o.velocity() } -> std::convertible_to<vector_view<const T>>;
};

template <class S>
concept schedule_learning_rate = requires(const S& s) {
  { s.learning_rate() } -> std::convertible_to<double>;
  { s.steps_completed() } -> std::convertible_to<index>;
};

template <class S>
concept schedule_notifications = requires(S& s, const epoch_metrics& m) {
  s.step_completed();
  s.epoch_completed(m);
};
} // namespace detail::optim

/// An optimizer of parameters of scalar type O::value_type:
/// `o.step(w, g, learning_rate)` updates the parameters w in place from the gradient g,
/// `o.momentum()` and `o.weight_decay()` are the constants of the update (the hypergradient
/// engine differentiates through them), and `o.velocity()` is the current momentum buffer.
template <class O>
concept Optimizer = detail::optim::optimizer_value_type<O> &&
                    detail::optim::optimizer_step<O, typename O::value_type> &&
                    detail::optim::optimizer_hyperparameters<O, typename O::value_type> &&
                    detail::optim::optimizer_velocity<O, typename O::value_type>;

/// An Optimizer whose parameters are of scalar type T.
template <class O, class T>
concept OptimizerFor = Optimizer<O> && std::same_as<typename O::value_type, T>;

/// An Optimizer whose whole state is its momentum buffer, readable by velocity() and replaceable
/// by set_velocity(v) (v in the backend's memory): what resuming a run from a checkpoint needs.
template <class O>
concept CheckpointableOptimizer = Optimizer<O> && requires(O& o, vector_view<const typename O::value_type> v) {
  o.set_velocity(v);
};

/// A stateful learning-rate schedule: learning_rate() is eta for the next optimizer step;
/// step_completed() is called after every step, epoch_completed(m) after every epoch.
template <class S>
concept LearningRateSchedule = detail::optim::schedule_learning_rate<S> && detail::optim::schedule_notifications<S>;

/// A schedule whose running state can be saved into and restored from a schedule_state.
template <class S>
concept CheckpointableSchedule = LearningRateSchedule<S> && requires(S& s, const S& cs, const schedule_state& st) {
  { cs.state() } -> std::same_as<schedule_state>;
  s.restore(st);
};

// ---- readable diagnostics for user types --------------------------------------------------------

/// Call as `static_assert(hydra::check_optimizer<O>())` (the trainer does) to get one sentence per
/// missing requirement instead of a template backtrace. Returns true; never returns false (it
/// fails to compile instead).
template <class O>
consteval bool check_optimizer() {
  static_assert(detail::optim::optimizer_value_type<O>,
                "hydra: an optimizer must declare `using value_type = float;` (or double), the scalar type of "
                "the parameters it updates; see docs/optim.md, section 'The Optimizer concept'.");
  if constexpr (detail::optim::optimizer_value_type<O>) {
    using T = typename O::value_type;
    static_assert(detail::optim::optimizer_step<O, T>,
                  "hydra: an optimizer must provide `step(vector_view<T> parameters, vector_view<const T> gradient, "
                  "T learning_rate)`; see docs/optim.md, section 'The Optimizer concept'.");
    static_assert(detail::optim::optimizer_hyperparameters<O, T>,
                  "hydra: an optimizer must provide const `momentum()` and `weight_decay()` returning T, which the "
                  "hypergradient engine reads; see docs/optim.md, section 'The Optimizer concept'.");
    static_assert(detail::optim::optimizer_velocity<O, T>,
                  "hydra: an optimizer must provide const `velocity()` returning vector_view<const T>, its "
                  "momentum buffer; see docs/optim.md, section 'The Optimizer concept'.");
  }
  return true;  // reached without a failed assertion only when O models Optimizer
}

/// Call as `static_assert(hydra::check_schedule<S>())` to get one sentence per missing requirement.
template <class S>
consteval bool check_schedule() {
  static_assert(detail::optim::schedule_learning_rate<S>,
                "hydra: a learning-rate schedule must provide const `double learning_rate()` (eta for the next "
                "step) and const `index steps_completed()`; see docs/optim.md, section 'Learning-rate schedules'.");
  static_assert(detail::optim::schedule_notifications<S>,
                "hydra: a learning-rate schedule must provide `step_completed()` and "
                "`epoch_completed(const epoch_metrics&)`; see docs/optim.md, section 'Learning-rate schedules'.");
  return true;  // reached without a failed assertion only when S models LearningRateSchedule
}

} // namespace hydra
