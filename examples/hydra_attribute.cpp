// hydra-attribute: the whole HYDRA pipeline on NumPy files. Trains a model with SGD while
// tracking the hypergradients dw_T/dε_i of the chosen training samples, then writes
//   weights.npy         final parameters (|w|), PyTorch parameters_to_vector layout
//   hypergradients.npy  n_tracked × |w|, row k = dw_T/dε for the k-th tracked index
//   contributions.npy   n_tracked × M, entry (k, j) = C(track[k], j) = −(1/N)·∇ℓ(test_j, w_T)·dw_T/dε
//   tracked.npy         the tracked indices (int64)
//   buffers.npy         a model with batch norms: the final running statistics (model_buffers layout)
// Positive contributions help: removing the sample would raise that test loss. See docs/attribution.md.
// --method influence runs the influence-function baseline instead (docs/influence.md): the same
// training, then C_IF(i, j) = (1/N)·∇ℓ(test_j)ᵀ·H⁻¹·∇ℓ(z_i) at w_T into contributions.npy, with H⁻¹
// applied by --ihvp explicit|cg|lissa; it writes no hypergradients.npy. --method grad-dot,
// grad-cos and tracin run the gradient-similarity baselines the same way (docs/influence.md):
// Grad-Dot (1/N)·∇ℓ(test_j)·∇ℓ(z_i) and Grad-Cos at w_T, and TracIn summed over the parameters
// recorded at the end of every --tracin-every K-th epoch, weighted by η·K/(|B|(1 − μ)).
// Hessian-free tracking is lazy unless --update eager; --lean trains twice along the identical
// trajectory, carrying only the projections onto the test gradients the second time (no
// hypergradients.npy); --state-dir keeps the states in a mapped file; --checkpoint DIR writes
// crash-safe checkpoints from which --resume DIR continues the run bit for bit.
// --device cuda runs the same computation on the GPU (hydra::cuda) and writes the same files: the
// data are loaded on the host, the model, optimiser, tracker and contributions live in device
// memory, and every result is copied to the host before it is saved or ranked.
// A model with batch norms (densenet40, mobilenetv2) trains on batch statistics and updates the
// running ones, as PyTorch's train mode; --batch-norm batch|running chooses the statistics of the
// attribution passes over the training batches, --init-buffers the running statistics to start
// from, and the test gradients always use the running statistics (PyTorch's eval mode).
//
// Every failure is one line "hydra-attribute: error: ..." and an exit code of the table in
// docs/attribution.md ("Errors and exit codes"); the outputs appear in --out all at once or not at all.
//
// This file and its parts in hydra_attribute/ are the tool's only source. Built as it is (g++), it
// knows hydra::cpu alone; with the CUDA toolkit, CMake builds hydra_attribute.cu instead, which
// defines HYDRA_ATTRIBUTE_WITH_CUDA and includes this file, so nvcc compiles the same code with the
// hydra::cuda branch switched on.

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <hydra/attribution/ranking.hpp>
#include <hydra/hydra.hpp>
#include <hydra/nn/lenet.hpp>
#include <hydra/nn/model_spec.hpp>

#ifdef HYDRA_ATTRIBUTE_WITH_CUDA
#include <hydra/backend/cuda.cuh>
#endif

// The tool in parts: its command line, its inputs, --resume's safety, its all-or-nothing outputs
// and its methods.
#include "hydra_attribute/options.hpp"
#include "hydra_attribute/inputs.hpp"
#include "hydra_attribute/resume.hpp"
#include "hydra_attribute/outputs.hpp"
#include "hydra_attribute/methods.hpp"

namespace hydra::cli {

/// Refuses, in one line, a --device this build or this machine cannot honour, before any data is read.
inline void check_device(const options& opt) {
  if (opt.device != "cuda") return;
#ifndef HYDRA_ATTRIBUTE_WITH_CUDA
  fail("this hydra-attribute was built without CUDA; rebuild with the CUDA toolkit (docs/attribution.md)");
#else
  if (!opt.state_dir.empty())
    fail("--state-dir cannot be combined with --device cuda: it maps the states to a file in host memory, and the "
         "GPU's states live in device memory");
  if (hydra::cuda::devices().empty())
    fail("--device cuda: no CUDA device is usable (" + hydra::cuda::no_device_reason() + ")");
#endif
}

/// --list-devices: one line per device this build can run on, as the backends describe them.
inline void list_devices() {
  for (const auto& device : hydra::cpu::devices()) fmt::print("{}\n", device.id);
#ifndef HYDRA_ATTRIBUTE_WITH_CUDA
  fmt::print("cuda: not built (this hydra-attribute was built without CUDA)\n");
#else
  const auto devices = hydra::cuda::devices();
  if (devices.empty()) fmt::print("cuda: no device ({})\n", hydra::cuda::no_device_reason());
  for (const auto& device : devices) fmt::print("{} {}\n", device.id, device.name);
#endif
}

// ---- one run: what it prints and writes -----------------------------------------------------------

/// The opening line: the data, the model, the run and what is explained.
template <class Policy, class Job>
void announce(const Job& job) {
  const index batch_norms = batch_norm_count(job.model);
  const std::string statistics =
      batch_norms > 0 ? fmt::format(", {} batch norms on {} statistics", batch_norms, batch_norm_mode(job.opt)) : "";
  fmt::print("hydra-attribute: {} training / {} test samples, model {} ({} parameters{}), {} steps, {} {} samples ({}, {}, {})\n",
             job.N(), job.test.size(), job.opt.model, job.w.size(), statistics, job.order.steps(),
             is_baseline<Policy> ? "explaining" : "tracking", job.tracked.size(), Policy::name,
             job.opt.precision, Job::B::name);
  std::fflush(stdout);
}

/// weights.npy, contributions.npy, tracked.npy and (a model with batch norms) buffers.npy staged
/// beside what the method staged, each checked finite, then all of them moved into --out at once;
/// returns the contributions on the host. Every result reaches the host before it is written or
/// ranked: the same files on every device.
template <class Model, class B, class T>
std::vector<T> write_results(output_folder& outputs, Model& model, const vector<T, B>& w, const matrix<T, B>& C,
                             const std::vector<index>& tracked) {
  const auto weights = w.to_host();
  check_finite_result(weights, w.size(), "w_T, the trained parameters,", {}, "parameter");
  std::vector<T> C_values = host_copy<B>(C.view());
  check_finite_result(C_values, C.cols(), "a contribution C(i, j)", tracked, "test point");
  outputs.stage("weights.npy", weights, {w.size()});
  outputs.stage("contributions.npy", C_values, {C.rows(), C.cols()});
  const std::vector<std::int64_t> tracked64(tracked.begin(), tracked.end());
  outputs.stage("tracked.npy", tracked64, {static_cast<index>(tracked.size())});
  if (batch_norm_count(model) > 0) {
    const auto buffers = model_buffers(model);
    const auto count = static_cast<index>(buffers.size());
    check_finite_result(buffers, count, "a running statistic of the batch norms", {}, "buffers.npy value");
    outputs.stage("buffers.npy", buffers, {count});
  }
  outputs.commit();
  return C_values;
}

/// A divergence in the trainer's words (step, epoch, sample) with the flags that change it.
inline std::string divergence_message(const options& opt, const divergence_error& e, double bound) {
  const std::string rates = opt.lr_file.empty() ? "--lr" : "the rates of --lr-file";
  if (e.sample() < 0)
    return fmt::format("training diverged: the parameters are not finite after the last step ({}); lower {}",
                       e.step(), rates);
  const bool bounded = std::isfinite(e.batch_loss());
  return fmt::format("training diverged at step {} (epoch {}): the batch's mean loss is {:.4g}{}; the batch's worst "
                     "sample is --train-x sample {}; lower {}{}",
                     e.step(), e.epoch(), std::isnan(e.batch_loss()) ? std::fabs(e.batch_loss()) : e.batch_loss(),
                     bounded ? fmt::format(", above the --max-loss bound {:g}", bound) : std::string(), e.sample(),
                     rates, bounded ? " (or raise --max-loss if the run is sound)" : "");
}

/// The closing line: accuracies at w_T, the run's seconds and the files written.
template <class Policy, class Job>
void print_accuracies(Job& job, std::chrono::steady_clock::time_point start) {
  const auto train_eval = job.fit.evaluate(std::as_const(job.w).view(), job.train);
  const auto test_eval = job.fit.evaluate(std::as_const(job.w).view(), job.test);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("train accuracy {:.2f}%, test accuracy {:.2f}%, {:.1f} s; wrote {}/{{weights,{}contributions,tracked{}}}.npy\n",
             100 * train_eval.accuracy, 100 * test_eval.accuracy, seconds, job.opt.out,
             is_baseline<Policy> || job.opt.lean ? "" : "hypergradients,", job.has_batch_norms() ? ",buffers" : "");
}

/// Test point 0's three most helpful and three most harmful tracked samples (C on the host).
template <class T>
void print_test_point_0(const std::vector<index>& tracked, matrix_view<const T> C, const dataset<T>& train,
                        const dataset<T>& test) {
  if (tracked.empty() || test.size() == 0) return;
  const auto helpful = most_helpful<T>(tracked, C, 0, 3);
  const auto harmful = most_harmful<T>(tracked, C, 0, 3);
  fmt::print("test point 0 (label {}): most helpful", test.label(0));
  for (const auto& s : helpful) fmt::print("  #{} (label {}, C = {:+.3e})", s.sample, train.label(s.sample), s.score);
  fmt::print("\n                       most harmful");
  for (const auto& s : harmful) fmt::print("  #{} (label {}, C = {:+.3e})", s.sample, train.label(s.sample), s.score);
  fmt::print("\n");
}

/// Refuses a --model whose parameters and one batch's activations cannot fit in the memory of
/// the backend, before anything of that size is allocated (the sizes themselves are checked for
/// overflow when the model is built). A lower bound: the parameters, the gradient, the velocity
/// and the trainer's copy of w, plus the activations and δ of a batch of --batch-size (a --order
/// table's width is not known yet).
template <class T, class B, class Model>
void check_model_fits(const options& opt, const Model& model, const model_spec& spec) {
  const auto P = static_cast<double>(model.parameter_count());
  double widths = static_cast<double>(spec.inputs) + static_cast<double>(spec.outputs);
  for (const index h : spec.hidden) widths += static_cast<double>(h);
  const double bytes = (4.0 * P + 3.0 * static_cast<double>(opt.batch_size) * widths) * sizeof(T);
  const auto available = static_cast<double>(B::memory_available());
  if (bytes > available)
    too_large(fmt::format("--model {}: {} parameters and a batch of {} need at least {:.3g} bytes ({}), more than "
                          "the {:.3g} bytes available",
                          opt.model, model.parameter_count(), opt.batch_size, bytes, opt.precision, available));
}

/// The pipeline on one model: read the inputs, train (and track), attribute, write, report.
template <class T, class Policy, class Model>
int run(const options& opt, Model& model, const model_spec& spec) {
  using B = typename Model::backend_type;
  const auto start = std::chrono::steady_clock::now();
  check_model_fits<T, B>(opt, model, spec);
  const auto data = load_data<T>(opt, spec);
  auto w = initial_parameters<B, T>(opt, model);
  const bool batch_norms = batch_norm_count(model) > 0;
  initial_buffers<T>(opt, model);                              // --init-buffers, checked
  set_batch_norm_statistics(model, batch_norm_setting(opt));  // the attribution passes' (--batch-norm)
  const auto order = read_order(opt, data.train.size());
  check_batch_statistics(opt, order, model);
  const auto rates = read_rates(opt, order.steps());
  list_schedule schedule(rates);
  const auto tracked = read_tracked(opt, data.train.size());
  check_run_fits<T, B>(opt, w.size(), data.train.size(), data.test.size(), static_cast<index>(tracked.size()),
                       order.steps_per_epoch() > 0 ? order.steps() / order.steps_per_epoch() : 0);
  prepare_resume(opt, order, batch_norms);  // --resume: refuses another run's checkpoint before any training
  output_folder outputs(opt.out);  // created and proven writable before training

  SoftmaxCrossEntropy<T, B> loss;
  SGD<T, B> optimizer(w.size(), sgd_settings(opt));
  const auto training = trainer_settings(opt, spec.outputs);
  trainer fit(model, loss, optimizer, schedule, training);
  attribution_job<Model, decltype(fit)> job{opt,       model,     loss,  optimizer, fit,     w,
                                            data.train, data.test, order, rates,     tracked, outputs};
  announce<Policy>(job);
  const auto C = [&] {
    try {
      return contributions_of<Policy>(job);
    } catch (const divergence_error& e) {
      throw numerical_error(divergence_message(opt, e, training.max_loss));
    }
  }();
  const auto C_values = write_results(outputs, model, w, C, tracked);
  print_accuracies<Policy>(job, start);
  print_test_point_0<T>(tracked, {C_values.data(), C.rows(), C.cols()}, data.train, data.test);
  return 0;
}

/// Builds the model --model names (its family's row in the registry) on backend B and runs the
/// pipeline on it.
template <class T, class Policy, class B>
int run(const options& opt) {
  const auto spec = parse_model_spec(opt.model);  // its messages quote the spec
  return with_model<T, B>(spec, [&](auto& model) { return run<T, Policy>(opt, model, spec); });
}

} // namespace hydra::cli

int main(int argc, char** argv) {
  using namespace hydra::cli;
  options opt;
  CLI::App app{"hydra-attribute: HYDRA training-data attribution on NumPy files (see docs/attribution.md)"};
  add_options(app, opt);
  app.add_flag_callback(
      "--list-devices",
      [] {
        list_devices();
        throw CLI::Success();  // like --help: print and exit 0, whatever else is missing
      },
      "print the devices this build can run on (cpu, cuda:K NAME per CUDA device) and exit");
  use_one_line_errors(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : static_cast<int>(exit_code::bad_input);  // --help and --list-devices: 0
  }
  try {
    check_options(app, opt);  // every flag, before any file is read
    check_device(opt);
    const auto locks = lock_directories(opt);  // held until the run ends; taken before anything is written
    auto on_backend = [&]<class B>() {
      auto with_precision = [&]<class T>() {
        if (opt.method == "exact") return run<T, hydra::Exact, B>(opt);
        if (opt.method == "influence") return run<T, Influence, B>(opt);
        if (opt.method == "tracin") return run<T, TracIn, B>(opt);
        if (opt.method == "grad-dot") return run<T, GradDot, B>(opt);
        if (opt.method == "grad-cos") return run<T, GradCos, B>(opt);
        return run<T, hydra::HessianFree, B>(opt);
      };
      return opt.precision == "float64" ? with_precision.template operator()<double>()
                                        : with_precision.template operator()<float>();
    };
#ifdef HYDRA_ATTRIBUTE_WITH_CUDA
    if (opt.device == "cuda") return on_backend.template operator()<hydra::cuda>();
#endif
    return on_backend.template operator()<hydra::cpu>();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s%s\n", message_prefix, without_library_prefix(e.what()).c_str());
    return static_cast<int>(exit_code_of(e));
  }
}
