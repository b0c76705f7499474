// IDX reader on files written here, raw and gzipped, well-formed and corrupted.
#include "hydra/data/idx.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "support.hpp"

using hydra::test::append_u32_be;
using hydra::test::bytes;

namespace {
// count images of rows x cols whose pixel k of image i is (7i + k) mod 256.
bytes images_file(std::uint32_t count, std::uint32_t rows, std::uint32_t cols, std::uint32_t magic = 0x803) {
  bytes b;
  append_u32_be(b, magic);
  append_u32_be(b, count);
  append_u32_be(b, rows);
  append_u32_be(b, cols);
  for (std::uint32_t i = 0; i < count; ++i)
    for (std::uint32_t k = 0; k < rows * cols; ++k) b.push_back(static_cast<std::uint8_t>((7 * i + k) % 256));
  return b;
}

bytes labels_file(const std::vector<std::uint8_t>& labels, std::uint32_t magic = 0x801) {
  bytes b;
  append_u32_be(b, magic);
  append_u32_be(b, static_cast<std::uint32_t>(labels.size()));
  b.insert(b.end(), labels.begin(), labels.end());
  return b;
}
} // namespace

TEST_CASE("read_idx_images / read_idx_labels: raw and gzipped") {
  hydra::test::temp_dir dir;
  for (const bool gz : {false, true}) {
    CAPTURE(gz);
    const auto img = dir / (gz ? "img.gz" : "img");
    const auto lab = dir / (gz ? "lab.gz" : "lab");
    (gz ? hydra::test::write_gz : hydra::test::write_file)(img, images_file(3, 2, 5));
    (gz ? hydra::test::write_gz : hydra::test::write_file)(lab, labels_file({4, 0, 9}));

    const auto images = hydra::read_idx_images(img);
    CHECK(images.shape == std::vector<hydra::index>{3, 2, 5});
    REQUIRE(images.data.size() == 30);
    CHECK(images.data[0] == 0);
    CHECK(images.data[10 + 3] == 10);  // image 1, pixel 3: 7 + 3
    const auto labels = hydra::read_idx_labels(lab);
    CHECK(labels.shape == std::vector<hydra::index>{3});
    CHECK(labels.data == std::vector<std::uint8_t>{4, 0, 9});
  }
}

TEST_CASE_TEMPLATE("load_idx_dataset", T, float, double) {
  hydra::test::temp_dir dir;
  hydra::test::write_gz(dir / "img.gz", images_file(2, 3, 2));
  hydra::test::write_file(dir / "lab", labels_file({1, 2}));
  const auto ds = hydra::load_idx_dataset<T>(dir / "img.gz", dir / "lab");
  CHECK(ds.size() == 2);
  CHECK(ds.sample_size() == 6);
  CHECK(std::vector<hydra::index>(ds.sample_shape().begin(), ds.sample_shape().end()) ==
        std::vector<hydra::index>{1, 3, 2});
  CHECK(ds.sample(1)[2] == doctest::Approx(9.0 / 255.0));
  CHECK(ds.num_classes() == 3);
  const auto raw = hydra::load_idx_dataset<T>(dir / "img.gz", dir / "lab", T(1), 10);
  CHECK(raw.sample(1)[2] == T(9));
  CHECK(raw.num_classes() == 10);
}

TEST_CASE("IDX errors name the file and what is wrong") {
  hydra::test::temp_dir dir;
  const auto missing = dir / "missing.gz";
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::read_idx_images(missing), hydra::io_error, "missing.gz");
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::read_idx_images(dir.path()), hydra::io_error, dir.path().string());

  // Labels where images are expected, and garbage.
  hydra::test::write_file(dir / "labels-as-images", labels_file({1, 2}));
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::read_idx_images(dir / "labels-as-images"), hydra::format_error,
                              "labels-as-images", "magic", "0x00000801", "0x00000803");
  hydra::test::write_file(dir / "images-as-labels", images_file(1, 1, 1));
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::read_idx_labels(dir / "images-as-labels"), hydra::format_error,
                              "images-as-labels", "magic");

  // Truncated header and payload, raw and gzipped.
  auto img = images_file(4, 3, 3);
  hydra::test::write_file(dir / "short-header", bytes(img.begin(), img.begin() + 9));
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::read_idx_images(dir / "short-header"), hydra::format_error, "short-header",
                              "row count", "expected 4 bytes, got 1");
  const bytes cut(img.begin(), img.end() - 5);
  hydra::test::write_file(dir / "cut", cut);
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::read_idx_images(dir / "cut"), hydra::format_error, "cut", "truncated",
                              "payload", "expected 36 bytes, got 31");
  hydra::test::write_gz(dir / "cut.gz", cut);
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::read_idx_images(dir / "cut.gz"), hydra::format_error, "cut.gz",
                              "expected 36 bytes, got 31");

  // A gzip stream cut in the middle: either a zlib error or a short payload, both name the file.
  hydra::test::write_gz(dir / "whole.gz", images_file(200, 28, 28));
  auto gz = hydra::test::read_file(dir / "whole.gz");
  gz.resize(gz.size() / 2);
  hydra::test::write_file(dir / "broken.gz", gz);
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::read_idx_images(dir / "broken.gz"), hydra::format_error, "broken.gz");
  // A corrupted deflate stream.
  gz = hydra::test::read_file(dir / "whole.gz");
  for (std::size_t k = 20; k < 60; ++k) gz[k] = static_cast<std::uint8_t>(gz[k] ^ 0x5a);
  hydra::test::write_file(dir / "corrupt.gz", gz);
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::read_idx_images(dir / "corrupt.gz"), hydra::format_error, "corrupt.gz");

  // Trailing garbage.
  img.push_back(0);
  hydra::test::write_file(dir / "trailing", img);
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::read_idx_images(dir / "trailing"), hydra::format_error, "trailing",
                              "trailing bytes");

  // A header claiming 2^32-1 images of 2^28 rows: rejected before anything is allocated.
  bytes huge;
  append_u32_be(huge, 0x803);
  append_u32_be(huge, 0xffffffffu);
  append_u32_be(huge, 28);
  append_u32_be(huge, 28);
  hydra::test::write_file(dir / "huge", huge);
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::read_idx_images(dir / "huge"), hydra::format_error, "huge", "image count");
  huge.resize(8);
  append_u32_be(huge, 1u << 20);
  append_u32_be(huge, 1u << 20);
  hydra::test::write_file(dir / "huge2", huge);  // 2^28 x 2^20 x 2^20 bytes claimed, none present
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::read_idx_images(dir / "huge2"), hydra::format_error, "huge2");
  const auto zero_cols = images_file(0, 28, 0);
  hydra::test::write_file(dir / "zero-cols", zero_cols);
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::read_idx_images(dir / "zero-cols"), hydra::format_error, "zero-cols", "pixels");

  // Counts that differ between images and labels.
  hydra::test::write_file(dir / "img3", images_file(3, 2, 2));
  hydra::test::write_file(dir / "lab2", labels_file({0, 1}));
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::load_idx_dataset<float>(dir / "img3", dir / "lab2"), hydra::format_error,
                              "3 images", "img3", "2 labels", "lab2");
}
