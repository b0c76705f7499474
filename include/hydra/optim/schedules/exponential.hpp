#pragma once
// hydra::exponential_schedule — multiply the learning rate by gamma after every optimizer step.

#include <string>

#include "hydra/core/types.hpp"
#include "hydra/optim/concepts.hpp"
#include "hydra/optim/detail/check.hpp"
#include "hydra/optim/detail/restore.hpp"

namespace hydra {

class exponential_schedule {
public:
  /// eta_0 = learning_rate, eta_{t+1} = gamma * eta_t (one multiplication per completed step, as
  /// PyTorch ExponentialLR stepped after every optimizer step). Throws hydra::invalid_argument
  /// unless learning_rate and gamma are finite and > 0 (gamma > 1 grows the rate).
  exponential_schedule(double learning_rate, double gamma) : learning_rate_(learning_rate), gamma_(gamma) {
    constexpr const char* where = "hydra::exponential_schedule";
    detail::optim::require_positive(where, "learning_rate", learning_rate);
    detail::optim::require_positive(where, "gamma", gamma);
  }

  [[nodiscard]] double learning_rate() const noexcept { return learning_rate_; }
  void step_completed() noexcept {
    ++steps_;
    learning_rate_ *= gamma_;
  }
  void epoch_completed(const epoch_metrics& /*metrics*/) noexcept { ++epochs_; }
  [[nodiscard]] index steps_completed() const noexcept { return steps_; }
  [[nodiscard]] index epochs_completed() const noexcept { return epochs_; }
  [[nodiscard]] double gamma() const noexcept { return gamma_; }

  [[nodiscard]] schedule_state state() const noexcept {
    schedule_state s;
    s.kind = schedule_kind::exponential;
    s.learning_rate = learning_rate_;
    s.steps_completed = steps_;
    s.epochs_completed = epochs_;
    return s;
  }
  /// Throws hydra::invalid_argument when s comes from another kind of schedule or is invalid.
  void restore(const schedule_state& s) {
    detail::optim::check_restored(schedule_kind::exponential, s);
    learning_rate_ = s.learning_rate;
    steps_ = s.steps_completed;
    epochs_ = s.epochs_completed;
  }

private:
  double learning_rate_;
  double gamma_;
  index steps_ = 0;
  index epochs_ = 0;
};

} // namespace hydra
