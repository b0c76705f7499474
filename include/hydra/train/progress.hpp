#pragma once
// A one-line progress display for long runs, redrawn in place on a terminal and silent
// otherwise (logs and CI output stay clean).

#include <chrono>
#include <cstdio>
#include <string>

#include <unistd.h>

#include "hydra/core/types.hpp"

namespace hydra {

enum class progress_mode { automatic, always, never };

class progress_line {
public:
  explicit progress_line(progress_mode mode, std::FILE* out = stderr)
      : out_(out), enabled_(mode == progress_mode::always ||
                            (mode == progress_mode::automatic && ::isatty(::fileno(out)) != 0)) {}

  [[nodiscard]] bool enabled() const noexcept { return enabled_; }

  /// Redraws at most ten times a second.
  void update(index done, index total, const std::string& detail) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    std::fprintf(out_, "\r  %lld/%lld %s\033[K", static_cast<long long>(done), static_cast<long long>(total),
                 detail.c_str());
    std::fflush(out_);
    drawn_ = true;
  }
  /// Clears the line so that ordinary output continues on a clean line.
  void clear() {
    if (!enabled_ || !drawn_) return;
    std::fprintf(out_, "\r\033[K");
    std::fflush(out_);
    drawn_ = false;
  }

private:
  std::FILE* out_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
};

} // namespace hydra
