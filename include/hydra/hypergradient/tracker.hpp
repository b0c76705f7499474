#pragma once
// hypergradient_tracker: carries ∇_{t,i} = dw_t/dε_i and dv_t/dε_i for every tracked training
// sample i through training (supplement Eq. 35–36). It is a trainer callback: at step t it reads
// the batch B_t, the learning rate η_t and the parameters w_{t−1} before the update, and applies
//
//   dv_t/dε_i = p·dv_{t−1}/dε_i + H_t ∇_{t−1,i} + λ·∇_{t−1,i} + [i ∈ B_t]·(N/|B_t|)·g_{t,i}
//   ∇_{t,i}   = ∇_{t−1,i} − η_t·dv_t/dε_i
//
// with g_{t,i} the gradient of sample i's loss at w_{t−1} and H_t the Hessian of the mean batch
// loss (no weight decay) there. The Exact policy computes H_t∇ for all tracked samples in batched
// Hessian-vector products, chunked to a memory bound; HessianFree drops the term.

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include <unistd.h>

#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/hypergradient/policy.hpp"
#include "hydra/nn/concepts.hpp"
#include "hydra/optim/concepts.hpp"
#include "hydra/train/trainer.hpp"

namespace hydra {

struct tracker_options {
  /// Exact only: the most bytes of Hessian-vector-product workspace (directions' tangents and
  /// products) in use at once; tracked samples are processed in chunks that fit.
  std::size_t hvp_memory_bytes = std::size_t{256} << 20;
  /// Refuse (before allocating) states of more bytes than this; 0 means the physical memory.
  std::size_t state_memory_limit = 0;
  /// Stop with numerical_error when a state becomes NaN/Inf (naming the sample and the step).
  /// The update detects it for free; this only decides whether to throw.
  bool check_finite = true;
};

/// Bytes of the two states for n tracked samples of a model with P parameters.
template <Scalar T>
[[nodiscard]] constexpr double hypergradient_state_bytes(index n, index parameters) noexcept {
  return 2.0 * static_cast<double>(n) * static_cast<double>(parameters) * sizeof(T);
}

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
      : model_(model), loss_(loss), tracked_(std::move(tracked)), N_(training_set_size), p_(momentum),
        lambda_(weight_decay), options_(options) {
    const index P = model_.parameter_count();
    if (N_ <= 0) throw invalid_argument("hypergradient_tracker: the training set size must be positive");
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
    const index n = tracked_count();
    const double bytes = hypergradient_state_bytes<T>(n, P);
    const double limit = static_cast<double>(options_.state_memory_limit > 0 ? options_.state_memory_limit : physical_memory());
    if (bytes > limit)
      throw allocation_error("hypergradient_tracker: tracking " + std::to_string(n) + " samples of a model with " +
                             std::to_string(P) + " parameters needs " + std::to_string(static_cast<long long>(bytes)) +
                             " bytes for the two states, more than the " + std::to_string(static_cast<long long>(limit)) +
                             " bytes available; track fewer samples");
    hypergradients_ = matrix<T, B>(n, P);
    momentum_derivatives_ = matrix<T, B>(n, P);
    source_rows_host_.assign(static_cast<std::size_t>(n), -1);
    weights_host_.assign(static_cast<std::size_t>(n), T(0));
    source_rows_ = typename B::template buffer<index>(n);
    weights_ = typename B::template buffer<T>(n);
    B::copy_from_host(source_rows_host_.data(), n, source_rows_.data());
    B::copy_from_host(weights_host_.data(), n, weights_.data());
  }

  /// Reads p and λ from the optimizer that the trainer steps.
  template <class O>
    requires OptimizerFor<O, typename M::scalar_type>
  hypergradient_tracker(M& model, L& loss, const O& optimizer, std::vector<index> tracked, index training_set_size,
                        tracker_options options = {})
      : hypergradient_tracker(model, loss, std::move(tracked), training_set_size, optimizer.momentum(),
                              optimizer.weight_decay(), options) {}

  /// The trainer hook: one step of the recurrence at w_{t−1} = ctx.parameters.
  void before_update(const step_context<T, B>& ctx) {
    const index n = tracked_count();
    const index batch = static_cast<index>(ctx.batch.size());
    if (ctx.parameters.size != model_.parameter_count())
      throw shape_error("hypergradient_tracker: parameters of length " + std::to_string(ctx.parameters.size) +
                        " for a model with " + std::to_string(model_.parameter_count()));
    if (n == 0) {
      ++steps_;
      return;
    }
    const bool sources = mark_batch(ctx.batch);
    if (sources) {
      per_sample_.resize(batch, model_.parameter_count());
      model_.per_sample_gradients(ctx.parameters, ctx.features, ctx.targets, loss_, per_sample_.view());
    }
    const index* rows = sources ? source_rows_.data() : nullptr;
    const T* weights = sources ? weights_.data() : nullptr;
    const T eta = ctx.learning_rate;
    bool finite = true;
    if constexpr (Policy::hessian_aware) {
      const index chunk = chunk_size(batch);
      for (index first = 0; first < n; first += chunk) {
        const index k = std::min(chunk, n - first);
        products_.resize(k, model_.parameter_count());
        model_.hessian_vector_products(ctx.parameters, ctx.features, ctx.targets, loss_,
                                       std::as_const(hypergradients_).view().row_block(first, k), products_.view());
        finite &= B::hypergradient_update(p_, lambda_, eta, std::as_const(products_).view(), rows ? rows + first : nullptr,
                                weights ? weights + first : nullptr, std::as_const(per_sample_).view(),
                                momentum_derivatives_.view().row_block(first, k),
                                hypergradients_.view().row_block(first, k));
      }
    } else {
      finite = B::hypergradient_update(p_, lambda_, eta, matrix_view<const T>{}, rows, weights,
                              std::as_const(per_sample_).view(), momentum_derivatives_.view(), hypergradients_.view());
    }
    unmark_batch();
    if (!finite && options_.check_finite) report_non_finite(ctx.step);
    ++steps_;
  }

  /// Row r: ∇_{T,i} = dw_T/dε_i for i = tracked()[r], after the steps seen so far.
  [[nodiscard]] matrix_view<const T> hypergradients() const noexcept { return hypergradients_.view(); }
  /// Row r: dv_T/dε_i.
  [[nodiscard]] matrix_view<const T> momentum_derivatives() const noexcept { return momentum_derivatives_.view(); }
  [[nodiscard]] std::span<const index> tracked() const noexcept { return tracked_; }
  [[nodiscard]] index tracked_count() const noexcept { return static_cast<index>(tracked_.size()); }
  /// The row of training sample i, or −1 when it is not tracked.
  [[nodiscard]] index row_of(index i) const { return row_of_.at(static_cast<std::size_t>(i)); }
  [[nodiscard]] index training_set_size() const noexcept { return N_; }
  [[nodiscard]] index steps() const noexcept { return steps_; }
  [[nodiscard]] T momentum() const noexcept { return p_; }
  [[nodiscard]] T weight_decay() const noexcept { return lambda_; }

private:
  static std::size_t physical_memory() {
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    const long page = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page)
                                 : static_cast<std::size_t>(-1);
  }

  /// Sets each tracked in-batch sample's gradient source (its first position in the batch) and
  /// weight N/|B_t| times its multiplicity; returns whether any tracked sample is in the batch.
  bool mark_batch(std::span<const index> batch) {
    const T scale = static_cast<T>(N_) / static_cast<T>(batch.size());
    for (std::size_t k = 0; k < batch.size(); ++k) {
      const index i = batch[k];
      if (i < 0 || i >= N_)
        throw invalid_argument("hypergradient_tracker: batch index " + std::to_string(i) + " is outside [0, " +
                               std::to_string(N_) + ")");
      const index r = row_of_[static_cast<std::size_t>(i)];
      if (r < 0) continue;
      auto& row = source_rows_host_[static_cast<std::size_t>(r)];
      if (row < 0) {
        row = static_cast<index>(k);
        marked_.push_back(r);
      }
      weights_host_[static_cast<std::size_t>(r)] += scale;
    }
    upload();
    return !marked_.empty();
  }
  void unmark_batch() {
    for (index r : marked_) {
      source_rows_host_[static_cast<std::size_t>(r)] = -1;
      weights_host_[static_cast<std::size_t>(r)] = T(0);
    }
    upload();
    marked_.clear();
  }
  void upload() {
    for (index r : marked_) {
      B::copy_from_host(&source_rows_host_[static_cast<std::size_t>(r)], 1, source_rows_.data() + r);
      B::copy_from_host(&weights_host_[static_cast<std::size_t>(r)], 1, weights_.data() + r);
    }
  }

  /// Directions per Hessian-vector-product call so that the workspace stays within the bound.
  index chunk_size(index batch) const {
    index per_direction = model_.parameter_count();  // the products
    if constexpr (requires { model_.tangent_elements_per_direction(batch); })
      per_direction += model_.tangent_elements_per_direction(batch);
    else
      per_direction += 4 * batch * (model_.input_size() + model_.output_size());
    const auto fit = static_cast<index>(options_.hvp_memory_bytes / (sizeof(T) * static_cast<std::size_t>(per_direction)));
    return std::max<index>(1, fit);
  }

  /// The update reported a NaN or Inf: find the first sample whose state holds one.
  void report_non_finite(index step) const {
    const index P = model_.parameter_count();
    for (index r = 0; r < tracked_count(); ++r) {
      const auto h = vector_view<const T>(hypergradients_.data() + r * P, P);
      const auto v = vector_view<const T>(momentum_derivatives_.data() + r * P, P);
      if (!B::all_finite(h) || !B::all_finite(v))
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
  std::vector<index> row_of_;
  matrix<T, B> hypergradients_;
  matrix<T, B> momentum_derivatives_;
  matrix<T, B> per_sample_;
  matrix<T, B> products_;
  std::vector<index> source_rows_host_;
  std::vector<T> weights_host_;
  std::vector<index> marked_;
  typename B::template buffer<index> source_rows_;
  typename B::template buffer<T> weights_;
  index steps_ = 0;
};

} // namespace hydra
