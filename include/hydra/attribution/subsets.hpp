#pragma once
// Subsets of the training set for counterfactual evaluation (docs/evaluation.md): each subset is
// described by the samples it removes, sorted. The linear datamodeling score draws m subsets that
// keep a fraction α of the samples (α = 0.5 in dattri and Quanda; 0.99 and 0.9 are the small
// leave-1%-out and leave-10%-out perturbations); leave-one-out is N subsets of one removal each.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/random.hpp"
#include "hydra/core/types.hpp"

namespace hydra {

/// Which samples each retraining leaves out: removed[s] lists subset s's removed samples, sorted
/// and distinct, each in [0, training_set_size).
struct subset_design {
  index training_set_size = 0;
  std::vector<std::vector<index>> removed;

  [[nodiscard]] index subsets() const noexcept { return static_cast<index>(removed.size()); }
};

/// m subsets that each keep round(kept_fraction · N) samples drawn uniformly without replacement,
/// subset s from its own stream (seed, s), so a design extends to more subsets without changing the
/// first ones. Throws invalid_argument unless 0 < kept_fraction < 1, m ≥ 2, and each subset both
/// keeps and removes at least one sample.
[[nodiscard]] inline subset_design random_subsets(index training_set_size, index m, double kept_fraction,
                                                  std::uint64_t seed) {
  if (!(kept_fraction > 0 && kept_fraction < 1))
    throw invalid_argument("random_subsets: the kept fraction alpha must be in (0, 1), got " +
                           std::to_string(kept_fraction));
  if (m < 2)
    throw invalid_argument("random_subsets: a rank correlation over subsets needs m >= 2 subsets, got " +
                           std::to_string(m));
  const auto N = training_set_size;
  const auto kept = static_cast<index>(std::llround(kept_fraction * static_cast<double>(N)));
  if (kept < 1 || kept >= N)
    throw invalid_argument("random_subsets: alpha = " + std::to_string(kept_fraction) + " of " + std::to_string(N) +
                           " samples keeps " + std::to_string(kept) + "; every subset must keep and remove at least one");
  subset_design design{N, {}};
  design.removed.reserve(static_cast<std::size_t>(m));
  std::vector<index> order(static_cast<std::size_t>(N));
  for (index s = 0; s < m; ++s) {
    std::iota(order.begin(), order.end(), index{0});
    xoshiro256ss rng(splitmix64(seed ^ (0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(s + 1)))());
    shuffle(std::span<index>(order), rng);
    std::vector<index> removed(order.begin() + kept, order.end());
    std::sort(removed.begin(), removed.end());
    design.removed.push_back(std::move(removed));
  }
  return design;
}

/// One subset per sample of `samples`, each removing that sample alone: leave-one-out.
[[nodiscard]] inline subset_design leave_one_out_design(index training_set_size, std::span<const index> samples) {
  subset_design design{training_set_size, {}};
  for (std::size_t k = 0; k < samples.size(); ++k) {
    if (samples[k] < 0 || samples[k] >= training_set_size)
      throw invalid_argument("leave_one_out_design: samples[" + std::to_string(k) + "] = " + std::to_string(samples[k]) +
                             " is outside the training set [0, " + std::to_string(training_set_size) + ")");
    design.removed.push_back({samples[k]});
  }
  return design;
}

/// Throws invalid_argument naming the subset and the class when a subset removes every training
/// sample of a class that the training set has (a model retrained on it never sees that class,
/// which no attribution method models), or when a removed list is unsorted, repeated or out of range.
inline void check_subsets(const subset_design& design, std::span<const label_type> labels) {
  if (static_cast<index>(labels.size()) != design.training_set_size)
    throw invalid_argument("check_subsets: " + std::to_string(labels.size()) + " labels for a design over " +
                           std::to_string(design.training_set_size) + " samples");
  label_type classes = 0;
  for (auto y : labels) classes = std::max(classes, static_cast<label_type>(y + 1));
  std::vector<index> total(static_cast<std::size_t>(classes)), gone(total.size());
  for (auto y : labels) ++total[static_cast<std::size_t>(y)];
  for (index s = 0; s < design.subsets(); ++s) {
    const auto& removed = design.removed[static_cast<std::size_t>(s)];
    std::fill(gone.begin(), gone.end(), index{0});
    for (std::size_t k = 0; k < removed.size(); ++k) {
      const index i = removed[k];
      if (i < 0 || i >= design.training_set_size || (k > 0 && i <= removed[k - 1]))
        throw invalid_argument("check_subsets: subset " + std::to_string(s) + " lists sample " + std::to_string(i) +
                               " out of order, twice or outside [0, " + std::to_string(design.training_set_size) + ")");
      ++gone[static_cast<std::size_t>(labels[static_cast<std::size_t>(i)])];
    }
    for (std::size_t c = 0; c < total.size(); ++c)
      if (total[c] > 0 && gone[c] == total[c])
        throw invalid_argument("check_subsets: subset " + std::to_string(s) + " removes every sample of class " +
                               std::to_string(c) + " (" + std::to_string(total[c]) + " samples)");
  }
}

} // namespace hydra
