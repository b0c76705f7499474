// Exact contributions of every Fashion-MNIST training sample by the adjoint sweep (issue 15's
// recorded run, docs/performance.md): the paper's LeNet-5 run (50,000 training images, 20 epochs,
// batch 64, SGD momentum 0.9, weight decay 2e-5, lr 0.01 halved on plateaus of 2 epochs), timed
//   1. as plain training,
//   2. again with the trajectory recorded (every w_{t−1} kept, in memory or with --state-dir in a
//      mapped file; or with --checkpoint-every K checkpoints and recomputed segments),
//   3. then one backward sweep per requested M: M = 1 (the mean test loss) and M = 10 (the mean
//      test loss of each class),
// with the ratio (recorded training + sweep) / plain training and the peak resident memory. As a
// check that cannot come out right by accident, the M = 1 projections must equal the class
// projections weighted by the classes' shares of the test set (the test loss is linear in them).

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <hydra/hydra.hpp>

namespace {
struct options {
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string state_dir;
  hydra::index train_size = 50000, epochs = 20, batch_size = 64, checkpoint_every = 0;
  std::vector<hydra::index> directions{1, 10};
  std::uint64_t seed = 0;
};

using T = float;
using Model = hydra::LeNet5<T>;
using Loss = hydra::SoftmaxCrossEntropy<T>;

double peak_resident_gib() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);  // KiB on Linux
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// ∇ of the mean loss over `data` at w, in chunks of 500 images.
std::vector<T> mean_gradient(Model& model, Loss& loss, hydra::vector_view<const T> w, const hydra::dataset<T>& data) {
  const hydra::index P = model.parameter_count();
  std::vector<double> sum(static_cast<std::size_t>(P), 0.0);
  hydra::vector<T, hydra::cpu> chunk_gradient(P);
  hydra::device_batch<T, hydra::cpu> batch;
  hydra::for_each_chunk(data, 500, batch, [&](hydra::index, hydra::index count) {
    (void)model.gradient(w, batch.features(), batch.targets(), loss, chunk_gradient.view());
    for (hydra::index q = 0; q < P; ++q) sum[static_cast<std::size_t>(q)] += static_cast<double>(count) * chunk_gradient.view().data[q];
  });
  std::vector<T> out(sum.size());
  for (std::size_t q = 0; q < sum.size(); ++q) out[q] = static_cast<T>(sum[q] / static_cast<double>(data.size()));
  return out;
}

struct epoch_printer {
  const char* what;
  void on_epoch_end(const hydra::epoch_report& r) {
    fmt::print("  {} epoch {:2d}: lr {:.5f}  train loss {:.4f}  val acc {:.2f}%  ({:.1f} s)\n", what, r.epoch + 1,
               r.learning_rate, r.training_loss, 100 * r.validation_accuracy, r.seconds);
    std::fflush(stdout);
  }
};

template <class Trajectory>
int sweep_all(const options& opt, Model& model, Loss& loss, hydra::SGD<T>& optimizer, const hydra::dataset<T>& train,
              const hydra::dataset<T>& test, const hydra::batch_order& order, hydra::vector_view<const T> w,
              Trajectory& trajectory, double plain_seconds, double recorded_seconds) {
  const hydra::index P = model.parameter_count();
  // The directions: the mean test loss's gradient, and each class's.
  std::vector<std::vector<hydra::index>> members(10);
  for (hydra::index j = 0; j < test.size(); ++j) members[static_cast<std::size_t>(test.label(j))].push_back(j);
  std::vector<T> U(static_cast<std::size_t>(11 * P));
  const auto mean = mean_gradient(model, loss, w, test);
  std::copy(mean.begin(), mean.end(), U.begin());
  for (std::size_t c = 0; c < 10; ++c) {
    const auto g = mean_gradient(model, loss, w, hydra::subset(test, std::span<const hydra::index>(members[c])));
    std::copy(g.begin(), g.end(), U.begin() + static_cast<std::ptrdiff_t>((c + 1) * static_cast<std::size_t>(P)));
  }

  std::optional<hydra::matrix<T, hydra::cpu>> mean_projections, class_projections;
  for (const hydra::index M : opt.directions) {
    const hydra::matrix_view<const T> directions(U.data() + (M == 1 ? 0 : P), M, P);
    const auto start = std::chrono::steady_clock::now();
    auto projections = hydra::adjoint_projections<hydra::Exact>(model, loss, train, order, trajectory, directions,
                                                                 optimizer);
    const double sweep = seconds_since(start);
    fmt::print("M = {:2d}: backward sweep {:.1f} s ({:.2f} ms per step); (recorded training + sweep) / plain "
               "training = {:.2f}; peak resident so far {:.2f} GiB\n",
               M, sweep, 1e3 * sweep / static_cast<double>(order.steps()), (recorded_seconds + sweep) / plain_seconds,
               peak_resident_gib());
    std::fflush(stdout);
    (M == 1 ? mean_projections : class_projections) = std::move(projections);
  }
  if (mean_projections && class_projections) {
    double diff = 0, norm = 0;
    for (hydra::index i = 0; i < train.size(); ++i) {
      double combined = 0;
      for (hydra::index c = 0; c < 10; ++c)
        combined += static_cast<double>(members[static_cast<std::size_t>(c)].size()) / static_cast<double>(test.size()) *
                    class_projections->view().row(i)[c];
      const double direct = mean_projections->view().row(i)[0];
      diff += (combined - direct) * (combined - direct);
      norm += direct * direct;
    }
    const double error = std::sqrt(diff / norm);
    fmt::print("check: M = 1 projections against the class-share-weighted M = 10 ones, relative error {:.2e}\n", error);
    if (!(error <= 1e-3)) {  // float32 sums over 15,620 steps; a wrong coupling is off by O(1)
      std::fprintf(stderr, "adjoint_fashion_mnist: the M = 1 and M = 10 sweeps disagree (%.3e)\n", error);
      return 1;
    }
  }
  return 0;
}

int run(const options& opt) {
  const std::filesystem::path dir(opt.data_dir);
  const auto all_train = hydra::load_idx_dataset<T>(dir / "train-images-idx3-ubyte.gz", dir / "train-labels-idx1-ubyte.gz");
  const auto test = hydra::load_idx_dataset<T>(dir / "t10k-images-idx3-ubyte.gz", dir / "t10k-labels-idx1-ubyte.gz");
  if (opt.train_size <= 0 || opt.train_size >= all_train.size())
    throw hydra::invalid_argument("--train-size must be in [1, " + std::to_string(all_train.size() - 1) + "]");
  const auto train = hydra::split(all_train, 0, opt.train_size);
  const auto validation = hydra::split(all_train, opt.train_size, all_train.size() - opt.train_size);
  for (const hydra::index M : opt.directions)
    if (M != 1 && M != 10) throw hydra::invalid_argument("--directions takes 1 and/or 10, got " + std::to_string(M));

  Model model;
  Loss loss;
  const hydra::index P = model.parameter_count();
  const auto order = hydra::batch_order::shuffled(train.size(), opt.batch_size, opt.epochs, opt.seed);
  fmt::print("LeNet-5 ({} parameters), {} training images, {} epochs = {} steps of {}; test set {}\n", P, train.size(),
             opt.epochs, order.steps(), opt.batch_size, test.size());
  const auto train_once = [&](hydra::SGD<T>& optimizer, hydra::vector<T, hydra::cpu>& w, const char* what,
                              auto&... callbacks) {
    model.initialize(w.view(), opt.seed);
    hydra::plateau_schedule schedule(0.01, 0.5);
    hydra::trainer fit(model, loss, optimizer, schedule, {.progress = hydra::progress_mode::never});
    epoch_printer printer{what};
    const auto start = std::chrono::steady_clock::now();
    (void)fit.fit(w.view(), train, order, &validation, printer, callbacks...);
    return seconds_since(start);
  };
  const hydra::sgd_options sgd{.momentum = 0.9, .weight_decay = 2e-5};

  hydra::vector<T, hydra::cpu> w_plain(P), w(P);
  hydra::SGD<T> plain_optimizer(P, sgd), optimizer(P, sgd);
  const double plain = train_once(plain_optimizer, w_plain, "plain");
  fmt::print("plain training: {:.1f} s ({:.2f} ms per step)\n", plain, 1e3 * plain / static_cast<double>(order.steps()));

  const auto report_recorded = [&](double seconds, const std::string& how) {
    fmt::print("training with the trajectory recorded ({}): {:.1f} s; peak resident {:.2f} GiB\n", how, seconds,
               peak_resident_gib());
    std::fflush(stdout);
  };
  if (opt.checkpoint_every > 0) {
    hydra::checkpointed_trajectory trajectory(model, loss, optimizer, train, order, opt.checkpoint_every);
    const double recorded = train_once(optimizer, w, "recorded", trajectory);
    report_recorded(recorded, fmt::format("checkpoints every K = {} steps, {} parameter vectors held",
                                          opt.checkpoint_every,
                                          (order.steps() + opt.checkpoint_every - 1) / opt.checkpoint_every * 2 +
                                              opt.checkpoint_every));
    return sweep_all(opt, model, loss, optimizer, train, test, order, std::as_const(w).view(), trajectory, plain, recorded);
  }
  auto trajectory = opt.state_dir.empty()
                        ? hydra::trajectory_recorder<T, hydra::cpu>()
                        : hydra::trajectory_recorder<T, hydra::cpu>(order.steps(), P, opt.state_dir);
  const double recorded = train_once(optimizer, w, "recorded", trajectory);
  report_recorded(recorded, fmt::format("every step kept, {:.2f} GB {}", static_cast<double>(order.steps()) *
                                                                          static_cast<double>(P) * sizeof(T) / 1e9,
                                        opt.state_dir.empty() ? "in memory" : "in a mapped file in " + opt.state_dir));
  return sweep_all(opt, model, loss, optimizer, train, test, order, std::as_const(w).view(), trajectory, plain, recorded);
}
} // namespace

int main(int argc, char** argv) {
  options opt;
  CLI::App app{"Exact contributions of every Fashion-MNIST training sample by the adjoint sweep, timed"};
  app.add_option("--data-dir", opt.data_dir, "folder with the four Fashion-MNIST .gz IDX files")->capture_default_str();
  app.add_option("--train-size", opt.train_size, "training images; the rest of the 60,000 validate")->capture_default_str();
  app.add_option("--epochs", opt.epochs, "training epochs")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch-size", opt.batch_size, "mini-batch size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--directions", opt.directions, "which sweeps: 1 (mean test loss) and/or 10 (class means)")
      ->capture_default_str()
      ->expected(1, 2);
  app.add_option("--checkpoint-every", opt.checkpoint_every, "keep w every K steps and recompute the rest (0: keep all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--state-dir", opt.state_dir, "keep the recorded parameters in a mapped scratch file in this folder");
  app.add_option("--seed", opt.seed, "seed of the initialisation and the batch order")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (opt.checkpoint_every > 0 && !opt.state_dir.empty()) {
    std::fprintf(stderr, "adjoint_fashion_mnist: --state-dir keeps every step; it does not go with --checkpoint-every\n");
    return 2;
  }
  try {
    return run(opt);
  } catch (const hydra::error& e) {
    std::fprintf(stderr, "adjoint_fashion_mnist: %s\n", e.what());
    return 1;
  }
}
