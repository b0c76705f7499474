// The example of docs/data.md, compiled and run so that the page cannot drift from the code.
// Keep the two in sync: the body below between the markers is the page's example.
#include "hydra/data/data.hpp"

#include <filesystem>
#include <vector>

#include <doctest/doctest.h>

#include "support.hpp"

namespace {
void example(const std::filesystem::path& images, const std::filesystem::path& labels,
             const std::filesystem::path& out) {
  // --- docs/data.md example begins ---
  // Fashion-MNIST train: 60000 samples of shape {1, 28, 28}, pixels in [0, 1].
  const auto all = hydra::load_idx_dataset<float>(images, labels);
  const auto train = hydra::split(all, 0, 50000);          // first 50,000
  const auto validation = hydra::split(all, 50000, 10000);  // last 10,000

  // 10 epochs of shuffled batches of 64; the same seed gives the same order everywhere.
  const auto order = hydra::batch_order::shuffled(train.size(), 64, 10, /*seed=*/1);
  std::vector<float> x(static_cast<std::size_t>(order.batch_size() * train.sample_size()));
  std::vector<hydra::label_type> y(static_cast<std::size_t>(order.batch_size()));
  for (hydra::index t = 0; t < order.steps(); ++t) {
    hydra::gather(train, order.batch(t), x.data(), y.data());
    // ... upload x, y to the backend and take one training step ...
  }
  hydra::save_npy(out / "validation_labels.npy", validation.labels(), {validation.size()});
  // --- docs/data.md example ends ---
}

// A small stand-in for the real files: the example's split needs 60,000 samples.
void write_idx(const std::filesystem::path& images, const std::filesystem::path& labels) {
  hydra::test::bytes img, lab;
  hydra::test::append_u32_be(img, 0x803);
  hydra::test::append_u32_be(img, 60000);
  hydra::test::append_u32_be(img, 1);
  hydra::test::append_u32_be(img, 1);
  hydra::test::append_u32_be(lab, 0x801);
  hydra::test::append_u32_be(lab, 60000);
  for (int i = 0; i < 60000; ++i) {
    img.push_back(static_cast<std::uint8_t>(i % 256));
    lab.push_back(static_cast<std::uint8_t>(i % 10));
  }
  hydra::test::write_gz(images, img);
  hydra::test::write_gz(labels, lab);
}
} // namespace

TEST_CASE("docs/data.md example runs") {
  hydra::test::temp_dir dir;
  write_idx(dir / "images.gz", dir / "labels.gz");
  example(dir / "images.gz", dir / "labels.gz", dir.path());
  CHECK(hydra::load_npy_labels(dir / "validation_labels.npy").size() == 10000);
}
