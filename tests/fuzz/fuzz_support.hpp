#pragma once
// Shared by the fuzz targets (tests/fuzz/fuzz_*.cpp): the input as a file for the readers that
// take a path, and the rule that decides what is a finding. A reader given bad input must throw
// one of hydra's documented errors (hydra::error and its subclasses, core/error.hpp); any other
// exception, a crash, a sanitizer report or an allocation past libFuzzer's -malloc_limit_mb is a
// finding. Checks on what a reader returns for input it accepts abort with a message.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <typeinfo>

#include "hydra/core/error.hpp"
#include "hydra/data/detail/checked.hpp"
#include "support/temp_dir.hpp"

namespace hydra::fuzz {

/// Writes the input to this process's scratch file (rewritten for every input, removed at exit)
/// and returns its path.
inline const std::filesystem::path& input_file(const std::uint8_t* data, std::size_t size) {
  static const test::temp_dir dir("fuzz");
  static const std::filesystem::path path = dir / "input";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (size > 0) out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write the scratch file %s\n", path.c_str());
    std::abort();
  }
  return path;
}

/// Runs f; a hydra::error is the expected outcome of bad input, any other exception aborts.
template <class F>
void expect_only_hydra_errors(F&& f) {
  try {
    f();
  } catch (const hydra::error&) {
    // documented rejection of malformed input
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: a reader threw %s, which is not a hydra::error: %s\n", typeid(e).name(), e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "fuzz: a reader threw something that is not a std::exception\n");
    std::abort();
  }
}

/// Whether an array a reader returned holds exactly as many values as its shape says (the shape's
/// product, which must itself not overflow).
template <class Array>
[[nodiscard]] bool shape_matches_data(const Array& a) {
  hydra::index count = 0;
  return hydra::detail::checked_product(a.shape, count) && static_cast<std::size_t>(count) == a.data.size();
}

} // namespace hydra::fuzz

/// An invariant of what a reader returned for input it accepted; aborts (a finding) when false.
#define HYDRA_FUZZ_CHECK(condition)                                                                 \
  do {                                                                                              \
    if (!(condition)) {                                                                             \
      std::fprintf(stderr, "fuzz: %s:%d: check failed: %s\n", __FILE__, __LINE__, #condition);      \
      std::abort();                                                                                 \
    }                                                                                               \
  } while (false)
