#pragma once
// hydra::SGD — stochastic gradient descent with momentum and L2 weight decay, the update whose
// hypergradient HYDRA computes. It is torch.optim.SGD with dampening 0 and nesterov off:
//   v <- p * v + (g + lambda * w),   w <- w - eta * v,   v starts at zero.
// It reaches memory only through the backend's static operations; see docs/optim.md.

#include <cmath>
#include <string>

#include "hydra/backend/concepts.hpp"
#include "hydra/backend/fwd.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/core/types.hpp"
#include "hydra/optim/concepts.hpp"
#include "hydra/optim/detail/check.hpp"

namespace hydra {

/// Hyperparameters of hydra::SGD. Both default to 0 (plain mini-batch gradient descent).
struct sgd_options {
  double momentum = 0;      // p in [0, 1)
  double weight_decay = 0;  // lambda >= 0, the L2 coefficient added to the gradient
};

template <Scalar T, Backend B = default_backend>
class SGD {
public:
  using value_type = T;
  using backend_type = B;

  /// An optimizer for parameter vectors of parameter_count elements, with a zero velocity.
  /// Throws hydra::invalid_argument when parameter_count < 0, momentum is outside [0, 1) or not
  /// finite, or weight_decay is negative or not finite.
  explicit SGD(index parameter_count, sgd_options options = {})
      : options_(checked(parameter_count, options)),
        momentum_(static_cast<T>(options.momentum)),
        weight_decay_(static_cast<T>(options.weight_decay)),
        velocity_(parameter_count) {
    if (weight_decay_ != T(0)) direction_ = vector<T, B>(parameter_count);
  }

  /// One update of `parameters` in place from `gradient`, the mean mini-batch loss gradient
  /// without the weight-decay term:
  ///   d = g + lambda * w;  v = p * v + d;  w = w - learning_rate * v
  /// in that order of floating-point operations, as torch.optim.SGD does.
  /// Throws hydra::shape_error when a size differs from parameter_count(), and
  /// hydra::invalid_argument when learning_rate is not finite or <= 0.
  void step(vector_view<T> parameters, vector_view<const T> gradient, T learning_rate) {
    check_size("the parameter vector", parameters.size);
    check_size("the gradient", gradient.size);
    if (!(learning_rate > T(0)) || !std::isfinite(learning_rate))
      detail::optim::fail("hydra::SGD::step",
                          "learning_rate must be finite and > 0, got " + detail::optim::format_value(learning_rate));

    const vector_view<const T> w = parameters;
    vector_view<const T> d = gradient;
    if (weight_decay_ != T(0)) {
      const vector_view<T> scratch = direction_.view();
      B::copy(gradient, scratch);         // d = g
      B::axpy(weight_decay_, w, scratch);  // d = g + lambda * w
      d = scratch;
    }
    const vector_view<T> v = velocity_.view();
    if (momentum_ == T(0)) {
      B::copy(d, v);  // v = d
    } else {
      B::scal(momentum_, v);  // v = p * v
      B::axpy(T(1), d, v);    // v = p * v + d
    }
    B::axpy(-learning_rate, vector_view<const T>(v), parameters);  // w = w - eta * v
  }

  /// The momentum buffer v after the last step (with momentum 0: the last g + lambda * w).
  [[nodiscard]] vector_view<const T> velocity() const noexcept { return velocity_.view(); }

  /// Replaces the velocity, e.g. when resuming from a checkpoint. `v` must live in backend B's
  /// memory. Throws hydra::shape_error when its size differs from parameter_count().
  void set_velocity(vector_view<const T> v) {
    check_size("the velocity", v.size);
    B::copy(v, velocity_.view());
  }

  /// Sets the velocity back to zero, as at construction.
  void reset() { B::fill(T(0), velocity_.view()); }

  [[nodiscard]] T momentum() const noexcept { return momentum_; }
  [[nodiscard]] T weight_decay() const noexcept { return weight_decay_; }
  /// The linear map a step at learning rate η applies to a hypergradient state (LinearizedOptimizer):
  /// supplement Eq. 35–36 with this optimizer's p and λ.
  [[nodiscard]] recurrence::step_coefficients<T> step_coefficients(T learning_rate) const noexcept {
    return {momentum_, weight_decay_, learning_rate};
  }
  [[nodiscard]] sgd_options options() const noexcept { return options_; }
  [[nodiscard]] index parameter_count() const noexcept { return velocity_.size(); }

private:
  static sgd_options checked(index parameter_count, sgd_options o) {
    constexpr const char* where = "hydra::SGD";
    if (parameter_count < 0)
      detail::optim::fail(where, "parameter_count must be >= 0, got " + std::to_string(parameter_count));
    if (!(o.momentum >= 0 && o.momentum < 1))
      detail::optim::fail(where, "momentum must be finite and in [0, 1), got " +
                                     detail::optim::format_value(o.momentum));
    if (!(static_cast<T>(o.momentum) < T(1)))
      detail::optim::fail(where, "momentum " + detail::optim::format_value(o.momentum) +
                                     " rounds to 1 in the parameters' scalar type; it must stay below 1");
    detail::optim::require_non_negative(where, "weight_decay", o.weight_decay);
    return o;
  }

  void check_size(const char* what, index got) const {
    if (got != parameter_count())
      throw shape_error(std::string("hydra::SGD: ") + what + " has " + std::to_string(got) + " elements, expected " +
                        std::to_string(parameter_count()) + " (parameter_count)");
  }

  sgd_options options_;
  T momentum_;
  T weight_decay_;
  vector<T, B> velocity_;
  vector<T, B> direction_;  // g + lambda * w; allocated only when weight_decay != 0
};

} // namespace hydra
