#pragma once
// Helpers for the data tests: a scratch directory that removes itself, writing raw and gzipped
// files, and checking that an exception's message names what it should.

#include <zlib.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "support/temp_dir.hpp"

namespace hydra::test {


using bytes = std::vector<std::uint8_t>;

inline void write_file(const std::filesystem::path& path, const bytes& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!out) throw std::runtime_error("test: cannot write " + path.string());
}

inline void write_gz(const std::filesystem::path& path, const bytes& data) {
  gzFile f = gzopen(path.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error("test: cannot open " + path.string());
  const int n = data.empty() ? 0 : gzwrite(f, data.data(), static_cast<unsigned>(data.size()));
  gzclose(f);
  if (n != static_cast<int>(data.size())) throw std::runtime_error("test: cannot write " + path.string());
}

inline bytes read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void append_u32_be(bytes& b, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<std::uint8_t>((v >> shift) & 0xff));
}

} // namespace hydra::test

/// Checks that `expr` throws exactly `type` (or a subclass) and that its message contains every
/// given fragment (e.g. the file name and the field).
#define HYDRA_CHECK_THROWS_WITH_ALL(expr, type, ...)                                                     \
  do {                                                                                                  \
    bool hydra_thrown_ = false;                                                                         \
    try {                                                                                               \
      static_cast<void>(expr);                                                                          \
    } catch (const type& e) {                                                                           \
      hydra_thrown_ = true;                                                                             \
      const std::string hydra_msg_ = e.what();                                                          \
      for (const std::string& fragment : std::vector<std::string>{__VA_ARGS__}) {                       \
        INFO("message: ", hydra_msg_);                                                                  \
        CHECK_MESSAGE(hydra_msg_.find(fragment) != std::string::npos, "missing '", fragment, "'");      \
      }                                                                                                 \
    } catch (const std::exception& e) {                                                                 \
      FAIL_CHECK("threw the wrong type: ", e.what());                                                   \
      hydra_thrown_ = true;                                                                             \
    }                                                                                                   \
    CHECK_MESSAGE(hydra_thrown_, #expr " did not throw " #type);                                        \
  } while (false)
