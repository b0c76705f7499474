// hydra-attribute's refusals and failures: every bad flag, file and combination gets one error
// line with the one prefix and the exit code of docs/attribution.md's table, before any training
// where the flags alone decide it; a run that fails — diverged, non-finite, unwritable — leaves
// --out as it was.

#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "cli/cli_support.hpp"
#include "hydra/core/io/directory_lock.hpp"
#include "hydra/data/npy.hpp"
#include "hydra/nn/model_spec.hpp"

namespace hydra::test {
namespace {
// docs/attribution.md, "Exit codes".
constexpr int bad_input = 1, numerical_failure = 2, io_failure = 3, out_of_memory = 4, busy = 5;

/// The bytes of a file, to show that a failed run left it alone.
std::string bytes_of(const fs::path& file) { return text_of(file); }
} // namespace

TEST_CASE("hydra-attribute: every bad input gets a one-line error and a non-zero exit") {
  fixture f;
  const auto base = f.data_args() + " --batch-size 4 --out " + f.path("out");
  auto expect_error = [&](const std::string& args, const std::string& needle, int code = bad_input) {
    CAPTURE(args);
    check_refusal(run_tool(f.dir, args), code, needle);
  };
  expect_error(base + " --model mlp:4,5,3", "features per sample but --model mlp:4,5,3 takes 4");
  expect_error(base + " --model transformer:3", "unknown model spec 'transformer:3'");
  // Non-finite inputs are refused before training, naming the file and where.
  {
    auto xt = f.xt;
    xt[static_cast<std::size_t>(2 * f.D + 1)] = std::numeric_limits<double>::quiet_NaN();
    save_npy(f.dir / "xt_nan.npy", xt, {f.M, f.D});
    auto x = f.x;
    x[5] = 1e300;  // finite in float64, Inf as float32
    save_npy(f.dir / "x_huge.npy", x, {f.N, f.D});
    std::vector<double> w(12, 0.1);  // softmax:3,3 has 3·3 + 3 parameters
    w[7] = -std::numeric_limits<double>::infinity();
    save_npy(f.dir / "w_inf.npy", w, {12});
    const auto data = [&](const std::string& train_x, const std::string& test_x) {
      return "--train-x " + f.path(train_x) + " --train-y " + f.path("y.npy") + " --test-x " + f.path(test_x) +
             " --test-y " + f.path("yt.npy") + " --batch-size 4 --out " + f.path("out");
    };
    expect_error(data("x.npy", "xt_nan.npy") + " --model softmax:3,3",
                 "--test-x " + f.path("xt_nan.npy") + ": sample 2, feature 1 is nan (as float32)");
    expect_error(data("x_huge.npy", "xt.npy") + " --model softmax:3,3",
                 "--train-x " + f.path("x_huge.npy") + ": sample 1, feature 2 is inf (as float32)");
    // In float64 it is finite: accepted, and its loss is then past the divergence bound (100·ln 3)
    // from the first step, unless --max-loss inf lifts the bound.
    expect_error(data("x_huge.npy", "xt.npy") + " --model softmax:3,3 --precision float64",
                 "training diverged at step", numerical_failure);
    CHECK(run_tool(f.dir, data("x_huge.npy", "xt.npy") + " --model softmax:3,3 --precision float64 --max-loss inf --lr 1e-310")
              .status == 0);
    expect_error(base + " --model softmax:3,3 --init " + f.path("w_inf.npy") + " --precision float64",
                 "--init " + f.path("w_inf.npy") + ": value 7 is -inf (as float64)");
  }
  // Sizes past what an index holds, or past the memory there is, are refused before allocating.
  expect_error(base + " --model mlp:3,5534023222112865490,3", "brings the parameter count past 9223372036854775807");
  expect_error(base + " --model mlp:3,1000000000000,3",
               "--model mlp:3,1000000000000,3: 7000000000003 parameters and a batch of 4 need at least",
               out_of_memory);
  save_npy(f.dir / "bad_track.npy", std::vector<std::int64_t>{0, 12}, {2});
  expect_error(base + " --model softmax:3,3 --track " + f.path("bad_track.npy"), "tracked[1] = 12 is outside");
  save_npy(f.dir / "dup_track.npy", std::vector<std::int64_t>{2, 5, 2}, {3});
  expect_error(base + " --model softmax:3,3 --track " + f.path("dup_track.npy"), "training sample 2 is tracked twice");
  // Methods without a tracker refuse the same lists in the same words (check_tracked).
  expect_error(base + " --model softmax:3,3 --method influence --track " + f.path("dup_track.npy"),
               "training sample 2 is tracked twice");
  expect_error(base + " --model softmax:3,3 --method influence --track " + f.path("bad_track.npy"),
               "tracked[1] = 12 is outside");
  save_npy(f.dir / "bad_order.npy", std::vector<std::int64_t>{0, 1, 2, 99}, {2, 2});
  expect_error(f.data_args() + " --out " + f.path("out") + " --model softmax:3,3 --order " + f.path("bad_order.npy"),
               "row 1, column 1");
  expect_error(base + " --model softmax:3,3 --order " + f.path("bad_order.npy"), "--order excludes --batch-size");
  save_npy(f.dir / "lr_short.npy", std::vector<double>{0.1, 0.1}, {2});
  expect_error(base + " --model softmax:3,3 --epochs 1 --lr-file " + f.path("lr_short.npy"),
               "has 2 rates for 3 steps");
  save_npy(f.dir / "w_short.npy", std::vector<double>{0.1, 0.2}, {2});
  expect_error(base + " --model softmax:3,3 --init " + f.path("w_short.npy"), "has 2 values, the model has 12 parameters");
  save_npy(f.dir / "xt_wide.npy", std::vector<double>(8, 0.0), {2, 4});
  expect_error("--train-x " + f.path("x.npy") + " --train-y " + f.path("y.npy") + " --test-x " + f.path("xt_wide.npy") +
                   " --test-y " + f.path("yt.npy") + " --model softmax:3,3 --out " + f.path("out"),
               "samples in");
  expect_error(base + " --model softmax:3,2", "label");
  expect_error(base + " --model softmax:3,3 --lr 1e300 --weight-decay 10 --epochs 3", "at step", numerical_failure);
}

TEST_CASE("hydra-attribute --help lists every model family of the registry; an unknown spec names them all") {
  fixture f;
  const auto help = run_tool(f.dir, "--help");
  REQUIRE(help.status == 0);
  const auto unknown = run_tool(f.dir, f.data_args() + " --model transformer:3 --out " + f.path("out"));
  check_refusal(unknown, bad_input, "unknown model spec");
  CHECK(unknown.err == "hydra-attribute: error: unknown model spec 'transformer:3': expected " + model_spec_syntaxes() +
                           "\n");
  CHECK_FALSE(fs::exists(f.dir / "out"));  // refused before anything is read or written
  index families = 0;
  for_each_model_family([&](const auto& family) {
    CAPTURE(family.name);
    ++families;
    CHECK_MESSAGE(help.out.find(std::string(family.syntax)) != std::string::npos, help.out);
    CHECK_MESSAGE(help.out.find(std::string(family.description)) != std::string::npos, help.out);
    CHECK_MESSAGE(unknown.err.find(std::string(family.syntax)) != std::string::npos, unknown.err);
  });
  CHECK(families >= 3);  // softmax, mlp and lenet5 at least
  const auto malformed = run_tool(f.dir, f.data_args() + " --model mlp:3,x,3 --out " + f.path("out"));
  check_refusal(malformed, bad_input, "is not a positive size");
  CHECK(malformed.err == "hydra-attribute: error: model spec 'mlp:3,x,3': 'x' is not a positive size\n");
}


TEST_CASE("hydra-attribute: every flag's value is checked before any file is read, in the flag's words") {
  fixture f;
  // The data files do not exist: a refusal that names the flag shows nothing was read first.
  const std::string missing = "--train-x " + f.path("none.npy") + " --train-y " + f.path("none.npy") + " --test-x " +
                              f.path("none.npy") + " --test-y " + f.path("none.npy") + " --model softmax:3,3 --out " +
                              f.path("out");
  const auto refused = [&](const std::string& args, const std::string& needle) {
    CAPTURE(args);
    const auto r = run_tool(f.dir, missing + args);
    check_refusal(r, bad_input, needle);
    CHECK(r.err.find("none.npy") == std::string::npos);
    CHECK_FALSE(fs::exists(f.dir / "out"));
  };
  refused(" --lr -1", "--lr must be finite and > 0, got -1");
  refused(" --lr nan", "--lr must be finite and > 0, got nan");
  refused(" --lr 1e400", "--lr must be finite and > 0, got inf");
  refused(" --momentum 1", "--momentum must be in [0, 1), got 1");
  refused(" --weight-decay -0.5", "--weight-decay must be finite and >= 0, got -0.5");
  refused(" --epochs 0", "--epochs must be >= 1, got 0");
  refused(" --batch-size -3", "--batch-size must be >= 1, got -3");
  refused(" --checkpoint-every -1", "--checkpoint-every must be >= 0, got -1");
  refused(" --max-loss 0", "--max-loss must be > 0 (inf: no bound), got 0");
  // --seed is refused, not wrapped, outside [0, 2^64).
  refused(" --seed -1", "--seed must be an integer in [0, 18446744073709551615], got '-1'");
  refused(" --seed 18446744073709551616", "got '18446744073709551616'");
  refused(" --seed 12abc", "got '12abc'");
  // Influence functions' flags belong to it (and to its solver), never silently ignored.
  refused(" --damping 0.1", "--damping applies to --method influence only (this run is --method hessian-free)");
  refused(" --method tracin --cg-tol 1e-3", "--cg-tol applies to --method influence only");
  refused(" --method influence --ihvp cg --lissa-depth 10", "--lissa-depth applies to --ihvp lissa only");
  refused(" --method influence --ihvp lissa --cg-max-iter 10", "--cg-max-iter applies to --ihvp cg only");
  refused(" --method influence --damping -1", "--damping must be finite and >= 0, got -1");
  refused(" --method influence --ihvp lissa --damping 1", "--damping must be in [0, 1) with --ihvp lissa");
  refused(" --method influence --cg-tol 0", "--cg-tol must be finite and > 0, got 0");
  refused(" --method influence --cg-max-iter 0", "--cg-max-iter must be >= 1, got 0");
  refused(" --method influence --ihvp lissa --lissa-scale -2", "--lissa-scale must be finite and > 0, got -2");
  refused(" --method influence --ihvp lissa --lissa-repeats 0", "--lissa-repeats must be >= 1, got 0");
  // The batch-norm flags belong to a model with batch norms (checked before any file is read), and
  // --batch-norm batch to a method that attributes through the training batches.
  refused(" --batch-norm batch", "--batch-norm applies to a model with batch norms (densenet40 or mobilenetv2); "
                                 "--model softmax:3,3 has none");
  refused(" --init-buffers " + f.path("none.npy"),
          "--init-buffers applies to a model with batch norms (densenet40 or mobilenetv2); --model softmax:3,3 has none");
  refused(" --batch-norm foo", "--batch-norm: foo not in {batch,running}");
  // CLI11's own parse errors: the same prefix and exit code, no 309-digit range.
  refused(" --bogus", "--bogus");
  refused(" --epochs 1e3", "--epochs");
  refused(" --method sgd", "--method");
}

TEST_CASE("hydra-attribute --batch-norm, --init-buffers and image shapes: refused in one line, naming flag, file and counts") {
  fixture f;
  const index n = 4;
  const auto images = normal_vector(static_cast<std::size_t>(n * 3072), 41);
  save_npy(f.dir / "img.npy", images, {n, 3, 32, 32});
  save_npy(f.dir / "img_hwc.npy", images, {n, 32, 32, 3});  // channels last, as torchvision's CIFAR10.data
  save_npy(f.dir / "img_y.npy", std::vector<std::int64_t>{3, 1, 4, 1}, {n});
  const std::string test = " --test-x " + f.path("img.npy") + " --test-y " + f.path("img_y.npy");
  const std::string data = "--train-x " + f.path("img.npy") + " --train-y " + f.path("img_y.npy") + test;
  const std::string out = " --batch-size 2 --out " + f.path("out");
  auto expect_error = [&](const std::string& args, const std::string& needle) {
    CAPTURE(args);
    check_refusal(run_tool(f.dir, args + out), bad_input, needle);
    CHECK_FALSE(fs::exists(f.dir / "out"));  // refused before anything is written
  };
  // A model without batch norms, named; before any file is read (the buffers file does not exist).
  for (const std::string model : {"lenet5", "mlp:3072,4,10"}) {
    expect_error(data + " --model " + model + " --batch-norm running",
                 "--batch-norm applies to a model with batch norms (densenet40 or mobilenetv2); --model " + model +
                     " has none");
    expect_error(data + " --model " + model + " --init-buffers " + f.path("missing.npy"),
                 "--init-buffers applies to a model with batch norms (densenet40 or mobilenetv2); --model " + model +
                     " has none");
  }
  // The baselines work at w_T, outside any training batch.
  expect_error(data + " --model densenet40 --method grad-dot --batch-norm batch",
               "--batch-norm batch applies to --method hessian-free or exact: --method grad-dot works at w_T");
  // The image shape: N x 3 x 32 x 32 (or N x 3072); channels last is refused, not reinterpreted.
  expect_error("--train-x " + f.path("img_hwc.npy") + " --train-y " + f.path("img_y.npy") + test +
                   " --model densenet40",
               "--train-x has samples of shape 32 x 32 x 3 but --model densenet40 takes N x 3 x 32 x 32 inputs (or N x "
               "3072, the same values flattened)");
  // --init-buffers: 2·Σ channels values, 1-d, finite, variances >= 0 (densenet40: 2 x 2544).
  const index count = 5088;
  save_npy(f.dir / "short.npy", std::vector<double>(10, 1.0), {10});
  expect_error(data + " --model densenet40 --init-buffers " + f.path("short.npy"),
               "--init-buffers " + f.path("short.npy") + " has 10 values, --model densenet40's 39 batch norms hold 5088");
  save_npy(f.dir / "two_d.npy", std::vector<double>(static_cast<std::size_t>(count), 1.0), {2, count / 2});
  expect_error(data + " --model densenet40 --init-buffers " + f.path("two_d.npy"),
               "--init-buffers " + f.path("two_d.npy") + " has 5088 values not in a 1-d array");
  std::vector<double> fresh;  // PyTorch's fresh buffers: 24 means 0 and 24 variances 1 for the first, ...
  for (const index c : {24, 48}) {
    fresh.insert(fresh.end(), static_cast<std::size_t>(c), 0.0);
    fresh.insert(fresh.end(), static_cast<std::size_t>(c), 1.0);
  }
  fresh.resize(static_cast<std::size_t>(count), 1.0);
  auto negative = fresh;
  negative[48 + 48 + 3] = -0.5;  // the second batch norm's (48 channels) running_var, channel 3
  save_npy(f.dir / "negative.npy", negative, {count});
  expect_error(data + " --model densenet40 --init-buffers " + f.path("negative.npy"),
               "--init-buffers " + f.path("negative.npy") +
                   ": value 99 is -0.5, the running_var of batch norm 1 (channel 3); a variance must be >= 0");
  auto not_finite = fresh;
  not_finite[7] = std::numeric_limits<double>::quiet_NaN();
  save_npy(f.dir / "nan.npy", not_finite, {count});
  expect_error(data + " --model densenet40 --init-buffers " + f.path("nan.npy"),
               "--init-buffers " + f.path("nan.npy") + ": value 7 is nan");
  // Training normalises by the batch's statistics: mobilenetv2's last batch norm sees one value per
  // sample and channel (1 x 1), so batches of one cannot train it.
  check_refusal(run_tool(f.dir, data + " --model mobilenetv2 --batch-size 1 --out " + f.path("out")), bad_input,
                "--batch-size 1: batches of 1 sample cannot train --model mobilenetv2: its batch norm 40 sees 1 x 1 "
                "value per sample and channel");
  CHECK_FALSE(fs::exists(f.dir / "out"));
}

TEST_CASE("hydra-attribute exit codes: one per kind of failure (docs/attribution.md)") {
  fixture f;
  const auto base = f.data_args() + " --model softmax:3,3 --batch-size 4";
  CHECK(run_tool(f.dir, base + " --out " + f.path("ok")).status == 0);
  CHECK(run_tool(f.dir, "--help").status == 0);
  check_refusal(run_tool(f.dir, base + " --lr -1 --out " + f.path("out")), bad_input, "--lr");
  check_refusal(run_tool(f.dir, base + " --lr 1e30 --out " + f.path("out")), numerical_failure, "training diverged");
  std::ofstream(f.dir / "a_file") << "not a folder";
  check_refusal(run_tool(f.dir, base + " --out " + f.path("a_file")), io_failure,
                "--out " + f.path("a_file") + ": cannot create the folder");
  check_refusal(run_tool(f.dir, base + " --epochs 99999999999999 --out " + f.path("out")), out_of_memory,
                "--epochs 99999999999999 over 12 samples in batches of --batch-size 4 is 3e+14 steps");
  check_refusal(run_tool(f.dir, base + " --init " + f.path("missing.npy") + " --out " + f.path("out")), io_failure,
                "--init " + f.path("missing.npy") + ": ");
  // A folder in use by a live process (this one holds the lock).
  {
    const auto held = f.dir / "held";
    fs::create_directories(held);
    const directory_lock lock(held);
    check_refusal(run_tool(f.dir, base + " --checkpoint " + held.string() + " --out " + f.path("out")), busy,
                  "--checkpoint " + held.string() + ": the directory is in use by process " + std::to_string(::getpid()));
  }
  CHECK_FALSE(fs::exists(f.dir / "out"));
}

TEST_CASE("hydra-attribute divergence: the --max-loss bound names step, epoch, sample and the flag") {
  fixture f;
  const auto base = f.data_args() + " --model softmax:3,3 --batch-size 4 --epochs 30 --momentum 0 --precision float64";
  // The bound is the batch's mean loss; --lr 30 makes softmax regression's loss climb past 5 within
  // the first epochs on these 12 samples, without any non-finite value.
  const auto r = run_tool(f.dir, base + " --lr 30 --max-loss 5 --out " + f.path("out"));
  check_refusal(r, numerical_failure, "above the --max-loss bound 5; the batch's worst sample is --train-x sample ");
  CHECK(r.err.find("lower --lr (or raise --max-loss if the run is sound)") != std::string::npos);
  CHECK_FALSE(fs::exists(f.dir / "out"));
  // The message says the loss was finite and above 5: the bound, not a NaN, stopped it. Lifted,
  // the same run finishes (the trainer's own test checks the step and sample against a hand loop).
  CHECK(run_tool(f.dir, base + " --lr 30 --max-loss inf --out " + f.path("out")).status == 0);
  // --lr-file runs are told to lower the rates of that file.
  save_npy(f.dir / "lr.npy", std::vector<double>(90, 1e30), {90});
  const auto from_file = run_tool(f.dir, base + " --lr-file " + f.path("lr.npy") + " --out " + f.path("out2"));
  check_refusal(from_file, numerical_failure, "lower the rates of --lr-file");
  // A rate that is not finite and > 0 is refused before training, naming the step.
  std::vector<double> rates(90, 0.1);
  rates[17] = -0.1;
  save_npy(f.dir / "lr_bad.npy", rates, {90});
  check_refusal(run_tool(f.dir, base + " --lr-file " + f.path("lr_bad.npy") + " --out " + f.path("out3")), bad_input,
                "--lr-file " + f.path("lr_bad.npy") + ": the rate of step 17 is -0.1");
}

TEST_CASE("hydra-attribute outputs are all or nothing: a failed run leaves --out as it was") {
  fixture f;
  const auto base = f.data_args() + " --model softmax:3,3 --batch-size 4 --precision float64";
  const auto out = f.dir / "out";
  REQUIRE(run_tool(f.dir, base + " --out " + out.string()).status == 0);
  std::ofstream(out / "notes.txt") << "the user's own file";
  std::vector<std::string> before;
  for (const char* name : {"weights.npy", "hypergradients.npy", "contributions.npy", "tracked.npy", "notes.txt"})
    before.push_back(bytes_of(out / name));
  // A run that diverges after training has begun writes nothing.
  check_refusal(run_tool(f.dir, base + " --lr 1e30 --epochs 3 --out " + out.string()), numerical_failure,
                "training diverged");
  std::size_t k = 0;
  for (const char* name : {"weights.npy", "hypergradients.npy", "contributions.npy", "tracked.npy", "notes.txt"}) {
    CAPTURE(name);
    CHECK(bytes_of(out / name) == before[k++]);
  }
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(out)) ++entries;
  CHECK(entries == 5);  // no staging folder left behind
  // A run that fails while its results go into place changes none of them: here the earlier run's
  // contributions.npy is replaced by a folder, which no result may overwrite.
  fs::remove(out / "contributions.npy");
  fs::create_directories(out / "contributions.npy");
  check_refusal(run_tool(f.dir, base + " --lr 0.02 --out " + out.string()), io_failure,
                (out / "contributions.npy").string() + " exists and is not a file; nothing was written");
  k = 0;
  for (const char* name : {"weights.npy", "hypergradients.npy", "contributions.npy", "tracked.npy", "notes.txt"}) {
    CAPTURE(name);
    if (std::string(name) != "contributions.npy") CHECK(bytes_of(out / name) == before[k]);
    ++k;
  }
  fs::remove_all(out / "contributions.npy");
  // A run killed outright leaves its staging folder; the next run into --out removes it (its
  // process is gone) and a live run's is left alone.
  const auto abandoned = out / ".hydra-attribute.partial-999999999";
  const auto live = out / (".hydra-attribute.partial-" + std::to_string(::getppid()));
  fs::create_directories(abandoned);
  fs::create_directories(live);
  std::ofstream(abandoned / "weights.npy") << "half";
  REQUIRE(run_tool(f.dir, base + " --method influence --out " + out.string()).status == 0);
  CHECK_FALSE(fs::exists(abandoned));
  CHECK(fs::exists(live));
  fs::remove_all(live);
  // A method without hypergradients removes an earlier run's, not the user's files.
  CHECK_FALSE(fs::exists(out / "hypergradients.npy"));
  CHECK(fs::exists(out / "contributions.npy"));
  CHECK(bytes_of(out / "notes.txt") == before.back());
}

} // namespace hydra::test
