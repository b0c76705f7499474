// hydra::dataset<T> and its helpers: construction checks, accessors, gather, subset, split,
// scale, mean_std / normalize (against hand-computed values), one_hot.
#include "hydra/data/dataset.hpp"

#include <cmath>
#include <span>
#include <vector>

#include <doctest/doctest.h>

#include "support.hpp"

using hydra::index;
using hydra::label_type;

namespace {
// 4 samples of shape {2, 1, 2} (two channels of two pixels): sample i holds 10i + (0, 1, 2, 3).
template <class T>
hydra::dataset<T> small() {
  std::vector<T> x;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) x.push_back(static_cast<T>(10 * i + j));
  return hydra::dataset<T>({2, 1, 2}, x, {0, 2, 1, 2});
}
} // namespace

TEST_CASE_TEMPLATE("dataset: accessors", T, float, double) {
  const auto ds = small<T>();
  CHECK(ds.size() == 4);
  CHECK(ds.sample_size() == 4);
  CHECK(std::vector<index>(ds.sample_shape().begin(), ds.sample_shape().end()) == std::vector<index>{2, 1, 2});
  CHECK(ds.features().size() == 16);
  CHECK(ds.sample(2)[0] == T(20));
  CHECK(ds.sample(2)[3] == T(23));
  CHECK(ds.label(1) == 2);
  CHECK(ds.labels().size() == 4);
  CHECK(ds.num_classes() == 3);  // 1 + max label
  CHECK_FALSE(ds.has_targets());
  CHECK(ds.targets().empty());
  CHECK(ds.target_size() == 0);
  const auto v = ds.features_view();
  CHECK(v.rows == 4);
  CHECK(v.cols == 4);
  CHECK(v.row(3)[1] == T(31));

  const hydra::dataset<T> empty;
  CHECK(empty.size() == 0);
  CHECK(empty.empty());
}

TEST_CASE("dataset: explicit num_classes and targets") {
  const hydra::dataset<double> ds({1}, {1.0, 2.0}, {0, 1}, {0.5, 1.5, 2.5, 3.5}, 2, 10);
  CHECK(ds.num_classes() == 10);
  CHECK(ds.has_targets());
  CHECK(ds.target_size() == 2);
  CHECK(ds.target(1)[0] == 2.5);
  CHECK(ds.targets().size() == 4);
}

TEST_CASE("dataset: shape errors name the sizes") {
  using ds = hydra::dataset<float>;
  HYDRA_CHECK_THROWS_WITH_ALL(ds({3}, std::vector<float>(7), {0, 1}), hydra::shape_error, "7", "2 labels", "3");
  HYDRA_CHECK_THROWS_WITH_ALL(ds({}, std::vector<float>(2), {0, 1}), hydra::shape_error, "empty");
  HYDRA_CHECK_THROWS_WITH_ALL(ds({2, 0}, {}, {}), hydra::shape_error, "(2, 0)");
  HYDRA_CHECK_THROWS_WITH_ALL(ds({1}, {1.f, 2.f}, {0, 1}, {1.f, 2.f, 3.f}, 2), hydra::shape_error, "3 target",
                              "target size 2");
  HYDRA_CHECK_THROWS_WITH_ALL(ds({1}, {1.f}, {0}, {1.f}, 0), hydra::shape_error, "target size 0");
}

TEST_CASE("dataset: labels are validated, naming the index and value") {
  using ds = hydra::dataset<float>;
  HYDRA_CHECK_THROWS_WITH_ALL(ds({1}, {1.f, 2.f, 3.f}, {0, -4, 1}), hydra::invalid_argument, "label[1]", "-4");
  HYDRA_CHECK_THROWS_WITH_ALL(ds({1}, {1.f, 2.f, 3.f}, {0, 1, 5}, 5), hydra::invalid_argument, "label[2]", "5",
                              "[0, 5)");
  HYDRA_CHECK_THROWS_WITH_ALL(ds({1}, {1.f}, {0}, -1), hydra::invalid_argument, "num_classes");
  CHECK_NOTHROW(ds({1}, {1.f, 2.f, 3.f}, {0, 1, 4}, 5));
}

TEST_CASE_TEMPLATE("gather copies a batch contiguously and checks indices", T, float, double) {
  const auto ds = small<T>();
  const std::vector<index> batch{3, 0, 3};
  std::vector<T> x(12, T(-1));
  std::vector<label_type> y(3, -1);
  hydra::gather(ds, batch, x.data(), y.data());
  CHECK(x == std::vector<T>{30, 31, 32, 33, 0, 1, 2, 3, 30, 31, 32, 33});
  CHECK(y == std::vector<label_type>{2, 0, 2});

  hydra::gather(ds, std::span<const index>(batch).first(1), x.data(), nullptr);  // labels optional
  CHECK(x[0] == T(30));

  std::vector<T> untouched(12, T(-1));
  const std::vector<index> bad{1, 4};
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::gather(ds, bad, untouched.data(), y.data()), hydra::invalid_argument, "[1]",
                              "4", "[0, 4)");
  CHECK(untouched == std::vector<T>(12, T(-1)));  // nothing written before the check
  const std::vector<index> negative{-1};
  CHECK_THROWS_AS(hydra::gather(ds, negative, untouched.data(), y.data()), hydra::invalid_argument);
}

TEST_CASE("gather with targets") {
  const hydra::dataset<float> ds({1}, {1.f, 2.f}, {0, 0}, {10.f, 11.f, 20.f, 21.f}, 2);
  const std::vector<index> batch{1};
  float x = 0;
  label_type y = -1;
  std::vector<float> t(2);
  hydra::gather(ds, batch, &x, &y, t.data());
  CHECK(x == 2.f);
  CHECK(y == 0);
  CHECK(t == std::vector<float>{20.f, 21.f});
}

TEST_CASE_TEMPLATE("subset and split", T, float, double) {
  const auto ds = small<T>();
  const std::vector<index> pick{2, 0};
  const auto s = hydra::subset(ds, pick);
  CHECK(s.size() == 2);
  CHECK(s.sample(0)[1] == T(21));
  CHECK(s.label(0) == 1);
  CHECK(s.num_classes() == 3);  // kept, even though label 2 is no longer present
  CHECK(s.sample_shape().size() == 3);

  const auto first = hydra::split(ds, 0, 3);
  const auto last = hydra::split(ds, 3, 1);
  CHECK(first.size() == 3);
  CHECK(last.size() == 1);
  CHECK(last.sample(0)[0] == T(30));
  CHECK(first.label(2) == 1);
  CHECK(hydra::split(ds, 4, 0).size() == 0);
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::split(ds, 2, 3), hydra::invalid_argument, "[2, 2 + 3)", "4 samples");
  CHECK_THROWS_AS(static_cast<void>(hydra::split(ds, -1, 1)), hydra::invalid_argument);
  const std::vector<index> bad{7};
  CHECK_THROWS_AS(static_cast<void>(hydra::subset(ds, bad)), hydra::invalid_argument);
}

TEST_CASE_TEMPLATE("scale", T, float, double) {
  const auto ds = hydra::scale(small<T>(), T(0.5));
  CHECK(ds.sample(1)[1] == T(5.5));
  CHECK(ds.label(1) == 2);
}

TEST_CASE("mean_std and normalize: global, per channel, per feature") {
  const auto ds = small<double>();
  // Values 10i + j, i in 0..3, j in 0..3: mean 15 + 1.5 = 16.5.
  const auto g = hydra::mean_std(ds);
  REQUIRE(g.mean.size() == 1);
  CHECK(g.mean[0] == doctest::Approx(16.5));
  // Var = Var(10i) + Var(j) = 100 * 1.25 + 1.25 = 126.25 (i and j independent and uniform).
  CHECK(g.stddev[0] == doctest::Approx(std::sqrt(126.25)));

  const auto c = hydra::mean_std(ds, hydra::stats_scope::per_channel);
  REQUIRE(c.mean.size() == 2);  // channel 0: j in {0, 1}; channel 1: j in {2, 3}
  CHECK(c.mean[0] == doctest::Approx(15.5));
  CHECK(c.mean[1] == doctest::Approx(17.5));
  CHECK(c.stddev[0] == doctest::Approx(std::sqrt(125.25)));

  const auto f = hydra::mean_std(ds, hydra::stats_scope::per_feature);
  REQUIRE(f.mean.size() == 4);
  CHECK(f.mean[3] == doctest::Approx(18.0));
  CHECK(f.stddev[3] == doctest::Approx(std::sqrt(125.0)));

  for (const auto& stats : {g, c, f}) {
    const auto n = hydra::normalize(ds, stats);
    const auto again = hydra::mean_std(n, stats.mean.size() == 1   ? hydra::stats_scope::global
                                          : stats.mean.size() == 2 ? hydra::stats_scope::per_channel
                                                                   : hydra::stats_scope::per_feature);
    for (std::size_t k = 0; k < again.mean.size(); ++k) {
      CHECK(again.mean[k] == doctest::Approx(0.0).epsilon(1e-12));
      CHECK(again.stddev[k] == doctest::Approx(1.0));
    }
  }
}

TEST_CASE("mean_std: a constant feature gets stddev 1; normalize rejects bad statistics") {
  const hydra::dataset<float> ds({2}, {1.f, 5.f, 3.f, 5.f}, {0, 1});
  const auto f = hydra::mean_std(ds, hydra::stats_scope::per_feature);
  CHECK(f.stddev[1] == 1.f);
  CHECK(hydra::normalize(ds, f).sample(0)[1] == 0.f);

  const std::vector<float> mean{0.f}, zero{0.f}, three{1.f, 1.f, 1.f};
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::normalize(ds, mean, zero), hydra::invalid_argument, "stddev[0]");
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::normalize(ds, three, three), hydra::shape_error,
                              "3 means");
  const std::vector<float> nan{std::nanf("")};
  CHECK_THROWS_AS(static_cast<void>(hydra::normalize(ds, nan, mean)), hydra::invalid_argument);
  CHECK_THROWS_AS(static_cast<void>(hydra::mean_std(hydra::dataset<float>{})), hydra::invalid_argument);
}

TEST_CASE("one_hot") {
  const std::vector<label_type> y{2, 0};
  CHECK(hydra::one_hot<float>(y, 3) == std::vector<float>{0, 0, 1, 1, 0, 0});
  HYDRA_CHECK_THROWS_WITH_ALL(hydra::one_hot<float>(y, 2), hydra::invalid_argument, "label[0]", "2");
  const auto ds = hydra::with_one_hot_targets(small<double>());
  CHECK(ds.target_size() == 3);
  CHECK(ds.target(0)[0] == 1.0);
  CHECK(ds.target(1)[2] == 1.0);
  CHECK(ds.target(2)[1] == 1.0);
}
