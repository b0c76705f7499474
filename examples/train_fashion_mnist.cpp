// Training alone, the paper's Fashion-MNIST experiment: LeNet-5 (or an MLP) on the real
// Fashion-MNIST (Debian's dataset-fashion-mnist) with the paper's split (50,000 train / 10,000
// validation / 10,000 test) and settings (20 epochs, SGD momentum 0.9, weight decay 2e-5, batch 64,
// lr 0.01 halved on plateaus of 2 epochs); prints the loss and accuracy of every epoch.

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

namespace {
struct options {
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string model = "lenet5";
  hydra::index epochs = 20;
  hydra::index batch_size = 64;
  double learning_rate = 0.01;
  double momentum = 0.9;
  double weight_decay = 2e-5;
  double plateau_factor = 0.5;
  std::vector<hydra::index> hidden{256};
  std::string activation = "relu";
  std::uint64_t seed = 0;
  hydra::index train_size = 50000;
};

template <class Model>
int run(const options& opt, Model model, const std::string& description) {
  using T = typename Model::scalar_type;
  const std::filesystem::path dir(opt.data_dir);
  const auto t0 = std::chrono::steady_clock::now();
  const auto all_train = hydra::load_idx_dataset<T>(dir / "train-images-idx3-ubyte.gz", dir / "train-labels-idx1-ubyte.gz");
  const auto test = hydra::load_idx_dataset<T>(dir / "t10k-images-idx3-ubyte.gz", dir / "t10k-labels-idx1-ubyte.gz");
  if (opt.train_size <= 0 || opt.train_size >= all_train.size())
    throw hydra::invalid_argument("--train-size must be in [1, " + std::to_string(all_train.size() - 1) + "]");
  const auto train = hydra::split(all_train, 0, opt.train_size);
  const auto validation = hydra::split(all_train, opt.train_size, all_train.size() - opt.train_size);
  fmt::print("Fashion-MNIST: {} train / {} validation / {} test images of {} pixels (loaded in {:.1f} s)\n",
             train.size(), validation.size(), test.size(), train.sample_size(),
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  hydra::SoftmaxCrossEntropy<T> loss;
  hydra::SGD<T> optimizer(model.parameter_count(), {.momentum = opt.momentum, .weight_decay = opt.weight_decay});
  hydra::plateau_schedule schedule(opt.learning_rate, opt.plateau_factor);
  hydra::trainer fit(model, loss, optimizer, schedule);
  hydra::vector<T, hydra::cpu> w(model.parameter_count());
  model.initialize(w.view(), opt.seed);
  fmt::print("{}, {} parameters; SGD lr {} momentum {} weight decay {}, batch {}, {} epochs\n", description,
             model.parameter_count(), opt.learning_rate, opt.momentum, opt.weight_decay, opt.batch_size, opt.epochs);

  struct printer {
    void on_epoch_end(const hydra::epoch_report& r) {
      fmt::print("epoch {:3d}  lr {:.5f}  train loss {:.4f}  val loss {:.4f}  val acc {:.2f}%  ({:.1f} s)\n",
                 r.epoch + 1, r.learning_rate, r.training_loss, r.validation_loss, 100 * r.validation_accuracy,
                 r.seconds);
      std::fflush(stdout);
    }
  } print_epoch;
  const auto order = hydra::batch_order::shuffled(train.size(), opt.batch_size, opt.epochs, opt.seed);
  fit.fit(w.view(), train, order, &validation, print_epoch);
  const auto result = fit.evaluate(w.view(), test);
  fmt::print("test loss {:.4f}  test accuracy {:.2f}%  (total {:.1f} s)\n", result.loss, 100 * result.accuracy,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}
} // namespace

int main(int argc, char** argv) {
  options opt;
  CLI::App app{"Train LeNet-5 or an MLP on Fashion-MNIST with hydra (the paper's settings)"};
  app.add_option("--model", opt.model, "lenet5 (the paper's network) or mlp (see --hidden, --activation)")
      ->capture_default_str()
      ->check(CLI::IsMember({"lenet5", "mlp"}));
  app.add_option("--data-dir", opt.data_dir, "folder with the four Fashion-MNIST .gz IDX files")->capture_default_str();
  app.add_option("--epochs", opt.epochs, "training epochs")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch-size", opt.batch_size, "mini-batch size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lr", opt.learning_rate, "initial learning rate")->capture_default_str();
  app.add_option("--momentum", opt.momentum, "SGD momentum p")->capture_default_str();
  app.add_option("--weight-decay", opt.weight_decay, "L2 coefficient λ")->capture_default_str();
  app.add_option("--plateau-factor", opt.plateau_factor, "learning-rate factor on a plateau")->capture_default_str();
  app.add_option("--hidden", opt.hidden, "hidden layer widths of --model mlp")->capture_default_str()->expected(0, -1);
  app.add_option("--activation", opt.activation, "relu, relu6, tanh or sigmoid")
      ->capture_default_str()
      ->check(CLI::IsMember({"relu", "relu6", "tanh", "sigmoid"}));
  app.add_option("--seed", opt.seed, "seed of the initialisation and the batch order")->capture_default_str();
  app.add_option("--train-size", opt.train_size, "training samples; the rest of the 60,000 validate")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    if (opt.model == "lenet5") return run(opt, hydra::LeNet5<float>(), "LeNet-5 (1 x 28 x 28 inputs)");
    hydra::Mlp<float> mlp(784, opt.hidden, 10, *hydra::activation_named(opt.activation));
    return run(opt, std::move(mlp), fmt::format("MLP 784 → {} → 10 ({})", fmt::join(opt.hidden, " → "), opt.activation));
  } catch (const hydra::error& e) {
    std::fprintf(stderr, "train_fashion_mnist: %s\n", e.what());
    return 1;
  }
}
