// CIFAR-10 end to end (the paper's CIFAR-10 setting, issue "networks"): DenseNet-40 (or
// MobileNetV2) trained by the paper's recipe with HYDRA tracking 1 % of every class Hessian-free,
// then the contribution of every tracked training image to every test image.
//
//   data      the official binary distribution (cifar-10-batches-bin: data_batch_1.bin …
//             data_batch_5.bin, test_batch.bin), from --cifar-dir; nothing is downloaded. The
//             paper's split: training = data_batch_1–4 (40,000), validation = data_batch_5
//             (10,000), test = test_batch (10,000); a scaled run takes a prefix of each. Pixels
//             in [0, 1], then per-channel standardisation with the training split's mean and
//             standard deviation.
//   recipe    the paper's for DenseNet-40: SGD lr 0.1, momentum 0.9, weight decay 2.5e-5, batch 64,
//             lr × 0.1 on plateaus of 2 epochs of the validation loss, 150 epochs (--paper).
//   tracking  Hessian-free (or Exact) hypergradients of the tracked samples; batch norms in the
//             attribution passes on --batch-norm statistics (docs/nn.md); test gradients always on
//             the running estimates.
//   output    contributions.npy (tracked × test), tracked.csv (index, label, C(i) for the mean
//             test loss, its rank), history.csv, tracked_images.npy (the tracked images' pixels
//             in [0, 1], for the figure), buffers.npy (the final running statistics), settings.json.
//
// The CPU default (640 / 128 / 128 images, one epoch, 2 per class tracked, running statistics)
// finishes in minutes; --paper is the paper's protocol and needs days on our CPUs.

#include <algorithm>
#include <array>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "common.hpp"

namespace {

using hydra::index;
namespace paper = hydra::paper;
namespace fs = std::filesystem;

constexpr std::array<const char*, 10> cifar10_classes{"airplane", "automobile", "bird",  "cat",  "deer",
                                                      "dog",      "frog",       "horse", "ship", "truck"};

struct options {
  std::string cifar_dir, out = "results/cifar10", model = "densenet40", batch_norm = "running", method = "hessian-free";
  bool paper = false;
  index train_size = 640, validation_size = 128, test_size = 128, track_per_class = 2;
  std::uint64_t seed = 0;
  paper::recipe recipe{.epochs = 1,
                       .batch_size = 64,
                       .learning_rate = 0.1,
                       .plateau_factor = 0.1,
                       .plateau_patience = 2,
                       .momentum = 0.9,
                       .weight_decay = 2.5e-5};
};

struct split {
  hydra::dataset<float> train, validation, test;
  std::vector<float> train_pixels;  // the training split in [0, 1], before standardisation
  std::string provenance;
};

/// The paper's split of the official files, prefixes of `sizes`, standardised per channel.
split load(const options& o) {
  const fs::path dir(o.cifar_dir);
  std::vector<fs::path> train_files;
  for (int k = 1; k <= 5; ++k) train_files.push_back(dir / ("data_batch_" + std::to_string(k) + ".bin"));
  const fs::path test_file = dir / "test_batch.bin";
  auto all = train_files;
  all.push_back(test_file);
  for (const auto& f : all)
    if (!fs::exists(f))
      throw hydra::io_error("CIFAR-10 file " + f.string() +
                            " is missing: download the binary version (cifar-10-binary.tar.gz) from "
                            "https://www.cs.toronto.edu/~kriz/cifar.html, unpack it and give --cifar-dir its "
                            "cifar-10-batches-bin folder");
  const auto pool = hydra::load_cifar10<float>(std::span<const fs::path>(train_files.data(), 4));
  const auto validation_pool = hydra::load_cifar10_batch<float>(train_files[4]);
  const auto test_pool = hydra::load_cifar10_batch<float>(test_file);
  const auto take = [](const hydra::dataset<float>& d, index n, const char* flag, const std::string& file) {
    if (n < 1 || n > d.size())
      throw hydra::invalid_argument(std::string(flag) + " must be in [1, " + std::to_string(d.size()) + "] (" + file +
                                    " holds " + std::to_string(d.size()) + " images), got " + std::to_string(n));
    return hydra::split(d, 0, n);
  };
  split s{take(pool, o.train_size, "--train-size", "data_batch_1-4"),
          take(validation_pool, o.validation_size, "--validation-size", "data_batch_5"),
          take(test_pool, o.test_size, "--test-size", "test_batch"),
          {},
          {}};
  s.train_pixels.assign(s.train.features().begin(), s.train.features().end());
  const auto stats = hydra::mean_std(s.train, hydra::stats_scope::per_channel);
  s.train = hydra::normalize(std::move(s.train), stats);
  s.validation = hydra::normalize(std::move(s.validation), stats);
  s.test = hydra::normalize(std::move(s.test), stats);
  s.provenance = "CIFAR-10 (Krizhevsky 2009), official binary files from " + dir.string() +
                 "; training = images [0, " + std::to_string(o.train_size) + ") of data_batch_1-4, validation = [0, " +
                 std::to_string(o.validation_size) + ") of data_batch_5, test = [0, " + std::to_string(o.test_size) +
                 ") of test_batch; pixels / 255, then per channel (x - mean) / std of the training split (mean " +
                 fmt::format("{:.4f} {:.4f} {:.4f}, std {:.4f} {:.4f} {:.4f}", stats.mean[0], stats.mean[1],
                             stats.mean[2], stats.stddev[0], stats.stddev[1], stats.stddev[2]) +
                 ")";
  return s;
}

template <class Policy, class Model>
int run(const options& o, Model& model, paper::results& out) {
  const auto start = std::chrono::steady_clock::now();
  auto data = load(o);
  const index N = data.train.size(), P = model.parameter_count();
  const auto tracked = paper::first_of_each_class(data.train, o.track_per_class);
  const auto n = static_cast<index>(tracked.size());
  // The tracker's states and per-sample gradients of a batch, and the activations of a batch (the
  // model's per-direction workspace bound counts every layer's output, inner ones included), in
  // float, before anything is allocated.
  const double activations = static_cast<double>(model.tangent_elements_per_direction(o.recipe.batch_size));
  paper::check_memory(4.0 * (static_cast<double>(P) * static_cast<double>(2 * n + 2 * o.recipe.batch_size) +
                             2.0 * activations),
                      fmt::format("tracking {} samples of {} ({} parameters) in batches of {}", n, o.model, P,
                                  o.recipe.batch_size));
  hydra::set_batch_norm_statistics(model, o.batch_norm == "batch" ? hydra::batch_norm_statistics::batch
                                                                  : hydra::batch_norm_statistics::running);
  fmt::print("{}: {} parameters, {} training / {} validation / {} test images, {} tracked ({} per class), {} with "
             "{} statistics\n",
             o.model, P, N, data.validation.size(), data.test.size(), n, o.track_per_class, o.method, o.batch_norm);

  hydra::SoftmaxCrossEntropy<float> loss;
  hydra::SGD<float> optimizer(P, paper::sgd_of(o.recipe));
  hydra::hypergradient_tracker<Model, hydra::SoftmaxCrossEntropy<float>, Policy> tracker(model, loss, optimizer,
                                                                                         tracked, N);
  hydra::vector<float, hydra::cpu> w(P);
  model.initialize(w.view(), o.seed);
  const auto order = hydra::batch_order::shuffled(N, o.recipe.batch_size, o.recipe.epochs, o.seed + 1);
  // Evaluation in chunks of a training batch: DenseNet-40 holds about 3 M activations per image,
  // so the trainer's default chunk of 1,000 images would need 12 GB.
  const hydra::trainer_options train_options{.progress = hydra::progress_mode::never,
                                             .evaluation_batch_size = o.recipe.batch_size};
  hydra::plateau_schedule schedule(o.recipe.learning_rate, o.recipe.plateau_factor, o.recipe.plateau_patience);
  hydra::trainer fit(model, loss, optimizer, schedule, train_options);
  paper::epoch_printer printer{o.model};
  const auto history = fit.fit(w.view(), data.train, order, &data.validation, printer, tracker);
  const double training_seconds = paper::seconds_since(start);

  const auto test = fit.evaluate(std::as_const(w).view(), data.test);
  fmt::print("test accuracy {:.2f}% (loss {:.4f}); training with tracking took {:.1f} s\n", 100 * test.accuracy,
             test.loss, training_seconds);

  const auto C = hydra::test_contributions(model, loss, std::as_const(w).view(), data.test,
                                           tracker.hypergradients(), N, 64);
  const auto host = std::as_const(C).to_host();
  const auto mean = hydra::mean_over_test_points(hydra::matrix_view<const float>(host.data(), n, data.test.size()));

  // Ranks by C(i): 1 = most helpful (removing it raises the mean test loss most).
  std::vector<index> by_contribution(static_cast<std::size_t>(n));
  std::iota(by_contribution.begin(), by_contribution.end(), index{0});
  std::stable_sort(by_contribution.begin(), by_contribution.end(),
                   [&](index a, index b) { return mean[static_cast<std::size_t>(a)] > mean[static_cast<std::size_t>(b)]; });
  std::vector<index> rank(static_cast<std::size_t>(n));
  for (index r = 0; r < n; ++r) rank[static_cast<std::size_t>(by_contribution[static_cast<std::size_t>(r)])] = r + 1;
  std::vector<std::vector<paper::results::cell>> rows;
  std::vector<float> images;
  for (index r = 0; r < n; ++r) {
    const index i = tracked[static_cast<std::size_t>(r)];
    const auto label = data.train.label(i);
    rows.push_back({static_cast<double>(i), static_cast<double>(label), std::string(cifar10_classes[static_cast<std::size_t>(label)]),
                    static_cast<double>(mean[static_cast<std::size_t>(r)]), static_cast<double>(rank[static_cast<std::size_t>(r)])});
    const auto first = data.train_pixels.begin() + i * data.train.sample_size();
    images.insert(images.end(), first, first + data.train.sample_size());
  }
  out.table("tracked.csv", {"train_index", "label", "class", "contribution", "rank"}, rows);
  out.npy("contributions.npy", host, {n, data.test.size()});
  out.npy("tracked_images.npy", images, {n, 3, 32, 32});
  const auto buffers = hydra::model_buffers(model);
  out.npy("buffers.npy", buffers, {static_cast<index>(buffers.size())});
  std::vector<std::vector<double>> epochs;
  for (const auto& e : history)
    epochs.push_back(std::vector<double>{static_cast<double>(e.epoch + 1), e.learning_rate, e.training_loss,
                                         e.validation_loss, e.validation_accuracy, e.seconds});
  out.csv("history.csv", {"epoch", "learning_rate", "training_loss", "validation_loss", "validation_accuracy", "seconds"},
          epochs);

  const auto& best = by_contribution.front();
  const auto& worst = by_contribution.back();
  fmt::print("most helpful tracked image: {} ({}), C = {:.3e}; most harmful: {} ({}), C = {:.3e}\n",
             tracked[static_cast<std::size_t>(best)], cifar10_classes[static_cast<std::size_t>(data.train.label(tracked[static_cast<std::size_t>(best)]))],
             mean[static_cast<std::size_t>(best)], tracked[static_cast<std::size_t>(worst)],
             cifar10_classes[static_cast<std::size_t>(data.train.label(tracked[static_cast<std::size_t>(worst)]))],
             mean[static_cast<std::size_t>(worst)]);
  out.set("test_accuracy", test.accuracy);
  out.set("test_loss", test.loss);
  out.set("training_seconds", training_seconds);
  out.set("parameters", P);
  out.set("tracked", n);
  out.finish(data.provenance);
  return 0;
}

template <class Model>
int run_model(const options& o, Model& model, paper::results& out) {
  if (o.method == "exact") return run<hydra::Exact>(o, model, out);
  return run<hydra::HessianFree>(o, model, out);
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"CIFAR-10 end to end: DenseNet-40 or MobileNetV2 by the paper's recipe, HYDRA contributions of "
               "tracked training images to the test set"};
  options o;
  app.add_option("--cifar-dir", o.cifar_dir, "the cifar-10-batches-bin folder of the official binary distribution")
      ->required();
  app.add_option("--out", o.out, "results folder")->capture_default_str();
  app.add_option("--model", o.model, "densenet40 (the paper's) or mobilenetv2")
      ->capture_default_str()
      ->check(CLI::IsMember({"densenet40", "mobilenetv2"}));
  app.add_flag("--paper", o.paper, "the paper's protocol: 40,000 / 10,000 / 10,000 images, 150 epochs, 1% of every "
                                   "class tracked (days on a CPU)");
  app.add_option("--train-size", o.train_size, "training images (a prefix of data_batch_1-4)")->capture_default_str();
  app.add_option("--validation-size", o.validation_size, "validation images (a prefix of data_batch_5)")
      ->capture_default_str();
  app.add_option("--test-size", o.test_size, "test images (a prefix of test_batch)")->capture_default_str();
  app.add_option("--track-per-class", o.track_per_class, "training images tracked per class (the first of each)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--method", o.method, "hessian-free (the paper's) or exact (one HVP per tracked sample per step)")
      ->capture_default_str()
      ->check(CLI::IsMember({"hessian-free", "exact"}));
  app.add_option("--batch-norm", o.batch_norm,
                 "statistics of the attribution passes: running (eval mode, one pass per batch) or batch (exact, one "
                 "backward pass per sample of every batch)")
      ->capture_default_str()
      ->check(CLI::IsMember({"running", "batch"}));
  app.add_option("--seed", o.seed, "initialisation and batch order")->capture_default_str();
  paper::add_recipe_options(app, o.recipe);
  return paper::run_main("paper_cifar10", app, argc, argv, [&] {
    if (o.paper) {
      o.train_size = 40000;
      o.validation_size = 10000;
      o.test_size = 10000;
      o.recipe.epochs = 150;
      o.track_per_class = 40;  // 1 % of the 4,000 images of each class
    }
    paper::results out(o.out, "cifar10");
    out.set("model", o.model);
    out.set("paper", o.paper);
    out.set("train_size", o.train_size);
    out.set("validation_size", o.validation_size);
    out.set("test_size", o.test_size);
    out.set("track_per_class", o.track_per_class);
    out.set("method", o.method);
    out.set("batch_norm", o.batch_norm);
    out.set("seed", static_cast<double>(o.seed));
    out.set("epochs", o.recipe.epochs);
    out.set("batch_size", o.recipe.batch_size);
    out.set("learning_rate", o.recipe.learning_rate);
    out.set("plateau_factor", o.recipe.plateau_factor);
    out.set("plateau_patience", o.recipe.plateau_patience);
    out.set("momentum", o.recipe.momentum);
    out.set("weight_decay", o.recipe.weight_decay);
    if (o.model == "densenet40") {
      hydra::DenseNet40<float> model;
      return run_model(o, model, out);
    }
    hydra::MobileNetV2<float> model;
    return run_model(o, model, out);
  });
}
