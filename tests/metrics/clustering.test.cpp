// k-means against clusterings worked out by hand, against a brute-force search over every
// partition of a small problem, against quantities recomputed here from its output (inertia,
// nearest centroids, cluster means), on separated blobs, and on bad input; the Jaccard index of
// 2-clusterings against counts done by hand.
//
// Tolerances: hand-computed centroids and inertias are sums of a few exactly representable
// values, 1e-12 relative; recomputed quantities sum up to ~100 squared distances, 1e-10 relative.
#include "hydra/metrics/clustering.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include "hydra/core/random.hpp"

namespace hydra::test {
namespace {
constexpr double tol = 1e-12;

template <class T>
matrix_view<const T> view(const std::vector<T>& x, index d) {
  return {x.data(), static_cast<index>(x.size()) / d, d};
}

double squared_distance(const double* x, std::span<const double> c) {
  double s = 0;
  for (std::size_t f = 0; f < c.size(); ++f) s += (x[f] - c[f]) * (x[f] - c[f]);
  return s;
}

// n points in d dimensions drawn uniformly from [0, 1)^d.
std::vector<double> uniform_points(index n, index d, std::uint64_t seed) {
  xoshiro256ss rng(seed);
  std::vector<double> x(static_cast<std::size_t>(n * d));
  for (auto& v : x) v = uniform01(rng);
  return x;
}

// Three blobs of 20 points around (0, 0), (10, 0) and (0, 10), each point within 0.5 per axis:
// the nearest other blob is at distance >= 9, so the optimal 3-clustering is the blobs.
std::vector<double> blobs(std::vector<index>& blob_of) {
  const double centres[3][2] = {{0, 0}, {10, 0}, {0, 10}};
  xoshiro256ss rng(3);
  std::vector<double> x;
  blob_of.clear();
  for (index p = 0; p < 60; ++p) {
    const index b = p % 3;  // interleaved, so that row order says nothing
    blob_of.push_back(b);
    x.push_back(centres[b][0] + uniform01(rng) - 0.5);
    x.push_back(centres[b][1] + uniform01(rng) - 0.5);
  }
  return x;
}
} // namespace

TEST_CASE_TEMPLATE("kmeans on 1-d points worked out by hand", T, float, double) {
  // {0, 1} and {10, 11}: centroids 0.5 and 10.5, inertia 4 · 0.5² = 1. No other assignment is a
  // fixed point of Lloyd's iteration here (e.g. {0} | {1, 10, 11} has centroid 7, and 1 is
  // nearer 0), so every restart finds this one.
  const std::vector<T> x{0, 10, 1, 11};
  const auto r = kmeans(view(x, 1), 2);
  CHECK(r.clusters == 2);
  CHECK(r.features == 1);
  CHECK(r.inertia == doctest::Approx(1.0).epsilon(tol));
  CHECK(r.labels[0] == r.labels[2]);
  CHECK(r.labels[1] == r.labels[3]);
  CHECK(r.labels[0] != r.labels[1]);
  CHECK(r.centroid(r.labels[0])[0] == doctest::Approx(0.5).epsilon(tol));
  CHECK(r.centroid(r.labels[1])[0] == doctest::Approx(10.5).epsilon(tol));
  CHECK(r.converged);
}

TEST_CASE_TEMPLATE("kmeans with k = 1 and k = n", T, float, double) {
  // (0,0) (2,0) (0,4) (2,4): the mean is (1, 2); every point is (±1, ±2) from it, 1 + 4 = 5,
  // so the inertia is 4 · 5 = 20. One Lloyd iteration reaches it.
  const std::vector<T> x{0, 0, 2, 0, 0, 4, 2, 4};
  const auto one = kmeans(view(x, 2), 1);
  CHECK(one.inertia == doctest::Approx(20.0).epsilon(tol));
  CHECK(one.centroid(0)[0] == doctest::Approx(1.0).epsilon(tol));
  CHECK(one.centroid(0)[1] == doctest::Approx(2.0).epsilon(tol));
  CHECK(one.labels == std::vector<index>{0, 0, 0, 0});
  CHECK(one.iterations == 1);
  CHECK(one.converged);
  // k = n distinct points: each point its own cluster, inertia 0.
  const auto all = kmeans(view(x, 2), 4);
  CHECK(all.inertia == 0.0);
  std::vector<int> used(4, 0);
  for (index l : all.labels) ++used[static_cast<std::size_t>(l)];
  CHECK(used == std::vector<int>{1, 1, 1, 1});
}

TEST_CASE("kmeans with fewer distinct points than clusters") {
  // Two distinct points, each twice, k = 3: k-means++ runs out of points at positive distance and
  // the third centroid duplicates one of them; its cluster stays empty and, with no point off its
  // centroid to move it to, stays where it is. The result is exact (inertia 0), and every centroid
  // is one of the two points.
  const std::vector<double> x{1, 1, 5, 5, 1, 1, 5, 5};
  const auto r = kmeans(view(x, 2), 3, {.restarts = 3, .seed = 9});
  CHECK(r.inertia == 0.0);
  CHECK(r.labels[0] == r.labels[2]);
  CHECK(r.labels[1] == r.labels[3]);
  CHECK(r.labels[0] != r.labels[1]);
  for (index l : r.labels) CHECK((l >= 0 && l < 3));
  for (index c = 0; c < 3; ++c) {
    const auto m = r.centroid(c);
    CHECK(((m[0] == 1 && m[1] == 1) || (m[0] == 5 && m[1] == 5)));
  }
}

TEST_CASE("kmeans: an empty cluster takes the point farthest from its centroid") {
  // Points 0 1 2 3 10 11, centroids started at 1.5, 100, 200: every point goes to 1.5, with
  // squared distances 2.25 0.25 0.25 2.25 72.25 90.25. The update moves centroid 0 to the mean
  // 27/6 = 4.5; the empty clusters 1 and 2 take the farthest point (11) and the next (10).
  const std::vector<double> x{0, 1, 2, 3, 10, 11};
  detail::lloyd<double> run(view(x, 1), 3);
  run.start(std::vector<double>{1.5, 100, 200});
  CHECK(run.assign() == 6);
  CHECK(run.inertia() == doctest::Approx(167.5).epsilon(tol));  // 2.25+0.25+0.25+2.25+72.25+90.25
  run.update();
  CHECK(run.centroids() == std::vector<double>{4.5, 11, 10});
  // The next assignment uses all three: {0..3} around 4.5, {11}, {10}, so the inertia is
  // 4.5² + 3.5² + 2.5² + 1.5² + 0 + 0 = 20.25 + 12.25 + 6.25 + 2.25 = 41.
  run.assign();
  CHECK(run.labels() == std::vector<index>{0, 0, 0, 0, 2, 1});
  CHECK(run.inertia() == doctest::Approx(41.0).epsilon(tol));
  // Points all on centroids (1 on 1, 5 on 5) and an empty third cluster at 1: it stays at 1.
  const std::vector<double> y{1, 5, 1};
  detail::lloyd<double> still(view(y, 1), 3);
  still.start(std::vector<double>{1, 5, 1});
  still.assign();
  CHECK(still.labels() == std::vector<index>{0, 1, 0});  // the tie at 1 goes to centroid 0
  still.update();
  CHECK(still.centroids() == std::vector<double>{1, 5, 1});
}

TEST_CASE_TEMPLATE("kmeans recovers well-separated blobs; Jaccard 1 on two of them", T, float, double) {
  std::vector<index> blob_of;
  const auto xd = blobs(blob_of);
  const std::vector<T> x(xd.begin(), xd.end());
  const auto r = kmeans(view(x, 2), 3, {.seed = 1});
  // Each blob is one cluster, and the three clusters differ.
  index label_of_blob[3] = {r.labels[0], r.labels[1], r.labels[2]};
  for (std::size_t i = 0; i < blob_of.size(); ++i) CHECK(r.labels[i] == label_of_blob[blob_of[i]]);
  CHECK(label_of_blob[0] != label_of_blob[1]);
  CHECK(label_of_blob[1] != label_of_blob[2]);
  CHECK(label_of_blob[0] != label_of_blob[2]);
  // Centroids are the blob means, and the inertia their scatter, both recomputed here.
  double inertia = 0;
  for (index b = 0; b < 3; ++b) {
    double mean[2] = {0, 0};
    for (std::size_t i = 0; i < blob_of.size(); ++i)
      if (blob_of[i] == b)
        for (int f = 0; f < 2; ++f) mean[f] += static_cast<double>(x[2 * i + static_cast<std::size_t>(f)]) / 20;
    for (int f = 0; f < 2; ++f)
      CHECK(r.centroid(label_of_blob[b])[static_cast<std::size_t>(f)] == doctest::Approx(mean[f]).epsilon(1e-10));
    for (std::size_t i = 0; i < blob_of.size(); ++i)
      if (blob_of[i] == b)
        for (int f = 0; f < 2; ++f) {
          const double dev = static_cast<double>(x[2 * i + static_cast<std::size_t>(f)]) - mean[f];
          inertia += dev * dev;
        }
  }
  CHECK(r.inertia == doctest::Approx(inertia).epsilon(1e-10));

  // Two blobs, k = 2, scored against the true partition: Jaccard 1 for both groups.
  std::vector<T> two;
  std::vector<int> truth;
  for (std::size_t i = 0; i < blob_of.size(); ++i)
    if (blob_of[i] != 2) {
      two.push_back(x[2 * i]);
      two.push_back(x[2 * i + 1]);
      truth.push_back(blob_of[i] == 1 ? 1 : 0);
    }
  const auto r2 = kmeans(view(two, 2), 2);
  const auto j = jaccard_index(r2.labels, truth);
  CHECK(j.per_group[0] == 1.0);
  CHECK(j.per_group[1] == 1.0);
  CHECK(j.mean() == 1.0);
  CHECK(j.cluster_of_group[0] == r2.labels[0]);  // point 0 is in blob 0
}

TEST_CASE("k-means++ seeding draws with probability proportional to D²") {
  // Points 0, 1, 4 on a line, k = 2. The first centroid is uniform (1/3 each); the second is
  // drawn with probability D²/ΣD² given the first:
  //   first 0: D² = 0, 1, 16  ->  1 w.p. 1/17, 4 w.p. 16/17
  //   first 1: D² = 1, 0, 9   ->  0 w.p. 1/10, 4 w.p. 9/10
  //   first 4: D² = 16, 9, 0  ->  0 w.p. 16/25, 1 w.p. 9/25
  // so the ordered pairs have probabilities (0,1) 1/51, (0,4) 16/51, (1,0) 1/30, (1,4) 3/10,
  // (4,0) 16/75, (4,1) 3/25. 60000 draws: one standard deviation is at most
  // √(0.25/60000) ≈ 0.002, and 0.01 is 5 of them (the draws are seeded, so the test is fixed).
  const std::vector<double> x{0, 1, 4};
  detail::lloyd<double> run(view(x, 1), 2);
  xoshiro256ss rng(123);
  const int draws = 60000;
  double count[3][3] = {};
  auto slot = [](double v) { return v == 0 ? 0 : v == 1 ? 1 : 2; };
  for (int t = 0; t < draws; ++t) {
    run.seed(rng);
    count[slot(run.centroids()[0])][slot(run.centroids()[1])] += 1;
  }
  const double expected[3][3] = {{0, 1.0 / 51, 16.0 / 51}, {1.0 / 30, 0, 0.3}, {16.0 / 75, 3.0 / 25, 0}};
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) CHECK(std::abs(count[a][b] / draws - expected[a][b]) < 0.01);
}

TEST_CASE("kmeans: a point equally near two centroids joins the lower-numbered one") {
  // 3 is at squared distance 9 from both 0 and 6, whichever is numbered first.
  const double x = 3;
  const double zero_six[] = {0, 6}, six_zero[] = {6, 0}, three_ways[] = {6, 1, 0};
  CHECK(detail::nearest_centroid(&x, zero_six, 2, 1) == std::pair<index, double>{0, 9.0});
  CHECK(detail::nearest_centroid(&x, six_zero, 2, 1) == std::pair<index, double>{0, 9.0});
  CHECK(detail::nearest_centroid(&x, three_ways, 3, 1) == std::pair<index, double>{1, 4.0});
  // 2-d: (1, 1) is at squared distance 2 from (0, 0), (2, 2), (0, 2) and (2, 0).
  const double p[] = {1, 1}, corners[] = {2, 2, 0, 2, 0, 0, 2, 0};
  CHECK(detail::nearest_centroid(p, corners, 4, 2) == std::pair<index, double>{0, 2.0});
}

TEST_CASE("kmeans: among restarts of equal inertia the earliest wins") {
  // 0 0 0 6 6 6 3, k = 2: every restart ends at {0,0,0} | {3,6,6,6} or {0,0,0,3} | {6,6,6}, both
  // with inertia 3·0.75² + 2.25² = 6.75 exactly (0.75 and 5.25 are exact in binary), so the
  // first restart must be the one returned.
  const std::vector<double> x{0, 0, 0, 6, 6, 6, 3};
  for (std::uint64_t seed = 0; seed < 5; ++seed) {
    const auto r = kmeans(view(x, 1), 2, {.restarts = 10, .seed = seed});
    CHECK(r.inertia == 6.75);
    CHECK(r.restart == 0);
  }
}

TEST_CASE("kmeans output is consistent with itself: inertia, nearest centroids, cluster means") {
  const index n = 90, d = 3, k = 4;
  const auto x = uniform_points(n, d, 5);
  const auto r = kmeans(view(x, d), k, {.tolerance = 0, .seed = 2});
  REQUIRE(r.converged);  // tolerance 0: stopped because no label changed
  double inertia = 0;
  std::vector<std::vector<double>> sums(k, std::vector<double>(d, 0.0));
  std::vector<double> counts(k, 0);
  for (index i = 0; i < n; ++i) {
    const double* xi = x.data() + i * d;
    const index l = r.labels[static_cast<std::size_t>(i)];
    const double own = squared_distance(xi, r.centroid(l));
    inertia += own;
    for (index c = 0; c < k; ++c) CHECK(own <= squared_distance(xi, r.centroid(c)));  // nearest centroid
    counts[static_cast<std::size_t>(l)] += 1;
    for (index f = 0; f < d; ++f) sums[static_cast<std::size_t>(l)][static_cast<std::size_t>(f)] += xi[f];
  }
  CHECK(r.inertia == doctest::Approx(inertia).epsilon(1e-10));
  for (index c = 0; c < k; ++c) {
    REQUIRE(counts[static_cast<std::size_t>(c)] > 0);
    for (index f = 0; f < d; ++f)
      CHECK(r.centroid(c)[static_cast<std::size_t>(f)] ==
            doctest::Approx(sums[static_cast<std::size_t>(c)][static_cast<std::size_t>(f)] /
                            counts[static_cast<std::size_t>(c)])
                .epsilon(1e-10));
  }
}

TEST_CASE("kmeans with restarts finds the optimum of a small problem found by brute force") {
  // 12 points in 2-d, k = 2: try all 2^11 two-way partitions (point 0 fixed in part 0); the
  // optimum of a partition is its within-part scatter. Lloyd + k-means++ need not find the
  // optimum in general; with 10 restarts on 12 points it does here, and must never beat it.
  const index n = 12, d = 2;
  const auto x = uniform_points(n, d, 11);
  double best = std::numeric_limits<double>::infinity();
  for (std::uint32_t mask = 0; mask < (1u << (n - 1)); ++mask) {
    double scatter = 0;
    for (int part = 0; part < 2; ++part) {
      double mean[2] = {0, 0}, count = 0;
      for (index i = 0; i < n; ++i)
        if (((i > 0 && ((mask >> (i - 1)) & 1u)) ? 1 : 0) == part) {
          count += 1;
          for (index f = 0; f < d; ++f) mean[f] += x[static_cast<std::size_t>(i * d + f)];
        }
      if (count == 0) continue;
      for (index i = 0; i < n; ++i)
        if (((i > 0 && ((mask >> (i - 1)) & 1u)) ? 1 : 0) == part)
          for (index f = 0; f < d; ++f) {
            const double dev = x[static_cast<std::size_t>(i * d + f)] - mean[f] / count;
            scatter += dev * dev;
          }
    }
    best = std::min(best, scatter);
  }
  const auto r = kmeans(view(x, d), 2, {.restarts = 10, .seed = 4});
  CHECK(r.inertia >= best * (1 - 1e-12));
  CHECK(r.inertia == doctest::Approx(best).epsilon(1e-10));
}

TEST_CASE("kmeans is deterministic for a seed, and more restarts never raise the inertia") {
  const index n = 80, d = 4, k = 6;
  const auto x = uniform_points(n, d, 21);
  const auto a = kmeans(view(x, d), k, {.seed = 77});
  const auto b = kmeans(view(x, d), k, {.seed = 77});
  CHECK(a.labels == b.labels);
  CHECK(a.centroids == b.centroids);  // bit for bit
  CHECK(a.inertia == b.inertia);
  CHECK(a.restart == b.restart);
  CHECK(a.iterations == b.iterations);

  // Restarts 1..12 with one seed: the first r restarts are shared, the best is kept.
  double previous = std::numeric_limits<double>::infinity();
  double first = 0;
  for (index restarts = 1; restarts <= 12; ++restarts) {
    const auto r = kmeans(view(x, d), k, {.restarts = restarts, .seed = 3});
    CHECK(r.inertia <= previous);
    CHECK(r.restart < restarts);
    if (restarts == 1) first = r.inertia;
    previous = r.inertia;
  }
  // Random points in 4-d with k = 6 have several local optima: restarts do find a better one.
  CHECK(previous < first);
}

TEST_CASE("kmeans: float and double inputs, strided views and iteration caps") {
  const index n = 40, d = 3;
  const auto x = uniform_points(n, d, 8);
  const std::vector<float> xf(x.begin(), x.end());
  const std::vector<double> xfd(xf.begin(), xf.end());  // the float values, held as double
  const auto rf = kmeans(view(xf, d), 3, {.seed = 6});
  const auto rd = kmeans(view(xfd, d), 3, {.seed = 6});
  CHECK(rf.labels == rd.labels);
  // The same doubles and operations, but -march=native may contract a*b+c into an FMA differently
  // in the two instantiations: equal to rounding.
  CHECK(rf.inertia == doctest::Approx(rd.inertia).epsilon(1e-12));

  // The same points as columns 1..3 of a 5-column matrix (stride 5).
  std::vector<double> wide(static_cast<std::size_t>(n * 5), -99.0);
  for (index i = 0; i < n; ++i)
    for (index f = 0; f < d; ++f)
      wide[static_cast<std::size_t>(i * 5 + 1 + f)] = xfd[static_cast<std::size_t>(i * d + f)];
  const matrix_view<const double> strided(wide.data() + 1, n, d, 5);
  const auto rs = kmeans(strided, 3, {.seed = 6});
  CHECK(rs.labels == rd.labels);
  CHECK(rs.inertia == doctest::Approx(rd.inertia).epsilon(1e-12));

  const auto capped = kmeans(view(x, d), 5, {.restarts = 1, .max_iterations = 1, .tolerance = 0, .seed = 1});
  CHECK(capped.iterations == 1);
}

TEST_CASE("kmeans: bad input") {
  const std::vector<double> x{0, 1, 2, 3, 4, 5};  // 3 points × 2 features
  CHECK_THROWS_WITH_AS((void)kmeans(view(x, 2), 4), "kmeans: k = 4 clusters but only 3 points", invalid_argument);
  CHECK_THROWS_WITH_AS((void)kmeans(view(x, 2), 0), "kmeans: k = 0 clusters; k must be positive", invalid_argument);
  CHECK_THROWS_AS((void)kmeans(view(x, 2), -1), invalid_argument);
  CHECK_THROWS_WITH_AS((void)kmeans(matrix_view<const double>(x.data(), 0, 2), 1),
                       "kmeans: there are no points (0 rows)", invalid_argument);
  CHECK_THROWS_AS((void)kmeans(matrix_view<const double>(x.data(), 3, 0), 1), invalid_argument);
  CHECK_THROWS_AS((void)kmeans(view(x, 2), 2, {.restarts = 0}), invalid_argument);
  CHECK_THROWS_AS((void)kmeans(view(x, 2), 2, {.max_iterations = 0}), invalid_argument);
  CHECK_THROWS_AS((void)kmeans(view(x, 2), 2, {.tolerance = -1}), invalid_argument);
  CHECK_THROWS_AS((void)kmeans(view(x, 2), 2, {.tolerance = std::numeric_limits<double>::quiet_NaN()}),
                  invalid_argument);
  std::vector<float> bad{0, 1, 2, 3, 4, 5};
  bad[3] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH_AS((void)kmeans(view(bad, 2), 2), "kmeans: points(1, 1) = nan is not finite", numerical_error);
  bad[3] = -std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS((void)kmeans(view(bad, 2), 2), numerical_error);
}

TEST_CASE("jaccard_index: per-group values and the matching, by hand") {
  // truth    0 0 0 0 0 1 1 1      G0 = {0..4} (5), G1 = {5, 6, 7} (3)
  // clusters 0 0 0 1 1 0 1 1      A0 = {0, 1, 2, 5} (4), A1 = {3, 4, 6, 7} (4)
  // A0∩G0 = {0,1,2} 3, A0∩G1 = {5} 1, A1∩G0 = {3,4} 2, A1∩G1 = {6,7} 2
  // A0↔G0, A1↔G1: 3/(4+5−3) = 1/2 and 2/(4+3−2) = 2/5, sum 0.9
  // A1↔G0, A0↔G1: 2/(4+5−2) = 2/7 and 1/(4+3−1) = 1/6, sum 0.45  -> the first matching
  const std::vector<int> truth{0, 0, 0, 0, 0, 1, 1, 1};
  const std::vector<int> clusters{0, 0, 0, 1, 1, 0, 1, 1};
  const auto j = jaccard_index(clusters, truth);
  CHECK(j.per_group[0] == doctest::Approx(0.5).epsilon(tol));
  CHECK(j.per_group[1] == doctest::Approx(0.4).epsilon(tol));
  CHECK(j.mean() == doctest::Approx(0.45).epsilon(tol));
  CHECK(j.cluster_of_group == std::array<index, 2>{0, 1});
  // Renaming the clusters changes the matching, not the values.
  const std::vector<index> renamed{1, 1, 1, 0, 0, 1, 0, 0};
  const auto k = jaccard_index(renamed, truth);
  CHECK(k.per_group[0] == doctest::Approx(0.5).epsilon(tol));
  CHECK(k.per_group[1] == doctest::Approx(0.4).epsilon(tol));
  CHECK(k.cluster_of_group == std::array<index, 2>{1, 0});
  // bool truth (is_flipped) works the same.
  const std::vector<bool> flipped{false, false, false, false, false, true, true, true};
  CHECK(jaccard_index(clusters, flipped).per_group[1] == doctest::Approx(0.4).epsilon(tol));
}

TEST_CASE("jaccard_index: ties, one empty cluster, perfect and bad input") {
  // Independent of the truth: every matching gives 1/(2+2−1) = 1/3 per group; the tie keeps
  // cluster c on group c.
  const auto tie = jaccard_index(std::vector<int>{0, 1, 0, 1}, std::vector<int>{0, 0, 1, 1});
  CHECK(tie.per_group[0] == doctest::Approx(1.0 / 3.0).epsilon(tol));
  CHECK(tie.per_group[1] == doctest::Approx(1.0 / 3.0).epsilon(tol));
  CHECK(tie.cluster_of_group == std::array<index, 2>{0, 1});
  // One cluster holds everything: the group matched to it scores |G|/n = 2/4, the other 0/|G| = 0.
  const auto lump = jaccard_index(std::vector<int>{0, 0, 0, 0}, std::vector<int>{0, 0, 1, 1});
  CHECK(lump.per_group[0] == doctest::Approx(0.5).epsilon(tol));
  CHECK(lump.per_group[1] == 0.0);
  // Perfect, with the cluster names swapped.
  const auto perfect = jaccard_index(std::vector<int>{1, 1, 0}, std::vector<int>{0, 0, 1});
  CHECK(perfect.per_group == std::array<double, 2>{1.0, 1.0});
  CHECK(perfect.cluster_of_group == std::array<index, 2>{1, 0});

  CHECK_THROWS_WITH_AS((void)jaccard_index(std::vector<int>{0, 1}, std::vector<int>{0, 1, 1}),
                       "jaccard_index: clusters has 2 values but truth has 3", shape_error);
  CHECK_THROWS_AS((void)jaccard_index(std::vector<int>{}, std::vector<int>{}), invalid_argument);
  CHECK_THROWS_WITH_AS((void)jaccard_index(std::vector<int>{0, 2, 1}, std::vector<int>{0, 1, 1}),
                       "jaccard_index: clusters[1] = 2 is outside [0, 2)", invalid_argument);
  CHECK_THROWS_WITH_AS((void)jaccard_index(std::vector<int>{0, 1, 1}, std::vector<int>{0, 0, 0}),
                       "jaccard_index: truth has no sample in group 1, so it is not a partition into two groups",
                       invalid_argument);
}

} // namespace hydra::test
