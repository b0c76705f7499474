#pragma once
// Measuring the Hessian-free approximation (paper Figure 3, Theorems 1–2): when an Exact and a
// HessianFree tracker follow the same trajectory (both attached to one trainer), record
// ‖∇_{t,i} − ∇̃_{t,i}‖₂ for every tracked sample at chosen steps; and check the conditions of
// Theorem 1 (0 < η_t·λ < 1 and η_t non-increasing), warning when a run violates them.

#include <cmath>
#include <cstdio>
#include <algorithm>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/train/trainer.hpp"

namespace hydra {

/// One row of the approximation-error history.
struct approximation_error_record {
  index steps;                // steps completed when measured (the paper's t)
  std::vector<double> norms;  // ‖∇_{t,i} − ∇̃_{t,i}‖₂, in the trackers' row order
  [[nodiscard]] double mean() const {
    double s = 0;
    for (double v : norms) s += v;
    return norms.empty() ? 0.0 : s / static_cast<double>(norms.size());
  }
};

/// A trainer callback placed after both trackers. `interval` k: measure after steps k, 2k, …
/// and after the last step of every epoch when `at_epoch_ends` is set.
template <class ExactTracker, class FreeTracker>
class approximation_error_monitor {
  using T = typename ExactTracker::scalar_type;
  using B = typename ExactTracker::backend_type;

public:
  approximation_error_monitor(ExactTracker& exact, FreeTracker& free, index interval)
      : exact_(exact), free_(free), interval_(interval) {
    if (interval <= 0) throw invalid_argument("approximation_error_monitor: the interval must be positive");
    if (!std::equal(exact.tracked().begin(), exact.tracked().end(), free.tracked().begin(), free.tracked().end()))
      throw invalid_argument("approximation_error_monitor: the two trackers must track the same samples in the same order");
  }

  void after_update(const step_context<T, B>& ctx) {
    if ((ctx.step + 1) % interval_ == 0) measure(ctx.step + 1);
  }

  /// Measures now (for example after the last step).
  void measure(index steps_completed) {
    const auto a = exact_.hypergradients();
    const auto b = free_.hypergradients();
    difference_.resize(a.cols);
    approximation_error_record record{steps_completed, std::vector<double>(static_cast<std::size_t>(a.rows))};
    for (index r = 0; r < a.rows; ++r) {
      B::copy(vector_view<const T>(a.row(r), a.cols), difference_.view());
      B::axpy(T(-1), vector_view<const T>(b.row(r), b.cols), difference_.view());
      record.norms[static_cast<std::size_t>(r)] =
          std::sqrt(static_cast<double>(B::dot(std::as_const(difference_).view(), std::as_const(difference_).view())));
    }
    history_.push_back(std::move(record));
  }

  [[nodiscard]] const std::vector<approximation_error_record>& history() const noexcept { return history_; }

private:
  ExactTracker& exact_;  // reading a lazy tracker brings its states up to date
  FreeTracker& free_;
  index interval_;
  vector<T, B> difference_;
  std::vector<approximation_error_record> history_;
};

/// Checks Theorem 1's conditions on the learning rates a run actually applies: Condition 5,
/// 0 < η_t·λ < 1 for every t, and η_t ≤ η_{t−1}. The first violation of each is reported once
/// through `warn` (default: a line on stderr); satisfied() says whether the bound applies.
class theorem1_conditions {
public:
  explicit theorem1_conditions(double weight_decay,
                               std::function<void(const std::string&)> warn = [](const std::string& m) {
                                 std::fprintf(stderr, "hydra: warning: %s\n", m.c_str());
                               })
      : lambda_(weight_decay), warn_(std::move(warn)) {}

  template <class Ctx>
  void before_update(const Ctx& ctx) {
    observe(ctx.step, static_cast<double>(ctx.learning_rate));
  }

  /// Records η_t of step t (0-based).
  void observe(index step, double eta) {
    const double product = eta * lambda_;
    if (!(product > 0 && product < 1) && first_product_violation_ < 0) {
      first_product_violation_ = step;
      warn_("Theorem 1 does not apply to this run: at step " + std::to_string(step) + " the learning rate " +
            number(eta) + " times the weight decay " + number(lambda_) + " is " + number(product) +
            ", outside (0, 1); the Hessian-free error bound does not hold");
    }
    if (step > 0 && eta > previous_ && first_increase_ < 0) {
      first_increase_ = step;
      warn_("Theorem 1 does not apply to this run: the learning rate rises from " + number(previous_) + " to " +
            number(eta) + " at step " + std::to_string(step) + "; the theorem needs non-increasing rates");
    }
    previous_ = eta;
  }

  [[nodiscard]] bool satisfied() const noexcept { return first_product_violation_ < 0 && first_increase_ < 0; }
  /// The first step violating 0 < η·λ < 1, or −1.
  [[nodiscard]] index first_product_violation() const noexcept { return first_product_violation_; }
  /// The first step whose rate exceeds the previous one, or −1.
  [[nodiscard]] index first_increase() const noexcept { return first_increase_; }

  /// Checkpoints: a resumed run remembers the last rate and the violations already reported.
  template <class Archive>
  void save_state(Archive& archive) const {
    const double record[] = {previous_, static_cast<double>(first_product_violation_), static_cast<double>(first_increase_)};
    archive.template write<double>("theorem1_conditions", std::span<const double>(record));
  }
  template <class Archive>
  void load_state(Archive& archive) {
    double record[3];
    archive.template read<double>("theorem1_conditions", std::span<double>(record));
    previous_ = record[0];
    first_product_violation_ = static_cast<index>(record[1]);
    first_increase_ = static_cast<index>(record[2]);
  }

private:
  static std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
  }
  double lambda_;
  std::function<void(const std::string&)> warn_;
  double previous_ = 0;
  index first_product_violation_ = -1;
  index first_increase_ = -1;
};

} // namespace hydra
