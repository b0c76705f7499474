// One Fashion-MNIST-sized training epoch of LeNet-5 on the GPU with hypergradient tracking
// (docs/performance.md, "GPU (hydra::cuda)"): hydra::trainer + hydra::hypergradient_tracker<…,
// HessianFree> on LeNet5<float, cuda>, SoftmaxCrossEntropy, SGD (momentum 0.9, weight decay 2e-5,
// constant η = 0.01), batch 64, one shuffled epoch (drop_last: ⌊N/64⌋ steps).
//
//   BM_CudaLeNetEpoch/tracked:n/samples:N/lazy:L
//     n tracked samples (the training samples 0 … n−1; n = 0: no tracker, training alone, the
//     reference), the first N training samples (N = 60 000: the whole training file; a smaller N
//     is a quick run), L = 1: the tracker's default lazy update (only the rows of tracked samples
//     in the batch are touched), L = 0: the eager update of every tracked row at every step.
//
// Timed (wall time of the stream, from an event before fit() to one after the tracker's
// hypergradients() have been brought to the last step): the whole fit() — batches gathered on
// the host and uploaded, forward and backward passes, the loss read back at every step, the
// optimizer, the tracker's per-sample gradients and state updates — and the final read of the
// tracker's states. Not timed: loading the data (once per process), building the optimizer,
// trainer and tracker (the states' cudaMalloc and zeroing), and re-initialising the parameters
// before each epoch. An untimed two-step run first creates the stream, cuBLAS handle and the
// model's workspace.
//
// Counters: samples/s = 64·⌊N/64⌋ per epoch; s/epoch = seconds per epoch of N samples (the
// benchmark's own time column, in seconds); s/60k = s/epoch scaled to 60 000 samples (equal to
// s/epoch when N = 60 000). The label names the data: the real training file when
// /usr/share/datasets/fashion-mnist/train-{images-idx3,labels-idx1}-ubyte.gz exist (Debian's
// dataset-fashion-mnist, read with hydra's IDX reader; $HYDRA_FASHION_MNIST_DIR names another
// folder), otherwise deterministic synthetic data of
// the same shape (60 000 × 1 × 28 × 28 pixels in [0, 1), 10 classes).

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cuda/device.cuh"
#include "hydra/backend/cuda.cuh"
#include "hydra/core/tensor.hpp"
#include "hydra/data/batch_order.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/data/idx.hpp"
#include "hydra/hypergradient/policy.hpp"
#include "hydra/hypergradient/tracker.hpp"
#include "hydra/nn/lenet.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "hydra/train/trainer.hpp"
#include "support/inputs.hpp"

namespace {

using hydra::index;
using namespace hydra::bench::cuda_bench;
using T = float;
using model_type = hydra::LeNet5<T, device>;
using loss_type = hydra::SoftmaxCrossEntropy<T, device>;
using optimizer_type = hydra::SGD<T, device>;
using tracker_type = hydra::hypergradient_tracker<model_type, loss_type, hydra::HessianFree>;

constexpr index kBatch = 64;
constexpr index kFullEpoch = 60000;
constexpr index kClasses = 10;
constexpr double kLearningRate = 0.01;
constexpr std::uint64_t kSeed = 1;

/// Debian's dataset-fashion-mnist, or $HYDRA_FASHION_MNIST_DIR where the files were carried
/// elsewhere (scripts/gpu-bundle.sh).
std::filesystem::path data_dir() {
  const char* moved = std::getenv("HYDRA_FASHION_MNIST_DIR");
  return moved != nullptr && *moved != '\0' ? moved : "/usr/share/datasets/fashion-mnist";
}

struct training_data {
  hydra::dataset<T> all;
  std::string source;
};

/// The 60 000 training samples, loaded (or generated) once per process.
const training_data& data() {
  static const training_data d = [] {
    const auto dir = data_dir();
    const auto images = dir / "train-images-idx3-ubyte.gz", labels = dir / "train-labels-idx1-ubyte.gz";
    if (std::filesystem::exists(images) && std::filesystem::exists(labels))
      return training_data{hydra::load_idx_dataset<T>(images, labels, T(1) / T(255), kClasses),
                           "Fashion-MNIST (" + dir.string() + ")"};
    std::vector<T> x(static_cast<std::size_t>(kFullEpoch * 28 * 28));
    hydra::bench::fill_pixels(hydra::vector_view<T>{x.data(), static_cast<index>(x.size())}, 2);
    std::vector<hydra::label_type> y(static_cast<std::size_t>(kFullEpoch));
    for (index i = 0; i < kFullEpoch; ++i) y[static_cast<std::size_t>(i)] = static_cast<hydra::label_type>((i * 7) % kClasses);
    return training_data{hydra::dataset<T>({1, 28, 28}, std::move(x), std::move(y), kClasses),
                         "synthetic (no " + dir.string() + ")"};
  }();
  return d;
}

/// Trains `model` from fresh parameters for every step of `order` on `train`, with a tracker of
/// `tracked` samples unless it is empty, and brings the tracker's states to the last step.
/// `timer` (if given) brackets exactly that: fit() and the final hypergradients().
double epoch(model_type& model, loss_type& loss, hydra::vector<T, device>& w, const hydra::dataset<T>& train,
             const hydra::batch_order& order, const std::vector<index>& tracked, bool lazy, stream_timer& timer) {
  model.initialize(w.view(), kSeed);
  optimizer_type optimizer(model.parameter_count(), {.momentum = 0.9, .weight_decay = 2e-5});
  hydra::constant_schedule schedule(kLearningRate);
  hydra::trainer fit(model, loss, optimizer, schedule, {.progress = hydra::progress_mode::never});
  if (tracked.empty()) {
    device::synchronize();
    timer.start();
    fit.fit(w.view(), train, order, nullptr);
    return timer.seconds();
  }
  hydra::tracker_options options;
  options.update = lazy ? hydra::update_mode::lazy : hydra::update_mode::eager;
  tracker_type tracker(model, loss, optimizer, tracked, train.size(), options);
  device::synchronize();
  timer.start();
  fit.fit(w.view(), train, order, nullptr, tracker);
  const auto h = tracker.hypergradients();  // a lazy tracker brings every state to the last step here
  benchmark::DoNotOptimize(h.data);
  return timer.seconds();
}

void BM_CudaLeNetEpoch(benchmark::State& state) {
  if (!require_device(state)) return;
  guarded(state, [&] {
    const index n = state.range(0);
    const index samples = state.range(1);
    const bool lazy = state.range(2) != 0;
    const auto& d = data();
    if (samples < kBatch || samples > d.all.size()) {
      state.SkipWithError(("samples must be in [64, " + std::to_string(d.all.size()) + "]").c_str());
      return;
    }
    if (n > samples) {
      state.SkipWithError("more tracked samples than training samples");
      return;
    }
    const auto train = hydra::split(d.all, 0, samples);
    std::vector<index> tracked(static_cast<std::size_t>(n));
    for (index i = 0; i < n; ++i) tracked[static_cast<std::size_t>(i)] = i;

    model_type model;
    loss_type loss;
    hydra::vector<T, device> w(model.parameter_count());
    stream_timer timer;
    {  // untimed warm-up: two steps on the first 128 samples, tracking 0 and 1
      const auto small = hydra::split(d.all, 0, 2 * kBatch);
      (void)epoch(model, loss, w, small, hydra::batch_order::shuffled(small.size(), kBatch, 1, kSeed), {0, 1}, lazy,
                  timer);
    }
    const auto order = hydra::batch_order::shuffled(train.size(), kBatch, 1, kSeed);
    double total = 0;
    for (auto _ : state) {
      const double seconds = epoch(model, loss, w, train, order, tracked, lazy, timer);
      total += seconds;
      state.SetIterationTime(seconds);
    }
    const double trained = static_cast<double>(order.steps() * kBatch);
    state.SetLabel(d.source);
    state.counters["samples/s"] = hydra::bench::per_second(trained, state.iterations());
    state.counters["s/epoch"] = benchmark::Counter(total, benchmark::Counter::kAvgIterations);
    state.counters["s/60k"] =
        benchmark::Counter(total * static_cast<double>(kFullEpoch) / trained, benchmark::Counter::kAvgIterations);
  });
}

/// Names read "BM_CudaLeNetEpoch/tracked:256/samples:60000/lazy:1/manual_time". One epoch is
/// seconds long, so each case runs a single iteration (Google Benchmark's default minimum time is
/// 0.5 s); --benchmark_repetitions=3 gives a spread.
void epochs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"tracked", "samples", "lazy"})->UseManualTime()->Unit(benchmark::kSecond)->Iterations(1);
  b->Args({0, kFullEpoch, 1});  // training alone: the reference
  for (index n : {index{64}, index{256}}) b->Args({n, kFullEpoch, 1})->Args({n, kFullEpoch, 0});
  b->Args({64, 6400, 1});  // a quick run: 100 steps
}

BENCHMARK(BM_CudaLeNetEpoch)->Apply(epochs);

} // namespace
