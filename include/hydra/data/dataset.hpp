#pragma once
// hydra::dataset<T>: a labelled data set in host memory (features N x D row-major, one int32
// label per sample, optional real-valued targets N x C), and the host-side helpers that derive
// new data sets from it (subset, split, scale, normalize) or copy a batch out of it (gather).

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"
#include "hydra/data/detail/checked.hpp"

namespace hydra {

template <Scalar T>
class dataset {
public:
  using value_type = T;

  /// Pass as num_classes to use 1 + the largest label.
  static constexpr index infer_classes = 0;

  dataset() = default;

  /// Features are N x prod(sample_shape), row-major; N = labels.size().
  dataset(std::vector<index> sample_shape, std::vector<T> features, std::vector<label_type> labels,
          index num_classes = infer_classes)
      : dataset(std::move(sample_shape), std::move(features), std::move(labels), {}, 0, num_classes) {}

  /// As above, plus targets N x target_size (row-major) for regression.
  dataset(std::vector<index> sample_shape, std::vector<T> features, std::vector<label_type> labels,
          std::vector<T> targets, index target_size, index num_classes = infer_classes)
      : shape_(std::move(sample_shape)), features_(std::move(features)), labels_(std::move(labels)),
        targets_(std::move(targets)), target_size_(target_size) {
    check_shapes();
    num_classes_ = check_labels(num_classes);
  }

  [[nodiscard]] index size() const noexcept { return static_cast<index>(labels_.size()); }
  [[nodiscard]] bool empty() const noexcept { return labels_.empty(); }
  [[nodiscard]] index sample_size() const noexcept { return sample_size_; }
  [[nodiscard]] std::span<const index> sample_shape() const noexcept { return shape_; }
  [[nodiscard]] index num_classes() const noexcept { return num_classes_; }

  [[nodiscard]] std::span<const T> features() const noexcept { return features_; }
  /// Features may be rewritten in place (scaling, normalisation); shapes and labels may not.
  [[nodiscard]] std::span<T> mutable_features() noexcept { return features_; }
  /// The features as an N x D matrix view.
  [[nodiscard]] matrix_view<const T> features_view() const noexcept {
    return {features_.data(), size(), sample_size_, sample_size_};
  }
  [[nodiscard]] std::span<const T> sample(index i) const noexcept {
    assert(i >= 0 && i < size());
    return std::span<const T>(features_).subspan(static_cast<std::size_t>(i * sample_size_),
                                                 static_cast<std::size_t>(sample_size_));
  }

  [[nodiscard]] std::span<const label_type> labels() const noexcept { return labels_; }
  [[nodiscard]] label_type label(index i) const noexcept {
    assert(i >= 0 && i < size());
    return labels_[static_cast<std::size_t>(i)];
  }

  /// Empty unless the data set has targets.
  [[nodiscard]] std::span<const T> targets() const noexcept { return targets_; }
  [[nodiscard]] index target_size() const noexcept { return target_size_; }
  [[nodiscard]] bool has_targets() const noexcept { return target_size_ > 0; }
  [[nodiscard]] std::span<const T> target(index i) const noexcept {
    assert(i >= 0 && i < size());
    return std::span<const T>(targets_).subspan(static_cast<std::size_t>(i * target_size_),
                                                static_cast<std::size_t>(target_size_));
  }

private:
  void check_shapes() {
    if (shape_.empty()) throw shape_error("hydra::dataset: the sample shape is empty (use {D} for flat samples)");
    for (index d : shape_) {
      if (d <= 0) throw shape_error("hydra::dataset: sample shape " + detail::shape_string(shape_) +
                                    " has a dimension <= 0");
    }
    if (!detail::checked_product(shape_, sample_size_)) {
      throw shape_error("hydra::dataset: sample shape " + detail::shape_string(shape_) + " overflows");
    }
    const auto n = size();
    index expected = 0;
    if (!detail::checked_mul(n, sample_size_, expected) || static_cast<index>(features_.size()) != expected) {
      throw shape_error("hydra::dataset: " + std::to_string(features_.size()) + " feature values for " +
                        std::to_string(n) + " labels of sample size " + std::to_string(sample_size_) +
                        " (expected " + std::to_string(n) + " * " + std::to_string(sample_size_) + ")");
    }
    if (target_size_ < 0) throw shape_error("hydra::dataset: target size " + std::to_string(target_size_) + " < 0");
    if (target_size_ == 0 && !targets_.empty()) {
      throw shape_error("hydra::dataset: " + std::to_string(targets_.size()) + " target values with target size 0");
    }
    if (!detail::checked_mul(n, target_size_, expected) || static_cast<index>(targets_.size()) != expected) {
      throw shape_error("hydra::dataset: " + std::to_string(targets_.size()) + " target values for " +
                        std::to_string(n) + " samples of target size " + std::to_string(target_size_));
    }
  }

  index check_labels(index requested) const {
    if (requested < 0) throw invalid_argument("hydra::dataset: num_classes " + std::to_string(requested) + " < 0");
    const auto n = size();
    label_type largest = -1;
    for (index i = 0; i < n; ++i) {
      const auto y = labels_[static_cast<std::size_t>(i)];
      if (y < 0 || (requested != infer_classes && y >= requested)) {
        throw invalid_argument("hydra::dataset: label[" + std::to_string(i) + "] = " + std::to_string(y) +
                               " is outside [0, " +
                               (requested != infer_classes ? std::to_string(requested) : std::string("inf")) + ")");
      }
      largest = std::max(largest, y);
    }
    return requested != infer_classes ? requested : static_cast<index>(largest) + 1;
  }

  std::vector<index> shape_;
  std::vector<T> features_;
  std::vector<label_type> labels_;
  std::vector<T> targets_;
  index sample_size_ = 0;
  index target_size_ = 0;
  index num_classes_ = 0;
};

// ---- batches -----------------------------------------------------------------------------------

/// Copies the samples batch_indices[k] to rows k of features_out (batch x D) and labels_out
/// (batch), and targets_out (batch x C) when given; the trainer uploads these buffers as they
/// are. labels_out and targets_out may be null. Throws invalid_argument for an index outside
/// [0, N) (naming its position and value) before writing anything.
template <Scalar T>
void gather(const dataset<T>& ds, std::span<const index> batch_indices, T* features_out, label_type* labels_out,
            T* targets_out = nullptr) {
  for (std::size_t k = 0; k < batch_indices.size(); ++k) {
    if (batch_indices[k] < 0 || batch_indices[k] >= ds.size()) {
      throw invalid_argument("hydra::gather: batch index [" + std::to_string(k) + "] = " +
                             std::to_string(batch_indices[k]) + " is outside [0, " + std::to_string(ds.size()) + ")");
    }
  }
  const auto d = static_cast<std::size_t>(ds.sample_size());
  const auto c = static_cast<std::size_t>(ds.target_size());
  for (std::size_t k = 0; k < batch_indices.size(); ++k) {
    const index i = batch_indices[k];
    std::ranges::copy(ds.sample(i), features_out + k * d);
    if (labels_out != nullptr) labels_out[k] = ds.label(i);
    if (targets_out != nullptr && c > 0) std::ranges::copy(ds.target(i), targets_out + k * c);
  }
}

// ---- derived data sets ---------------------------------------------------------------------------

/// The samples at `indices`, in that order (repeats allowed); keeps num_classes.
template <Scalar T>
[[nodiscard]] dataset<T> subset(const dataset<T>& ds, std::span<const index> indices) {
  const auto n = indices.size();
  std::vector<T> x(n * static_cast<std::size_t>(ds.sample_size()));
  std::vector<label_type> y(n);
  std::vector<T> t(n * static_cast<std::size_t>(ds.target_size()));
  gather(ds, indices, x.data(), y.data(), t.data());
  const auto shape = ds.sample_shape();
  return dataset<T>({shape.begin(), shape.end()}, std::move(x), std::move(y), std::move(t), ds.target_size(),
                    ds.num_classes());
}

/// Samples [first, first + count), e.g. split(train, 0, 50000) and split(train, 50000, 10000).
template <Scalar T>
[[nodiscard]] dataset<T> split(const dataset<T>& ds, index first, index count) {
  if (first < 0 || count < 0 || first > ds.size() || count > ds.size() - first) {
    throw invalid_argument("hydra::split: range [" + std::to_string(first) + ", " + std::to_string(first) + " + " +
                           std::to_string(count) + ") is outside a data set of " + std::to_string(ds.size()) +
                           " samples");
  }
  std::vector<index> indices(static_cast<std::size_t>(count));
  for (index k = 0; k < count; ++k) indices[static_cast<std::size_t>(k)] = first + k;
  return subset(ds, std::span<const index>(indices));
}

/// Every feature multiplied by factor (e.g. 1/255 to map bytes to [0, 1]).
template <Scalar T>
[[nodiscard]] dataset<T> scale(dataset<T> ds, T factor) {
  for (T& v : ds.mutable_features()) v *= factor;
  return ds;
}

/// Which features share one mean and standard deviation.
enum class stats_scope {
  global,       ///< one value over all features
  per_channel,  ///< one value per index of the first sample dimension (C of C x H x W)
  per_feature,  ///< one value per feature (D values)
};

template <Scalar T>
struct feature_stats {
  std::vector<T> mean;
  std::vector<T> stddev;  ///< population standard deviation (divides by the count)
};

namespace detail {
// The group (global / channel / feature) a feature belongs to, given the number of groups.
inline index group_of(index feature, index groups, index sample_size) noexcept {
  if (groups == 1) return 0;
  if (groups == sample_size) return feature;
  return feature / (sample_size / groups);  // channel-major: each channel is a contiguous block
}
} // namespace detail

/// Mean and standard deviation of the features, accumulated in double. A group whose standard
/// deviation is 0 (a constant feature, such as MNIST's border pixels) gets stddev 1, so that
/// normalize only centres it (the convention of scikit-learn's StandardScaler).
template <Scalar T>
[[nodiscard]] feature_stats<T> mean_std(const dataset<T>& ds, stats_scope scope = stats_scope::global) {
  if (ds.empty()) throw invalid_argument("hydra::mean_std: the data set is empty");
  const index d = ds.sample_size();
  const index groups = scope == stats_scope::global    ? 1
                       : scope == stats_scope::per_feature ? d
                                                           : ds.sample_shape()[0];
  std::vector<double> sum(static_cast<std::size_t>(groups)), count(static_cast<std::size_t>(groups));
  for (index i = 0; i < ds.size(); ++i) {
    const auto x = ds.sample(i);
    for (index j = 0; j < d; ++j) {
      const auto g = static_cast<std::size_t>(detail::group_of(j, groups, d));
      sum[g] += static_cast<double>(x[static_cast<std::size_t>(j)]);
      count[g] += 1;
    }
  }
  std::vector<double> mean(sum.size()), sq(sum.size());
  for (std::size_t g = 0; g < sum.size(); ++g) mean[g] = sum[g] / count[g];
  // Second pass about the mean: no cancellation from E[x^2] - E[x]^2.
  for (index i = 0; i < ds.size(); ++i) {
    const auto x = ds.sample(i);
    for (index j = 0; j < d; ++j) {
      const auto g = static_cast<std::size_t>(detail::group_of(j, groups, d));
      const double e = static_cast<double>(x[static_cast<std::size_t>(j)]) - mean[g];
      sq[g] += e * e;
    }
  }
  feature_stats<T> out;
  for (std::size_t g = 0; g < sum.size(); ++g) {
    const double s = std::sqrt(sq[g] / count[g]);
    out.mean.push_back(static_cast<T>(mean[g]));
    out.stddev.push_back(s > 0 ? static_cast<T>(s) : T(1));
  }
  return out;
}

/// (x - mean) / stddev. mean and stddev have 1 (global), sample_shape()[0] (per channel) or D
/// (per feature) entries, as returned by mean_std. Every stddev must be finite and > 0.
template <Scalar T>
[[nodiscard]] dataset<T> normalize(dataset<T> ds, std::type_identity_t<std::span<const T>> mean,
                                   std::type_identity_t<std::span<const T>> stddev) {
  const index d = ds.sample_size();
  const auto groups = static_cast<index>(mean.size());
  const bool known = groups == 1 || groups == d || groups == ds.sample_shape()[0];
  if (!known || stddev.size() != mean.size()) {
    throw shape_error("hydra::normalize: " + std::to_string(mean.size()) + " means and " +
                      std::to_string(stddev.size()) + " standard deviations for sample shape " +
                      detail::shape_string(ds.sample_shape()) + " (expected 1, " +
                      std::to_string(ds.sample_shape()[0]) + " or " + std::to_string(d) + " of each)");
  }
  for (std::size_t g = 0; g < stddev.size(); ++g) {
    if (!(stddev[g] > 0) || !std::isfinite(stddev[g]) || !std::isfinite(mean[g])) {
      throw invalid_argument("hydra::normalize: stddev[" + std::to_string(g) + "] = " + std::to_string(stddev[g]) +
                             ", mean[" + std::to_string(g) + "] = " + std::to_string(mean[g]) +
                             " (stddev must be finite and > 0)");
    }
  }
  auto x = ds.mutable_features();
  for (std::size_t k = 0; k < x.size(); ++k) {
    const auto g = static_cast<std::size_t>(detail::group_of(static_cast<index>(k) % d, groups, d));
    x[k] = (x[k] - mean[g]) / stddev[g];
  }
  return ds;
}

template <Scalar T>
[[nodiscard]] dataset<T> normalize(dataset<T> ds, const feature_stats<T>& stats) {
  return normalize(std::move(ds), std::span<const T>(stats.mean), std::span<const T>(stats.stddev));
}

/// Labels as one-hot rows: an N x num_classes row-major matrix.
template <Scalar T>
[[nodiscard]] std::vector<T> one_hot(std::span<const label_type> labels, index num_classes) {
  std::vector<T> out(labels.size() * static_cast<std::size_t>(num_classes), T(0));
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes) {
      throw invalid_argument("hydra::one_hot: label[" + std::to_string(i) + "] = " + std::to_string(labels[i]) +
                             " is outside [0, " + std::to_string(num_classes) + ")");
    }
    out[i * static_cast<std::size_t>(num_classes) + static_cast<std::size_t>(labels[i])] = T(1);
  }
  return out;
}

/// The same data set with its one-hot labels as targets (for a squared-error loss).
template <Scalar T>
[[nodiscard]] dataset<T> with_one_hot_targets(const dataset<T>& ds) {
  const auto x = ds.features();
  const auto y = ds.labels();
  const auto shape = ds.sample_shape();
  return dataset<T>({shape.begin(), shape.end()}, {x.begin(), x.end()}, {y.begin(), y.end()},
                    one_hot<T>(y, ds.num_classes()), ds.num_classes(), ds.num_classes());
}

} // namespace hydra
