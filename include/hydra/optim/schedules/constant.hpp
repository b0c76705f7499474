#pragma once
// hydra::constant_schedule — the same learning rate for every step.

#include "hydra/core/types.hpp"
#include "hydra/optim/concepts.hpp"
#include "hydra/optim/detail/check.hpp"
#include "hydra/optim/detail/restore.hpp"

namespace hydra {

class constant_schedule {
public:
  /// eta_t = learning_rate for every t. Throws hydra::invalid_argument unless learning_rate is
  /// finite and > 0.
  explicit constant_schedule(double learning_rate) : learning_rate_(learning_rate) {
    detail::optim::require_positive("hydra::constant_schedule", "learning_rate", learning_rate);
  }

  [[nodiscard]] double learning_rate() const noexcept { return learning_rate_; }
  void step_completed() noexcept { ++steps_; }
  void epoch_completed(const epoch_metrics& /*metrics*/) noexcept { ++epochs_; }
  [[nodiscard]] index steps_completed() const noexcept { return steps_; }
  [[nodiscard]] index epochs_completed() const noexcept { return epochs_; }

  [[nodiscard]] schedule_state state() const noexcept {
    schedule_state s;
    s.kind = schedule_kind::constant;
    s.learning_rate = learning_rate_;
    s.steps_completed = steps_;
    s.epochs_completed = epochs_;
    return s;
  }
  /// Throws hydra::invalid_argument when s comes from another kind of schedule or is invalid.
  void restore(const schedule_state& s) {
    detail::optim::check_restored(schedule_kind::constant, s);
    learning_rate_ = s.learning_rate;
    steps_ = s.steps_completed;
    epochs_ = s.epochs_completed;
  }

private:
  double learning_rate_;
  index steps_ = 0;
  index epochs_ = 0;
};

} // namespace hydra
