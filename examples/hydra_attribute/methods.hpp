#pragma once
// hydra-attribute's methods: HYDRA (Hessian-free and exact, tracked, lean or by the adjoint),
// influence functions, TracIn, Grad-Dot and Grad-Cos, each from a set-up attribution_job to the
// n_tracked × M contributions, every file it writes going through the run's output_folder.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <fmt/core.h>

#include <hydra/attribution/contributions.hpp>
#include <hydra/hydra.hpp>
#include <hydra/hypergradient/adjoint.hpp>
#include <hydra/hypergradient/approximation_error.hpp>
#include <hydra/hypergradient/tracker.hpp>
#include <hydra/influence/influence.hpp>

#include "inputs.hpp"
#include "options.hpp"
#include "outputs.hpp"

namespace hydra::cli {

/// The policy slot's value for --method influence: train without tracking, then the baseline.
struct Influence {
  static constexpr const char* name = "influence";
};
/// The same for the gradient-similarity baselines (docs/influence.md, "Gradient similarity").
struct GradDot {
  static constexpr const char* name = "grad-dot";
};
struct GradCos {
  static constexpr const char* name = "grad-cos";
};
struct TracIn {
  static constexpr const char* name = "tracin";
};
template <class Policy>
inline constexpr bool is_baseline = std::is_same_v<Policy, Influence> || std::is_same_v<Policy, GradDot> ||
                                    std::is_same_v<Policy, GradCos> || std::is_same_v<Policy, TracIn>;

/// The inverse-HVP settings of the --ihvp, --damping, --cg-* and --lissa-* flags.
inline ihvp_options ihvp_settings(const options& opt) {
  ihvp_options o;
  o.method = parse_ihvp_method(opt.ihvp);
  o.explicit_hessian.damping = opt.damping;
  o.cg = {.damping = opt.damping, .tolerance = opt.cg_tolerance, .max_iterations = opt.cg_max_iterations};
  o.lissa.damping = opt.damping;
  o.lissa.scale = opt.lissa_scale;
  o.lissa.depth = opt.lissa_depth;
  o.lissa.repeats = opt.lissa_repeats;
  o.lissa.batch_size = opt.batch_size;
  o.lissa.seed = opt.seed;
  return o;
}

/// One line on how the inverse-HVP solve went.
inline std::string describe(const ihvp_report& report) {
  if (const auto* e = std::get_if<explicit_report>(&report))
    return fmt::format("explicit Hessian ({} parameters, {} HVP passes), Cholesky pivots in [{:.3e}, {:.3e}]",
                       e->parameters, e->hvp_passes, e->min_pivot, e->max_pivot);
  if (const auto* c = std::get_if<cg_report>(&report))
    return fmt::format("conjugate gradient {} in at most {} iterations ({} HVP passes), largest relative residual {:.2e}",
                       c->converged() ? "converged" : "did NOT converge", c->max_iterations(), c->hvp_passes,
                       c->max_relative_residual());
  const auto& l = std::get<lissa_report>(report);
  double change = 0;
  for (double v : l.final_relative_change) change = std::max(change, v);
  return fmt::format("LiSSA depth {} x {} repeats, damping s·δ = {:.3e}, last relative change {:.2e}", l.depth,
                     l.repeats, l.effective_damping, change);
}

// ---- one run: the methods ---------------------------------------------------------------------

/// What every method works with, set up once by run(): the model, its loss, optimiser and trainer,
/// the parameters (w_0 before training, w_T after) and the run's inputs.
template <class Model, class Fit>
struct attribution_job {
  using model_type = Model;
  using T = typename Model::scalar_type;
  using B = typename Model::backend_type;  // the data stay on the host; the trainer moves batches
  const options& opt;
  Model& model;
  SoftmaxCrossEntropy<T, B>& loss;
  SGD<T, B>& optimizer;
  Fit& fit;
  vector<T, B>& w;
  const dataset<T>& train;
  const dataset<T>& test;
  const batch_order& order;
  const std::vector<double>& rates;
  const std::vector<index>& tracked;
  output_folder& outputs;

  [[nodiscard]] index N() const noexcept { return train.size(); }
  [[nodiscard]] bool has_batch_norms() const { return batch_norm_count(model) > 0; }

  /// Trains w from w_0 to w_T with the callbacks: from the start, or on from --resume's checkpoint.
  template <class... Callbacks>
  void train_model(Callbacks&... callbacks) {
    if (opt.resume.empty()) fit.fit(w.view(), train, order, nullptr, callbacks...);
    else fit.resume(opt.resume, w.view(), train, order, nullptr, callbacks...);
  }
};

/// f() with every batch norm of the model on its running statistics (PyTorch's eval mode), each
/// restored to its setting afterwards. The test gradients ∇ℓ(test_j, w_T) are always taken so,
/// whatever --batch-norm says: a test point's gradient must not depend on which other test points
/// share its chunk (docs/attribution.md, "Batch norms"); so are the baselines' passes at w_T.
template <class Model, class F>
decltype(auto) on_running_statistics(Model& model, F&& f) {
  batch_norm_scope<Model> evaluation(model, batch_norm_statistics::running);
  return f();
}

/// What --method influence refuses before training, not after it: an explicit Hessian too large.
inline void check_influence(const ihvp_options& settings, index P) {
  if (settings.method == ihvp_method::explicit_hessian && P > settings.explicit_hessian.max_parameters)
    fail("--ihvp explicit forms the " + std::to_string(P) + " x " + std::to_string(P) + " Hessian of a model with " +
         std::to_string(P) + " parameters; it is limited to " +
         std::to_string(settings.explicit_hessian.max_parameters) + " (use --ihvp cg or lissa)");
}

/// --method influence: trains without tracking, then C_IF at w_T.
template <class Job>
matrix<typename Job::T, typename Job::B> influence_contributions(Job& job) {
  using T = typename Job::T;
  const auto settings = ihvp_settings(job.opt);
  check_influence(settings, job.w.size());
  job.train_model();
  // At w_T, on the running statistics: the training gradients, the Hessian and the test gradients.
  auto result = on_running_statistics(job.model, [&] {
    return influence(job.model, job.loss, std::as_const(job.w).view(), job.train, job.tracked, job.test,
                     static_cast<T>(job.opt.weight_decay), {.ihvp = settings});
  });
  fmt::print("influence functions: {}\n", describe(result.report));
  return std::move(result.contributions);
}

/// --method grad-dot or grad-cos: trains without tracking, then the similarity at w_T.
template <class Policy, class Job>
matrix<typename Job::T, typename Job::B> similarity_contributions(Job& job) {
  job.train_model();
  const auto w = std::as_const(job.w).view();
  return on_running_statistics(job.model, [&] {
    return std::is_same_v<Policy, GradDot> ? grad_dot(job.model, job.loss, w, job.train, job.tracked, job.test)
                                             : grad_cos(job.model, job.loss, w, job.train, job.tracked, job.test);
  });
}

/// --method tracin's callback: the parameters at the end of every K-th epoch and of the run, each
/// with the epochs it closes and the mean learning rate applied over them (its TracIn weight), and
/// for a model with batch norms the running statistics as they stood then.
template <class Model>
class tracin_recorder {
public:
  using T = typename Model::scalar_type;
  using B = typename Model::backend_type;
  struct recorded {
    index step;       // steps taken when it was recorded
    index epochs;     // epochs since the previous one
    double mean_rate; // mean η over those epochs' steps
    vector<T, B> parameters;
    std::vector<T> buffers;  // model_buffers at that point (empty without batch norms)
  };

  tracin_recorder(Model& model, const batch_order& order, index every) : model_(model), order_(order), every_(every) {}

  void after_update(const step_context<T, B>& ctx) {
    rate_sum_ += static_cast<double>(ctx.learning_rate);
    ++steps_;
    const bool last = ctx.step + 1 == order_.steps();
    if ((ctx.step + 1) % order_.steps_per_epoch() != 0 && !last) return;
    ++epochs_;
    if ((ctx.epoch + 1) % every_ != 0 && !last) return;
    vector<T, B> w(ctx.parameters.size);
    B::copy(ctx.parameters, w.view());
    checkpoints_.push_back(
        {ctx.step + 1, epochs_, rate_sum_ / static_cast<double>(steps_), std::move(w), model_buffers(model_)});
    rate_sum_ = 0;
    steps_ = 0;
    epochs_ = 0;
  }

  [[nodiscard]] const std::vector<recorded>& checkpoints() const noexcept { return checkpoints_; }

private:
  Model& model_;
  const batch_order& order_;
  index every_;
  double rate_sum_ = 0;
  index steps_ = 0, epochs_ = 0;
  std::vector<recorded> checkpoints_;
};

/// --method tracin: trains recording w_c every --tracin-every epochs, then TracIn-CP with the
/// weights η_c·K_c/(|B|(1 − μ)) (docs/influence.md). Every checkpoint's gradients are taken on the
/// running statistics it was recorded with (a model with batch norms: one checkpoint at a time,
/// the terms summed here; the final statistics are set back afterwards).
template <class Job>
matrix<typename Job::T, typename Job::B> tracin_contributions(Job& job) {
  using T = typename Job::T;
  using B = typename Job::B;
  tracin_recorder<typename Job::model_type> recorder(job.model, job.order,
                                                     job.opt.tracin_every > 0 ? job.opt.tracin_every : 1);
  job.train_model(recorder);
  std::vector<tracin_checkpoint<T>> checkpoints;
  for (const auto& c : recorder.checkpoints())
    checkpoints.push_back({c.step, c.parameters.view(),
                           tracin_weight(c.mean_rate, c.epochs, job.order.batch_size(), job.opt.momentum)});
  auto C = on_running_statistics(job.model, [&] {
    if (!job.has_batch_norms() || checkpoints.size() <= 1)  // the last checkpoint has the final statistics
      return tracin(job.model, job.loss, std::span<const tracin_checkpoint<T>>(checkpoints), job.train, job.tracked,
                    job.test);
    const auto final_buffers = model_buffers(job.model);
    matrix<T, B> sum;
    for (std::size_t c = 0; c < checkpoints.size(); ++c) {
      set_model_buffers(job.model, std::span<const T>(recorder.checkpoints()[c].buffers));
      auto term = tracin(job.model, job.loss, std::span<const tracin_checkpoint<T>>(&checkpoints[c], 1), job.train,
                         job.tracked, job.test);
      if (c == 0) {
        sum = std::move(term);
      } else {
        B::axpy(T(1), vector_view<const T>(std::as_const(term).view().data, term.rows() * term.cols()),
                vector_view<T>(sum.view().data, sum.rows() * sum.cols()));
      }
    }
    set_model_buffers(job.model, std::span<const T>(final_buffers));
    return sum;
  });
  if (!checkpoints.empty())
    fmt::print("tracin: {} checkpoints, weights {:.3e} (first) to {:.3e} (last)\n", checkpoints.size(),
               checkpoints.front().weight, checkpoints.back().weight);
  return C;
}

/// --lean: the first run gives w_T and the test gradients; the second, from the same start along
/// the same batches and rates, the projections onto them, O(n·M) memory instead of O(n·|w|).
template <class Policy, class Job>
matrix<typename Job::T, typename Job::B> lean_contributions(Job& job) {
  using T = typename Job::T;
  using B = typename Job::B;
  const index P = job.w.size();
  vector<T, B> w0(P);
  B::copy(std::as_const(job.w).view(), w0.view());
  const auto settings = tracking_settings(job.opt);
  const auto buffers0 = model_buffers(job.model);  // training moves the running statistics: the replay starts here too
  job.fit.fit(job.w.view(), job.train, job.order, nullptr);
  const auto U = on_running_statistics(
      job.model, [&] { return per_sample_gradients(job.model, job.loss, std::as_const(job.w).view(), job.test); });
  vector<T, B> w_first(P);
  B::copy(std::as_const(job.w).view(), w_first.view());
  const auto buffers_first = model_buffers(job.model);

  B::copy(std::as_const(w0).view(), job.w.view());
  set_model_buffers(job.model, std::span<const T>(buffers0));
  SGD<T, B> replay_optimizer(P, sgd_settings(job.opt));
  list_schedule replay_schedule(job.rates);
  trainer replay(job.model, job.loss, replay_optimizer, replay_schedule);
  hypergradient_tracker<typename Job::model_type, SoftmaxCrossEntropy<T, B>, Policy> tracker(
      job.model, job.loss, replay_optimizer, job.tracked, job.N(), lean_projection<T>{U.view()}, settings);
  theorem1_conditions theorem(job.opt.weight_decay);
  replay.fit(job.w.view(), job.train, job.order, nullptr, tracker, theorem);
  if (job.w.to_host() != w_first.to_host() || model_buffers(job.model) != buffers_first)
    throw numerical_error("--lean: the replay did not reproduce the first run's parameters (and running statistics) "
                          "bit for bit; the contributions would not be HYDRA's");
  auto C = contributions_from_projections<B>(tracker.projections(), job.N());
  return C;
}

/// The bytes --method exact --lean holds in memory: the trajectory (every step's parameters, none
/// when they are in a --state-dir file, or K-step checkpoints of parameters and velocity plus one
/// segment) and the N × M projections.
inline double adjoint_bytes(index steps, index P, index N, index M, index every, bool in_file, std::size_t scalar) {
  const double vectors = in_file      ? 0.0
                         : every == 0 ? static_cast<double>(steps)
                                      : 2.0 * static_cast<double>((steps + every - 1) / every) + static_cast<double>(every);
  return (vectors * static_cast<double>(P) + 2.0 * static_cast<double>(N) * static_cast<double>(M)) *
         static_cast<double>(scalar);
}

/// --method exact --lean --batch-norm running: the running statistics of every step, as training
/// leaves them for that step's attribution passes (the step's own update done), recorded as
/// training goes (before_update) and set back on the model when the sweep reaches the step.
template <class Model>
class buffer_recorder {
public:
  using T = typename Model::scalar_type;
  using B = typename Model::backend_type;
  explicit buffer_recorder(Model& model) : model_(model) {}
  void before_update(const step_context<T, B>&) { steps_.push_back(model_buffers(model_)); }
  void restore(index t) { set_model_buffers(model_, std::span<const T>(steps_.at(static_cast<std::size_t>(t)))); }

private:
  Model& model_;
  std::vector<std::vector<T>> steps_;
};

/// A trajectory (trajectory_recorder, checkpointed_trajectory) whose parameters(t) also sets the
/// running statistics of step t: what the adjoint sweep reads of the steps, visited backwards.
template <class Trajectory, class Model>
struct trajectory_with_buffers {
  Trajectory& inner;
  buffer_recorder<Model>& buffers;
  [[nodiscard]] index steps() const { return inner.steps(); }
  [[nodiscard]] auto learning_rate(index t) const { return inner.learning_rate(t); }
  [[nodiscard]] auto parameters(index t) {
    buffers.restore(t);
    return inner.parameters(t);
  }
};

/// --method exact --lean: one training run recording the trajectory, then the adjoint sweep gives
/// the exact contributions of every training sample at once (docs/hypergradient.md, "The
/// adjoint"); --track chooses which rows are written.
template <class Job>
matrix<typename Job::T, typename Job::B> adjoint_contributions(Job& job) {
  using T = typename Job::T;
  using B = typename Job::B;
  const index P = job.w.size(), N = job.N(), M = job.test.size(), K = job.opt.adjoint_checkpoint_every;
  const bool in_file = !job.opt.state_dir.empty();
  // On the running statistics, the sweep needs each step's, not the final ones: recorded per step.
  const bool step_buffers = job.has_batch_norms() && batch_norm_setting(job.opt) == batch_norm_statistics::running;
  const double buffer_bytes = step_buffers ? static_cast<double>(job.order.steps()) *
                                                 static_cast<double>(model_buffers(job.model).size()) * sizeof(T)
                                           : 0.0;
  const double bytes = adjoint_bytes(job.order.steps(), P, N, M, K, in_file, sizeof(T)) + buffer_bytes;
  const auto available = static_cast<double>(B::memory_available());
  if (bytes > available)
    fail("--method exact --lean would hold " + std::to_string(static_cast<long long>(bytes)) + " bytes (" +
         (K == 0 ? std::string("every step's parameters") : "checkpoints every " + std::to_string(K) + " steps") +
         "), more than the " + std::to_string(static_cast<long long>(available)) +
         " available; use --adjoint-checkpoint-every K (about the square root of the step count) or --state-dir DIR");
  const auto sweep = [&](auto& trajectory) {
    buffer_recorder<typename Job::model_type> buffers(job.model);
    if (step_buffers) job.fit.fit(job.w.view(), job.train, job.order, nullptr, trajectory, buffers);
    else job.fit.fit(job.w.view(), job.train, job.order, nullptr, trajectory);
    const auto U = on_running_statistics(
        job.model, [&] { return per_sample_gradients(job.model, job.loss, std::as_const(job.w).view(), job.test); });
    if (!step_buffers)
      return adjoint_projections<Exact>(job.model, job.loss, job.train, job.order, trajectory, U.view(), job.optimizer);
    const auto final_buffers = model_buffers(job.model);
    trajectory_with_buffers<std::remove_cvref_t<decltype(trajectory)>, typename Job::model_type> stepwise{trajectory,
                                                                                                          buffers};
    auto projections =
        adjoint_projections<Exact>(job.model, job.loss, job.train, job.order, stepwise, U.view(), job.optimizer);
    set_model_buffers(job.model, std::span<const T>(final_buffers));
    return projections;
  };
  matrix<T, B> all;
  if (in_file) {
    if constexpr (B::host_accessible) {  // --device cuda refuses --state-dir before this point
      trajectory_recorder<T, B> trajectory(job.order.steps(), P, job.opt.state_dir);
      all = sweep(trajectory);
    }
  } else if (K == 0) {
    trajectory_recorder<T, B> trajectory;
    all = sweep(trajectory);
  } else {
    checkpointed_trajectory trajectory(job.model, job.loss, job.optimizer, job.train, job.order, K);
    all = sweep(trajectory);
  }
  matrix<T, B> rows(static_cast<index>(job.tracked.size()), M);
  for (std::size_t r = 0; r < job.tracked.size(); ++r) {
    const index i = job.tracked[r];
    B::copy(vector_view<const T>(std::as_const(all).view().row(i), M),
            vector_view<T>(rows.view().row(static_cast<index>(r)), M));
  }
  return contributions_from_projections<B>(std::as_const(rows).view(), N);
}

/// --method hessian-free or exact: trains while tracking the hypergradients, writes them, then C.
template <class Policy, class Job>
matrix<typename Job::T, typename Job::B> tracked_contributions(Job& job) {
  using T = typename Job::T;
  using B = typename Job::B;
  hypergradient_tracker<typename Job::model_type, SoftmaxCrossEntropy<T, B>, Policy> tracker(
      job.model, job.loss, job.optimizer, job.tracked, job.N(), tracking_settings(job.opt));
  theorem1_conditions theorem(job.opt.weight_decay);
  // Theorem 1 bounds the Hessian-free error: warn (stderr) when the run is outside its conditions.
  if constexpr (Policy::hessian_aware) job.train_model(tracker);
  else job.train_model(tracker, theorem);
  // test_contributions takes the test gradients on the running statistics itself.
  auto C = test_contributions(job.model, job.loss, std::as_const(job.w).view(), job.test, tracker.hypergradients(),
                              job.N());
  const auto hypergradients = tracker.hypergradients();
  const auto values = host_copy<B>(hypergradients);
  check_finite_result(values, hypergradients.cols, "a hypergradient dw_T/dε_i", job.tracked, "parameter");
  job.outputs.stage("hypergradients.npy", values, {hypergradients.rows, hypergradients.cols});
  return C;
}

/// The contributions of the method --method and --lean name (n_tracked × M, on the model's backend).
template <class Policy, class Job>
matrix<typename Job::T, typename Job::B> contributions_of(Job& job) {
  if constexpr (std::is_same_v<Policy, Influence>) return influence_contributions(job);
  else if constexpr (std::is_same_v<Policy, GradDot> || std::is_same_v<Policy, GradCos>)
    return similarity_contributions<Policy>(job);
  else if constexpr (std::is_same_v<Policy, TracIn>) return tracin_contributions(job);
  else if (job.opt.lean && Policy::hessian_aware) return adjoint_contributions(job);
  else if (job.opt.lean) return lean_contributions<Policy>(job);
  else return tracked_contributions<Policy>(job);
}

} // namespace hydra::cli
