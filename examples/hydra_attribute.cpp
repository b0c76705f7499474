// hydra-attribute: the whole HYDRA pipeline on NumPy files. Trains a model with SGD while
// tracking the hypergradients dw_T/dε_i of the chosen training samples, then writes
//   weights.npy         final parameters (|w|), PyTorch parameters_to_vector layout
//   hypergradients.npy  n_tracked × |w|, row k = dw_T/dε for the k-th tracked index
//   contributions.npy   n_tracked × M, entry (k, j) = C(track[k], j) = −(1/N)·∇ℓ(test_j, w_T)·dw_T/dε
//   tracked.npy         the tracked indices (int64)
// Positive contributions help: removing the sample would raise that test loss. See docs/attribution.md.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <hydra/attribution/contributions.hpp>
#include <hydra/attribution/ranking.hpp>
#include <hydra/hydra.hpp>
#include <hydra/hypergradient/approximation_error.hpp>
#include <hydra/hypergradient/tracker.hpp>
#include <hydra/nn/lenet.hpp>
#include <hydra/nn/model_spec.hpp>

namespace hydra::cli {

struct options {
  std::string train_x, train_y, test_x, test_y, model, init, order, lr_file, track = "all", method = "hessian-free",
      precision = "float32", out;
  hydra::index epochs = 1, batch_size = 64;
  std::uint64_t seed = 0;
  double lr = 0.01, momentum = 0.9, weight_decay = 0;
};

[[noreturn]] inline void fail(const std::string& message) { throw hydra::invalid_argument(message); }

template <class T>
void save_matrix(const std::filesystem::path& path, hydra::matrix_view<const T> m) {
  hydra::save_npy(path, std::span<const T>(m.data, static_cast<std::size_t>(m.rows * m.cols)), {m.rows, m.cols});
}

/// What the data must look like for the chosen model: its input sample shape and class count.
struct model_input {
  std::vector<index> sample_shape;  // e.g. {D} or {1, 28, 28}
  index classes;
};

template <class T, class Policy, class Model>
int run(const options& opt, Model& model, const model_input& input);

/// Builds the model named by --model and runs the pipeline on it.
template <class T, class Policy>
int run(const options& opt) {
  const auto spec = parse_model_spec(opt.model);
  if (spec.kind == model_spec::family::lenet5) {
    LeNet5<T> model;
    return run<T, Policy>(opt, model, {{1, 28, 28}, 10});
  }
  Mlp<T> model(spec.inputs, spec.hidden, spec.outputs, spec.hidden_activation);
  return run<T, Policy>(opt, model, {{spec.inputs}, spec.outputs});
}

/// The data's sample shape must be the model's (a flat D also accepts any shape with D values).
template <class T>
void check_input(const dataset<T>& data, const model_input& input, const std::string& flag, const std::string& model) {
  const auto shape = data.sample_shape();
  const bool flat = input.sample_shape.size() == 1;
  const bool same = flat ? data.sample_size() == input.sample_shape[0]
                         : std::equal(shape.begin(), shape.end(), input.sample_shape.begin(), input.sample_shape.end());
  if (same) return;
  auto text = [](auto dims) {
    std::string t;
    for (auto d : dims) t += (t.empty() ? "" : " x ") + std::to_string(d);
    return t;
  };
  if (flat)
    fail(flag + " has " + std::to_string(data.sample_size()) + " features per sample but --model " + model + " takes " +
         std::to_string(input.sample_shape[0]));
  fail(flag + " has samples of shape " + text(shape) + " but --model " + model + " takes N x " +
       text(input.sample_shape) + " inputs");
}

template <class T, class Policy, class Model>
int run(const options& opt, Model& model, const model_input& input) {
  const auto start = std::chrono::steady_clock::now();
  const auto train = load_npy_dataset<T>(opt.train_x, opt.train_y, input.classes);
  const auto test = load_npy_dataset<T>(opt.test_x, opt.test_y, input.classes);
  check_input(train, input, "--train-x", opt.model);
  check_input(test, input, "--test-x", opt.model);
  const index N = train.size();

  SoftmaxCrossEntropy<T> loss;
  const index P = model.parameter_count();
  vector<T, cpu> w(P);
  if (!opt.init.empty()) {
    const auto init = load_npy_features<T>(opt.init);
    if (static_cast<index>(init.data.size()) != P)
      fail("--init " + opt.init + " has " + std::to_string(init.data.size()) + " values, the model has " +
           std::to_string(P) + " parameters");
    cpu::copy_from_host(init.data.data(), P, w.data());
  } else {
    model.initialize(w.view(), opt.seed);
  }

  batch_order order = [&] {
    if (opt.order.empty()) return batch_order::shuffled(N, opt.batch_size, opt.epochs, opt.seed);
    auto table = load_npy_indices(opt.order);
    if (table.shape.size() != 2) fail("--order " + opt.order + " must be a 2-d T × B table of int64 indices");
    return batch_order::from_table(std::move(table.data), table.shape[0], table.shape[1], N);
  }();

  std::vector<double> rates;
  if (!opt.lr_file.empty()) {
    rates = load_npy_features<double>(opt.lr_file).data;
    if (static_cast<index>(rates.size()) != order.steps())
      fail("--lr-file " + opt.lr_file + " has " + std::to_string(rates.size()) + " rates for " +
           std::to_string(order.steps()) + " steps");
  } else {
    rates.assign(static_cast<std::size_t>(order.steps()), opt.lr);
  }
  list_schedule schedule(rates);

  std::vector<index> tracked;
  if (opt.track == "all") {
    tracked.resize(static_cast<std::size_t>(N));
    for (index i = 0; i < N; ++i) tracked[static_cast<std::size_t>(i)] = i;
  } else {
    auto t = load_npy_indices(opt.track);
    if (t.shape.size() != 1) fail("--track " + opt.track + " must be a 1-d array of int64 indices");
    tracked = std::move(t.data);
  }
  const index n = static_cast<index>(tracked.size());

  SGD<T> optimizer(P, {.momentum = opt.momentum, .weight_decay = opt.weight_decay});
  trainer fit(model, loss, optimizer, schedule);
  hypergradient_tracker<Model, SoftmaxCrossEntropy<T>, Policy> tracker(model, loss, optimizer, tracked, N);
  fmt::print("hydra-attribute: {} training / {} test samples, model {} ({} parameters), {} steps, tracking {} samples ({}, {})\n",
             N, test.size(), opt.model, P, order.steps(), n, Policy::name, opt.precision);
  std::fflush(stdout);
  if constexpr (Policy::hessian_aware) {
    fit.fit(w.view(), train, order, nullptr, tracker);
  } else {  // Theorem 1 bounds the Hessian-free error: warn (stderr) when the run is outside its conditions
    theorem1_conditions theorem(opt.weight_decay);
    fit.fit(w.view(), train, order, nullptr, tracker, theorem);
  }

  const auto C = test_contributions(model, loss, std::as_const(w).view(), test, tracker.hypergradients(), N);
  const std::filesystem::path out(opt.out);
  std::filesystem::create_directories(out);
  save_npy(out / "weights.npy", w.to_host(), {P});
  save_matrix<T>(out / "hypergradients.npy", tracker.hypergradients());
  save_matrix<T>(out / "contributions.npy", C.view());
  std::vector<std::int64_t> tracked64(tracked.begin(), tracked.end());
  save_npy(out / "tracked.npy", tracked64, {n});

  const auto train_eval = fit.evaluate(std::as_const(w).view(), train);
  const auto test_eval = fit.evaluate(std::as_const(w).view(), test);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("train accuracy {:.2f}%, test accuracy {:.2f}%, {:.1f} s; wrote {}/{{weights,hypergradients,contributions,tracked}}.npy\n",
             100 * train_eval.accuracy, 100 * test_eval.accuracy, seconds, opt.out);
  if (n > 0 && test.size() > 0) {
    const auto helpful = most_helpful<T>(tracked, C.view(), 0, 3);
    const auto harmful = most_harmful<T>(tracked, C.view(), 0, 3);
    fmt::print("test point 0 (label {}): most helpful", test.label(0));
    for (const auto& s : helpful) fmt::print("  #{} (label {}, C = {:+.3e})", s.sample, train.label(s.sample), s.score);
    fmt::print("\n                       most harmful");
    for (const auto& s : harmful) fmt::print("  #{} (label {}, C = {:+.3e})", s.sample, train.label(s.sample), s.score);
    fmt::print("\n");
  }
  return 0;
}

} // namespace hydra::cli

int main(int argc, char** argv) {
  hydra::cli::options opt;
  CLI::App app{"hydra-attribute: HYDRA training-data attribution on NumPy files (see docs/attribution.md)"};
  app.add_option("--train-x", opt.train_x, "N × D (or N × C × H × W) float32/float64 training features")->required();
  app.add_option("--train-y", opt.train_y, "N integer training labels (int32, int64 or uint8)")->required();
  app.add_option("--test-x", opt.test_x, "M × D test features")->required();
  app.add_option("--test-y", opt.test_y, "M integer test labels")->required();
  app.add_option("--model", opt.model, "softmax:D,C, mlp:D,H1[,H2,...],C[:relu|tanh|sigmoid] or lenet5")->required();
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
  app.add_option("--method", opt.method, "hessian-free or exact")->capture_default_str()->check(CLI::IsMember({"hessian-free", "exact"}));
  app.add_option("--precision", opt.precision, "float32 or float64")->capture_default_str()->check(CLI::IsMember({"float32", "float64"}));
  app.add_option("--out", opt.out, "output folder")->required();
  app.failure_message([](const CLI::App*, const CLI::Error& e) {  // one line, like every other error
    return std::string("hydra-attribute: error: ") + e.what() + " (see --help)\n";
  });
  CLI11_PARSE(app, argc, argv);
  try {
    const bool exact = opt.method == "exact";
    if (opt.precision == "float64") return exact ? hydra::cli::run<double, hydra::Exact>(opt) : hydra::cli::run<double, hydra::HessianFree>(opt);
    return exact ? hydra::cli::run<float, hydra::Exact>(opt) : hydra::cli::run<float, hydra::HessianFree>(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hydra-attribute: error: %s\n", e.what());
    return 1;
  }
}
