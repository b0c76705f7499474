#pragma once
// What the paper's experiments (examples/paper/, docs/experiments.md) share: the real
// Fashion-MNIST with the paper's 50,000 / 10,000 / 10,000 split, the paper's training recipe
// (supplement Table 3), label noise, the memory check before a --paper run, and the results
// folder every program writes (CSV and .npy of every number it prints, settings.json with the
// exact settings and the wall time). A program's main() goes through run_main(), so that every
// refusal is one line on stderr and exit code 1.

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <hydra/hydra.hpp>
#ifdef HYDRA_PAPER_WITH_CUDA
#include <hydra/backend/cuda.cuh>
#endif

namespace hydra::paper {

inline constexpr const char* fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";
inline constexpr const char* fashion_mnist_classes[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// ---- data -------------------------------------------------------------------------------------

/// The paper's split of Fashion-MNIST (supplement, "Experiment Settings"): training = the first
/// 50,000 images of the training file, validation = its last 10,000, test = the 10,000 of the
/// test file. A scaled run takes the first `train_size`, `validation_size` and `test_size` of
/// each part, so that a scaled run's samples are a prefix of the paper's.
template <Scalar T>
struct split_data {
  dataset<T> train, validation, test;
  std::string provenance;
};

template <Scalar T>
split_data<T> load_fashion_mnist(const std::filesystem::path& dir, index train_size = 50000,
                                 index validation_size = 10000, index test_size = 10000) {
  for (const char* name : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                           "t10k-labels-idx1-ubyte.gz"})
    if (!std::filesystem::exists(dir / name))
      throw io_error("Fashion-MNIST file " + (dir / name).string() +
                     " is missing: install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or "
                     "give --data-dir");
  if (train_size < 1 || train_size > 50000)
    throw invalid_argument("--train-size must be in [1, 50000], got " + std::to_string(train_size));
  if (validation_size < 1 || validation_size > 10000)
    throw invalid_argument("--validation-size must be in [1, 10000], got " + std::to_string(validation_size));
  if (test_size < 1 || test_size > 10000)
    throw invalid_argument("--test-size must be in [1, 10000], got " + std::to_string(test_size));
  const auto all = load_idx_dataset<T>(dir / "train-images-idx3-ubyte.gz", dir / "train-labels-idx1-ubyte.gz");
  const auto test = load_idx_dataset<T>(dir / "t10k-images-idx3-ubyte.gz", dir / "t10k-labels-idx1-ubyte.gz");
  if (all.size() != 60000 || test.size() != 10000)
    throw format_error("Fashion-MNIST in " + dir.string() + " has " + std::to_string(all.size()) + " training and " +
                       std::to_string(test.size()) + " test images, not 60,000 and 10,000");
  return {split(all, 0, train_size), split(all, 50000, validation_size), split(test, 0, test_size),
          "real Fashion-MNIST (Xiao et al. 2017) from " + dir.string() +
              " (Debian package dataset-fashion-mnist); pixels scaled to [0, 1]; training = images [0, " +
              std::to_string(train_size) + ") of the training file, validation = [50000, " +
              std::to_string(50000 + validation_size) + "), test = [0, " + std::to_string(test_size) +
              ") of the test file"};
}

/// `per_class` samples of every class, the first ones of each class in index order: the
/// paper's "1% of every class" tracked set. Sorted by index.
template <Scalar T>
std::vector<index> first_of_each_class(const dataset<T>& data, index per_class) {
  std::vector<index> taken(static_cast<std::size_t>(data.num_classes()), 0), out;
  for (index i = 0; i < data.size(); ++i) {
    auto& count = taken[static_cast<std::size_t>(data.label(i))];
    if (count < per_class) {
      ++count;
      out.push_back(i);
    }
  }
  for (std::size_t c = 0; c < taken.size(); ++c)
    if (taken[c] < per_class)
      throw invalid_argument("class " + std::to_string(c) + " has " + std::to_string(taken[c]) +
                             " training samples, fewer than the " + std::to_string(per_class) + " to track");
  return out;
}

/// How wrong labels are made.
enum class noise_kind {
  permuted,  ///< the chosen samples' labels permuted among themselves so that each changes (Table 3)
  uniform,   ///< each chosen sample gets a label drawn uniformly from the other classes (Table 4)
};

template <Scalar T>
struct noisy_labels {
  dataset<T> data;              ///< the training set with the wrong labels
  std::vector<index> flipped;   ///< the samples whose label is wrong, sorted
  std::vector<std::uint8_t> is_flipped;  ///< per sample: 1 when its label is wrong
};

/// round(rate · N) samples, drawn without replacement by a seeded generator, get a wrong label.
/// `permuted` keeps the class counts of the chosen samples (their labels are shuffled, then every
/// sample that kept its own label swaps with one that makes both wrong); it needs the chosen
/// samples to hold at least two classes.
template <Scalar T>
noisy_labels<T> with_wrong_labels(const dataset<T>& clean, double rate, noise_kind kind, std::uint64_t seed) {
  if (!(rate >= 0 && rate < 1))
    throw invalid_argument("--noise must be in [0, 1), got " + fmt::format("{}", rate));
  const index N = clean.size(), K = clean.num_classes();
  const auto count = static_cast<index>(std::llround(rate * static_cast<double>(N)));
  std::vector<index> order(static_cast<std::size_t>(N));
  std::iota(order.begin(), order.end(), index{0});
  xoshiro256ss rng(seed);
  shuffle(std::span<index>(order), rng);
  std::vector<index> chosen(order.begin(), order.begin() + count);
  std::sort(chosen.begin(), chosen.end());
  std::vector<label_type> labels(clean.labels().begin(), clean.labels().end());
  if (kind == noise_kind::uniform) {
    for (index i : chosen) {
      const auto original = labels[static_cast<std::size_t>(i)];
      auto drawn = static_cast<label_type>(bounded(rng, static_cast<std::uint64_t>(K - 1)));
      labels[static_cast<std::size_t>(i)] = drawn >= original ? drawn + 1 : drawn;
    }
  } else if (count > 0) {
    std::vector<label_type> moved(chosen.size());
    for (std::size_t k = 0; k < chosen.size(); ++k) moved[k] = labels[static_cast<std::size_t>(chosen[k])];
    shuffle(std::span<label_type>(moved), rng);
    const auto original = [&](std::size_t k) { return labels[static_cast<std::size_t>(chosen[k])]; };
    for (std::size_t k = 0; k < chosen.size(); ++k) {
      if (moved[k] != original(k)) continue;
      bool repaired = false;
      for (std::size_t tries = 0; tries < 64 * chosen.size() && !repaired; ++tries) {
        const auto m = static_cast<std::size_t>(bounded(rng, chosen.size()));
        if (moved[m] != original(k) && moved[k] != original(m)) {
          std::swap(moved[k], moved[m]);
          repaired = true;
        }
      }
      if (!repaired)
        throw invalid_argument("cannot permute the labels of " + std::to_string(count) +
                               " samples so that every one changes (too few classes among them)");
    }
    for (std::size_t k = 0; k < chosen.size(); ++k) labels[static_cast<std::size_t>(chosen[k])] = moved[k];
  }
  noisy_labels<T> out{dataset<T>(std::vector<index>(clean.sample_shape().begin(), clean.sample_shape().end()),
                                 std::vector<T>(clean.features().begin(), clean.features().end()), std::move(labels),
                                 K),
                      std::move(chosen), std::vector<std::uint8_t>(static_cast<std::size_t>(N), 0)};
  for (index i : out.flipped) out.is_flipped[static_cast<std::size_t>(i)] = 1;
  return out;
}

// ---- the training recipe ------------------------------------------------------------------------

/// Supplement Table 3, Fashion-MNIST: 20 epochs, batch 64, SGD momentum 0.9, weight decay 2e-5,
/// lr 0.01 multiplied by 0.5 on plateaus of 2 epochs (of training + validation loss, 0.01 %).
struct recipe {
  index epochs = 20;
  index batch_size = 64;
  double learning_rate = 0.01;
  double plateau_factor = 0.5;
  index plateau_patience = 2;
  double momentum = 0.9;
  double weight_decay = 2e-5;
};

/// Adds the recipe's flags to a CLI app (defaults shown).
inline void add_recipe_options(CLI::App& app, recipe& r) {
  app.add_option("--epochs", r.epochs, "training epochs")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch-size", r.batch_size, "mini-batch size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lr", r.learning_rate, "initial learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--plateau-factor", r.plateau_factor, "learning rate factor on a plateau of 2 epochs")
      ->capture_default_str();
  app.add_option("--momentum", r.momentum, "SGD momentum p")->capture_default_str();
  app.add_option("--weight-decay", r.weight_decay, "weight decay λ")->capture_default_str();
}

// ---- influence functions' flags ---------------------------------------------------------------

/// The influence-function settings of the paper programs, under the flag names hydra-attribute
/// uses (--ihvp, --damping, --cg-tol, --cg-max-iter, --lissa-*). --damping is the effective δ of
/// (H + δI)⁻¹ for both solvers: LiSSA's own δ is damping / s, since it solves H + s·δ·I.
struct influence_flags {
  std::string ihvp = "cg";
  double damping = 0.01;
  double damping_growth = 3.1622776601683795;  // √10; with damping search only
  index damping_tries = 6;
  double cg_tolerance = 1e-4;
  index cg_max_iterations = 100;
  double lissa_scale = 25;
  index lissa_depth = 5000, lissa_repeats = 1, lissa_batch = 64;
};

/// Which of the influence flags a program takes: --ihvp when it runs one solver (not both),
/// --damping-growth/--damping-tries when it grows δ while CG meets non-positive curvature, and
/// the --lissa-* flags unless it solves by CG alone.
struct influence_flag_set {
  bool choose_solver = true;
  bool damping_search = false;
  bool lissa = true;
};

inline void add_influence_options(CLI::App& app, influence_flags& f, influence_flag_set set = {}) {
  if (set.choose_solver)
    app.add_option("--ihvp", f.ihvp, "influence functions' inverse-HVP solver: cg or lissa")
        ->capture_default_str()
        ->check(CLI::IsMember({"cg", "lissa"}));
  app.add_option("--damping", f.damping, "influence functions: δ of (H + δI)⁻¹ (LiSSA: its effective s·δ)")
      ->capture_default_str();
  if (set.damping_search) {
    app.add_option("--damping-growth", f.damping_growth,
                   "CG: multiply δ by this while CG meets non-positive curvature (1: never)")
        ->capture_default_str()
        ->check(CLI::Range(1.0, 1e6));
    app.add_option("--damping-tries", f.damping_tries, "CG: at most this many solves with growing δ")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
  }
  app.add_option("--cg-tol", f.cg_tolerance, "CG: stop a direction at this relative residual")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--cg-max-iter", f.cg_max_iterations, "CG: at most this many iterations (each one pass over the "
                                                       "training set)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  if (!set.lissa) return;
  app.add_option("--lissa-scale", f.lissa_scale, "LiSSA: scale s")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lissa-depth", f.lissa_depth, "LiSSA: iterations per repeat")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--lissa-repeats", f.lissa_repeats, "LiSSA: repeats averaged")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--lissa-batch", f.lissa_batch, "LiSSA: samples per mini-batch")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
}

/// Refuses a damping that no solver can use, before any training.
inline void check_influence_flags(const influence_flags& f, bool uses_lissa) {
  if (!(f.damping >= 0) || !std::isfinite(f.damping))
    throw invalid_argument(fmt::format("--damping must be finite and >= 0, got {}", f.damping));
  if (uses_lissa && !(f.damping / f.lissa_scale < 1))
    throw invalid_argument(
        fmt::format("--damping {} over --lissa-scale {} must be below 1 (LiSSA's δ)", f.damping, f.lissa_scale));
}

/// The library's inverse-HVP settings for `method` at effective damping δ (CG: δ; LiSSA: δ / s).
inline ihvp_options ihvp_of(const influence_flags& f, ihvp_method method, double damping, std::uint64_t seed) {
  ihvp_options o;
  o.method = method;
  o.cg = {.damping = damping, .tolerance = f.cg_tolerance, .max_iterations = f.cg_max_iterations};
  o.lissa = {.damping = damping / f.lissa_scale, .scale = f.lissa_scale, .depth = f.lissa_depth,
             .repeats = f.lissa_repeats, .batch_size = f.lissa_batch, .seed = seed, .residual_check = true};
  return o;
}

/// The flags' values in settings.json, under the names every program uses.
template <class Results>
void record_influence_flags(Results& out, const influence_flags& f, influence_flag_set set = {}) {
  if (set.choose_solver) out.set("ihvp", f.ihvp);
  out.set("damping", f.damping);
  if (set.damping_search) {
    out.set("damping_growth", f.damping_growth);
    out.set("damping_tries", f.damping_tries);
  }
  out.set("cg_tolerance", f.cg_tolerance);
  out.set("cg_max_iterations", f.cg_max_iterations);
  if (!set.lissa) return;
  out.set("lissa_scale", f.lissa_scale);
  out.set("lissa_depth", f.lissa_depth);
  out.set("lissa_repeats", f.lissa_repeats);
  out.set("lissa_batch", f.lissa_batch);
}

/// Prints one line per epoch (flushed: these runs are long).
struct epoch_printer {
  std::string what;
  void on_epoch_end(const epoch_report& r) {
    fmt::print("  {} epoch {:3d}: lr {:.6f}  train loss {:.4f}  val loss {:.4f}  val acc {:.2f}%  ({:.1f} s)\n", what,
               r.epoch + 1, r.learning_rate, r.training_loss, r.validation_loss, 100 * r.validation_accuracy,
               r.seconds);
    std::fflush(stdout);
  }
};

/// Trains w (initialised from `seed`) by the recipe along `order`, with the callbacks; returns
/// the history. The optimizer is the caller's, so that trackers built on it read its p and λ.
template <class Model, class Loss, class... Callbacks>
std::vector<epoch_report> train(Model& model, Loss& loss,
                                SGD<typename Model::scalar_type, typename Model::backend_type>& optimizer,
                                const recipe& r, vector_view<typename Model::scalar_type> w,
                                const dataset<typename Model::scalar_type>& train_set,
                                const dataset<typename Model::scalar_type>& validation, const batch_order& order,
                                const std::string& what, Callbacks&... callbacks) {
  plateau_schedule schedule(r.learning_rate, r.plateau_factor, r.plateau_patience);
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  epoch_printer printer{what};
  return fit.fit(w, train_set, order, &validation, printer, callbacks...);
}

inline sgd_options sgd_of(const recipe& r) {
  return {.momentum = r.momentum, .weight_decay = r.weight_decay};
}

// ---- resources ----------------------------------------------------------------------------------

/// Refuses a run whose estimate exceeds the memory that backend B has available now, before
/// allocating (B = cuda: the GPU's free memory).
template <class B = cpu>
void check_memory(double bytes, const std::string& what) {
  const auto available = static_cast<double>(B::memory_available());
  if (bytes > available)
    throw allocation_error(fmt::format("{} needs about {:.0f} bytes ({:.2f} GiB), more than the {:.2f} GiB available "
                                       "{}; run it scaled down{}",
                                       what, bytes, bytes / 1073741824.0, available / 1073741824.0,
                                       std::is_same_v<B, cpu> ? "on this machine" : "on the GPU",
                                       std::is_same_v<B, cpu> ? " (or with --device cuda, where the program takes it)" : ""));
}

// ---- the device ---------------------------------------------------------------------------------

/// Adds --device: cpu, or cuda (hydra::cuda) in a program built by nvcc from its <name>.cu, which
/// defines HYDRA_PAPER_WITH_CUDA and includes the .cpp (the build does this where CMake finds the
/// CUDA toolkit).
inline void add_device_option(CLI::App& app, std::string& device) {
  app.add_option("--device", device, "cpu or cuda (hydra::cuda: the GPU, in a build with the CUDA toolkit)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cpu", "cuda"}));
}

/// Calls body.template operator()<B>() with the backend --device names; refuses cuda, before any
/// data is read, in a build without it or on a machine without a usable GPU.
template <class Body>
int on_device(const std::string& device, Body&& body) {
  if (device == "cuda") {
#ifdef HYDRA_PAPER_WITH_CUDA
    if (cuda::devices().empty())
      throw invalid_argument("--device cuda: no CUDA device is usable (" + cuda::no_device_reason() + ")");
    return body.template operator()<cuda>();
#else
    throw invalid_argument("--device cuda: this program was built without the CUDA toolkit (configure hydra where "
                           "nvcc is, /usr/local/cuda/bin, to build it from its .cu)");
#endif
  }
  return body.template operator()<cpu>();
}

/// Where backend B computes, as printed and recorded: "CPU", "GPU", or, in a build that emulates
/// the CUDA backend on the host (the tests' only device), "GPU emulated on the host".
template <class B>
constexpr const char* compute_place() {
  if constexpr (std::is_same_v<B, cpu>) return "CPU";
#ifdef HYDRA_PAPER_WITH_CUDA
  else if constexpr (detail::cuda::host_emulation) return "GPU emulated on the host";
#endif
  else return "GPU";
}

/// A device matrix view's rows, copied to the host row-major (for measures computed on the host).
template <class B, Scalar T>
std::vector<T> rows_to_host(matrix_view<const T> m) {
  std::vector<T> out(static_cast<std::size_t>(m.rows * m.cols));
  for (index r = 0; r < m.rows; ++r) B::copy_to_host(m.row(r), m.cols, out.data() + r * m.cols);
  return out;
}

inline double peak_resident_gib() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);  // KiB on Linux
}

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// ---- the results folder -------------------------------------------------------------------------

/// A JSON value for settings.json: a number, a string, a bool, or a list of numbers.
using setting = std::variant<double, std::string, bool, std::vector<double>>;

/// The folder a program writes: it is created (and checked writable) before any work starts;
/// every file lands there; finish() writes settings.json last, so a folder with settings.json is
/// a complete run.
class results {
public:
  results(std::filesystem::path folder, std::string experiment)
      : folder_(std::move(folder)), experiment_(std::move(experiment)), start_(std::chrono::steady_clock::now()) {
    std::error_code ec;
    std::filesystem::create_directories(folder_, ec);
    if (ec) throw io_error("--out " + folder_.string() + ": cannot create the folder (" + ec.message() + ")");
    std::filesystem::remove(folder_ / "settings.json", ec);  // an unfinished run leaves none
    const auto probe = folder_ / ".write-test";
    std::ofstream(probe) << "x";
    if (!std::filesystem::exists(probe)) throw io_error("--out " + folder_.string() + ": the folder is not writable");
    std::filesystem::remove(probe, ec);
  }

  [[nodiscard]] const std::filesystem::path& folder() const noexcept { return folder_; }

  /// Records a setting (in the order given) for settings.json.
  template <class V>
  void set(const std::string& key, const V& value) {
    if constexpr (std::is_same_v<V, bool>)
      settings_.emplace_back(key, value);
    else if constexpr (std::is_arithmetic_v<V>)
      settings_.emplace_back(key, static_cast<double>(value));
    else if constexpr (std::is_convertible_v<V, std::string>)
      settings_.emplace_back(key, std::string(value));
    else
      settings_.emplace_back(key, std::vector<double>(std::begin(value), std::end(value)));
  }

  using cell = std::variant<double, std::string>;

  /// A CSV file: one header line, then the rows (each number in its shortest exact form).
  void csv(const std::string& name, const std::vector<std::string>& header,
           const std::vector<std::vector<double>>& rows) const {
    std::vector<std::vector<cell>> cells;
    for (const auto& row : rows) cells.emplace_back(row.begin(), row.end());
    table(name, header, cells);
  }

  /// A CSV file whose cells are numbers or text (text is written as it is: no commas in it).
  void table(const std::string& name, const std::vector<std::string>& header,
             const std::vector<std::vector<cell>>& rows) const {
    std::ofstream out(folder_ / name);
    for (std::size_t c = 0; c < header.size(); ++c) out << (c ? "," : "") << header[c];
    out << '\n';
    for (const auto& row : rows) {
      if (row.size() != header.size())
        throw shape_error(name + ": a row of " + std::to_string(row.size()) + " values for " +
                          std::to_string(header.size()) + " columns");
      for (std::size_t c = 0; c < row.size(); ++c) {
        out << (c ? "," : "");
        std::visit([&](const auto& v) { out << text(v); }, row[c]);
      }
      out << '\n';
    }
    if (!out) throw io_error("writing " + (folder_ / name).string() + " failed");
  }

  /// A .npy file (row-major, any npy_storable element type).
  template <class R>
  void npy(const std::string& name, const R& data, std::initializer_list<index> shape) const {
    save_npy(folder_ / name, data, shape);
  }

  /// Writes settings.json: the experiment, the settings, the data's provenance, the wall time since
  /// construction and the peak resident memory.
  void finish(const std::string& provenance) const {
    std::ofstream out(folder_ / "settings.json");
    out << "{\n  \"experiment\": " << quoted(experiment_) << ",\n  \"settings\": {";
    for (std::size_t k = 0; k < settings_.size(); ++k) {
      out << (k ? ",\n    " : "\n    ") << quoted(settings_[k].first) << ": ";
      std::visit([&](const auto& v) { write(out, v); }, settings_[k].second);
    }
    out << "\n  },\n  \"data\": " << quoted(provenance) << ",\n  \"wall_seconds\": "
        << fmt::format("{:.1f}", seconds_since(start_)) << ",\n  \"peak_resident_gib\": "
        << fmt::format("{:.3f}", peak_resident_gib()) << "\n}\n";
    if (!out) throw io_error("writing " + (folder_ / "settings.json").string() + " failed");
    fmt::print("results in {} ({:.1f} s)\n", folder_.string(), seconds_since(start_));
  }

private:
  static std::string quoted(const std::string& s) {
    std::string q = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') q += '\\';
      if (c == '\n') {
        q += "\\n";
        continue;
      }
      q += c;
    }
    return q + '"';
  }
  static std::string number(double v) { return std::isfinite(v) ? fmt::format("{}", v) : "null"; }
  static std::string text(double v) { return fmt::format("{}", v); }  // shortest exact form; nan, inf
  static std::string text(const std::string& v) { return v; }
  static void write(std::ostream& out, double v) { out << number(v); }
  static void write(std::ostream& out, const std::string& v) { out << quoted(v); }
  static void write(std::ostream& out, bool v) { out << (v ? "true" : "false"); }
  static void write(std::ostream& out, const std::vector<double>& v) {
    out << '[';
    for (std::size_t k = 0; k < v.size(); ++k) out << (k ? ", " : "") << number(v[k]);
    out << ']';
  }

  std::filesystem::path folder_;
  std::string experiment_;
  std::chrono::steady_clock::time_point start_;
  std::vector<std::pair<std::string, setting>> settings_;
};

// ---- main ---------------------------------------------------------------------------------------

/// Parses the app, then runs `body`; any error is one line "NAME: error: …" on stderr and exit
/// code 1 (a parse error: CLI11's message and its code).
inline int run_main(const char* name, CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", name, e.what());
    return 1;
  }
}

} // namespace hydra::paper
