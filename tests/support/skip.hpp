#pragma once
// A test case that cannot run here (no CUDA device, no Fashion-MNIST) says so and returns:
// HYDRA_TEST_SKIP(message) prints "[skipped] message" and marks the executable, whose main()
// (tests/main.cpp) then exits with CTest's skip code 77 — but only when no case failed, so a
// failure elsewhere in the same executable is reported as a failure, never hidden as a skip.

#include <doctest/doctest.h>

namespace hydra::test {

inline constexpr int skip_exit_code = 77;  // SKIP_RETURN_CODE in tests/CMakeLists.txt

inline int& skipped_cases() noexcept {
  static int count = 0;
  return count;
}

} // namespace hydra::test

#define HYDRA_TEST_SKIP(message)          \
  do {                                    \
    MESSAGE("[skipped] " << message);     \
    ++::hydra::test::skipped_cases();     \
  } while (false)
