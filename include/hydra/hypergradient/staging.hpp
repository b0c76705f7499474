#pragma once
// The tracker's per-step inputs to the backend's recurrence kernels, kept on the host and sent in
// as few copies as possible (on a GPU each copy waits for the stream):
//  - batch_marks: which tracked samples are in this step's batch, each with its gradient source
//    (its first position in the batch) and its weight w_{t,i} = (N/|B_t|)·multiplicity;
//  - transfer_staging: the rows of one lazy hypergradient_transfer call (state row, 2 × 2
//    transfer, source row, weight), packed into two arrays.

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"
#include "hydra/hypergradient/recurrence.hpp"

namespace hydra::detail {

/// Per tracked row: its source row in the batch (−1: not in the batch) and its weight.
template <Scalar T, class B>
class batch_marks {
public:
  batch_marks() = default;
  /// `device_copies`: keep a backend copy of both arrays for the eager update (upload()).
  batch_marks(index tracked, bool device_copies)
      : source_rows_(static_cast<std::size_t>(tracked), -1), weights_(static_cast<std::size_t>(tracked), T(0)) {
    if (device_copies) {
      device_source_rows_ = typename B::template buffer<index>(tracked);
      device_weights_ = typename B::template buffer<T>(tracked);
    }
  }

  /// Marks each tracked sample of `batch` (row_of: training sample → tracked row or −1; N the
  /// training set size) in order of first appearance; returns whether any is tracked.
  bool mark(std::span<const index> batch, std::span<const index> row_of, index N) {
    const T scale = static_cast<T>(N) / static_cast<T>(batch.size());
    for (std::size_t k = 0; k < batch.size(); ++k) {
      const index i = batch[k];
      if (i < 0 || i >= N)
        throw invalid_argument("hypergradient_tracker: batch index " + std::to_string(i) + " is outside [0, " +
                               std::to_string(N) + ")");
      const index r = row_of[static_cast<std::size_t>(i)];
      if (r < 0) continue;
      auto& row = source_rows_[static_cast<std::size_t>(r)];
      if (row < 0) {
        row = static_cast<index>(k);
        marked_.push_back(r);
      }
      weights_[static_cast<std::size_t>(r)] += scale;
    }
    return !marked_.empty();
  }
  void clear() {
    for (const index r : marked_) {
      source_rows_[static_cast<std::size_t>(r)] = -1;
      weights_[static_cast<std::size_t>(r)] = T(0);
    }
    marked_.clear();
  }

  /// The marked rows, in order of first appearance in the batch.
  [[nodiscard]] const std::vector<index>& marked() const noexcept { return marked_; }
  [[nodiscard]] index source_row(index r) const { return source_rows_[static_cast<std::size_t>(r)]; }
  [[nodiscard]] T weight(index r) const { return weights_[static_cast<std::size_t>(r)]; }

  /// The eager update's inputs: both whole arrays into backend memory, two copies.
  void upload() {
    const auto n = static_cast<index>(source_rows_.size());
    B::copy_from_host(source_rows_.data(), n, device_source_rows_.data());
    B::copy_from_host(weights_.data(), n, device_weights_.data());
  }
  [[nodiscard]] const index* device_source_rows() const noexcept { return device_source_rows_.data(); }
  [[nodiscard]] const T* device_weights() const noexcept { return device_weights_.data(); }

private:
  std::vector<index> source_rows_;
  std::vector<T> weights_;
  std::vector<index> marked_;
  typename B::template buffer<index> device_source_rows_;
  typename B::template buffer<T> device_weights_;
};

/// The rows of one hypergradient_transfer call, packed into indices = [state rows | source rows]
/// and values = [2 × 2 transfers | weights], each part `capacity` rows long, so that they reach
/// the backend in two copies.
template <Scalar T, class B>
class transfer_staging {
public:
  /// Room for up to `capacity` rows.
  void reset(index capacity) {
    capacity_ = capacity;
    indices_.resize(2 * static_cast<std::size_t>(capacity));
    values_.resize(5 * static_cast<std::size_t>(capacity));
  }
  void set_row(index k, index state_row, const transfer_matrix& m, index source_row, T weight) {
    const auto c = static_cast<std::size_t>(capacity_), i = static_cast<std::size_t>(k);
    indices_[i] = state_row;
    indices_[c + i] = source_row;
    for (std::size_t e = 0; e < 4; ++e) values_[4 * i + e] = static_cast<T>(m[e]);
    values_[4 * c + i] = weight;
  }
  /// Uploads the staged arrays and applies their first `count` rows to the states; returns
  /// whether everything written is finite.
  bool apply(index count, T eta, matrix_view<const T> sources, matrix_view<T> dv, matrix_view<T> grad) {
    if (count == 0) return true;
    const index c = capacity_;
    if (device_indices_.size() < 2 * c) {
      device_indices_ = typename B::template buffer<index>(2 * c);
      device_values_ = typename B::template buffer<T>(5 * c);
    }
    B::copy_from_host(indices_.data(), 2 * c, device_indices_.data());
    B::copy_from_host(values_.data(), 5 * c, device_values_.data());
    const index* indices = device_indices_.data();
    const T* values = device_values_.data();
    return B::hypergradient_transfer(count, indices, values, indices + c, values + 4 * c, eta, sources, dv, grad);
  }

private:
  index capacity_ = 0;
  std::vector<index> indices_;
  std::vector<T> values_;
  typename B::template buffer<index> device_indices_;
  typename B::template buffer<T> device_values_;
};

} // namespace hydra::detail
