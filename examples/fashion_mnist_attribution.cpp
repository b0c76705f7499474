// The main job (./scripts/main.sh): train an MLP on the real Fashion-MNIST with the paper's
// optimizer settings while tracking a few hundred training samples with HYDRA (Hessian-free by
// default), then show, for a handful of test images, the most helpful and most harmful tracked
// training samples with their labels. A few minutes on 2 cores by default; flags for larger runs.
// --device cuda runs the same code on the GPU (hydra::cuda): built from
// fashion_mnist_attribution.cu, which defines HYDRA_EXAMPLE_WITH_CUDA and includes this file, as
// the target fashion_mnist_attribution_cuda where CMake finds the CUDA toolkit. The data are read
// on the host; the model, optimiser, tracker and contributions live on the chosen device, and only
// the contributions come back to the host to be ranked.

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <hydra/hydra.hpp>
#ifdef HYDRA_EXAMPLE_WITH_CUDA
#include <hydra/backend/cuda.cuh>
#endif

namespace hydra::example {

constexpr const char* class_names[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                       "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

struct options {
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string device = "cpu";
  index train_size = 50000;
  index epochs = 3;
  index batch_size = 64;
  double learning_rate = 0.01;
  double momentum = 0.9;
  double weight_decay = 2e-5;
  std::string model = "mlp";
  std::vector<index> hidden{128};
  index track = 300;
  index test_images = 5;
  index top = 3;
  std::string method = "hessian-free";
  std::uint64_t seed = 0;
};

/// `count` distinct training indices drawn with hydra's portable generator (same on every machine).
std::vector<index> choose_tracked(index n, index count, std::uint64_t seed) {
  std::vector<index> all(static_cast<std::size_t>(n));
  for (index i = 0; i < n; ++i) all[static_cast<std::size_t>(i)] = i;
  xoshiro256ss rng(seed ^ 0x7472616b6564ULL);
  shuffle(std::span<index>(all), rng);
  all.resize(static_cast<std::size_t>(count));
  std::sort(all.begin(), all.end());
  return all;
}

template <class Policy, class Model>
int run(const options& opt, Model model, const std::string& description) {
  using T = typename Model::scalar_type;
  using B = typename Model::backend_type;
  const std::filesystem::path dir(opt.data_dir);
  const auto t0 = std::chrono::steady_clock::now();
  const auto all_train = load_idx_dataset<T>(dir / "train-images-idx3-ubyte.gz", dir / "train-labels-idx1-ubyte.gz");
  const auto test = load_idx_dataset<T>(dir / "t10k-images-idx3-ubyte.gz", dir / "t10k-labels-idx1-ubyte.gz");
  // The paper's split: 50,000 train (or the first --train-size of them) / 10,000 validation.
  const auto train = split(all_train, 0, opt.train_size);
  const auto validation = split(all_train, 50000, 10000);
  if (opt.track < 0 || opt.track > train.size())
    throw invalid_argument("--track must be in [0, " + std::to_string(train.size()) + "]");

  SoftmaxCrossEntropy<T, B> loss;
  SGD<T, B> optimizer(model.parameter_count(), {.momentum = opt.momentum, .weight_decay = opt.weight_decay});
  plateau_schedule schedule(opt.learning_rate, 0.5);
  trainer fit(model, loss, optimizer, schedule);
  vector<T, B> w(model.parameter_count());
  model.initialize(w.view(), opt.seed);
  const auto tracked = choose_tracked(train.size(), opt.track, opt.seed);
  hypergradient_tracker<Model, SoftmaxCrossEntropy<T, B>, Policy> tracker(model, loss, optimizer, tracked,
                                                                         train.size());
  fmt::print("Fashion-MNIST: {} train / {} validation / {} test. {}, {} parameters, on {}.\n", train.size(),
             validation.size(), test.size(), description, model.parameter_count(), B::name);
  fmt::print("SGD lr {} (halved on plateaus), momentum {}, weight decay {}, batch {}, {} epochs; "
             "tracking {} training samples ({}).\n",
             opt.learning_rate, opt.momentum, opt.weight_decay, opt.batch_size, opt.epochs, tracked.size(), Policy::name);
  std::fflush(stdout);

  struct printer {
    void on_epoch_end(const epoch_report& r) {
      fmt::print("epoch {:2d}  lr {:.5f}  train loss {:.4f}  val loss {:.4f}  val acc {:.2f}%  ({:.1f} s)\n",
                 r.epoch + 1, r.learning_rate, r.training_loss, r.validation_loss, 100 * r.validation_accuracy, r.seconds);
      std::fflush(stdout);
    }
  } print_epoch;
  fit.fit(w.view(), train, batch_order::shuffled(train.size(), opt.batch_size, opt.epochs, opt.seed), &validation,
          print_epoch, tracker);
  const auto test_eval = fit.evaluate(std::as_const(w).view(), test);
  fmt::print("test accuracy {:.2f}%\n\n", 100 * test_eval.accuracy);

  // Contributions of the tracked samples to the first test images: C(i, j), positive = helps.
  const index shown = std::min(opt.test_images, test.size());
  std::vector<index> first(static_cast<std::size_t>(shown));
  for (index j = 0; j < shown; ++j) first[static_cast<std::size_t>(j)] = j;
  const auto images = subset(test, first);
  const auto C_device = test_contributions(model, loss, std::as_const(w).view(), images, tracker.hypergradients(),
                                           train.size());
  const std::vector<T> C_values = C_device.to_host();  // ranked on the host, whatever the device
  const matrix_view<const T> C(C_values.data(), C_device.rows(), C_device.cols());
  index same_label_helpful = 0, same_label_harmful = 0;
  for (index j = 0; j < shown; ++j) {
    fmt::print("test image {} ({}):\n", j, class_names[images.label(j)]);
    auto show = [&](const char* title, const std::vector<scored_sample>& samples, index& same) {
      fmt::print("  {}:", title);
      for (const auto& s : samples) {
        fmt::print("  #{} {} ({:+.2e})", s.sample, class_names[train.label(s.sample)], s.score);
        same += train.label(s.sample) == images.label(j);
      }
      fmt::print("\n");
    };
    show("most helpful", most_helpful<T>(tracked, C, j, opt.top), same_label_helpful);
    show("most harmful", most_harmful<T>(tracked, C, j, opt.top), same_label_harmful);
  }
  const double total = static_cast<double>(shown * opt.top);
  fmt::print("\nshare of the listed samples with the test image's label: helpful {:.0f}%, harmful {:.0f}% "
             "(C(i, j) > 0: removing sample i would raise test loss j)\n",
             100 * same_label_helpful / total, 100 * same_label_harmful / total);
  fmt::print("total {:.1f} s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

} // namespace hydra::example

int main(int argc, char** argv) {
  hydra::example::options opt;
  CLI::App app{"HYDRA on Fashion-MNIST: train an MLP or LeNet-5 while tracking training samples, then explain test predictions"};
  app.add_option("--data-dir", opt.data_dir, "folder with the four Fashion-MNIST .gz IDX files")->capture_default_str();
  app.add_option("--device", opt.device, "cpu or cuda (the GPU; fashion_mnist_attribution_cuda only)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--train-size", opt.train_size, "train on the first N of the 50,000 training samples")
      ->capture_default_str()
      ->check(CLI::Range(hydra::index{1}, hydra::index{50000}));
  app.add_option("--epochs", opt.epochs, "training epochs")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch-size", opt.batch_size, "mini-batch size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lr", opt.learning_rate, "initial learning rate")->capture_default_str();
  app.add_option("--momentum", opt.momentum, "SGD momentum p")->capture_default_str();
  app.add_option("--weight-decay", opt.weight_decay, "weight decay λ")->capture_default_str();
  app.add_option("--model", opt.model, "mlp (see --hidden) or lenet5 (the paper's network)")
      ->capture_default_str()
      ->check(CLI::IsMember({"mlp", "lenet5"}));
  app.add_option("--hidden", opt.hidden, "hidden layer widths of --model mlp")->capture_default_str()->expected(0, -1);
  app.add_option("--track", opt.track, "how many training samples to track (chosen by the seed)")->capture_default_str();
  app.add_option("--test-images", opt.test_images, "test images to explain")->capture_default_str();
  app.add_option("--top", opt.top, "helpful/harmful samples listed per test image")->capture_default_str();
  app.add_option("--method", opt.method, "hessian-free or exact")->capture_default_str()->check(CLI::IsMember({"hessian-free", "exact"}));
  app.add_option("--seed", opt.seed, "seed of initialisation, batch order and tracked samples")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    using namespace hydra;
    auto with_model = [&](auto model, const std::string& description) {
      return opt.method == "exact" ? example::run<Exact>(opt, std::move(model), description)
                                   : example::run<HessianFree>(opt, std::move(model), description);
    };
    auto on_backend = [&]<class B>() {
      if (opt.model == "lenet5") return with_model(LeNet5<float, B>(), "LeNet-5");
      return with_model(Mlp<float, B>(784, opt.hidden, 10),
                        fmt::format("MLP 784 → {} → 10", fmt::join(opt.hidden, " → ")));
    };
    if (opt.device == "cuda") {
#ifdef HYDRA_EXAMPLE_WITH_CUDA
      if (cuda::devices().empty())
        throw invalid_argument("--device cuda: no CUDA device is usable (" + cuda::no_device_reason() + ")");
      return on_backend.template operator()<cuda>();
#else
      throw invalid_argument("--device cuda: this build has no CUDA backend; run fashion_mnist_attribution_cuda, "
                             "built where CMake finds the CUDA toolkit");
#endif
    }
    return on_backend.template operator()<cpu>();
  } catch (const hydra::error& e) {
    std::fprintf(stderr, "fashion_mnist_attribution: error: %s\n", e.what());
    return 1;
  }
}
