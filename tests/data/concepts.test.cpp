// hydra::Dataset accepts hydra::dataset<T> and minimal look-alikes, and rejects types that miss
// any one member.
#include "hydra/data/concepts.hpp"

#include <span>
#include <vector>

#include <doctest/doctest.h>

#include "hydra/data/dataset.hpp"

namespace {

struct minimal {
  using value_type = float;
  hydra::index size() const { return 0; }
  hydra::index sample_size() const { return 0; }
  std::span<const float> features() const { return {}; }
  std::span<const hydra::label_type> labels() const { return {}; }
};

struct no_value_type {
  hydra::index size() const { return 0; }
  hydra::index sample_size() const { return 0; }
  std::span<const float> features() const { return {}; }
  std::span<const hydra::label_type> labels() const { return {}; }
};

struct int_values : minimal {
  using value_type = int;
};

struct no_labels {
  using value_type = double;
  hydra::index size() const { return 0; }
  hydra::index sample_size() const { return 0; }
  std::span<const double> features() const { return {}; }
};

struct wrong_feature_type {
  using value_type = double;
  hydra::index size() const { return 0; }
  hydra::index sample_size() const { return 0; }
  std::span<const float> features() const { return {}; }
  std::span<const hydra::label_type> labels() const { return {}; }
};

struct int64_labels {
  using value_type = float;
  hydra::index size() const { return 0; }
  hydra::index sample_size() const { return 0; }
  std::span<const float> features() const { return {}; }
  std::vector<long long> labels() const { return {}; }
};

} // namespace

static_assert(hydra::Dataset<hydra::dataset<float>>);
static_assert(hydra::Dataset<hydra::dataset<double>>);
static_assert(hydra::Dataset<minimal>);
static_assert(!hydra::Dataset<int>);
static_assert(!hydra::Dataset<std::vector<float>>);
static_assert(!hydra::Dataset<no_value_type>);
static_assert(!hydra::Dataset<int_values>);
static_assert(!hydra::Dataset<no_labels>);
static_assert(!hydra::Dataset<wrong_feature_type>);
static_assert(!hydra::Dataset<int64_labels>);

TEST_CASE("Dataset concept: checked at compile time") { CHECK(hydra::Dataset<hydra::dataset<float>>); }
static_assert(hydra::check_dataset<hydra::dataset<float>>());
