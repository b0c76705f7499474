#pragma once
// The hydra::error hierarchy. Every exception hydra throws derives from hydra::error, and its
// message names the file, field, index or step at fault so that a user never has to guess.

#include <stdexcept>
#include <string>

namespace hydra {

/// Base of everything hydra throws.
class error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A file could not be opened, read or written (the message names the file).
class io_error : public error {
public:
  using error::error;
};

/// A file was readable but its contents are malformed: wrong magic number, truncated payload,
/// unsupported dtype, corrupt header (the message names the file and the field).
class format_error : public error {
public:
  using error::error;
};

/// Sizes that must agree do not: features vs labels, a parameter vector of the wrong length.
class shape_error : public error {
public:
  using error::error;
};

/// A value outside its documented domain: learning rate <= 0, momentum outside [0, 1), a label
/// out of range, a batch index out of range.
class invalid_argument : public error {
public:
  using error::error;
};

/// A NaN or Inf appeared during a computation (the message names the step and, where known, the
/// sample).
class numerical_error : public error {
public:
  using error::error;
};

/// A requested buffer would not fit; thrown before allocating.
class allocation_error : public error {
public:
  using error::error;
};

} // namespace hydra
