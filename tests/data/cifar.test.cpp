// CIFAR-10 binary batches written here: layout, scaling, concatenation and the errors.
#include "hydra/data/cifar.hpp"

#include <cstdint>
#include <vector>

#include <doctest/doctest.h>

#include "support.hpp"

using hydra::test::bytes;

namespace {
// Records with the given labels; pixel k of record r is (r + k) mod 256.
bytes cifar_file(const std::vector<std::uint8_t>& labels) {
  bytes b;
  for (std::size_t r = 0; r < labels.size(); ++r) {
    b.push_back(labels[r]);
    for (std::size_t k = 0; k < 3072; ++k) b.push_back(static_cast<std::uint8_t>((r + k) % 256));
  }
  return b;
}
} // namespace

TEST_CASE_TEMPLATE("load_cifar10_batch", T, float, double) {
  hydra::test::temp_dir dir;
  hydra::test::write_file(dir / "batch.bin", cifar_file({3, 9, 0}));
  const auto ds = hydra::load_cifar10_batch<T>(dir / "batch.bin");
  CHECK(ds.size() == 3);
  CHECK(ds.sample_size() == 3072);
  CHECK(std::vector<hydra::index>(ds.sample_shape().begin(), ds.sample_shape().end()) ==
        std::vector<hydra::index>{3, 32, 32});
  CHECK(ds.num_classes() == 10);
  CHECK(ds.labels()[1] == 9);
  // Record 1, green channel (offset 1024), row 2, column 5: (1 + 1024 + 69) mod 256.
  CHECK(ds.sample(1)[1024 + 2 * 32 + 5] == doctest::Approx(((1 + 1024 + 69) % 256) / 255.0));
  const auto raw = hydra::load_cifar10_batch<T>(dir / "batch.bin", T(1));
  CHECK(raw.sample(2)[255] == T(1));  // (2 + 255) mod 256

  hydra::test::write_file(dir / "second.bin", cifar_file({7}));
  const std::vector<std::filesystem::path> files{dir / "batch.bin", dir / "second.bin"};
  const auto all = hydra::load_cifar10<T>(files);
  CHECK(all.size() == 4);
  CHECK(all.label(3) == 7);
  CHECK(all.sample(3)[0] == T(0));
}

TEST_CASE("CIFAR-10 errors name the file") {
  hydra::test::temp_dir dir;
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_cifar10_batch<float>(dir / "absent.bin"), hydra::io_error, "absent.bin");
  auto b = cifar_file({1, 2});
  b.pop_back();
  hydra::test::write_file(dir / "short.bin", b);
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_cifar10_batch<float>(dir / "short.bin"), hydra::format_error, "short.bin",
                              "6145 bytes", "3073");
  hydra::test::write_file(dir / "empty.bin", {});
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_cifar10_batch<float>(dir / "empty.bin"), hydra::format_error, "empty.bin");
  hydra::test::write_file(dir / "label.bin", cifar_file({1, 2, 10}));
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_cifar10_batch<float>(dir / "label.bin"), hydra::format_error, "label.bin",
                              "record 2", "label 10");
  hydra::test::write_file(dir / "good.bin", cifar_file({1}));
  const std::vector<std::filesystem::path> files{dir / "good.bin", dir / "label.bin"};
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_cifar10<float>(files), hydra::format_error, "label.bin");
  CHECK_THROWS_AS(static_cast<void>(hydra::load_cifar10<float>({})), hydra::invalid_argument);
}
