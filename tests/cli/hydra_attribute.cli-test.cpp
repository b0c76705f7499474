// hydra-attribute end to end: NumPy files in, NumPy files out, checked against independent
// retraining (float64, exact), plus its one-line errors for every kind of bad input, and
// --device: refused where it cannot run, and on a machine with a GPU the same files as the CPU.

#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <fstream>
#include <sstream>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/core/io/directory_lock.hpp"
#include "hydra/data/npy.hpp"
#include "hydra/influence/gradient_similarity.hpp"
#include "hydra/nn/densenet.hpp"
#include "hydra/nn/loss.hpp"
#include "hydra/nn/mobilenet.hpp"
#include "hydra/nn/model_spec.hpp"
#include "hydra/nn/models.hpp"
#include "hypergradient/retraining.hpp"
#include "cli/cli_support.hpp"
#include "support/finite_difference.hpp"

#ifndef HYDRA_ATTRIBUTE_PATH
#error "HYDRA_ATTRIBUTE_PATH must name the hydra-attribute binary"
#endif
#ifndef HYDRA_ATTRIBUTE_HAS_CUDA
#error "HYDRA_ATTRIBUTE_HAS_CUDA must say whether hydra-attribute was built with CUDA (1) or without (0)"
#endif

namespace hydra::test {
namespace {
namespace fs = std::filesystem;

} // namespace

TEST_CASE("hydra-attribute float64 exact: hypergradients and contributions agree with retraining") {
  fixture f;
  const auto order = batch_order::shuffled(f.N, 4, 3, 5);
  std::vector<std::int64_t> table(order.table().begin(), order.table().end());
  save_npy(f.dir / "order.npy", table, {order.steps(), 4});
  std::vector<double> rates;
  for (index t = 0; t < order.steps(); ++t) rates.push_back(0.3 * std::pow(0.9, static_cast<double>(t)));
  save_npy(f.dir / "lr.npy", rates, {order.steps()});
  Mlp<double> model(3, {5}, 3, activation::tanh);
  const index P = model.parameter_count();
  std::vector<double> w0(static_cast<std::size_t>(P));
  model.initialize(vector_view<double>(w0.data(), P), 3);
  save_npy(f.dir / "w0.npy", w0, {P});
  const std::vector<std::int64_t> tracked{7, 0, 11};
  save_npy(f.dir / "track.npy", tracked, {3});

  const auto r = run_tool(f.dir, f.data_args() + " --model mlp:3,5,3:tanh --init " + f.path("w0.npy") + " --order " +
                                     f.path("order.npy") + " --lr-file " + f.path("lr.npy") +
                                     " --momentum 0.9 --weight-decay 0.01 --track " + f.path("track.npy") +
                                     " --method exact --precision float64 --out " + f.path("out"));
  INFO(r.err);
  REQUIRE(r.status == 0);

  const auto weights = load_npy_features<double>(f.dir / "out/weights.npy");
  const auto hyper = load_npy_features<double>(f.dir / "out/hypergradients.npy");
  const auto contrib = load_npy_features<double>(f.dir / "out/contributions.npy");
  const auto written = load_npy_indices(f.dir / "out/tracked.npy");
  CHECK(weights.shape == std::vector<index>{P});
  CHECK(hyper.shape == std::vector<index>{3, P});
  CHECK(contrib.shape == std::vector<index>{3, f.M});
  CHECK(written.data == std::vector<index>{7, 0, 11});
  CHECK(read_npy_header(f.dir / "out/hypergradients.npy").descr == "<f8");

  const dataset<double> train({3}, f.x, std::vector<label_type>(f.y.begin(), f.y.end()), 3);
  SoftmaxCrossEntropy<double> loss;
  const sgd_run run{0.9, 0.01, rates};
  CHECK(relative_error(weights.data, retrain(model, loss, train, order, w0, run, 0, 0.0)) <= 1e-13);
  for (std::size_t k = 0; k < tracked.size(); ++k) {
    const auto reference = retraining_derivative(model, loss, train, order, w0, run, tracked[k], 1e-3);
    const std::vector<double> row(hyper.data.begin() + static_cast<std::ptrdiff_t>(k) * P,
                                  hyper.data.begin() + static_cast<std::ptrdiff_t>(k + 1) * P);
    CHECK(relative_error(row, reference) <= 1e-6);
    for (index j = 0; j < f.M; ++j) {  // C(i, j) = −(1/N) ∇ℓ(test_j, w_T) · dw_T/dε_i, with a plain dot product
      label_type yj = static_cast<label_type>(f.yt[static_cast<std::size_t>(j)]);
      std::vector<double> g(static_cast<std::size_t>(P));
      model.gradient(vector_view<const double>(weights.data.data(), P),
                     matrix_view<const double>(f.xt.data() + j * f.D, 1, f.D), {&yj, {}}, loss,
                     vector_view<double>(g.data(), P));
      double dot = 0;
      for (index q = 0; q < P; ++q) dot += g[static_cast<std::size_t>(q)] * row[static_cast<std::size_t>(q)];
      CHECK(contrib.data[k * static_cast<std::size_t>(f.M) + static_cast<std::size_t>(j)] ==
            doctest::Approx(-dot / static_cast<double>(f.N)).epsilon(1e-12));
    }
  }
}

TEST_CASE("hydra-attribute --method influence: C_IF against a Hessian formed and solved here") {
  fixture f;
  // softmax:3,3 (12 parameters) with weight decay 0.05, so the objective's Hessian is positive definite.
  const auto r = run_tool(f.dir, f.data_args() + " --model softmax:3,3 --epochs 4 --batch-size 4 --lr 0.2" +
                                     " --weight-decay 0.05 --method influence --ihvp explicit --precision float64" +
                                     " --out " + f.path("out"));
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK_FALSE(fs::exists(f.dir / "out/hypergradients.npy"));
  const auto weights = load_npy_features<double>(f.dir / "out/weights.npy");
  const auto contrib = load_npy_features<double>(f.dir / "out/contributions.npy");
  REQUIRE(contrib.shape == std::vector<index>{f.N, f.M});
  const index P = 12;
  REQUIRE(weights.shape == std::vector<index>{P});

  // The reference: H of (1/N)Σℓ_i + (λ/2)‖w‖² by central differences of the mean gradient (error
  // ~1e-10 relative at h = 1e-5), solved by Gaussian elimination with partial pivoting written here.
  SoftmaxRegression<double> model(3, 3);
  SoftmaxCrossEntropy<double> loss;
  auto gradient_of = [&](const std::vector<double>& x, const std::vector<std::int64_t>& y, index rows,
                         const std::vector<double>& w) {
    std::vector<label_type> labels(y.begin(), y.end());
    std::vector<double> g(static_cast<std::size_t>(P));
    model.gradient(vector_view<const double>(w.data(), P), matrix_view<const double>(x.data(), rows, f.D),
                   {labels.data(), {}}, loss, vector_view<double>(g.data(), P));
    return g;
  };
  auto objective_gradient = [&](const std::vector<double>& w) {
    auto g = gradient_of(f.x, f.y, f.N, w);
    for (index q = 0; q < P; ++q) g[static_cast<std::size_t>(q)] += 0.05 * w[static_cast<std::size_t>(q)];
    return g;
  };
  std::vector<double> H(static_cast<std::size_t>(P * P));
  for (index c = 0; c < P; ++c) {
    auto up = weights.data, down = weights.data;
    up[static_cast<std::size_t>(c)] += 1e-5;
    down[static_cast<std::size_t>(c)] -= 1e-5;
    const auto gu = objective_gradient(up), gd = objective_gradient(down);
    for (index q = 0; q < P; ++q) H[static_cast<std::size_t>(q * P + c)] = (gu[static_cast<std::size_t>(q)] - gd[static_cast<std::size_t>(q)]) / 2e-5;
  }
  auto solve = [&](std::vector<double> A, std::vector<double> b) {
    for (index k = 0; k < P; ++k) {
      index pivot = k;
      for (index q = k + 1; q < P; ++q)
        if (std::abs(A[static_cast<std::size_t>(q * P + k)]) > std::abs(A[static_cast<std::size_t>(pivot * P + k)])) pivot = q;
      for (index c = 0; c < P; ++c) std::swap(A[static_cast<std::size_t>(k * P + c)], A[static_cast<std::size_t>(pivot * P + c)]);
      std::swap(b[static_cast<std::size_t>(k)], b[static_cast<std::size_t>(pivot)]);
      for (index q = k + 1; q < P; ++q) {
        const double m = A[static_cast<std::size_t>(q * P + k)] / A[static_cast<std::size_t>(k * P + k)];
        for (index c = k; c < P; ++c) A[static_cast<std::size_t>(q * P + c)] -= m * A[static_cast<std::size_t>(k * P + c)];
        b[static_cast<std::size_t>(q)] -= m * b[static_cast<std::size_t>(k)];
      }
    }
    for (index k = P - 1; k >= 0; --k) {
      for (index c = k + 1; c < P; ++c) b[static_cast<std::size_t>(k)] -= A[static_cast<std::size_t>(k * P + c)] * b[static_cast<std::size_t>(c)];
      b[static_cast<std::size_t>(k)] /= A[static_cast<std::size_t>(k * P + k)];
    }
    return b;
  };
  std::vector<double> expected, got(contrib.data.begin(), contrib.data.end());
  for (index i = 0; i < f.N; ++i) {
    const auto s_i = solve(H, gradient_of({f.x.begin() + i * f.D, f.x.begin() + (i + 1) * f.D}, {f.y[static_cast<std::size_t>(i)]}, 1, weights.data));
    for (index j = 0; j < f.M; ++j) {
      const auto g_j = gradient_of({f.xt.begin() + j * f.D, f.xt.begin() + (j + 1) * f.D}, {f.yt[static_cast<std::size_t>(j)]}, 1, weights.data);
      double dot = 0;
      for (index q = 0; q < P; ++q) dot += g_j[static_cast<std::size_t>(q)] * s_i[static_cast<std::size_t>(q)];
      expected.push_back(dot / static_cast<double>(f.N));  // (1/N)·∇ℓ_testᵀ H⁻¹ ∇ℓ_i: H symmetric
    }
  }
  CHECK(relative_error(got, expected) <= 1e-7);

  // Conjugate gradient to a tight tolerance gives the same contributions.
  const auto cg = run_tool(f.dir, f.data_args() + " --model softmax:3,3 --epochs 4 --batch-size 4 --lr 0.2" +
                                      " --weight-decay 0.05 --method influence --ihvp cg --cg-tol 1e-12 --precision float64" +
                                      " --out " + f.path("cg"));
  INFO(cg.err);
  REQUIRE(cg.status == 0);
  CHECK(relative_error(load_npy_features<double>(f.dir / "cg/contributions.npy").data, got) <= 1e-9);

  // The explicit method refuses models above its size limit with a one-line reason.
  const auto big = run_tool(f.dir, f.data_args() + " --model mlp:3,1000,3 --batch-size 4 --method influence --ihvp explicit --out " +
                                       f.path("big"));
  CHECK(big.status != 0);
  CHECK_MESSAGE(big.err.find("explicit") != std::string::npos, big.err);
  CHECK_MESSAGE(big.err.find("7003") != std::string::npos, big.err);  // |w| = 3·1000 + 1000 + 1000·3 + 3
}

TEST_CASE("hydra-attribute --method tracin, grad-dot, grad-cos: the library's baselines on the run's parameters") {
  fixture f;
  // 4 epochs of 3 steps (N = 12, batches of 4) along a known order with decaying rates, so that
  // the test can retrain to every checkpoint itself.
  const auto order = batch_order::shuffled(f.N, 4, 4, 9);
  std::vector<std::int64_t> table(order.table().begin(), order.table().end());
  save_npy(f.dir / "order.npy", table, {order.steps(), 4});
  std::vector<double> rates;
  for (index t = 0; t < order.steps(); ++t) rates.push_back(0.3 * std::pow(0.85, static_cast<double>(t)));
  save_npy(f.dir / "lr.npy", rates, {order.steps()});
  Mlp<double> model(3, {5}, 3, activation::tanh);
  const index P = model.parameter_count();
  std::vector<double> w0(static_cast<std::size_t>(P));
  model.initialize(vector_view<double>(w0.data(), P), 4);
  save_npy(f.dir / "w0.npy", w0, {P});
  const std::vector<std::int64_t> track{5, 0, 11, 3};
  save_npy(f.dir / "track.npy", track, {4});
  const double momentum = 0.9;
  const auto common = f.data_args() + " --model mlp:3,5,3:tanh --init " + f.path("w0.npy") + " --order " +
                      f.path("order.npy") + " --lr-file " + f.path("lr.npy") +
                      " --momentum 0.9 --weight-decay 0.01 --track " + f.path("track.npy") + " --precision float64";
  auto run_method = [&](const std::string& args, const std::string& out) {
    const auto r = run_tool(f.dir, common + args + " --out " + f.path(out));
    INFO(args);
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK_FALSE(fs::exists(f.dir / out / "hypergradients.npy"));
    CHECK(load_npy_indices(f.dir / out / "tracked.npy").data == std::vector<index>{5, 0, 11, 3});
    const auto C = load_npy_features<double>(f.dir / out / "contributions.npy");
    CHECK(C.shape == std::vector<index>{4, f.M});
    return C.data;
  };

  const dataset<double> train({3}, f.x, std::vector<label_type>(f.y.begin(), f.y.end()), 3);
  const dataset<double> test({3}, f.xt, std::vector<label_type>(f.yt.begin(), f.yt.end()), 3);
  SoftmaxCrossEntropy<double> loss;
  const sgd_run run{momentum, 0.01, rates};
  const std::vector<index> tracked(track.begin(), track.end());
  // w after the first `steps` steps, by the test's own SGD.
  auto parameters_after = [&](index steps) {
    const std::vector<index> prefix(order.table().begin(), order.table().begin() + steps * 4);
    return retrain(model, loss, train, batch_order::from_table(prefix, steps, 4, f.N), w0, run, 0, 0.0);
  };
  const auto w_T = parameters_after(order.steps());
  const vector_view<const double> w_T_view(w_T.data(), P);

  const auto dot = run_method(" --method grad-dot", "dot");
  CHECK(relative_error(load_npy_features<double>(f.dir / "dot/weights.npy").data, w_T) <= 1e-13);
  CHECK(relative_error(dot, grad_dot(model, loss, w_T_view, train, tracked, test).to_host()) <= 1e-12);
  const auto cos = run_method(" --method grad-cos", "cos");
  CHECK(relative_error(cos, grad_cos(model, loss, w_T_view, train, tracked, test).to_host()) <= 1e-12);

  // --tracin-every 3 over 4 epochs: w after epoch 3 (step 9) closing 3 epochs, and w_T closing
  // the 1 left; weight η_c·K_c/(|B|(1 − μ)), η_c the mean rate over the steps the interval spans.
  const auto tracin_3 = run_method(" --method tracin --tracin-every 3", "tracin3");
  auto mean_rate = [&](index first, index last) {
    double s = 0;
    for (index t = first; t < last; ++t) s += rates[static_cast<std::size_t>(t)];
    return s / static_cast<double>(last - first);
  };
  const auto w_9 = parameters_after(9);
  const std::vector<tracin_checkpoint<double>> checkpoints{
      {9, vector_view<const double>(w_9.data(), P), mean_rate(0, 9) * 3 / (4 * (1 - momentum))},
      {12, w_T_view, mean_rate(9, 12) * 1 / (4 * (1 - momentum))}};
  CHECK(relative_error(tracin_3, tracin(model, loss, std::span<const tracin_checkpoint<double>>(checkpoints), train,
                                        tracked, test)
                                     .to_host()) <= 1e-12);
  // The default, a checkpoint every epoch: four terms, not the same array.
  const auto tracin_1 = run_method(" --method tracin", "tracin1");
  CHECK(relative_error(tracin_1, tracin_3) >= 1e-3);
  // One checkpoint (K ≥ the epochs) is w_T closing all 4 epochs: Grad-Dot scaled by N·η̄·4/(|B|(1 − μ)).
  const auto tracin_all = run_method(" --method tracin --tracin-every 7", "tracin7");
  std::vector<double> scaled = dot;
  for (double& c : scaled) c *= static_cast<double>(f.N) * mean_rate(0, 12) * 4 / (4 * (1 - momentum));
  CHECK(relative_error(tracin_all, scaled) <= 1e-12);

  // What does not apply to these methods is refused in one line, before training.
  auto expect_error = [&](const std::string& args, const std::string& needle) {
    CAPTURE(args);
    check_refusal(run_tool(f.dir, common + args + " --out " + f.path("bad")), 1, needle);
    CHECK_FALSE(fs::exists(f.dir / "bad/contributions.npy"));
  };
  expect_error(" --method grad-dot --tracin-every 2", "--tracin-every applies to --method tracin only");
  expect_error(" --tracin-every 2", "--tracin-every applies to --method tracin only");
  expect_error(" --method tracin --tracin-every 0", "--tracin-every");
  expect_error(" --method tracin --lean", "--lean needs --method hessian-free or exact (--method tracin tracks nothing)");
  expect_error(" --method grad-cos --lean", "--lean needs --method hessian-free or exact");
  expect_error(" --method grad-dot --update eager", "--update applies to --method hessian-free or exact");
  expect_error(" --method grad-cos --state-dir " + f.path("states"), "--state-dir applies to --method hessian-free or exact");
  expect_error(" --method tracin --checkpoint " + f.path("ck"), "--method tracin cannot be combined with --checkpoint or --resume");
  expect_error(" --method tracin --resume " + f.path("ck"), "--method tracin cannot be combined with --checkpoint or --resume");
  expect_error(" --method tracin-cp", "--method: tracin-cp not in");
  save_npy(f.dir / "track_twice.npy", std::vector<std::int64_t>{1, 3, 1}, {3});
  const auto twice = run_tool(f.dir, f.data_args() + " --model mlp:3,5,3:tanh --batch-size 4 --method grad-dot --track " +
                                         f.path("track_twice.npy") + " --out " + f.path("bad"));
  CHECK(twice.status != 0);
  CHECK_MESSAGE(twice.err.find("training sample 1 is tracked twice") != std::string::npos, twice.err);
}

TEST_CASE("hydra-attribute defaults: float32, hessian-free, every sample tracked") {
  fixture f;
  const auto r = run_tool(f.dir, f.data_args() + " --model softmax:3,3 --epochs 2 --batch-size 4 --out " + f.path("out"));
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(read_npy_header(f.dir / "out/hypergradients.npy").descr == "<f4");
  CHECK(read_npy_header(f.dir / "out/hypergradients.npy").shape == std::vector<index>{f.N, 12});
  CHECK(read_npy_header(f.dir / "out/contributions.npy").shape == std::vector<index>{f.N, f.M});
  CHECK(load_npy_indices(f.dir / "out/tracked.npy").data.size() == static_cast<std::size_t>(f.N));
}

TEST_CASE("hydra-attribute --model lenet5 takes N x 1 x 28 x 28 inputs, or the same values flattened") {
  fixture f;
  const index n = 4, m = 2;
  const auto images = normal_vector(static_cast<std::size_t>(n * 784), 3);
  const auto test_images = normal_vector(static_cast<std::size_t>(m * 784), 4);
  save_npy(f.dir / "img.npy", images, {n, 1, 28, 28});
  save_npy(f.dir / "img_flat.npy", images, {n, 784});
  save_npy(f.dir / "img_y.npy", std::vector<std::int64_t>{3, 1, 4, 1}, {n});
  save_npy(f.dir / "timg.npy", test_images, {m, 1, 28, 28});
  save_npy(f.dir / "timg_y.npy", std::vector<std::int64_t>{5, 9}, {m});
  const std::string test_args = " --test-x " + f.path("timg.npy") + " --test-y " + f.path("timg_y.npy");
  const auto r = run_tool(f.dir, "--train-x " + f.path("img.npy") + " --train-y " + f.path("img_y.npy") + test_args +
                                     " --model lenet5 --batch-size 2 --epochs 1 --out " + f.path("out"));
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(read_npy_header(f.dir / "out/hypergradients.npy").shape == std::vector<index>{n, 61706});
  CHECK(read_npy_header(f.dir / "out/contributions.npy").shape == std::vector<index>{n, m});
  // The same values flattened, N x 784 in the row-major 1 x 28 x 28 order: the same run. A shape
  // of the same size that is not the model's (no channel axis) is refused, not reinterpreted.
  const auto flat = run_tool(f.dir, "--train-x " + f.path("img_flat.npy") + " --train-y " + f.path("img_y.npy") +
                                        test_args + " --model lenet5 --batch-size 2 --epochs 1 --out " + f.path("flat"));
  INFO(flat.err);
  REQUIRE(flat.status == 0);
  for (const char* name : {"weights.npy", "hypergradients.npy", "contributions.npy"}) {
    CAPTURE(name);
    CHECK(text_of(f.dir / "flat" / name) == text_of(f.dir / "out" / name));
  }
  save_npy(f.dir / "img_3d.npy", images, {n, 28, 28});
  const auto bad = run_tool(f.dir, "--train-x " + f.path("img_3d.npy") + " --train-y " + f.path("img_y.npy") +
                                       test_args + " --model lenet5 --batch-size 2 --out " + f.path("bad"));
  check_refusal(bad, 1,
                "--train-x has samples of shape 28 x 28 but --model lenet5 takes N x 1 x 28 x 28 inputs (or N x 784, "
                "the same values flattened)");
}

namespace {
std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}
} // namespace

TEST_CASE("hydra-attribute --update, --lean and --state-dir: the same attribution by other means") {
  fixture f;
  const auto common = f.data_args() + " --model mlp:3,6,3:tanh --epochs 4 --batch-size 5 --lr 0.2 --momentum 0.9" +
                      " --weight-decay 0.01 --precision float64";
  const auto lazy = run_tool(f.dir, common + " --out " + f.path("lazy"));
  INFO(lazy.err);
  REQUIRE(lazy.status == 0);
  const auto eager = run_tool(f.dir, common + " --update eager --out " + f.path("eager"));
  REQUIRE(eager.status == 0);
  const auto H = load_npy_features<double>(f.dir / "lazy/hypergradients.npy").data;
  const auto C = load_npy_features<double>(f.dir / "lazy/contributions.npy").data;
  // Lazy regroups eager's products into 2 x 2 transfers: equal to rounding (docs/hypergradient.md).
  CHECK(relative_error(H, load_npy_features<double>(f.dir / "eager/hypergradients.npy").data) <= 1e-12);
  CHECK(file_bytes(f.dir / "lazy/weights.npy") == file_bytes(f.dir / "eager/weights.npy"));

  const auto lean = run_tool(f.dir, common + " --lean --out " + f.path("lean"));
  INFO(lean.err);
  REQUIRE(lean.status == 0);
  CHECK_FALSE(fs::exists(f.dir / "lean/hypergradients.npy"));
  CHECK(relative_error(load_npy_features<double>(f.dir / "lean/contributions.npy").data, C) <= 1e-10);
  CHECK(file_bytes(f.dir / "lean/weights.npy") == file_bytes(f.dir / "lazy/weights.npy"));

  // --method exact --lean: every sample's exact contributions by the adjoint sweep, against the
  // forward Exact tracker's (all samples tracked, the default --track all).
  const auto exact = run_tool(f.dir, common + " --method exact --out " + f.path("exact"));
  INFO(exact.err);
  REQUIRE(exact.status == 0);
  const auto exact_lean = run_tool(f.dir, common + " --method exact --lean --out " + f.path("exact_lean"));
  INFO(exact_lean.err);
  REQUIRE(exact_lean.status == 0);
  CHECK_FALSE(fs::exists(f.dir / "exact_lean/hypergradients.npy"));
  const auto C_exact = load_npy_features<double>(f.dir / "exact/contributions.npy").data;
  CHECK(relative_error(load_npy_features<double>(f.dir / "exact_lean/contributions.npy").data, C_exact) <= 1e-10);
  CHECK(relative_error(C_exact, C) >= 1e-3);  // the Hessian term matters here: the comparison is telling
  CHECK(file_bytes(f.dir / "exact_lean/weights.npy") == file_bytes(f.dir / "exact/weights.npy"));
  // Checkpoints every 3 steps, the rest recomputed: the same bytes.
  const auto recomputed = run_tool(f.dir, common + " --method exact --lean --adjoint-checkpoint-every 3 --out " +
                                              f.path("exact_lean_k"));
  REQUIRE(recomputed.status == 0);
  CHECK(file_bytes(f.dir / "exact_lean_k/contributions.npy") == file_bytes(f.dir / "exact_lean/contributions.npy"));
  // --track restricts the rows written, not what is computed.
  save_npy(f.dir / "track_4_0.npy", std::vector<std::int64_t>{4, 0}, {2});
  const auto some = run_tool(f.dir, common + " --method exact --lean --track " + f.path("track_4_0.npy") + " --out " +
                                        f.path("exact_lean_some"));
  REQUIRE(some.status == 0);
  const auto C_some = load_npy_features<double>(f.dir / "exact_lean_some/contributions.npy").data;
  const auto C_all = load_npy_features<double>(f.dir / "exact_lean/contributions.npy").data;
  const std::size_t M = C_some.size() / 2;
  CHECK(std::vector<double>(C_some.begin(), C_some.begin() + static_cast<std::ptrdiff_t>(M)) ==
        std::vector<double>(C_all.begin() + static_cast<std::ptrdiff_t>(4 * M), C_all.begin() + static_cast<std::ptrdiff_t>(5 * M)));

  // Every step's parameters in a mapped file instead of memory: the same bytes.
  const auto exact_mapped = run_tool(f.dir, common + " --method exact --lean --state-dir " + f.path("trajectory") +
                                                " --out " + f.path("exact_lean_mapped"));
  REQUIRE(exact_mapped.status == 0);
  CHECK(file_bytes(f.dir / "exact_lean_mapped/contributions.npy") == file_bytes(f.dir / "exact_lean/contributions.npy"));
  CHECK(fs::is_empty(f.dir / "trajectory"));  // the scratch file is gone

  const auto mapped = run_tool(f.dir, common + " --state-dir " + f.path("states") + " --out " + f.path("mapped"));
  REQUIRE(mapped.status == 0);
  CHECK(file_bytes(f.dir / "mapped/hypergradients.npy") == file_bytes(f.dir / "lazy/hypergradients.npy"));
  CHECK(fs::is_empty(f.dir / "states"));  // the scratch file is gone

  auto expect_error = [&](const std::string& args, const std::string& needle) {
    CAPTURE(args);
    check_refusal(run_tool(f.dir, common + args + " --out " + f.path("bad")), 1, needle);
  };
  expect_error(" --method exact --update lazy", "--update lazy applies to --method hessian-free only");
  expect_error(" --method influence --lean", "--lean needs --method hessian-free or exact");
  expect_error(" --method exact --lean --adjoint-checkpoint-every 4 --state-dir " + f.path("states"),
               "two answers to the same question");
  expect_error(" --adjoint-checkpoint-every 3", "--adjoint-checkpoint-every applies to --method exact --lean only");
  expect_error(" --method exact --lean --adjoint-checkpoint-every -2", "--adjoint-checkpoint-every must be >= 0");
  save_npy(f.dir / "track_twice.npy", std::vector<std::int64_t>{1, 3, 1}, {3});
  expect_error(" --method exact --lean --track " + f.path("track_twice.npy"), "training sample 1 is tracked twice");
  expect_error(" --lean --checkpoint " + f.path("ck"), "--lean cannot be combined with --checkpoint");
  expect_error(" --checkpoint-every 3", "--checkpoint-every needs --checkpoint");
  expect_error(" --update sometimes", "--update");
  expect_error(" --resume " + f.path("nowhere"), "checkpoint.hydra");
}

TEST_CASE("hydra-attribute killed mid-run (SIGKILL) and resumed writes the same bytes as an uninterrupted run") {
  fixture f;
  // Long enough (2,000 steps, a checkpoint every 20) that the kill lands mid-run.
  const index n = 400, d = 8;
  save_npy(f.dir / "xl.npy", normal_vector(static_cast<std::size_t>(n * d), 7), {n, d});
  std::vector<std::int64_t> labels;
  for (index i = 0; i < n; ++i) labels.push_back((i * 7 + 1) % 3);
  save_npy(f.dir / "yl.npy", labels, {n});
  std::vector<std::int64_t> tracked;
  for (std::int64_t i = 0; i < n; i += 9) tracked.push_back(i);
  save_npy(f.dir / "tl.npy", tracked, {static_cast<index>(tracked.size())});
  const std::string args = "--train-x " + f.path("xl.npy") + " --train-y " + f.path("yl.npy") + " --test-x " +
                           f.path("xt.npy") + " --test-y " + f.path("yt.npy") + " --model mlp:8,16,3:tanh" +
                           " --epochs 50 --batch-size 10 --lr 0.05 --momentum 0.9 --weight-decay 0.001 --track " +
                           f.path("tl.npy") + " --precision float64";
  // xt has 3 features; give the test set 8.
  save_npy(f.dir / "xt.npy", normal_vector(static_cast<std::size_t>(f.M * d), 8), {f.M, d});

  const auto whole = run_tool(f.dir, args + " --out " + f.path("whole"));
  INFO(whole.err);
  REQUIRE(whole.status == 0);

  // The interrupted run: started, killed with SIGKILL once a checkpoint exists.
  const auto checkpoint = f.dir / "ck";
  // Spawned directly (no shell in between), so that the signal reaches hydra-attribute itself.
  std::vector<std::string> words{attribute_binary()};
  std::istringstream split(args + " --checkpoint " + checkpoint.string() + " --checkpoint-every 20 --out " +
                           f.path("killed"));
  for (std::string word; split >> word;) words.push_back(word);
  std::vector<char*> argv;
  for (auto& word : words) argv.push_back(word.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t quiet;
  ::posix_spawn_file_actions_init(&quiet);
  ::posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
  ::posix_spawn_file_actions_addopen(&quiet, 2, "/dev/null", O_WRONLY, 0);
  pid_t child = 0;
  REQUIRE(::posix_spawn(&child, words[0].c_str(), &quiet, nullptr, argv.data(), environ) == 0);
  ::posix_spawn_file_actions_destroy(&quiet);
  int status = 0;
  bool exited = false;
  for (int polls = 0; polls < 60000 && !fs::exists(checkpoint / "checkpoint.hydra"); ++polls) {
    if (::waitpid(child, &status, WNOHANG) == child) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE_FALSE(exited);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ::kill(child, SIGKILL);
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE_MESSAGE(WIFSIGNALED(status), "hydra-attribute finished before it could be killed; lengthen the run");
  CHECK_FALSE(fs::exists(f.dir / "killed/weights.npy"));
  // The killed run left its fingerprint and its lock file; the lock died with it.
  CHECK(fs::exists(checkpoint / "hydra-attribute.fingerprint"));
  CHECK(fs::exists(checkpoint / "hydra.lock"));

  // The checkpoint of this run, resumed with another setting: refused before any training, naming
  // the first flag that differs. Nothing is written, so the checkpoint stays resumable.
  const auto checkpoint_bytes = file_bytes(checkpoint / "checkpoint.hydra");
  auto with = [&](const std::string& from, const std::string& to) {
    auto changed = args;
    const auto at = changed.find(from);
    REQUIRE(at != std::string::npos);
    return changed.replace(at, from.size(), to);
  };
  auto expect_refused = [&](const std::string& changed_args, const std::string& needle) {
    CAPTURE(changed_args);
    const auto r = run_tool(f.dir, changed_args + " --resume " + checkpoint.string() + " --out " + f.path("refused"));
    CHECK(r.status != 0);
    CHECK_MESSAGE(r.err.find("--resume " + checkpoint.string() + ": the checkpoint was made with " + needle) !=
                      std::string::npos,
                  r.err);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK_FALSE(fs::exists(f.dir / "refused"));
  };
  // Another training set of the same shape and labels: only its content hash tells.
  save_npy(f.dir / "xl2.npy", normal_vector(static_cast<std::size_t>(n * d), 9), {n, d});
  expect_refused(with("xl.npy", "xl2.npy"), "a different --train-x (content hash 0x");
  expect_refused(with("--lr 0.05", "--lr 0.04"), "--lr 0.05, this run has --lr 0.04");
  expect_refused(with("mlp:8,16,3:tanh", "mlp:8,16,3:relu"),  // the same parameter count
                 "--model mlp:8,16,3:tanh, this run has --model mlp:8,16,3:relu");
  std::vector<std::int64_t> other_tracked{1, 2, 3};
  save_npy(f.dir / "tl2.npy", other_tracked, {3});
  expect_refused(with("tl.npy", "tl2.npy"), "a different --track (content hash 0x");
  expect_refused(with("--track " + f.path("tl.npy"), "--track all"),
                 "--track (content hash 0x");  // ... this run has --track all
  expect_refused(args + " --seed 3", "--seed 0, this run has --seed 3");
  expect_refused(with("--weight-decay 0.001", "--weight-decay 0.002"),
                 "--weight-decay 0.001, this run has --weight-decay 0.002");
  expect_refused(args + " --update eager", "--update lazy, this run has --update eager");
  expect_refused(with("--precision float64", "--precision float32"),
                 "--precision float64, this run has --precision float32");
  CHECK(file_bytes(checkpoint / "checkpoint.hydra") == checkpoint_bytes);

  // A checkpoint directory of an older hydra-attribute, without a fingerprint: refused too.
  const auto old = f.dir / "ck_old";
  fs::create_directories(old);
  fs::copy_file(checkpoint / "checkpoint.hydra", old / "checkpoint.hydra");
  const auto unfingerprinted = run_tool(f.dir, args + " --resume " + old.string() + " --out " + f.path("refused"));
  CHECK(unfingerprinted.status != 0);
  CHECK_MESSAGE(unfingerprinted.err.find("--resume " + old.string() + ": the checkpoint has no run fingerprint") !=
                    std::string::npos,
                unfingerprinted.err);

  const auto resumed = run_tool(f.dir, args + " --resume " + checkpoint.string() + " --out " + f.path("resumed"));
  INFO(resumed.err);
  REQUIRE(resumed.status == 0);
  for (const char* name : {"weights.npy", "hypergradients.npy", "contributions.npy", "tracked.npy"}) {
    CAPTURE(name);
    CHECK(file_bytes(f.dir / "resumed" / name) == file_bytes(f.dir / "whole" / name));
  }
  CHECK_FALSE(fs::exists(checkpoint / "hydra.lock"));  // released at the end of the run
}

TEST_CASE("hydra-attribute --checkpoint, --resume and --state-dir: one run per directory, a fresh run's fingerprint") {
  fixture f;
  const auto common = f.data_args() + " --model mlp:3,5,3:tanh --epochs 2 --batch-size 4 --lr 0.1 --precision float64";
  const auto other_lr = f.data_args() + " --model mlp:3,5,3:tanh --epochs 2 --batch-size 4 --lr 0.2 --precision float64";
  const auto ck = f.dir / "ck";
  const auto first = run_tool(f.dir, common + " --checkpoint " + ck.string() + " --out " + f.path("first"));
  INFO(first.err);
  REQUIRE(first.status == 0);
  CHECK(fs::exists(ck / "checkpoint.hydra"));
  CHECK(fs::exists(ck / "hydra-attribute.fingerprint"));
  CHECK_FALSE(fs::exists(ck / "hydra.lock"));

  // Held by a live process (this one, through the library's lock): every run that would write there
  // is refused at once, naming the directory and the PID.
  const std::string pid = std::to_string(static_cast<long>(::getpid()));
  {
    directory_lock held(ck);
    for (const std::string flag : {"--resume", "--checkpoint"}) {
      CAPTURE(flag);
      const auto r = run_tool(f.dir, common + " " + flag + " " + ck.string() + " --out " + f.path("second"));
      CHECK(r.status != 0);
      CHECK_MESSAGE(r.err.find(flag + " " + ck.string() + ": the directory is in use by process " + pid) !=
                        std::string::npos,
                    r.err);
      CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    }
    const auto states = f.dir / "states";
    fs::create_directories(states);
    directory_lock held_states(states);
    const auto r = run_tool(f.dir, common + " --state-dir " + states.string() + " --out " + f.path("second"));
    CHECK(r.status != 0);
    CHECK_MESSAGE(r.err.find("--state-dir " + states.string() + ": the directory is in use by process " + pid) !=
                      std::string::npos,
                  r.err);
    CHECK_FALSE(fs::exists(f.dir / "second"));
  }

  // Released: the finished run's checkpoint resumes (nothing left to train) with the same results.
  const auto again = run_tool(f.dir, common + " --resume " + ck.string() + " --out " + f.path("again"));
  INFO(again.err);
  REQUIRE(again.status == 0);
  for (const char* name : {"weights.npy", "hypergradients.npy", "contributions.npy"}) {
    CAPTURE(name);
    CHECK(file_bytes(f.dir / "again" / name) == file_bytes(f.dir / "first" / name));
  }

  // A fresh run into the directory replaces the checkpoint and the fingerprint: the old run's
  // flags are refused afterwards, the new run's accepted.
  const auto fresh = run_tool(f.dir, other_lr + " --checkpoint " + ck.string() + " --out " + f.path("fresh"));
  INFO(fresh.err);
  REQUIRE(fresh.status == 0);
  const auto old_flags = run_tool(f.dir, common + " --resume " + ck.string() + " --out " + f.path("bad"));
  CHECK(old_flags.status != 0);
  CHECK_MESSAGE(old_flags.err.find("the checkpoint was made with --lr 0.2, this run has --lr 0.1") != std::string::npos,
                old_flags.err);
  const auto new_flags = run_tool(f.dir, other_lr + " --resume " + ck.string() + " --out " + f.path("fresh2"));
  INFO(new_flags.err);
  CHECK(new_flags.status == 0);
  CHECK(file_bytes(f.dir / "fresh2/weights.npy") == file_bytes(f.dir / "fresh/weights.npy"));
}

// ---- models with batch norms: densenet40 and mobilenetv2 ---------------------------------------

namespace {
/// The channel counts of a network's batch norms in layer order (PyTorch's module order), written
/// out here from the architectures' descriptions, not taken from hydra: DenseNet-BC (Huang et al.
/// 2017: depth 40, growth 12, bottlenecks of 4 × growth, compression 0.5, a stem of 2 × growth
/// channels, each layer's output concatenated behind its input) and torchvision's MobileNetV2
/// (its (t, c, n, s) table, a stem of 32 channels, a last 1 × 1 convolution to 1280).
std::vector<index> densenet40_batch_norms() {
  const index growth = 12, per_block = (40 - 4) / 6;
  std::vector<index> channels;
  index c = 2 * growth;
  for (int block = 0; block < 3; ++block) {
    for (index l = 0; l < per_block; ++l) {
      channels.push_back(c + l * growth);  // before the 1 x 1 bottleneck: everything so far
      channels.push_back(4 * growth);      // before the 3 x 3 convolution
    }
    c += per_block * growth;
    if (block < 2) {
      channels.push_back(c);  // the transition's
      c /= 2;
    }
  }
  channels.push_back(c);  // the head's
  return channels;
}

std::vector<index> mobilenetv2_batch_norms() {
  struct setting {
    index t, c, n;
  };
  const setting table[] = {{1, 16, 1}, {6, 24, 2}, {6, 32, 3}, {6, 64, 4}, {6, 96, 3}, {6, 160, 3}, {6, 320, 1}};
  std::vector<index> channels{32};  // the stem's
  index in = 32;
  for (const auto& row : table)
    for (index i = 0; i < row.n; ++i) {
      if (row.t != 1) channels.push_back(in * row.t);  // the expansion's
      channels.push_back(in * row.t);                  // the depthwise convolution's
      channels.push_back(row.c);                       // the projection's
      in = row.c;
    }
  channels.push_back(1280);
  return channels;
}

/// The length of buffers.npy: running_mean and running_var of every batch norm.
index buffer_count(const std::vector<index>& channels) {
  index n = 0;
  for (const index c : channels) n += 2 * c;
  return n;
}

/// Where each batch norm's running_mean starts in buffers.npy (its running_var follows it).
std::vector<index> buffer_offsets(const std::vector<index>& channels) {
  std::vector<index> offsets;
  index at = 0;
  for (const index c : channels) {
    offsets.push_back(at);
    at += 2 * c;
  }
  return offsets;
}

/// The running estimates PyTorch's training step leaves in a batch norm right behind the network's
/// stem (a 3 x 3 convolution without bias, padding 1, of 3 x 32 x 32 images, PyTorch's weight layout
/// [out][in][kh][kw] at the front of w): running = 0.9·running + 0.1·(the batch's statistic), the
/// variance unbiased (n/(n − 1), n = batch × pixels). `before` and the result hold the `out`
/// channels' means, then their variances.
std::vector<double> stem_batch_norm_step(const std::vector<double>& before, const std::vector<double>& images,
                                         std::span<const std::int64_t> batch, const std::vector<double>& w, index out,
                                         index stride) {
  const index C = 3, side = 32, k = 3, pad = 1, out_side = (side + 2 * pad - k) / stride + 1;
  std::vector<double> after(static_cast<std::size_t>(2 * out)), values;
  const auto at = [](const std::vector<double>& v, index i) { return v[static_cast<std::size_t>(i)]; };
  for (index o = 0; o < out; ++o) {
    values.clear();
    for (const auto b : batch)
      for (index y = 0; y < out_side; ++y)
        for (index x = 0; x < out_side; ++x) {
          double sum = 0;
          for (index c = 0; c < C; ++c)
            for (index i = 0; i < k; ++i)
              for (index j = 0; j < k; ++j) {
                const index yy = y * stride - pad + i, xx = x * stride - pad + j;
                if (yy >= 0 && yy < side && xx >= 0 && xx < side)
                  sum += at(w, ((o * C + c) * k + i) * k + j) * at(images, ((b * C + c) * side + yy) * side + xx);
              }
          values.push_back(sum);
        }
    const auto n = static_cast<double>(values.size());
    double mean = 0, squares = 0;
    for (const double v : values) mean += v / n;
    for (const double v : values) squares += (v - mean) * (v - mean);
    after[static_cast<std::size_t>(o)] = 0.9 * at(before, o) + 0.1 * mean;
    after[static_cast<std::size_t>(out + o)] = 0.9 * at(before, out + o) + 0.1 * squares / (n - 1);
  }
  return after;
}

/// The first `out` channels' running_mean, then running_var, of the batch norm of `channels`
/// channels whose buffers start at `offset`.
std::vector<double> first_channels(const std::vector<double>& buffers, index offset, index channels, index out) {
  std::vector<double> part(buffers.begin() + offset, buffers.begin() + offset + out);
  part.insert(part.end(), buffers.begin() + offset + channels, buffers.begin() + offset + channels + out);
  return part;
}

/// Images and labels for the batch-norm models: 8 training images saved N x 3 x 32 x 32, 3 test
/// images saved flat (N x 3072, the same row-major order), the batches of one epoch (2 steps of
/// 4), of its first step alone, and of two epochs, and two tracked samples (5 in step 0, 1 in step 1).
struct image_data {
  const fixture& f;
  index N = 8, M = 3;
  std::vector<double> x = normal_vector(static_cast<std::size_t>(8 * 3072), 21);
  std::vector<double> xt = normal_vector(static_cast<std::size_t>(3 * 3072), 22);
  std::vector<std::int64_t> order{5, 0, 7, 2, 1, 6, 3, 4, 3, 7, 0, 5, 2, 4, 6, 1};
  explicit image_data(const fixture& fx) : f(fx) {
    save_npy(f.dir / "ix.npy", x, {N, 3, 32, 32});
    save_npy(f.dir / "iy.npy", std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7}, {N});
    save_npy(f.dir / "ixt.npy", xt, {M, 3072});
    save_npy(f.dir / "iyt.npy", std::vector<std::int64_t>{1, 2, 3}, {M});
    save_npy(f.dir / "ixt0.npy", std::vector<double>(xt.begin(), xt.begin() + 3072), {1, 3072});
    save_npy(f.dir / "iyt0.npy", std::vector<std::int64_t>{1}, {1});
    save_npy(f.dir / "order1.npy", std::vector<std::int64_t>(order.begin(), order.begin() + 4), {1, 4});
    save_npy(f.dir / "order2.npy", std::vector<std::int64_t>(order.begin(), order.begin() + 8), {2, 4});
    save_npy(f.dir / "order4.npy", order, {4, 4});
    save_npy(f.dir / "itrack.npy", std::vector<std::int64_t>{5, 1}, {2});
  }
  [[nodiscard]] std::span<const std::int64_t> batch(index t) const { return {order.data() + 4 * t, 4}; }
  [[nodiscard]] std::string args(const std::string& test = "ixt") const {
    return "--train-x " + f.path("ix.npy") + " --train-y " + f.path("iy.npy") + " --test-x " + f.path(test + ".npy") +
           " --test-y " + f.path("iy" + test.substr(2) + ".npy");
  }
};

/// Running statistics to start from: means N(0, 0.3²), variances in [0.5, 1.5).
std::vector<double> random_buffers(const std::vector<index>& channels, unsigned seed) {
  const auto noise = normal_vector(static_cast<std::size_t>(buffer_count(channels)), seed, 0.3);
  std::vector<double> buffers(noise.size());
  std::size_t at = 0;
  for (const index c : channels) {
    for (index j = 0; j < c; ++j, ++at) buffers[at] = noise[at];
    for (index j = 0; j < c; ++j, ++at) buffers[at] = 0.5 + std::min(std::abs(noise[at]), 0.99);
  }
  return buffers;
}

/// The model's seeded PyTorch-style initialisation, as --init takes it.
template <class Model>
std::vector<double> initial_weights(Model&& model, unsigned seed) {
  std::vector<float> w(static_cast<std::size_t>(model.parameter_count()));
  model.initialize(vector_view<float>(w.data(), static_cast<index>(w.size())), seed);
  return {w.begin(), w.end()};
}

std::vector<double> npy(const fs::path& file) { return load_npy_features<double>(file).data; }
} // namespace

TEST_CASE("hydra-attribute --model densenet40: batch norms end to end, the running statistics checked independently") {
  fixture f;
  const image_data data(f);
  const auto channels = densenet40_batch_norms();
  REQUIRE(channels.size() == 39);
  const index buffers = buffer_count(channels);
  CHECK(buffers == 2 * 2544);  // the channel counts summed by hand: 324 + 288 + 96 + 468 + 288 + 120 + 540 + 288 + 132
  const auto offsets = buffer_offsets(channels);
  const auto w0 = initial_weights(DenseNet40<float>(), 11);
  save_npy(f.dir / "w0.npy", w0, {static_cast<index>(w0.size())});
  const auto B0 = random_buffers(channels, 12);
  save_npy(f.dir / "b0.npy", B0, {buffers});
  save_npy(f.dir / "b0_other.npy", random_buffers(channels, 13), {buffers});

  const auto common = " --model densenet40 --init " + f.path("w0.npy") + " --lr 0.05 --momentum 0.9 --track " +
                      f.path("itrack.npy") + " --method hessian-free";
  const auto init_buffers = " --init-buffers " + f.path("b0.npy");
  const auto two_steps = common + " --order " + f.path("order2.npy");
  auto run = [&](const std::string& args, const std::string& out) {
    return run_ok(f.dir, args + " --out " + f.path(out));
  };
  // The first step alone; then the whole epoch on batch statistics from B0, checkpointed.
  run(data.args() + common + " --order " + f.path("order1.npy") + init_buffers + " --batch-norm batch", "step1");
  const auto a = run(data.args() + two_steps + init_buffers + " --batch-norm batch --checkpoint " + f.path("ck"), "a");
  CHECK_MESSAGE(a.out.find("model densenet40 (176122 parameters, 39 batch norms on batch statistics)") !=
                    std::string::npos,
                a.out);
  const auto P = static_cast<index>(w0.size());
  CHECK(P == 176122);
  CHECK(read_npy_header(f.dir / "a/weights.npy").shape == std::vector<index>{P});
  CHECK(read_npy_header(f.dir / "a/hypergradients.npy").shape == std::vector<index>{2, P});
  CHECK(read_npy_header(f.dir / "a/contributions.npy").shape == std::vector<index>{2, data.M});
  CHECK(load_npy_indices(f.dir / "a/tracked.npy").data == std::vector<index>{5, 1});
  const auto header = read_npy_header(f.dir / "a/buffers.npy");
  CHECK(header.shape == std::vector<index>{buffers});
  CHECK(header.descr == "<f4");

  // Training runs on batch statistics and moves every running estimate once per step. The stem's
  // 24 output channels are the first 24 inputs of each of block 1's six bottleneck batch norms
  // (each layer's output is concatenated behind its input), so the first 24 running means and
  // variances of those six follow from the stem convolution alone, computed here: after the first
  // step from B0 and w0, and after the second from the first step's buffers and weights.
  const auto r1 = npy(f.dir / "step1/buffers.npy"), w1 = npy(f.dir / "step1/weights.npy");
  const auto r2 = npy(f.dir / "a/buffers.npy");
  REQUIRE(static_cast<index>(r1.size()) == buffers);
  REQUIRE(static_cast<index>(r2.size()) == buffers);
  for (index l = 0; l < 6; ++l) {
    CAPTURE(l);
    const index bn = 2 * l, at = offsets[static_cast<std::size_t>(bn)], c = channels[static_cast<std::size_t>(bn)];
    const auto step1 = stem_batch_norm_step(first_channels(B0, at, c, 24), data.x, data.batch(0), w0, 24, 1);
    CHECK(relative_error(first_channels(r1, at, c, 24), step1) <= 1e-5);
    const auto step2 =
        stem_batch_norm_step(first_channels(r1, at, c, 24), data.x, data.batch(1), w1, 24, 1);
    CHECK(relative_error(first_channels(r2, at, c, 24), step2) <= 1e-5);
  }
  // Every batch norm was updated in the step: no value is B0's (as float32) any more.
  index unchanged = 0;
  for (index i = 0; i < buffers; ++i)
    unchanged += r1[static_cast<std::size_t>(i)] == static_cast<double>(static_cast<float>(B0[static_cast<std::size_t>(i)]));
  CHECK(unchanged == 0);

  // --batch-norm running changes the attribution passes only: training is the same, bit for bit.
  const auto b = run(data.args() + two_steps + init_buffers + " --batch-norm running", "b");
  CHECK_MESSAGE(b.out.find("39 batch norms on running statistics") != std::string::npos, b.out);
  CHECK(file_bytes(f.dir / "b/weights.npy") == file_bytes(f.dir / "a/weights.npy"));
  CHECK(file_bytes(f.dir / "b/buffers.npy") == file_bytes(f.dir / "a/buffers.npy"));
  CHECK(relative_error(npy(f.dir / "b/hypergradients.npy"), npy(f.dir / "a/hypergradients.npy")) >= 1e-3);
  CHECK(relative_error(npy(f.dir / "b/contributions.npy"), npy(f.dir / "a/contributions.npy")) >= 1e-3);

  // The default is --batch-norm batch from PyTorch's fresh buffers. On batch statistics the
  // hypergradients do not depend on the running estimates at all (same bytes); the test gradients
  // at w_T do (they use the running statistics), and so do the contributions.
  const auto c = run(data.args() + two_steps, "c");
  CHECK_MESSAGE(c.out.find("39 batch norms on batch statistics") != std::string::npos, c.out);
  CHECK(file_bytes(f.dir / "c/weights.npy") == file_bytes(f.dir / "a/weights.npy"));
  CHECK(file_bytes(f.dir / "c/hypergradients.npy") == file_bytes(f.dir / "a/hypergradients.npy"));
  CHECK(relative_error(npy(f.dir / "c/contributions.npy"), npy(f.dir / "a/contributions.npy")) >= 1e-3);
  CHECK(relative_error(npy(f.dir / "c/buffers.npy"), r2) >= 1e-3);

  // A test point's gradient does not depend on the other test points (running statistics): test
  // point 0 alone gets the contributions it gets among three.
  run(data.args("ixt0") + two_steps + init_buffers + " --batch-norm batch", "d");
  const auto C3 = npy(f.dir / "a/contributions.npy"), C1 = npy(f.dir / "d/contributions.npy");
  REQUIRE(C1.size() == 2);
  CHECK(relative_error(C1, {C3[0], C3[static_cast<std::size_t>(data.M)]}) <= 1e-4);

  // The fingerprint holds --batch-norm and --init-buffers' content: a resume with others is
  // refused naming them; with the same flags, the checkpoint's running statistics (not B0) go on.
  auto refused = [&](const std::string& args, const std::string& needle) {
    CAPTURE(args);
    const auto r = run_tool(f.dir, data.args() + args + " --resume " + f.path("ck") + " --out " + f.path("refused"));
    check_refusal(r, 1, "--resume " + f.path("ck") + ": the checkpoint was made with " + needle);
    CHECK_FALSE(fs::exists(f.dir / "refused"));
  };
  refused(two_steps + init_buffers + " --batch-norm running", "--batch-norm batch, this run has --batch-norm running");
  refused(two_steps + " --init-buffers " + f.path("b0_other.npy") + " --batch-norm batch",
          "a different --init-buffers (content hash 0x");
  refused(two_steps + " --batch-norm batch", "--init-buffers (content hash 0x");
  // (Without --batch-norm: its default, batch, is what the fingerprint holds.)
  const auto resumed = run(data.args() + two_steps + init_buffers + " --resume " + f.path("ck"), "resumed");
  for (const char* name : {"weights.npy", "hypergradients.npy", "contributions.npy", "buffers.npy"}) {
    CAPTURE(name);
    CHECK(file_bytes(f.dir / "resumed" / name) == file_bytes(f.dir / "a" / name));
  }
}

TEST_CASE("hydra-attribute --model mobilenetv2: both --batch-norm modes, exact --lean and TracIn on each step's statistics") {
  fixture f;
  const image_data data(f);
  const auto channels = mobilenetv2_batch_norms();
  REQUIRE(channels.size() == 52);
  const index buffers = buffer_count(channels);
  CHECK(buffers == 2 * 17056);  // by hand: 32 + 48 + 528 + 1152 + 2944 + 3360 + 5472 + 2240 + 1280
  const auto w0 = initial_weights(MobileNetV2<float>(), 31);
  save_npy(f.dir / "w0.npy", w0, {static_cast<index>(w0.size())});
  const auto B0 = random_buffers(channels, 32);
  save_npy(f.dir / "b0.npy", B0, {buffers});
  const auto common = data.args() + " --model mobilenetv2 --init " + f.path("w0.npy") + " --init-buffers " +
                      f.path("b0.npy") + " --lr 0.05 --momentum 0.9 --track " + f.path("itrack.npy");
  const auto two_steps = common + " --order " + f.path("order2.npy");
  auto run = [&](const std::string& args, const std::string& out) {
    return run_ok(f.dir, args + " --out " + f.path(out));
  };

  // Hessian-free on both statistics: the same training, other attributions.
  run(two_steps + " --batch-norm batch", "batch");
  const auto running = run(two_steps + " --batch-norm running", "running");
  CHECK_MESSAGE(running.out.find("model mobilenetv2 (2236682 parameters, 52 batch norms on running statistics)") !=
                    std::string::npos,
                running.out);
  CHECK(read_npy_header(f.dir / "batch/hypergradients.npy").shape == std::vector<index>{2, 2236682});
  CHECK(read_npy_header(f.dir / "batch/contributions.npy").shape == std::vector<index>{2, data.M});
  CHECK(read_npy_header(f.dir / "batch/buffers.npy").shape == std::vector<index>{buffers});
  CHECK(file_bytes(f.dir / "running/weights.npy") == file_bytes(f.dir / "batch/weights.npy"));
  CHECK(file_bytes(f.dir / "running/buffers.npy") == file_bytes(f.dir / "batch/buffers.npy"));
  CHECK(relative_error(npy(f.dir / "running/contributions.npy"), npy(f.dir / "batch/contributions.npy")) >= 1e-3);

  // The first batch norm follows the stem (3 → 32, stride 2: 16 x 16 per sample): one step from B0.
  run(common + " --order " + f.path("order1.npy"), "step1");
  CHECK(relative_error(first_channels(npy(f.dir / "step1/buffers.npy"), 0, 32, 32),
                       stem_batch_norm_step(first_channels(B0, 0, 32, 32), data.x, data.batch(0), w0, 32, 2)) <= 1e-5);

  // --method exact --lean goes back over the steps with each step's running statistics, as the
  // forward Exact tracker met them: the same contributions (float64).
  run(two_steps + " --batch-norm running --method exact --precision float64", "exact");
  run(two_steps + " --batch-norm running --method exact --lean --precision float64", "exact_lean");
  CHECK(relative_error(npy(f.dir / "exact_lean/contributions.npy"), npy(f.dir / "exact/contributions.npy")) <= 1e-10);
  CHECK(file_bytes(f.dir / "exact_lean/buffers.npy") == file_bytes(f.dir / "exact/buffers.npy"));

  // TracIn over two epochs, a checkpoint after each, is the sum of the two epochs' Grad-Dot, each
  // at that epoch's parameters and running statistics, scaled by N·η/(|B|(1 − μ)) (one epoch per
  // checkpoint). The baselines work on running statistics by default.
  const auto one = run(common + " --order " + f.path("order2.npy") + " --method grad-dot --precision float64", "dot1");
  CHECK_MESSAGE(one.out.find("52 batch norms on running statistics") != std::string::npos, one.out);
  run(common + " --order " + f.path("order4.npy") + " --method grad-dot --precision float64", "dot2");
  run(common + " --order " + f.path("order4.npy") + " --method tracin --precision float64", "tracin");
  const auto dot1 = npy(f.dir / "dot1/contributions.npy"), dot2 = npy(f.dir / "dot2/contributions.npy");
  std::vector<double> expected(dot1.size());
  const double weight = 0.05 * 1 / (4 * (1 - 0.9));
  for (std::size_t k = 0; k < expected.size(); ++k)
    expected[k] = static_cast<double>(data.N) * weight * (dot1[k] + dot2[k]);
  CHECK(relative_error(npy(f.dir / "tracin/contributions.npy"), expected) <= 1e-10);
}

} // namespace hydra::test

namespace hydra::test {
namespace {
/// What `hydra-attribute --list-devices` says about CUDA: whether a device is usable and, when not,
/// why (the runtime's reason, or that the tool was built without CUDA).
struct cuda_availability {
  bool usable = false;
  std::string reason;
};

cuda_availability probe_cuda(const fixture& f) {
  const auto list = run_tool(f.dir, "--list-devices");
  INFO(list.err);
  REQUIRE(list.status == 0);
  CHECK(list.out.rfind("cpu\n", 0) == 0);  // the CPU first, always
  if (list.out.find("\ncuda:0 ") != std::string::npos) return {true, ""};
  const auto none = list.out.find("\ncuda: ");
  REQUIRE_MESSAGE(none != std::string::npos, list.out);
  const auto line = list.out.substr(none + 7, list.out.find('\n', none + 1) - none - 7);
  return {false, line};
}
} // namespace

TEST_CASE("hydra-attribute --device: bad values and devices that are not there get a one-line error") {
  fixture f;
  const auto base = f.data_args() + " --model softmax:3,3 --epochs 1 --batch-size 4 --precision float64";
  auto expect_error = [&](const std::string& args, const std::string& needle) {
    CAPTURE(args);
    const auto r = run_tool(f.dir, base + args + " --out " + f.path("bad"));
    CHECK(r.status != 0);
    CHECK_MESSAGE(r.err.find(needle) != std::string::npos, r.err);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') <= 1);
    CHECK_FALSE(fs::exists(f.dir / "bad"));  // refused before anything is written
  };
  expect_error(" --device tpu", "--device: tpu not in {cpu,cuda}");
  expect_error(" --device CUDA", "--device: CUDA not in {cpu,cuda}");
  expect_error(" --device", "--device");

  const auto cuda = probe_cuda(f);
  if (HYDRA_ATTRIBUTE_HAS_CUDA == 0) {
    CHECK_FALSE(cuda.usable);
    CHECK_MESSAGE(cuda.reason.find("not built") != std::string::npos, cuda.reason);
    expect_error(" --device cuda",
                 "hydra-attribute: error: this hydra-attribute was built without CUDA; rebuild with the CUDA toolkit "
                 "(docs/attribution.md)");
    expect_error(" --device cuda --state-dir " + f.path("states"), "built without CUDA");
  } else {
    // File-backed states are host memory: refused with or without a device.
    expect_error(" --device cuda --state-dir " + f.path("states"), "--state-dir cannot be combined with --device cuda");
    if (!cuda.usable) {
      CHECK_MESSAGE(cuda.reason.rfind("no device (", 0) == 0, cuda.reason);
      // The runtime's reason, as --list-devices gives it: e.g. "no device (cudaErrorNoDevice: ...)".
      expect_error(" --device cuda", "hydra-attribute: error: --device cuda: no CUDA device is usable (" +
                                         cuda.reason.substr(11));
    }
  }

  // --device cpu is the default: the same bytes.
  const auto implicit = run_tool(f.dir, base + " --out " + f.path("default"));
  INFO(implicit.err);
  REQUIRE(implicit.status == 0);
  const auto explicit_cpu = run_tool(f.dir, base + " --device cpu --out " + f.path("cpu"));
  INFO(explicit_cpu.err);
  REQUIRE(explicit_cpu.status == 0);
  for (const char* name : {"weights.npy", "hypergradients.npy", "contributions.npy", "tracked.npy"}) {
    CAPTURE(name);
    CHECK(file_bytes(f.dir / "cpu" / name) == file_bytes(f.dir / "default" / name));
  }
}

TEST_CASE("hydra-attribute --device cuda writes the files --device cpu writes (float64, where there is a GPU)") {
  fixture f;
  const std::vector<std::int64_t> tracked{7, 0, 11, 4};
  save_npy(f.dir / "track.npy", tracked, {4});
  const auto common = f.data_args() + " --model mlp:3,6,3:tanh --epochs 3 --batch-size 4 --lr 0.2 --momentum 0.9" +
                      " --weight-decay 0.01 --track " + f.path("track.npy") + " --precision float64";
  const auto cuda = probe_cuda(f);
  // The CPU runs always (they check --device cpu with every method); the GPU's only where there is one.
  const std::vector<std::string> methods{" --method hessian-free", " --method exact", " --method hessian-free --update eager",
                                         " --method hessian-free --lean", " --method influence --ihvp explicit --damping 1",
                                         " --method tracin --tracin-every 2", " --method grad-dot", " --method grad-cos"};
  for (std::size_t k = 0; k < methods.size(); ++k) {
    CAPTURE(methods[k]);
    const auto cpu_dir = f.dir / ("cpu" + std::to_string(k)), gpu_dir = f.dir / ("cuda" + std::to_string(k));
    const auto cpu = run_tool(f.dir, common + methods[k] + " --device cpu --out " + cpu_dir.string());
    INFO(cpu.err);
    REQUIRE(cpu.status == 0);
    if (!cuda.usable) continue;
    const auto gpu = run_tool(f.dir, common + methods[k] + " --device cuda --out " + gpu_dir.string());
    INFO(gpu.err);
    REQUIRE(gpu.status == 0);
    CHECK(gpu.out.find(", cuda)") != std::string::npos);  // the summary names the device it ran on
    for (const char* name : {"weights.npy", "hypergradients.npy", "contributions.npy"}) {
      CAPTURE(name);
      REQUIRE(fs::exists(gpu_dir / name) == fs::exists(cpu_dir / name));
      if (!fs::exists(cpu_dir / name)) continue;  // --lean and the baselines write no hypergradients
      const auto header = read_npy_header(gpu_dir / name);
      CHECK(header.descr == "<f8");
      CHECK(header.shape == read_npy_header(cpu_dir / name).shape);
      CHECK(relative_error(load_npy_features<double>(gpu_dir / name).data,
                           load_npy_features<double>(cpu_dir / name).data) <= 1e-9);
    }
    CHECK(file_bytes(gpu_dir / "tracked.npy") == file_bytes(cpu_dir / "tracked.npy"));
  }
  if (!cuda.usable) MESSAGE("[skipped] no CUDA device: " << cuda.reason << "; the GPU runs were not compared");
}

} // namespace hydra::test
