// libFuzzer target: the IDX reader (hydra/data/idx.hpp), raw and gzip-compressed (zlib tells
// them apart by the gzip magic, so one input file exercises both paths).
#include <cstddef>
#include <cstdint>

#include "fuzz_support.hpp"
#include "hydra/data/idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& path = hydra::fuzz::input_file(data, size);
  using hydra::fuzz::expect_only_hydra_errors;
  expect_only_hydra_errors([&] {
    const auto images = hydra::read_idx_images(path);
    HYDRA_FUZZ_CHECK(images.shape.size() == 3 && images.shape[1] > 0 && images.shape[2] > 0);
    HYDRA_FUZZ_CHECK(hydra::fuzz::shape_matches_data(images));
  });
  expect_only_hydra_errors([&] {
    const auto labels = hydra::read_idx_labels(path);
    HYDRA_FUZZ_CHECK(labels.shape.size() == 1 && hydra::fuzz::shape_matches_data(labels));
  });
  return 0;
}
