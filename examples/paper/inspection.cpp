// The paper's "Manual Inspection" experiment (main text: the mean and standard deviation of all
// contributions, Table 2 and Figure 2; supplement Tables 1–2) on the real Fashion-MNIST (or real
// MNIST digits with --dataset mnist), with
// LeNet-5 trained by the paper's recipe (supplement Table 3):
//
//  1. C(i) of EVERY training sample on the mean test loss, exactly: one adjoint sweep
//     (hypergradient/adjoint.hpp) along the recorded trajectory with M = 11 directions at w_T —
//     the gradient of the mean test loss and of each test class's mean loss — and the same sweep
//     Hessian-free (the paper's approximation). C(i) = −(1/N)·u·∇_{T,i}; positive = helpful.
//  2. The inter-class matrix (Eq. 23): C(i, class b) = mean over the test points j of class b of
//     C(i, j) is the projection onto class b's mean-loss gradient, so the matrix is
//     inter_class_contribution() of those N × 10 values (one "test point" per class), normalised
//     by √(row sum × column sum) where that is defined.
//  3. The most helpful and most harmful training samples by exact C(i), and for each the test
//     points it influences most (largest |C(i, j)|): training is replayed (deterministic: same
//     initialisation, batch order and schedule) with a forward hypergradient tracker on just those
//     samples, and test_contributions() gives C(i, j) for every test point j.
//
// Built-in checks (exit 1 when one fails): the mean-loss column equals the class columns weighted
// by the classes' shares of the test set (the loss is linear in them); the replay ends at the same
// w_T bit for bit; the tracker's mean over j of C(i, j) equals the adjoint's C(i) of the same policy.
//
// Experiment 5 here: --recurrence-decay 1 runs the sweeps and the replay's tracker with the weight
// decay of the authors' published code (1) in the hypergradient recurrence while training keeps
// λ = 2e-5, to test whether that accounts for the paper's spread and Figure 2 (docs/experiments.md).

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "datasets.hpp"

namespace {

using T = float;
using Model = hydra::LeNet5<T>;
using Loss = hydra::SoftmaxCrossEntropy<T>;
using hydra::index;
namespace paper = hydra::paper;

// The paper's numbers for a data set (main text, "Manual Inspection"; supplement, "Experiment
// Settings"): the mean and standard deviation of all C(i) on the test set with 50,000 training
// images, LeNet-5's test accuracy, and the class pairs Figure 2 shows as symmetric low contributions.
struct paper_reference {
  double mean, std, accuracy;
  std::array<std::pair<index, index>, 3> pairs;
};
// Fashion-MNIST's std is printed as 0.1×10^-3; its pairs: (Pullover, Coat), (T-shirt, Shirt), (Sneaker, Ankle boot).
constexpr paper_reference fashion_mnist_reference{-4.9858e-7, 1.0e-4, 0.8999, {{{2, 4}, {0, 6}, {7, 9}}}};
constexpr paper_reference mnist_reference{-3.17e-9, 1.19e-6, 0.9909, {{{3, 5}, {2, 7}, {4, 9}}}};
constexpr index K = 10;  // classes
constexpr index M = K + 1;  // directions: the mean test loss, then each class's mean loss

// float32 sums over thousands of steps: a wrong coupling or a missing term is off by O(1).
constexpr double linearity_tolerance = 1e-3;
// Forward (tracker) and reverse (adjoint) accumulate float32 rounding in different orders (measured:
// below 1e-6 over 620 steps); a missing or wrong term is off by O(1).
constexpr double tracker_tolerance = 1e-3;

struct options {
  std::string dataset = "fashion-mnist", data_dir;  // datasets.hpp: empty = the usual place
  std::string out = "results/inspection";
  std::uint64_t seed = 0;
  paper::recipe recipe;
  bool paper = false;
  index train_size = 5000, validation_size = 10000, test_size = 10000;
  index top = 8, neighbours = 3;
  std::string neighbour_policy = "exact";
  index checkpoint_every = -1;  // −1: automatic
  double recurrence_decay = -1;  // < 0: the optimiser's λ
};

/// v[i] for an index i (the containers here are indexed by hydra::index).
template <class V>
decltype(auto) at(V& v, index i) {
  return v[static_cast<std::size_t>(i)];
}

/// ∇ of the mean loss over `data` at w, in chunks of 500 images, summed in double.
std::vector<T> mean_gradient(Model& model, Loss& loss, hydra::vector_view<const T> w, const hydra::dataset<T>& data) {
  const index P = model.parameter_count();
  std::vector<double> sum(static_cast<std::size_t>(P), 0.0);
  hydra::vector<T, hydra::cpu> chunk_gradient(P);
  hydra::device_batch<T, hydra::cpu> batch;
  hydra::for_each_chunk(data, 500, batch, [&](index, index count) {
    (void)model.gradient(w, batch.features(), batch.targets(), loss, chunk_gradient.view());
    for (index q = 0; q < P; ++q)
      at(sum, q) += static_cast<double>(count) * chunk_gradient.view().data[q];
  });
  std::vector<T> out(sum.size());
  for (std::size_t q = 0; q < sum.size(); ++q) out[q] = static_cast<T>(sum[q] / static_cast<double>(data.size()));
  return out;
}

/// The model's predicted class and its softmax probability ("confidence") for every sample.
struct predictions {
  std::vector<index> label;
  std::vector<double> confidence;
  double accuracy = 0;
};

predictions predict(Model& model, hydra::vector_view<const T> w, const hydra::dataset<T>& data) {
  predictions out{std::vector<index>(static_cast<std::size_t>(data.size())),
                  std::vector<double>(static_cast<std::size_t>(data.size())), 0};
  hydra::device_batch<T, hydra::cpu> batch;
  hydra::matrix<T, hydra::cpu> logits;
  index correct = 0;
  hydra::for_each_chunk(data, 500, batch, [&](index first, index count) {
    logits.resize(count, model.output_size());
    model.forward(w, batch.features(), logits.view());
    for (index b = 0; b < count; ++b) {
      const T* z = std::as_const(logits).view().row(b);
      const auto best = static_cast<index>(std::max_element(z, z + K) - z);
      double sum = 0;
      for (index c = 0; c < K; ++c) sum += std::exp(static_cast<double>(z[c] - z[best]));
      out.label[static_cast<std::size_t>(first + b)] = best;
      out.confidence[static_cast<std::size_t>(first + b)] = 1.0 / sum;
      correct += best == static_cast<index>(data.label(first + b));
    }
  });
  out.accuracy = static_cast<double>(correct) / static_cast<double>(data.size());
  return out;
}

/// C = −(1/N)·projections, column `c` of an N × M projection matrix, in double.
std::vector<double> contribution_column(const hydra::matrix<T, hydra::cpu>& projections, index c, index N) {
  std::vector<double> out(static_cast<std::size_t>(projections.rows()));
  for (index i = 0; i < projections.rows(); ++i)
    at(out, i) = -static_cast<double>(projections.view().row(i)[c]) / static_cast<double>(N);
  return out;
}

struct summary {
  double mean = 0, std = 0, min = 0, max = 0, positive = 0;
};

summary summarise(const std::vector<double>& c) {
  summary s;
  const auto n = static_cast<double>(c.size());
  s.mean = std::accumulate(c.begin(), c.end(), 0.0) / n;
  double sq = 0;
  for (double v : c) sq += (v - s.mean) * (v - s.mean);
  s.std = std::sqrt(sq / n);
  s.min = *std::min_element(c.begin(), c.end());
  s.max = *std::max_element(c.begin(), c.end());
  s.positive = static_cast<double>(std::count_if(c.begin(), c.end(), [](double v) { return v > 0; })) / n;
  return s;
}

/// ‖combined − direct‖ / ‖direct‖ where combined(i) = Σ_b share_b · C(i, b): the linearity check.
double linearity_error(const hydra::matrix<T, hydra::cpu>& projections, const std::vector<double>& share) {
  double diff = 0, norm = 0;
  for (index i = 0; i < projections.rows(); ++i) {
    double combined = 0;
    for (index b = 0; b < K; ++b)
      combined += at(share, b) * static_cast<double>(projections.view().row(i)[1 + b]);
    const double direct = projections.view().row(i)[0];
    diff += (combined - direct) * (combined - direct);
    norm += direct * direct;
  }
  return std::sqrt(diff / norm);
}

/// The inter-class matrix (Eq. 23) from the N × K class contributions, its row and column sums,
/// and its normalisation by √(row sum × column sum): NaN where that is undefined (a product of
/// sums ≤ 0), with the library's refusal kept as `undefined`.
struct inter_class {
  hydra::class_matrix raw, normalised;
  std::vector<double> row_sum, column_sum;
  index undefined_entries = 0;
  std::string undefined;
};

inter_class inter_class_matrix(const hydra::matrix<T, hydra::cpu>& projections, const hydra::dataset<T>& train) {
  const index N = train.size();
  std::vector<double> per_class(static_cast<std::size_t>(N * K));
  for (index i = 0; i < N; ++i)
    for (index b = 0; b < K; ++b)
      at(per_class, i * K + b) =
          -static_cast<double>(projections.view().row(i)[1 + b]) / static_cast<double>(N);
  std::vector<hydra::label_type> classes(static_cast<std::size_t>(K));
  std::iota(classes.begin(), classes.end(), hydra::label_type{0});
  inter_class out;
  // One "test point" per class whose contribution is already the mean over the class: Eq. 23.
  out.raw = hydra::inter_class_contribution(hydra::matrix_view<const double>(per_class.data(), N, K, K), train.labels(),
                                            classes, K);
  out.row_sum.assign(static_cast<std::size_t>(K), 0.0);
  out.column_sum.assign(static_cast<std::size_t>(K), 0.0);
  for (index a = 0; a < K; ++a)
    for (index b = 0; b < K; ++b) {
      out.row_sum[static_cast<std::size_t>(a)] += out.raw(a, b);
      out.column_sum[static_cast<std::size_t>(b)] += out.raw(a, b);
    }
  try {
    out.normalised = hydra::normalize_inter_class(out.raw);
  } catch (const hydra::invalid_argument& e) {
    out.undefined = e.what();
    out.normalised = {K, std::vector<double>(static_cast<std::size_t>(K * K))};
    for (index a = 0; a < K; ++a)
      for (index b = 0; b < K; ++b) {
        const double r = out.row_sum[static_cast<std::size_t>(a)], k = out.column_sum[static_cast<std::size_t>(b)];
        const bool defined = r * k > 0;
        out.undefined_entries += !defined;
        out.normalised.values[static_cast<std::size_t>(a * K + b)] =
            defined ? out.raw(a, b) / (std::sqrt(std::abs(r)) * std::sqrt(std::abs(k)))
                    : std::numeric_limits<double>::quiet_NaN();
      }
  }
  return out;
}

/// Rows in which the diagonal is the largest entry, and columns likewise (the paper: all of them).
std::pair<index, index> diagonal_maxima(const hydra::class_matrix& m) {
  index rows = 0, cols = 0;
  for (index a = 0; a < K; ++a) {
    bool row_max = true, col_max = true;
    for (index b = 0; b < K; ++b) {
      if (b != a && !(m(a, a) > m(a, b))) row_max = false;
      if (b != a && !(m(a, a) > m(b, a))) col_max = false;
    }
    rows += row_max;
    cols += col_max;
  }
  return {rows, cols};
}

/// The rank of entry (a, b) among the 90 off-diagonal entries, 1 = the lowest (NaN entries last).
index off_diagonal_rank(const hydra::class_matrix& m, index a, index b) {
  index rank = 1;
  const double v = m(a, b);
  for (index x = 0; x < K; ++x)
    for (index y = 0; y < K; ++y)
      if (x != y && (x != a || y != b) && m(x, y) < v) ++rank;
  return rank;
}

void print_matrix(const char* title, const hydra::class_matrix& m, double scale, paper::class_names names) {
  fmt::print("{} (rows: training class, columns: test class{})\n", title,
             scale == 1 ? "" : fmt::format("; values × {:.0e}", 1 / scale));
  fmt::print("{:>12}", "");
  for (index b = 0; b < K; ++b) fmt::print(" {:>8.8}", names[b]);
  fmt::print("\n");
  for (index a = 0; a < K; ++a) {
    fmt::print("{:>12}", names[a]);
    for (index b = 0; b < K; ++b) fmt::print(" {:8.3f}", m(a, b) / scale);
    fmt::print("\n");
  }
}

/// Replays training from the same initialisation along the same batch order with a forward
/// tracker of the chosen samples; returns C(i, j) (rows in the order of `chosen`, columns every
/// test point) and the replay's seconds. Throws when the replay does not end at w_T bit for bit.
/// Training steps with the recipe's optimiser; the tracker takes p and λ from `recurrence`.
template <class Policy>
std::pair<hydra::matrix<T, hydra::cpu>, double>
replay(const options& opt, Model& model, Loss& loss, const hydra::SGD<T>& recurrence, const paper::split_data<T>& data,
       const hydra::batch_order& order, const hydra::vector<T, hydra::cpu>& w_final, const std::vector<index>& chosen) {
  const index P = model.parameter_count(), N = data.train.size();
  const auto start = std::chrono::steady_clock::now();
  hydra::vector<T, hydra::cpu> w(P);
  model.initialize(w.view(), opt.seed);
  hydra::SGD<T> optimizer(P, paper::sgd_of(opt.recipe));
  hydra::hypergradient_tracker<Model, Loss, Policy> tracker(model, loss, recurrence, chosen, N);
  (void)paper::train(model, loss, optimizer, opt.recipe, w.view(), data.train, data.validation, order,
                     fmt::format("replay ({} tracker)", Policy::name), tracker);
  for (index q = 0; q < P; ++q)
    if (w.view().data[q] != w_final.view().data[q])
      throw hydra::numerical_error(fmt::format(
          "the replay of training ended at other parameters than the first run (parameter {}: {} vs {}); the "
          "tracked hypergradients would belong to another run",
          q, w.view().data[q], w_final.view().data[q]));
  // The tracker's rows, reordered to `chosen`.
  const auto tracked = tracker.hypergradients();
  hydra::matrix<T, hydra::cpu> hypergradients(static_cast<index>(chosen.size()), P);
  for (std::size_t r = 0; r < chosen.size(); ++r) {
    const index row = tracker.row_of(chosen[r]);
    std::copy(tracked.row(row), tracked.row(row) + P, hypergradients.view().row(static_cast<index>(r)));
  }
  auto c = hydra::test_contributions(model, loss, std::as_const(w).view(), data.test,
                                     std::as_const(hypergradients).view(), N);
  return {std::move(c), paper::seconds_since(start)};
}

struct sweeps {
  hydra::matrix<T, hydra::cpu> exact, hessian_free;
  double exact_seconds = 0, hessian_free_seconds = 0;
};

template <class Trajectory>
sweeps sweep_both(Model& model, Loss& loss, const hydra::SGD<T>& recurrence, const hydra::dataset<T>& train,
                  const hydra::batch_order& order, Trajectory& trajectory, const std::vector<T>& U) {
  const index P = model.parameter_count();
  const hydra::matrix_view<const T> directions(U.data(), M, P);
  sweeps out;
  auto start = std::chrono::steady_clock::now();
  out.exact = hydra::adjoint_projections<hydra::Exact>(model, loss, train, order, trajectory, directions, recurrence);
  out.exact_seconds = paper::seconds_since(start);
  fmt::print("exact adjoint sweep, M = {}: {:.1f} s ({:.1f} ms per step)\n", M, out.exact_seconds,
             1e3 * out.exact_seconds / static_cast<double>(order.steps()));
  std::fflush(stdout);
  start = std::chrono::steady_clock::now();
  out.hessian_free =
      hydra::adjoint_projections<hydra::HessianFree>(model, loss, train, order, trajectory, directions, recurrence);
  out.hessian_free_seconds = paper::seconds_since(start);
  fmt::print("Hessian-free adjoint sweep, M = {}: {:.1f} s ({:.1f} ms per step)\n", M, out.hessian_free_seconds,
             1e3 * out.hessian_free_seconds / static_cast<double>(order.steps()));
  std::fflush(stdout);
  return out;
}

std::vector<std::string> class_header(const char* first, paper::class_names names) {
  std::vector<std::string> h{first};
  for (index b = 0; b < K; ++b) h.emplace_back(names[b]);
  return h;
}

std::vector<std::vector<double>> matrix_rows(const hydra::class_matrix& m) {
  std::vector<std::vector<double>> rows;
  for (index a = 0; a < K; ++a) {
    std::vector<double> row{static_cast<double>(a)};
    for (index b = 0; b < K; ++b) row.push_back(m(a, b));
    rows.push_back(std::move(row));
  }
  return rows;
}

int run(options opt, const CLI::App& app) {
  const auto given = [&](const char* flag) { return app.count(flag) > 0; };
  if (opt.paper && opt.dataset != "fashion-mnist")
    throw hydra::invalid_argument("--paper runs the paper's Fashion-MNIST protocol; --dataset mnist has 5,000 digits");
  if (opt.paper) {  // the paper's protocol for every setting not given explicitly
    if (!given("--train-size")) opt.train_size = 50000;
    if (!given("--validation-size")) opt.validation_size = 10000;
    if (!given("--test-size")) opt.test_size = 10000;
  }
  if (opt.top < 1) throw hydra::invalid_argument("--top must be at least 1, got " + std::to_string(opt.top));
  if (opt.neighbours < 1)
    throw hydra::invalid_argument("--neighbours must be at least 1, got " + std::to_string(opt.neighbours));
  if (opt.checkpoint_every < -1 || (given("--checkpoint-every") && opt.checkpoint_every < 0))
    throw hydra::invalid_argument("--checkpoint-every must be 0 (keep every step) or positive, got " +
                                  std::to_string(opt.checkpoint_every));
  if (2 * opt.top > opt.train_size)
    throw hydra::invalid_argument(fmt::format("--top {} asks for {} training samples (most helpful and most harmful), "
                                              "more than the {} of --train-size",
                                              opt.top, 2 * opt.top, opt.train_size));
  if (opt.neighbours > opt.test_size)
    throw hydra::invalid_argument(fmt::format("--neighbours {} is more than the {} test points of --test-size",
                                              opt.neighbours, opt.test_size));
  if (given("--recurrence-decay") && !(opt.recurrence_decay >= 0 && std::isfinite(opt.recurrence_decay)))
    throw hydra::invalid_argument(fmt::format("--recurrence-decay must be finite and at least 0, got {}",
                                              opt.recurrence_decay));
  const double recurrence_decay = opt.recurrence_decay < 0 ? opt.recipe.weight_decay : opt.recurrence_decay;

  paper::results out(opt.out, "inspection");
  const paper::class_names names = paper::class_names_of(opt.dataset);
  const paper_reference& paper_numbers = opt.dataset == "mnist" ? mnist_reference : fashion_mnist_reference;
  const char* dataset_name = paper::display_name(opt.dataset);
  const auto data = paper::load_dataset<T>(opt.dataset, opt.data_dir, opt.train_size, opt.validation_size, opt.test_size);
  const index N = data.train.size(), n_test = data.test.size();
  Model model;
  Loss loss;
  const index P = model.parameter_count();
  const auto order = hydra::batch_order::shuffled(N, opt.recipe.batch_size, opt.recipe.epochs, opt.seed);
  const index steps = order.steps();

  // The trajectory: every w_{t−1} in memory when that takes at most a quarter of the memory
  // available now, else checkpoints every ⌈√T⌉ steps (one extra forward pass per sweep).
  const double vector_bytes = static_cast<double>(P) * sizeof(T);
  const double all_steps = static_cast<double>(steps) * vector_bytes;
  index every = opt.checkpoint_every;
  if (every < 0)
    every = all_steps <= 0.25 * static_cast<double>(hydra::cpu::memory_available())
                ? 0
                : static_cast<index>(std::ceil(std::sqrt(static_cast<double>(steps))));
  const double trajectory_bytes =
      every == 0 ? all_steps
                 : (2.0 * static_cast<double>((steps + every - 1) / every) + static_cast<double>(every)) * vector_bytes;
  // Besides the trajectory: the data (60,000 + 10,000 images read, then split), the sweep's N × M
  // result in double and float, 256 MiB of HVP workspace, the tracker's states, test gradients.
  const double other_bytes = 2.0 * 70000 * 784 * sizeof(T) + static_cast<double>(N) * M * 12 + (256 << 20) +
                             (4.0 * static_cast<double>(opt.top) + 3 * M + 256) * vector_bytes +
                             2.0 * static_cast<double>(opt.top) * static_cast<double>(n_test) * sizeof(T);
  paper::check_memory(trajectory_bytes + other_bytes, "the inspection run");

  // What differs from the paper's protocol (50,000 / 10,000 / 10,000 images, supplement Table 3).
  std::vector<std::string> changes;
  const paper::recipe table3;
  if (N != 50000) changes.push_back(fmt::format("{} training images instead of 50,000", N));
  if (data.validation.size() != 10000)
    changes.push_back(fmt::format("{} validation images instead of 10,000", data.validation.size()));
  if (n_test != 10000) changes.push_back(fmt::format("{} test images instead of 10,000", n_test));
  if (opt.recipe.epochs != table3.epochs) changes.push_back(fmt::format("{} epochs instead of 20", opt.recipe.epochs));
  if (opt.recipe.batch_size != table3.batch_size)
    changes.push_back(fmt::format("batch size {} instead of 64", opt.recipe.batch_size));
  if (opt.recipe.learning_rate != table3.learning_rate || opt.recipe.plateau_factor != table3.plateau_factor ||
      opt.recipe.plateau_patience != table3.plateau_patience || opt.recipe.momentum != table3.momentum ||
      opt.recipe.weight_decay != table3.weight_decay)
    changes.push_back("optimiser settings other than supplement Table 3's");
  std::string scale = changes.empty() ? "the paper's protocol" : "scaled: ";
  for (std::size_t k = 0; k < changes.size(); ++k) scale += (k ? ", " : "") + changes[k];
  fmt::print("inspection: LeNet-5 ({} parameters) on {} {} training images, {} epochs = {} steps of {}; "
             "{} validation, {} test images ({})\n",
             P, N, dataset_name, opt.recipe.epochs, steps, opt.recipe.batch_size, data.validation.size(), n_test, scale);
  if (recurrence_decay != opt.recipe.weight_decay)
    fmt::print("hypergradient recurrence with weight decay {} while training uses {} (the published code's "
               "recurrence, experiment 5)\n",
               recurrence_decay, opt.recipe.weight_decay);
  fmt::print("trajectory: {} ({:.3f} GB); estimated peak {:.2f} GB\n",
             every == 0 ? std::string("every step kept in memory")
                        : fmt::format("checkpoints every {} steps, segments recomputed", every),
             trajectory_bytes / 1e9, (trajectory_bytes + other_bytes) / 1e9);
  std::fflush(stdout);

  out.set("dataset", opt.dataset);
  out.set("paper_flag", opt.paper);
  out.set("paper_protocol", changes.empty());
  out.set("scale", scale);
  out.set("model", "LeNet-5 (61,706 parameters, ReLU), float32");
  out.set("train_size", N);
  out.set("validation_size", data.validation.size());
  out.set("test_size", n_test);
  out.set("epochs", opt.recipe.epochs);
  out.set("batch_size", opt.recipe.batch_size);
  out.set("learning_rate", opt.recipe.learning_rate);
  out.set("plateau_factor", opt.recipe.plateau_factor);
  out.set("plateau_patience", opt.recipe.plateau_patience);
  out.set("momentum", opt.recipe.momentum);
  out.set("weight_decay", opt.recipe.weight_decay);
  out.set("recurrence_decay", recurrence_decay);
  out.set("seed", static_cast<double>(opt.seed));
  out.set("steps", steps);
  out.set("top", opt.top);
  out.set("neighbours", opt.neighbours);
  out.set("neighbour_policy", opt.neighbour_policy);
  out.set("trajectory", every == 0 ? std::string("in memory") : fmt::format("checkpoints every {} steps", every));
  out.set("directions",
          "M = 11 in one sweep per policy: the mean test loss's gradient at w_T, then each test class's mean-loss "
          "gradient");
  out.set("paper_mean", paper_numbers.mean);
  out.set("paper_std", paper_numbers.std);
  out.set("paper_accuracy", paper_numbers.accuracy);
  std::vector<double> pairs_flat;
  for (const auto& [a, b] : paper_numbers.pairs) pairs_flat.insert(pairs_flat.end(), {double(a), double(b)});
  out.set("paper_pairs", pairs_flat);

  // ---- training with the trajectory recorded, then both sweeps ------------------------------------
  hydra::vector<T, hydra::cpu> w(P);
  model.initialize(w.view(), opt.seed);
  hydra::SGD<T> optimizer(P, paper::sgd_of(opt.recipe));
  // The linear map of the recurrence (sweeps and replay): the optimiser's, with its decay replaced
  // where --recurrence-decay says so. Training always steps with `optimizer`.
  auto recurrence_options = paper::sgd_of(opt.recipe);
  recurrence_options.weight_decay = recurrence_decay;
  const hydra::SGD<T> recurrence(P, recurrence_options);
  std::vector<hydra::epoch_report> history;
  double training_seconds = 0;
  std::vector<T> U(static_cast<std::size_t>(M * P));
  std::vector<std::vector<index>> members(static_cast<std::size_t>(K));
  for (index j = 0; j < n_test; ++j) at(members, data.test.label(j)).push_back(j);
  for (index b = 0; b < K; ++b)
    if (at(members, b).empty())
      throw hydra::invalid_argument(fmt::format("the {} test images hold no {} (class {}): its mean loss and its "
                                                "column of the inter-class matrix are undefined; give a larger "
                                                "--test-size",
                                                n_test, names[b], b));
  const auto directions_at = [&](hydra::vector_view<const T> w_final) {
    const auto mean = mean_gradient(model, loss, w_final, data.test);
    std::copy(mean.begin(), mean.end(), U.begin());
    for (index b = 0; b < K; ++b) {
      const auto& in_class = at(members, b);
      const auto g = mean_gradient(model, loss, w_final, hydra::subset(data.test, std::span<const index>(in_class)));
      std::copy(g.begin(), g.end(), U.begin() + (b + 1) * P);
    }
  };
  const auto train_and_sweep = [&](auto& trajectory) {
    const auto start = std::chrono::steady_clock::now();
    history = paper::train(model, loss, optimizer, opt.recipe, w.view(), data.train, data.validation, order,
                           "training", trajectory);
    training_seconds = paper::seconds_since(start);
    fmt::print("training with the trajectory recorded: {:.1f} s\n", training_seconds);
    directions_at(std::as_const(w).view());
    return sweep_both(model, loss, recurrence, data.train, order, trajectory, U);
  };
  sweeps s = every == 0 ? [&] {
    hydra::trajectory_recorder<T, hydra::cpu> trajectory;
    return train_and_sweep(trajectory);
  }()
                        : [&] {
                            hydra::checkpointed_trajectory trajectory(model, loss, optimizer, data.train, order, every);
                            return train_and_sweep(trajectory);
                          }();

  const auto test_predictions = predict(model, std::as_const(w).view(), data.test);
  fmt::print("test accuracy at w_T: {:.2f}% (the paper: {:.2f}% with 50,000 training images)\n",
             100 * test_predictions.accuracy, 100 * paper_numbers.accuracy);

  // ---- C(i) of every training sample --------------------------------------------------------------
  const auto exact = contribution_column(s.exact, 0, N), hessian_free = contribution_column(s.hessian_free, 0, N);
  std::vector<double> share(static_cast<std::size_t>(K));
  for (index b = 0; b < K; ++b)
    at(share, b) =
        static_cast<double>(at(members, b).size()) / static_cast<double>(n_test);
  const double exact_linearity = linearity_error(s.exact, share),
               hessian_free_linearity = linearity_error(s.hessian_free, share);
  fmt::print("check: mean-loss C(i) against the class-share-weighted class C(i), relative error: exact {:.2e}, "
             "Hessian-free {:.2e} (tolerance {:.0e})\n",
             exact_linearity, hessian_free_linearity, linearity_tolerance);

  const auto se = summarise(exact), sh = summarise(hessian_free);
  fmt::print("C(i) on the mean test loss, all {} training samples (std with 1/N):\n", N);
  fmt::print("  {:<13} mean {:+.4e}  std {:.4e}  min {:+.4e}  max {:+.4e}  positive {:.1f}%\n", "exact", se.mean,
             se.std, se.min, se.max, 100 * se.positive);
  fmt::print("  {:<13} mean {:+.4e}  std {:.4e}  min {:+.4e}  max {:+.4e}  positive {:.1f}%\n", "Hessian-free",
             sh.mean, sh.std, sh.min, sh.max, 100 * sh.positive);
  fmt::print("  {:<13} mean {:+.4e}  std {:.4e}  ({}, 50,000 training images)\n", "the paper", paper_numbers.mean,
             paper_numbers.std, dataset_name);
  std::vector<float> ef(exact.begin(), exact.end()), hf(hessian_free.begin(), hessian_free.end());
  const double sign_error = hydra::sign_error_rate(std::span<const float>(hf), std::span<const float>(ef));
  const double rank_correlation = hydra::spearman(std::span<const float>(hf), std::span<const float>(ef));
  fmt::print("  Hessian-free against exact: sign error {:.4f}, Spearman {:.4f}\n", sign_error, rank_correlation);

  out.npy("contributions_exact.npy", exact, {N});
  out.npy("contributions_hessian_free.npy", hessian_free, {N});
  std::vector<std::int32_t> train_labels(data.train.labels().begin(), data.train.labels().end());
  out.npy("train_labels.npy", train_labels, {N});
  out.csv("summary.csv",
          {"method", "mean", "std", "min", "max", "fraction_positive", "sign_error_vs_exact", "spearman_vs_exact"},
          {{0, se.mean, se.std, se.min, se.max, se.positive, 0, 1},
           {1, sh.mean, sh.std, sh.min, sh.max, sh.positive, sign_error, rank_correlation},
           {2, paper_numbers.mean, paper_numbers.std, std::nan(""), std::nan(""), std::nan(""), std::nan(""), std::nan("")}});
  out.set("summary_methods", "summary.csv rows: 0 = exact (adjoint), 1 = Hessian-free (adjoint), 2 = the paper");

  // ---- the inter-class matrix ---------------------------------------------------------------------
  std::vector<std::vector<double>> pair_rows, diagonal_rows;
  std::vector<std::vector<double>> sums_rows;
  const std::array<std::pair<const char*, const hydra::matrix<T, hydra::cpu>*>, 2> methods{
      {{"exact", &s.exact}, {"hessian_free", &s.hessian_free}}};
  for (std::size_t m = 0; m < methods.size(); ++m) {
    const auto [name, projections] = methods[m];
    const auto ic = inter_class_matrix(*projections, data.train);
    std::vector<double> class_contributions(static_cast<std::size_t>(N * K));
    for (index i = 0; i < N; ++i)
      for (index b = 0; b < K; ++b)
        at(class_contributions, i * K + b) =
            -static_cast<double>(projections->view().row(i)[1 + b]) / static_cast<double>(N);
    out.npy(fmt::format("class_contributions_{}.npy", name), class_contributions, {N, K});
    out.csv(fmt::format("inter_class_{}.csv", name), class_header("train_class", names), matrix_rows(ic.raw));
    out.csv(fmt::format("inter_class_{}_normalised.csv", name), class_header("train_class", names),
            matrix_rows(ic.normalised));
    for (index a = 0; a < K; ++a)
      sums_rows.push_back({static_cast<double>(m), static_cast<double>(a), ic.row_sum[static_cast<std::size_t>(a)],
                           ic.column_sum[static_cast<std::size_t>(a)]});
    fmt::print("\n");
    print_matrix(fmt::format("inter-class contribution C(S_a, T_b), {}", name).c_str(), ic.raw, 1e-6, names);
    if (ic.undefined.empty()) {
      print_matrix(fmt::format("normalised by sqrt(row sum x column sum), {}", name).c_str(), ic.normalised, 1, names);
    } else {
      fmt::print("the normalisation is undefined for {} of the {} entries (row and column sums of opposite signs, "
                 "NaN in the CSV): {}\n",
                 ic.undefined_entries, K * K, ic.undefined);
      print_matrix(fmt::format("normalised where defined (nan elsewhere), {}", name).c_str(), ic.normalised, 1, names);
    }
    fmt::print("row sums:   ");
    for (double v : ic.row_sum) fmt::print(" {:+.3e}", v);
    fmt::print("\ncolumn sums:");
    for (double v : ic.column_sum) fmt::print(" {:+.3e}", v);
    fmt::print("\n");
    const auto [rows, cols] = diagonal_maxima(ic.raw);
    fmt::print("the diagonal is the largest entry in {} of 10 rows and {} of 10 columns (the paper: all)\n", rows,
               cols);
    diagonal_rows.push_back({static_cast<double>(m), static_cast<double>(rows), static_cast<double>(cols),
                             static_cast<double>(ic.undefined_entries)});
    for (const auto& [a, b] : paper_numbers.pairs) {
      const index r_ab = off_diagonal_rank(ic.raw, a, b), r_ba = off_diagonal_rank(ic.raw, b, a);
      fmt::print("  {} / {}: C = {:+.3e} and {:+.3e}, normalised {:+.4f} and {:+.4f}; rank {} and {} of 90 "
                 "off-diagonal entries (1 = lowest)\n",
                 names[a], names[b], ic.raw(a, b), ic.raw(b, a),
                 ic.normalised(a, b), ic.normalised(b, a), r_ab, r_ba);
      pair_rows.push_back({static_cast<double>(m), static_cast<double>(a), static_cast<double>(b), ic.raw(a, b),
                           ic.raw(b, a), ic.normalised(a, b), ic.normalised(b, a), static_cast<double>(r_ab),
                           static_cast<double>(r_ba)});
    }
  }
  out.csv("inter_class_sums.csv", {"method", "class", "row_sum", "column_sum"}, sums_rows);
  out.csv("inter_class_pairs.csv",
          {"method", "class_a", "class_b", "c_ab", "c_ba", "normalised_ab", "normalised_ba", "rank_ab", "rank_ba"},
          pair_rows);
  out.csv("inter_class_diagonal.csv", {"method", "rows_with_diagonal_max", "columns_with_diagonal_max",
                                       "undefined_normalised_entries"},
          diagonal_rows);
  out.set("inter_class_methods", "method column: 0 = exact, 1 = hessian_free");

  // ---- the most helpful and most harmful samples ---------------------------------------------------
  std::vector<index> by_exact(static_cast<std::size_t>(N));
  std::iota(by_exact.begin(), by_exact.end(), index{0});
  std::stable_sort(by_exact.begin(), by_exact.end(), [&](index a, index b) {
    return at(exact, a) > at(exact, b);
  });
  std::vector<index> by_hessian_free(by_exact);
  std::stable_sort(by_hessian_free.begin(), by_hessian_free.end(), [&](index a, index b) {
    return at(hessian_free, a) > at(hessian_free, b);
  });
  std::vector<index> hessian_free_rank(static_cast<std::size_t>(N));
  for (index r = 0; r < N; ++r) at(hessian_free_rank, at(by_hessian_free, r)) = r + 1;
  std::vector<index> chosen;
  for (index r = 0; r < opt.top; ++r) chosen.push_back(at(by_exact, r));          // most helpful first
  for (index r = 0; r < opt.top; ++r) chosen.push_back(at(by_exact, N - 1 - r));  // most harmful first
  index overlap_helpful = 0, overlap_harmful = 0;
  for (index r = 0; r < opt.top; ++r) {
    overlap_helpful += at(hessian_free_rank, at(chosen, r)) <= opt.top;
    overlap_harmful += at(hessian_free_rank, at(chosen, opt.top + r)) > N - opt.top;
  }
  fmt::print("\nthe {} most helpful / harmful by exact C(i) are among Hessian-free's {} most helpful / harmful: "
             "{} / {}\n",
             opt.top, opt.top, overlap_helpful, overlap_harmful);

  const auto chosen_set = hydra::subset(data.train, std::span<const index>(chosen));
  const auto chosen_predictions = predict(model, std::as_const(w).view(), chosen_set);

  // ---- their influence on every test point, by replaying training with a tracker ------------------
  fmt::print("replaying training with a forward {} tracker on those {} samples\n", opt.neighbour_policy, chosen.size());
  std::fflush(stdout);
  auto [pairwise, replay_seconds] =
      opt.neighbour_policy == "exact"
          ? replay<hydra::Exact>(opt, model, loss, recurrence, data, order, w, chosen)
          : replay<hydra::HessianFree>(opt, model, loss, recurrence, data, order, w, chosen);
  fmt::print("replay with the tracker and C(i, j) for every test point: {:.1f} s; it ended at w_T bit for bit\n",
             replay_seconds);
  const auto& same_policy = opt.neighbour_policy == "exact" ? exact : hessian_free;
  const index n_chosen = static_cast<index>(chosen.size());
  std::vector<double> tracked_mean(static_cast<std::size_t>(n_chosen));
  double diff = 0, norm = 0;
  for (index r = 0; r < n_chosen; ++r) {
    double sum = 0;
    for (index j = 0; j < n_test; ++j) sum += pairwise.view().row(r)[j];
    at(tracked_mean, r) = sum / static_cast<double>(n_test);
    const double reference = at(same_policy, at(chosen, r));
    diff += (at(tracked_mean, r) - reference) * (at(tracked_mean, r) - reference);
    norm += reference * reference;
  }
  const double tracker_error = std::sqrt(diff / norm);
  fmt::print("check: the tracker's mean over j of C(i, j) against the {} adjoint's C(i), relative error {:.2e} "
             "(tolerance {:.0e})\n",
             opt.neighbour_policy, tracker_error, tracker_tolerance);

  std::vector<std::vector<double>> extreme_rows, neighbour_rows;
  std::vector<float> extreme_images, neighbour_images;
  fmt::print("\n{:>8} {:>6} {:>24} {:>6} {:>12} {:>12} {:>9}   most influenced test images: index true/predicted "
             "C(i, j)\n",
             "", "index", "true / predicted", "conf", "C(i) exact", "C(i) HF", "HF rank");
  for (index r = 0; r < n_chosen; ++r) {
    const index i = at(chosen, r);
    const bool helpful = r < opt.top;
    const auto true_label = static_cast<index>(data.train.label(i));
    const index predicted = chosen_predictions.label[static_cast<std::size_t>(r)];
    const double confidence = chosen_predictions.confidence[static_cast<std::size_t>(r)];
    extreme_rows.push_back({helpful ? 1.0 : -1.0, static_cast<double>(helpful ? r + 1 : r - opt.top + 1),
                            static_cast<double>(i), static_cast<double>(true_label), static_cast<double>(predicted),
                            confidence, at(exact, i), at(hessian_free, i),
                            at(tracked_mean, r),
                            static_cast<double>(at(hessian_free_rank, i))});
    const auto image = data.train.sample(i);
    extreme_images.insert(extreme_images.end(), image.begin(), image.end());
    fmt::print("{:>8} {:>6} {:>24} {:6.3f} {:+12.4e} {:+12.4e} {:>9}  ", helpful ? "helpful" : "harmful", i,
               fmt::format("{} / {}", names[true_label], names[predicted]),
               confidence, at(exact, i), at(hessian_free, i),
               at(hessian_free_rank, i));
    std::vector<index> js(static_cast<std::size_t>(n_test));
    std::iota(js.begin(), js.end(), index{0});
    const T* row = std::as_const(pairwise).view().row(r);
    std::partial_sort(js.begin(), js.begin() + opt.neighbours, js.end(),
                      [&](index a, index b) { return std::abs(row[a]) > std::abs(row[b]); });
    for (index k = 0; k < opt.neighbours; ++k) {
      const index j = at(js, k);
      const auto test_label = static_cast<index>(data.test.label(j));
      neighbour_rows.push_back({static_cast<double>(i), static_cast<double>(k + 1), static_cast<double>(j),
                                static_cast<double>(row[j]), static_cast<double>(test_label),
                                static_cast<double>(test_predictions.label[static_cast<std::size_t>(j)]),
                                test_predictions.confidence[static_cast<std::size_t>(j)]});
      const auto test_image = data.test.sample(j);
      neighbour_images.insert(neighbour_images.end(), test_image.begin(), test_image.end());
      fmt::print(" {} {}/{} {:+.3e}", j, test_label, test_predictions.label[static_cast<std::size_t>(j)], row[j]);
    }
    fmt::print("\n");
  }
  out.csv("extremes.csv",
          {"helpful", "rank", "train_index", "true_label", "predicted_label", "confidence", "contribution_exact",
           "contribution_hessian_free", "contribution_tracked_mean", "hessian_free_rank"},
          extreme_rows);
  out.csv("neighbours.csv",
          {"train_index", "rank", "test_index", "contribution", "true_label", "predicted_label", "confidence"},
          neighbour_rows);
  out.npy("extreme_images.npy", extreme_images, {n_chosen, 28, 28});
  out.npy("neighbour_images.npy", neighbour_images, {n_chosen, opt.neighbours, 28, 28});
  out.npy("pairwise_contributions.npy",
          std::vector<float>(pairwise.view().data, pairwise.view().data + n_chosen * n_test), {n_chosen, n_test});

  std::vector<std::vector<double>> training_rows;
  for (const auto& r : history)
    training_rows.push_back({static_cast<double>(r.epoch + 1), r.learning_rate, r.training_loss, r.validation_loss,
                             r.validation_accuracy, r.seconds});
  out.csv("training.csv",
          {"epoch", "learning_rate", "training_loss", "validation_loss", "validation_accuracy", "seconds"},
          training_rows);
  out.csv("checks.csv",
          {"exact_linearity_error", "hessian_free_linearity_error", "linearity_tolerance", "tracker_error",
           "tracker_tolerance"},
          {{exact_linearity, hessian_free_linearity, linearity_tolerance, tracker_error, tracker_tolerance}});
  out.csv("timings.csv",
          {"training_recorded_seconds", "exact_sweep_seconds", "hessian_free_sweep_seconds", "replay_seconds",
           "test_accuracy", "overlap_helpful", "overlap_harmful"},
          {{training_seconds, s.exact_seconds, s.hessian_free_seconds, replay_seconds, test_predictions.accuracy,
            static_cast<double>(overlap_helpful), static_cast<double>(overlap_harmful)}});

  if (!(exact_linearity <= linearity_tolerance) || !(hessian_free_linearity <= linearity_tolerance))
    throw hydra::numerical_error(fmt::format("the mean-loss C(i) differ from the class-share-weighted class C(i) by "
                                             "{:.2e} (exact) and {:.2e} (Hessian-free), more than {:.0e}",
                                             exact_linearity, hessian_free_linearity, linearity_tolerance));
  if (!(tracker_error <= tracker_tolerance))
    throw hydra::numerical_error(fmt::format("the tracker's C(i) differ from the adjoint's by {:.2e}, more than {:.0e}",
                                             tracker_error, tracker_tolerance));
  out.finish(data.provenance);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  options opt;
  CLI::App app{"The paper's manual inspection (Table 2, Figure 2): exact and Hessian-free C(i) of every Fashion-MNIST "
               "training sample, the inter-class matrix, the most helpful and harmful samples and the test images "
               "they influence most"};
  paper::add_dataset_options(app, opt.dataset, opt.data_dir);
  app.add_option("--out", opt.out, "results folder")->capture_default_str();
  app.add_option("--seed", opt.seed, "seed of the initialisation and the batch order")->capture_default_str();
  paper::add_recipe_options(app, opt.recipe);
  app.add_flag("--paper", opt.paper,
               "the paper's protocol: 50,000 / 10,000 / 10,000 images (flags given explicitly still apply)");
  app.add_option("--train-size", opt.train_size, "training images (a prefix of the paper's 50,000)")
      ->capture_default_str();
  app.add_option("--validation-size", opt.validation_size, "validation images (for the plateau schedule)")
      ->capture_default_str();
  app.add_option("--test-size", opt.test_size, "test images")->capture_default_str();
  app.add_option("--top", opt.top, "most helpful and most harmful training samples to show, each")
      ->capture_default_str();
  app.add_option("--neighbours", opt.neighbours, "most influenced test images per shown training sample")
      ->capture_default_str();
  app.add_option("--neighbour-policy", opt.neighbour_policy,
                 "the forward tracker of the replay that gives C(i, j) of the shown samples")
      ->capture_default_str()
      ->check(CLI::IsMember({"exact", "hessian-free"}));
  app.add_option("--checkpoint-every", opt.checkpoint_every,
                 "keep w every K steps and recompute the rest; 0 keeps every step (default: every step in memory "
                 "when it takes at most a quarter of the available memory, else K = ceil(sqrt(steps)))");
  app.add_option("--recurrence-decay", opt.recurrence_decay,
                 "weight decay of the hypergradient recurrence (both sweeps and the replay's tracker); training "
                 "keeps --weight-decay. 1 reproduces the authors' published code (experiment 5) (default: "
                 "--weight-decay)");
  return paper::run_main("paper_inspection", app, argc, argv, [&] { return run(opt, app); });
}
