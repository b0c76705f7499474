// libFuzzer target: the archive reader (hydra/core/archive.hpp) that checkpoints are read with.
// Each input is read twice, as load_checkpoint (train/checkpoint.hpp) does: archive_reader::verify
// over the whole file, then section by section in a fixed schema (the one make_corpus.cpp writes)
// through every kind of read: a string, single values, a fixed-size read, read_vector of doubles
// and bools, a struct, a begin_array/take section in chunks, a skipped section and finish().
// Each pass runs on its own, so mutations that break only the checksum still reach the section
// reads. A file that the section reads accept completely must also pass verify.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "fuzz_support.hpp"
#include "fuzz_archive_schema.hpp"
#include "hydra/core/archive.hpp"

namespace {
void read_schema(const std::filesystem::path& path) {
  using namespace hydra::fuzz::archive_schema;
  hydra::archive_reader in(path);
  static_cast<void>(in.read_string("format", 64));
  static_cast<void>(in.read_value<std::uint32_t>("version"));
  static_cast<void>(in.read_value<std::int64_t>("steps_done"));
  std::array<float, parameter_count> parameters{};
  in.read<float>("parameters", parameters);
  const auto history = in.read_vector<double>("history", max_history);
  HYDRA_FUZZ_CHECK(history.size() <= max_history);
  static_cast<void>(in.read_vector<bool>("flags", max_flags));
  static_cast<void>(in.read_value<record>("record"));
  auto left = in.begin_array<std::int32_t>("chunks");
  HYDRA_FUZZ_CHECK(left <= in.size());
  std::array<std::int32_t, 3> chunk{};
  while (left > 0) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
    in.take<std::int32_t>(std::span(chunk).first(n));
    left -= n;
  }
  in.skip("opaque");
  in.finish();
  HYDRA_FUZZ_CHECK(in.finished() && in.position() == in.size());
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& path = hydra::fuzz::input_file(data, size);
  bool verified = false, read = false;
  hydra::fuzz::expect_only_hydra_errors([&] {
    hydra::archive_reader::verify(path);
    verified = true;
  });
  hydra::fuzz::expect_only_hydra_errors([&] {
    read_schema(path);
    read = true;
  });
  HYDRA_FUZZ_CHECK(!read || verified);
  return 0;
}
