#pragma once
// device_batch: one mini-batch gathered on the host and copied to the backend, with buffers
// reused from step to step.

#include <algorithm>
#include <span>
#include <vector>

#include "hydra/core/tensor.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/nn/concepts.hpp"

namespace hydra {

template <Scalar T, class B>
class device_batch {
public:
  /// Gathers the samples `indices` of `data` (features, labels and any real targets) and uploads
  /// them; the host staging buffers and the backend buffers grow only when needed.
  void load(const dataset<T>& data, std::span<const index> indices) {
    const auto n = static_cast<index>(indices.size());
    const index d = data.sample_size();
    const index c = data.target_size();
    host_x_.resize(static_cast<std::size_t>(n * d));
    host_y_.resize(static_cast<std::size_t>(n));
    host_t_.resize(static_cast<std::size_t>(n * c));
    gather(data, indices, host_x_.data(), host_y_.data(), c > 0 ? host_t_.data() : nullptr);
    x_.resize(n, d);
    B::copy_from_host(host_x_.data(), n * d, x_.data());
    if (labels_.size() < n) labels_ = typename B::template buffer<label_type>(n);
    B::copy_from_host(host_y_.data(), n, labels_.data());
    t_.resize(n, c);
    if (c > 0) B::copy_from_host(host_t_.data(), n * c, t_.data());
    rows_ = n;
  }

  [[nodiscard]] matrix_view<const T> features() const { return x_.view(); }
  [[nodiscard]] batch_targets<T> targets() const {
    return {labels_.data(), t_.cols() > 0 ? t_.view() : matrix_view<const T>{}};
  }
  [[nodiscard]] index size() const noexcept { return rows_; }

private:
  std::vector<T> host_x_;
  std::vector<label_type> host_y_;
  std::vector<T> host_t_;
  matrix<T, B> x_;
  matrix<T, B> t_;
  typename B::template buffer<label_type> labels_;
  index rows_ = 0;
};

/// Loads `data` in consecutive chunks of at most `chunk` samples into `batch` and calls
/// f(first, count) after each load (evaluation, test gradients).
template <Scalar T, class B, class F>
void for_each_chunk(const dataset<T>& data, index chunk, device_batch<T, B>& batch, F&& f) {
  std::vector<index> indices;
  for (index first = 0; first < data.size(); first += chunk) {
    const index count = std::min(chunk, data.size() - first);
    indices.resize(static_cast<std::size_t>(count));
    for (index k = 0; k < count; ++k) indices[static_cast<std::size_t>(k)] = first + k;
    batch.load(data, indices);
    f(first, count);
  }
}

} // namespace hydra
