#pragma once
// What training requires of an optimizer (hydra::Optimizer: an update rule with state), what the
// hypergradient recurrence requires of it (hydra::LinearizedOptimizer: the linear map one step
// applies to a state (dv, ∇), as recurrence.hpp's step coefficients), what a checkpoint requires
// (hydra::CheckpointableOptimizer), and the same for learning-rate schedules
// (hydra::LearningRateSchedule), plus the two plain structs that cross the schedule interface:
// epoch_metrics (what a schedule sees after each epoch) and schedule_state (what a checkpoint
// stores). See docs/optim.md.

#include <concepts>
#include <cstdint>
#include <limits>

#include "hydra/core/types.hpp"
#include "hydra/hypergradient/recurrence.hpp"

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
concept optimizer_linear_map = requires(const O& o, T learning_rate) {
  { o.step_coefficients(learning_rate) } -> std::same_as<recurrence::step_coefficients<T>>;
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

/// What training needs: an update rule with state, for parameters of scalar type O::value_type.
/// `o.step(w, g, learning_rate)` updates the parameters w in place from the gradient g (the
/// optimizer keeps whatever state its rule needs).
template <class O>
concept Optimizer = detail::optim::optimizer_value_type<O> && detail::optim::optimizer_step<O, typename O::value_type>;

/// An Optimizer whose parameters are of scalar type T.
template <class O, class T>
concept OptimizerFor = Optimizer<O> && std::same_as<typename O::value_type, T>;

/// What the hypergradient recurrence needs of an optimizer: the linear map one of its steps at
/// learning rate η_t applies to a tracked state (dv, ∇), as `o.step_coefficients(η_t)` — the p, λ
/// and η_t of supplement Eq. 35–36 (recurrence.hpp). SGD with momentum p and weight decay λ gives
/// {p, λ, η_t}. The tracker reads nothing else of an optimizer.
template <class O>
concept LinearizedOptimizer = Optimizer<O> && detail::optim::optimizer_linear_map<O, typename O::value_type>;

/// An Optimizer whose whole state is its momentum buffer, readable by velocity() and replaceable
/// by set_velocity(v) (v in the backend's memory), with momentum() and weight_decay() recorded to
/// refuse a checkpoint of other settings: what resuming a run from a checkpoint needs.
template <class O>
concept CheckpointableOptimizer =
    Optimizer<O> && detail::optim::optimizer_hyperparameters<O, typename O::value_type> &&
    detail::optim::optimizer_velocity<O, typename O::value_type> &&
    requires(O& o, vector_view<const typename O::value_type> v) { o.set_velocity(v); };

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
  }
  return true;  // reached without a failed assertion only when O models Optimizer
}

/// `static_assert(hydra::check_linearized_optimizer<O>())` (the tracker's optimizer constructors
/// do): one sentence when O trains but cannot say what its step does to a hypergradient.
template <class O>
consteval bool check_linearized_optimizer() {
  static_assert(check_optimizer<O>());
  if constexpr (Optimizer<O>)
    static_assert(detail::optim::optimizer_linear_map<O, typename O::value_type>,
                  "hydra: the hypergradient tracker needs the linear map of the optimizer's step: provide const "
                  "`hydra::recurrence::step_coefficients<T> step_coefficients(T learning_rate)` (momentum p, weight "
                  "decay λ, η of supplement Eq. 35-36), or pass momentum and weight decay to the tracker; see "
                  "docs/optim.md, section 'What the hypergradient engine needs'.");
  return true;
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
