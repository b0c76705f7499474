// How far the eval-mode approximation of batch normalisation takes HYDRA from the exact answer
// (docs/nn.md, "Batch normalisation during training and attribution"): one small convolutional
// network with two batch norms, trained once on real Fashion-MNIST; the same training samples
// tracked Exact with the attribution passes on batch statistics (the derivative of the steps taken)
// and on running statistics (what dattri, TRAK and Kronfluence do), and Hessian-free on batch
// statistics; then the agreement of their contributions to the test set. Training is the same in
// every run (train mode for the steps); only the tracker's passes differ.
//
//   build/release/examples/batch_norm_agreement [--train-size 1000] [--test-size 200] [--epochs 3]

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <hydra/hydra.hpp>

namespace {

using hydra::index;
using T = double;  // the comparison is of two exact quantities: no float rounding in between
using net_type = hydra::Network<T>;

/// 1 × 28 × 28 → conv 5 × 5 / 2 (8) → BN → ReLU → conv 3 × 3 / 2 (16) → BN → ReLU → global average
/// pool → dense (10): 1,570 parameters, both batch norms after a convolution as in DenseNet.
net_type make_network() {
  const hydra::conv_options no_bias{.groups = 1, .bias = false};
  return net_type(hydra::parts<T>(hydra::Conv2d<T>(1, 28, 28, 8, 5, 2, 2, no_bias), hydra::BatchNorm2d<T>(8, 14, 14),
                                  hydra::ReLU<T>(), hydra::Conv2d<T>(8, 14, 14, 16, 3, 2, 1, no_bias),
                                  hydra::BatchNorm2d<T>(16, 7, 7), hydra::ReLU<T>(),
                                  hydra::GlobalAvgPool2d<T>(16, 7, 7), hydra::Dense<T>(16, 10)));
}

struct settings {
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  index train_size = 1000, test_size = 200, epochs = 3, batch_size = 32, per_class = 10;
  double learning_rate = 0.05, momentum = 0.9, weight_decay = 5e-4;
};

/// Trains from the same start along the same order and returns C (tracked × test) of the tracker.
template <class Policy>
std::vector<T> contributions(const settings& s, hydra::batch_norm_statistics attribution,
                             const hydra::dataset<T>& train, const hydra::dataset<T>& test,
                             const std::vector<index>& tracked, double& test_accuracy) {
  auto model = make_network();
  hydra::set_batch_norm_statistics(model, attribution);
  hydra::SoftmaxCrossEntropy<T> loss;
  hydra::SGD<T> optimizer(model.parameter_count(), {.momentum = s.momentum, .weight_decay = s.weight_decay});
  hydra::constant_schedule schedule(s.learning_rate);
  hydra::trainer fit(model, loss, optimizer, schedule, {.progress = hydra::progress_mode::never});
  hydra::hypergradient_tracker<net_type, hydra::SoftmaxCrossEntropy<T>, Policy> tracker(model, loss, optimizer,
                                                                                       tracked, train.size());
  hydra::vector<T, hydra::cpu> w(model.parameter_count());
  model.initialize(w.view(), 1);
  const auto order = hydra::batch_order::shuffled(train.size(), s.batch_size, s.epochs, 2);
  fit.fit(w.view(), train, order, nullptr, tracker);
  test_accuracy = fit.evaluate(std::as_const(w).view(), test).accuracy;
  const auto C = hydra::test_contributions(model, loss, std::as_const(w).view(), test, tracker.hypergradients(),
                                           train.size());
  return std::as_const(C).to_host();
}

std::vector<T> row_means(const std::vector<T>& C, index rows, index cols) {
  return hydra::mean_over_test_points(hydra::matrix_view<const T>(C.data(), rows, cols));
}

void compare(const char* what, const std::vector<T>& a, const std::vector<T>& b, index rows, index cols) {
  const auto ma = row_means(a, rows, cols), mb = row_means(b, rows, cols);
  fmt::print("{:<44} C(i): sign error {:.3f}, Spearman {:+.3f};  C(i, j): sign error {:.3f}, Spearman {:+.3f}\n", what,
             hydra::sign_error_rate(std::span<const T>(ma), std::span<const T>(mb)),
             hydra::spearman(std::span<const T>(ma), std::span<const T>(mb)),
             hydra::sign_error_rate(std::span<const T>(a), std::span<const T>(b)),
             hydra::spearman(std::span<const T>(a), std::span<const T>(b)));
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"Batch norm in the attribution passes: batch statistics (exact) against running statistics"};
  settings s;
  app.add_option("--data-dir", s.data_dir, "the Fashion-MNIST folder")->capture_default_str();
  app.add_option("--train-size", s.train_size, "training images (the first of the training file)")->capture_default_str();
  app.add_option("--test-size", s.test_size, "test images (the first of the test file)")->capture_default_str();
  app.add_option("--epochs", s.epochs, "epochs")->capture_default_str();
  app.add_option("--per-class", s.per_class, "tracked images per class")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    const std::filesystem::path dir(s.data_dir);
    const auto all = hydra::load_idx_dataset<T>(dir / "train-images-idx3-ubyte.gz", dir / "train-labels-idx1-ubyte.gz");
    const auto all_test = hydra::load_idx_dataset<T>(dir / "t10k-images-idx3-ubyte.gz", dir / "t10k-labels-idx1-ubyte.gz");
    const auto train = hydra::split(all, 0, s.train_size);
    const auto test = hydra::split(all_test, 0, s.test_size);
    std::vector<hydra::index> tracked, taken(10, 0);
    for (hydra::index i = 0; i < train.size(); ++i)
      if (taken[static_cast<std::size_t>(train.label(i))]++ < s.per_class) tracked.push_back(i);
    const auto n = static_cast<hydra::index>(tracked.size()), M = test.size();
    fmt::print("{} training / {} test Fashion-MNIST images, {} tracked, {} epochs of batch {}, lr {}, momentum {}, "
               "weight decay {}; {} parameters\n",
               train.size(), M, n, s.epochs, s.batch_size, s.learning_rate, s.momentum, s.weight_decay,
               make_network().parameter_count());
    double accuracy = 0;
    const auto exact = contributions<hydra::Exact>(s, hydra::batch_norm_statistics::batch, train, test, tracked, accuracy);
    fmt::print("test accuracy {:.2f}%\n", 100 * accuracy);
    const auto running =
        contributions<hydra::Exact>(s, hydra::batch_norm_statistics::running, train, test, tracked, accuracy);
    const auto free =
        contributions<hydra::HessianFree>(s, hydra::batch_norm_statistics::batch, train, test, tracked, accuracy);
    const auto free_running =
        contributions<hydra::HessianFree>(s, hydra::batch_norm_statistics::running, train, test, tracked, accuracy);
    compare("Exact, running vs batch statistics", running, exact, n, M);
    compare("Hessian-free (batch) vs Exact (batch)", free, exact, n, M);
    compare("Hessian-free (running) vs Exact (batch)", free_running, exact, n, M);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "batch_norm_agreement: error: %s\n", e.what());
    return 1;
  }
}
