#pragma once
// hydra::Dataset: what the trainer and the attribution code need from a data set. Any type that
// offers these members works; hydra::dataset<T> (data/dataset.hpp) is the one hydra provides.

#include <concepts>
#include <span>

#include "hydra/core/types.hpp"

namespace hydra {

namespace detail {
// One small requirement per member, so that a failing type is told which one it misses.
template <class D>
concept dataset_value_type = requires { typename D::value_type; } && Scalar<typename D::value_type>;

template <class D>
concept dataset_sized = requires(const D& d) {
  { d.size() } -> std::convertible_to<index>;
  { d.sample_size() } -> std::convertible_to<index>;
};

template <class D>
concept dataset_features = requires(const D& d) {
  { d.features() } -> std::convertible_to<std::span<const typename D::value_type>>;
};

template <class D>
concept dataset_labels = requires(const D& d) {
  { d.labels() } -> std::convertible_to<std::span<const label_type>>;
};
} // namespace detail

/// A labelled data set in host memory: size() samples of sample_size() features each, features()
/// the N x D values row-major, labels() the N class labels.
template <class D>
concept Dataset = detail::dataset_value_type<D> && detail::dataset_sized<D> && detail::dataset_features<D> &&
                  detail::dataset_labels<D>;

/// `static_assert(hydra::check_dataset<D>())`: one sentence per missing requirement.
template <class D>
consteval bool check_dataset() {
  static_assert(detail::dataset_value_type<D>,
                "hydra: a data set must declare `using value_type = float;` (or double); see docs/data.md, section "
                "'The Dataset concept'.");
  static_assert(detail::dataset_sized<D>,
                "hydra: a data set must provide const size() and sample_size(); see docs/data.md, section 'The "
                "Dataset concept'.");
  if constexpr (detail::dataset_value_type<D>) {
    static_assert(detail::dataset_features<D>,
                  "hydra: a data set must provide const features() returning the N x D values as a span; see "
                  "docs/data.md, section 'The Dataset concept'.");
    static_assert(detail::dataset_labels<D>,
                  "hydra: a data set must provide const labels() returning std::span<const label_type>; see "
                  "docs/data.md, section 'The Dataset concept'.");
  }
  return true;
}

} // namespace hydra
