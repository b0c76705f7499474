#pragma once
// Validation of a schedule_state before a schedule restores it. Internal: include
// hydra/optim/schedules.hpp instead.

#include <string>

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

} // namespace hydra::detail::optim
