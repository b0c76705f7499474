#pragma once
// Argument checks shared by the optimizers and the learning-rate schedules: each throws a
// hydra::invalid_argument whose message names the class, the parameter and the offending value.
// Internal: include hydra/optim/sgd.hpp or hydra/optim/schedules.hpp instead.

#include <charconv>
#include <cmath>
#include <string>

#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"

namespace hydra::detail::optim {

/// The shortest text that reads back as the same value ("0.1", "1e-09", "nan", "-inf").
template <class T>
[[nodiscard]] std::string format_value(T value) {
  char text[64];
  const auto result = std::to_chars(text, text + sizeof(text), value);
  return std::string(text, result.ptr);
}

[[noreturn]] inline void fail(const char* where, const std::string& what) {
  throw invalid_argument(std::string(where) + ": " + what);
}

/// value > 0 and finite.
inline void require_positive(const char* where, const char* name, double value) {
  if (!(value > 0) || !std::isfinite(value))
    fail(where, std::string(name) + " must be finite and > 0, got " + format_value(value));
}

/// value >= 0 and finite.
inline void require_non_negative(const char* where, const char* name, double value) {
  if (!(value >= 0) || !std::isfinite(value))
    fail(where, std::string(name) + " must be finite and >= 0, got " + format_value(value));
}

/// A multiplicative decay factor in (0, 1].
inline void require_decay_factor(const char* where, const char* name, double value) {
  if (!(value > 0 && value <= 1))
    fail(where, std::string(name) + " must be in (0, 1], got " + format_value(value));
}

/// A counter that must not be negative (restored state).
inline void require_count(const char* where, const char* name, index value) {
  if (value < 0) fail(where, std::string(name) + " must be >= 0, got " + std::to_string(value));
}

} // namespace hydra::detail::optim
