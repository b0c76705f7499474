#pragma once
// The sections of the archive that fuzz_archive.cpp reads and make_corpus.cpp writes as its seed.

#include <cstddef>
#include <cstdint>

namespace hydra::fuzz::archive_schema {

/// A trivially copyable struct without padding, stored as a `bytes` section.
struct record {
  std::int32_t id;
  float weight;
};

inline constexpr std::size_t parameter_count = 4;  // "parameters": exactly this many floats
inline constexpr std::uint64_t max_history = 64;   // "history": read_vector<double> up to this
inline constexpr std::uint64_t max_flags = 64;     // "flags": read_vector<bool> up to this

} // namespace hydra::fuzz::archive_schema
