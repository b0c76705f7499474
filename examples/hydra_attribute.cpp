// hydra-attribute: the whole HYDRA pipeline on NumPy files. Trains a model with SGD while
// tracking the hypergradients dw_T/dε_i of the chosen training samples, then writes
//   weights.npy         final parameters (|w|), PyTorch parameters_to_vector layout
//   hypergradients.npy  n_tracked × |w|, row k = dw_T/dε for the k-th tracked index
//   contributions.npy   n_tracked × M, entry (k, j) = C(track[k], j) = −(1/N)·∇ℓ(test_j, w_T)·dw_T/dε
//   tracked.npy         the tracked indices (int64)
// Positive contributions help: removing the sample would raise that test loss. See docs/attribution.md.
// --method influence runs the influence-function baseline instead (docs/influence.md): the same
// training, then C_IF(i, j) = (1/N)·∇ℓ(test_j)ᵀ·H⁻¹·∇ℓ(z_i) at w_T into contributions.npy, with H⁻¹
// applied by --ihvp explicit|cg|lissa; it writes no hypergradients.npy. --method grad-dot,
// grad-cos and tracin run the gradient-similarity baselines the same way (docs/influence.md):
// Grad-Dot (1/N)·∇ℓ(test_j)·∇ℓ(z_i) and Grad-Cos at w_T, and TracIn summed over the parameters
// recorded at the end of every --tracin-every K-th epoch, weighted by η·K/(|B|(1 − μ)).
// Hessian-free tracking is lazy unless --update eager; --lean trains twice along the identical
// trajectory, carrying only the projections onto the test gradients the second time (no
// hypergradients.npy); --state-dir keeps the states in a mapped file; --checkpoint DIR writes
// crash-safe checkpoints from which --resume DIR continues the run bit for bit.
// --device cuda runs the same computation on the GPU (hydra::cuda) and writes the same files: the
// data are loaded on the host, the model, optimiser, tracker and contributions live in device
// memory, and every result is copied to the host before it is saved or ranked.
//
// This file is the tool's only source. Built as it is (g++), it knows hydra::cpu alone; with the
// CUDA toolkit, CMake builds hydra_attribute.cu instead, which defines HYDRA_ATTRIBUTE_WITH_CUDA and
// includes this file, so nvcc compiles the same code with the hydra::cuda branch switched on.

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <hydra/attribution/contributions.hpp>
#include <hydra/attribution/ranking.hpp>
#include <hydra/core/archive.hpp>
#include <hydra/core/io/directory_lock.hpp>
#include <hydra/hydra.hpp>
#include <hydra/hypergradient/adjoint.hpp>
#include <hydra/hypergradient/approximation_error.hpp>
#include <hydra/hypergradient/tracker.hpp>
#include <hydra/influence/influence.hpp>
#include <hydra/nn/lenet.hpp>
#include <hydra/nn/model_spec.hpp>

#ifdef HYDRA_ATTRIBUTE_WITH_CUDA
#include <hydra/backend/cuda.cuh>
#endif

namespace hydra::cli {

[[noreturn]] inline void fail(const std::string& message) { throw hydra::invalid_argument(message); }

struct options {
  std::string train_x, train_y, test_x, test_y, model, init, order, lr_file, track = "all", method = "hessian-free",
      precision = "float32", device = "cpu", out;
  hydra::index epochs = 1, batch_size = 64;
  std::uint64_t seed = 0;
  double lr = 0.01, momentum = 0.9, weight_decay = 0;
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
};

/// Whether --method names a baseline that trains without tracking (influence functions, gradient similarity).
inline bool tracks_nothing(const std::string& method) {
  return method == "influence" || method == "tracin" || method == "grad-dot" || method == "grad-cos";
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

/// Refuses, in one line, a --device this build or this machine cannot honour, before any data is read.
inline void check_device(const options& opt) {
  if (opt.device != "cuda") return;
#ifndef HYDRA_ATTRIBUTE_WITH_CUDA
  fail("this hydra-attribute was built without CUDA; rebuild with the CUDA toolkit (docs/attribution.md)");
#else
  if (!opt.state_dir.empty())
    fail("--state-dir cannot be combined with --device cuda: it maps the states to a file in host memory, and the "
         "GPU's states live in device memory");
  if (hydra::cuda::devices().empty())
    fail("--device cuda: no CUDA device is usable (" + hydra::cuda::no_device_reason() + ")");
#endif
}

/// --list-devices: one line per device this build can run on, as the backends describe them.
inline void list_devices() {
  for (const auto& device : hydra::cpu::devices()) fmt::print("{}\n", device.id);
#ifndef HYDRA_ATTRIBUTE_WITH_CUDA
  fmt::print("cuda: not built (this hydra-attribute was built without CUDA)\n");
#else
  const auto devices = hydra::cuda::devices();
  if (devices.empty()) fmt::print("cuda: no device ({})\n", hydra::cuda::no_device_reason());
  for (const auto& device : devices) fmt::print("{} {}\n", device.id, device.name);
#endif
}

/// A row-major host copy of m (device memory is not readable on the host).
template <class B, class T>
std::vector<T> host_copy(hydra::matrix_view<const T> m) {
  std::vector<T> host(static_cast<std::size_t>(m.rows * m.cols));
  if (m.stride == m.cols) {
    B::copy_to_host(m.data, m.rows * m.cols, host.data());
  } else {
    for (index r = 0; r < m.rows; ++r) B::copy_to_host(m.row(r), m.cols, host.data() + r * m.cols);
  }
  return host;
}

template <class B, class T>
void save_matrix(const std::filesystem::path& path, hydra::matrix_view<const T> m) {
  hydra::save_npy(path, host_copy<B>(m), {m.rows, m.cols});
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

// ---- reading the inputs, in the order their checks run ----------------------------------------

/// The data's sample shape must be the model's (a flat D also accepts any shape with D values).
template <class T>
void check_input(const dataset<T>& data, const model_spec& spec, const std::string& flag, const std::string& model) {
  const auto shape = data.sample_shape();
  const auto& expected = spec.sample_shape;
  const bool flat = expected.size() == 1;
  const bool same = flat ? data.sample_size() == expected[0]
                         : std::equal(shape.begin(), shape.end(), expected.begin(), expected.end());
  if (same) return;
  auto text = [](auto dims) {
    std::string t;
    for (auto d : dims) t += (t.empty() ? "" : " x ") + std::to_string(d);
    return t;
  };
  if (flat)
    fail(flag + " has " + std::to_string(data.sample_size()) + " features per sample but --model " + model + " takes " +
         std::to_string(expected[0]));
  fail(flag + " has samples of shape " + text(shape) + " but --model " + model + " takes N x " + text(expected) +
       " inputs");
}

/// Refuses a NaN or Inf among the values read from `flag`'s file (as converted to --precision: a
/// float64 value beyond float32's range arrives as Inf), naming the file and where, before
/// training; `row` > 0 reports the position as sample and feature.
template <class T>
void check_finite(std::span<const T> values, index row, const std::string& flag, const std::string& file,
                  const std::string& precision) {
  const auto bad = std::find_if(values.begin(), values.end(), [](T v) { return !std::isfinite(v); });
  if (bad == values.end()) return;
  const auto at = static_cast<index>(bad - values.begin());
  const std::string where = row > 0 ? "sample " + std::to_string(at / row) + ", feature " + std::to_string(at % row)
                                    : "value " + std::to_string(at);
  fail(fmt::format("{} {}: {} is {} (as {}); inputs must be finite", flag, file, where, *bad, precision));
}

/// The training and test data.
template <class T>
struct data_sets {
  dataset<T> train, test;
};

/// --train-x/--train-y and --test-x/--test-y, with the labels and sample shape the model takes.
template <class T>
data_sets<T> load_data(const options& opt, const model_spec& spec) {
  auto train = load_npy_dataset<T>(opt.train_x, opt.train_y, spec.outputs);
  auto test = load_npy_dataset<T>(opt.test_x, opt.test_y, spec.outputs);
  check_input(train, spec, "--train-x", opt.model);
  check_input(test, spec, "--test-x", opt.model);
  check_finite(train.features(), train.sample_size(), "--train-x", opt.train_x, opt.precision);
  check_finite(test.features(), test.sample_size(), "--test-x", opt.test_x, opt.precision);
  return {std::move(train), std::move(test)};
}

/// w_0: the values of --init, or the model's seeded initialisation.
template <class B, class T, class Model>
vector<T, B> initial_parameters(const options& opt, Model& model) {
  const index P = model.parameter_count();
  vector<T, B> w(P);
  if (opt.init.empty()) {
    model.initialize(w.view(), opt.seed);
    return w;
  }
  const auto init = load_npy_features<T>(opt.init);
  if (static_cast<index>(init.data.size()) != P)
    fail("--init " + opt.init + " has " + std::to_string(init.data.size()) + " values, the model has " +
         std::to_string(P) + " parameters");
  check_finite(std::span<const T>(init.data), 0, "--init", opt.init, opt.precision);
  B::copy_from_host(init.data.data(), P, w.data());
  return w;
}

/// The batches: --order's T × B table, or seeded shuffles of --epochs and --batch-size.
inline batch_order read_order(const options& opt, index N) {
  if (opt.order.empty()) return batch_order::shuffled(N, opt.batch_size, opt.epochs, opt.seed);
  auto table = load_npy_indices(opt.order);
  if (table.shape.size() != 2) fail("--order " + opt.order + " must be a 2-d T × B table of int64 indices");
  return batch_order::from_table(std::move(table.data), table.shape[0], table.shape[1], N);
}

/// One learning rate per step: --lr-file's, or --lr at every step.
inline std::vector<double> read_rates(const options& opt, index steps) {
  if (opt.lr_file.empty()) return std::vector<double>(static_cast<std::size_t>(steps), opt.lr);
  auto rates = load_npy_features<double>(opt.lr_file).data;
  if (static_cast<index>(rates.size()) != steps)
    fail("--lr-file " + opt.lr_file + " has " + std::to_string(rates.size()) + " rates for " + std::to_string(steps) +
         " steps");
  return rates;
}

/// The training samples to explain: --track's indices, or all N. Their range is checked by the
/// tracker, or by check_tracked for --method influence and --method exact --lean.
inline std::vector<index> read_tracked(const options& opt, index N) {
  if (opt.track != "all") {
    auto t = load_npy_indices(opt.track);
    if (t.shape.size() != 1) fail("--track " + opt.track + " must be a 1-d array of int64 indices");
    return std::move(t.data);
  }
  std::vector<index> all(static_cast<std::size_t>(N));
  for (index i = 0; i < N; ++i) all[static_cast<std::size_t>(i)] = i;
  return all;
}

inline sgd_options sgd_settings(const options& opt) {
  return {.momentum = opt.momentum, .weight_decay = opt.weight_decay};
}

/// The trainer's checkpoints: --resume DIR keeps checkpointing into DIR unless --checkpoint names another folder.
inline trainer_options trainer_settings(const options& opt) {
  trainer_options training;
  training.checkpoint.directory = !opt.checkpoint.empty() ? opt.checkpoint : opt.resume;
  training.checkpoint.every_steps = opt.checkpoint_every;
  return training;
}

// ---- resuming safely: the run's fingerprint and the directory locks ------------------------------
//
// A checkpoint holds the trainer's state, not what produced it: a checkpoint of another run with
// as many parameters (another training set of the same shape, another --lr, another activation)
// would resume silently and give numbers that belong to neither run. So every checkpoint directory
// hydra-attribute writes also holds the fingerprint of the run, field by field, and --resume
// refuses, before any training, a run whose fingerprint differs, naming the first field that does.
//
// What the fingerprint holds: everything that decides the outputs — the content hash of every
// input file (--train-x, --train-y, --test-x, --test-y, --init, --order, --lr-file, --track),
// --model (the spec string, activation included), the loss, --epochs, --batch-size, --seed, --lr,
// --momentum, --weight-decay, --method, the effective --update, --method influence's --ihvp,
// --damping, --cg-tol, --cg-max-iter and --lissa-*, --precision, --device, and the fingerprint of
// the batch order itself (train/checkpoint.hpp), which also catches a change in how hydra shuffles.
//
// What it deliberately leaves out, because it does not change a single output bit:
//   --out                     where the results go;
//   --checkpoint, --resume    where checkpoints go and come from (a run may move to another folder);
//   --checkpoint-every        when checkpoints are taken (a resumed run is bit-identical either way);
//   --state-dir               where the tracker's states live (memory or a mapped file: same bytes);
//   --list-devices, --help    they run nothing.
// And what cannot be combined with --checkpoint or --resume at all (refused by tracking_settings):
// --lean, --adjoint-checkpoint-every (exact --lean only) and --tracin-every (--method tracin only).

/// The file in a checkpoint directory that holds the fingerprint of the run that writes it.
inline constexpr const char* fingerprint_file_name = "hydra-attribute.fingerprint";
inline constexpr const char* fingerprint_format = "hydra-attribute.fingerprint";
inline constexpr std::uint32_t fingerprint_version = 1;

/// A stable 64-bit hash of a file's bytes: hydra's archive checksum (core/io/checksum.hpp), the same
/// on every run and every build, unlike std::hash. It identifies content; it is not cryptographic.
inline std::uint64_t content_hash(const std::string& flag, const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw hydra::io_error(flag + " " + file + ": cannot open it to fingerprint the run");
  detail::archive::checksum64 hash;
  std::vector<char> chunk(std::size_t(1) << 20);
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    hash.update(chunk.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) throw hydra::io_error(flag + " " + file + ": cannot read it to fingerprint the run");
  return hash.digest();
}

inline std::string hex(std::uint64_t v) { return fmt::format("0x{:016x}", v); }

/// The shortest text that reads back as the same double.
inline std::string shortest(double v) {
  char text[64];
  const auto result = std::to_chars(text, text + sizeof text, v);
  return std::string(text, result.ptr);
}

/// One field of the fingerprint: the flag it comes from and its value as text. A file's value is
/// its content hash (0x + 16 hex digits), "" when the flag was not given (--track: "all").
struct fingerprint_field {
  std::string flag;
  bool file = false;
  std::string value;
};

/// The fingerprint of this run, in the order its fields are compared (the inputs first).
inline std::vector<fingerprint_field> run_fingerprint(const options& opt, const batch_order& order) {
  std::vector<fingerprint_field> fields;
  const auto file = [&](const char* flag, const std::string& path, const char* absent = "") {
    fields.push_back({flag, true, path.empty() || path == absent ? std::string(absent) : hex(content_hash(flag, path))});
  };
  const auto value = [&](const char* flag, std::string text) { fields.push_back({flag, false, std::move(text)}); };
  file("--train-x", opt.train_x);
  file("--train-y", opt.train_y);
  file("--test-x", opt.test_x);
  file("--test-y", opt.test_y);
  value("--model", opt.model);
  value("loss", "softmax-cross-entropy");  // hydra-attribute has no other; recorded for when it does
  file("--init", opt.init);
  file("--order", opt.order);
  value("--epochs", std::to_string(opt.epochs));
  value("--batch-size", std::to_string(opt.batch_size));
  value("--seed", std::to_string(opt.seed));
  value("--lr", shortest(opt.lr));
  file("--lr-file", opt.lr_file);
  value("--momentum", shortest(opt.momentum));
  value("--weight-decay", shortest(opt.weight_decay));
  file("--track", opt.track, "all");
  value("--method", opt.method);
  const std::string update = !opt.update.empty()            ? opt.update
                             : opt.method == "hessian-free" ? "lazy"
                             : opt.method == "exact"        ? "eager"
                                                            : "none";
  value("--update", update);
  if (opt.method == "influence") {
    value("--ihvp", opt.ihvp);
    value("--damping", shortest(opt.damping));
    value("--cg-tol", shortest(opt.cg_tolerance));
    value("--cg-max-iter", std::to_string(opt.cg_max_iterations));
    value("--lissa-scale", shortest(opt.lissa_scale));
    value("--lissa-depth", std::to_string(opt.lissa_depth));
    value("--lissa-repeats", std::to_string(opt.lissa_repeats));
  }
  value("--precision", opt.precision);
  value("--device", opt.device);
  fields.push_back({"batch order", true, hex(hydra::fingerprint(order))});
  return fields;
}

/// Writes the fingerprint into `directory`, atomically (archive_writer: temp file, fsync, rename).
inline void save_fingerprint(const std::filesystem::path& directory, const std::vector<fingerprint_field>& fields) {
  archive_writer out(directory / fingerprint_file_name);
  out.write_string("format", fingerprint_format);
  out.write_value<std::uint32_t>("version", fingerprint_version);
  out.write_value<std::uint64_t>("fields", fields.size());
  for (const auto& f : fields) {
    out.write_string("flag", f.flag);
    out.write_value<bool>("file", f.file);
    out.write_string("value", f.value);
  }
  out.commit();
}

inline std::vector<fingerprint_field> load_fingerprint(const std::filesystem::path& file) {
  archive_reader in(file);
  const auto format = in.read_string("format", 64);
  if (format != fingerprint_format) fail(file.string() + " is not a hydra-attribute fingerprint (format '" + format + "')");
  const auto version = in.read_value<std::uint32_t>("version");
  if (version != fingerprint_version)
    fail(file.string() + " has version " + std::to_string(version) + "; this hydra-attribute reads version " +
         std::to_string(fingerprint_version));
  const auto count = in.read_value<std::uint64_t>("fields");
  if (count > 1000) fail(file.string() + " claims " + std::to_string(count) + " fields; it is corrupt");
  std::vector<fingerprint_field> fields(static_cast<std::size_t>(count));
  for (auto& f : fields) {
    f.flag = in.read_string("flag", 256);
    f.file = in.read_value<bool>("file");
    f.value = in.read_string("value", 4096);
  }
  in.finish();
  return fields;
}

/// "--lr 0.1", "--train-x (content hash 0x…)", "no --init", "--track all".
inline std::string describe_field(const fingerprint_field& f) {
  if (f.value.empty()) return "no " + f.flag;
  if (f.file && f.value.rfind("0x", 0) == 0) return f.flag + " (content hash " + f.value + ")";
  return f.flag + " " + f.value;
}

/// The first difference between the fingerprint stored in a checkpoint directory and this run's,
/// as the rest of a sentence that starts "the checkpoint was made with"; empty when they agree.
inline std::string first_difference(const std::vector<fingerprint_field>& stored,
                                    const std::vector<fingerprint_field>& current) {
  const auto find = [](const std::vector<fingerprint_field>& in, const std::string& flag) {
    return std::find_if(in.begin(), in.end(), [&](const fingerprint_field& f) { return f.flag == flag; });
  };
  for (const auto& mine : current) {
    const auto theirs = find(stored, mine.flag);
    if (theirs == stored.end())
      return "a fingerprint that does not record " + mine.flag + " (another hydra-attribute version), this run has " +
             describe_field(mine);
    if (theirs->value == mine.value) continue;
    const bool hashes = mine.file && theirs->value.rfind("0x", 0) == 0 && mine.value.rfind("0x", 0) == 0;
    if (hashes) return "a different " + mine.flag + " (content hash " + theirs->value + " vs " + mine.value + ")";
    return describe_field(*theirs) + ", this run has " + describe_field(mine);
  }
  for (const auto& theirs : stored)
    if (find(current, theirs.flag) == current.end())
      return describe_field(theirs) + ", which this run does not have (another hydra-attribute version or --method)";
  return {};
}

/// --resume DIR: refuses, before any training, a directory without a checkpoint, without a
/// fingerprint (made by an older hydra-attribute) or with the fingerprint of another run.
inline void check_resumable(const std::filesystem::path& directory, const std::vector<fingerprint_field>& current) {
  const std::string where = "--resume " + directory.string() + ": ";
  if (!std::filesystem::exists(checkpoint_path(directory)))
    fail(where + "there is no checkpoint to resume (no " + checkpoint_path(directory).string() + ")");
  const auto file = directory / fingerprint_file_name;
  if (!std::filesystem::exists(file))
    fail(where + "the checkpoint has no run fingerprint (no " + file.string() +
         "; it was written by an older hydra-attribute), so nothing shows it belongs to this run; start the run "
         "again with --checkpoint");
  const auto difference = first_difference(load_fingerprint(file), current);
  if (!difference.empty()) fail(where + "the checkpoint was made with " + difference);
}

/// The fingerprint's part of a run that checkpoints: --resume's check, then the fingerprint in the
/// directory the checkpoints go to. A fresh run into a --checkpoint DIR removes an earlier
/// checkpoint there first (it would overwrite it at its first checkpoint anyway), so that a
/// directory never pairs one run's fingerprint with another run's checkpoint, even after a crash.
inline void prepare_resume(const options& opt, const batch_order& order) {
  if (opt.checkpoint.empty() && opt.resume.empty()) return;
  const auto fields = run_fingerprint(opt, order);
  if (!opt.resume.empty()) check_resumable(opt.resume, fields);
  const std::filesystem::path target = !opt.checkpoint.empty() ? opt.checkpoint : opt.resume;
  if (!opt.resume.empty() && std::filesystem::equivalent(target, opt.resume)) return;  // it holds this fingerprint
  std::filesystem::create_directories(target);
  std::filesystem::remove(checkpoint_path(target));
  save_fingerprint(target, fields);
}

/// The directories this run writes into — --checkpoint, --resume (which it reads, and writes into
/// unless --checkpoint names another) and --state-dir — each locked before anything is written and
/// held until the run ends: two runs sharing one would overwrite each other's checkpoints or
/// states. A directory held by a live process is refused in one line naming it and that PID. A
/// lock left by a process that died is no lock (directory_lock: flock dies with its holder), so
/// after a crash --resume just works.
inline std::vector<directory_lock> lock_directories(const options& opt) {
  std::vector<directory_lock> locks;
  const auto lock = [&](const char* flag, const std::string& directory, bool create) {
    if (directory.empty()) return;
    if (create) std::filesystem::create_directories(directory);
    else if (!std::filesystem::is_directory(directory))
      fail(std::string(flag) + " " + directory + ": there is no checkpoint to resume (no " +
           checkpoint_path(directory).string() + ")");
    for (const auto& held : locks)
      if (std::filesystem::equivalent(held.directory(), directory)) return;
    try {
      locks.emplace_back(directory);
    } catch (const directory_busy& e) {
      fail(std::string(flag) + " " + directory + ": the directory is in use by " +
           (e.holder() > 0 ? "process " + std::to_string(e.holder()) : std::string("another process")) +
           " (it holds " + (std::filesystem::path(directory) / directory_lock::file_name).string() +
           "); two runs cannot share it");
    }
  };
  lock("--resume", opt.resume, false);
  lock("--checkpoint", opt.checkpoint, true);
  if (!tracks_nothing(opt.method)) lock("--state-dir", opt.state_dir, true);
  return locks;
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

  [[nodiscard]] index N() const noexcept { return train.size(); }
  [[nodiscard]] std::filesystem::path out() const { return opt.out; }

  /// Trains w from w_0 to w_T with the callbacks: from the start, or on from --resume's checkpoint.
  template <class... Callbacks>
  void train_model(Callbacks&... callbacks) {
    if (opt.resume.empty()) fit.fit(w.view(), train, order, nullptr, callbacks...);
    else fit.resume(opt.resume, w.view(), train, order, nullptr, callbacks...);
  }
};

/// The output folder without a hypergradients.npy (one from an earlier HYDRA run into it goes).
inline void remove_hypergradients(const std::filesystem::path& out) {
  std::filesystem::create_directories(out);
  std::filesystem::remove(out / "hypergradients.npy");
}

/// Refuses, before training, a --track list with an index outside the training set or a sample
/// listed twice (docs/attribution.md), in the tracker's words, for the methods that do not build
/// a tracker (influence, exact --lean).
inline void check_tracked(const std::vector<index>& tracked, index N) {
  std::vector<index> position(static_cast<std::size_t>(N), -1);
  for (std::size_t r = 0; r < tracked.size(); ++r) {
    const index i = tracked[r];
    if (i < 0 || i >= N)
      fail("--track: tracked[" + std::to_string(r) + "] = " + std::to_string(i) + " is outside the training set [0, " +
           std::to_string(N) + ")");
    if (position[static_cast<std::size_t>(i)] >= 0)
      fail("--track: training sample " + std::to_string(i) + " is tracked twice (tracked[" +
           std::to_string(position[static_cast<std::size_t>(i)]) + "] and tracked[" + std::to_string(r) + "])");
    position[static_cast<std::size_t>(i)] = static_cast<index>(r);
  }
}

/// What --method influence refuses before training, not after it: an explicit Hessian too large,
/// a bad --track list.
inline void check_influence(const ihvp_options& settings, index P, const std::vector<index>& tracked, index N) {
  if (settings.method == ihvp_method::explicit_hessian && P > settings.explicit_hessian.max_parameters)
    fail("--ihvp explicit forms the " + std::to_string(P) + " x " + std::to_string(P) + " Hessian of a model with " +
         std::to_string(P) + " parameters; it is limited to " +
         std::to_string(settings.explicit_hessian.max_parameters) + " (use --ihvp cg or lissa)");
  check_tracked(tracked, N);
}

/// --method influence: trains without tracking, then C_IF at w_T.
template <class Job>
matrix<typename Job::T, typename Job::B> influence_contributions(Job& job) {
  using T = typename Job::T;
  const auto settings = ihvp_settings(job.opt);
  tracking_settings(job.opt);  // refuses the tracking flags
  check_influence(settings, job.w.size(), job.tracked, job.N());
  job.train_model();
  auto result = influence(job.model, job.loss, std::as_const(job.w).view(), job.train, job.tracked, job.test,
                          static_cast<T>(job.opt.weight_decay), {.ihvp = settings});
  fmt::print("influence functions: {}\n", describe(result.report));
  remove_hypergradients(job.out());
  return std::move(result.contributions);
}

/// --method grad-dot or grad-cos: trains without tracking, then the similarity at w_T.
template <class Policy, class Job>
matrix<typename Job::T, typename Job::B> similarity_contributions(Job& job) {
  tracking_settings(job.opt);  // refuses the tracking flags
  check_tracked(job.tracked, job.N());
  job.train_model();
  const auto w = std::as_const(job.w).view();
  auto C = std::is_same_v<Policy, GradDot> ? grad_dot(job.model, job.loss, w, job.train, job.tracked, job.test)
                                           : grad_cos(job.model, job.loss, w, job.train, job.tracked, job.test);
  remove_hypergradients(job.out());
  return C;
}

/// --method tracin's callback: the parameters at the end of every K-th epoch and of the run, each
/// with the epochs it closes and the mean learning rate applied over them (its TracIn weight).
template <class T, class B>
class tracin_recorder {
public:
  struct recorded {
    index step;       // steps taken when it was recorded
    index epochs;     // epochs since the previous one
    double mean_rate; // mean η over those epochs' steps
    vector<T, B> parameters;
  };

  tracin_recorder(const batch_order& order, index every) : order_(order), every_(every) {}

  void after_update(const step_context<T, B>& ctx) {
    rate_sum_ += static_cast<double>(ctx.learning_rate);
    ++steps_;
    const bool last = ctx.step + 1 == order_.steps();
    if ((ctx.step + 1) % order_.steps_per_epoch() != 0 && !last) return;
    ++epochs_;
    if ((ctx.epoch + 1) % every_ != 0 && !last) return;
    vector<T, B> w(ctx.parameters.size);
    B::copy(ctx.parameters, w.view());
    checkpoints_.push_back({ctx.step + 1, epochs_, rate_sum_ / static_cast<double>(steps_), std::move(w)});
    rate_sum_ = 0;
    steps_ = 0;
    epochs_ = 0;
  }

  [[nodiscard]] const std::vector<recorded>& checkpoints() const noexcept { return checkpoints_; }

private:
  const batch_order& order_;
  index every_;
  double rate_sum_ = 0;
  index steps_ = 0, epochs_ = 0;
  std::vector<recorded> checkpoints_;
};

/// --method tracin: trains recording w_c every --tracin-every epochs, then TracIn-CP with the
/// weights η_c·K_c/(|B|(1 − μ)) (docs/influence.md).
template <class Job>
matrix<typename Job::T, typename Job::B> tracin_contributions(Job& job) {
  using T = typename Job::T;
  using B = typename Job::B;
  tracking_settings(job.opt);  // refuses the tracking flags, --checkpoint and --resume
  check_tracked(job.tracked, job.N());
  tracin_recorder<T, B> recorder(job.order, job.opt.tracin_every > 0 ? job.opt.tracin_every : 1);
  job.train_model(recorder);
  std::vector<tracin_checkpoint<T>> checkpoints;
  for (const auto& c : recorder.checkpoints())
    checkpoints.push_back({c.step, c.parameters.view(),
                           tracin_weight(c.mean_rate, c.epochs, job.order.batch_size(), job.opt.momentum)});
  auto C = tracin(job.model, job.loss, std::span<const tracin_checkpoint<T>>(checkpoints), job.train, job.tracked,
                  job.test);
  if (!checkpoints.empty())
    fmt::print("tracin: {} checkpoints, weights {:.3e} (first) to {:.3e} (last)\n", checkpoints.size(),
               checkpoints.front().weight, checkpoints.back().weight);
  remove_hypergradients(job.out());
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
  job.fit.fit(job.w.view(), job.train, job.order, nullptr);
  const auto U = per_sample_gradients(job.model, job.loss, std::as_const(job.w).view(), job.test);
  vector<T, B> w_first(P);
  B::copy(std::as_const(job.w).view(), w_first.view());

  B::copy(std::as_const(w0).view(), job.w.view());
  SGD<T, B> replay_optimizer(P, sgd_settings(job.opt));
  list_schedule replay_schedule(job.rates);
  trainer replay(job.model, job.loss, replay_optimizer, replay_schedule);
  hypergradient_tracker<typename Job::model_type, SoftmaxCrossEntropy<T, B>, Policy> tracker(
      job.model, job.loss, replay_optimizer, job.tracked, job.N(), lean_projection<T>{U.view()}, settings);
  theorem1_conditions theorem(job.opt.weight_decay);
  replay.fit(job.w.view(), job.train, job.order, nullptr, tracker, theorem);
  if (job.w.to_host() != w_first.to_host())
    throw numerical_error("--lean: the replay did not reproduce the first run's parameters bit for bit; the "
                          "contributions would not be HYDRA's");
  auto C = contributions_from_projections<B>(tracker.projections(), job.N());
  remove_hypergradients(job.out());
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

/// --method exact --lean: one training run recording the trajectory, then the adjoint sweep gives
/// the exact contributions of every training sample at once (docs/hypergradient.md, "The
/// adjoint"); --track chooses which rows are written.
template <class Job>
matrix<typename Job::T, typename Job::B> adjoint_contributions(Job& job) {
  using T = typename Job::T;
  using B = typename Job::B;
  tracking_settings(job.opt);  // refuses what the adjoint cannot honour
  const index P = job.w.size(), N = job.N(), M = job.test.size(), K = job.opt.adjoint_checkpoint_every;
  check_tracked(job.tracked, N);
  const bool in_file = !job.opt.state_dir.empty();
  const double bytes = adjoint_bytes(job.order.steps(), P, N, M, K, in_file, sizeof(T));
  const auto available = static_cast<double>(B::memory_available());
  if (bytes > available)
    fail("--method exact --lean would hold " + std::to_string(static_cast<long long>(bytes)) + " bytes (" +
         (K == 0 ? std::string("every step's parameters") : "checkpoints every " + std::to_string(K) + " steps") +
         "), more than the " + std::to_string(static_cast<long long>(available)) +
         " available; use --adjoint-checkpoint-every K (about the square root of the step count) or --state-dir DIR");
  const auto sweep = [&](auto& trajectory) {
    job.fit.fit(job.w.view(), job.train, job.order, nullptr, trajectory);
    const auto U = per_sample_gradients(job.model, job.loss, std::as_const(job.w).view(), job.test);
    return adjoint_projections<Exact>(job.model, job.loss, job.train, job.order, trajectory, U.view(), job.optimizer);
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
  remove_hypergradients(job.out());
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
  auto C = test_contributions(job.model, job.loss, std::as_const(job.w).view(), job.test, tracker.hypergradients(),
                              job.N());
  std::filesystem::create_directories(job.out());
  save_matrix<B>(job.out() / "hypergradients.npy", tracker.hypergradients());
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

// ---- one run: what it prints and writes -----------------------------------------------------------

/// The opening line: the data, the model, the run and what is explained.
template <class Policy, class Job>
void announce(const Job& job) {
  fmt::print("hydra-attribute: {} training / {} test samples, model {} ({} parameters), {} steps, {} {} samples ({}, {}, {})\n",
             job.N(), job.test.size(), job.opt.model, job.w.size(), job.order.steps(),
             is_baseline<Policy> ? "explaining" : "tracking", job.tracked.size(), Policy::name,
             job.opt.precision, Job::B::name);
  std::fflush(stdout);
}

/// weights.npy, contributions.npy and tracked.npy; returns the contributions on the host. Every
/// result reaches the host before it is written or ranked: the same files on every device.
template <class B, class T>
std::vector<T> save_results(const std::filesystem::path& out, const vector<T, B>& w, const matrix<T, B>& C,
                            const std::vector<index>& tracked) {
  save_npy(out / "weights.npy", w.to_host(), {w.size()});
  std::vector<T> C_values = host_copy<B>(C.view());
  save_npy(out / "contributions.npy", C_values, {C.rows(), C.cols()});
  const std::vector<std::int64_t> tracked64(tracked.begin(), tracked.end());
  save_npy(out / "tracked.npy", tracked64, {static_cast<index>(tracked.size())});
  return C_values;
}

/// The closing line: accuracies at w_T, the run's seconds and the files written.
template <class Policy, class Job>
void print_accuracies(Job& job, std::chrono::steady_clock::time_point start) {
  const auto train_eval = job.fit.evaluate(std::as_const(job.w).view(), job.train);
  const auto test_eval = job.fit.evaluate(std::as_const(job.w).view(), job.test);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("train accuracy {:.2f}%, test accuracy {:.2f}%, {:.1f} s; wrote {}/{{weights,{}contributions,tracked}}.npy\n",
             100 * train_eval.accuracy, 100 * test_eval.accuracy, seconds, job.opt.out,
             is_baseline<Policy> ? "" : "hypergradients,");
}

/// Test point 0's three most helpful and three most harmful tracked samples (C on the host).
template <class T>
void print_test_point_0(const std::vector<index>& tracked, matrix_view<const T> C, const dataset<T>& train,
                        const dataset<T>& test) {
  if (tracked.empty() || test.size() == 0) return;
  const auto helpful = most_helpful<T>(tracked, C, 0, 3);
  const auto harmful = most_harmful<T>(tracked, C, 0, 3);
  fmt::print("test point 0 (label {}): most helpful", test.label(0));
  for (const auto& s : helpful) fmt::print("  #{} (label {}, C = {:+.3e})", s.sample, train.label(s.sample), s.score);
  fmt::print("\n                       most harmful");
  for (const auto& s : harmful) fmt::print("  #{} (label {}, C = {:+.3e})", s.sample, train.label(s.sample), s.score);
  fmt::print("\n");
}

/// Refuses a --model whose parameters and one batch's activations cannot fit in the memory of
/// the backend, before anything of that size is allocated (the sizes themselves are checked for
/// overflow when the model is built). A lower bound: the parameters, the gradient, the velocity
/// and the trainer's copy of w, plus the activations and δ of a batch of --batch-size (a --order
/// table's width is not known yet).
template <class T, class B, class Model>
void check_model_fits(const options& opt, const Model& model, const model_spec& spec) {
  const auto P = static_cast<double>(model.parameter_count());
  double widths = static_cast<double>(spec.inputs) + static_cast<double>(spec.outputs);
  for (const index h : spec.hidden) widths += static_cast<double>(h);
  const double bytes = (4.0 * P + 3.0 * static_cast<double>(opt.batch_size) * widths) * sizeof(T);
  const auto available = static_cast<double>(B::memory_available());
  if (bytes > available)
    fail(fmt::format("--model {}: {} parameters and a batch of {} need at least {:.3g} bytes ({}), more than the "
                     "{:.3g} bytes available",
                     opt.model, model.parameter_count(), opt.batch_size, bytes, opt.precision, available));
}

/// The pipeline on one model: read the inputs, train (and track), attribute, write, report.
template <class T, class Policy, class Model>
int run(const options& opt, Model& model, const model_spec& spec) {
  using B = typename Model::backend_type;
  const auto start = std::chrono::steady_clock::now();
  check_model_fits<T, B>(opt, model, spec);
  const auto data = load_data<T>(opt, spec);
  auto w = initial_parameters<B, T>(opt, model);
  const auto order = read_order(opt, data.train.size());
  const auto rates = read_rates(opt, order.steps());
  list_schedule schedule(rates);  // refuses a rate that is not finite and > 0
  const auto tracked = read_tracked(opt, data.train.size());
  prepare_resume(opt, order);  // --resume: refuses another run's checkpoint before any training

  SoftmaxCrossEntropy<T, B> loss;
  SGD<T, B> optimizer(w.size(), sgd_settings(opt));
  trainer fit(model, loss, optimizer, schedule, trainer_settings(opt));
  attribution_job<Model, decltype(fit)> job{opt, model, loss, optimizer, fit, w,
                                            data.train, data.test, order, rates, tracked};
  announce<Policy>(job);
  const auto C = contributions_of<Policy>(job);
  const auto C_values = save_results(job.out(), w, C, tracked);
  print_accuracies<Policy>(job, start);
  print_test_point_0<T>(tracked, {C_values.data(), C.rows(), C.cols()}, data.train, data.test);
  return 0;
}

/// Builds the model --model names (its family's row in the registry) on backend B and runs the
/// pipeline on it.
template <class T, class Policy, class B>
int run(const options& opt) {
  const auto spec = parse_model_spec(opt.model);
  return with_model<T, B>(spec, [&](auto& model) { return run<T, Policy>(opt, model, spec); });
}

} // namespace hydra::cli

int main(int argc, char** argv) {
  hydra::cli::options opt;
  CLI::App app{"hydra-attribute: HYDRA training-data attribution on NumPy files (see docs/attribution.md)"};
  app.add_option("--train-x", opt.train_x, "N × D (or N × C × H × W) float32/float64 training features")->required();
  app.add_option("--train-y", opt.train_y, "N integer training labels (int32, int64 or uint8)")->required();
  app.add_option("--test-x", opt.test_x, "M × D test features")->required();
  app.add_option("--test-y", opt.test_y, "M integer test labels")->required();
  app.add_option("--model", opt.model, hydra::cli::model_help())->required();
  app.add_option("--init", opt.init, "initial parameters (|w|), PyTorch parameters_to_vector layout");
  auto* order = app.add_option("--order", opt.order, "int64 T × B table: row t = the batch of step t");
  app.add_option("--epochs", opt.epochs, "epochs of seeded shuffles (without --order)")->capture_default_str()->excludes(order)->check(CLI::PositiveNumber);
  app.add_option("--batch-size", opt.batch_size, "batch size (without --order)")->capture_default_str()->excludes(order)->check(CLI::PositiveNumber);
  app.add_option("--seed", opt.seed, "seed of the shuffles and the default initialisation")->capture_default_str();
  auto* lr = app.add_option("--lr", opt.lr, "constant learning rate")->capture_default_str();
  app.add_option("--lr-file", opt.lr_file, "one learning rate per step (T of them)")->excludes(lr);
  app.add_option("--momentum", opt.momentum, "SGD momentum p")->capture_default_str();
  app.add_option("--weight-decay", opt.weight_decay, "weight decay λ")->capture_default_str();
  app.add_option("--track", opt.track, "int64 indices of the training samples to track, or 'all'")->capture_default_str();
  app.add_option("--method", opt.method,
                 "hessian-free, exact (HYDRA); influence (influence functions); tracin, grad-dot or grad-cos (the "
                 "gradient-similarity baselines)")
      ->capture_default_str()
      ->check(CLI::IsMember({"hessian-free", "exact", "influence", "tracin", "grad-dot", "grad-cos"}));
  app.add_option("--tracin-every", opt.tracin_every,
                 "tracin: epochs between the checkpoints TracIn sums over (the run's last epoch always ends one; "
                 "default 1)")
      ->check(CLI::PositiveNumber);
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
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--resume", opt.resume, "continue the run checkpointed in this folder (same flags otherwise)");
  app.add_option("--precision", opt.precision, "float32 or float64")->capture_default_str()->check(CLI::IsMember({"float32", "float64"}));
  app.add_option("--device", opt.device, "cpu or cuda (the GPU; needs a build with the CUDA toolkit)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_flag_callback(
      "--list-devices",
      [] {
        hydra::cli::list_devices();
        throw CLI::Success();  // like --help: print and exit 0, whatever else is missing
      },
      "print the devices this build can run on (cpu, cuda:K NAME per CUDA device) and exit");
  app.add_option("--out", opt.out, "output folder")->required();
  app.failure_message([](const CLI::App*, const CLI::Error& e) {  // one line, like every other error
    return std::string("hydra-attribute: error: ") + e.what() + " (see --help)\n";
  });
  CLI11_PARSE(app, argc, argv);
  try {
    using namespace hydra::cli;
    check_device(opt);
    (void)tracking_settings(opt);  // flags the method cannot honour are refused before any file is read
    const auto locks = lock_directories(opt);  // held until the run ends; taken before anything is written
    auto on_backend = [&]<class B>() {
      auto with_precision = [&]<class T>() {
        if (opt.method == "exact") return run<T, hydra::Exact, B>(opt);
        if (opt.method == "influence") return run<T, Influence, B>(opt);
        if (opt.method == "tracin") return run<T, TracIn, B>(opt);
        if (opt.method == "grad-dot") return run<T, GradDot, B>(opt);
        if (opt.method == "grad-cos") return run<T, GradCos, B>(opt);
        return run<T, hydra::HessianFree, B>(opt);
      };
      return opt.precision == "float64" ? with_precision.template operator()<double>()
                                        : with_precision.template operator()<float>();
    };
#ifdef HYDRA_ATTRIBUTE_WITH_CUDA
    if (opt.device == "cuda") return on_backend.template operator()<hydra::cuda>();
#endif
    return on_backend.template operator()<hydra::cpu>();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hydra-attribute: error: %s\n", e.what());
    return 1;
  }
}
