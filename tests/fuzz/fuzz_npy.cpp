// libFuzzer target: the .npy reader (hydra/data/npy.hpp). Every entry point reads the same
// input file: the header alone, features as float and double, labels and indices.
#include <cstddef>
#include <cstdint>

#include "fuzz_support.hpp"
#include "hydra/data/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& path = hydra::fuzz::input_file(data, size);
  using hydra::fuzz::expect_only_hydra_errors;
  expect_only_hydra_errors([&] {
    const auto h = hydra::read_npy_header(path);
    HYDRA_FUZZ_CHECK(h.word_size > 0 && h.data_offset >= 10);
    HYDRA_FUZZ_CHECK(static_cast<std::uintmax_t>(h.data_offset) <= size);
  });
  expect_only_hydra_errors([&] { HYDRA_FUZZ_CHECK(hydra::fuzz::shape_matches_data(hydra::load_npy_features<float>(path))); });
  expect_only_hydra_errors([&] { HYDRA_FUZZ_CHECK(hydra::fuzz::shape_matches_data(hydra::load_npy_features<double>(path))); });
  expect_only_hydra_errors([&] { static_cast<void>(hydra::load_npy_labels(path)); });
  expect_only_hydra_errors([&] { HYDRA_FUZZ_CHECK(hydra::fuzz::shape_matches_data(hydra::load_npy_indices(path))); });
  return 0;
}
