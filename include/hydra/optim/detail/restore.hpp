#pragma once
// The counters every built-in schedule shares, and the validation of a schedule_state before a
// schedule restores it. Internal: include hydra/optim/schedules.hpp instead.

#include <string>

#include "hydra/core/types.hpp"

#include "hydra/optim/concepts.hpp"
#include "hydra/optim/detail/check.hpp"

namespace hydra::detail::optim {

/// Throws hydra::invalid_argument when s is not a state of kind `expected` with sane counters
/// and (unless the learning rate is optional, as past the end of a list) a positive finite eta.
inline void check_restored(schedule_kind expected, const schedule_state& s, bool learning_rate_optional = false) {
  const std::string where = std::string("hydra::") + name_of(expected) + "::restore";
  if (s.kind != expected)
    fail(where.c_str(), std::string("the state belongs to a ") + name_of(s.kind) + ", not a " + name_of(expected));
  if (!learning_rate_optional) require_positive(where.c_str(), "learning_rate", s.learning_rate);
  require_count(where.c_str(), "steps_completed", s.steps_completed);
  require_count(where.c_str(), "epochs_completed", s.epochs_completed);
}

/// What every built-in schedule keeps: the rate for the next step and the step and epoch counters,
/// with their notifications and checkpoint state. A schedule derives from it and hides the members
/// it changes (exponential_schedule its step_completed, plateau_schedule its epoch_completed, ...).
template <schedule_kind Kind>
class schedule_counters {
public:
  [[nodiscard]] double learning_rate() const noexcept { return learning_rate_; }
  void step_completed() noexcept { ++steps_; }
  void epoch_completed(const epoch_metrics& /*metrics*/) noexcept { ++epochs_; }
  [[nodiscard]] index steps_completed() const noexcept { return steps_; }
  [[nodiscard]] index epochs_completed() const noexcept { return epochs_; }

  [[nodiscard]] schedule_state state() const noexcept {
    schedule_state s;
    s.kind = Kind;
    s.learning_rate = learning_rate_;
    s.steps_completed = steps_;
    s.epochs_completed = epochs_;
    return s;
  }
  /// Throws hydra::invalid_argument when s comes from another kind of schedule or is invalid.
  void restore(const schedule_state& s) {
    check_restored(Kind, s);
    learning_rate_ = s.learning_rate;
    steps_ = s.steps_completed;
    epochs_ = s.epochs_completed;
  }

protected:
  explicit schedule_counters(double learning_rate) noexcept : learning_rate_(learning_rate) {}

  double learning_rate_;
  index steps_ = 0;
  index epochs_ = 0;
};

} // namespace hydra::detail::optim
