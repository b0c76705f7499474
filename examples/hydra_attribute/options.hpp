#pragma once
// hydra-attribute's command line: the flags (add_options), every value and combination checked
// before any file is read (check_options), and the exit codes every error path ends in
// (docs/attribution.md, "Exit codes"). Kept apart from the pipeline so that the argument fuzzer
// (tests/fuzz/cli_arguments.fuzz.cpp) runs exactly the code a user's command line meets.

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <ios>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <hydra/backend/cpu.hpp>
#include <hydra/core/error.hpp>
#include <hydra/core/io/directory_lock.hpp>
#include <hydra/hypergradient/tracker.hpp>
#include <hydra/nn/batch_norm_state.hpp>
#include <hydra/nn/model_spec.hpp>

namespace hydra::cli {

/// What hydra-attribute returns (docs/attribution.md, "Exit codes"). Every error path ends in
/// exit_code_of(), so one kind of failure has one code wherever it is detected.
enum class exit_code : int {
  ok = 0,
  bad_input = 1,          // a flag, a combination of flags, or the content of an input file
  numerical_failure = 2,  // training diverged, or a result is not finite
  io_failure = 3,         // a file or folder cannot be read or written (missing, permissions, disk full)
  out_of_memory = 4,      // more memory or disk than the machine has, refused before allocating
  busy = 5,               // a --checkpoint, --resume or --state-dir folder is in use by another run
  internal_error = 70,    // a bug in hydra-attribute (EX_SOFTWARE): please report the message
};

/// The exit code of an exception escaping the run (the typed hydra::error hierarchy first).
inline exit_code exit_code_of(const std::exception& e) {
  if (dynamic_cast<const directory_busy*>(&e) != nullptr) return exit_code::busy;
  if (dynamic_cast<const numerical_error*>(&e) != nullptr) return exit_code::numerical_failure;
  if (dynamic_cast<const allocation_error*>(&e) != nullptr || dynamic_cast<const std::bad_alloc*>(&e) != nullptr)
    return exit_code::out_of_memory;
  if (dynamic_cast<const io_error*>(&e) != nullptr || dynamic_cast<const std::filesystem::filesystem_error*>(&e) != nullptr ||
      dynamic_cast<const std::ios_base::failure*>(&e) != nullptr)
    return exit_code::io_failure;
  if (dynamic_cast<const error*>(&e) != nullptr) return exit_code::bad_input;
  return exit_code::internal_error;
}

/// Every message of hydra-attribute starts with this.
inline constexpr const char* message_prefix = "hydra-attribute: error: ";

[[noreturn]] inline void fail(const std::string& message) { throw hydra::invalid_argument(message); }

/// A size the machine cannot hold, refused before anything of that size is allocated (exit 4).
[[noreturn]] inline void too_large(const std::string& message) { throw hydra::allocation_error(message); }

/// A library message without the "hydra: " or "hydra::name::name: " that starts it: the flag or
/// file that hydra-attribute puts in its place says more to a user than the function's name.
inline std::string without_library_prefix(std::string_view message) {
  if (message.rfind("hydra", 0) != 0) return std::string(message);
  std::size_t i = 5;
  while (message.substr(i, 2) == "::") {
    i += 2;
    while (i < message.size() && (std::isalnum(static_cast<unsigned char>(message[i])) || message[i] == '_')) ++i;
  }
  if (message.substr(i, 2) != ": ") return std::string(message);
  return std::string(message.substr(i + 2));
}

/// Runs `read` (a reader of the files of `flags`, e.g. "--init w.npy") and rethrows a hydra::error
/// from it as the same type with the flags in front: "--init w.npy: <what the reader says>".
template <class Read>
auto reading(const std::string& flags, Read&& read) -> decltype(read()) {
  const auto with = [&](const std::exception& e) { return flags + ": " + without_library_prefix(e.what()); };
  try {
    return read();
  } catch (const directory_busy&) {
    throw;
  } catch (const format_error& e) {
    throw format_error(with(e));
  } catch (const shape_error& e) {
    throw shape_error(with(e));
  } catch (const invalid_argument& e) {
    throw invalid_argument(with(e));
  } catch (const io_error& e) {
    throw io_error(with(e));
  } catch (const allocation_error& e) {
    throw allocation_error(with(e));
  }
}

struct options {
  std::string train_x, train_y, test_x, test_y, model, init, order, lr_file, track = "all", method = "hessian-free",
      precision = "float32", device = "cpu", out;
  hydra::index epochs = 1, batch_size = 64;
  std::string seed_text = "0";  // --seed as typed; check_options parses it into seed
  std::uint64_t seed = 0;
  double lr = 0.01, momentum = 0.9, weight_decay = 0;
  double max_loss = 0;  // --max-loss; 0: not given (100·ln C, see divergence_bound)
  // --method influence
  std::string ihvp = "cg";
  // --method tracin: epochs between checkpoints; 0 = not given (1)
  hydra::index tracin_every = 0;
  double damping = 0, cg_tolerance = 1e-6, lissa_scale = 25;
  hydra::index cg_max_iterations = 100, lissa_depth = 5000, lissa_repeats = 1;
  // tracking (docs/hypergradient.md)
  std::string update;  // empty: lazy for hessian-free, eager for exact
  bool lean = false;
  std::string state_dir, checkpoint, resume;
  hydra::index checkpoint_every = 0;
  hydra::index adjoint_checkpoint_every = 0;  // --method exact --lean: 0 keeps every step's parameters
  // models with batch norms (docs/attribution.md, "Batch norms")
  std::string batch_norm;    // --batch-norm as given; empty: not given (see batch_norm_mode)
  std::string init_buffers;  // --init-buffers: the running statistics to start from
};

/// Whether --method names a baseline that trains without tracking (influence functions, gradient similarity).
inline bool tracks_nothing(const std::string& method) {
  return method == "influence" || method == "tracin" || method == "grad-dot" || method == "grad-cos";
}

/// The statistics the batch norms use in the attribution passes over the training batches:
/// --batch-norm, or by default "batch" for HYDRA (the training step's own, exact) and "running"
/// for the baselines (they work at w_T, outside any training batch; --batch-norm batch is refused
/// there). Test gradients always use the running statistics (docs/attribution.md, "Batch norms").
inline std::string batch_norm_mode(const options& opt) {
  if (!opt.batch_norm.empty()) return opt.batch_norm;
  return tracks_nothing(opt.method) ? "running" : "batch";
}

inline batch_norm_statistics batch_norm_setting(const options& opt) {
  return batch_norm_mode(opt) == "running" ? batch_norm_statistics::running : batch_norm_statistics::batch;
}

/// Whether the model a spec names has batch norms (it is built, on the CPU, to count them: a
/// model's layers hold no parameter-sized memory, so this is cheap for every spec that parses).
inline bool has_batch_norms(const model_spec& spec) {
  return with_model<float, cpu>(spec, [](auto& model) { return batch_norm_count(model) > 0; });
}

/// The families of the registry whose model has batch norms, "densenet40 or mobilenetv2" (those
/// without arguments; a family with arguments is an MLP, which has none).
inline std::string models_with_batch_norms() {
  std::vector<std::string> names;
  for_each_model_family([&](const auto& family) {
    if (!family.takes_arguments() && has_batch_norms(parse_model_spec(std::string(family.name))))
      names.emplace_back(family.name);
  });
  std::string text;
  for (std::size_t k = 0; k < names.size(); ++k)
    text += (k == 0 ? "" : k + 1 == names.size() ? " or " : ", ") + names[k];
  return text;
}

/// --batch-norm and --init-buffers belong to a model with batch norms, and --batch-norm batch to
/// a method that attributes through the training batches.
inline void check_batch_norm_flags(const options& opt) {
  if (opt.batch_norm.empty() && opt.init_buffers.empty()) return;
  const std::string flag = !opt.batch_norm.empty() ? "--batch-norm" : "--init-buffers";
  if (!has_batch_norms(parse_model_spec(opt.model)))  // an unknown spec is refused here in its own words
    fail(flag + " applies to a model with batch norms (" + models_with_batch_norms() + "); --model " + opt.model +
         " has none");
  if (opt.batch_norm == "batch" && tracks_nothing(opt.method))
    fail("--batch-norm batch applies to --method hessian-free or exact: --method " + opt.method +
         " works at w_T, outside any training batch, on the running statistics (--batch-norm running)");
}

/// The tracker options of --update and --state-dir; refuses combinations the method cannot honour.
inline tracker_options tracking_settings(const options& opt) {
  tracker_options o;
  // The baselines after influence functions are named by their flag in the messages below.
  const std::string untracked = opt.method == "influence" ? "influence functions" : "--method " + opt.method;
  if (opt.update == "lazy") o.update = update_mode::lazy;
  if (opt.update == "eager") o.update = update_mode::eager;
  if (opt.update == "lazy" && opt.method != "hessian-free")
    fail("--update lazy applies to --method hessian-free only (the exact recurrence's Hessian changes every step)");
  if (opt.lean && tracks_nothing(opt.method))
    fail("--lean needs --method hessian-free or exact (" + untracked + " tracks nothing)");
  if (opt.lean && opt.method == "exact" && !opt.state_dir.empty() && opt.adjoint_checkpoint_every > 0)
    fail("--state-dir (every step's parameters in a mapped file) and --adjoint-checkpoint-every K (checkpoints in "
         "memory) are two answers to the same question; choose one");
  if (opt.adjoint_checkpoint_every < 0)
    fail("--adjoint-checkpoint-every must be >= 0, got " + std::to_string(opt.adjoint_checkpoint_every));
  if (opt.adjoint_checkpoint_every > 0 && !(opt.lean && opt.method == "exact"))
    fail("--adjoint-checkpoint-every applies to --method exact --lean only");
  if (opt.lean && (!opt.checkpoint.empty() || !opt.resume.empty()))
    fail("--lean cannot be combined with --checkpoint or --resume: the lean run trains twice");
  if (opt.checkpoint_every > 0 && opt.checkpoint.empty() && opt.resume.empty())
    fail("--checkpoint-every needs --checkpoint DIR (or --resume DIR)");
  if (!opt.update.empty() && tracks_nothing(opt.method)) fail("--update applies to --method hessian-free or exact");
  if (!opt.state_dir.empty() && tracks_nothing(opt.method))
    fail("--state-dir applies to --method hessian-free or exact");
  if (opt.tracin_every != 0 && opt.method != "tracin")
    fail("--tracin-every applies to --method tracin only");
  // The recorded checkpoints are not part of the trainer's checkpoint, so a resumed run would
  // miss those recorded before the interruption.
  if (opt.method == "tracin" && (!opt.checkpoint.empty() || !opt.resume.empty()))
    fail("--method tracin cannot be combined with --checkpoint or --resume: the parameters it records for TracIn "
         "are not in the training checkpoint");
  o.state_directory = opt.state_dir;
  return o;
}

/// The --model help: every family of the registry (hydra/nn/model_spec.hpp), its syntax first.
inline std::string model_help() {
  std::size_t width = 0;
  for_each_model_family([&](const auto& family) { width = std::max(width, family.name.size()); });
  std::string text = model_spec_syntaxes();
  for_each_model_family([&](const auto& family) {
    text += fmt::format("\n  {:<{}}  {}", family.name, width, family.description);
  });
  return text;
}

// ---- the values of single flags ----------------------------------------------------------------

/// A value as a user would type it back: 0.01, 1e+30, nan (never 309 digits).
inline std::string shown(double v) { return fmt::format("{:g}", v); }

inline void require_positive(const char* flag, double v) {
  if (!(std::isfinite(v) && v > 0)) fail(std::string(flag) + " must be finite and > 0, got " + shown(v));
}
inline void require_non_negative(const char* flag, double v) {
  if (!(std::isfinite(v) && v >= 0)) fail(std::string(flag) + " must be finite and >= 0, got " + shown(v));
}
inline void require_at_least(const char* flag, index v, index least) {
  if (v < least) fail(std::string(flag) + " must be >= " + std::to_string(least) + ", got " + std::to_string(v));
}

/// --seed: a decimal integer in [0, 2^64 − 1]; a negative or larger value is refused, not wrapped.
inline std::uint64_t parse_seed(const std::string& text) {
  std::uint64_t seed = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, seed);
  if (text.empty() || ec != std::errc{} || ptr != end)
    fail("--seed must be an integer in [0, " + std::to_string(std::numeric_limits<std::uint64_t>::max()) + "], got '" +
         text + "'");
  return seed;
}

/// Whether the flag was given on the command line (its default is not a choice).
inline bool given(const CLI::App& app, const char* flag) { return app.count(flag) > 0; }

/// Flags that only one method reads are refused with the others instead of being ignored.
inline void check_method_flags(const CLI::App& app, const options& opt) {
  for (const char* flag : {"--ihvp", "--damping", "--cg-tol", "--cg-max-iter", "--lissa-scale", "--lissa-depth",
                           "--lissa-repeats"})
    if (given(app, flag) && opt.method != "influence")
      fail(std::string(flag) + " applies to --method influence only (this run is --method " + opt.method + ")");
  for (const char* flag : {"--cg-tol", "--cg-max-iter"})
    if (given(app, flag) && opt.ihvp != "cg") fail(std::string(flag) + " applies to --ihvp cg only");
  for (const char* flag : {"--lissa-scale", "--lissa-depth", "--lissa-repeats"})
    if (given(app, flag) && opt.ihvp != "lissa") fail(std::string(flag) + " applies to --ihvp lissa only");
}

/// Every flag's value and every combination, checked before any file is read or written: a
/// command line that passes here fails later only because of a file's content, the machine's
/// memory or the numbers themselves. Parses --seed into opt.seed.
inline void check_options(const CLI::App& app, options& opt) {
  opt.seed = parse_seed(opt.seed_text);
  require_at_least("--epochs", opt.epochs, 1);
  require_at_least("--batch-size", opt.batch_size, 1);
  if (opt.lr_file.empty()) require_positive("--lr", opt.lr);
  if (!(std::isfinite(opt.momentum) && opt.momentum >= 0 && opt.momentum < 1))
    fail("--momentum must be in [0, 1), got " + shown(opt.momentum));
  require_non_negative("--weight-decay", opt.weight_decay);
  if (given(app, "--max-loss") && !(opt.max_loss > 0))  // +inf switches the bound off
    fail("--max-loss must be > 0 (inf: no bound), got " + shown(opt.max_loss));
  check_method_flags(app, opt);
  if (opt.method == "influence") {
    require_non_negative("--damping", opt.damping);
    if (opt.ihvp == "lissa" && !(opt.damping < 1))
      fail("--damping must be in [0, 1) with --ihvp lissa (it damps s·H), got " + shown(opt.damping));
    require_positive("--cg-tol", opt.cg_tolerance);
    require_at_least("--cg-max-iter", opt.cg_max_iterations, 1);
    require_positive("--lissa-scale", opt.lissa_scale);
    require_at_least("--lissa-depth", opt.lissa_depth, 1);
    require_at_least("--lissa-repeats", opt.lissa_repeats, 1);
  }
  if (given(app, "--tracin-every")) require_at_least("--tracin-every", opt.tracin_every, 1);
  require_at_least("--checkpoint-every", opt.checkpoint_every, 0);
  if (opt.out.empty()) fail("--out must name a folder");
  (void)tracking_settings(opt);  // the tracking flags' combinations
  check_batch_norm_flags(opt);
}

/// Declares every flag of hydra-attribute on `app`, bound to the fields of `opt`. Ranges are
/// checked by check_options (one wording for every flag), not by CLI11's validators.
inline void add_options(CLI::App& app, options& opt) {
  app.add_option("--train-x", opt.train_x, "N × D (or N × C × H × W) float32/float64 training features")->required();
  app.add_option("--train-y", opt.train_y, "N integer training labels (int32, int64 or uint8)")->required();
  app.add_option("--test-x", opt.test_x, "M × D test features")->required();
  app.add_option("--test-y", opt.test_y, "M integer test labels")->required();
  app.add_option("--model", opt.model, model_help())->required();
  app.add_option("--init", opt.init, "initial parameters (|w|), PyTorch parameters_to_vector layout");
  auto* order = app.add_option("--order", opt.order, "int64 T × B table: row t = the batch of step t");
  app.add_option("--epochs", opt.epochs, "epochs of seeded shuffles (without --order)")->capture_default_str()->excludes(order);
  app.add_option("--batch-size", opt.batch_size, "batch size (without --order)")->capture_default_str()->excludes(order);
  app.add_option("--seed", opt.seed_text, "seed of the shuffles and the default initialisation, in [0, 2^64)")
      ->capture_default_str();
  auto* lr = app.add_option("--lr", opt.lr, "constant learning rate")->capture_default_str();
  app.add_option("--lr-file", opt.lr_file, "one learning rate per step (T of them)")->excludes(lr);
  app.add_option("--momentum", opt.momentum, "SGD momentum p")->capture_default_str();
  app.add_option("--weight-decay", opt.weight_decay, "weight decay λ")->capture_default_str();
  app.add_option("--max-loss", opt.max_loss,
                 "divergence bound: a batch's mean loss above it stops the run (default 100·ln C for C classes; inf: "
                 "no bound)");
  app.add_option("--track", opt.track, "int64 indices of the training samples to track, or 'all'")->capture_default_str();
  app.add_option("--method", opt.method,
                 "hessian-free, exact (HYDRA); influence (influence functions); tracin, grad-dot or grad-cos (the "
                 "gradient-similarity baselines)")
      ->capture_default_str()
      ->check(CLI::IsMember({"hessian-free", "exact", "influence", "tracin", "grad-dot", "grad-cos"}));
  app.add_option("--tracin-every", opt.tracin_every,
                 "tracin: epochs between the checkpoints TracIn sums over (the run's last epoch always ends one; "
                 "default 1)");
  app.add_option("--ihvp", opt.ihvp, "influence: how H⁻¹ is applied, explicit, cg or lissa")
      ->capture_default_str()
      ->check(CLI::IsMember({"explicit", "cg", "lissa"}));
  app.add_option("--damping", opt.damping, "influence: damping δ (H + δI; LiSSA: H + s·δI)")->capture_default_str();
  app.add_option("--cg-tol", opt.cg_tolerance, "influence, cg: relative residual tolerance")->capture_default_str();
  app.add_option("--cg-max-iter", opt.cg_max_iterations, "influence, cg: iteration cap")->capture_default_str();
  app.add_option("--lissa-scale", opt.lissa_scale, "influence, lissa: scale s")->capture_default_str();
  app.add_option("--lissa-depth", opt.lissa_depth, "influence, lissa: iterations per repeat")->capture_default_str();
  app.add_option("--lissa-repeats", opt.lissa_repeats, "influence, lissa: repeats averaged")->capture_default_str();
  app.add_option("--update", opt.update, "hessian-free: lazy (default; touches a sample's state only when it is in a batch) or eager (Algorithm 1, every state every step)")
      ->check(CLI::IsMember({"lazy", "eager"}));
  app.add_flag("--lean", opt.lean,
               "contributions only, no hypergradients.npy: hessian-free trains twice with O(n·M) memory; exact trains "
               "once and gets every training sample's exact contributions by the adjoint sweep");
  app.add_option("--adjoint-checkpoint-every", opt.adjoint_checkpoint_every,
                 "--method exact --lean: keep the parameters every K steps and recompute the rest (0: keep every step)")
      ->capture_default_str();
  app.add_option("--state-dir", opt.state_dir,
                 "keep the tracker's states (exact --lean: every step's parameters) in a memory-mapped scratch file in this folder");
  app.add_option("--checkpoint", opt.checkpoint, "write crash-safe checkpoints (every epoch, and see --checkpoint-every) into this folder");
  app.add_option("--checkpoint-every", opt.checkpoint_every, "also checkpoint after every this many steps (0: epoch ends only)")
      ->capture_default_str();
  app.add_option("--resume", opt.resume, "continue the run checkpointed in this folder (same flags otherwise)");
  app.add_option("--batch-norm", opt.batch_norm,
                 "models with batch norms: the statistics of the attribution passes over the training batches, batch "
                 "(exact: the training step's own, samples coupled) or running (PyTorch's eval mode, cheaper); test "
                 "gradients always use the running statistics (default: batch; running for the baselines)")
      ->check(CLI::IsMember({"batch", "running"}));
  app.add_option("--init-buffers", opt.init_buffers,
                 "models with batch norms: the running statistics to start from, 1-d: each batch norm's running_mean "
                 "then running_var, in layer order (default: PyTorch's fresh 0 and 1)");
  app.add_option("--precision", opt.precision, "float32 or float64")->capture_default_str()->check(CLI::IsMember({"float32", "float64"}));
  app.add_option("--device", opt.device, "cpu or cuda (the GPU; needs a build with the CUDA toolkit)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--out", opt.out, "output folder")->required();
}

/// CLI11's parse errors in hydra-attribute's words: one line, the one prefix, exit code 1.
inline void use_one_line_errors(CLI::App& app) {
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string(message_prefix) + e.what() + " (see --help)\n";
  });
}

} // namespace hydra::cli
