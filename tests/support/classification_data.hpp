#pragma once
// Small synthetic classification sets for the tracker tests: standard-normal features (seeded)
// and labels (i·stride + offset) mod classes, so every class occurs and the loss stays curved.

#include <vector>

#include "hydra/data/dataset.hpp"
#include "support/finite_difference.hpp"

namespace hydra::test {

template <class T = double>
dataset<T> classification_data(index n, index features, index classes, unsigned seed, index stride = 5,
                               index offset = 1) {
  const auto x = normal_vector(static_cast<std::size_t>(n * features), seed);
  std::vector<label_type> y(static_cast<std::size_t>(n));
  for (index i = 0; i < n; ++i) y[static_cast<std::size_t>(i)] = static_cast<label_type>((i * stride + offset) % classes);
  return dataset<T>({features}, std::vector<T>(x.begin(), x.end()), std::move(y), classes);
}

} // namespace hydra::test
