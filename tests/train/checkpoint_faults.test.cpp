// The trainer's checkpoints under injected faults (support/fault_injection.hpp). A run that
// checkpoints every 2 steps and every epoch (6 checkpoints in 9 steps, each taking three write()
// calls because a callback's state is larger than the archive writer's buffer):
// - ENOSPC or EIO at every write() of every checkpoint, a failed open, fsync, close or rename of
//   the .tmp file: fit() stops with a one-line hydra::io_error that names the step, the file and
//   the system's reason; checkpoint.hydra is byte for byte what it was before that save (or
//   absent before the first one), no .tmp is left, and resuming from it (or starting afresh)
//   ends with the bits of the run that never failed;
// - a failed open or fsync of the directory after the rename: the error says the new checkpoint
//   is in place, and resuming from it gives the same bits;
// - a short write at every write(): the run completes and its checkpoint resumes to the same bits;
// - SIGKILL before every open, write, fsync, close and rename of the run (in a forked child): the
//   parent resumes from whatever checkpoint.hydra the child left (or starts afresh when there is
//   none), next to the .tmp the child was writing, and ends with the same bits.

#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hydra/backend/cpu.hpp"
#include "hydra/core/archive.hpp"
#include "hydra/data/batch_order.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "hydra/train/checkpoint.hpp"
#include "hydra/train/trainer.hpp"
#include "support/classification_data.hpp"
#include "support/fault_injection.hpp"
#include "support/messages.hpp"
#include "support/temp_dir.hpp"

namespace hydra::test {
namespace {

namespace fs = std::filesystem;
using faults::call;
using faults::effect;

/// 24 samples in batches of 8: 3 steps per epoch, 3 epochs, 9 steps; a checkpoint every 2 steps
/// and at every epoch end, i.e. after these step counts.
struct problem {
  dataset<double> train = classification_data<double>(24, 4, 3, 1);
  dataset<double> validation = classification_data<double>(12, 4, 3, 2);
  batch_order order = batch_order::shuffled(24, 8, 3, /*seed=*/11);
};
const std::vector<std::int64_t> checkpoint_steps = {2, 3, 4, 6, 8, 9};
constexpr index every_steps = 2;
constexpr long writes_per_checkpoint = 3;  // the buffer before ballast.bytes, ballast.bytes, the rest

/// A stateful callback whose section is larger than the archive writer's buffer (as a large
/// model's parameters would be), so that a checkpoint takes several write() calls. load_state
/// checks that every byte came back.
struct ballast {
  std::int64_t steps = 0;
  template <class Ctx>
  void after_update(const Ctx&) {
    ++steps;
  }
  [[nodiscard]] std::vector<std::uint8_t> bytes() const {
    return std::vector<std::uint8_t>(detail::archive::buffer_size + 4096, static_cast<std::uint8_t>(37 * steps + 1));
  }
  void save_state(archive_writer& out) const {
    out.write<std::uint8_t>("ballast.bytes", bytes());
    out.write_value("ballast.steps", steps);
  }
  void load_state(archive_reader& in) {
    std::vector<std::uint8_t> stored(detail::archive::buffer_size + 4096);
    in.read<std::uint8_t>("ballast.bytes", stored);
    steps = in.read_value<std::int64_t>("ballast.steps");
    if (stored != bytes()) throw format_error("ballast: the bytes read back differ");
  }
};

using faults::bytes_of;
using faults::tmp_of;

/// What checkpoint.hydra held at the start of each step, i.e. after the previous step's
/// checkpoint: when a save fails, what the file held before it.
struct snapshot {
  fs::path file;
  bool existed = false;
  std::string bytes = {};
  template <class Ctx>
  void before_update(const Ctx&) {
    existed = fs::exists(file);
    bytes = existed ? bytes_of(file) : std::string();
  }
};

std::int64_t steps_done_in(const fs::path& directory) {
  archive_reader in(checkpoint_path(directory));
  (void)in.read_string("format");
  (void)in.read_value<std::uint32_t>("version");
  return in.read_value<std::int64_t>("steps_done");
}

/// One "process": its own model, optimizer, schedule and trainer, with checkpoints into
/// `directory` (none when it is empty).
struct process {
  Mlp<double> model{4, {6}, 3, activation::tanh};
  SoftmaxCrossEntropy<double> loss;
  SGD<double> optimizer{model.parameter_count(), {.momentum = 0.9, .weight_decay = 1e-3}};
  plateau_schedule schedule{0.3, 0.5, /*patience=*/1, /*threshold=*/0.4};
  trainer<Mlp<double>, SoftmaxCrossEntropy<double>, SGD<double>, plateau_schedule> fit;
  std::vector<double> w;

  explicit process(const fs::path& directory)
      : fit(model, loss, optimizer, schedule, options(directory)), w(static_cast<std::size_t>(model.parameter_count())) {
    model.initialize(view(), 5);
  }
  static trainer_options options(const fs::path& directory) {
    trainer_options o;
    o.progress = progress_mode::never;
    o.checkpoint.directory = directory;
    o.checkpoint.every_steps = every_steps;
    return o;
  }
  vector_view<double> view() { return {w.data(), static_cast<index>(w.size())}; }
};

/// The end of a run: every number the remaining steps depend on, and the history.
struct outcome {
  std::vector<double> w;
  std::vector<double> velocity;
  double learning_rate = 0;
  std::int64_t ballast_steps = 0;
  std::vector<epoch_report> history;
};

outcome outcome_of(const process& run, const ballast& b, std::vector<epoch_report> history) {
  const vector_view<const double> v = run.optimizer.velocity();
  return {run.w, std::vector<double>(v.data, v.data + v.size), run.schedule.state().learning_rate, b.steps,
          std::move(history)};
}

/// The run that never fails, without checkpoints.
outcome reference_run(const problem& p) {
  process run{fs::path()};
  ballast b;
  auto history = run.fit.fit(run.view(), p.train, p.order, &p.validation, b);
  REQUIRE(history.size() == 3);
  return outcome_of(run, b, std::move(history));
}

/// A new process that finishes the run in `directory`: resume() from its checkpoint, or fit()
/// from the start when there is none.
outcome finish(const fs::path& directory, const problem& p) {
  process run(directory);
  ballast b;
  const bool resuming = fs::exists(checkpoint_path(directory));
  if (resuming) std::fill(run.w.begin(), run.w.end(), 7.0);  // overwritten by resume()
  auto history = resuming ? run.fit.resume(directory, run.view(), p.train, p.order, &p.validation, b)
                          : run.fit.fit(run.view(), p.train, p.order, &p.validation, b);
  return outcome_of(run, b, std::move(history));
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}
bool same_bits(double a, double b) { return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b); }

/// Bit for bit, the history but its timings included.
bool same_outcome(const outcome& a, const outcome& b) {
  if (!same_bits(a.w, b.w) || !same_bits(a.velocity, b.velocity) || !same_bits(a.learning_rate, b.learning_rate) ||
      a.ballast_steps != b.ballast_steps || a.history.size() != b.history.size())
    return false;
  for (std::size_t e = 0; e < a.history.size(); ++e) {
    const auto &x = a.history[e], &y = b.history[e];
    if (x.epoch != y.epoch || x.steps != y.steps || !same_bits(x.training_loss, y.training_loss) ||
        !same_bits(x.validation_loss, y.validation_loss) ||
        !same_bits(x.validation_accuracy, y.validation_accuracy) || !same_bits(x.learning_rate, y.learning_rate))
      return false;
  }
  return true;
}

/// How many calls of `calls` a clean run with checkpoints makes.
long calls_of_a_clean_run(call calls, const problem& p) {
  temp_dir dir;
  process run(dir.path());
  ballast b;
  auto counter = faults::count(calls);
  (void)run.fit.fit(run.view(), p.train, p.order, &p.validation, b);
  return counter.calls();
}

/// A run into a fresh directory with `fault` armed, which must stop with an io_error in the save
/// of checkpoint number `failing` (0-based). Checks what it leaves and that the run then finishes
/// with the reference's bits; returns the error's message.
std::string fail_and_finish(const faults::fault& fault, std::size_t failing, bool replaced, const problem& p,
                            const outcome& reference) {
  temp_dir dir;
  const auto file = checkpoint_path(dir.path());
  process run(dir.path());
  ballast b;
  snapshot before{.file = file};
  std::string message;
  {
    auto armed = faults::arm(fault);
    message = message_of<io_error>([&] { (void)run.fit.fit(run.view(), p.train, p.order, &p.validation, b, before); });
    CHECK(armed.hits() == 1);
  }
  const std::string step = "hydra::trainer: the checkpoint after " + std::to_string(checkpoint_steps[failing]) + " steps ";
  if (replaced) {
    CHECK(contains(message, step + "replaced '" + file.string() + "' but might not survive a power loss: "));
    CHECK(steps_done_in(dir.path()) == checkpoint_steps[failing]);
  } else {
    CHECK(contains(message, step + "was not saved ('" + file.string() + "' is unchanged): "));
    CHECK(before.existed == (failing > 0));
    CHECK(fs::exists(file) == before.existed);
    if (before.existed) {
      CHECK(bytes_of(file) == before.bytes);
      CHECK(steps_done_in(dir.path()) == checkpoint_steps[failing - 1]);
    }
  }
  CHECK(message.find('\n') == std::string::npos);
  CHECK(!fs::exists(tmp_of(file)));
  if (fs::exists(file)) archive_reader::verify(file);
  CHECK(same_outcome(finish(dir.path(), p), reference));
  CHECK(!fs::exists(tmp_of(file)));
  return message;
}

} // namespace

TEST_CASE("a checkpoint that fails at any write (ENOSPC, EIO) stops the run; the previous one resumes to the same bits") {
  const problem p;
  const outcome reference = reference_run(p);
  const auto checkpoints = static_cast<long>(checkpoint_steps.size());
  const long writes = calls_of_a_clean_run(faults::writes, p);
  REQUIRE(writes == writes_per_checkpoint * checkpoints);
  for (const int error : {ENOSPC, EIO}) {
    for (long k = 1; k <= writes; ++k) {
      CAPTURE(error);
      CAPTURE(k);
      const auto failing = static_cast<std::size_t>((k - 1) / writes_per_checkpoint);
      const auto message = fail_and_finish({.calls = faults::writes, .nth = k, .error = error}, failing, false, p, reference);
      CHECK(contains(message, "): hydra::archive_writer: cannot write '"));
      CHECK(contains(message, "checkpoint.hydra.tmp': " + faults::text_of(error)));
    }
  }
}

TEST_CASE("a checkpoint whose fsync, close, rename or open fails stops the run; the checkpoint there resumes to the same bits") {
  const problem p;
  const outcome reference = reference_run(p);
  const auto checkpoints = static_cast<long>(checkpoint_steps.size());
  // Per checkpoint: open, fsync and close of the .tmp file, then of the directory; one rename.
  REQUIRE(calls_of_a_clean_run(call::fsync, p) == 2 * checkpoints);
  REQUIRE(calls_of_a_clean_run(call::close, p) == 2 * checkpoints);
  REQUIRE(calls_of_a_clean_run(call::open, p) == 2 * checkpoints);
  REQUIRE(calls_of_a_clean_run(call::rename, p) == checkpoints);
  for (long c = 0; c < checkpoints; ++c) {
    CAPTURE(c);
    const auto failing = static_cast<std::size_t>(c);
    struct case_ {
      const char* what;
      faults::fault fault;
      bool replaced;
    };
    const case_ cases[] = {
        {"cannot create '", {.calls = call::open, .nth = 2 * c + 1, .error = ENOSPC}, false},
        {"cannot fsync '", {.calls = call::fsync, .nth = 2 * c + 1, .error = EIO}, false},
        {"cannot fsync '", {.calls = call::fsync, .nth = 2 * c + 1, .error = ENOSPC}, false},
        {"cannot close '", {.calls = call::close, .nth = 2 * c + 1, .error = EIO}, false},
        {"cannot rename '", {.calls = call::rename, .nth = c + 1, .error = EIO}, false},
        {"cannot open the directory '", {.calls = call::open, .nth = 2 * c + 2, .error = EIO}, true},
        {"cannot fsync the directory '", {.calls = call::fsync, .nth = 2 * c + 2, .error = EIO}, true},
    };
    for (const auto& x : cases) {
      CAPTURE(x.what);
      CAPTURE(x.fault.error);
      const auto message = fail_and_finish(x.fault, failing, x.replaced, p, reference);
      CHECK(contains(message, std::string(": hydra::archive_writer: ") + x.what));
      CHECK(contains(message, "': " + faults::text_of(x.fault.error)));
    }
  }
}

TEST_CASE("short writes at any call: the run completes and its checkpoint resumes to the same bits") {
  const problem p;
  const outcome reference = reference_run(p);
  const long writes = calls_of_a_clean_run(faults::writes, p);
  for (long k = 0; k <= writes; ++k) {  // 0: every write short, 4093 bytes at a time
    CAPTURE(k);
    temp_dir dir;
    process run(dir.path());
    ballast b;
    {
      auto armed = k == 0 ? faults::arm({.calls = faults::writes, .what = effect::short_write, .repeat = true,
                                         .short_bytes = 4093})
                          : faults::arm({.calls = faults::writes, .nth = k, .what = effect::short_write});
      auto history = run.fit.fit(run.view(), p.train, p.order, &p.validation, b);
      CHECK(armed.hits() >= 1);
      CHECK(same_outcome(outcome_of(run, b, std::move(history)), reference));
    }
    archive_reader::verify(checkpoint_path(dir.path()));
    CHECK(steps_done_in(dir.path()) == 9);
    CHECK(same_outcome(finish(dir.path(), p), reference));  // nothing left to run: w, velocity, history from the file
  }
}

TEST_CASE("killed at every open, write, fsync, close and rename of its checkpoints, a run resumes to the same bits") {
  const problem p;
  const outcome reference = reference_run(p);
  const long boundaries = calls_of_a_clean_run(faults::boundaries, p);
  // Per checkpoint: open, 3 writes, fsync, close of the .tmp file; rename; open, fsync, close of
  // the directory.
  REQUIRE(boundaries == 10 * static_cast<long>(checkpoint_steps.size()));
  int fresh_starts = 0, tmp_left_behind = 0;
  std::int64_t resumed_from = 0;
  for (long k = 1; k <= boundaries + 1; ++k) {  // boundaries + 1: the child is never killed
    CAPTURE(k);
    temp_dir dir;
    const auto file = checkpoint_path(dir.path());
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {  // no doctest here; no destructors (temp_dir) either: _exit
      int code = 0;
      try {
        process run(dir.path());
        ballast b;
        auto armed = faults::arm({.calls = faults::boundaries, .nth = k, .what = effect::kill});
        (void)run.fit.fit(run.view(), p.train, p.order, &p.validation, b);
      } catch (...) {
        code = 3;
      }
      ::_exit(code);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    if (k <= boundaries) {
      CHECK(WIFSIGNALED(status));
      CHECK(WTERMSIG(status) == SIGKILL);
    } else {
      CHECK(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 0);
    }
    if (fs::exists(tmp_of(file))) ++tmp_left_behind;
    if (fs::exists(file)) {
      const auto steps = steps_done_in(dir.path());
      CHECK(std::find(checkpoint_steps.begin(), checkpoint_steps.end(), steps) != checkpoint_steps.end());
      CHECK(steps >= resumed_from);  // a later death never leaves an older checkpoint
      resumed_from = steps;
    } else {
      ++fresh_starts;
    }
    CHECK(same_outcome(finish(dir.path(), p), reference));
    CHECK(!fs::exists(tmp_of(file)));
  }
  CHECK(fresh_starts == 7);  // killed before the first rename completed
  CHECK(tmp_left_behind > 0);
  CHECK(resumed_from == 9);
}

} // namespace hydra::test
