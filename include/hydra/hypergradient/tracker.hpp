#pragma once
// hypergradient_tracker: carries ∇_{t,i} = dw_t/dε_i and dv_t/dε_i for every tracked training
// sample i through training (supplement Eq. 35–36). It is a trainer callback: at step t it reads
// the batch B_t, the learning rate η_t and the parameters w_{t−1} before the update, and applies
//
//   dv_t/dε_i = p·dv_{t−1}/dε_i + H_t ∇_{t−1,i} + λ·∇_{t−1,i} + [i ∈ B_t]·(N/|B_t|)·g_{t,i}
//   ∇_{t,i}   = ∇_{t−1,i} − η_t·dv_t/dε_i
//
// with g_{t,i} the gradient of sample i's loss at w_{t−1} and H_t the Hessian of the mean batch
// loss (no weight decay) there; the arithmetic is recurrence.hpp's, run by the backend's kernels
// on inputs staged by staging.hpp, with states sized by state_budget.hpp. The Exact policy computes H_t∇ for all tracked samples in batched
// Hessian-vector products, chunked to a memory bound; HessianFree drops the term.
//
// HessianFree is updated lazily by default (transfer.hpp): a state is touched only when its sample
// is in a batch, brought forward over the steps it missed by one 2 × 2 transfer, and every state
// is brought to the current step when results are read. update_mode::eager keeps the step-by-step
// update of Algorithm 1 as the reference. Lean mode (HessianFree only) carries the projections
// u_j·∇_i onto given directions u_j (test-loss gradients at w_T, from a first run along the same
// trajectory) instead of the |w|-vectors: O(n·M) memory. The states live in backend memory or in a
// memory-mapped file (state_store.hpp).

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/hypergradient/policy.hpp"
#include "hydra/hypergradient/staging.hpp"
#include "hydra/hypergradient/state_budget.hpp"
#include "hydra/hypergradient/state_store.hpp"
#include "hydra/hypergradient/transfer.hpp"
#include "hydra/nn/concepts.hpp"
#include "hydra/nn/hvp_workspace.hpp"
#include "hydra/optim/concepts.hpp"
#include "hydra/train/trainer.hpp"

namespace hydra {

/// How the Hessian-free states advance: lazily (transfer.hpp), or every state at every step as
/// in Algorithm 1. automatic: lazy for HessianFree, eager for Exact (which has no lazy form).
enum class update_mode { automatic, lazy, eager };

[[nodiscard]] constexpr const char* name_of(update_mode m) noexcept {
  switch (m) {
    case update_mode::automatic: return "automatic";
    case update_mode::lazy: return "lazy";
    case update_mode::eager: return "eager";
  }
  return "?";
}

struct tracker_options {
  /// Exact only: the most bytes of Hessian-vector-product workspace (directions' tangents and
  /// products) in use at once; tracked samples are processed in chunks that fit.
  std::size_t hvp_memory_bytes = std::size_t{256} << 20;
  /// Refuse (before allocating) states of more bytes than this; 0 means the physical memory.
  std::size_t state_memory_limit = 0;
  /// Stop with numerical_error when a state becomes NaN/Inf (naming the sample and the step).
  /// The update detects it for free; this only decides whether to throw.
  bool check_finite = true;
  update_mode update = update_mode::automatic;
  /// Non-empty: keep the states in a memory-mapped scratch file in this directory (host-accessible
  /// backends) instead of memory; the file is reserved up front and removed when the tracker ends.
  std::filesystem::path state_directory{};
};

/// Lean mode: carry u_j·∇_i and u_j·dv_i for the rows u_j of `directions` (M × |w|, backend
/// memory; typically ∇ℓ(test_j, w_T) from a first run) instead of the |w|-vectors.
template <Scalar T>
struct lean_projection {
  matrix_view<const T> directions;
};

template <class M, class L, HypergradientPolicy Policy = HessianFree>
class hypergradient_tracker {
  static_assert(check_model<M>());
  static_assert(check_loss<L>());

public:
  using scalar_type = typename M::scalar_type;
  using backend_type = typename M::backend_type;
  using policy_type = Policy;
  using T = scalar_type;
  using B = backend_type;

  /// Tracks the training samples `tracked` (indices into a training set of `training_set_size`
  /// samples, N in the recurrence) under SGD with the given momentum p and weight decay λ.
  hypergradient_tracker(M& model, L& loss, std::vector<index> tracked, index training_set_size, T momentum,
                        T weight_decay, tracker_options options = {})
      : hypergradient_tracker(model, loss, std::move(tracked), training_set_size, momentum, weight_decay,
                              lean_projection<T>{}, std::move(options)) {}

  /// Lean mode: carries the projections onto `lean.directions` (see lean_projection).
  hypergradient_tracker(M& model, L& loss, std::vector<index> tracked, index training_set_size, T momentum,
                        T weight_decay, lean_projection<T> lean, tracker_options options = {})
      : model_(model), loss_(loss), tracked_(std::move(tracked)), N_(training_set_size), p_(momentum),
        lambda_(weight_decay), options_(std::move(options)) {
    const index P = model_.parameter_count();
    if (N_ <= 0) throw invalid_argument("hypergradient_tracker: the training set size must be positive");
    lazy_ = resolve_update_mode(options_.update);
    if (lean.directions.data != nullptr || lean.directions.rows > 0) {
      if constexpr (Policy::hessian_aware)
        throw invalid_argument("hypergradient_tracker: lean mode needs the Hessian-free variant (the Hessian term "
                               "H_t·∇ is not a function of the projections u·∇)");
      if (lean.directions.cols != P)
        throw shape_error("hypergradient_tracker: lean directions have " + std::to_string(lean.directions.cols) +
                          " columns, the model has " + std::to_string(P) + " parameters");
      directions_ = matrix<T, B>(lean.directions.rows, P);
      B::copy(lean.directions, directions_.view());
      lean_ = true;
    }
    index_tracked_samples();
    const index n = tracked_count();
    const index width = state_width();
    if (options_.state_directory.empty()) {
      check_state_budget<T, B>(n, width, options_.state_memory_limit);
      states_ = state_store<T, B>(n, width);
    } else if constexpr (B::host_accessible) {
      states_ = state_store<T, B>(options_.state_directory, n, width);
    } else {
      throw invalid_argument("hypergradient_tracker: a state directory needs a host-accessible backend; this "
                             "backend's memory cannot be mapped to a file");
    }
    ledger_ = transfer_ledger(n);
    marks_ = detail::batch_marks<T, B>(n, /*device_copies=*/!lazy_);
  }

  /// Reads p and λ from the linear map of the optimizer's step (LinearizedOptimizer).
  template <class O>
    requires OptimizerFor<O, typename M::scalar_type>
  hypergradient_tracker(M& model, L& loss, const O& optimizer, std::vector<index> tracked, index training_set_size,
                        tracker_options options = {})
      : hypergradient_tracker(model, loss, optimizer, std::move(tracked), training_set_size, lean_projection<T>{},
                              std::move(options)) {}
  template <class O>
    requires OptimizerFor<O, typename M::scalar_type>
  hypergradient_tracker(M& model, L& loss, const O& optimizer, std::vector<index> tracked, index training_set_size,
                        lean_projection<T> lean, tracker_options options = {})
      : hypergradient_tracker(model, loss, std::move(tracked), training_set_size, linear_map(optimizer).p,
                              linear_map(optimizer).lambda, lean, std::move(options)) {}

  /// The trainer hook: one step of the recurrence at w_{t−1} = ctx.parameters.
  void before_update(const step_context<T, B>& ctx) {
    if (ctx.parameters.size != model_.parameter_count())
      throw shape_error("hypergradient_tracker: parameters of length " + std::to_string(ctx.parameters.size) +
                        " for a model with " + std::to_string(model_.parameter_count()));
    if (tracked_count() > 0) {
      if (lazy_) lazy_step(ctx);
      else eager_step(ctx);
    }
    ++steps_;
  }

  /// Row r: ∇_{T,i} = dw_T/dε_i for i = tracked()[r], after the steps seen so far. Reading brings
  /// every lazily updated state to the current step first (one pass over the states).
  [[nodiscard]] matrix_view<const T> hypergradients() {
    require_full_states("hypergradients");
    bring_up_to_date();
    return std::as_const(states_).hypergradients();
  }
  /// Row r: dv_T/dε_i.
  [[nodiscard]] matrix_view<const T> momentum_derivatives() {
    require_full_states("momentum_derivatives");
    bring_up_to_date();
    return std::as_const(states_).momentum_derivatives();
  }
  /// Lean mode: row r, column j: u_j·∇_{T,i} (so C(i, j) = −(1/N)·projections()(r, j) when u_j is
  /// the gradient of test loss j at w_T).
  [[nodiscard]] matrix_view<const T> projections() {
    if (!lean_) throw invalid_argument("hypergradient_tracker::projections: the tracker is not in lean mode");
    bring_up_to_date();
    return std::as_const(states_).hypergradients();
  }
  /// Lean mode: u_j·dv_{T,i}.
  [[nodiscard]] matrix_view<const T> projected_momentum_derivatives() {
    if (!lean_) throw invalid_argument("hypergradient_tracker::projected_momentum_derivatives: not in lean mode");
    bring_up_to_date();
    return std::as_const(states_).momentum_derivatives();
  }

  [[nodiscard]] std::span<const index> tracked() const noexcept { return tracked_; }
  [[nodiscard]] index tracked_count() const noexcept { return static_cast<index>(tracked_.size()); }
  /// The row of training sample i, or −1 when it is not tracked.
  [[nodiscard]] index row_of(index i) const { return row_of_.at(static_cast<std::size_t>(i)); }
  [[nodiscard]] index training_set_size() const noexcept { return N_; }
  [[nodiscard]] index steps() const noexcept { return steps_; }
  [[nodiscard]] T momentum() const noexcept { return p_; }
  [[nodiscard]] T weight_decay() const noexcept { return lambda_; }
  [[nodiscard]] bool lazy() const noexcept { return lazy_; }
  [[nodiscard]] bool lean() const noexcept { return lean_; }
  [[nodiscard]] bool file_backed() const noexcept { return states_.file_backed(); }
  /// Values per state row: |w|, or the number of lean directions.
  [[nodiscard]] index state_width() const noexcept { return lean_ ? directions_.rows() : model_.parameter_count(); }
  /// Lazy mode: distinct last-touch steps with states waiting (each costs 4 multiplies per step).
  [[nodiscard]] index pending_groups() const noexcept { return ledger_.live_groups(); }

  /// Checkpoints (train/checkpoint via the trainer): the configuration for verification, the
  /// lazy ledger and both states exactly as stored (not brought up to date, so a resumed run
  /// performs the identical arithmetic). Archive is hydra::archive_writer / archive_reader.
  template <class Archive>
  void save_state(Archive& archive) const {
    archive.write_string("tracker.policy", Policy::name);
    archive.template write<index>("tracker.shape", std::span<const index>(shape_record()));
    archive.template write<double>("tracker.hyperparameters", std::span<const double>(hyperparameter_record()));
    archive.template write<index>("tracker.tracked", std::span<const index>(tracked_));
    const auto ledger = ledger_.save();
    archive.template write<index>("tracker.ledger.group_of", std::span<const index>(ledger.group_of));
    archive.template write<double>("tracker.ledger.products", std::span<const double>(ledger.products));
    archive.template write<index>("tracker.ledger.members", std::span<const index>(ledger.members));
    save_rows(archive, "tracker.momentum_derivatives", states_.momentum_derivatives());
    save_rows(archive, "tracker.hypergradients", states_.hypergradients());
  }

  /// Restores what save_state wrote; refuses (format_error naming the field) a checkpoint of
  /// another configuration.
  template <class Archive>
  void load_state(Archive& archive) {
    expect_same(archive, "tracker.policy", archive.read_string("tracker.policy", 64), Policy::name);
    const auto shape = archive.template read_vector<index>("tracker.shape", 16);
    const auto want_shape = shape_record();
    static constexpr const char* shape_fields[] = {"tracked samples", "state width", "training set size N",
                                                   "update mode (1 = lazy)", "lean (1 = yes)", "steps"};
    if (shape.size() != want_shape.size())
      throw format_error(archive.path().string() + ": tracker.shape has " + std::to_string(shape.size()) + " fields, expected " +
                         std::to_string(want_shape.size()));
    for (std::size_t k = 0; k + 1 < shape.size(); ++k)  // the step count is restored, not compared
      if (shape[k] != want_shape[k])
        throw format_error(archive.path().string() + ": the checkpoint's tracker has " + shape_fields[k] + " = " +
                           std::to_string(shape[k]) + ", this tracker has " + std::to_string(want_shape[k]));
    const auto hyper = archive.template read_vector<double>("tracker.hyperparameters", 2);
    const auto want_hyper = hyperparameter_record();
    if (hyper.size() != 2 || hyper[0] != want_hyper[0] || hyper[1] != want_hyper[1])
      throw format_error(archive.path().string() + ": the checkpoint's tracker has other momentum / weight decay");
    const auto tracked = archive.template read_vector<index>("tracker.tracked", static_cast<std::uint64_t>(tracked_.size()));
    if (tracked != tracked_)
      throw format_error(archive.path().string() + ": the checkpoint tracks other training samples");
    const auto n = static_cast<std::uint64_t>(tracked_count());
    transfer_ledger::snapshot ledger;
    ledger.group_of = archive.template read_vector<index>("tracker.ledger.group_of", n);
    ledger.products = archive.template read_vector<double>("tracker.ledger.products", 4 * n + 4);
    ledger.members = archive.template read_vector<index>("tracker.ledger.members", n + 1);
    ledger_.restore(ledger);
    load_rows(archive, "tracker.momentum_derivatives", states_.momentum_derivatives());
    load_rows(archive, "tracker.hypergradients", states_.hypergradients());
    steps_ = shape.back();
    synchronized_at_ = -1;
  }

private:
  template <class O>
  static recurrence::step_coefficients<T> linear_map(const O& optimizer) {
    static_assert(check_linearized_optimizer<O>());
    if constexpr (LinearizedOptimizer<O>) return optimizer.step_coefficients(T(0));  // p and λ; η_t per step
    else return {};
  }

  bool resolve_update_mode(update_mode m) const {
    if (m == update_mode::eager) return false;
    if constexpr (Policy::hessian_aware) {
      if (m == update_mode::lazy)
        throw invalid_argument("hypergradient_tracker: lazy updating applies to the Hessian-free variant only (the "
                               "exact recurrence's Hessian changes every step); use update_mode::eager or automatic");
      return false;
    } else {
      return true;
    }
  }

  void index_tracked_samples() {
    row_of_.assign(static_cast<std::size_t>(N_), -1);
    for (std::size_t r = 0; r < tracked_.size(); ++r) {
      const index i = tracked_[r];
      if (i < 0 || i >= N_)
        throw invalid_argument("hypergradient_tracker: tracked[" + std::to_string(r) + "] = " + std::to_string(i) +
                               " is outside the training set [0, " + std::to_string(N_) + ")");
      if (row_of_[static_cast<std::size_t>(i)] >= 0)
        throw invalid_argument("hypergradient_tracker: training sample " + std::to_string(i) + " is tracked twice (tracked[" +
                               std::to_string(row_of_[static_cast<std::size_t>(i)]) + "] and tracked[" +
                               std::to_string(r) + "])");
      row_of_[static_cast<std::size_t>(i)] = static_cast<index>(r);
    }
  }

  std::vector<index> shape_record() const {
    return {tracked_count(), state_width(), N_, lazy_ ? 1 : 0, lean_ ? 1 : 0, steps_};
  }
  std::vector<double> hyperparameter_record() const { return {static_cast<double>(p_), static_cast<double>(lambda_)}; }

  template <class Archive>
  static void expect_same(Archive& archive, const char* field, const std::string& got, const std::string& want) {
    if (got != want)
      throw format_error(archive.path().string() + ": " + field + " is '" + got + "', this tracker's is '" + want + "'");
  }

  /// Rows in chunks through a host staging buffer (the states may be in device memory or larger
  /// than RAM in a mapped file).
  template <class Archive>
  void save_rows(Archive& archive, const char* name, matrix_view<const T> rows) const {
    archive.template begin_array<T>(name, static_cast<std::uint64_t>(rows.rows * rows.cols));
    std::vector<T> staging(static_cast<std::size_t>(rows.cols));
    for (index r = 0; r < rows.rows; ++r) {
      B::copy_to_host(rows.row(r), rows.cols, staging.data());
      archive.template append<T>(std::span<const T>(staging));
      states_.release(r, 1);
    }
  }
  template <class Archive>
  void load_rows(Archive& archive, const char* name, matrix_view<T> rows) {
    const auto count = archive.template begin_array<T>(name);
    if (count != static_cast<std::uint64_t>(rows.rows * rows.cols))
      throw format_error(archive.path().string() + ": " + name + " holds " + std::to_string(count) + " values, expected " +
                         std::to_string(rows.rows * rows.cols));
    std::vector<T> staging(static_cast<std::size_t>(rows.cols));
    for (index r = 0; r < rows.rows; ++r) {
      archive.template take<T>(std::span<T>(staging));
      B::copy_from_host(staging.data(), rows.cols, rows.row(r));
      states_.release(r, 1);
    }
  }

  void require_full_states(const char* what) const {
    if (lean_)
      throw invalid_argument(std::string("hypergradient_tracker::") + what +
                             ": a lean tracker carries only the projections; read projections()");
  }

  /// Per-sample gradients of the batch at w_{t−1}; in lean mode their projections (B × M).
  matrix_view<const T> gradient_sources(const step_context<T, B>& ctx) {
    per_sample_.resize(static_cast<index>(ctx.batch.size()), model_.parameter_count());
    model_.per_sample_gradients(ctx.parameters, ctx.features, ctx.targets, loss_, per_sample_.view());
    if (!lean_) return std::as_const(per_sample_).view();
    projected_.resize(per_sample_.rows(), directions_.rows());
    B::gemm(transpose::no, transpose::yes, T(1), std::as_const(per_sample_).view(), std::as_const(directions_).view(),
            T(0), projected_.view());
    return std::as_const(projected_).view();
  }

  void eager_step(const step_context<T, B>& ctx) {
    const index n = tracked_count();
    const bool sources = marks_.mark(ctx.batch, row_of_, N_);
    if (sources) marks_.upload();  // the whole arrays in two copies: on a device, far cheaper than two per row
    const auto source_matrix = sources ? gradient_sources(ctx) : matrix_view<const T>{};
    const index* rows = sources ? marks_.device_source_rows() : nullptr;
    const T* weights = sources ? marks_.device_weights() : nullptr;
    const T eta = ctx.learning_rate;
    auto dv = states_.momentum_derivatives();
    auto grad = states_.hypergradients();
    bool finite = true;
    if constexpr (Policy::hessian_aware) {
      const index chunk = chunk_size(static_cast<index>(ctx.batch.size()));
      for (index first = 0; first < n; first += chunk) {
        const index k = std::min(chunk, n - first);
        products_.resize(k, model_.parameter_count());
        model_.hessian_vector_products(ctx.parameters, ctx.features, ctx.targets, loss_,
                                       matrix_view<const T>(grad).row_block(first, k), products_.view());
        finite &= B::hypergradient_update(p_, lambda_, eta, std::as_const(products_).view(), rows ? rows + first : nullptr,
                                          weights ? weights + first : nullptr, source_matrix,
                                          dv.row_block(first, k), grad.row_block(first, k));
      }
    } else {
      finite = B::hypergradient_update(p_, lambda_, eta, matrix_view<const T>{}, rows, weights, source_matrix, dv, grad);
    }
    marks_.clear();
    if (!finite && options_.check_finite) report_non_finite(ctx.step, all_rows());
  }

  /// Only the tracked samples of this batch are touched: each brought over the steps it missed by
  /// its pending transfer (which now includes this step's A_t), plus its gradient term.
  void lazy_step(const step_context<T, B>& ctx) {
    ledger_.advance(step_transfer(static_cast<double>(p_), static_cast<double>(lambda_),
                                  static_cast<double>(ctx.learning_rate)));
    if (!marks_.mark(ctx.batch, row_of_, N_)) return;
    const auto sources = gradient_sources(ctx);
    const auto& marked = marks_.marked();
    const auto count = static_cast<index>(marked.size());
    staging_.reset(count);
    for (index k = 0; k < count; ++k) {
      const index r = marked[static_cast<std::size_t>(k)];
      staging_.set_row(k, r, ledger_.pending(r), marks_.source_row(r), marks_.weight(r));
    }
    const bool finite = staging_.apply(count, ctx.learning_rate, sources, states_.momentum_derivatives(),
                                       states_.hypergradients());
    for (const index r : marked) states_.release(r, 1);
    ledger_.touch(marked);
    if (!finite && options_.check_finite) report_non_finite(ctx.step, marked);
    marks_.clear();
  }

  /// Brings every lazily updated state to the current step, in chunks of rows.
  void bring_up_to_date() {
    if (!lazy_ || synchronized_at_ == steps_) return;
    constexpr index chunk = 1024;
    const index n = tracked_count();
    bool finite = true;
    for (index first = 0; first < n; first += chunk) {
      const index end = std::min(n, first + chunk);
      staging_.reset(end - first);
      index count = 0;
      for (index r = first; r < end; ++r) {
        const auto m = ledger_.pending(r);
        if (m == identity_transfer) continue;
        staging_.set_row(count, r, m, -1, T(0));
        ++count;
      }
      finite &= staging_.apply(count, T(0), matrix_view<const T>{}, states_.momentum_derivatives(),
                               states_.hypergradients());
      states_.release(first, end - first);
    }
    ledger_.mark_all_current();
    synchronized_at_ = steps_;
    if (!finite && options_.check_finite) report_non_finite(steps_ - 1, all_rows());
  }

  /// Directions per Hessian-vector-product call so that the workspace stays within the bound.
  index chunk_size(index batch) const { return hvp_directions_per_call(model_, batch, options_.hvp_memory_bytes); }

  std::vector<index> all_rows() const {
    std::vector<index> rows(static_cast<std::size_t>(tracked_count()));
    for (std::size_t r = 0; r < rows.size(); ++r) rows[r] = static_cast<index>(r);
    return rows;
  }

  /// An update reported a NaN or Inf: find the first of `rows` whose state holds one.
  void report_non_finite(index step, std::span<const index> rows) const {
    const auto dv = states_.momentum_derivatives();
    const auto grad = states_.hypergradients();
    for (const index r : rows) {
      if (!B::all_finite(vector_view<const T>(grad.row(r), grad.cols)) ||
          !B::all_finite(vector_view<const T>(dv.row(r), dv.cols)))
        throw numerical_error("hypergradient_tracker: the hypergradient of training sample " +
                              std::to_string(tracked_[static_cast<std::size_t>(r)]) + " became NaN or Inf at step " +
                              std::to_string(step));
    }
  }

  M& model_;
  L& loss_;
  std::vector<index> tracked_;
  index N_;
  T p_;
  T lambda_;
  tracker_options options_;
  bool lazy_ = false;
  bool lean_ = false;
  std::vector<index> row_of_;
  matrix<T, B> directions_;  // lean mode: M × |w|
  state_store<T, B> states_;
  transfer_ledger ledger_;
  index synchronized_at_ = 0;
  matrix<T, B> per_sample_;
  matrix<T, B> projected_;
  matrix<T, B> products_;
  detail::batch_marks<T, B> marks_;        // the batch's tracked rows (sources, weights)
  detail::transfer_staging<T, B> staging_;  // lazy: the rows of one hypergradient_transfer call
  index steps_ = 0;
};

} // namespace hydra
