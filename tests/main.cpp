// doctest's main(), compiled once and shared by every test executable: the usual run, then exit
// code 77 (CTest: skipped) when some case could not run here and none failed (support/skip.hpp).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "support/skip.hpp"

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int failed = context.run();
  if (context.shouldExit() || failed != 0) return failed;
  return hydra::test::skipped_cases() > 0 ? hydra::test::skip_exit_code : 0;
}
