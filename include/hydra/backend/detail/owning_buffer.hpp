#pragma once
// The owning, move-only, zero-initialised buffer of every backend: the size checks and the
// ownership rules are one piece of code; a backend supplies only where the bytes come from
// (Memory::allocate_zeroed(bytes) -> void*, Memory::release(void*)) and its name for messages.

#include <cstddef>
#include <limits>
#include <string>
#include <utility>

#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"

namespace hydra::detail {

template <class T, class Memory>
class owning_buffer {
public:
  owning_buffer() = default;
  /// n zeroed elements. A negative n throws invalid_argument, a byte count beyond size_t throws
  /// allocation_error, both before anything is allocated.
  explicit owning_buffer(index n) : size_(n) {
    if (n < 0) throw invalid_argument(std::string("hydra::") + Memory::name + "::buffer: negative size " + std::to_string(n));
    if (n == 0) return;
    if (static_cast<std::size_t>(n) > std::numeric_limits<std::size_t>::max() / sizeof(T))
      throw allocation_error(std::string("hydra::") + Memory::name + "::buffer: " + std::to_string(n) +
                             " elements overflow size_t");
    data_ = static_cast<T*>(Memory::allocate_zeroed(static_cast<std::size_t>(n) * sizeof(T)));
  }
  owning_buffer(owning_buffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  owning_buffer& operator=(owning_buffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  owning_buffer(const owning_buffer&) = delete;
  owning_buffer& operator=(const owning_buffer&) = delete;
  ~owning_buffer() { release(); }

  [[nodiscard]] T* data() noexcept { return data_; }
  [[nodiscard]] const T* data() const noexcept { return data_; }
  [[nodiscard]] index size() const noexcept { return size_; }

private:
  void release() noexcept {
    if (data_) Memory::release(data_);
    data_ = nullptr;
  }
  T* data_ = nullptr;
  index size_ = 0;
};

} // namespace hydra::detail
