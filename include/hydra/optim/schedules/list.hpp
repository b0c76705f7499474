#pragma once
// hydra::list_schedule — an explicit learning rate for every step (replaying a recorded run, or
// a schedule computed elsewhere).

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/types.hpp"
#include "hydra/optim/concepts.hpp"
#include "hydra/optim/detail/check.hpp"
#include "hydra/optim/detail/restore.hpp"

namespace hydra {

class list_schedule : public detail::optim::schedule_counters<schedule_kind::list> {
public:
  /// eta_t = per_step[t]. Throws hydra::invalid_argument when the list is empty or an entry is not
  /// finite and > 0 (the message names the index).
  explicit list_schedule(std::vector<double> per_step)
      : schedule_counters(std::numeric_limits<double>::quiet_NaN()), rates_(std::move(per_step)) {
    constexpr const char* where = "hydra::list_schedule";
    if (rates_.empty()) detail::optim::fail(where, "the list of per-step learning rates is empty");
    for (std::size_t i = 0; i < rates_.size(); ++i) {
      if (!(rates_[i] > 0) || !std::isfinite(rates_[i]))
        detail::optim::fail(where, "per_step[" + std::to_string(i) + "] must be finite and > 0, got " +
                                       detail::optim::format_value(rates_[i]));
    }
  }

  /// Throws hydra::invalid_argument when steps_completed() >= size(): the list has no rate for
  /// the next step.
  [[nodiscard]] double learning_rate() const {
    if (steps_ >= size())
      detail::optim::fail("hydra::list_schedule::learning_rate",
                          "no learning rate for step " + std::to_string(steps_) + " (zero-based): the list has " +
                              std::to_string(size()) + " entries");
    return rates_[static_cast<std::size_t>(steps_)];
  }
  [[nodiscard]] index size() const noexcept { return static_cast<index>(rates_.size()); }
  [[nodiscard]] const std::vector<double>& rates() const noexcept { return rates_; }

  /// state().learning_rate is NaN once the list is exhausted.
  [[nodiscard]] schedule_state state() const noexcept {
    schedule_state s = schedule_counters::state();
    s.learning_rate = steps_ < size() ? rates_[static_cast<std::size_t>(steps_)]
                                      : std::numeric_limits<double>::quiet_NaN();
    return s;
  }
  /// Restores the counters (the rates come from the list). Throws hydra::invalid_argument when s
  /// comes from another kind of schedule or its counters are negative.
  void restore(const schedule_state& s) {
    detail::optim::check_restored(schedule_kind::list, s, /*learning_rate_optional=*/true);
    steps_ = s.steps_completed;
    epochs_ = s.epochs_completed;
  }

private:
  std::vector<double> rates_;
};

} // namespace hydra
