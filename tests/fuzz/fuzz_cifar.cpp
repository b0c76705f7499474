// libFuzzer target: the CIFAR-10 binary batch reader (hydra/data/cifar.hpp).
#include <cstddef>
#include <cstdint>

#include "fuzz_support.hpp"
#include "hydra/data/cifar.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& path = hydra::fuzz::input_file(data, size);
  hydra::fuzz::expect_only_hydra_errors([&] {
    const auto ds = hydra::load_cifar10_batch<float>(path);
    HYDRA_FUZZ_CHECK(ds.size() > 0 && static_cast<std::size_t>(ds.size()) * 3073 == size);
    HYDRA_FUZZ_CHECK(ds.features().size() == static_cast<std::size_t>(ds.size()) * 3072);
    for (const auto y : ds.labels()) HYDRA_FUZZ_CHECK(y >= 0 && y < 10);
  });
  return 0;
}
