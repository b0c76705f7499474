#pragma once
// Clustering for the paper's unsupervised mislabel detection ("Debugging Training Data"): the
// training samples of one class, each described by the signs of its contributions to validation
// points, are split in two by k-means, and the two clusters are scored against the true
// clean / flipped partition by the Jaccard index.
//
//   kmeans        - k-means++ seeding (Arthur & Vassilvitskii 2007), Lloyd iterations, several
//                   restarts keeping the lowest inertia; random draws from hydra's portable
//                   xoshiro256**, so a seed gives the same clusters on every machine.
//   jaccard_index - per-group Jaccard index of a 2-clustering against a true 2-partition, under
//                   the better of the two ways to match clusters to groups.

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <ranges>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/random.hpp"
#include "hydra/core/types.hpp"
#include "hydra/metrics/concepts.hpp"
#include "hydra/metrics/detail/checks.hpp"

namespace hydra {

/// Settings of kmeans(). The defaults are scikit-learn's KMeans defaults (n_init = 10,
/// max_iter = 300, tol = 1e-4).
struct kmeans_options {
  index restarts = 10;         // independent k-means++ seedings; the lowest inertia wins (>= 1)
  index max_iterations = 300;  // cap on Lloyd iterations per restart (>= 1)
  double tolerance = 1e-4;     // see kmeans(); 0 = stop only when no label changes (>= 0)
  std::uint64_t seed = 0;      // seeds the one generator all restarts draw from, in turn
};

/// What kmeans() found: the restart with the lowest inertia.
struct kmeans_result {
  std::vector<index> labels;      // n cluster labels in [0, k): labels[i] is the centroid nearest point i
  std::vector<double> centroids;  // k × d, row-major
  index clusters = 0;             // k
  index features = 0;             // d
  double inertia = 0;             // Σ_i ‖x_i − centroid(labels[i])‖², in the points' squared units
  index iterations = 0;           // Lloyd iterations of the winning restart
  bool converged = false;         // whether it stopped by the convergence test, not the cap
  index restart = 0;              // which restart won, 0-based

  [[nodiscard]] std::span<const double> centroid(index c) const {
    return std::span<const double>(centroids).subspan(static_cast<std::size_t>(c * features),
                                                      static_cast<std::size_t>(features));
  }
  [[nodiscard]] matrix_view<const double> centroids_view() const {
    return {centroids.data(), clusters, features, features};
  }
};

namespace detail {

template <Scalar T>
[[nodiscard]] double squared_distance(const T* x, const double* centroid, index d) noexcept {
  double s = 0;
  for (index f = 0; f < d; ++f) {
    const double diff = static_cast<double>(x[f]) - centroid[f];
    s += diff * diff;
  }
  return s;
}

/// The centroid (of k, row-major k × d) nearest x and its squared distance; the lowest index among
/// equally near centroids.
template <Scalar T>
[[nodiscard]] std::pair<index, double> nearest_centroid(const T* x, const double* centroids, index k,
                                                        index d) noexcept {
  index best = 0;
  double best_distance = squared_distance(x, centroids, d);
  for (index c = 1; c < k; ++c) {
    const double dc = squared_distance(x, centroids + c * d, d);
    if (dc < best_distance) {
      best = c;
      best_distance = dc;
    }
  }
  return {best, best_distance};
}

// One k-means run over the n × d points; the buffers live across restarts.
template <Scalar T>
class lloyd {
public:
  lloyd(matrix_view<const T> points, index k)
      : x_(points), k_(k), d_(points.cols), centroids_(static_cast<std::size_t>(k * d_)),
        labels_(static_cast<std::size_t>(points.rows)), distance_(static_cast<std::size_t>(points.rows)) {}

  /// k-means++: the first centroid is a uniformly drawn point; each next one is point i with
  /// probability D(i)² / Σ D², D(i) the distance to the nearest centroid chosen so far.
  void seed(xoshiro256ss& rng) {
    const index n = x_.rows;
    set_centroid(0, static_cast<index>(bounded(rng, static_cast<std::uint64_t>(n))));
    std::vector<double> nearest(static_cast<std::size_t>(n));
    for (index i = 0; i < n; ++i) nearest[u(i)] = squared_distance(x_.row(i), centroid(0), d_);
    for (index c = 1; c < k_; ++c) {
      double total = 0;
      for (const double v : nearest) total += v;
      index pick = -1;
      if (total > 0) {
        const double target = uniform01(rng) * total;
        double cumulative = 0;
        index last_positive = -1;
        for (index i = 0; i < n && pick < 0; ++i) {
          if (nearest[u(i)] <= 0) continue;  // a chosen point (or its duplicate) is never drawn again
          last_positive = i;
          cumulative += nearest[u(i)];
          if (cumulative > target) pick = i;
        }
        if (pick < 0) pick = last_positive;  // target rounded up to the total
      } else {
        // Fewer than k distinct points: every point already sits on a centroid; take any.
        pick = static_cast<index>(bounded(rng, static_cast<std::uint64_t>(n)));
      }
      set_centroid(c, pick);
      for (index i = 0; i < n; ++i)
        nearest[u(i)] = std::min(nearest[u(i)], squared_distance(x_.row(i), centroid(c), d_));
    }
    std::fill(labels_.begin(), labels_.end(), index{-1});
  }

  /// Starts from given k × d centroids instead (tests use it to set up empty clusters).
  void start(std::span<const double> centroids) {
    assert(centroids.size() == centroids_.size());
    std::copy(centroids.begin(), centroids.end(), centroids_.begin());
    std::fill(labels_.begin(), labels_.end(), index{-1});
  }

  /// Each point to its nearest centroid (the lowest index among equals); returns how many labels
  /// changed.
  index assign() {
    index changed = 0;
    for (index i = 0; i < x_.rows; ++i) {
      const auto [best, best_distance] = nearest_centroid(x_.row(i), centroids_.data(), k_, d_);
      if (labels_[u(i)] != best) ++changed;
      labels_[u(i)] = best;
      distance_[u(i)] = best_distance;
    }
    return changed;
  }

  /// Each centroid to the mean of its points; returns Σ_c ‖new − old‖². A cluster left empty takes
  /// the point farthest from its own centroid (each empty cluster a different point), so that all
  /// k clusters stay in use.
  double update() {
    const std::vector<double> old = centroids_;
    std::vector<index> counts(static_cast<std::size_t>(k_), 0);
    std::fill(centroids_.begin(), centroids_.end(), 0.0);
    for (index i = 0; i < x_.rows; ++i) {
      const index c = labels_[u(i)];
      ++counts[u(c)];
      double* sum = centroid(c);
      for (index f = 0; f < d_; ++f) sum[f] += static_cast<double>(x_.row(i)[f]);
    }
    for (index c = 0; c < k_; ++c) {
      if (counts[u(c)] > 0) {
        for (index f = 0; f < d_; ++f) centroid(c)[f] /= static_cast<double>(counts[u(c)]);
        continue;
      }
      const auto far = std::max_element(distance_.begin(), distance_.end());  // first of the largest
      if (*far > 0) {
        set_centroid(c, static_cast<index>(far - distance_.begin()));
        *far = 0;
      } else {  // every point sits on a centroid: nothing to gain, keep the old place
        std::copy_n(old.begin() + c * d_, d_, centroid(c));
      }
    }
    double shift = 0;
    for (std::size_t v = 0; v < old.size(); ++v) shift += (centroids_[v] - old[v]) * (centroids_[v] - old[v]);
    return shift;
  }

  [[nodiscard]] double inertia() const {
    double s = 0;
    for (const double v : distance_) s += v;
    return s;
  }
  [[nodiscard]] const std::vector<double>& centroids() const noexcept { return centroids_; }
  [[nodiscard]] const std::vector<index>& labels() const noexcept { return labels_; }

private:
  static std::size_t u(index i) noexcept { return static_cast<std::size_t>(i); }
  double* centroid(index c) noexcept { return centroids_.data() + c * d_; }
  void set_centroid(index c, index i) {
    for (index f = 0; f < d_; ++f) centroid(c)[f] = static_cast<double>(x_.row(i)[f]);
  }

  matrix_view<const T> x_;
  index k_, d_;
  std::vector<double> centroids_;
  std::vector<index> labels_;
  std::vector<double> distance_;  // squared distance of each point to its centroid, from assign()
};

template <Scalar T>
void check_kmeans_inputs(matrix_view<const T> points, index k, const kmeans_options& options) {
  if (k <= 0) throw invalid_argument("kmeans: k = " + std::to_string(k) + " clusters; k must be positive");
  if (points.rows <= 0) throw invalid_argument("kmeans: there are no points (0 rows)");
  if (points.cols <= 0) throw invalid_argument("kmeans: the points have no features (0 columns)");
  if (points.data == nullptr) throw invalid_argument("kmeans: the points view has no data (null pointer)");
  if (k > points.rows)
    throw invalid_argument("kmeans: k = " + std::to_string(k) + " clusters but only " + std::to_string(points.rows) +
                           " points");
  if (options.restarts < 1)
    throw invalid_argument("kmeans: restarts = " + std::to_string(options.restarts) + " must be at least 1");
  if (options.max_iterations < 1)
    throw invalid_argument("kmeans: max_iterations = " + std::to_string(options.max_iterations) +
                           " must be at least 1");
  if (!(options.tolerance >= 0) || !std::isfinite(options.tolerance))
    throw invalid_argument("kmeans: tolerance = " + format_value(options.tolerance) +
                           " must be finite and >= 0");
  for (index i = 0; i < points.rows; ++i)
    for (index f = 0; f < points.cols; ++f)
      if (!std::isfinite(points.row(i)[f]))
        throw numerical_error("kmeans: points(" + std::to_string(i) + ", " + std::to_string(f) +
                              ") = " + format_value(static_cast<double>(points.row(i)[f])) + " is not finite");
}

// scikit-learn's scale for the tolerance: the mean over features of the population variance.
template <Scalar T>
[[nodiscard]] double mean_feature_variance(matrix_view<const T> points) {
  const auto n = static_cast<double>(points.rows);
  double total = 0;
  for (index f = 0; f < points.cols; ++f) {
    double mean = 0, var = 0;
    for (index i = 0; i < points.rows; ++i) mean += static_cast<double>(points.row(i)[f]);
    mean /= n;
    for (index i = 0; i < points.rows; ++i) {
      const double dev = static_cast<double>(points.row(i)[f]) - mean;
      var += dev * dev;
    }
    total += var / n;
  }
  if (!std::isfinite(total))
    throw numerical_error("kmeans: the squared distances between the points overflow double precision");
  return total / static_cast<double>(points.cols);
}

template <Scalar T>
[[nodiscard]] kmeans_result kmeans(matrix_view<const T> points, index k, const kmeans_options& options) {
  check_kmeans_inputs(points, k, options);
  const double threshold = options.tolerance * mean_feature_variance(points);
  xoshiro256ss rng(options.seed);
  lloyd<T> run(points, k);
  kmeans_result best;
  for (index r = 0; r < options.restarts; ++r) {
    run.seed(rng);
    run.assign();
    index iterations = 0;
    bool converged = false;
    while (iterations < options.max_iterations) {
      ++iterations;
      const double shift = run.update();
      // No label changed: the centroids are the means of their clusters and stay there.
      if (run.assign() == 0 || shift <= threshold) {
        converged = true;
        break;
      }
    }
    const double inertia = run.inertia();
    if (r == 0 || inertia < best.inertia)  // ties keep the earlier restart
      best = {run.labels(), run.centroids(), k, points.cols, inertia, iterations, converged, r};
  }
  return best;
}

template <LabelRange C, LabelRange G>
[[nodiscard]] auto jaccard_counts(const C& clusters, const G& truth) {
  constexpr const char* fn = "jaccard_index";
  check_pair_sizes(fn, "clusters", std::ranges::size(clusters), "truth", std::ranges::size(truth));
  std::array<std::array<double, 2>, 2> both{};  // both[c][g] = |cluster c ∩ group g|
  for (std::size_t i = 0; i < std::ranges::size(clusters); ++i) {
    const index c = label_at(fn, "clusters", clusters, i, 2);
    const index g = label_at(fn, "truth", truth, i, 2);
    both[static_cast<std::size_t>(c)][static_cast<std::size_t>(g)] += 1;
  }
  for (std::size_t g = 0; g < 2; ++g)
    if (both[0][g] + both[1][g] == 0)
      throw invalid_argument(std::string(fn) + ": truth has no sample in group " + std::to_string(g) +
                             ", so it is not a partition into two groups");
  return both;
}

} // namespace detail

/// k-means of the n points (rows) × d features of a row-major host matrix, minimising the inertia
/// Σ_i ‖x_i − μ_{label(i)}‖².
///
/// Each of `options.restarts` restarts seeds k centroids by k-means++ and runs Lloyd iterations
/// (update every centroid to the mean of its points, then move every point to its nearest
/// centroid, ties to the lowest index) until no label changes, or until the centroids moved by
/// Σ_c ‖Δμ_c‖² <= tolerance × (mean over features of the points' variance) — scikit-learn's test —
/// or for max_iterations iterations. The restart with the lowest inertia is returned (the earliest
/// among equals). All restarts draw in turn from one generator seeded with `options.seed`, so the
/// first r restarts are the same whatever the number of restarts, and adding restarts never raises
/// the inertia. Accumulation is in double whatever T.
///
/// Throws invalid_argument for k <= 0, k > n, no points, no features, restarts < 1,
/// max_iterations < 1 or a tolerance that is negative or not finite; numerical_error for a NaN or
/// Inf feature (naming the row and column).
[[nodiscard]] inline kmeans_result kmeans(matrix_view<const float> points, index k,
                                          const kmeans_options& options = {}) {
  return detail::kmeans(points, k, options);
}
[[nodiscard]] inline kmeans_result kmeans(matrix_view<const double> points, index k,
                                          const kmeans_options& options = {}) {
  return detail::kmeans(points, k, options);
}

/// Jaccard index of a 2-clustering against a true 2-partition, for each true group.
struct jaccard_result {
  std::array<double, 2> per_group{};        // per_group[g] = |A ∩ G_g| / |A ∪ G_g|, A the cluster matched to G_g
  std::array<index, 2> cluster_of_group{};  // the cluster matched to each group: {0, 1} or {1, 0}

  /// The mean of the two groups' indices: what the matching maximises.
  [[nodiscard]] double mean() const noexcept { return 0.5 * (per_group[0] + per_group[1]); }
};

/// Jaccard index (intersection over union) between the clusters and the true groups: clusters[i]
/// and truth[i] are 0 or 1 (or bool). The clusters are matched one-to-one to the groups in the
/// way that maximises the sum of the two groups' indices (cluster c to group c on a tie), and
/// per_group[g] is |A ∩ G_g| / |A ∪ G_g| for G_g = {i : truth[i] = g} and A its matched cluster.
/// As in the paper's Table 4, the two groups' values are reported separately (for mislabel
/// detection with truth = is_flipped: group 0 = correct labels, group 1 = random labels). A
/// cluster may be empty; a true group may not.
///
/// Throws shape_error for different lengths, invalid_argument for empty input, a value other than
/// 0/1 (naming the array and index) or a true group with no sample.
template <LabelRange C, LabelRange G>
[[nodiscard]] jaccard_result jaccard_index(const C& clusters, const G& truth) {
  const auto both = detail::jaccard_counts(clusters, truth);
  // Cluster c matched to group g: |A_c ∩ G_g| = both[c][g], |A_c ∪ G_g| = |A_c| + |G_g| − both[c][g].
  const auto index_of = [&](std::size_t c, std::size_t g) {
    const double cluster = both[c][0] + both[c][1], group = both[0][g] + both[1][g];
    return both[c][g] / (cluster + group - both[c][g]);
  };
  const std::array<double, 2> same{index_of(0, 0), index_of(1, 1)};
  const std::array<double, 2> swapped{index_of(1, 0), index_of(0, 1)};
  if (swapped[0] + swapped[1] > same[0] + same[1]) return {swapped, {1, 0}};
  return {same, {0, 1}};
}

} // namespace hydra
