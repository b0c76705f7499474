#pragma once
// hydra::batch_order: which samples form the mini-batch of every training step. The hypergradient
// replays the exact sequence of batches, so an order is a plain table fixed before training:
// generated from a seed (identically on every machine, see core/random.hpp) or given as is.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"
#include "hydra/core/random.hpp"

namespace hydra {

class batch_order {
public:
  batch_order() = default;

  /// `epochs` passes over 0..N-1, each a fresh Fisher-Yates permutation (of the identity) drawn
  /// from one xoshiro256** stream seeded with `seed`, cut into batches of batch_size. With
  /// drop_last the N mod batch_size samples left at the end of an epoch are not used that epoch;
  /// without it they form a smaller last batch.
  [[nodiscard]] static batch_order shuffled(index num_samples, index batch_size, index epochs, std::uint64_t seed,
                                            bool drop_last = true) {
    check_sizes("shuffled", num_samples, batch_size, epochs);
    xoshiro256ss rng(seed);
    return build("shuffled", num_samples, batch_size, epochs, drop_last,
                 [&](std::span<index> perm) { shuffle(perm, rng); });
  }

  /// As shuffled, but every epoch visits 0, 1, ..., N-1 in order.
  [[nodiscard]] static batch_order sequential(index num_samples, index batch_size, index epochs,
                                              bool drop_last = true) {
    check_sizes("sequential", num_samples, batch_size, epochs);
    return build("sequential", num_samples, batch_size, epochs, drop_last, [](std::span<index>) {});
  }

  /// Row t of the steps x batch_size row-major table is the batch of step t. Every entry must be
  /// in [0, num_samples). steps_per_epoch = 0 means max(1, num_samples / batch_size).
  [[nodiscard]] static batch_order from_table(std::vector<index> table, index steps, index batch_size,
                                              index num_samples, index steps_per_epoch = 0) {
    if (batch_size <= 0) throw invalid_argument("hydra::batch_order::from_table: batch size " +
                                                std::to_string(batch_size) + " must be > 0");
    if (steps < 0) throw invalid_argument("hydra::batch_order::from_table: steps " + std::to_string(steps) + " < 0");
    if (num_samples <= 0) throw invalid_argument("hydra::batch_order::from_table: number of samples " +
                                                 std::to_string(num_samples) + " must be > 0");
    if (steps_per_epoch < 0) throw invalid_argument("hydra::batch_order::from_table: steps per epoch " +
                                                    std::to_string(steps_per_epoch) + " < 0");
    // Compared by division first so that steps * batch_size cannot overflow.
    const auto entries = static_cast<index>(table.size());
    if (steps > 0 ? (entries / steps != batch_size || entries % steps != 0) : entries != 0) {
      throw shape_error("hydra::batch_order::from_table: a table of " + std::to_string(table.size()) +
                        " entries is not " + std::to_string(steps) + " steps x " + std::to_string(batch_size));
    }
    for (index t = 0; t < steps; ++t) {
      for (index k = 0; k < batch_size; ++k) {
        const index v = table[static_cast<std::size_t>(t * batch_size + k)];
        if (v < 0 || v >= num_samples) {
          throw invalid_argument("hydra::batch_order::from_table: row " + std::to_string(t) + ", column " +
                                 std::to_string(k) + " holds " + std::to_string(v) + ", outside [0, " +
                                 std::to_string(num_samples) + ")");
        }
      }
    }
    batch_order o;
    o.indices_ = std::move(table);
    o.offsets_.resize(static_cast<std::size_t>(steps) + 1);
    for (index t = 0; t <= steps; ++t) o.offsets_[static_cast<std::size_t>(t)] = t * batch_size;
    o.batch_size_ = batch_size;
    o.num_samples_ = num_samples;
    o.steps_per_epoch_ = steps_per_epoch > 0 ? steps_per_epoch : std::max<index>(1, num_samples / batch_size);
    return o;
  }

  /// Number of steps (batches) over all epochs.
  [[nodiscard]] index steps() const noexcept { return offsets_.empty() ? 0 : static_cast<index>(offsets_.size()) - 1; }
  /// The nominal batch size; only the last batch of an epoch can be smaller (when not drop_last).
  [[nodiscard]] index batch_size() const noexcept { return batch_size_; }
  [[nodiscard]] index num_samples() const noexcept { return num_samples_; }
  [[nodiscard]] index steps_per_epoch() const noexcept { return steps_per_epoch_; }
  [[nodiscard]] index epoch_of(index step) const noexcept { return step / steps_per_epoch_; }

  /// The sample indices of step t, 0 <= t < steps().
  [[nodiscard]] std::span<const index> batch(index t) const {
    if (t < 0 || t >= steps()) {
      throw invalid_argument("hydra::batch_order::batch: step " + std::to_string(t) + " is outside [0, " +
                             std::to_string(steps()) + ")");
    }
    const auto first = offsets_[static_cast<std::size_t>(t)];
    const auto last = offsets_[static_cast<std::size_t>(t) + 1];
    return std::span<const index>(indices_).subspan(static_cast<std::size_t>(first),
                                                    static_cast<std::size_t>(last - first));
  }

  /// All batches back to back (steps x batch_size when every batch is full).
  [[nodiscard]] std::span<const index> table() const noexcept { return indices_; }

private:
  static void check_sizes(const char* what, index num_samples, index batch_size, index epochs) {
    const std::string where = std::string("hydra::batch_order::") + what + ": ";
    if (num_samples <= 0) throw invalid_argument(where + "number of samples " + std::to_string(num_samples) + " must be > 0");
    if (batch_size <= 0 || batch_size > num_samples) {
      throw invalid_argument(where + "batch size " + std::to_string(batch_size) + " must be in [1, " +
                             std::to_string(num_samples) + "] (the number of samples)");
    }
    if (epochs < 0) throw invalid_argument(where + "epochs " + std::to_string(epochs) + " < 0");
  }

  template <class Permute>
  static batch_order build(const char* what, index n, index b, index epochs, bool drop_last, Permute&& permute) {
    batch_order o;
    o.batch_size_ = b;
    o.num_samples_ = n;
    o.steps_per_epoch_ = drop_last ? n / b : (n + b - 1) / b;
    const index used = drop_last ? o.steps_per_epoch_ * b : n;  // samples used per epoch
    // The table's entries and steps, refused before reserving when their count cannot be held.
    index entries = 0, steps = 0;
    constexpr index most = std::numeric_limits<std::ptrdiff_t>::max() / static_cast<index>(2 * sizeof(index));
    if (__builtin_mul_overflow(used, epochs, &entries) || __builtin_mul_overflow(o.steps_per_epoch_, epochs, &steps) ||
        entries > most)
      throw allocation_error(std::string("hydra::batch_order::") + what + ": " + std::to_string(epochs) +
                             " epochs of " + std::to_string(used) + " samples are more batch indices than memory holds");
    o.indices_.reserve(static_cast<std::size_t>(used * epochs));
    o.offsets_.reserve(static_cast<std::size_t>(o.steps_per_epoch_ * epochs) + 1);
    o.offsets_.push_back(0);
    std::vector<index> perm(static_cast<std::size_t>(n));
    for (index e = 0; e < epochs; ++e) {
      for (index i = 0; i < n; ++i) perm[static_cast<std::size_t>(i)] = i;
      permute(std::span<index>(perm));
      o.indices_.insert(o.indices_.end(), perm.begin(), perm.begin() + used);
      for (index start = b; start < used; start += b) o.offsets_.push_back(e * used + start);
      o.offsets_.push_back((e + 1) * used);
    }
    return o;
  }

  std::vector<index> indices_;  // all batches back to back
  std::vector<index> offsets_;  // batch t is indices_[offsets_[t], offsets_[t + 1])
  index batch_size_ = 0;
  index num_samples_ = 0;
  index steps_per_epoch_ = 1;
};

} // namespace hydra
