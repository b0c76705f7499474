// Clustering mislabelled data (docs/experiments.md; the paper's Table 4, "Debugging Training
// Data", second experiment):
//   1. round(r·N) training samples (r = 50 %) get a label drawn uniformly from the other nine
//      classes (common.hpp, noise_kind::uniform);
//   2. LeNet-5 is trained on the noisy set by the paper's recipe for 50 epochs, its trajectory
//      recorded;
//   3. every training sample i gets a feature vector of its contributions C(i, j) to M randomly
//      drawn VALIDATION points j (the paper: M = 1,000; C(i, j) > 0: sample i lowers loss j), by
//        HYDRA Hessian-free  C(i, j) = −(1/N)·u_j·∇_{T,i}, the adjoint sweep without the Hessian term,
//        HYDRA Exact         the same sweep with it (M Hessian-vector products per step),
//        influence functions C(i, j) = (1/N)·u_jᵀ(H + δI)⁻¹∇ℓ_i at w_T, H the Hessian of the
//                            training objective (mean loss + weight decay), u_j = ∇ℓ(val_j; w_T);
//      and the vector is discretised to its signs, +1 where C(i, j) > 0 and −1 elsewhere;
//   4. the training samples of each GIVEN (noisy) label are split in two by k-means (k = 2,
//      metrics/clustering.hpp: k-means++, 10 restarts, scikit-learn's defaults) and the two
//      clusters are scored by the Jaccard index against the true split into correctly and
//      wrongly labelled samples (jaccard_index: the clusters are matched to the groups the way
//      that maximises the sum of the two groups' indices; then |A ∩ G| / |A ∪ G| for each group G
//      and its cluster A, "correct labels" and "random labels" in the paper's columns);
//   5. each column is averaged over the ten classes. A random 2-split of each class is reported
//      beside them as the chance level.
// Also per method: the two principal components of each class's sign vectors (for a 2-D view),
// the share of positive contributions among clean and among flipped samples, and the sign
// disagreement of Hessian-free and influence functions with Exact.
//
// --device cuda runs training, the adjoint sweeps and the influence solve on the GPU (hydra::cuda;
// built from clustering.cu where CMake finds the CUDA toolkit); the contributions are copied back
// and k-means and the measures run on the host, as for --device cpu.

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "datasets.hpp"

namespace {

using namespace hydra;
using namespace hydra::paper;
using hydra::index;  // not ::index of <strings.h>
using T = float;
template <class B>
using Model = LeNet5<T, B>;
template <class B>
using Loss = SoftmaxCrossEntropy<T, B>;

struct options {
  std::string dataset = "fashion-mnist", data_dir;  // datasets.hpp: empty = the usual place
  std::string out = "results/clustering";
  std::string state_dir;
  std::string device = "cpu";
  std::uint64_t seed = 0;
  recipe rec{.epochs = 50};
  bool paper = false;
  index train_size = 1000, validation_size = 1000, test_size = 10000, points = 32;
  double noise = 0.5;
  // δ = 1: at the CPU default's w_T the training Hessian has eigenvalues below −0.1, and CG on
  // H + 0.01·I or H + 0.1·I stops on negative curvature with residuals above 1 (docs/experiments.md).
  influence_flags influence{.damping = 1, .cg_tolerance = 1e-2, .cg_max_iterations = 30, .lissa_batch = 32};
  index kmeans_restarts = 10;
  index view_class = 0;
  bool estimate_only = false;
};

/// The paper's protocol (Table 4; supplement: 50,000 / 10,000 / 10,000, 50 epochs, 1,000
/// validation points) and, for influence functions, its Monte-Carlo estimator (LiSSA, Eq. 21).
constexpr index paper_train = 50000, paper_validation = 10000, paper_test = 10000, paper_points = 1000,
                paper_epochs = 50;

enum method : int { hessian_free = 0, exact, influence_functions, random_split };
constexpr int method_count = 4;
constexpr const char* method_keys[method_count] = {"hydra_hessian_free", "hydra_exact", "influence", "random_split"};
constexpr const char* method_names[method_count] = {"HYDRA Hessian-free", "HYDRA Exact", "influence functions",
                                                    "random 2-split (chance)"};
/// Table 4 in %, Fashion-MNIST and MNIST: HYDRA (the paper's HYDRA is the Hessian-free
/// approximation) and influence functions; NaN where the paper has no row.
constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr std::array<std::array<double, 2>, method_count> paper_percent_fashion{
    {{78.06, 77.73}, {nan, nan}, {41.26, 33.22}, {nan, nan}}};
constexpr std::array<std::array<double, 2>, method_count> paper_percent_mnist{
    {{97.13, 97.16}, {nan, nan}, {71.89, 67.19}, {nan, nan}}};

double seconds_of(std::chrono::steady_clock::time_point start) { return seconds_since(start); }

/// An index (or a method number) as a container position.
constexpr std::size_t sz(std::integral auto i) noexcept { return static_cast<std::size_t>(i); }

/// A CSV whose first column is text (results::csv writes numbers only).
void text_csv(const results& out, const std::string& name, const std::vector<std::string>& header,
              const std::vector<std::pair<std::string, std::vector<double>>>& rows) {
  std::ofstream file(out.folder() / name);
  for (std::size_t c = 0; c < header.size(); ++c) file << (c ? "," : "") << header[c];
  file << '\n';
  for (const auto& [key, values] : rows) {
    if (values.size() + 1 != header.size())
      throw shape_error(name + ": a row of " + std::to_string(values.size() + 1) + " values for " +
                        std::to_string(header.size()) + " columns");
    file << key;
    for (const double v : values) file << ',' << (std::isfinite(v) ? fmt::format("{:.17g}", v) : std::string("nan"));
    file << '\n';
  }
  if (!file) throw io_error("writing " + (out.folder() / name).string() + " failed");
}

// ---- cost and memory, estimated before the run ----------------------------------------------------

struct estimate {
  double training = 0, hessian_free = 0, exact = 0, influence = 0, clustering = 0;
  [[nodiscard]] double total() const { return training + hessian_free + exact + influence + clustering; }
};

template <class B, class F>
double time_once(F&& f) {
  f();  // warm-up: workspaces are allocated on the first call
  B::synchronize();
  const auto start = std::chrono::steady_clock::now();
  f();
  B::synchronize();  // a device runs the call's kernels after it returns
  return seconds_of(start);
}

/// Times one step of each kind of work on one batch of the real data at the run's M, then scales
/// by the counts (steps, passes, directions): training steps, the Hessian-free sweep's couplings,
/// the Exact sweep's M Hessian-vector products, the inverse-HVP solve and the training gradients
/// of influence functions. HVP and gradient costs are taken as proportional to the samples.
template <class B>
estimate estimate_cost(Model<B>& model, Loss<B>& loss, const dataset<T>& train, const options& opt, index steps) {
  const index P = model.parameter_count(), M = opt.points, batch_size = std::min(opt.rec.batch_size, train.size());
  const index N = train.size();
  vector<T, B> w(P), g(P);
  model.initialize(w.view(), opt.seed);
  std::vector<index> first(sz(batch_size));
  std::iota(first.begin(), first.end(), index{0});
  device_batch<T, B> batch;
  batch.load(train, first);
  const auto wv = std::as_const(w).view();
  // Random directions, drawn on the host (device memory is not host-addressable) and uploaded.
  xoshiro256ss rng(opt.seed);
  const auto random_rows = [&](index rows) {
    std::vector<T> values(sz(rows * P));
    for (auto& value : values) value = static_cast<T>(uniform01(rng) - 0.5);
    return matrix<T, B>::from_host(values, rows, P);
  };

  const double step =
      time_once<B>([&] { (void)model.gradient(wv, batch.features(), batch.targets(), loss, g.view()); });
  // Exact: ⌈M / chunk⌉ HVP calls of at most `chunk` directions (the adjoint's workspace limit).
  const index chunk = std::min(M, hvp_directions_per_call(model, batch_size, adjoint_options{}.hvp_memory_bytes));
  const auto directions = random_rows(chunk);
  matrix<T, B> products(chunk, P), couplings(batch_size, chunk);
  const double hvp_chunk = time_once<B>([&] {
    model.hessian_vector_products(wv, batch.features(), batch.targets(), loss, directions.view(), products.view(),
                                  couplings.view());
  });
  const double hvp_all = hvp_chunk * static_cast<double>(M) / static_cast<double>(chunk);
  // Per-sample gradients and their products with M directions (influence functions' training
  // gradients; the Hessian-free sweep when M > batch).
  matrix<T, B> gradients(batch_size, P), product(batch_size, M);
  const auto many = random_rows(M);
  const double gradient_gemm = time_once<B>([&] {
    model.per_sample_gradients(wv, batch.features(), batch.targets(), loss, gradients.view());
    B::gemm(transpose::no, transpose::yes, T(1), std::as_const(gradients).view(), many.view(), T(0), product.view());
  });
  double hf_step = gradient_gemm;
  if (M <= batch_size)
    hf_step = time_once<B>([&] {
      model.directional_derivatives(wv, batch.features(), batch.targets(), loss, many.view(), product.view());
    });

  const auto n = [](index v) { return static_cast<double>(v); };
  estimate e;
  // Training: the steps, plus one forward pass (≈ 1/3 of a step's work) over the validation set
  // per epoch.
  e.training = n(steps) * step + n(opt.rec.epochs) * n(opt.validation_size) / n(batch_size) * step / 3;
  e.hessian_free = n(steps) * hf_step;
  e.exact = n(steps) * hvp_all;
  const double solve = opt.influence.ihvp == "cg"
                           ? n(opt.influence.cg_max_iterations) * n(N) / n(batch_size) * hvp_all
                           : (n(opt.influence.lissa_depth) * n(opt.influence.lissa_repeats) * n(opt.influence.lissa_batch) + n(N)) / n(batch_size) * hvp_all;
  e.influence = solve + n(N) / n(batch_size) * gradient_gemm;
  // k-means: restarts × about 20 Lloyd iterations × 2 centroids × N × M multiply-adds per method,
  // at an assumed 1 ns each.
  e.clustering = 3.0 * n(opt.kmeans_restarts) * 20 * 2 * n(N) * n(M) * 1e-9;
  return e;
}

/// Bytes the run holds at its peak (a bound: the phases' largest parts added up).
double memory_estimate(const options& opt, index P, index steps) {
  const double f = sizeof(T), N = static_cast<double>(opt.train_size), M = static_cast<double>(opt.points);
  const double hvp = static_cast<double>(adjoint_options{}.hvp_memory_bytes);
  const double data = (70000.0 + 2 * N + static_cast<double>(opt.validation_size + opt.test_size)) * 784 * f;
  const double trajectory = opt.state_dir.empty() ? static_cast<double>(steps) * static_cast<double>(P) * f : 0.0;
  const double directions = M * static_cast<double>(P) * f;
  const double contributions = 3 * N * M * f;
  const double sweep = 3 * directions + hvp + N * M * (8 + f);      // a, m, c; HVP workspace; the sums
  const double solve = 5 * directions + hvp + N * 784 * f + 1024.0 * static_cast<double>(P) * f;  // s_test + CG
  const double features = N * M * f;
  const double retained = hvp;  // the model keeps its HVP workspace from one phase to the next
  return data + trajectory + directions + contributions + std::max(sweep, solve) + features + retained;
}

// ---- the analysis of one method's contributions -----------------------------------------------------

/// The first two principal components of the rows of X (n × d): coordinates (n × 2) and the
/// share of the total variance each explains. Subspace iteration on the centred X, then a 2 × 2
/// Rayleigh-Ritz step so that component 1 explains the most.
struct principal_view {
  std::vector<double> coordinates;  // n × 2
  std::array<double, 2> explained{};
};

principal_view principal_components(const std::vector<float>& X, index n, index d, std::uint64_t seed) {
  const auto u = [](index i) { return sz(i); };
  std::vector<double> centred(u(n * d)), mean(u(d), 0.0);
  for (index i = 0; i < n; ++i)
    for (index f = 0; f < d; ++f) mean[u(f)] += X[u(i * d + f)] / static_cast<double>(n);
  double total = 0;
  for (index i = 0; i < n; ++i)
    for (index f = 0; f < d; ++f) {
      centred[u(i * d + f)] = X[u(i * d + f)] - mean[u(f)];
      total += centred[u(i * d + f)] * centred[u(i * d + f)];
    }
  principal_view out{std::vector<double>(u(n * 2), 0.0), {0.0, 0.0}};
  if (total <= 0 || d < 2) return out;
  // V: d × 2 (the two directions), Y: n × 2 (the points' coordinates along them).
  std::vector<double> V(u(d * 2)), Y(u(n * 2));
  const auto x = [&](index i, index f) { return centred[u(i * d + f)]; };
  const auto v = [&](index f, index c) -> double& { return V[u(f * 2 + c)]; };
  const auto y = [&](index i, index c) -> double& { return Y[u(i * 2 + c)]; };
  xoshiro256ss rng(seed);
  for (auto& value : V) value = uniform01(rng) - 0.5;
  const auto project = [&] {  // Y = centred · V
    std::fill(Y.begin(), Y.end(), 0.0);
    for (index i = 0; i < n; ++i)
      for (index f = 0; f < d; ++f)
        for (index c = 0; c < 2; ++c) y(i, c) += x(i, f) * v(f, c);
  };
  const auto orthonormalise = [&] {  // Gram-Schmidt on the two columns of V
    double dot = 0;
    for (index f = 0; f < d; ++f) dot += v(f, 0) * v(f, 1);
    double n0 = 0;
    for (index f = 0; f < d; ++f) n0 += v(f, 0) * v(f, 0);
    for (index f = 0; f < d; ++f) v(f, 1) -= n0 > 0 ? dot / n0 * v(f, 0) : 0.0;
    for (index c = 0; c < 2; ++c) {
      double norm = 0;
      for (index f = 0; f < d; ++f) norm += v(f, c) * v(f, c);
      norm = std::sqrt(norm);
      for (index f = 0; f < d; ++f) v(f, c) = norm > 0 ? v(f, c) / norm : 0.0;
    }
  };
  orthonormalise();
  for (int iteration = 0; iteration < 300; ++iteration) {
    project();
    std::fill(V.begin(), V.end(), 0.0);  // V = centredᵀ · Y
    for (index i = 0; i < n; ++i)
      for (index f = 0; f < d; ++f)
        for (index c = 0; c < 2; ++c) v(f, c) += x(i, f) * y(i, c);
    orthonormalise();
  }
  project();
  // Rayleigh-Ritz: diagonalise the 2 × 2 YᵀY and rotate the coordinates by its eigenvectors.
  double a = 0, b = 0, c = 0;
  for (index i = 0; i < n; ++i) {
    a += y(i, 0) * y(i, 0);
    b += y(i, 0) * y(i, 1);
    c += y(i, 1) * y(i, 1);
  }
  const double angle = 0.5 * std::atan2(2 * b, a - c), cs = std::cos(angle), sn = std::sin(angle);
  double first = 0, second = 0;
  for (index i = 0; i < n; ++i) {
    const double p0 = cs * y(i, 0) + sn * y(i, 1), p1 = -sn * y(i, 0) + cs * y(i, 1);
    out.coordinates[u(i * 2)] = p0;
    out.coordinates[u(i * 2 + 1)] = p1;
    first += p0 * p0;
    second += p1 * p1;
  }
  out.explained = {first / total, second / total};
  return out;
}

/// What one method gives: per class the Jaccard indices, and per sample the predicted group and
/// the 2-D view.
struct method_result {
  std::vector<std::array<double, 2>> per_class;  // [class] = {correct labels, random labels}
  std::vector<std::uint8_t> predicted_flipped;   // per training sample: its cluster is the one matched to the flipped
  std::vector<double> view;                      // N × 2: principal components within its class
  std::vector<std::array<double, 2>> explained;  // [class] = variance share of components 1 and 2
  double positive_clean = nan, positive_flipped = nan;  // share of C(i, j) > 0 among clean / flipped i
  index zeros = 0;                                      // entries exactly 0 (counted as −1)
  std::array<double, 2> mean{};
};

/// members[c]: the training samples whose given label is c.
method_result analyse(const std::vector<float>* contributions, index M, const noisy_labels<T>& noisy,
                      const std::vector<std::vector<index>>& members, const options& opt) {
  const index N = noisy.data.size(), K = static_cast<index>(members.size());
  method_result r;
  r.predicted_flipped.assign(sz(N), 0);
  r.view.assign(sz(N * 2), 0.0);
  if (contributions) {
    double positive[2] = {0, 0}, count[2] = {0, 0};
    for (index i = 0; i < N; ++i) {
      const int g = noisy.is_flipped[sz(i)];
      for (index j = 0; j < M; ++j) {
        const float v = (*contributions)[sz(i * M + j)];
        positive[g] += v > 0 ? 1.0 : 0.0;
        r.zeros += v == 0 ? 1 : 0;
      }
      count[g] += static_cast<double>(M);
    }
    r.positive_clean = positive[0] / count[0];
    r.positive_flipped = positive[1] / count[1];
  }
  xoshiro256ss coin(opt.seed ^ 0x72616e646f6d3221ULL);  // the random split's own stream
  for (index c = 0; c < K; ++c) {
    const auto& rows = members[sz(c)];
    const auto n = static_cast<index>(rows.size());
    std::vector<std::uint8_t> truth(rows.size());
    for (std::size_t k = 0; k < rows.size(); ++k) truth[k] = noisy.is_flipped[sz(rows[k])];
    std::vector<index> clusters(rows.size());
    std::array<double, 2> explained{nan, nan};
    if (contributions) {
      std::vector<float> X(sz(n * M));
      for (index k = 0; k < n; ++k)
        for (index j = 0; j < M; ++j)
          X[sz(k * M + j)] =
              (*contributions)[sz(rows[sz(k)] * M + j)] > 0 ? 1.0F : -1.0F;
      const auto found = kmeans(matrix_view<const float>(X.data(), n, M), 2,
                                {.restarts = opt.kmeans_restarts, .seed = opt.seed + static_cast<std::uint64_t>(c)});
      clusters = found.labels;
      const auto view = principal_components(X, n, M, opt.seed + static_cast<std::uint64_t>(c));
      for (index k = 0; k < n; ++k)
        for (index q = 0; q < 2; ++q)
          r.view[sz(rows[sz(k)] * 2 + q)] =
              view.coordinates[sz(k * 2 + q)];
      explained = view.explained;
    } else {
      for (auto& label : clusters) label = static_cast<index>(bounded(coin, 2));
    }
    const auto score = jaccard_index(clusters, truth);
    r.per_class.push_back(score.per_group);
    r.explained.push_back(explained);
    for (std::size_t k = 0; k < rows.size(); ++k)
      r.predicted_flipped[sz(rows[k])] = clusters[k] == score.cluster_of_group[1] ? 1 : 0;
  }
  for (const auto& v : r.per_class)
    for (int g = 0; g < 2; ++g) r.mean[sz(g)] += v[sz(g)] / static_cast<double>(K);
  return r;
}

/// C(i, j) = −(1/N)·u_j·∇_{T,i} for every training sample (N × M, row-major, host memory) by the
/// adjoint sweep.
template <HypergradientPolicy Policy, class B, class Trajectory>
std::vector<float> adjoint_contributions(Model<B>& model, Loss<B>& loss, const dataset<T>& train,
                                         const batch_order& order, Trajectory& trajectory,
                                         const matrix<T, B>& directions, const SGD<T, B>& optimizer) {
  const auto projections =
      adjoint_projections<Policy>(model, loss, train, order, trajectory, directions.view(), optimizer);
  return contributions_from_projections<B>(projections.view(), train.size()).to_host();
}

template <class B>
int run(const options& opt) {
  const auto start = std::chrono::steady_clock::now();
  if (!(opt.noise > 0 && opt.noise < 1))
    throw invalid_argument(
        "--noise must be in (0, 1) for clustering (with no wrong labels there is nothing to find), got " +
                           fmt::format("{}", opt.noise));
  if (opt.points < 2)
    throw invalid_argument("--validation-points must be at least 2, got " + std::to_string(opt.points));
  if (opt.points > opt.validation_size)
    throw invalid_argument("--validation-points " + std::to_string(opt.points) + " exceeds the validation set (" +
                           std::to_string(opt.validation_size) + ", --validation-size)");
  if (opt.view_class < 0 || opt.view_class > 9)
    throw invalid_argument("--view-class must be a class in [0, 9], got " + std::to_string(opt.view_class));
  if (opt.influence.ihvp != "cg" && opt.influence.ihvp != "lissa")
    throw invalid_argument("--ihvp must be cg or lissa, got '" + opt.influence.ihvp + "'");
  check_influence_flags(opt.influence, opt.influence.ihvp == "lissa");
  if (opt.paper && opt.dataset != "fashion-mnist")
    throw invalid_argument("--paper runs the paper's Fashion-MNIST protocol; --dataset mnist has 5,000 digits");
  auto data = load_dataset<T>(opt.dataset, opt.data_dir, opt.train_size, opt.validation_size, opt.test_size);
  const auto noisy = with_wrong_labels(data.train, opt.noise, noise_kind::uniform, opt.seed);
  const index N = noisy.data.size(), K = noisy.data.num_classes(), M = opt.points;
  std::vector<std::vector<index>> members(sz(K));
  for (index i = 0; i < N; ++i) members[sz(noisy.data.label(i))].push_back(i);
  for (index c = 0; c < K; ++c) {
    const auto& rows = members[sz(c)];
    const auto flipped = std::count_if(rows.begin(), rows.end(),
                                       [&](index i) { return noisy.is_flipped[sz(i)] != 0; });
    if (rows.size() < 2 || flipped == 0 || flipped == static_cast<std::ptrdiff_t>(rows.size()))
      throw invalid_argument(fmt::format("given class {} has {} training samples, {} of them wrongly labelled: each "
                                         "class needs both groups to cluster; raise --train-size",
                                         c, rows.size(), flipped));
  }
  // The M validation points: drawn without replacement by a generator seeded from --seed.
  std::vector<index> points(sz(data.validation.size()));
  std::iota(points.begin(), points.end(), index{0});
  xoshiro256ss draw(opt.seed ^ 0x76616c6964617465ULL);
  shuffle(std::span<index>(points), draw);
  points.resize(sz(M));
  std::sort(points.begin(), points.end());
  const auto validation_points = subset(data.validation, std::span<const index>(points));

  Model<B> model;
  Loss<B> loss;
  const index P = model.parameter_count();
  const auto order = batch_order::shuffled(N, opt.rec.batch_size, opt.rec.epochs, opt.seed);
  const index steps = order.steps();
  fmt::print("Clustering mislabelled data (Table 4): LeNet-5 ({} parameters); {} training samples, {} ({:.0f}%) "
             "given a uniformly drawn wrong label; {} epochs = {} steps of {}; features: signs of C(i, j) to M = {} "
             "random validation points of {}\n",
             P, N, noisy.flipped.size(), 100 * opt.noise, opt.rec.epochs, steps, opt.rec.batch_size, M,
             data.validation.size());
  constexpr bool on_cpu = std::is_same_v<B, cpu>;
  if (!opt.paper)
    fmt::print("scaled run on the {} (the paper: {} training samples, {} validation points, {} epochs; --paper "
               "runs that): the Exact sweep costs M Hessian-vector products per step\n",
               compute_place<B>(), paper_train, paper_points, paper_epochs);

  const double bytes = memory_estimate(opt, P, steps);
  const double trajectory_gib =
      opt.state_dir.empty() ? static_cast<double>(steps) * static_cast<double>(P) * sizeof(T) / 1073741824.0 : 0.0;
  const auto cost = estimate_cost(model, loss, noisy.data, opt, steps);
  fmt::print("estimate before starting ({}, from one timed step of each kind): memory {:.2f} GiB "
             "(trajectory {:.2f} GiB{}); time {:.0f} s = training {:.0f} + Hessian-free {:.0f} + Exact {:.0f} + "
             "influence functions {:.0f} + k-means {:.0f} ({:.1f} h)\n",
             on_cpu ? "one core" : compute_place<B>(), bytes / 1073741824.0,
             trajectory_gib,
             opt.state_dir.empty() ? "" : ", in a mapped file in " + opt.state_dir, cost.total(), cost.training,
             cost.hessian_free, cost.exact, cost.influence, cost.clustering, cost.total() / 3600);
  std::fflush(stdout);
  check_memory<B>(bytes, "this clustering run");
  if (opt.estimate_only) return 0;
  results out(opt.out, "clustering");

  // ---- train on the noisy labels, recording the trajectory ----
  vector<T, B> w(P);
  model.initialize(w.view(), opt.seed);
  SGD<T, B> optimizer(P, sgd_of(opt.rec));
  auto trajectory = [&] {
    // A mapped file is host memory: main() refuses --state-dir for a device.
    if constexpr (B::host_accessible)
      if (!opt.state_dir.empty()) return trajectory_recorder<T, B>(steps, P, opt.state_dir);
    return trajectory_recorder<T, B>();
  }();
  auto phase = std::chrono::steady_clock::now();
  const auto history =
      paper::train(model, loss, optimizer, opt.rec, w.view(), noisy.data, data.validation, order, "train", trajectory);
  const double training_seconds = seconds_of(phase);
  const auto wv = std::as_const(w).view();
  plateau_schedule unused(opt.rec.learning_rate, opt.rec.plateau_factor, opt.rec.plateau_patience);
  trainer evaluator(model, loss, optimizer, unused, {.progress = progress_mode::never});
  const auto on_given = evaluator.evaluate(wv, noisy.data), on_true = evaluator.evaluate(wv, data.train),
             on_test = evaluator.evaluate(wv, data.test);
  const auto on_flipped = evaluator.evaluate(wv, subset(noisy.data, std::span<const index>(noisy.flipped)));
  fmt::print("trained in {:.1f} s: training accuracy {:.2f}% on the given labels (the wrongly labelled samples: "
             "{:.2f}% predicted as their wrong label), {:.2f}% on the true labels; test accuracy {:.2f}%\n",
             training_seconds, 100 * on_given.accuracy, 100 * on_flipped.accuracy, 100 * on_true.accuracy,
             100 * on_test.accuracy);
  {
    std::vector<std::vector<double>> rows;
    for (const auto& r : history)
      rows.push_back({static_cast<double>(r.epoch + 1), r.learning_rate, r.training_loss, r.validation_loss,
                      r.validation_accuracy});
    out.csv("training.csv", {"epoch", "learning_rate", "training_loss", "validation_loss", "validation_accuracy"},
            rows);
    // The row is named: nvcc's front end garbles a nested braced list ({{...}}) as an argument here.
    const std::vector<double> accuracy{on_given.accuracy, on_flipped.accuracy, on_true.accuracy, on_test.accuracy};
    out.csv("accuracy.csv", {"given_labels", "wrong_labels_of_flipped", "true_labels", "test"}, {accuracy});
  }

  // ---- the M directions u_j = ∇ℓ(val_j; w_T) ----
  const auto U = per_sample_gradients(model, loss, wv, validation_points);
  std::array<std::vector<float>, 3> C;
  std::array<double, 3> seconds{};

  phase = std::chrono::steady_clock::now();
  C[hessian_free] = adjoint_contributions<HessianFree>(model, loss, noisy.data, order, trajectory, U, optimizer);
  seconds[hessian_free] = seconds_of(phase);
  fmt::print("HYDRA Hessian-free: adjoint sweep over {} steps with M = {} directions, {:.1f} s (estimated {:.0f})\n",
             steps, M, seconds[hessian_free], cost.hessian_free);
  std::fflush(stdout);

  // Influence functions before Exact: it is the cheaper of the two at the paper's scale, so a
  // solver that fails (LiSSA's scale too small) fails early.
  phase = std::chrono::steady_clock::now();
  ihvp_options ihvp;
  std::string solver;
  {
    training_objective objective(model, loss, noisy.data, wv, static_cast<T>(opt.rec.weight_decay));
    ihvp = ihvp_of(opt.influence, parse_ihvp_method(opt.influence.ihvp), opt.influence.damping, opt.seed);
    auto solved = compute_s_test(model, loss, wv, validation_points, objective, ihvp);
    std::vector<std::vector<double>> rows;
    const auto median = [](std::vector<double> v) {
      std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
      return v[v.size() / 2];
    };
    if (const auto* cg = std::get_if<cg_report>(&solved.report)) {
      index converged = 0, indefinite = 0;
      for (std::size_t j = 0; j < cg->status.size(); ++j) {
        converged += cg->status[j] == cg_status::converged;
        indefinite += cg->status[j] == cg_status::not_positive_definite;
        rows.push_back({static_cast<double>(j), static_cast<double>(cg->iterations[j]), cg->relative_residuals[j],
                        static_cast<double>(static_cast<int>(cg->status[j]))});
      }
      solver = fmt::format("CG on (H + {}·I), tolerance {}, at most {} iterations: {} of {} directions converged, {} "
                           "stopped on non-positive curvature; relative residual median {:.3g}, max {:.3g}; {} "
                           "whole-training-set HVP passes",
                           opt.influence.damping, opt.influence.cg_tolerance, opt.influence.cg_max_iterations, converged, M, indefinite,
                           median(cg->relative_residuals), cg->max_relative_residual(), cg->hvp_passes);
      out.csv("influence_solver.csv", {"direction", "iterations", "relative_residual", "status"}, rows);
    } else {
      const auto& lissa = std::get<lissa_report>(solved.report);
      for (std::size_t j = 0; j < lissa.relative_residuals.size(); ++j)
        rows.push_back({static_cast<double>(j), static_cast<double>(lissa.depth), lissa.relative_residuals[j],
                        lissa.final_relative_change[j]});
      solver = fmt::format("LiSSA on (H + {}·I): scale {}, recursion damping {}, depth {}, {} repeat(s), batches of "
                           "{}; relative residual median {:.3g}, max {:.3g}",
                           lissa.effective_damping, opt.influence.lissa_scale, opt.influence.damping / opt.influence.lissa_scale, lissa.depth,
                           lissa.repeats, opt.influence.lissa_batch, median(lissa.relative_residuals),
                           *std::max_element(lissa.relative_residuals.begin(), lissa.relative_residuals.end()));
      out.csv("influence_solver.csv", {"direction", "depth", "relative_residual", "final_relative_change"}, rows);
    }
    // The training gradients in chunks (N × |w| at once would be 12 GB at the paper's scale).
    C[influence_functions].assign(sz(N * M), 0.0F);
    matrix<T, B> part;
    constexpr index chunk = 1024;
    for (index first = 0; first < N; first += chunk) {
      const index count = std::min(chunk, N - first);
      const auto G = per_sample_gradients(model, loss, wv, split(noisy.data, first, count));
      part.resize(count, M);
      influence_contributions<B>(G.view(), std::as_const(solved.s_test).view(), N, part.view());
      B::copy_to_host(std::as_const(part).view().data, count * M, C[influence_functions].data() + first * M);
    }
  }
  seconds[influence_functions] = seconds_of(phase);
  fmt::print("influence functions: {}; {:.1f} s (estimated {:.0f})\n", solver, seconds[influence_functions],
             cost.influence);
  std::fflush(stdout);

  phase = std::chrono::steady_clock::now();
  C[exact] = adjoint_contributions<Exact>(model, loss, noisy.data, order, trajectory, U, optimizer);
  seconds[exact] = seconds_of(phase);
  fmt::print("HYDRA Exact: adjoint sweep over {} steps with M = {} directions ({} Hessian-vector products), {:.1f} s "
             "(estimated {:.0f})\n",
             steps, M, steps * M, seconds[exact], cost.exact);
  std::fflush(stdout);

  // ---- cluster each given class ----
  phase = std::chrono::steady_clock::now();
  std::array<method_result, method_count> found;
  for (int m = 0; m < method_count; ++m)
    found[sz(m)] = analyse(m == random_split ? nullptr : &C[sz(m)], M, noisy,
                                                  members, opt);
  const double clustering_seconds = seconds_of(phase);
  const double sign_error_hf =
      sign_error_rate(std::span<const float>(C[hessian_free]), std::span<const float>(C[exact]));
  const double sign_error_if =
      sign_error_rate(std::span<const float>(C[influence_functions]), std::span<const float>(C[exact]));

  fmt::print("\nJaccard index per given class (correct labels / random labels), k-means k = 2 on the sign vectors:\n");
  fmt::print("{:<12} {:>5} {:>5}", "class", "n", "wrong");
  for (int m = 0; m < method_count; ++m) fmt::print("  {:>21}", method_keys[m]);
  fmt::print("\n");
  std::vector<std::vector<double>> per_class_rows;
  for (index c = 0; c < K; ++c) {
    const auto& rows = members[sz(c)];
    const auto flipped = std::count_if(rows.begin(), rows.end(),
                                       [&](index i) { return noisy.is_flipped[sz(i)] != 0; });
    fmt::print("{:<12} {:>5} {:>5}", class_names_of(opt.dataset)[sz(c)], rows.size(), flipped);
    std::vector<double> row{static_cast<double>(c), static_cast<double>(rows.size()), static_cast<double>(flipped)};
    for (int m = 0; m < method_count; ++m) {
      const auto& v = found[sz(m)].per_class[sz(c)];
      fmt::print("  {:>9.2f}% / {:>7.2f}%", 100 * v[0], 100 * v[1]);
      row.push_back(v[0]);
      row.push_back(v[1]);
    }
    fmt::print("\n");
    per_class_rows.push_back(row);
  }
  std::vector<std::string> header{"class", "samples", "wrongly_labelled"};
  for (const auto* key : method_keys) {
    header.push_back(std::string(key) + "_correct");
    header.push_back(std::string(key) + "_random");
  }
  out.csv("jaccard_per_class.csv", header, per_class_rows);

  fmt::print("\nTable 4, {}: mean Jaccard index over the {} classes (correct labels / random labels)\n",
             display_name(opt.dataset), K);
  std::vector<std::pair<std::string, std::vector<double>>> summary;
  const std::array<double, method_count> sign_error{sign_error_hf, 0.0, sign_error_if, nan};
  const std::array<double, method_count> method_seconds{seconds[hessian_free], seconds[exact],
                                                        seconds[influence_functions], nan};
  for (int m = 0; m < method_count; ++m) {
    const auto& r = found[sz(m)];
    const auto& paper_row = (opt.dataset == "mnist" ? paper_percent_mnist : paper_percent_fashion)[sz(m)];
    fmt::print("  {:<24} hydra {:6.2f}% / {:6.2f}%   paper {}", method_names[m], 100 * r.mean[0], 100 * r.mean[1],
               std::isnan(paper_row[0]) ? std::string("(no row)")
                                        : fmt::format("{:.2f}% / {:.2f}%", paper_row[0], paper_row[1]));
    if (m != random_split)
      fmt::print("   positive C(i, j): {:.1f}% of clean, {:.1f}% of flipped entries; sign error vs Exact {:.4f}",
                 100 * r.positive_clean, 100 * r.positive_flipped, sign_error[sz(m)]);
    if (r.zeros > 0) fmt::print("; {} entries exactly 0 (counted as −1)", r.zeros);
    fmt::print("\n");
    summary.push_back({method_keys[m],
                       {r.mean[0], r.mean[1], paper_row[0] / 100, paper_row[1] / 100, r.positive_clean,
                        r.positive_flipped, sign_error[sz(m)], static_cast<double>(r.zeros),
                        method_seconds[sz(m)]}});
  }
  text_csv(out, "table4.csv",
           {"method", "correct_labels", "random_labels", "paper_correct_labels", "paper_random_labels",
            "positive_share_clean", "positive_share_flipped", "sign_error_vs_exact", "zero_entries", "seconds"},
           summary);
  fmt::print("(chance: a random half/half split of a half/half class scores 1/3 per group, a little more after taking "
             "the better of the two matchings)\n");

  {
    std::vector<std::vector<double>> rows;
    for (index c = 0; c < K; ++c) {
      std::vector<double> row{static_cast<double>(c)};
      for (int m = 0; m < 3; ++m)
        for (int q = 0; q < 2; ++q)
          row.push_back(found[sz(m)].explained[sz(c)][sz(q)]);
      rows.push_back(row);
    }
    out.csv("principal_variance.csv",
            {"class", "hydra_hessian_free_pc1", "hydra_hessian_free_pc2", "hydra_exact_pc1", "hydra_exact_pc2",
             "influence_pc1", "influence_pc2"},
            rows);
  }
  for (int m = 0; m < 3; ++m) {
    const std::string key = method_keys[m];
    out.npy("contributions_" + key + ".npy", C[sz(m)], {N, M});
    out.npy("view_" + key + ".npy", found[sz(m)].view, {N, 2});
  }
  for (int m = 0; m < method_count; ++m)
    out.npy(std::string("predicted_flipped_") + method_keys[m] + ".npy",
            found[sz(m)].predicted_flipped, {N});
  out.npy("is_flipped.npy", noisy.is_flipped, {N});
  std::vector<std::int32_t> given(noisy.data.labels().begin(), noisy.data.labels().end()),
      truth(data.train.labels().begin(), data.train.labels().end());
  out.npy("given_labels.npy", given, {N});
  out.npy("true_labels.npy", truth, {N});
  std::vector<std::int64_t> point_indices(points.begin(), points.end());
  out.npy("validation_points.npy", point_indices, {M});
  text_csv(out, "timing.csv", {"phase", "estimated_seconds", "measured_seconds"},
           {{"training", {cost.training, training_seconds}},
            {"hydra_hessian_free", {cost.hessian_free, seconds[hessian_free]}},
            {"hydra_exact", {cost.exact, seconds[exact]}},
            {"influence", {cost.influence, seconds[influence_functions]}},
            {"clustering", {cost.clustering, clustering_seconds}}});

  out.set("dataset", opt.dataset);
  out.set("paper_protocol", opt.paper);
  out.set("scaled", !opt.paper);
  out.set("scaling", opt.paper ? std::string("none: the paper's protocol")
                               : fmt::format("{} training samples (paper {}), {} validation points M (paper {}), {} "
                                             "epochs (paper {}), validation set {} (paper {}), test set {} (paper {})",
                                             N, paper_train, M, paper_points, opt.rec.epochs, paper_epochs,
                                             opt.validation_size, paper_validation, opt.test_size, paper_test));
  out.set("model", std::string("LeNet-5 (61,706 parameters, ReLU), float32, ") + compute_place<B>());
  out.set("device", opt.device);
  out.set("train_size", N);
  out.set("validation_size", opt.validation_size);
  out.set("test_size", opt.test_size);
  out.set("validation_points", M);
  out.set("noise_rate", opt.noise);
  out.set("noise_kind", std::string("uniform: each chosen sample's label drawn uniformly from the other 9 classes"));
  out.set("wrongly_labelled", static_cast<double>(noisy.flipped.size()));
  out.set("epochs", opt.rec.epochs);
  out.set("steps", steps);
  out.set("batch_size", opt.rec.batch_size);
  out.set("learning_rate", opt.rec.learning_rate);
  out.set("plateau_factor", opt.rec.plateau_factor);
  out.set("plateau_patience", opt.rec.plateau_patience);
  out.set("momentum", opt.rec.momentum);
  out.set("weight_decay", opt.rec.weight_decay);
  out.set("seed", static_cast<double>(opt.seed));
  out.set("features", std::string("sign of C(i, j) per validation point j: +1 where C(i, j) > 0, -1 elsewhere"));
  out.set("kmeans", fmt::format("hydra::kmeans, k = 2, k-means++ seeding, {} restarts, at most 300 Lloyd iterations, "
                                "tolerance 1e-4 (scikit-learn's defaults), seed = --seed + class",
                                opt.kmeans_restarts));
  out.set("jaccard", std::string("hydra::jaccard_index per given class against the true split (clean, flipped): the "
                                 "clusters matched to the groups to maximise the sum of the two indices; "
                                 "correct_labels = |A ∩ clean| / |A ∪ clean| for the cluster A matched to the clean "
                                 "group, random_labels the same for the flipped group; then the mean over classes"));
  out.set("influence_solver", solver);
  record_influence_flags(out, opt.influence);
  out.set("view_class", opt.view_class);
  out.set("trajectory", opt.state_dir.empty() ? std::string("every step in memory")
                                              : "every step in a mapped file in " + opt.state_dir);
  out.set("memory_estimate_bytes", bytes);
  out.set("time_estimate_seconds", cost.total());
  out.set("test_accuracy", on_test.accuracy);
  for (int m = 0; m < method_count; ++m) {
    out.set(std::string(method_keys[m]) + "_correct_labels", found[sz(m)].mean[0]);
    out.set(std::string(method_keys[m]) + "_random_labels", found[sz(m)].mean[1]);
  }
  out.set("paper_values", std::string(opt.dataset == "mnist"
                                          ? "Table 4, MNIST: HYDRA 97.13% / 97.16%, influence functions 71.89% / "
                                            "67.19% (correct labels / random labels)"
                                          : "Table 4, Fashion-MNIST: HYDRA 78.06% / 77.73%, influence functions "
                                            "41.26% / 33.22% (correct labels / random labels)"));
  fmt::print("total {:.1f} s (estimated {:.0f} s); peak resident memory {:.2f} GiB (estimated {:.2f} GiB)\n",
             seconds_of(start), cost.total(), peak_resident_gib(), bytes / 1073741824.0);
  out.finish(data.provenance);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  options opt;
  CLI::App app{"The paper's Table 4: k-means on the signs of training samples' contributions to validation points "
               "separates correctly from wrongly labelled samples (Jaccard index), for HYDRA Hessian-free, HYDRA "
               "Exact and influence functions"};
  add_dataset_options(app, opt.dataset, opt.data_dir);
  app.add_option("--out", opt.out, "results folder")->capture_default_str();
  app.add_option("--seed", opt.seed, "seed of the noise, initialisation, batch order, validation points and k-means")
      ->capture_default_str();
  add_recipe_options(app, opt.rec);
  app.add_option("--train-size", opt.train_size, "training images (the first of the paper's 50,000)")
      ->capture_default_str();
  app.add_option("--validation-size", opt.validation_size, "validation images (the first of the paper's 10,000)")
      ->capture_default_str();
  app.add_option("--test-size", opt.test_size, "test images (for the test accuracy only)")->capture_default_str();
  app.add_option("--validation-points", opt.points, "M: validation points drawn at random, one feature each")
      ->capture_default_str();
  app.add_option("--noise", opt.noise, "share of the training set given a wrong label, in (0, 1)")
      ->capture_default_str();
  add_influence_options(app, opt.influence);
  add_device_option(app, opt.device);
  app.add_option("--kmeans-restarts", opt.kmeans_restarts, "k-means++ restarts per class (scikit-learn: 10)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--view-class", opt.view_class, "the given class whose 2-D view the figure shows")
      ->capture_default_str();
  app.add_option("--state-dir", opt.state_dir,
                 "keep the recorded trajectory in a mapped scratch file in this folder instead of memory");
  app.add_flag("--estimate-only", opt.estimate_only,
               "print the memory and time estimate (from one timed step of each kind) and stop");
  app.add_flag("--paper", opt.paper,
               "the paper's protocol: 50,000/10,000/10,000, 50 epochs, M = 1,000 validation points, influence "
               "functions by LiSSA (Eq. 21); flags given explicitly still apply (M = 1,000 Hessian-vector products per "
               "step of the Exact sweep: use --device cuda)");
  return run_main("paper_clustering", app, argc, argv, [&] {
    if (opt.paper) {
      const auto unless_given = [&](const char* flag, auto& value, auto paper_value) {
        if (app.count(flag) == 0) value = paper_value;
      };
      unless_given("--train-size", opt.train_size, paper_train);
      unless_given("--validation-size", opt.validation_size, paper_validation);
      unless_given("--test-size", opt.test_size, paper_test);
      unless_given("--validation-points", opt.points, paper_points);
      unless_given("--epochs", opt.rec.epochs, paper_epochs);
      unless_given("--ihvp", opt.influence.ihvp, std::string("lissa"));
    }
    if (opt.device != "cpu" && !opt.state_dir.empty())
      throw invalid_argument("--state-dir keeps the trajectory in a mapped file of host memory, which --device " +
                             opt.device + " cannot use: leave --state-dir out (the trajectory stays in GPU memory)");
    return on_device(opt.device, [&]<class B>() { return run<B>(opt); });
  });
}
