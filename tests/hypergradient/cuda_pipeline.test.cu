// The whole pipeline on hydra::cuda against hydra::cpu on identical inputs: the same w0, data,
// batch order and schedule on both backends, then training (w_T and the per-epoch history), the
// hypergradient trackers (Exact; HessianFree lazy and eager; a tracked subset read mid-training and
// at the end, and every sample, Exact chunked one direction at a time), contributions (test
// gradients in column chunks, and one GEMM over per-sample gradients), evaluation (loss, accuracy,
// logits) and NaN reporting. Models: a tanh MLP, softmax regression, a linear model with squared
// error, and the paper's LeNet-5 on a few 28 × 28 samples; float and double.
//
// Without a device every test case but the first says "[skipped] no CUDA device: <reason>" and
// returns (CTest's SKIP_REGULAR_EXPRESSION); the first checks the host-side behaviour of the device
// types, which needs no device.
// Built a second time as test_hypergradient_cuda_pipeline_emulated, with the backend's kernel
// bodies and runtime calls emulated on the host (docs/backend.md, "Host emulation"), so all of it
// runs on machines without a GPU too.

#include <doctest/doctest.h>

#include <hydra/backend/cuda.cuh>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "hydra/attribution/contributions.hpp"
#include "hydra/backend/concepts.hpp"
#include "hydra/backend/cpu.hpp"
#include "hydra/hypergradient/tracker.hpp"
#include "hydra/nn/concepts.hpp"
#include "hydra/nn/lenet.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/models.hpp"
#include "hydra/optim/schedules.hpp"
#include "hydra/optim/sgd.hpp"
#include "hydra/train/batch.hpp"
#include "hydra/train/trainer.hpp"
#include "support/classification_data.hpp"
#include "support/finite_difference.hpp"
#include "support/skip.hpp"

namespace hydra::test {
namespace {

using device = cuda;
bool device_available() { return cuda::device_count() > 0; }

#define HYDRA_SKIP_WITHOUT_DEVICE()                                              \
  do {                                                                           \
    if (!device_available()) {                                                   \
      HYDRA_TEST_SKIP("no CUDA device: " << hydra::cuda::no_device_reason());      \
      return;                                                                    \
    }                                                                            \
  } while (false)

// ---- tolerances ------------------------------------------------------------------------------
// Both backends evaluate the same formulas in the same order of operations per step; what differs
// is only the order of the summations inside GEMMs and reductions (cuBLAS tiles and split-k,
// tree-shaped sums) and where an FMA contracts a multiply-add. Each such difference is a rounding
// error of a few ulps per operation, and the runs below are 4 to 12 steps of moderate learning
// rates, so the amplification over the run stays small. Measured on the cpu, the float32 run of
// each problem against its float64 run (every operation and every input rounded differently, a
// far larger perturbation than a reordering) differs by at most 8e-7 relative in every quantity
// compared here: the amplification is a few units, and the backends agree to a few hundred ulps
// of the working precision at most.
//   weights: w_T, norm-wise relative. Double 1e-10 (about 5e5 ulps of headroom), float 1e-4 (about
//            800 ulps).
//   states:  every quantity derived from w_T or from the recurrence (hypergradients, momentum
//            derivatives, contributions, logits, losses), worst relative error over the rows,
//            each row against its own norm. Double 1e-9, float 1e-3: one decade more than the
//            weights, for the extra products (Hessian-vector products, N/|B|·g, the test-gradient
//            GEMM) and for rows whose norm is smaller than the terms summed into them.
//   ties:    a test prediction whose top two logits are closer than this (relative) may flip
//            between backends; accuracy must agree up to the number of such points (none in
//            practice, so accuracy is equal).
template <class T>
struct tolerance;
template <>
struct tolerance<double> {
  static constexpr double weights = 1e-10;
  static constexpr double states = 1e-9;
  static constexpr double ties = 1e-9;
};
template <>
struct tolerance<float> {
  static constexpr double weights = 1e-4;
  static constexpr double states = 1e-3;
  static constexpr double ties = 1e-3;
};

// ---- host copies and comparisons -------------------------------------------------------------

/// Row by row through copy_to_host (so any stride works; the states may be in device memory).
template <class B, Scalar T>
std::vector<T> host_copy(matrix_view<const T> m) {
  std::vector<T> out(static_cast<std::size_t>(m.rows * m.cols));
  for (index r = 0; r < m.rows; ++r) B::copy_to_host(m.row(r), m.cols, out.data() + r * m.cols);
  return out;
}

template <Scalar T>
std::vector<double> as_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

/// The largest per-row relative difference ‖a_r − b_r‖ / ‖b_r‖ (a row of zeros in both counts 0).
template <Scalar T>
double worst_row_error(const std::vector<T>& a, const std::vector<T>& b, index cols) {
  REQUIRE(a.size() == b.size());
  REQUIRE(cols > 0);
  REQUIRE(b.size() % static_cast<std::size_t>(cols) == 0);
  double worst = 0;
  for (std::size_t first = 0; first < b.size(); first += static_cast<std::size_t>(cols)) {
    const auto begin = static_cast<std::ptrdiff_t>(first), end = static_cast<std::ptrdiff_t>(first) + cols;
    worst = std::max(worst, relative_error(std::vector<double>(a.begin() + begin, a.begin() + end),
                                           std::vector<double>(b.begin() + begin, b.begin() + end)));
  }
  return worst;
}

double relative_difference(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }

/// Rows of `logits` (classes columns) whose two largest entries are within `tol` (relative).
template <Scalar T>
index near_ties(const std::vector<T>& logits, index classes, double tol) {
  index count = 0;
  for (std::size_t first = 0; first < logits.size(); first += static_cast<std::size_t>(classes)) {
    double top = -std::numeric_limits<double>::infinity(), second = top;
    for (index c = 0; c < classes; ++c) {
      const double z = logits[first + static_cast<std::size_t>(c)];
      if (z > top) {
        second = top;
        top = z;
      } else if (z > second) {
        second = z;
      }
    }
    if (top - second <= tol * std::max(1.0, std::abs(top))) ++count;
  }
  return count;
}

// ---- one run of the pipeline -----------------------------------------------------------------

template <Scalar T>
struct problem {
  dataset<T> train;
  dataset<T> test;
  batch_order order;
  std::vector<T> w0;
  double momentum;
  double weight_decay;
  double eta0;                    // step_schedule: eta0, multiplied by gamma at each milestone epoch
  std::vector<index> milestones;
  double gamma;
  std::vector<index> subset;      // the tracked subset (all samples are tracked by a second tracker)
  index read_at;                  // the step after which the subset's hypergradients are read mid-run
};

/// Everything one run produces, copied to the host.
template <Scalar T>
struct run_result {
  std::vector<T> w;                 // w_T
  std::vector<T> subset_h, subset_dv, all_h, all_dv;
  std::vector<T> mid_h;             // subset hypergradients after step read_at
  std::vector<T> contributions;     // subset × test, test_contributions in chunks of 3 test points
  std::vector<T> all_contributions; // all × test, contributions<B> on per_sample_gradients(test)
  std::vector<T> mean_contributions;// mean_over_test_points of `contributions`
  std::vector<T> test_logits;       // test × classes at w_T (forward in chunks of 3)
  evaluation train_eval, test_eval;
  std::vector<epoch_report> history;
};

/// Reads a tracker's hypergradients (bringing lazy states up to date) after one chosen step.
template <Scalar T, class B, class Tracker>
struct mid_training_read {
  Tracker& tracker;
  index at;
  std::vector<T> seen;
  void after_update(const step_context<T, B>& ctx) {
    if (ctx.step == at) seen = host_copy<B>(tracker.hypergradients());
  }
};

std::vector<index> every_sample(index n) {
  std::vector<index> all(static_cast<std::size_t>(n));
  for (index i = 0; i < n; ++i) all[static_cast<std::size_t>(i)] = i;
  return all;
}

/// Trains from pb.w0 on backend B with a subset tracker, an all-samples tracker and a mid-run
/// reader attached, then computes contributions, logits and evaluations at w_T.
template <class B, class Policy, class Setup, Scalar T>
run_result<T> run_pipeline(const problem<T>& pb, update_mode mode) {
  auto model = Setup::template model<T, B>();
  auto loss = Setup::template loss<T, B>();
  using M = decltype(model);
  using L = decltype(loss);
  const index P = model.parameter_count(), N = pb.train.size();
  REQUIRE(static_cast<index>(pb.w0.size()) == P);

  auto w = vector<T, B>::from_host(pb.w0);
  SGD<T, B> optimizer(P, {.momentum = pb.momentum, .weight_decay = pb.weight_decay});
  step_schedule schedule(pb.eta0, pb.milestones, pb.gamma);
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never, .evaluation_batch_size = 3});
  hypergradient_tracker<M, L, Policy> subset(model, loss, optimizer, pb.subset, N, {.update = mode});
  // Exact: one direction per Hessian-vector-product call (the chunked path).
  hypergradient_tracker<M, L, Policy> all(model, loss, optimizer, every_sample(N), N,
                                          {.hvp_memory_bytes = 1, .update = mode});
  mid_training_read<T, B, hypergradient_tracker<M, L, Policy>> reader{subset, pb.read_at, {}};

  run_result<T> r;
  r.history = fit.fit(w.view(), pb.train, pb.order, &pb.test, subset, all, reader);
  r.mid_h = std::move(reader.seen);
  const vector_view<const T> wT = std::as_const(w).view();
  r.w = w.to_host();
  r.subset_h = host_copy<B>(subset.hypergradients());
  r.subset_dv = host_copy<B>(subset.momentum_derivatives());
  r.all_h = host_copy<B>(all.hypergradients());
  r.all_dv = host_copy<B>(all.momentum_derivatives());

  const auto C = test_contributions(model, loss, wT, pb.test, subset.hypergradients(), N, 3);
  r.contributions = C.to_host();
  const matrix_view<const T> C_host(r.contributions.data(), C.rows(), C.cols(), C.cols());
  r.mean_contributions = mean_over_test_points(C_host);
  const auto G = per_sample_gradients(model, loss, wT, pb.test, 4);
  r.all_contributions = contributions<B>(all.hypergradients(), G.view(), N).to_host();

  matrix<T, B> logits(pb.test.size(), model.output_size());
  device_batch<T, B> batch;
  for_each_chunk(pb.test, 3, batch, [&](index first, index count) {
    model.forward(wT, batch.features(), logits.view().row_block(first, count));
  });
  r.test_logits = logits.to_host();
  r.train_eval = fit.evaluate(wT, pb.train);
  r.test_eval = fit.evaluate(wT, pb.test);
  return r;
}

/// Every output of a device run against the cpu run of the same problem.
template <Scalar T>
void check_same_run(const run_result<T>& dev, const run_result<T>& host, const std::vector<index>& subset, index P,
                    index classes) {
  using tol = tolerance<T>;
  CHECK(relative_error(as_double(dev.w), as_double(host.w)) <= tol::weights);

  CHECK(worst_row_error(dev.subset_h, host.subset_h, P) <= tol::states);
  CHECK(worst_row_error(dev.subset_dv, host.subset_dv, P) <= tol::states);
  CHECK(worst_row_error(dev.all_h, host.all_h, P) <= tol::states);
  CHECK(worst_row_error(dev.all_dv, host.all_dv, P) <= tol::states);
  REQUIRE(!host.mid_h.empty());
  CHECK(worst_row_error(dev.mid_h, host.mid_h, P) <= tol::states);

  const index M = static_cast<index>(host.test_logits.size()) / classes;
  CHECK(worst_row_error(dev.contributions, host.contributions, M) <= tol::states);
  CHECK(worst_row_error(dev.all_contributions, host.all_contributions, M) <= tol::states);
  CHECK(relative_error(as_double(dev.mean_contributions), as_double(host.mean_contributions)) <= tol::states);
  // The subset's contributions are rows of the all-samples contributions (the same hypergradients
  // from two trackers, the test gradients formed two ways): consistent on the device by itself.
  for (std::size_t r = 0; r < subset.size(); ++r) {
    CAPTURE(subset[r]);
    const auto row = [&](const std::vector<T>& c, index k) {
      return std::vector<T>(c.begin() + k * M, c.begin() + (k + 1) * M);
    };
    CHECK(worst_row_error(row(dev.contributions, static_cast<index>(r)), row(dev.all_contributions, subset[r]), M) <=
          tol::states);
  }

  CHECK(worst_row_error(dev.test_logits, host.test_logits, classes) <= tol::states);
  const index ties = near_ties(host.test_logits, classes, tol::ties);
  CHECK(dev.test_eval.samples == host.test_eval.samples);
  CHECK(dev.train_eval.samples == host.train_eval.samples);
  CHECK(relative_difference(dev.test_eval.loss, host.test_eval.loss) <= tol::states);
  CHECK(relative_difference(dev.train_eval.loss, host.train_eval.loss) <= tol::states);
  CHECK(std::abs(dev.test_eval.accuracy - host.test_eval.accuracy) * static_cast<double>(host.test_eval.samples) <=
        static_cast<double>(ties) + 0.5);
  // The training set's logits are not recorded; its accuracy must agree within one sample in
  // float (a near tie there is as unlikely as on the test set) and exactly in double.
  CHECK(std::abs(dev.train_eval.accuracy - host.train_eval.accuracy) * static_cast<double>(host.train_eval.samples) <=
        (std::is_same_v<T, double> ? 0.5 : 1.5));

  REQUIRE(dev.history.size() == host.history.size());
  for (std::size_t e = 0; e < host.history.size(); ++e) {
    CAPTURE(e);
    CHECK(dev.history[e].epoch == host.history[e].epoch);
    CHECK(dev.history[e].steps == host.history[e].steps);
    CHECK(dev.history[e].learning_rate == host.history[e].learning_rate);
    CHECK(relative_difference(dev.history[e].training_loss, host.history[e].training_loss) <= tol::states);
    CHECK(relative_difference(dev.history[e].validation_loss, host.history[e].validation_loss) <= tol::states);
    CHECK(std::abs(dev.history[e].validation_accuracy - host.history[e].validation_accuracy) *
              static_cast<double>(host.test_eval.samples) <=
          (std::is_same_v<T, double> ? 0.5 : 1.5));
  }
}

/// The whole comparison for one model: Exact (eager), HessianFree lazy and eager, each on the cpu
/// and on the device.
template <class Setup, Scalar T>
void check_pipeline(const problem<T>& pb) {
  auto probe = Setup::template model<T, cpu>();
  const index P = probe.parameter_count(), classes = probe.output_size();

  const auto host_exact = run_pipeline<cpu, Exact, Setup>(pb, update_mode::eager);
  const auto host_lazy = run_pipeline<cpu, HessianFree, Setup>(pb, update_mode::lazy);
  const auto host_eager = run_pipeline<cpu, HessianFree, Setup>(pb, update_mode::eager);
  const auto dev_exact = run_pipeline<device, Exact, Setup>(pb, update_mode::eager);
  const auto dev_lazy = run_pipeline<device, HessianFree, Setup>(pb, update_mode::lazy);
  const auto dev_eager = run_pipeline<device, HessianFree, Setup>(pb, update_mode::eager);
  {
    INFO("Exact (eager)");
    check_same_run(dev_exact, host_exact, pb.subset, P, classes);
  }
  {
    INFO("HessianFree, lazy");
    check_same_run(dev_lazy, host_lazy, pb.subset, P, classes);
  }
  {
    INFO("HessianFree, eager");
    check_same_run(dev_eager, host_eager, pb.subset, P, classes);
  }
  // The Hessian term is live on the device as on the cpu: on these curved losses the two policies
  // differ by far more than the tolerance.
  CHECK(relative_error(as_double(host_lazy.all_h), as_double(host_exact.all_h)) > 1e-3);
  CHECK(relative_error(as_double(dev_lazy.all_h), as_double(dev_exact.all_h)) > 1e-3);
  CHECK(relative_error(as_double(dev_eager.all_h), as_double(dev_exact.all_h)) > 1e-3);
  // Lazy and eager HessianFree agree on the device (same recurrence regrouped).
  CHECK(worst_row_error(dev_lazy.all_h, dev_eager.all_h, P) <= tolerance<T>::states);
  CHECK(worst_row_error(dev_lazy.all_dv, dev_eager.all_dv, P) <= tolerance<T>::states);
  // The trackers never touch w, and the device trainer is deterministic (cuBLAS on one stream,
  // reductions without atomics): three runs, the same bits.
  CHECK(dev_lazy.w == dev_exact.w);
  CHECK(dev_eager.w == dev_exact.w);
  CHECK(host_lazy.w == host_exact.w);
}

template <class Setup, Scalar T>
std::vector<T> initial_parameters(std::uint64_t seed) {
  auto model = Setup::template model<T, cpu>();
  std::vector<T> w(static_cast<std::size_t>(model.parameter_count()));
  model.initialize(vector_view<T>(w.data(), model.parameter_count()), seed);
  return w;
}

// ---- the models ------------------------------------------------------------------------------

struct mlp_setup {
  template <Scalar T, class B>
  static Mlp<T, B> model() {
    return Mlp<T, B>(3, {5}, 3, activation::tanh);
  }
  template <Scalar T, class B>
  static SoftmaxCrossEntropy<T, B> loss() {
    return {};
  }
};

struct softmax_setup {
  template <Scalar T, class B>
  static SoftmaxRegression<T, B> model() {
    return SoftmaxRegression<T, B>(4, 3);
  }
  template <Scalar T, class B>
  static SoftmaxCrossEntropy<T, B> loss() {
    return {};
  }
};

struct linear_setup {
  template <Scalar T, class B>
  static LinearRegression<T, B> model() {
    return LinearRegression<T, B>(3, 2);
  }
  template <Scalar T, class B>
  static MeanSquaredError<T, B> loss() {
    return {};
  }
};

struct lenet_setup {
  template <Scalar T, class B>
  static LeNet5<T, B> model() {
    return LeNet5<T, B>();
  }
  template <Scalar T, class B>
  static SoftmaxCrossEntropy<T, B> loss() {
    return {};
  }
};

template <Scalar T>
dataset<T> images(index n, unsigned seed) {
  const auto x = normal_vector(static_cast<std::size_t>(n * 784), seed);
  std::vector<label_type> y(static_cast<std::size_t>(n));
  for (index i = 0; i < n; ++i) y[static_cast<std::size_t>(i)] = static_cast<label_type>((i * 7 + seed) % 10);
  return dataset<T>({1, 28, 28}, std::vector<T>(x.begin(), x.end()), std::move(y), 10);
}

} // namespace

// ---- host-side checks: no device needed ------------------------------------------------------

TEST_CASE("hydra::cuda types satisfy the concepts and refuse bad requests before touching a device") {
  static_assert(Backend<cuda>);
  static_assert(!host_accessible_v<cuda>);
  static_assert(check_model<Mlp<double, cuda>>() && check_model<LeNet5<float, cuda>>());
  static_assert(check_loss<SoftmaxCrossEntropy<float, cuda>>() && check_loss<MeanSquaredError<double, cuda>>());
  CHECK(std::string(cuda::name) == "cuda");
  // The reason is given exactly when there is no device.
  CHECK((cuda::device_count() == 0) == !cuda::no_device_reason().empty());

  using dmatrix = matrix<double, cuda>;
  using fmatrix = matrix<float, cuda>;
  using dvector = vector<double, cuda>;
  CHECK_THROWS_AS(dmatrix(-1, 3), invalid_argument);
  CHECK_THROWS_AS(fmatrix(2, -3), invalid_argument);
  CHECK_THROWS_AS(dmatrix(-2, -3), invalid_argument);  // the product is positive; still refused
  CHECK_THROWS_AS(dvector(-4), invalid_argument);
  const std::vector<double> five(5, 1.0);
  CHECK_THROWS_AS(dmatrix::from_host(five, 2, 3), shape_error);
  // Empty containers allocate nothing, so they exist without a device.
  const dmatrix empty(0, 7);
  CHECK(empty.rows() == 0);
  CHECK(empty.cols() == 7);
  CHECK(empty.data() == nullptr);

  // Models, losses and trackers are host objects until they hold parameters or states.
  Mlp<double, cuda> model(3, {5}, 3, activation::tanh);
  SoftmaxCrossEntropy<double, cuda> loss;
  CHECK(model.parameter_count() == Mlp<double>(3, {5}, 3, activation::tanh).parameter_count());
  CHECK(model.parameter_count() == 38);
  CHECK(LeNet5<float, cuda>().parameter_count() == 61706);
  using free_t = hypergradient_tracker<Mlp<double, cuda>, SoftmaxCrossEntropy<double, cuda>, HessianFree>;
  using exact_t = hypergradient_tracker<Mlp<double, cuda>, SoftmaxCrossEntropy<double, cuda>, Exact>;
  const auto free_tracker = [&](std::vector<index> tracked, tracker_options options) {
    free_t t(model, loss, std::move(tracked), 10, 0.9, 0.0, std::move(options));
    return t.tracked_count();
  };
  const auto exact_tracker = [&](std::vector<index> tracked, tracker_options options) {
    exact_t t(model, loss, std::move(tracked), 10, 0.9, 0.0, std::move(options));
    return t.tracked_count();
  };
  CHECK_THROWS_WITH_AS((free_tracker(std::vector<index>{0, 10}, {})), doctest::Contains("tracked[1] = 10 is outside"),
                       invalid_argument);
  CHECK_THROWS_WITH_AS((free_tracker(std::vector<index>{3, 1, 3}, {})),
                       doctest::Contains("training sample 3 is tracked twice"), invalid_argument);
  CHECK_THROWS_WITH_AS((free_tracker(std::vector<index>{0, 1, 2}, {.state_memory_limit = 1000})),
                       doctest::Contains("needs 1824 bytes"), allocation_error);  // 2 · 3 samples · 38 · 8 bytes
  CHECK_THROWS_WITH_AS((free_tracker(std::vector<index>{0}, {.state_directory = "/tmp"})),
                       doctest::Contains("needs a host-accessible backend"), invalid_argument);
  CHECK_THROWS_WITH_AS((exact_tracker(std::vector<index>{0}, {.update = update_mode::lazy})),
                       doctest::Contains("lazy updating applies to the Hessian-free variant only"), invalid_argument);
}

// ---- the pipeline on the device against the cpu ---------------------------------------------

TEST_CASE_TEMPLATE("cuda pipeline equals cpu: tanh MLP, momentum, weight decay, step schedule", T, float, double) {
  HYDRA_SKIP_WITHOUT_DEVICE();
  problem<T> pb{classification_data<T>(12, 3, 3, 1),
                classification_data<T>(7, 3, 3, 2, 3, 0),
                batch_order::shuffled(12, 4, 4, 5),  // 12 steps
                initial_parameters<mlp_setup, T>(3),
                0.9,
                0.01,
                0.3,
                {1, 3},
                0.5,
                {0, 4, 7, 11},
                5};
  check_pipeline<mlp_setup>(pb);
}

TEST_CASE_TEMPLATE("cuda pipeline equals cpu: softmax regression, momentum, weight decay", T, float, double) {
  HYDRA_SKIP_WITHOUT_DEVICE();
  problem<T> pb{classification_data<T>(10, 4, 3, 2),
                classification_data<T>(5, 4, 3, 7, 2, 1),
                batch_order::shuffled(10, 5, 4, 8),  // 8 steps
                initial_parameters<softmax_setup, T>(4),
                0.9,
                0.05,
                0.4,
                {2},
                0.5,
                {1, 2, 9},
                3};
  check_pipeline<softmax_setup>(pb);
}

TEST_CASE_TEMPLATE("cuda pipeline equals cpu: linear model, squared error, partial last batches", T, float, double) {
  HYDRA_SKIP_WITHOUT_DEVICE();
  problem<T> pb{classification_data<T>(11, 3, 2, 12),
                classification_data<T>(4, 3, 2, 13),
                batch_order::shuffled(11, 4, 3, 1, /*drop_last=*/false),  // 3 steps per epoch, the last of 3
                initial_parameters<linear_setup, T>(5),
                0.5,
                0.1,
                0.2,
                {1, 2},
                0.7,
                {0, 10},
                4};
  check_pipeline<linear_setup>(pb);
}

TEST_CASE_TEMPLATE("cuda pipeline equals cpu: LeNet-5 on 28 x 28 inputs", T, float, double) {
  HYDRA_SKIP_WITHOUT_DEVICE();
  problem<T> pb{images<T>(6, 61),
                images<T>(4, 62),
                batch_order::shuffled(6, 3, 2, 4),  // 4 steps
                initial_parameters<lenet_setup, T>(6),
                0.9,
                0.01,
                0.1,
                {1},
                0.5,
                {1, 4},
                1};
  check_pipeline<lenet_setup>(pb);
}

// ---- NaN reporting ---------------------------------------------------------------------------

namespace {
/// The what() of the numerical_error a run throws (or a note that it threw none). Either a learning
/// rate and weight decay that blow the tracked states up (the tracker's report), or a NaN in sample
/// 4's features (the trainer's report: the loss of its batch). From w0 = 0 every batch below holds
/// one sample of each class, so the mean gradient is exactly 0 on both backends (softmax(0) = ½
/// exactly, ReLU(0) = 0) and w stays 0: the training loss stays finite and only the tracked sample's
/// own gradient term, N/|B|·g_4, enters the states; at its next step λ·∇ overflows.
template <class B, class Policy, Scalar T>
std::string numerical_error_of(update_mode mode, bool nan_in_data) {
  Mlp<T, B> model(3, {4}, 2);
  SoftmaxCrossEntropy<T, B> loss;
  auto x = normal_vector(18, 4);
  if (nan_in_data) x[13] = std::numeric_limits<double>::quiet_NaN();  // sample 4, feature 1
  std::vector<label_type> y{0, 1, 1, 0, 1, 0};
  const dataset<T> data({3}, std::vector<T>(x.begin(), x.end()), std::move(y), 2);
  auto w = vector<T, B>(model.parameter_count());  // w0 = 0
  // λ·η overflows T within two steps of the tracked sample's first batch.
  const double decay = nan_in_data ? 0.0 : (std::is_same_v<T, double> ? 1e300 : 1e30);
  SGD<T, B> optimizer(model.parameter_count(), {.momentum = 0.0, .weight_decay = decay});
  constant_schedule schedule(nan_in_data ? 0.1 : 1e10);
  trainer fit(model, loss, optimizer, schedule, {.progress = progress_mode::never});
  hypergradient_tracker<Mlp<T, B>, SoftmaxCrossEntropy<T, B>, Policy> tracker(model, loss, optimizer, {4}, data.size(),
                                                                              {.update = mode});
  const auto order = batch_order::sequential(6, 2, 3);
  try {
    fit.fit(w.view(), data, order, nullptr, tracker);
  } catch (const numerical_error& e) {
    return e.what();
  }
  return "no numerical_error";
}

/// The message from "at step" on (the trainer prints the non-finite loss itself first, whose sign
/// of NaN is not portable).
std::string from_step(const std::string& message) {
  const auto at = message.find(" at step ");
  return at == std::string::npos ? message : message.substr(at);
}
} // namespace

TEST_CASE_TEMPLATE("cuda pipeline: NaN and Inf are reported as numerical_error naming the step, as on cpu", T, float,
                   double) {
  HYDRA_SKIP_WITHOUT_DEVICE();
  struct variant {
    const char* name;
    std::string host, dev;
  };
  const std::vector<variant> blown_states{
      {"HessianFree lazy", numerical_error_of<cpu, HessianFree, T>(update_mode::lazy, false),
       numerical_error_of<device, HessianFree, T>(update_mode::lazy, false)},
      {"HessianFree eager", numerical_error_of<cpu, HessianFree, T>(update_mode::eager, false),
       numerical_error_of<device, HessianFree, T>(update_mode::eager, false)},
      {"Exact", numerical_error_of<cpu, Exact, T>(update_mode::eager, false),
       numerical_error_of<device, Exact, T>(update_mode::eager, false)},
  };
  for (const auto& v : blown_states) {
    CAPTURE(v.name);
    CAPTURE(v.host);
    CAPTURE(v.dev);
    CHECK(v.host.find("hypergradient_tracker: the hypergradient of training sample 4 became NaN or Inf at step") !=
          std::string::npos);
    CHECK(v.dev == v.host);
  }
  // Sample 4 is in the batches of steps 2, 5, 8: the eager update overflows at step 3 (λ·∇ of
  // every state, every step); the lazy one applies the overflowed transfer when the sample is next
  // in a batch, at step 5.
  CHECK(from_step(blown_states[0].host) == " at step 5");
  CHECK(from_step(blown_states[1].host) == " at step 3");
  CHECK(from_step(blown_states[2].host) == " at step 3");
  const std::vector<variant> nan_data{
      {"HessianFree lazy", numerical_error_of<cpu, HessianFree, T>(update_mode::lazy, true),
       numerical_error_of<device, HessianFree, T>(update_mode::lazy, true)},
      {"Exact", numerical_error_of<cpu, Exact, T>(update_mode::eager, true),
       numerical_error_of<device, Exact, T>(update_mode::eager, true)},
  };
  for (const auto& v : nan_data) {
    CAPTURE(v.name);
    CAPTURE(v.host);
    CAPTURE(v.dev);
    // The trainer's divergence_error: the step, and the batch's sample whose loss is not finite.
    CHECK(v.host.find("hydra::trainer: training diverged at step") != std::string::npos);
    CHECK(from_step(v.host) == " at step 2 (epoch 0): the batch's mean loss is nan; its worst sample is 4 (loss nan); "
                               "lower the learning rate or check the data");
    CHECK(v.dev == v.host);
  }
}

} // namespace hydra::test
