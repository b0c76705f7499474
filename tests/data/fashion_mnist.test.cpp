// The real Fashion-MNIST files, when installed (skipped otherwise): sizes, class balance, pixel
// range, and the 50,000 / 10,000 train / validation split.
#include <algorithm>
#include <filesystem>
#include <vector>

#include <doctest/doctest.h>

#include "hydra/data/dataset.hpp"
#include "hydra/data/idx.hpp"
#include "support/skip.hpp"

namespace {
const std::filesystem::path root = "/usr/share/datasets/fashion-mnist";

template <class T>
void check_balanced(const hydra::dataset<T>& ds, hydra::index per_class) {
  std::vector<hydra::index> counts(10);
  for (auto y : ds.labels()) ++counts[static_cast<std::size_t>(y)];
  for (auto c : counts) CHECK(c == per_class);
}
} // namespace

TEST_CASE("Fashion-MNIST from /usr/share/datasets") {
  if (!std::filesystem::exists(root / "train-images-idx3-ubyte.gz")) {
    HYDRA_TEST_SKIP("Fashion-MNIST not found under " << root.string());
    return;
  }
  const auto train = hydra::load_idx_dataset<float>(root / "train-images-idx3-ubyte.gz",
                                                    root / "train-labels-idx1-ubyte.gz");
  CHECK(train.size() == 60000);
  CHECK(std::vector<hydra::index>(train.sample_shape().begin(), train.sample_shape().end()) ==
        std::vector<hydra::index>{1, 28, 28});
  CHECK(train.num_classes() == 10);
  check_balanced(train, 6000);
  const auto [lo, hi] = std::ranges::minmax(train.features());
  CHECK(lo == 0.f);
  CHECK(hi == 1.f);

  const auto test = hydra::load_idx_dataset<double>(root / "t10k-images-idx3-ubyte.gz",
                                                    root / "t10k-labels-idx1-ubyte.gz");
  CHECK(test.size() == 10000);
  CHECK(test.sample_size() == 784);
  check_balanced(test, 1000);
  const auto [tlo, thi] = std::ranges::minmax(test.features());
  CHECK(tlo >= 0.0);
  CHECK(thi <= 1.0);

  const auto fit = hydra::split(train, 0, 50000);
  const auto validation = hydra::split(train, 50000, 10000);
  CHECK(fit.size() + validation.size() == 60000);
  CHECK(std::ranges::equal(validation.sample(0), train.sample(50000)));
  CHECK(validation.num_classes() == 10);
}
