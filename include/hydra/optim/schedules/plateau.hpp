#pragma once
// hydra::plateau_schedule — the paper's reduce-on-plateau rule: multiply the learning rate by gamma
// when training loss + validation loss has not improved by a relative threshold for `patience`
// epochs. Relation to PyTorch ReduceLROnPlateau: see docs/optim.md.

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "hydra/core/types.hpp"
#include "hydra/optim/concepts.hpp"
#include "hydra/optim/detail/check.hpp"
#include "hydra/optim/detail/restore.hpp"

namespace hydra {

class plateau_schedule : public detail::optim::schedule_counters<schedule_kind::plateau> {
public:
  /// After every epoch, metric = training_loss + validation_loss (training_loss alone when
  /// validation_loss is NaN). If metric < best * (1 - threshold), best = metric and the bad-epoch
  /// count resets to 0; otherwise it grows by one, and on reaching `patience` the learning rate
  /// becomes max(gamma * eta, min_learning_rate) and the count resets to 0.
  /// Throws hydra::invalid_argument unless learning_rate is finite and > 0, gamma is in (0, 1],
  /// patience >= 1, threshold is in [0, 1) and 0 <= min_learning_rate <= learning_rate.
  plateau_schedule(double learning_rate, double gamma, index patience = 2, double threshold = 1e-4,
                   double min_learning_rate = 0)
      : schedule_counters(learning_rate),
        gamma_(gamma),
        patience_(patience),
        threshold_(threshold),
        min_learning_rate_(min_learning_rate) {
    constexpr const char* where = "hydra::plateau_schedule";
    detail::optim::require_positive(where, "learning_rate", learning_rate);
    detail::optim::require_decay_factor(where, "gamma", gamma);
    if (patience < 1) detail::optim::fail(where, "patience must be >= 1, got " + std::to_string(patience));
    if (!(threshold >= 0 && threshold < 1))
      detail::optim::fail(where, "threshold must be in [0, 1), got " + detail::optim::format_value(threshold));
    detail::optim::require_non_negative(where, "min_learning_rate", min_learning_rate);
    if (min_learning_rate > learning_rate)
      detail::optim::fail(where, "min_learning_rate " + detail::optim::format_value(min_learning_rate) +
                                     " exceeds learning_rate " + detail::optim::format_value(learning_rate));
  }

  /// Throws hydra::invalid_argument (naming the epoch) when the training loss is not finite or
  /// the validation loss is infinite.
  void epoch_completed(const epoch_metrics& m) {
    const double metric = m.training_loss + (std::isnan(m.validation_loss) ? 0.0 : m.validation_loss);
    if (!std::isfinite(metric))
      detail::optim::fail("hydra::plateau_schedule::epoch_completed",
                          "epoch " + std::to_string(epochs_ + 1) + ": the monitored loss must be finite, got training_loss " +
                              detail::optim::format_value(m.training_loss) + " and validation_loss " +
                              detail::optim::format_value(m.validation_loss));
    ++epochs_;
    if (metric < best_ * (1 - threshold_)) {
      best_ = metric;
      bad_epochs_ = 0;
      return;
    }
    if (++bad_epochs_ < patience_) return;
    bad_epochs_ = 0;
    const double reduced = std::max(learning_rate_ * gamma_, min_learning_rate_);
    if (reduced < learning_rate_) {
      learning_rate_ = reduced;
      ++reductions_;
    }
  }

  /// How many times a plateau lowered the learning rate (plateaus at the floor do not count).
  [[nodiscard]] index reductions() const noexcept { return reductions_; }
  /// The best metric so far (+inf before the first epoch).
  [[nodiscard]] double best() const noexcept { return best_; }
  /// Consecutive epochs without sufficient improvement since the last improvement or reduction.
  [[nodiscard]] index bad_epochs() const noexcept { return bad_epochs_; }
  [[nodiscard]] double gamma() const noexcept { return gamma_; }
  [[nodiscard]] index patience() const noexcept { return patience_; }
  [[nodiscard]] double threshold() const noexcept { return threshold_; }
  [[nodiscard]] double min_learning_rate() const noexcept { return min_learning_rate_; }

  [[nodiscard]] schedule_state state() const noexcept {
    schedule_state s = schedule_counters::state();
    s.best = best_;
    s.bad_epochs = bad_epochs_;
    s.reductions = reductions_;
    return s;
  }
  /// Throws hydra::invalid_argument when s comes from another kind of schedule or is invalid.
  void restore(const schedule_state& s) {
    constexpr const char* where = "hydra::plateau_schedule::restore";
    detail::optim::require_count(where, "bad_epochs", s.bad_epochs);
    detail::optim::require_count(where, "reductions", s.reductions);
    if (std::isnan(s.best)) detail::optim::fail(where, "best must not be NaN");
    schedule_counters::restore(s);  // checks the kind and the counters first
    best_ = s.best;
    bad_epochs_ = s.bad_epochs;
    reductions_ = s.reductions;
  }

private:
  double gamma_;
  index patience_;
  double threshold_;
  double min_learning_rate_;
  double best_ = std::numeric_limits<double>::infinity();
  index bad_epochs_ = 0;
  index reductions_ = 0;
};

} // namespace hydra
