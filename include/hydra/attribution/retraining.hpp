#pragma once
// The retraining harness for counterfactual evaluation (docs/attribution.md, "Retraining
// harness"): one model per subset of a subset_design (and per seed), all from the same initial
// parameters w0, and every test point's loss and margin at each model's final parameters. Two
// protocols:
//
// - trajectory_specific: the original run's batch order and per-step learning rates, with the
//   removed samples' loss weights set to zero while every batch still averages over its full size:
//   g_t = (1/|B_t|)·Σ_{b ∈ B_t, kept} ∇ℓ_b. This is exactly the perturbation ε_i = −1/N that
//   HYDRA's C(i, j) linearises (ground_truth.hpp's leave_one_out averages over |B_t| − 1 instead).
// - fresh_order: the linear datamodeling protocol: each model trains on its kept samples only, in
//   a new shuffled order drawn from (seed, subset), with the run's epochs, batch size, learning
//   rates, momentum and weight decay; several seeds are averaged.
//
// Every finished model is written to a directory at once, atomically, so that an interrupted run
// resumes where it stopped; a manifest ties the directory to one design. Models train in parallel,
// each thread on its own model and loss made by the caller's factories (models hold workspaces).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <limits>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "hydra/attribution/subsets.hpp"
#include "hydra/backend/cpu.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/io/archive_reader.hpp"
#include "hydra/core/io/archive_writer.hpp"
#include "hydra/core/io/checksum.hpp"
#include "hydra/core/random.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/data/batch_order.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/nn/concepts.hpp"
#include "hydra/nn/training_mode.hpp"
#include "hydra/optim/sgd.hpp"
#include "hydra/train/batch.hpp"
#include "hydra/train/checkpoint.hpp"
#include "hydra/train/progress.hpp"

namespace hydra {

enum class retraining_protocol { trajectory_specific, fresh_order };

[[nodiscard]] inline const char* protocol_name(retraining_protocol p) noexcept {
  return p == retraining_protocol::trajectory_specific ? "trajectory_specific" : "fresh_order";
}

/// How every model of a retraining_subsets run is trained, and where its results go.
struct retraining_options {
  retraining_protocol protocol = retraining_protocol::trajectory_specific;
  /// trajectory_specific: the original run's batch order over the whole training set (required).
  const batch_order* order = nullptr;
  /// fresh_order: passes over the kept samples, batch size, and whether an epoch's last partial
  /// batch is dropped (as batch_order::shuffled).
  index epochs = 0;
  index batch_size = 0;
  bool drop_last = true;
  /// trajectory_specific: one rate per step of `order` (the rates actually applied).
  /// fresh_order: one rate per epoch, or a single rate for all.
  std::span<const double> learning_rates;
  sgd_options optimizer{};
  /// fresh_order: one model per subset and seed, averaged over the seeds. trajectory_specific has
  /// no randomness: exactly one seed (its value is only recorded).
  std::vector<std::uint64_t> seeds{0};
  /// Empty: nothing is written and nothing resumes. Otherwise created if missing; see the docs for
  /// its files.
  std::filesystem::path directory;
  /// Models trained at once, each on its own model copy; 0: std::thread::hardware_concurrency().
  /// Capped by the models left to train; always 1 on a backend whose memory the host cannot read.
  index threads = 0;
  /// Train at most this many models in this call (the first ones missing, subset-major), then
  /// return with the rest missing: for time-boxed runs and for testing resumption.
  std::optional<index> max_models;
  /// Test points per forward pass at evaluation.
  index chunk = 256;
  progress_mode progress = progress_mode::automatic;
};

/// A model whose parameters or batch loss stopped being finite: at step `step` (0-based), or at
/// step == the run's step count when only its final test losses or margins were not finite.
struct diverged_model {
  index subset = 0;
  std::uint64_t seed = 0;
  index step = 0;
};

struct retraining_result {
  /// m × J: ℓ_j at the final parameters of subset s's models, averaged over the seeds. A row is
  /// NaN when any of its models diverged or has not been trained yet (max_models).
  matrix<double, cpu> losses;
  /// m × J: z_y − log Σ_{k≠y} exp(z_k) of test point j (logits z, label y), averaged the same way;
  /// 0 × 0 when the model has a single output.
  matrix<double, cpu> margins;
  /// Every diverged model, by subset then seed.
  std::vector<diverged_model> diverged;
  index models_trained = 0;  // in this call
  index models_loaded = 0;   // finished by an earlier call, read from the directory
  index models_missing = 0;  // left for a later call by max_models
  double seconds = 0;        // wall time of this call

  [[nodiscard]] index diverged_count() const noexcept { return static_cast<index>(diverged.size()); }
  [[nodiscard]] bool complete() const noexcept { return models_missing == 0; }
};

/// The seed of fresh_order's batch order for subset `subset` under `seed`. Mixed with a constant of
/// its own so that reusing random_subsets' seed does not correlate the two streams.
[[nodiscard]] inline std::uint64_t fresh_order_seed(std::uint64_t seed, index subset) noexcept {
  splitmix64 outer(seed ^ 0x6261746368657321ULL);
  splitmix64 inner(outer() + static_cast<std::uint64_t>(subset));
  return inner();
}

/// The result file of subset s and seed number k (the position in options.seeds) in a directory.
[[nodiscard]] inline std::filesystem::path retraining_result_path(const std::filesystem::path& directory, index s,
                                                                  std::size_t k) {
  return directory / ("subset-" + std::to_string(s) + "-seed-" + std::to_string(k) + ".hydra");
}

/// The manifest of a retraining directory.
[[nodiscard]] inline std::filesystem::path retraining_manifest_path(const std::filesystem::path& directory) {
  return directory / "manifest.hydra";
}

namespace detail::retraining {

inline constexpr const char* where = "retrain_subsets";
inline constexpr const char* manifest_format = "hydra.retraining.manifest";
inline constexpr const char* result_format = "hydra.retraining.result";
inline constexpr std::uint32_t format_version = 1;

template <class V>
[[nodiscard]] std::string shortest(V value) {
  char text[64];
  const auto r = std::to_chars(text, text + sizeof text, value);
  return std::string(text, r.ptr);
}

[[nodiscard]] inline std::string hex(std::uint64_t v) {
  char text[24];
  const auto r = std::to_chars(text, text + sizeof text, v, 16);
  return "0x" + std::string(text, r.ptr);
}

template <class V>
void hash_span(archive::checksum64& h, std::span<const V> values) {
  const auto n = static_cast<std::uint64_t>(values.size());
  h.update(&n, sizeof n);
  if (!values.empty()) h.update(values.data(), values.size_bytes());
}

template <Scalar T>
[[nodiscard]] std::uint64_t hash_of(const dataset<T>& data) {
  archive::checksum64 h;
  hash_span(h, data.features());
  hash_span(h, data.labels());
  hash_span(h, data.targets());
  return h.digest();
}

/// The fields that decide every number a directory holds, as (name, text) pairs in manifest
/// order: a rerun compares them one by one and names the first that differs.
using fingerprint_fields = std::vector<std::pair<std::string, std::string>>;

[[nodiscard]] inline std::uint64_t digest(const fingerprint_fields& fields) {
  archive::checksum64 h;
  for (const auto& [name, value] : fields) {
    h.update(name.data(), name.size());
    h.update("=", 1);
    h.update(value.data(), value.size());
    h.update("\n", 1);
  }
  return h.digest();
}

[[nodiscard]] inline std::string rates_text(std::span<const double> rates) {
  if (rates.size() <= 4) {
    std::string text;
    for (std::size_t k = 0; k < rates.size(); ++k) text += (k ? "," : "") + shortest(rates[k]);
    return text;
  }
  archive::checksum64 h;
  hash_span(h, rates);
  return std::to_string(rates.size()) + " rates from " + shortest(rates.front()) + ", hash " + hex(h.digest());
}

/// Writes the manifest, or checks the one already there; invalid_argument names the first field
/// that differs.
inline void claim_directory(const std::filesystem::path& directory, const fingerprint_fields& fields) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec)
    throw io_error(std::string(where) + ": cannot create the directory " + archive::quoted(directory) + ": " +
                   ec.message());
  const auto file = retraining_manifest_path(directory);
  if (!std::filesystem::exists(file)) {
    archive_writer out(file);
    out.write_string("format", manifest_format);
    out.write_value<std::uint32_t>("version", format_version);
    out.write_value<std::uint64_t>("fields", fields.size());
    for (const auto& [name, value] : fields) out.write_string(name, value);
    out.commit();
    return;
  }
  archive_reader in(file);
  const auto format = in.read_string("format", 64);
  if (format != manifest_format)
    throw format_error(std::string(where) + ": " + archive::quoted(file) + " is not a retraining manifest (format '" +
                       format + "')");
  const auto version = in.read_value<std::uint32_t>("version");
  if (version != format_version)
    throw format_error(std::string(where) + ": " + archive::quoted(file) + " has version " + std::to_string(version) +
                       "; this build reads version " + std::to_string(format_version));
  const auto count = in.read_value<std::uint64_t>("fields");
  if (count != fields.size())
    throw format_error(std::string(where) + ": " + archive::quoted(file) + " has " + std::to_string(count) +
                       " fields, this build writes " + std::to_string(fields.size()));
  for (const auto& [name, value] : fields) {
    const auto stored = in.read_string(name);
    if (stored != value)
      throw invalid_argument(std::string(where) + ": the directory " + archive::quoted(directory) +
                             " holds another design: its manifest's " + name + " is " + stored + ", this run's is " +
                             value);
  }
  in.finish();
}

/// One model's outcome: J losses and margins (NaN when diverged), and the step it diverged at
/// (−1: it did not).
struct model_result {
  bool done = false;
  index diverged_step = -1;
  std::vector<double> losses;
  std::vector<double> margins;
};

inline void save_result(const std::filesystem::path& file, std::uint64_t manifest, index s, std::uint64_t seed,
                        const model_result& r) {
  archive_writer out(file);
  out.write_string("format", result_format);
  out.write_value<std::uint32_t>("version", format_version);
  out.write_value<std::uint64_t>("manifest", manifest);
  out.write_value<std::int64_t>("subset", s);
  out.write_value<std::uint64_t>("seed", seed);
  out.write_value<std::int64_t>("diverged_step", r.diverged_step);
  out.write<double>("losses", r.losses);
  out.write<double>("margins", r.margins);
  out.commit();
}

/// Reads what save_result wrote and checks that it is this design's (subset s, seed) with J and
/// `margins` values; format_error naming the file otherwise.
inline model_result load_result(const std::filesystem::path& file, std::uint64_t manifest, index s,
                                std::uint64_t seed, index J, index margins) {
  archive_reader in(file);
  const auto bad = [&](const std::string& what) {
    return format_error(std::string(where) + ": the result file " + archive::quoted(file) + " " + what);
  };
  const auto format = in.read_string("format", 64);
  if (format != result_format) throw bad("is not a retraining result (format '" + format + "')");
  const auto version = in.read_value<std::uint32_t>("version");
  if (version != format_version)
    throw bad("has version " + std::to_string(version) + "; this build reads version " + std::to_string(format_version));
  if (in.read_value<std::uint64_t>("manifest") != manifest) throw bad("belongs to another manifest");
  const auto stored_s = in.read_value<std::int64_t>("subset");
  const auto stored_seed = in.read_value<std::uint64_t>("seed");
  if (stored_s != s || stored_seed != seed)
    throw bad("holds subset " + std::to_string(stored_s) + " seed " + std::to_string(stored_seed) + ", not subset " +
              std::to_string(s) + " seed " + std::to_string(seed));
  model_result r;
  r.done = true;
  r.diverged_step = static_cast<index>(in.read_value<std::int64_t>("diverged_step"));
  r.losses.resize(static_cast<std::size_t>(J));
  r.margins.resize(static_cast<std::size_t>(margins));
  in.read<double>("losses", r.losses);
  in.read<double>("margins", r.margins);
  in.finish();
  return r;
}

[[nodiscard]] inline std::string duration_text(double seconds) {
  const auto s = static_cast<long long>(std::llround(std::max(seconds, 0.0)));
  if (s >= 3600) return std::to_string(s / 3600) + "h" + (s % 3600 / 60 < 10 ? "0" : "") + std::to_string(s % 3600 / 60) + "m";
  if (s >= 60) return std::to_string(s / 60) + "m" + (s % 60 < 10 ? "0" : "") + std::to_string(s % 60) + "s";
  return std::to_string(s) + "s";
}

/// z_y − log Σ_{k≠y} exp(z_k), shifted by the largest z_k (k ≠ y) so that it stays finite.
template <class T>
[[nodiscard]] double margin(const T* z, index classes, label_type y) {
  double top = -std::numeric_limits<double>::infinity();
  for (index k = 0; k < classes; ++k)
    if (k != y) top = std::max(top, static_cast<double>(z[k]));
  double sum = 0;
  for (index k = 0; k < classes; ++k)
    if (k != y) sum += std::exp(static_cast<double>(z[k]) - top);
  return static_cast<double>(z[y]) - (top + std::log(sum));
}

/// One thread's model, loss and buffers: models keep workspaces, so nothing here is shared.
template <class M, class L>
struct worker {
  using T = typename M::scalar_type;
  using B = typename M::backend_type;

  worker(M m, L l, sgd_options o) : model(std::move(m)), loss(std::move(l)), optimizer(model.parameter_count(), o) {
    w = vector<T, B>(model.parameter_count());
    g = vector<T, B>(model.parameter_count());
  }

  M model;
  L loss;
  SGD<T, B> optimizer;
  vector<T, B> w, g;
  device_batch<T, B> batch;
  matrix<T, B> outputs;
  vector<T, B> values;
  std::vector<T> host_outputs, host_values;
  std::vector<index> kept, mapped;
  std::vector<char> removed;
};

/// The settings retrain_subsets validated, shared read-only by the workers.
template <Scalar T>
struct plan {
  retraining_protocol protocol;
  const dataset<T>* train;
  const dataset<T>* test;
  const subset_design* design;
  const batch_order* order;
  index epochs, batch_size;
  bool drop_last;
  std::span<const double> rates;
  index chunk;
  index outputs;  // the model's output size
  bool margins;   // outputs >= 2
};

/// Trains subset s's model for `seed` from w0 and evaluates it on the test set.
template <class M, class L, Scalar T, class B>
model_result train_one(worker<M, L>& k, const plan<T>& p, vector_view<const T> w0, index s, std::uint64_t seed) {
  const auto& removed = p.design->removed[static_cast<std::size_t>(s)];
  const index N = p.train->size();
  const index J = p.test->size();
  model_result r;
  r.done = true;
  k.removed.assign(static_cast<std::size_t>(N), 0);
  for (index i : removed) k.removed[static_cast<std::size_t>(i)] = 1;
  B::copy(w0, k.w.view());
  k.optimizer.reset();

  // One SGD step on `indices` (samples of the training set), scaled by `scale` (1: the plain mean).
  // Returns false when the batch loss or the parameters are not finite.
  const auto step = [&](std::span<const index> indices, double scale, double learning_rate) {
    if (indices.empty()) {
      B::fill(T(0), k.g.view());  // nothing kept: momentum and weight decay alone move w
    } else {
      k.batch.load(*p.train, indices);
      const T batch_loss = k.model.gradient(std::as_const(k.w).view(), k.batch.features(), k.batch.targets(), k.loss,
                                            k.g.view());
      if (!std::isfinite(static_cast<double>(batch_loss))) return false;
      if (scale != 1) B::scal(static_cast<T>(scale), k.g.view());
    }
    k.optimizer.step(k.w.view(), std::as_const(k.g).view(), static_cast<T>(learning_rate));
    return B::all_finite(std::as_const(k.w).view());
  };

  index steps = 0;
  if (p.protocol == retraining_protocol::trajectory_specific) {
    steps = p.order->steps();
    for (index t = 0; t < steps; ++t) {
      const auto indices = p.order->batch(t);
      k.kept.clear();
      for (index i : indices)
        if (!k.removed[static_cast<std::size_t>(i)]) k.kept.push_back(i);
      const bool whole = k.kept.size() == indices.size();
      // Zero weights, full-batch average: the kept mean times |kept|/|B_t|.
      const double scale = whole ? 1.0 : static_cast<double>(k.kept.size()) / static_cast<double>(indices.size());
      if (!step(whole ? indices : std::span<const index>(k.kept), scale, p.rates[static_cast<std::size_t>(t)])) {
        r.diverged_step = t;
        break;
      }
    }
  } else {
    k.kept.clear();  // ascending, so that the order maps positions of subset(train, kept)
    for (index i = 0; i < N; ++i)
      if (!k.removed[static_cast<std::size_t>(i)]) k.kept.push_back(i);
    const auto local = batch_order::shuffled(static_cast<index>(k.kept.size()), p.batch_size, p.epochs,
                                             fresh_order_seed(seed, s), p.drop_last);
    steps = local.steps();
    for (index t = 0; t < steps; ++t) {
      const auto positions = local.batch(t);
      k.mapped.resize(positions.size());
      for (std::size_t b = 0; b < positions.size(); ++b) k.mapped[b] = k.kept[static_cast<std::size_t>(positions[b])];
      const double rate = p.rates.size() == 1 ? p.rates[0] : p.rates[static_cast<std::size_t>(local.epoch_of(t))];
      if (!step(k.mapped, 1.0, rate)) {
        r.diverged_step = t;
        break;
      }
    }
  }

  const double nan = std::numeric_limits<double>::quiet_NaN();
  r.losses.assign(static_cast<std::size_t>(J), nan);
  r.margins.assign(p.margins ? static_cast<std::size_t>(J) : 0, nan);
  if (r.diverged_step >= 0) return r;
  const index C = p.outputs;
  bool finite = true;
  for_each_chunk(*p.test, p.chunk, k.batch, [&](index first, index count) {
    k.outputs.resize(count, C);
    k.values.resize(count);
    k.model.forward(std::as_const(k.w).view(), k.batch.features(), k.outputs.view());
    k.loss.values(std::as_const(k.outputs).view(), k.batch.targets(), k.values.view());
    k.host_values.resize(static_cast<std::size_t>(count));
    B::copy_to_host(k.values.data(), count, k.host_values.data());
    if (p.margins) {
      k.host_outputs.resize(static_cast<std::size_t>(count * C));
      B::copy_to_host(k.outputs.data(), count * C, k.host_outputs.data());
    }
    for (index b = 0; b < count; ++b) {
      const auto j = static_cast<std::size_t>(first + b);
      r.losses[j] = static_cast<double>(k.host_values[static_cast<std::size_t>(b)]);
      finite = finite && std::isfinite(r.losses[j]);
      if (p.margins) {
        r.margins[j] = margin(k.host_outputs.data() + b * C, C, p.test->label(first + b));
        finite = finite && std::isfinite(r.margins[j]);
      }
    }
  });
  if (!finite) {
    r.diverged_step = steps;
    std::fill(r.losses.begin(), r.losses.end(), nan);
    std::fill(r.margins.begin(), r.margins.end(), nan);
  }
  return r;
}

} // namespace detail::retraining

/// Trains one model per subset of `design` (and per seed of options.seeds for fresh_order) from
/// w0 and returns every test point's loss and margin at the final parameters, averaged over the
/// seeds. `make_model()` and `make_loss()` are called once per thread, on the calling thread, and
/// must return identical models and losses (models hold workspaces and are not shared).
///
/// Everything is checked before the first model trains: invalid_argument for a design that removes
/// a whole class or lists samples out of order (check_subsets), rates that do not fit the order or
/// the epochs, a missing order, an empty test set or no seeds, a subset keeping fewer samples than
/// a fresh_order batch, a directory holding another design (naming the first field that differs);
/// shape_error when the design, order, w0 or the data sets' sample sizes do not fit the training
/// set and the model. A model that diverges is no error: see retraining_result::diverged.
template <class MakeModel, class MakeLoss, Scalar T>
[[nodiscard]] retraining_result retrain_subsets(MakeModel&& make_model, MakeLoss&& make_loss, const dataset<T>& train,
                                                const dataset<T>& test, const subset_design& design,
                                                vector_view<const T> w0, const retraining_options& options) {
  using M = std::remove_cvref_t<std::invoke_result_t<MakeModel&>>;
  using L = std::remove_cvref_t<std::invoke_result_t<MakeLoss&>>;
  using B = typename M::backend_type;
  static_assert(std::same_as<typename M::scalar_type, T>,
                "hydra::retrain_subsets: the model's scalar type must be the data sets' scalar type");
  static_assert(ModelFor<M, L>, "hydra::retrain_subsets: make_model() must return a Model and make_loss() a Loss on "
                                "the same scalar type and backend; see docs/nn.md");
  namespace rt = detail::retraining;
  const std::string where = rt::where;
  const auto start = std::chrono::steady_clock::now();
  using rt::shortest;

  // ---- validation, before anything trains ----
  const index N = train.size();
  const index J = test.size();
  const index m = design.subsets();
  const bool trajectory = options.protocol == retraining_protocol::trajectory_specific;
  if (design.training_set_size != N)
    throw shape_error(where + ": the design is over " + std::to_string(design.training_set_size) +
                      " samples, the training set has " + std::to_string(N));
  if (m < 1) throw invalid_argument(where + ": the design has no subsets");
  check_subsets(design, train.labels());
  if (J < 1) throw invalid_argument(where + ": the test set is empty");
  if (options.seeds.empty()) throw invalid_argument(where + ": options.seeds is empty; give at least one seed");
  if (trajectory && options.seeds.size() != 1)
    throw invalid_argument(where + ": trajectory_specific replays one fixed run per subset; give one seed, not " +
                           std::to_string(options.seeds.size()));
  for (std::size_t a = 0; a < options.seeds.size(); ++a)
    for (std::size_t b = 0; b < a; ++b)
      if (options.seeds[a] == options.seeds[b])
        throw invalid_argument(where + ": options.seeds lists seed " + std::to_string(options.seeds[a]) + " twice");
  if (options.chunk <= 0) throw invalid_argument(where + ": options.chunk must be > 0, got " + std::to_string(options.chunk));
  if (options.threads < 0)
    throw invalid_argument(where + ": options.threads must be >= 0, got " + std::to_string(options.threads));
  if (options.max_models && *options.max_models < 0)
    throw invalid_argument(where + ": options.max_models must be >= 0, got " + std::to_string(*options.max_models));
  for (std::size_t t = 0; t < options.learning_rates.size(); ++t)
    if (!(options.learning_rates[t] > 0) || !std::isfinite(options.learning_rates[t]))
      throw invalid_argument(where + ": learning_rates[" + std::to_string(t) + "] = " +
                             shortest(options.learning_rates[t]) + " must be finite and > 0");
  index epochs = options.epochs, batch_size = options.batch_size;
  if (trajectory) {
    if (options.order == nullptr) throw invalid_argument(where + ": trajectory_specific needs options.order");
    const auto& order = *options.order;
    if (order.num_samples() != N)
      throw shape_error(where + ": options.order is over " + std::to_string(order.num_samples()) +
                        " samples, the training set has " + std::to_string(N));
    if (static_cast<index>(options.learning_rates.size()) != order.steps())
      throw invalid_argument(where + ": " + std::to_string(options.learning_rates.size()) + " learning rates for " +
                             std::to_string(order.steps()) + " steps of options.order");
    epochs = order.steps() / order.steps_per_epoch();
    batch_size = order.batch_size();
  } else {
    if (epochs < 1) throw invalid_argument(where + ": fresh_order needs options.epochs >= 1, got " + std::to_string(epochs));
    const auto rates = static_cast<index>(options.learning_rates.size());
    if (rates != 1 && rates != epochs)
      throw invalid_argument(where + ": fresh_order needs one learning rate or one per epoch (" + std::to_string(epochs) +
                             "), got " + std::to_string(rates));
    if (batch_size < 1) throw invalid_argument(where + ": options.batch_size must be >= 1, got " + std::to_string(batch_size));
    for (index s = 0; s < m; ++s) {
      const index kept = N - static_cast<index>(design.removed[static_cast<std::size_t>(s)].size());
      if (kept < batch_size)
        throw invalid_argument(where + ": subset " + std::to_string(s) + " keeps " + std::to_string(kept) +
                               " samples, fewer than options.batch_size " + std::to_string(batch_size));
    }
  }

  std::vector<rt::worker<M, L>> workers;
  workers.emplace_back(make_model(), make_loss(), options.optimizer);  // also checks the optimizer settings
  if (batch_norm_count(workers.front().model) > 0 || dropout_count(workers.front().model) > 0)
    throw invalid_argument("hydra::retrain_subsets: the model has batch norms or dropout, whose training steps the "
                           "harness does not run in train mode; it retrains models without them only");
  const index P = workers.front().model.parameter_count();
  const index inputs = workers.front().model.input_size();
  const index C = workers.front().model.output_size();
  if (w0.size != P)
    throw shape_error(where + ": w0 has " + std::to_string(w0.size) + " values, the model " + std::to_string(P) +
                      " parameters");
  if (train.sample_size() != inputs || test.sample_size() != inputs)
    throw shape_error(where + ": samples of " + std::to_string(train.sample_size()) + " (training) and " +
                      std::to_string(test.sample_size()) + " (test) features for a model of " +
                      std::to_string(inputs) + " inputs");
  const bool margins = C >= 2;
  if (margins)
    for (index j = 0; j < J; ++j)
      if (test.label(j) >= C)
        throw invalid_argument(where + ": test label[" + std::to_string(j) + "] = " + std::to_string(test.label(j)) +
                               " is not one of the model's " + std::to_string(C) + " outputs");

  // ---- the directory: manifest, then the results already there ----
  const std::size_t K = options.seeds.size();
  std::vector<rt::model_result> results(static_cast<std::size_t>(m) * K);
  const auto slot = [&](index s, std::size_t k) -> rt::model_result& { return results[static_cast<std::size_t>(s) * K + k]; };
  std::uint64_t manifest = 0;
  const bool stored = !options.directory.empty();
  if (stored) {
    detail::archive::checksum64 removed_hash;
    for (const auto& r : design.removed) rt::hash_span(removed_hash, std::span<const index>(r));
    std::vector<T> w0_host(static_cast<std::size_t>(P));
    B::copy_to_host(w0.data, P, w0_host.data());
    detail::archive::checksum64 w0_hash;
    rt::hash_span(w0_hash, std::span<const T>(w0_host));
    std::string seeds;
    for (std::size_t k = 0; k < K; ++k) seeds += (k ? "," : "") + std::to_string(options.seeds[k]);
    const rt::fingerprint_fields fields = {
        {"training_set_size", std::to_string(N)},
        {"subsets", std::to_string(m)},
        {"removed", rt::hex(removed_hash.digest())},
        {"protocol", protocol_name(options.protocol)},
        {"seeds", seeds},
        {"epochs", std::to_string(epochs)},
        {"batch_size", std::to_string(batch_size)},
        {"batch_order", trajectory ? rt::hex(fingerprint(*options.order))
                                   : std::string(options.drop_last ? "shuffled, drop_last" : "shuffled, keep last")},
        {"learning_rates", rt::rates_text(options.learning_rates)},
        {"momentum", shortest(options.optimizer.momentum)},
        {"weight_decay", shortest(options.optimizer.weight_decay)},
        {"scalar_type", detail::checkpoint::scalar_name<T>()},
        {"parameter_count", std::to_string(P)},
        {"w0", rt::hex(w0_hash.digest())},
        {"training_data", rt::hex(rt::hash_of(train))},
        {"test_set_size", std::to_string(J)},
        {"test_data", rt::hex(rt::hash_of(test))},
    };
    rt::claim_directory(options.directory, fields);
    manifest = rt::digest(fields);
  }

  retraining_result out;
  std::vector<std::pair<index, std::size_t>> work;
  for (index s = 0; s < m; ++s)
    for (std::size_t k = 0; k < K; ++k) {
      const auto file = stored ? retraining_result_path(options.directory, s, k) : std::filesystem::path();
      if (stored && std::filesystem::exists(file)) {
        slot(s, k) = rt::load_result(file, manifest, s, options.seeds[k], J, margins ? J : 0);
        ++out.models_loaded;
      } else {
        work.emplace_back(s, k);
      }
    }
  if (options.max_models && static_cast<std::size_t>(*options.max_models) < work.size()) {
    out.models_missing = static_cast<index>(work.size()) - *options.max_models;
    work.resize(static_cast<std::size_t>(*options.max_models));
  }

  // ---- training, `threads` models at a time ----
  index threads = options.threads > 0 ? options.threads : static_cast<index>(std::thread::hardware_concurrency());
  // hydra::cpu runs each BLAS call on the calling thread (Eigen without OpenMP), so T threads use
  // T cores and nothing oversubscribes. A device backend's models run one after another.
  if constexpr (!B::host_accessible) threads = 1;
  threads = std::clamp<index>(threads, 1, std::max<index>(1, static_cast<index>(work.size())));
  while (static_cast<index>(workers.size()) < threads) workers.emplace_back(make_model(), make_loss(), options.optimizer);

  const rt::plan<T> p{options.protocol, &train, &test, &design, options.order, epochs, batch_size, options.drop_last,
                      options.learning_rates, options.chunk, C, margins};
  progress_line progress(options.progress);
  const auto training_start = std::chrono::steady_clock::now();
  std::mutex lock;  // guards progress, `failure` and the counters below
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::exception_ptr failure;
  index finished = 0, diverged_now = 0;
  const auto total = static_cast<index>(work.size());
  const auto run = [&](rt::worker<M, L>& k) {
    try {
      for (std::size_t n; !stop && (n = next++) < work.size();) {
        const auto [s, seed_k] = work[n];
        auto r = rt::train_one<M, L, T, B>(k, p, w0, s, options.seeds[seed_k]);
        if (stored) rt::save_result(retraining_result_path(options.directory, s, seed_k), manifest, s,
                                    options.seeds[seed_k], r);
        const bool bad = r.diverged_step >= 0;
        slot(s, seed_k) = std::move(r);
        const std::lock_guard guard(lock);
        ++finished;
        if (bad) ++diverged_now;
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - training_start).count();
        const double eta = elapsed / static_cast<double>(finished) * static_cast<double>(total - finished);
        progress.update(finished, total,
                        "models (" + std::to_string(out.models_loaded) + " loaded, " + std::to_string(diverged_now) +
                            " diverged), " + rt::duration_text(elapsed) + ", ETA " + rt::duration_text(eta));
      }
    } catch (...) {
      const std::lock_guard guard(lock);
      if (!failure) failure = std::current_exception();
      stop = true;
    }
  };
  if (threads == 1) {
    run(workers.front());
  } else {
    std::vector<std::jthread> pool;
    for (index t = 0; t < threads; ++t) pool.emplace_back([&, t] { run(workers[static_cast<std::size_t>(t)]); });
  }
  progress.clear();
  if (failure) std::rethrow_exception(failure);
  out.models_trained = finished;

  // ---- averages over the seeds, in seed order, so that a resumed run gives the same bits ----
  const double nan = std::numeric_limits<double>::quiet_NaN();
  out.losses = matrix<double, cpu>(m, J);
  out.margins = margins ? matrix<double, cpu>(m, J) : matrix<double, cpu>();
  for (index s = 0; s < m; ++s) {
    bool usable = true;
    for (std::size_t k = 0; k < K; ++k) {
      const auto& r = slot(s, k);
      if (r.done && r.diverged_step >= 0) out.diverged.push_back({s, options.seeds[k], r.diverged_step});
      usable = usable && r.done && r.diverged_step < 0;
    }
    const auto average = [&](matrix<double, cpu>& into, std::vector<double> rt::model_result::*values) {
      for (index j = 0; j < J; ++j) {
        double sum = 0;
        if (usable)
          for (std::size_t k = 0; k < K; ++k) sum += (slot(s, k).*values)[static_cast<std::size_t>(j)];
        into(s, j) = usable ? sum / static_cast<double>(K) : nan;
      }
    };
    average(out.losses, &rt::model_result::losses);
    if (margins) average(out.margins, &rt::model_result::margins);
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

} // namespace hydra
