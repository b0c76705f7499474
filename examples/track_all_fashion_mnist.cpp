// Tracking every training sample of Fashion-MNIST Hessian-free (issue: "track every training
// sample"): one run of `--epochs` epochs in one of three modes, timed, with the peak resident
// memory of the process.
//   --mode baseline   training plus every batch's per-sample gradients, no tracker: the floor
//                     that any tracking must pay, against which the others are compared
//   --mode lazy       a lazy HessianFree tracker of all N samples (the default)
//   --mode eager      the step-by-step update of Algorithm 1, for comparison
// With --state-dir the states live in a memory-mapped file: all 50,000 samples × LeNet-5's
// 61,706 parameters are 24.7 GB in float32, more than this machine's memory.

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <xtensor/xnorm.hpp>
#include <xtensor/xview.hpp>

#include <hydra/data/xtensor.hpp>
#include <hydra/hydra.hpp>

namespace {
struct options {
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string model = "lenet5";
  std::string mode = "lazy";
  std::string state_dir;
  hydra::index train_size = 50000, epochs = 1, batch_size = 64, hidden = 128;
  std::uint64_t seed = 0;
};

double peak_resident_gib() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);  // ru_maxrss is in KiB on Linux
}

/// The baseline's callback: the per-sample gradients a tracker needs, computed and discarded.
template <class Model, class Loss>
struct per_sample_only {
  using T = typename Model::scalar_type;
  Model& model;
  Loss& loss;
  hydra::matrix<T, hydra::cpu> rows;
  void before_update(const hydra::step_context<T, hydra::cpu>& ctx) {
    rows.resize(static_cast<hydra::index>(ctx.batch.size()), model.parameter_count());
    model.per_sample_gradients(ctx.parameters, ctx.features, ctx.targets, loss, rows.view());
  }
};

/// Each epoch's seconds: the first pays for touching fresh state memory, the later ones are the
/// steady state.
struct epoch_times {
  void on_epoch_end(const hydra::epoch_report& r) {
    fmt::print("  epoch {}: {:.2f} s\n", r.epoch + 1, r.seconds);
    std::fflush(stdout);
  }
};

template <class Model>
int run(const options& opt, Model model, const std::string& description) {
  using T = typename Model::scalar_type;
  const std::filesystem::path dir(opt.data_dir);
  const auto all = hydra::load_idx_dataset<T>(dir / "train-images-idx3-ubyte.gz", dir / "train-labels-idx1-ubyte.gz");
  if (opt.train_size <= 0 || opt.train_size > all.size())
    throw hydra::invalid_argument("--train-size must be in [1, " + std::to_string(all.size()) + "]");
  const auto train = hydra::split(all, 0, opt.train_size);
  const hydra::index N = train.size(), P = model.parameter_count();

  hydra::SoftmaxCrossEntropy<T> loss;
  hydra::SGD<T> optimizer(P, {.momentum = 0.9, .weight_decay = 2e-5});
  hydra::constant_schedule schedule(0.01);
  hydra::trainer fit(model, loss, optimizer, schedule, {.progress = hydra::progress_mode::never});
  hydra::vector<T, hydra::cpu> w(P);
  model.initialize(w.view(), opt.seed);
  const auto order = hydra::batch_order::shuffled(N, opt.batch_size, opt.epochs, opt.seed);
  const double state_gb = hydra::hypergradient_state_bytes<T>(N, P) / 1e9;
  fmt::print("{} ({} parameters), {} samples, {} steps, mode {}{}; the two states of all samples: {:.1f} GB\n",
             description, P, N, order.steps(), opt.mode,
             opt.state_dir.empty() ? "" : " (file-backed in " + opt.state_dir + ")", state_gb);
  std::fflush(stdout);

  const auto start = std::chrono::steady_clock::now();
  auto seconds_since = [](auto t) { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count(); };
  if (opt.mode == "baseline") {
    per_sample_only<Model, hydra::SoftmaxCrossEntropy<T>> gradients{model, loss, {}};
    epoch_times times;
    fit.fit(w.view(), train, order, nullptr, gradients, times);
    fmt::print("training with per-sample gradients: {:.1f} s, peak resident {:.2f} GiB\n", seconds_since(start),
               peak_resident_gib());
    return 0;
  }
  std::vector<hydra::index> everyone(static_cast<std::size_t>(N));
  for (hydra::index i = 0; i < N; ++i) everyone[static_cast<std::size_t>(i)] = i;
  hydra::tracker_options settings;
  settings.update = opt.mode == "eager" ? hydra::update_mode::eager : hydra::update_mode::lazy;
  settings.state_directory = opt.state_dir;
  hydra::hypergradient_tracker<Model, hydra::SoftmaxCrossEntropy<T>, hydra::HessianFree> tracker(
      model, loss, optimizer, std::move(everyone), N, settings);
  const double setup = seconds_since(start);
  const auto train_start = std::chrono::steady_clock::now();
  epoch_times times;
  fit.fit(w.view(), train, order, nullptr, tracker, times);
  const double training = seconds_since(train_start);
  const auto read_start = std::chrono::steady_clock::now();
  const auto H = tracker.hypergradients();  // brings every lazy state to step T
  const double reading = seconds_since(read_start);
  const double norm = xt::norm_l2(xt::cast<double>(xt::row(hydra::as_xtensor(H), N - 1)))();
  fmt::print("setup {:.1f} s, training with tracking {:.1f} s, bringing states to step T {:.1f} s; total {:.1f} s; "
             "peak resident {:.2f} GiB; |dw_T/de| of the last sample {:.4g}\n",
             setup, training, reading, seconds_since(start), peak_resident_gib(), norm);
  return 0;
}
} // namespace

int main(int argc, char** argv) {
  options opt;
  CLI::App app{"Track every Fashion-MNIST training sample Hessian-free; time and peak memory (docs/performance.md)"};
  app.add_option("--model", opt.model, "lenet5 or mlp (784-H-10, see --hidden)")
      ->capture_default_str()
      ->check(CLI::IsMember({"lenet5", "mlp"}));
  app.add_option("--mode", opt.mode, "baseline, lazy or eager")->capture_default_str()->check(CLI::IsMember({"baseline", "lazy", "eager"}));
  app.add_option("--state-dir", opt.state_dir, "keep the states in a memory-mapped file in this folder");
  app.add_option("--train-size", opt.train_size, "training samples (the first N)")->capture_default_str();
  app.add_option("--epochs", opt.epochs, "epochs")->capture_default_str();
  app.add_option("--batch-size", opt.batch_size, "batch size")->capture_default_str();
  app.add_option("--hidden", opt.hidden, "mlp: hidden units")->capture_default_str();
  app.add_option("--data-dir", opt.data_dir, "folder with the Fashion-MNIST IDX files")->capture_default_str();
  app.add_option("--seed", opt.seed, "seed")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    if (opt.model == "lenet5") return run(opt, hydra::LeNet5<float>(), "LeNet-5");
    return run(opt, hydra::Mlp<float>(784, {opt.hidden}, 10), fmt::format("MLP 784-{}-10", opt.hidden));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "track_all_fashion_mnist: error: %s\n", e.what());
    return 1;
  }
}
