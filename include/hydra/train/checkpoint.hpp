#pragma once
// The parts of a training checkpoint that do not depend on the trainer's types: where the file
// lives, what a callback implements to be saved with it (CheckpointableCallback), and how the
// batch order's identity and a schedule's state are stored and checked. hydra::trainer writes and
// reads the whole checkpoint (train/trainer.hpp); the layout is in docs/train.md, section
// 'Checkpoint and resume'.

#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <type_traits>

#include "hydra/core/archive.hpp"
#include "hydra/core/error.hpp"
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

} // namespace hydra
