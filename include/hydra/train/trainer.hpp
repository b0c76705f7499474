#pragma once
// The training loop: mini-batch SGD over a model, a loss, an optimizer, a learning-rate schedule
// and a batch order, with per-step callbacks (the hypergradient engine hooks in here), evaluation,
// NaN/Inf detection that names the step, and crash-safe checkpoints (written and read by
// train/checkpoint.hpp) from which resume() continues a run bit for bit.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/data/batch_order.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/nn/batch_norm_state.hpp"
#include "hydra/nn/training_mode.hpp"
#include "hydra/nn/concepts.hpp"
#include "hydra/optim/concepts.hpp"
#include "hydra/train/batch.hpp"
#include "hydra/train/callback.hpp"
#include "hydra/train/checkpoint.hpp"
#include "hydra/train/progress.hpp"

namespace hydra {

struct evaluation {
  double loss = 0;      // mean loss over the data set
  double accuracy = 0;  // fraction whose largest output is at the label
  index samples = 0;
};

struct trainer_options {
  progress_mode progress = progress_mode::automatic;
  index evaluation_batch_size = 1000;
  checkpoint_options checkpoint = {};  // off unless checkpoint.directory is set
  /// The divergence bound: a batch whose mean loss exceeds it stops the run with divergence_error,
  /// as a non-finite loss does. Off by default (a loss's scale is the user's to know); for softmax
  /// cross-entropy 100·ln C says the model gives the true classes a geometric-mean probability
  /// below C^−100, which no run that still learns does (hydra-attribute's default, --max-loss).
  double max_loss = std::numeric_limits<double>::infinity();
};

/// Training diverged: at `step`, the batch's mean loss was not finite or exceeded
/// trainer_options::max_loss, or the final parameters are not finite. `sample` is the training
/// sample of that batch with the largest (or a non-finite) loss, −1 for the parameters.
class divergence_error : public numerical_error {
public:
  divergence_error(const std::string& message, index step, index epoch, index sample, double batch_loss)
      : numerical_error(message), step_(step), epoch_(epoch), sample_(sample), batch_loss_(batch_loss) {}
  [[nodiscard]] index step() const noexcept { return step_; }
  [[nodiscard]] index epoch() const noexcept { return epoch_; }
  [[nodiscard]] index sample() const noexcept { return sample_; }
  [[nodiscard]] double batch_loss() const noexcept { return batch_loss_; }

private:
  index step_, epoch_, sample_;
  double batch_loss_;
};

template <class M, class L, class O, class S>
class trainer {
  static_assert(check_model<M>());
  static_assert(check_loss<L>());
  static_assert(check_optimizer<O>());
  static_assert(check_schedule<S>());

public:
  using scalar_type = typename M::scalar_type;
  using backend_type = typename M::backend_type;
  using T = scalar_type;
  using B = backend_type;
  static_assert(std::is_same_v<typename L::scalar_type, T> && std::is_same_v<typename O::value_type, T>,
                "hydra::trainer: the model, loss and optimizer must use the same scalar type (see docs/train.md)");

  trainer(M& model, L& loss, O& optimizer, S& schedule, trainer_options options = {})
      : model_(model), loss_(loss), optimizer_(optimizer), schedule_(schedule), options_(std::move(options)) {}

  /// Whether the optimizer and schedule types allow checkpoints (set_velocity, state/restore).
  static constexpr bool checkpointable = CheckpointableOptimizer<O> && CheckpointableSchedule<S>;

  /// Trains w in place over every step of `order`, then returns the per-epoch history.
  /// `validation` may be null. Throws divergence_error (a numerical_error) at the first step whose
  /// loss is not finite or exceeds options.max_loss, naming the step and the batch's worst sample,
  /// and when the final parameters are not finite.
  /// With options.checkpoint.directory set, writes a checkpoint after every epoch (and every
  /// every_steps-th step); that needs a checkpointable optimizer and schedule (invalid_argument
  /// before the first step otherwise).
  template <class... Callbacks>
  std::vector<epoch_report> fit(vector_view<T> w, const dataset<T>& train, const batch_order& order,
                                const dataset<T>* validation, Callbacks&... callbacks) {
    static_assert((check_callback<Callbacks>() && ...));
    static_assert((check_callback_hooks<std::remove_cvref_t<Callbacks>, T, B>() && ...));
    check_run("fit", w, train, order, validation);
    const bool checkpointing =
        detail::checkpoint::prepare_checkpoints<checkpointable>(options_.checkpoint, schedule_, "fit");
    run_state state;
    run(state, checkpointing, w, train, order, validation, callbacks...);
    return std::move(state.history);
  }

  /// Continues the run whose checkpoint is `<directory>/checkpoint.hydra` from the step after it,
  /// with the same w (overwritten from the checkpoint), data, batch order and callbacks as the run
  /// that wrote it, and returns the whole history: the checkpoint's epochs, then the new ones.
  /// The result is bit-identical to the uninterrupted run (same binary and backend).
  /// Throws io_error when the file cannot be read, format_error when it is corrupt or belongs to
  /// another batch order or scalar type, shape_error when a size differs (batch order, parameter
  /// count), invalid_argument when the optimizer's constants differ; nothing is restored then.
  /// Writes further checkpoints as fit() does when options.checkpoint.directory is set.
  template <class... Callbacks>
  std::vector<epoch_report> resume(const std::filesystem::path& directory, vector_view<T> w, const dataset<T>& train,
                                   const batch_order& order, const dataset<T>* validation, Callbacks&... callbacks) {
    static_assert(CheckpointableOptimizer<O>,
                  "hydra::trainer::resume: the optimizer must have `set_velocity(vector_view<const T>)` besides "
                  "velocity() (hydra::CheckpointableOptimizer); see docs/train.md, section 'Checkpoint and resume'.");
    static_assert(CheckpointableSchedule<S>,
                  "hydra::trainer::resume: the schedule must have `schedule_state state() const` and "
                  "`restore(const schedule_state&)` (hydra::CheckpointableSchedule); see docs/train.md, section "
                  "'Checkpoint and resume'.");
    static_assert((check_callback<Callbacks>() && ...));
    static_assert((check_callback_hooks<std::remove_cvref_t<Callbacks>, T, B>() && ...));
    if constexpr (checkpointable) {  // otherwise only the sentences above, not a template backtrace
      check_run("resume", w, train, order, validation);
      const bool checkpointing =
          detail::checkpoint::prepare_checkpoints<checkpointable>(options_.checkpoint, schedule_, "resume");
      auto buffers = model_buffers(model_);  // the model's size; the checkpoint's values replace them
      run_state state = detail::checkpoint::load_checkpoint<T, B, run_state>(checkpoint_path(directory), w, buffers,
                                                                              optimizer_, schedule_, order, callbacks...);
      set_model_buffers(model_, std::span<const T>(buffers));
      run(state, checkpointing, w, train, order, validation, callbacks...);
      return std::move(state.history);
    } else {
      return {};
    }
  }

  /// Mean loss and accuracy of parameters w over a whole data set, in batches.
  /// Batch norms use their running statistics here (PyTorch's eval mode).
  evaluation evaluate(vector_view<const T> w, const dataset<T>& data) {
    check_compatible(data, "evaluation set");
    batch_norm_scope<M> evaluation_mode(model_, batch_norm_statistics::running);
    evaluation result;
    const index n = data.size();
    matrix<T, B> outputs;
    vector<T, B> losses;
    double total = 0;
    index correct = 0;
    for_each_chunk(data, options_.evaluation_batch_size, batch_, [&](index, index count) {
      outputs.resize(count, model_.output_size());
      losses.resize(count);
      model_.forward(w, batch_.features(), outputs.view());
      loss_.values(std::as_const(outputs).view(), batch_.targets(), losses.view());
      total += static_cast<double>(B::sum(std::as_const(losses).view()));
      correct += B::count_correct(std::as_const(outputs).view(), batch_.targets().labels);
    });
    result.samples = n;
    result.loss = n > 0 ? total / static_cast<double>(n) : 0.0;
    result.accuracy = n > 0 ? static_cast<double>(correct) / static_cast<double>(n) : 0.0;
    return result;
  }

private:
  /// Where a run stands between two steps: everything fit() carries from step to step besides
  /// the parameters, the optimizer, the schedule and the callbacks (the State of
  /// detail::checkpoint::save_checkpoint and load_checkpoint).
  struct run_state {
    index steps_done = 0;
    double loss_sum = 0;       // of the current epoch's batch losses
    index epoch_steps = 0;     // steps taken in the current epoch
    double epoch_seconds = 0;  // time spent in the current epoch before this run started (resume)
    std::vector<epoch_report> history;
  };

  /// Step t's mean gradient on the loaded batch, as PyTorch's train mode computes it: batch norms
  /// on batch statistics (their running estimates then updated once), dropouts by step t's mask.
  T training_gradient(index t, vector_view<const T> w, vector_view<T> gradient) {
    training_scope<M> training_mode(model_, t);
    const T value = model_.gradient(w, batch_.features(), batch_.targets(), loss_, gradient);
    training_mode.update_running_statistics();
    return value;
  }

  /// The step loop of fit() and resume(), from step state.steps_done to the end of `order`.
  template <class... Callbacks>
  void run(run_state& state, bool checkpointing, vector_view<T> w, const dataset<T>& train, const batch_order& order,
           const dataset<T>* validation, Callbacks&... callbacks) {
    vector<T, B> gradient(model_.parameter_count());
    progress_line progress(options_.progress);
    epoch_report current;
    current.steps = state.epoch_steps;
    auto epoch_start = std::chrono::steady_clock::now() -
                       std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                           std::chrono::duration<double>(state.epoch_seconds));

    for (index t = state.steps_done; t < order.steps(); ++t) {
      const auto indices = order.batch(t);
      batch_.load(train, indices);
      const T eta = static_cast<T>(schedule_.learning_rate());
      const T value = training_gradient(t, std::as_const(w), gradient.view());
      if (!std::isfinite(value) || static_cast<double>(value) > options_.max_loss)
        diverged(std::as_const(w), indices, t, order.epoch_of(t), static_cast<double>(value));
      step_context<T, B> ctx{t,     order.epoch_of(t),    indices, eta, std::as_const(w), batch_.features(),
                             batch_.targets(), value, std::as_const(gradient).view()};
      (call_before_update(callbacks, ctx), ...);
      optimizer_.step(w, std::as_const(gradient).view(), eta);
      schedule_.step_completed();
      ctx.parameters = std::as_const(w);
      (call_after_update(callbacks, ctx), ...);

      state.loss_sum += static_cast<double>(value);
      ++current.steps;
      current.learning_rate = static_cast<double>(eta);
      progress.update(t + 1, order.steps(),
                      "epoch " + std::to_string(order.epoch_of(t)) + "  loss " +
                          std::to_string(state.loss_sum / static_cast<double>(current.steps)));

      const bool epoch_ends = (t + 1) % order.steps_per_epoch() == 0 || t + 1 == order.steps();
      if (epoch_ends) {
        current.epoch = order.epoch_of(t);
        current.training_loss = state.loss_sum / static_cast<double>(current.steps);
        if (validation != nullptr) {
          const auto v = evaluate(std::as_const(w), *validation);
          current.validation_loss = v.loss;
          current.validation_accuracy = v.accuracy;
        }
        const auto now = std::chrono::steady_clock::now();
        current.seconds = std::chrono::duration<double>(now - epoch_start).count();
        schedule_.epoch_completed(epoch_metrics{current.training_loss, current.validation_loss});
        progress.clear();
        (call_on_epoch_end(callbacks, current), ...);
        state.history.push_back(current);
        current = epoch_report{};
        state.loss_sum = 0;
        epoch_start = now;
      }
      state.steps_done = t + 1;
      state.epoch_steps = current.steps;

      if constexpr (checkpointable) {
        const index every = options_.checkpoint.every_steps;
        if (checkpointing && (epoch_ends || (every > 0 && (t + 1) % every == 0))) {
          state.epoch_seconds =
              epoch_ends ? 0.0 : std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
          detail::checkpoint::save_checkpoint<T, B>(checkpoint_path(options_.checkpoint.directory), state,
                                                    std::as_const(w), std::span<const T>(model_buffers(model_)),
                                                    optimizer_, schedule_, order,
                                                    std::as_const(callbacks)...);
        }
      }
    }
    progress.clear();
    // A last step can overflow the parameters without a loss left to show it.
    if (order.steps() > 0 && !B::all_finite(std::as_const(w))) {
      std::vector<T> host(static_cast<std::size_t>(w.size));
      B::copy_to_host(w.data, w.size, host.data());
      const auto bad = std::find_if(host.begin(), host.end(), [](T v) { return !std::isfinite(v); });
      throw divergence_error("hydra::trainer: training diverged: parameter " + std::to_string(bad - host.begin()) +
                                 " is " + std::to_string(static_cast<double>(*bad)) + " after the last step (" +
                                 std::to_string(order.steps() - 1) + "); lower the learning rate",
                             order.steps() - 1, order.epoch_of(order.steps() - 1), -1, 0.0);
    }
  }

  /// Throws divergence_error for step t, whose batch (loaded in batch_) has mean loss `value`,
  /// naming the batch's sample with a non-finite or else the largest loss.
  [[noreturn]] void diverged(vector_view<const T> w, std::span<const index> indices, index t, index epoch,
                             double value) {
    matrix<T, B> outputs(batch_.size(), model_.output_size());
    vector<T, B> losses(batch_.size());
    {
      training_scope<M> training_mode(model_, t);  // the step's own losses (no running update)
      model_.forward(w, batch_.features(), outputs.view());
    }
    loss_.values(std::as_const(outputs).view(), batch_.targets(), losses.view());
    const auto host = std::as_const(losses).to_host();
    std::size_t worst = 0;
    for (std::size_t k = 0; k < host.size(); ++k) {
      if (!std::isfinite(host[worst])) break;
      if (!std::isfinite(host[k]) || host[k] > host[worst]) worst = k;
    }
    const index sample = indices.empty() ? -1 : indices[worst];
    // NaN without its sign, which is not portable (a GPU and a CPU may differ).
    const auto text = [](double v) { return std::isnan(v) ? std::string("nan") : std::to_string(v); };
    const std::string reason = std::isfinite(value) ? "is " + text(value) + ", above the bound " +
                                                          text(options_.max_loss)
                                                    : "is " + text(value);
    throw divergence_error("hydra::trainer: training diverged at step " + std::to_string(t) + " (epoch " +
                               std::to_string(epoch) + "): the batch's mean loss " + reason + "; its worst sample is " +
                               std::to_string(sample) + " (loss " + text(static_cast<double>(host[worst])) +
                               "); lower the learning rate or check the data",
                           t, epoch, sample, value);
  }

  /// Checks the inputs of fit() and resume() before anything changes.
  void check_run(const char* who, vector_view<T> w, const dataset<T>& train, const batch_order& order,
                 const dataset<T>* validation) const {
    const std::string where = std::string("hydra::trainer::") + who;
    check_compatible(train, "training set");
    if (validation != nullptr) check_compatible(*validation, "validation set");
    if (order.num_samples() != train.size())
      throw shape_error(where + ": the batch order is for " + std::to_string(order.num_samples()) +
                        " samples, the training set has " + std::to_string(train.size()));
    if (w.size != model_.parameter_count())
      throw shape_error(where + ": the parameter vector has " + std::to_string(w.size) + " entries, the model has " +
                        std::to_string(model_.parameter_count()) + " parameters");
  }

  /// Labels must index the model's outputs; real targets must have one value per output.
  void check_compatible(const dataset<T>& data, const char* what) const {
    if (data.sample_size() != model_.input_size())
      throw shape_error(std::string("hydra::trainer: the ") + what + " has " + std::to_string(data.sample_size()) +
                        " features per sample, the model takes " + std::to_string(model_.input_size()));
    if (data.has_targets() && data.target_size() != model_.output_size())
      throw shape_error(std::string("hydra::trainer: the ") + what + " has " + std::to_string(data.target_size()) +
                        " targets per sample, the model has " + std::to_string(model_.output_size()) + " outputs");
    const auto labels = data.labels();
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (labels[i] < 0 || labels[i] >= model_.output_size())
        throw invalid_argument(std::string("hydra::trainer: the ") + what + "'s label[" + std::to_string(i) +
                               "] = " + std::to_string(labels[i]) + " is out of range for a model with " +
                               std::to_string(model_.output_size()) + " outputs");
  }

  M& model_;
  L& loss_;
  O& optimizer_;
  S& schedule_;
  trainer_options options_;
  device_batch<T, B> batch_;
};

} // namespace hydra
