#pragma once
// What the adjoint sweep (adjoint.hpp) needs of a training run: w_{t−1} and η_t of every step t,
// visited from the last step back to the first. Two trainer callbacks record it:
//  - trajectory_recorder keeps every w_{t−1}: T × |w| values, in memory or in a mapped file;
//  - checkpointed_trajectory keeps w and the optimizer's velocity every K steps and recomputes a
//    segment of K parameter vectors forward when the sweep reaches it, with the trainer's own
//    operations in the trainer's order, so the recomputed vectors are the recorded ones bit for
//    bit: O(T/K + K) vectors, one extra forward pass over the run.
// Both offer steps(), parameters(t) and learning_rate(t).

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/mapped_matrix.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/data/batch_order.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/nn/training_mode.hpp"
#include "hydra/optim/concepts.hpp"
#include "hydra/train/batch.hpp"
#include "hydra/train/callback.hpp"

namespace hydra {

namespace detail {
inline void check_next_step(const char* who, index step, index recorded) {
  if (step != recorded)
    throw invalid_argument(std::string(who) + ": step " + std::to_string(step) + " arrived after " +
                           std::to_string(recorded) + " recorded steps; record a run from its first step");
}
} // namespace detail

/// The parameters before every step and the step's learning rate, recorded from step 0 on: in
/// backend memory, or in a mapped scratch file (host backends) for trajectories larger than RAM.
template <Scalar T, class B>
class trajectory_recorder {
public:
  /// Every w_{t−1} in backend memory, one vector per step as the steps arrive.
  trajectory_recorder() = default;

  /// Every w_{t−1} of a run of at most `steps` steps of `parameters` parameters in a scratch file
  /// created in `directory` (core/mapped_matrix.hpp: reserved in full now, unlinked at once). Each
  /// row's pages are handed back to the kernel once written and again once the sweep has read
  /// it, so resident memory stays at a few parameter vectors.
  trajectory_recorder(index steps, index parameters, const std::filesystem::path& directory)
    requires(B::host_accessible)
      : file_(directory, steps, parameters, "the recorded trajectory") {}

  void before_update(const step_context<T, B>& ctx) {
    const index t = steps();
    detail::check_next_step("trajectory_recorder", ctx.step, t);
    if (in_file()) {
      if (t >= file_.rows())
        throw invalid_argument("trajectory_recorder: step " + std::to_string(t) + " is beyond the " +
                               std::to_string(file_.rows()) + " steps its file was sized for");
      if (ctx.parameters.size != file_.cols())
        throw shape_error("trajectory_recorder: step " + std::to_string(t) + " has " + std::to_string(ctx.parameters.size) +
                          " parameters, the file was sized for " + std::to_string(file_.cols()));
      B::copy(ctx.parameters, vector_view<T>(file_.view().row(t), file_.cols()));
      release_rows(t - 1, 2);  // the page shared with the previous row is complete now
    } else {
      vector<T, B> w(ctx.parameters.size);
      B::copy(ctx.parameters, w.view());
      parameters_.push_back(std::move(w));
    }
    learning_rates_.push_back(ctx.learning_rate);
  }

  [[nodiscard]] index steps() const noexcept { return static_cast<index>(learning_rates_.size()); }
  /// w_{t−1} of step t (0-based t: the parameters at which step t took its gradient).
  [[nodiscard]] vector_view<const T> parameters(index t) const {
    if (t < 0 || t >= steps())
      throw invalid_argument("trajectory_recorder: step " + std::to_string(t) + " is outside the " +
                             std::to_string(steps()) + " recorded steps");
    if (!in_file()) return parameters_[static_cast<std::size_t>(t)].view();
    release_rows(t + 1, 2);  // the sweep goes backwards: the rows after t are done with
    return {file_.view().row(t), file_.cols()};
  }
  /// η_t as applied at step t.
  [[nodiscard]] T learning_rate(index t) const { return learning_rates_.at(static_cast<std::size_t>(t)); }
  [[nodiscard]] bool file_backed() const noexcept { return in_file(); }

private:
  [[nodiscard]] bool in_file() const noexcept { return file_.rows() > 0; }
  void release_rows(index first, index count) const noexcept {
    const index from = std::max<index>(first, 0), to = std::min(first + count, file_.rows());
    if (to > from) file_.release(from, to - from);
  }

  std::vector<vector<T, B>> parameters_;
  mapped_matrix<T> file_;
  std::vector<T> learning_rates_;
};

/// Checkpoints every `every` steps (w_{t−1} and the optimizer's velocity before step t) and the
/// learning rate of every step; parameters(t) recomputes t's segment from its checkpoint when
/// the segment is not the one held. The recomputation steps `optimizer` — the one training
/// used, restored to its final velocity when the object is destroyed — on the same data, batch
/// order, model and loss.
template <class M, class L, class O>
class checkpointed_trajectory {
public:
  using T = typename M::scalar_type;
  using B = typename M::backend_type;
  static_assert(CheckpointableOptimizer<O>,
                "hydra::checkpointed_trajectory: the optimizer must expose its velocity (velocity() and "
                "set_velocity(), hydra::CheckpointableOptimizer) to recompute a segment of training");

  checkpointed_trajectory(M& model, L& loss, O& optimizer, const dataset<T>& train, const batch_order& order, index every)
      : model_(model), loss_(loss), optimizer_(optimizer), train_(train), order_(order), every_(every) {
    if (every <= 0)
      throw invalid_argument("checkpointed_trajectory: the checkpoint interval K must be positive, got " +
                             std::to_string(every));
  }
  checkpointed_trajectory(const checkpointed_trajectory&) = delete;
  checkpointed_trajectory& operator=(const checkpointed_trajectory&) = delete;
  ~checkpointed_trajectory() {
    if (final_velocity_.size() > 0) optimizer_.set_velocity(final_velocity_.view());
  }

  void before_update(const step_context<T, B>& ctx) {
    detail::check_next_step("checkpointed_trajectory", ctx.step, steps());
    if (ctx.step % every_ == 0) {
      checkpoint c{vector<T, B>(ctx.parameters.size), vector<T, B>(ctx.parameters.size)};
      B::copy(ctx.parameters, c.w.view());
      B::copy(optimizer_.velocity(), c.velocity.view());
      checkpoints_.push_back(std::move(c));
    }
    learning_rates_.push_back(ctx.learning_rate);
  }

  [[nodiscard]] index steps() const noexcept { return static_cast<index>(learning_rates_.size()); }
  [[nodiscard]] index interval() const noexcept { return every_; }
  [[nodiscard]] T learning_rate(index t) const { return learning_rates_.at(static_cast<std::size_t>(t)); }
  /// Segments recomputed so far (each K steps of forward training, the last one shorter).
  [[nodiscard]] index recomputed_segments() const noexcept { return recomputed_; }

  /// w_{t−1} of step t; valid until parameters() is asked for a step of another segment.
  [[nodiscard]] vector_view<const T> parameters(index t) {
    if (t < 0 || t >= steps())
      throw invalid_argument("checkpointed_trajectory: step " + std::to_string(t) + " is outside the " +
                             std::to_string(steps()) + " recorded steps");
    const index segment = t / every_;
    if (segment != held_) recompute(segment);
    return segment_[static_cast<std::size_t>(t - segment * every_)].view();
  }

private:
  struct checkpoint {
    vector<T, B> w;
    vector<T, B> velocity;
  };

  /// Trains steps [s·K, min(T, (s+1)·K)) again from checkpoint s, as the trainer did: the batch
  /// loaded the same way, the mean gradient from model.gradient, then optimizer.step.
  void recompute(index segment) {
    const index P = model_.parameter_count();
    if (final_velocity_.size() == 0) {  // first recomputation: keep what training left in the optimizer
      final_velocity_ = vector<T, B>(P);
      B::copy(optimizer_.velocity(), final_velocity_.view());
    }
    const checkpoint& c = checkpoints_.at(static_cast<std::size_t>(segment));
    const index first = segment * every_, end = std::min(steps(), first + every_);
    segment_.resize(static_cast<std::size_t>(end - first));
    vector<T, B> w(P), gradient(P);
    B::copy(c.w.view(), w.view());
    optimizer_.set_velocity(c.velocity.view());
    for (index t = first; t < end; ++t) {
      auto& kept = segment_[static_cast<std::size_t>(t - first)];
      if (kept.size() != P) kept = vector<T, B>(P);
      B::copy(std::as_const(w).view(), kept.view());
      if (t + 1 == end) break;  // the next segment's start is its own checkpoint
      batch_.load(train_, order_.batch(t));
      {  // the training step as taken (batch statistics, step t's dropout masks); the running
         // estimates training left are kept as they are
        training_scope<M> training_mode(model_, t);
        (void)model_.gradient(std::as_const(w).view(), batch_.features(), batch_.targets(), loss_, gradient.view());
      }
      optimizer_.step(w.view(), std::as_const(gradient).view(), learning_rate(t));
    }
    held_ = segment;
    ++recomputed_;
  }

  M& model_;
  L& loss_;
  O& optimizer_;
  const dataset<T>& train_;
  const batch_order& order_;
  index every_;
  std::vector<checkpoint> checkpoints_;
  std::vector<T> learning_rates_;
  std::vector<vector<T, B>> segment_;  // w_{t−1} for the steps of segment held_
  index held_ = -1;
  index recomputed_ = 0;
  vector<T, B> final_velocity_;
  device_batch<T, B> batch_;
};

} // namespace hydra
