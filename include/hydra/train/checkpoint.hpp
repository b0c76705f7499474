#pragma once
// The checkpoint of a training run: where the file lives, what a callback implements to be saved
// with it (CheckpointableCallback), how the batch order's identity and a schedule's state are
// stored and checked, and the writing and reading of the whole checkpoint, which hydra::trainer
// (train/trainer.hpp) calls after its steps and in resume(). The layout is in docs/train.md,
// section 'Checkpoint and resume'.

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/io/archive_format.hpp"
#include "hydra/core/io/archive_reader.hpp"
#include "hydra/core/io/archive_writer.hpp"
#include "hydra/core/io/checksum.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/core/types.hpp"
#include "hydra/data/batch_order.hpp"
#include "hydra/optim/concepts.hpp"

namespace hydra {

/// The checkpoint file inside a checkpoint directory.
inline constexpr const char* checkpoint_file_name = "checkpoint.hydra";

[[nodiscard]] inline std::filesystem::path checkpoint_path(const std::filesystem::path& directory) {
  return directory / checkpoint_file_name;
}

/// When the trainer writes `<directory>/checkpoint.hydra` (replacing the previous one atomically):
/// after every epoch, and also after every `every_steps`-th step (counting steps from 1).
struct checkpoint_options {
  std::filesystem::path directory;  // empty: no checkpoints; created if missing
  index every_steps = 0;            // 0: only at epoch ends
  [[nodiscard]] bool enabled() const noexcept { return !directory.empty(); }
};

// ---- callbacks with state ----------------------------------------------------------------------

/// A callback whose state goes into the checkpoint: save_state writes its sections after the
/// trainer's own, load_state reads them back in the same order.
template <class C>
concept SavesState = requires(const C& c, archive_writer& out) { c.save_state(out); };
template <class C>
concept LoadsState = requires(C& c, archive_reader& in) { c.load_state(in); };
template <class C>
concept CheckpointableCallback = SavesState<C> && LoadsState<C>;

/// Call as `static_assert(hydra::check_callback<C>())`: a callback with one of save_state and
/// load_state but not the other would be saved and never restored, or restored from nothing.
template <class C>
consteval bool check_callback() {
  using U = std::remove_cvref_t<C>;
  static_assert(!LoadsState<U> || SavesState<U>,
                "hydra: a callback with `load_state(archive_reader&)` must also have `void save_state(archive_writer&) "
                "const`; see docs/train.md, section 'Checkpoint and resume'.");
  static_assert(!SavesState<U> || LoadsState<U>,
                "hydra: a callback with `save_state(archive_writer&) const` must also have `void "
                "load_state(archive_reader&)`; see docs/train.md, section 'Checkpoint and resume'.");
  return true;
}

// ---- the batch order's identity --------------------------------------------------------------

/// A 64-bit fingerprint of everything a batch order decides: its sizes and every batch, in order.
/// Two orders with the same fingerprint give the same training run (up to a hash collision).
[[nodiscard]] inline std::uint64_t fingerprint(const batch_order& order) {
  detail::archive::checksum64 h;
  const std::int64_t sizes[4] = {order.steps(), order.batch_size(), order.num_samples(), order.steps_per_epoch()};
  h.update(sizes, sizeof sizes);
  for (index t = 0; t < order.steps(); ++t) {
    const auto batch = order.batch(t);
    const auto length = static_cast<std::int64_t>(batch.size());
    h.update(&length, sizeof length);
    h.update(batch.data(), batch.size_bytes());
  }
  return h.digest();
}

namespace detail::checkpoint {

/// The shortest text that reads back as the same value.
template <class T>
[[nodiscard]] std::string shortest(T value) {
  char text[64];
  const auto result = std::to_chars(text, text + sizeof text, value);
  return std::string(text, result.ptr);
}

[[nodiscard]] inline std::string mismatch(const std::filesystem::path& file, const char* field,
                                          const std::string& stored, const std::string& current) {
  return "hydra: the checkpoint " + archive::quoted(file) + " does not belong to this run: its " + field + " is " +
         stored + ", this run's is " + current;
}

} // namespace detail::checkpoint

/// Sections batch_order.{steps, batch_size, num_samples, steps_per_epoch, fingerprint}.
inline void save_batch_order(archive_writer& out, const batch_order& order) {
  out.write_value<std::int64_t>("batch_order.steps", order.steps());
  out.write_value<std::int64_t>("batch_order.batch_size", order.batch_size());
  out.write_value<std::int64_t>("batch_order.num_samples", order.num_samples());
  out.write_value<std::int64_t>("batch_order.steps_per_epoch", order.steps_per_epoch());
  out.write_value<std::uint64_t>("batch_order.fingerprint", fingerprint(order));
}

/// Reads what save_batch_order wrote and compares it with `order`: hydra::shape_error naming the
/// file and the field when a size differs, hydra::format_error when only the batches differ
/// (another seed or table).
inline void check_batch_order(archive_reader& in, const batch_order& order) {
  const std::int64_t current[4] = {order.steps(), order.batch_size(), order.num_samples(), order.steps_per_epoch()};
  const char* const fields[4] = {"batch_order.steps", "batch_order.batch_size", "batch_order.num_samples",
                                 "batch_order.steps_per_epoch"};
  for (int k = 0; k < 4; ++k) {
    const auto stored = in.read_value<std::int64_t>(fields[k]);
    if (stored != current[k])
      throw shape_error(detail::checkpoint::mismatch(in.path(), fields[k], std::to_string(stored),
                                                     std::to_string(current[k])));
  }
  const auto stored = in.read_value<std::uint64_t>("batch_order.fingerprint");
  const auto mine = fingerprint(order);
  if (stored != mine)
    throw format_error(detail::checkpoint::mismatch(in.path(), "batch_order.fingerprint", std::to_string(stored),
                                                    std::to_string(mine)) +
                       " (the same sizes, other batches: another seed or table)");
}

// ---- a schedule's running state ---------------------------------------------------------------

/// Sections schedule.{kind, learning_rate, steps_completed, epochs_completed, best, bad_epochs,
/// reductions}, field by field: schedule_state has padding, whose bytes are not data.
inline void save_schedule_state(archive_writer& out, const schedule_state& s) {
  out.write_value<std::int32_t>("schedule.kind", static_cast<std::int32_t>(s.kind));
  out.write_value<double>("schedule.learning_rate", s.learning_rate);
  out.write_value<std::int64_t>("schedule.steps_completed", s.steps_completed);
  out.write_value<std::int64_t>("schedule.epochs_completed", s.epochs_completed);
  out.write_value<double>("schedule.best", s.best);
  out.write_value<std::int64_t>("schedule.bad_epochs", s.bad_epochs);
  out.write_value<std::int64_t>("schedule.reductions", s.reductions);
}

/// Reads what save_schedule_state wrote. The schedule's restore() checks the values; this checks
/// only that the kind is one hydra knows (hydra::format_error naming the file otherwise).
[[nodiscard]] inline schedule_state load_schedule_state(archive_reader& in) {
  schedule_state s;
  const auto kind = in.read_value<std::int32_t>("schedule.kind");
  if (kind < static_cast<std::int32_t>(schedule_kind::constant) || kind > static_cast<std::int32_t>(schedule_kind::list))
    throw format_error("hydra: the checkpoint " + detail::archive::quoted(in.path()) + " has schedule.kind " +
                       std::to_string(kind) + ", which is no schedule hydra knows");
  s.kind = static_cast<schedule_kind>(kind);
  s.learning_rate = in.read_value<double>("schedule.learning_rate");
  s.steps_completed = static_cast<index>(in.read_value<std::int64_t>("schedule.steps_completed"));
  s.epochs_completed = static_cast<index>(in.read_value<std::int64_t>("schedule.epochs_completed"));
  s.best = in.read_value<double>("schedule.best");
  s.bad_epochs = static_cast<index>(in.read_value<std::int64_t>("schedule.bad_epochs"));
  s.reductions = static_cast<index>(in.read_value<std::int64_t>("schedule.reductions"));
  return s;
}

// ---- the whole checkpoint of a trainer run ----------------------------------------------------
//
// hydra::trainer calls these. `State` is its run state: steps_done, loss_sum, epoch_steps and
// epoch_seconds (the current epoch's accumulators) and history, a std::vector of epoch_report
// (train/trainer.hpp). `w` has as many entries as the model has parameters (the trainer checks
// that before the first step). T and B are the trainer's scalar type and backend.

namespace detail::checkpoint {

inline constexpr const char* checkpoint_format = "hydra.trainer.checkpoint";
inline constexpr std::uint32_t checkpoint_version = 2;  // 2: the model's buffers (batch norms)

/// Whether a run writes checkpoints; throws before the first step when they are asked for but
/// impossible (a type without the state to save, an every_steps < 0, a directory that cannot be
/// created). `Checkpointable` is trainer<...>::checkpointable; `who` is "fit" or "resume".
template <bool Checkpointable, class S>
bool prepare_checkpoints(const checkpoint_options& c, S& schedule, const char* who) {
  if (!c.enabled()) return false;
  const std::string where = std::string("hydra::trainer::") + who;
  if (c.every_steps < 0)
    throw invalid_argument(where + ": checkpoint.every_steps must be >= 0, got " + std::to_string(c.every_steps));
  if constexpr (!Checkpointable) {
    throw invalid_argument(where + ": checkpoints into " + detail::archive::quoted(c.directory) +
                           " need an optimizer with set_velocity() and a schedule with state() and restore() "
                           "(CheckpointableOptimizer, CheckpointableSchedule); see docs/train.md, section "
                           "'Checkpoint and resume'");
  } else {
    if constexpr (requires { schedule.checkpointable(); }) {  // any_schedule decides at run time
      if (!schedule.checkpointable())
        throw invalid_argument(where + ": checkpoints into " + detail::archive::quoted(c.directory) +
                               " need a schedule with state() and restore(); the any_schedule holds one without");
    }
    std::error_code ec;
    std::filesystem::create_directories(c.directory, ec);
    if (ec)
      throw io_error(where + ": cannot create the checkpoint directory " + detail::archive::quoted(c.directory) +
                     ": " + ec.message());
    return true;
  }
}

template <Scalar T>
[[nodiscard]] std::string scalar_name() {
  return detail::archive::name_of(detail::archive::element_type_of<T>());
}

/// The optimizer's constants must be the ones of the run that wrote the checkpoint.
template <Scalar T>
void check_constant(archive_reader& in, const char* field, T current) {
  const T stored = in.read_value<T>(field);
  if (!(stored == current))
    throw invalid_argument(detail::checkpoint::mismatch(in.path(), field, detail::checkpoint::shortest(stored),
                                                        detail::checkpoint::shortest(current) + " (the optimizer's)"));
}

/// Sections history.{epoch, steps, training_loss, validation_loss, validation_accuracy,
/// learning_rate, seconds}, one element per finished epoch.
template <class Report>
void save_history(archive_writer& out, const std::vector<Report>& history) {
  std::vector<std::int64_t> ints(history.size());
  std::vector<double> reals(history.size());
  const auto column = [&](const char* name, auto member) {
    using V = std::remove_cvref_t<decltype(history.front().*member)>;
    if constexpr (std::is_same_v<V, double>) {
      for (std::size_t e = 0; e < history.size(); ++e) reals[e] = history[e].*member;
      out.write<double>(name, reals);
    } else {
      for (std::size_t e = 0; e < history.size(); ++e) ints[e] = history[e].*member;
      out.write<std::int64_t>(name, ints);
    }
  };
  column("history.epoch", &Report::epoch);
  column("history.steps", &Report::steps);
  column("history.training_loss", &Report::training_loss);
  column("history.validation_loss", &Report::validation_loss);
  column("history.validation_accuracy", &Report::validation_accuracy);
  column("history.learning_rate", &Report::learning_rate);
  column("history.seconds", &Report::seconds);
}

/// Reads what save_history wrote into `history`: at most one report per epoch of `order`
/// (checked before allocating).
template <class Report>
void load_history(archive_reader& in, const batch_order& order, std::vector<Report>& history) {
  const auto max_epochs = static_cast<std::uint64_t>(order.steps() / order.steps_per_epoch() + 1);
  const auto epochs = in.read_vector<std::int64_t>("history.epoch", max_epochs);
  history.assign(epochs.size(), Report{});
  std::vector<std::int64_t> ints(epochs.size());
  std::vector<double> reals(epochs.size());
  for (std::size_t e = 0; e < epochs.size(); ++e) history[e].epoch = static_cast<index>(epochs[e]);
  const auto column = [&](const char* name, auto member) {
    using V = std::remove_cvref_t<decltype(history.front().*member)>;
    if constexpr (std::is_same_v<V, double>) {
      in.read<double>(name, reals);
      for (std::size_t e = 0; e < history.size(); ++e) history[e].*member = reals[e];
    } else {
      in.read<std::int64_t>(name, ints);
      for (std::size_t e = 0; e < history.size(); ++e) history[e].*member = static_cast<index>(ints[e]);
    }
  };
  column("history.steps", &Report::steps);
  column("history.training_loss", &Report::training_loss);
  column("history.validation_loss", &Report::validation_loss);
  column("history.validation_accuracy", &Report::validation_accuracy);
  column("history.learning_rate", &Report::learning_rate);
  column("history.seconds", &Report::seconds);
}

template <class... Callbacks>
constexpr std::int64_t stateful_callbacks() {
  return (std::int64_t{0} + ... + (SavesState<std::remove_cvref_t<Callbacks>> ? 1 : 0));
}

/// Each stateful callback's sections follow a section "callback" holding its position among
/// the stateful callbacks, so that a load_state that reads less or more than its save_state
/// wrote is caught at the next callback, naming it.
template <class C>
void save_callback(archive_writer& out, const C& c, std::int64_t& k) {
  if constexpr (SavesState<std::remove_cvref_t<C>>) {
    out.write_value<std::int64_t>("callback", k++);
    c.save_state(out);
  }
}
template <class C>
void load_callback(archive_reader& in, C& c, std::int64_t& k) {
  if constexpr (LoadsState<std::remove_cvref_t<C>>) {
    const auto stored = in.read_value<std::int64_t>("callback");
    if (stored != k)
      throw format_error("hydra::trainer::resume: the checkpoint " + detail::archive::quoted(in.path()) +
                         " has the state of callback " + std::to_string(stored) + " where callback " +
                         std::to_string(k) + " was expected");
    ++k;
    c.load_state(in);
  }
}

/// Writes the checkpoint of `state` (taken after the trainer's complete processing of step
/// state.steps_done - 1) to `file`, atomically. The layout is in docs/train.md; load_checkpoint
/// reads it in the same order. A failure to write (a full disk, an I/O error, a failed fsync or
/// rename) is a hydra::io_error that says which step's checkpoint was lost and that `file` still
/// holds the previous one, followed by archive_writer's message (the file and the system's
/// reason); when only the directory's fsync failed after the rename, it says that `file` holds
/// the new checkpoint, which a power loss might undo.
template <Scalar T, class B, class State, class O, class S, class... Callbacks>
void save_checkpoint(const std::filesystem::path& file, const State& state, vector_view<const T> w,
                     std::span<const T> buffers, const O& optimizer, const S& schedule, const batch_order& order,
                     const Callbacks&... callbacks) {
  const index n = w.size;
  const vector_view<const T> velocity = optimizer.velocity();
  if (velocity.size != n)
    throw shape_error("hydra::trainer: the optimizer's velocity has " + std::to_string(velocity.size) +
                      " entries, the model has " + std::to_string(n) + " parameters");
  const auto lost = [&](const io_error& e, bool replaced) {
    const std::string step = "the checkpoint after " + std::to_string(state.steps_done) + " steps";
    return io_error(replaced ? "hydra::trainer: " + step + " replaced " + archive::quoted(file) +
                                   " but might not survive a power loss: " + e.what()
                             : "hydra::trainer: " + step + " was not saved (" + archive::quoted(file) +
                                   " is unchanged): " + e.what());
  };
  archive_writer out = [&] {
    try {
      return archive_writer(file);
    } catch (const io_error& e) {
      throw lost(e, false);
    }
  }();
  try {
    out.write_string("format", checkpoint_format);
    out.write_value<std::uint32_t>("version", checkpoint_version);
    out.write_value<std::int64_t>("steps_done", state.steps_done);
    save_batch_order(out, order);
    out.write_value<std::int64_t>("parameter_count", n);
    out.write_string("scalar_type", scalar_name<T>());
    std::vector<T> host(static_cast<std::size_t>(n));
    B::copy_to_host(w.data, n, host.data());
    out.write<T>("parameters", host);
    out.write_value<T>("optimizer.momentum", static_cast<T>(optimizer.momentum()));
    out.write_value<T>("optimizer.weight_decay", static_cast<T>(optimizer.weight_decay()));
    B::copy_to_host(velocity.data, n, host.data());
    out.write<T>("optimizer.velocity", host);
    out.write_value<std::int64_t>("model.buffer_count", static_cast<std::int64_t>(buffers.size()));
    out.write<T>("model.buffers", buffers);
    save_schedule_state(out, schedule.state());
    out.write_value<double>("epoch.loss_sum", state.loss_sum);
    out.write_value<std::int64_t>("epoch.steps", state.epoch_steps);
    out.write_value<double>("epoch.seconds", state.epoch_seconds);
    detail::checkpoint::save_history(out, state.history);
    out.write_value<std::int64_t>("callbacks", stateful_callbacks<Callbacks...>());
    [[maybe_unused]] std::int64_t k = 0;  // unused when no callback has state
    (detail::checkpoint::save_callback(out, callbacks, k), ...);
    out.commit();
  } catch (const io_error& e) {
    throw lost(e, out.committed());
  }
}

/// The part of load_checkpoint after the schedule: the epoch accumulators, the history, the
/// callbacks, the end of the file.
template <class State, class... Callbacks>
void load_rest(archive_reader& in, State& state, const batch_order& order, Callbacks&... callbacks) {
  const auto bad = [&](const std::string& what) {
    return format_error("hydra::trainer::resume: the checkpoint " + detail::archive::quoted(in.path()) + " " + what);
  };
  state.loss_sum = in.read_value<double>("epoch.loss_sum");
  const auto epoch_steps = in.read_value<std::int64_t>("epoch.steps");
  if (epoch_steps < 0 || epoch_steps > state.steps_done)
    throw bad("has epoch.steps " + std::to_string(epoch_steps) + ", outside [0, steps_done]");
  state.epoch_steps = static_cast<index>(epoch_steps);
  state.epoch_seconds = in.read_value<double>("epoch.seconds");
  if (!(state.epoch_seconds >= 0 && state.epoch_seconds < 1e9)) state.epoch_seconds = 0;  // only a timing
  detail::checkpoint::load_history(in, order, state.history);

  const auto stored_callbacks = in.read_value<std::int64_t>("callbacks");
  constexpr std::int64_t given = stateful_callbacks<Callbacks...>();
  if (stored_callbacks != given)
    throw bad("holds the state of " + std::to_string(stored_callbacks) + " callbacks, but resume() was given " +
              std::to_string(given) + " with save_state/load_state");
  [[maybe_unused]] std::int64_t k = 0;  // unused when no callback has state
  (detail::checkpoint::load_callback(in, callbacks, k), ...);
  in.finish();
}

/// Reads a checkpoint written by save_checkpoint and checks it against this run. The whole file
/// (checksum included) is verified before anything is restored; then the schedule (undone if a
/// later check fails), the callbacks in pack order, and last w and the optimizer.
template <Scalar T, class B, class State, class O, class S, class... Callbacks>
State load_checkpoint(const std::filesystem::path& file, vector_view<T> w, std::vector<T>& buffers, O& optimizer,
                      S& schedule, const batch_order& order, Callbacks&... callbacks) {
  archive_reader::verify(file);
  archive_reader in(file);
  const auto bad = [&](const std::string& what) {
    return format_error("hydra::trainer::resume: the checkpoint " + detail::archive::quoted(file) + " " + what);
  };
  const auto format = in.read_string("format", 64);
  if (format != checkpoint_format) throw bad("is not a trainer checkpoint (format '" + format + "')");
  const auto version = in.read_value<std::uint32_t>("version");
  if (version != checkpoint_version)
    throw bad("has version " + std::to_string(version) + "; this build reads version " +
              std::to_string(checkpoint_version));

  State state;
  const auto steps_done = in.read_value<std::int64_t>("steps_done");
  check_batch_order(in, order);
  if (steps_done < 0 || steps_done > order.steps())
    throw bad("has steps_done " + std::to_string(steps_done) + ", outside [0, " + std::to_string(order.steps()) + "]");
  state.steps_done = static_cast<index>(steps_done);

  const index n = w.size;
  const auto stored_count = in.read_value<std::int64_t>("parameter_count");
  if (stored_count != n)
    throw shape_error(detail::checkpoint::mismatch(file, "parameter_count", std::to_string(stored_count),
                                                   std::to_string(n) + " (the model's)"));
  const auto scalar = in.read_string("scalar_type", 16);
  if (scalar != scalar_name<T>())
    throw format_error(detail::checkpoint::mismatch(file, "scalar_type", scalar, scalar_name<T>()));
  std::vector<T> parameters(static_cast<std::size_t>(n));
  in.read<T>("parameters", parameters);
  check_constant(in, "optimizer.momentum", static_cast<T>(optimizer.momentum()));
  check_constant(in, "optimizer.weight_decay", static_cast<T>(optimizer.weight_decay()));
  std::vector<T> velocity(static_cast<std::size_t>(n));
  in.read<T>("optimizer.velocity", velocity);
  const auto stored_buffers = in.read_value<std::int64_t>("model.buffer_count");
  if (stored_buffers != static_cast<std::int64_t>(buffers.size()))
    throw shape_error(detail::checkpoint::mismatch(file, "model.buffer_count", std::to_string(stored_buffers),
                                                   std::to_string(buffers.size()) + " (the model's batch norms')"));
  std::vector<T> stored(buffers.size());
  in.read<T>("model.buffers", stored);
  // The schedule's restore() is the check that the state fits it (kind, counters); undone below
  // if anything after it fails.
  const schedule_state previous = schedule.state();
  schedule.restore(load_schedule_state(in));
  try {
    detail::checkpoint::load_rest(in, state, order, callbacks...);
  } catch (...) {
    schedule.restore(previous);
    throw;
  }

  // Everything is read and checked: only now do the parameters and the optimizer change.
  const auto v = vector<T, B>::from_host(velocity);
  optimizer.set_velocity(v.view());
  B::copy_from_host(parameters.data(), n, w.data);
  buffers = std::move(stored);
  return state;
}

} // namespace detail::checkpoint

} // namespace hydra
