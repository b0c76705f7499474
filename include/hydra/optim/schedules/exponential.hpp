#pragma once
// hydra::exponential_schedule — multiply the learning rate by gamma after every optimizer step.

#include <string>

#include "hydra/core/types.hpp"
#include "hydra/optim/concepts.hpp"
#include "hydra/optim/detail/check.hpp"
#include "hydra/optim/detail/restore.hpp"

namespace hydra {

class exponential_schedule : public detail::optim::schedule_counters<schedule_kind::exponential> {
public:
  /// eta_0 = learning_rate, eta_{t+1} = gamma * eta_t (one multiplication per completed step, as
  /// PyTorch ExponentialLR stepped after every optimizer step). Throws hydra::invalid_argument
  /// unless learning_rate and gamma are finite and > 0 (gamma > 1 grows the rate).
  exponential_schedule(double learning_rate, double gamma) : schedule_counters(learning_rate), gamma_(gamma) {
    constexpr const char* where = "hydra::exponential_schedule";
    detail::optim::require_positive(where, "learning_rate", learning_rate);
    detail::optim::require_positive(where, "gamma", gamma);
  }

  void step_completed() noexcept {
    ++steps_;
    learning_rate_ *= gamma_;
  }
  [[nodiscard]] double gamma() const noexcept { return gamma_; }

private:
  double gamma_;
};

} // namespace hydra
