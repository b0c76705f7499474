#pragma once
// hydra::any_schedule — a type-erased LearningRateSchedule, for choosing the schedule at run time
// (command-line tools, configuration files). Move-only; it is itself a LearningRateSchedule.

#include <concepts>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"
#include "hydra/optim/concepts.hpp"
#include "hydra/optim/detail/check.hpp"

namespace hydra {

class any_schedule {
public:
  /// Takes ownership of `schedule` (by move or copy). Every member forwards to it.
  template <class S>
    requires(!std::same_as<std::remove_cvref_t<S>, any_schedule> && LearningRateSchedule<std::remove_cvref_t<S>> &&
             std::constructible_from<std::remove_cvref_t<S>, S>)
  any_schedule(S&& schedule)  // NOLINT(google-explicit-constructor): any_schedule s = step_schedule(...)
      : impl_(std::make_unique<model<std::remove_cvref_t<S>>>(std::forward<S>(schedule))) {}

  any_schedule(any_schedule&&) noexcept = default;
  any_schedule& operator=(any_schedule&&) noexcept = default;
  any_schedule(const any_schedule&) = delete;
  any_schedule& operator=(const any_schedule&) = delete;
  ~any_schedule() = default;

  [[nodiscard]] double learning_rate() const { return get().learning_rate(); }
  void step_completed() { get().step_completed(); }
  void epoch_completed(const epoch_metrics& m) { get().epoch_completed(m); }
  [[nodiscard]] index steps_completed() const { return get().steps_completed(); }

  /// Whether the held schedule models CheckpointableSchedule (all built-in schedules do).
  [[nodiscard]] bool checkpointable() const { return get().checkpointable(); }
  /// Throws hydra::invalid_argument when the held schedule is not checkpointable.
  [[nodiscard]] schedule_state state() const { return get().state(); }
  /// Throws hydra::invalid_argument when the held schedule is not checkpointable, or as its
  /// restore() does.
  void restore(const schedule_state& s) { get().restore(s); }

  /// The held schedule if it is an S, else nullptr (like std::function::target).
  template <class S>
  [[nodiscard]] S* target() noexcept {
    if (!impl_) return nullptr;
    auto* m = dynamic_cast<model<S>*>(impl_.get());
    return m ? &m->schedule : nullptr;
  }
  template <class S>
  [[nodiscard]] const S* target() const noexcept {
    if (!impl_) return nullptr;
    const auto* m = dynamic_cast<const model<S>*>(impl_.get());
    return m ? &m->schedule : nullptr;
  }

private:
  struct concept_t {
    concept_t() = default;
    concept_t(const concept_t&) = delete;
    concept_t& operator=(const concept_t&) = delete;
    virtual ~concept_t() = default;
    [[nodiscard]] virtual double learning_rate() const = 0;
    virtual void step_completed() = 0;
    virtual void epoch_completed(const epoch_metrics& m) = 0;
    [[nodiscard]] virtual index steps_completed() const = 0;
    [[nodiscard]] virtual bool checkpointable() const noexcept = 0;
    [[nodiscard]] virtual schedule_state state() const = 0;
    virtual void restore(const schedule_state& s) = 0;
  };

  template <class S>
  struct model final : concept_t {
    template <class U>
    explicit model(U&& s) : schedule(std::forward<U>(s)) {}
    [[nodiscard]] double learning_rate() const override { return static_cast<double>(schedule.learning_rate()); }
    void step_completed() override { schedule.step_completed(); }
    void epoch_completed(const epoch_metrics& m) override { schedule.epoch_completed(m); }
    [[nodiscard]] index steps_completed() const override { return static_cast<index>(schedule.steps_completed()); }
    [[nodiscard]] bool checkpointable() const noexcept override { return CheckpointableSchedule<S>; }
    [[nodiscard]] schedule_state state() const override {
      if constexpr (CheckpointableSchedule<S>) return schedule.state();
      else not_checkpointable("state");
    }
    void restore(const schedule_state& s) override {
      if constexpr (CheckpointableSchedule<S>) schedule.restore(s);
      else not_checkpointable("restore");
    }
    S schedule;
  };

  [[noreturn]] static void not_checkpointable(const char* member) {
    detail::optim::fail((std::string("hydra::any_schedule::") + member).c_str(),
                        "the held schedule type has no state()/restore(), so it cannot be checkpointed "
                        "(see CheckpointableSchedule in docs/optim.md)");
  }

  concept_t& get() const {
    if (!impl_) throw error("hydra::any_schedule: used after being moved from");
    return *impl_;
  }

  std::unique_ptr<concept_t> impl_;
};

} // namespace hydra
