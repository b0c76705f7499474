#pragma once
// hydra::constant_schedule — the same learning rate for every step.

#include "hydra/core/types.hpp"
#include "hydra/optim/concepts.hpp"
#include "hydra/optim/detail/check.hpp"
#include "hydra/optim/detail/restore.hpp"

namespace hydra {

class constant_schedule : public detail::optim::schedule_counters<schedule_kind::constant> {
public:
  /// eta_t = learning_rate for every t. Throws hydra::invalid_argument unless learning_rate is
  /// finite and > 0.
  explicit constant_schedule(double learning_rate) : schedule_counters(learning_rate) {
    detail::optim::require_positive("hydra::constant_schedule", "learning_rate", learning_rate);
  }
};

} // namespace hydra
