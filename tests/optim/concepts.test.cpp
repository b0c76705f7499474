// Tests of the optimizer and schedule concepts (include/hydra/optim/concepts.hpp): the library's
// types model them, and types missing one requirement each do not.

#include <doctest/doctest.h>

#include <string>
#include <type_traits>

#include "hydra/backend/cpu.hpp"
#include "hydra/optim/concepts.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"

namespace {

using hydra::index;
using hydra::vector_view;

/// Everything training needs of an optimizer, with no storage: the positive control for the
/// negatives below.
struct minimal_optimizer {
  using value_type = double;
  void step(vector_view<double> /*w*/, vector_view<const double> /*g*/, double /*lr*/) {}
};

/// What the tracker needs besides: the linear map of a step.
struct linearized_optimizer : minimal_optimizer {
  [[nodiscard]] hydra::recurrence::step_coefficients<double> step_coefficients(double eta) const {
    return {0.9, 0.0, eta};
  }
};

/// The linear map in the wrong scalar type.
struct float_coefficients : minimal_optimizer {
  [[nodiscard]] hydra::recurrence::step_coefficients<float> step_coefficients(double eta) const {
    return {0.9f, 0.0f, static_cast<float>(eta)};
  }
};

/// What a checkpoint needs besides: the momentum buffer, read and replaced, and the constants.
struct checkpointable_optimizer : minimal_optimizer {
  [[nodiscard]] double momentum() const { return 0; }
  [[nodiscard]] double weight_decay() const { return 0; }
  [[nodiscard]] vector_view<const double> velocity() const { return {}; }
  void set_velocity(vector_view<const double> /*v*/) {}
};

struct no_value_type {
  void step(vector_view<double> /*w*/, vector_view<const double> /*g*/, double /*lr*/) {}
  [[nodiscard]] double momentum() const { return 0; }
  [[nodiscard]] double weight_decay() const { return 0; }
  [[nodiscard]] vector_view<const double> velocity() const { return {}; }
};

struct integer_value_type : minimal_optimizer {
  using value_type = int;
};

struct no_step {
  using value_type = double;
  [[nodiscard]] double momentum() const { return 0; }
  [[nodiscard]] double weight_decay() const { return 0; }
  [[nodiscard]] vector_view<const double> velocity() const { return {}; }
};

struct step_with_wrong_scalar {  // float views for a double optimizer
  using value_type = double;
  void step(vector_view<float> /*w*/, vector_view<const float> /*g*/, float /*lr*/) {}
  [[nodiscard]] double momentum() const { return 0; }
  [[nodiscard]] double weight_decay() const { return 0; }
  [[nodiscard]] vector_view<const double> velocity() const { return {}; }
};

struct no_momentum {  // checkpointable but for momentum()
  using value_type = double;
  void step(vector_view<double> /*w*/, vector_view<const double> /*g*/, double /*lr*/) {}
  [[nodiscard]] double weight_decay() const { return 0; }
  [[nodiscard]] vector_view<const double> velocity() const { return {}; }
  void set_velocity(vector_view<const double> /*v*/) {}
};

struct non_const_weight_decay {
  using value_type = double;
  void step(vector_view<double> /*w*/, vector_view<const double> /*g*/, double /*lr*/) {}
  [[nodiscard]] double momentum() const { return 0; }
  [[nodiscard]] double weight_decay() { return 0; }
  [[nodiscard]] vector_view<const double> velocity() const { return {}; }
  void set_velocity(vector_view<const double> /*v*/) {}
};

struct no_velocity {
  using value_type = double;
  void step(vector_view<double> /*w*/, vector_view<const double> /*g*/, double /*lr*/) {}
  [[nodiscard]] double momentum() const { return 0; }
  [[nodiscard]] double weight_decay() const { return 0; }
  void set_velocity(vector_view<const double> /*v*/) {}
};

// ---- schedules ----

struct minimal_schedule {
  [[nodiscard]] double learning_rate() const { return 0.1; }
  void step_completed() {}
  void epoch_completed(const hydra::epoch_metrics& /*m*/) {}
  [[nodiscard]] index steps_completed() const { return 0; }
};

struct no_step_completed {
  [[nodiscard]] double learning_rate() const { return 0.1; }
  void epoch_completed(const hydra::epoch_metrics& /*m*/) {}
  [[nodiscard]] index steps_completed() const { return 0; }
};

struct epoch_completed_without_metrics {
  [[nodiscard]] double learning_rate() const { return 0.1; }
  void step_completed() {}
  void epoch_completed() {}
  [[nodiscard]] index steps_completed() const { return 0; }
};

struct non_const_learning_rate {
  [[nodiscard]] double learning_rate() { return 0.1; }
  void step_completed() {}
  void epoch_completed(const hydra::epoch_metrics& /*m*/) {}
  [[nodiscard]] index steps_completed() const { return 0; }
};

struct no_steps_completed {
  [[nodiscard]] double learning_rate() const { return 0.1; }
  void step_completed() {}
  void epoch_completed(const hydra::epoch_metrics& /*m*/) {}
};

struct checkpointable_schedule : minimal_schedule {
  [[nodiscard]] hydra::schedule_state state() const { return {}; }
  void restore(const hydra::schedule_state& /*s*/) {}
};

} // namespace

// ---- Optimizer: training needs only the update rule ----
static_assert(hydra::Optimizer<hydra::SGD<float>>);
static_assert(hydra::Optimizer<hydra::SGD<double, hydra::cpu>>);
static_assert(hydra::OptimizerFor<hydra::SGD<float>, float>);
static_assert(!hydra::OptimizerFor<hydra::SGD<float>, double>);
static_assert(hydra::Optimizer<minimal_optimizer>);
static_assert(hydra::check_optimizer<hydra::SGD<double>>());
static_assert(hydra::check_optimizer<minimal_optimizer>());
static_assert(hydra::Optimizer<no_momentum>);  // momentum and velocity are not training's business
static_assert(hydra::Optimizer<no_velocity>);

static_assert(!hydra::Optimizer<int>);
static_assert(!hydra::Optimizer<double>);
static_assert(!hydra::Optimizer<hydra::constant_schedule>);
static_assert(!hydra::Optimizer<no_value_type>);
static_assert(!hydra::Optimizer<integer_value_type>);
static_assert(!hydra::Optimizer<no_step>);
static_assert(!hydra::Optimizer<step_with_wrong_scalar>);

// ---- LinearizedOptimizer: what the recurrence needs ----
static_assert(hydra::LinearizedOptimizer<hydra::SGD<float>>);
static_assert(hydra::LinearizedOptimizer<hydra::SGD<double>>);
static_assert(hydra::LinearizedOptimizer<linearized_optimizer>);
static_assert(hydra::check_linearized_optimizer<linearized_optimizer>());
static_assert(!hydra::LinearizedOptimizer<minimal_optimizer>);
static_assert(!hydra::LinearizedOptimizer<checkpointable_optimizer>);
static_assert(!hydra::LinearizedOptimizer<float_coefficients>);

// ---- CheckpointableOptimizer: what a checkpoint needs ----
static_assert(hydra::CheckpointableOptimizer<hydra::SGD<double>>);
static_assert(hydra::CheckpointableOptimizer<checkpointable_optimizer>);
static_assert(!hydra::CheckpointableOptimizer<minimal_optimizer>);
static_assert(!hydra::CheckpointableOptimizer<linearized_optimizer>);
static_assert(!hydra::CheckpointableOptimizer<no_momentum>);
static_assert(!hydra::CheckpointableOptimizer<non_const_weight_decay>);
static_assert(!hydra::CheckpointableOptimizer<no_velocity>);

// ---- LearningRateSchedule ----
static_assert(hydra::LearningRateSchedule<hydra::constant_schedule>);
static_assert(hydra::LearningRateSchedule<hydra::step_schedule>);
static_assert(hydra::LearningRateSchedule<hydra::exponential_schedule>);
static_assert(hydra::LearningRateSchedule<hydra::plateau_schedule>);
static_assert(hydra::LearningRateSchedule<hydra::list_schedule>);
static_assert(hydra::LearningRateSchedule<hydra::any_schedule>);
static_assert(hydra::LearningRateSchedule<minimal_schedule>);
static_assert(hydra::check_schedule<hydra::plateau_schedule>());

static_assert(hydra::CheckpointableSchedule<hydra::constant_schedule>);
static_assert(hydra::CheckpointableSchedule<hydra::step_schedule>);
static_assert(hydra::CheckpointableSchedule<hydra::exponential_schedule>);
static_assert(hydra::CheckpointableSchedule<hydra::plateau_schedule>);
static_assert(hydra::CheckpointableSchedule<hydra::list_schedule>);
static_assert(hydra::CheckpointableSchedule<hydra::any_schedule>);
static_assert(hydra::CheckpointableSchedule<checkpointable_schedule>);
static_assert(!hydra::CheckpointableSchedule<minimal_schedule>);

static_assert(!hydra::LearningRateSchedule<int>);
static_assert(!hydra::LearningRateSchedule<double>);
static_assert(!hydra::LearningRateSchedule<hydra::SGD<float>>);
static_assert(!hydra::LearningRateSchedule<no_step_completed>);
static_assert(!hydra::LearningRateSchedule<epoch_completed_without_metrics>);
static_assert(!hydra::LearningRateSchedule<non_const_learning_rate>);
static_assert(!hydra::LearningRateSchedule<no_steps_completed>);

// any_schedule accepts exactly the LearningRateSchedules.
static_assert(std::is_constructible_v<hydra::any_schedule, minimal_schedule>);
static_assert(std::is_constructible_v<hydra::any_schedule, const hydra::step_schedule&>);
static_assert(!std::is_constructible_v<hydra::any_schedule, no_step_completed>);
static_assert(!std::is_constructible_v<hydra::any_schedule, int>);
static_assert(!std::is_copy_constructible_v<hydra::any_schedule>);
static_assert(std::is_nothrow_move_constructible_v<hydra::any_schedule>);

TEST_CASE("the concepts hold at run time too") {
  CHECK(hydra::Optimizer<hydra::SGD<float>>);
  CHECK(!hydra::CheckpointableOptimizer<no_velocity>);
  const hydra::SGD<double> sgd(3, {.momentum = 0.5, .weight_decay = 0.25});
  const auto c = sgd.step_coefficients(0.125);  // SGD's step is Eq. 35-36 with its own p and λ
  CHECK(c.p == 0.5);
  CHECK(c.lambda == 0.25);
  CHECK(c.eta == 0.125);
  CHECK(hydra::LearningRateSchedule<hydra::any_schedule>);
  CHECK(!hydra::LearningRateSchedule<no_steps_completed>);
  CHECK(std::string(hydra::name_of(hydra::schedule_kind::plateau)) == "plateau_schedule");
}
