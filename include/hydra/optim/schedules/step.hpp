#pragma once
// hydra::step_schedule — multiply the learning rate by gamma at given epochs (PyTorch MultiStepLR
// stepped once per epoch).

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/types.hpp"
#include "hydra/optim/concepts.hpp"
#include "hydra/optim/detail/check.hpp"
#include "hydra/optim/detail/restore.hpp"

namespace hydra {

class step_schedule : public detail::optim::schedule_counters<schedule_kind::step> {
public:
  /// Starts at learning_rate; after the e-th completed epoch (counting from 1) the rate is
  /// multiplied by gamma once for every occurrence of e in milestone_epochs. The paper's MNIST
  /// setting step_schedule(0.01, {5}, 0.1) uses 0.01 in epochs 0..4 (zero-based) and 0.001 from
  /// epoch 5 on. Throws hydra::invalid_argument unless learning_rate is finite and > 0, gamma is in
  /// (0, 1] and every milestone is >= 1.
  step_schedule(double learning_rate, std::vector<index> milestone_epochs, double gamma)
      : schedule_counters(learning_rate), gamma_(gamma), milestones_(std::move(milestone_epochs)) {
    constexpr const char* where = "hydra::step_schedule";
    detail::optim::require_positive(where, "learning_rate", learning_rate);
    detail::optim::require_decay_factor(where, "gamma", gamma);
    for (std::size_t i = 0; i < milestones_.size(); ++i) {
      if (milestones_[i] < 1)
        detail::optim::fail(where, "milestone_epochs[" + std::to_string(i) +
                                       "] must be >= 1 (epochs are counted from 1), got " +
                                       std::to_string(milestones_[i]));
    }
    std::sort(milestones_.begin(), milestones_.end());
  }

  void epoch_completed(const epoch_metrics& /*metrics*/) {
    ++epochs_;
    const auto [first, last] = std::equal_range(milestones_.begin(), milestones_.end(), epochs_);
    // lr * gamma^count, the chainable form of torch.optim.lr_scheduler.MultiStepLR.
    if (first != last) learning_rate_ *= std::pow(gamma_, static_cast<double>(last - first));
  }
  [[nodiscard]] double gamma() const noexcept { return gamma_; }
  /// Sorted ascending.
  [[nodiscard]] const std::vector<index>& milestone_epochs() const noexcept { return milestones_; }

private:
  double gamma_;
  std::vector<index> milestones_;
};

} // namespace hydra
