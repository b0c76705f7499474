#pragma once
// hydra-attribute's inputs: the data, w_0, the batches, the learning rates and the tracked
// samples, each read and checked in the order its checks run, with errors that name the flag and
// file; and the sizes every product of them implies, checked before anything of that size exists.

#include <algorithm>
#include <cmath>
#include <functional>
#include <span>
#include <string>
#include <typeinfo>
#include <vector>

#include <fmt/core.h>

#include <hydra/hydra.hpp>

#include "options.hpp"

namespace hydra::cli {

// ---- reading the inputs, in the order their checks run ----------------------------------------

/// The data's sample shape must be the model's. A model of flat inputs (D) takes any shape with D
/// values per sample; an image model (C × H × W) takes N × C × H × W, or N × (C·H·W) with each
/// sample's values in the same row-major C × H × W order (CIFAR-10's own files), nothing else: an
/// N × H × W × C array (channels last) or one of another image size is refused, not reinterpreted.
template <class T>
void check_input(const dataset<T>& data, const model_spec& spec, const std::string& flag, const std::string& model) {
  const auto shape = data.sample_shape();
  const auto& expected = spec.sample_shape;
  const bool flat = expected.size() == 1;
  const bool same = flat ? data.sample_size() == expected[0]
                         : std::equal(shape.begin(), shape.end(), expected.begin(), expected.end()) ||
                               (shape.size() == 1 && shape[0] == spec.inputs);
  if (same) return;
  auto text = [](auto dims) {
    std::string t;
    for (auto d : dims) t += (t.empty() ? "" : " x ") + std::to_string(d);
    return t;
  };
  if (flat)
    fail(flag + " has " + std::to_string(data.sample_size()) + " features per sample but --model " + model + " takes " +
         std::to_string(expected[0]));
  fail(flag + " has samples of shape " + text(shape) + " but --model " + model + " takes N x " + text(expected) +
       " inputs (or N x " + std::to_string(spec.inputs) + ", the same values flattened)");
}

/// Refuses a NaN or Inf among the values read from `flag`'s file (as converted to --precision: a
/// float64 value beyond float32's range arrives as Inf), naming the file and where, before
/// training; `row` > 0 reports the position as sample and feature.
template <class T>
void check_finite(std::span<const T> values, index row, const std::string& flag, const std::string& file,
                  const std::string& precision) {
  const auto bad = std::find_if(values.begin(), values.end(), [](T v) { return !std::isfinite(v); });
  if (bad == values.end()) return;
  const auto at = static_cast<index>(bad - values.begin());
  const std::string where = row > 0 ? "sample " + std::to_string(at / row) + ", feature " + std::to_string(at % row)
                                    : "value " + std::to_string(at);
  fail(fmt::format("{} {}: {} is {} (as {}); inputs must be finite", flag, file, where, *bad, precision));
}

/// The training and test data.
template <class T>
struct data_sets {
  dataset<T> train, test;
};

/// --train-x/--train-y and --test-x/--test-y, with the labels and sample shape the model takes.
template <class T>
data_sets<T> load_data(const options& opt, const model_spec& spec) {
  auto train = reading("--train-x " + opt.train_x + ", --train-y " + opt.train_y,
                       [&] { return load_npy_dataset<T>(opt.train_x, opt.train_y, spec.outputs); });
  auto test = reading("--test-x " + opt.test_x + ", --test-y " + opt.test_y,
                      [&] { return load_npy_dataset<T>(opt.test_x, opt.test_y, spec.outputs); });
  check_input(train, spec, "--train-x", opt.model);
  check_input(test, spec, "--test-x", opt.model);
  check_finite(train.features(), train.sample_size(), "--train-x", opt.train_x, opt.precision);
  check_finite(test.features(), test.sample_size(), "--test-x", opt.test_x, opt.precision);
  return {std::move(train), std::move(test)};
}

/// w_0: the values of --init, or the model's seeded initialisation.
template <class B, class T, class Model>
vector<T, B> initial_parameters(const options& opt, Model& model) {
  const index P = model.parameter_count();
  vector<T, B> w(P);
  if (opt.init.empty()) {
    model.initialize(w.view(), opt.seed);
    return w;
  }
  const auto init = reading("--init " + opt.init, [&] { return load_npy_features<T>(opt.init); });
  if (static_cast<index>(init.data.size()) != P)
    fail("--init " + opt.init + " has " + std::to_string(init.data.size()) + " values, the model has " +
         std::to_string(P) + " parameters");
  check_finite(std::span<const T>(init.data), 0, "--init", opt.init, opt.precision);
  B::copy_from_host(init.data.data(), P, w.data());
  return w;
}

/// Calls f(bn) for every BatchNorm2d of the model, in layer order (nothing for a model without).
template <class Model, class F>
void for_each_batch_norm_of(Model& model, F&& f) {
  using BN = BatchNorm2d<typename Model::scalar_type, typename Model::backend_type>;
  if constexpr (requires(const std::function<void(void*)>& g) { model.for_each_erased(typeid(BN), g); })
    for_each_layer<BN>(model, f);
}

/// The running statistics training starts from: --init-buffers' values, in model_buffers' layout
/// (each batch norm's running_mean then running_var, batch norms in layer order: PyTorch's
/// state_dict order of those buffers without num_batches_tracked), checked finite and every
/// variance >= 0; without it, the fresh ones the model was built with (mean 0, variance 1).
template <class T, class Model>
void initial_buffers(const options& opt, Model& model) {
  if (opt.init_buffers.empty()) return;
  const std::string flag = "--init-buffers " + opt.init_buffers;
  const auto buffers = reading(flag, [&] { return load_npy_features<T>(opt.init_buffers); });
  std::vector<index> channels;
  for_each_batch_norm_of(model, [&](const auto& bn) { channels.push_back(bn.channels()); });
  index expected = 0;
  for (const index c : channels) expected += 2 * c;
  const auto count = static_cast<index>(buffers.data.size());
  if (count != expected || buffers.shape.size() != 1)
    fail(fmt::format("{} has {} values{}, --model {}'s {} batch norms hold {} (each one's running_mean then "
                     "running_var, as a 1-d array)",
                     flag, count, buffers.shape.size() == 1 ? "" : " not in a 1-d array", opt.model, channels.size(),
                     expected));
  check_finite(std::span<const T>(buffers.data), 0, "--init-buffers", opt.init_buffers, opt.precision);
  index at = 0;
  for (std::size_t k = 0; k < channels.size(); ++k) {
    const index c = channels[k];
    for (index j = 0; j < c; ++j)
      if (const T v = buffers.data[static_cast<std::size_t>(at + c + j)]; v < T(0))
        fail(fmt::format("{}: value {} is {}, the running_var of batch norm {} (channel {}); a variance must be >= 0",
                         flag, at + c + j, static_cast<double>(v), k, j));
    at += 2 * c;
  }
  set_model_buffers(model, std::span<const T>(buffers.data));
}

/// Training normalises by the batch's own statistics, which need more than one value per channel
/// (PyTorch: "Expected more than 1 value per channel when training"): a batch norm that sees
/// H × W = 1 × 1 values per sample (mobilenetv2's last) cannot train on batches of one. Refused
/// before training, naming the flag that sets the batch size.
template <class Model>
void check_batch_statistics(const options& opt, const batch_order& order, Model& model) {
  if (order.steps() == 0 || order.batch_size() > 1) return;
  index k = 0;
  for_each_batch_norm_of(model, [&](const auto& bn) {
    const index pixels = bn.input_size() / bn.channels();
    if (order.batch_size() * pixels <= 1)
      fail(fmt::format("{}: batches of {} sample cannot train --model {}: its batch norm {} sees 1 x 1 value per "
                       "sample and channel, and training normalises by the batch's statistics, which need more "
                       "than one value per channel; use batches of at least 2",
                       opt.order.empty() ? "--batch-size " + std::to_string(opt.batch_size) : "--order " + opt.order,
                       order.batch_size(), opt.model, k));
    ++k;
  });
}

/// The bytes of a run's per-step tables (the batch order's T × B indices and the T learning
/// rates), computed in double so that no product can overflow.
inline double step_table_bytes(double steps, double batch) { return steps * (batch + 1.0) * 8.0; }

/// The batches: --order's T × B table, or seeded shuffles of --epochs and --batch-size (T =
/// --epochs × ⌊N / --batch-size⌋ steps, refused before allocating when it does not fit).
inline batch_order read_order(const options& opt, index N) {
  if (opt.order.empty()) {
    if (opt.batch_size > N)
      fail("--batch-size " + std::to_string(opt.batch_size) + " is larger than the training set (" +
           std::to_string(N) + " samples in --train-x)");
    const double steps = static_cast<double>(opt.epochs) * static_cast<double>(N / opt.batch_size);  // last batch dropped
    const double bytes = step_table_bytes(steps, static_cast<double>(opt.batch_size));
    const auto available = static_cast<double>(cpu::memory_available());
    if (bytes > available || steps > 9e18)
      too_large(fmt::format("--epochs {} over {} samples in batches of --batch-size {} is {:.4g} steps; their batch "
                            "order and learning rates need {:.4g} bytes, more than the {:.4g} available",
                            opt.epochs, N, opt.batch_size, steps, bytes, available));
    return batch_order::shuffled(N, opt.batch_size, opt.epochs, opt.seed);
  }
  auto table = reading("--order " + opt.order, [&] { return load_npy_indices(opt.order); });
  if (table.shape.size() != 2) fail("--order " + opt.order + " must be a 2-d T × B table of int64 indices");
  return reading("--order " + opt.order,
                 [&] { return batch_order::from_table(std::move(table.data), table.shape[0], table.shape[1], N); });
}

/// One learning rate per step: --lr-file's, or --lr at every step.
inline std::vector<double> read_rates(const options& opt, index steps) {
  if (opt.lr_file.empty()) return std::vector<double>(static_cast<std::size_t>(steps), opt.lr);
  auto rates = reading("--lr-file " + opt.lr_file, [&] { return load_npy_features<double>(opt.lr_file).data; });
  if (static_cast<index>(rates.size()) != steps)
    fail("--lr-file " + opt.lr_file + " has " + std::to_string(rates.size()) + " rates for " + std::to_string(steps) +
         " steps");
  for (std::size_t t = 0; t < rates.size(); ++t)
    if (!(std::isfinite(rates[t]) && rates[t] > 0))
      fail("--lr-file " + opt.lr_file + ": the rate of step " + std::to_string(t) + " is " + shown(rates[t]) +
           "; rates must be finite and > 0");
  return rates;
}

/// Refuses a --track list with an index outside the training set or a sample listed twice
/// (docs/attribution.md), for every method, before training.
inline void check_tracked(const std::vector<index>& tracked, index N, const std::string& file) {
  std::vector<index> position(static_cast<std::size_t>(N), -1);
  for (std::size_t r = 0; r < tracked.size(); ++r) {
    const index i = tracked[r];
    if (i < 0 || i >= N)
      fail("--track " + file + ": tracked[" + std::to_string(r) + "] = " + std::to_string(i) +
           " is outside the training set [0, " + std::to_string(N) + ")");
    if (position[static_cast<std::size_t>(i)] >= 0)
      fail("--track " + file + ": training sample " + std::to_string(i) + " is tracked twice (tracked[" +
           std::to_string(position[static_cast<std::size_t>(i)]) + "] and tracked[" + std::to_string(r) + "])");
    position[static_cast<std::size_t>(i)] = static_cast<index>(r);
  }
}

/// The training samples to explain: --track's indices (checked), or all N.
inline std::vector<index> read_tracked(const options& opt, index N) {
  if (opt.track != "all") {
    auto t = reading("--track " + opt.track, [&] { return load_npy_indices(opt.track); });
    if (t.shape.size() != 1) fail("--track " + opt.track + " must be a 1-d array of int64 indices");
    if (t.data.empty()) fail("--track " + opt.track + " lists no training sample");
    check_tracked(t.data, N, opt.track);
    return std::move(t.data);
  }
  std::vector<index> all(static_cast<std::size_t>(N));
  for (index i = 0; i < N; ++i) all[static_cast<std::size_t>(i)] = i;
  return all;
}

/// Refuses, before training, a run whose method would hold more than the backend's memory: the
/// n × M contributions, and per method the tracker's two n × |w| states (in memory unless
/// --state-dir), the M test gradients of --lean and the baselines, or TracIn's recorded
/// parameters. Computed in double: no product overflows. (--method exact --lean's trajectory is
/// checked by adjoint_contributions, which knows its checkpoints.)
template <class T, class B>
void check_run_fits(const options& opt, index P, index N, index M, index n, index epochs) {
  const double s = sizeof(T), p = static_cast<double>(P), m = static_cast<double>(M), k = static_cast<double>(n);
  double bytes = 2.0 * k * m * s;  // the contributions and their host copy
  std::string what = "the contributions";
  if (opt.method == "hessian-free" || opt.method == "exact") {
    if (opt.lean) {
      bytes += (m * p + (opt.method == "exact" ? 2.0 * static_cast<double>(N) * m : 0.0)) * s;
      what += " and the test points' gradients";
    } else if (opt.state_dir.empty()) {
      bytes += 2.0 * k * p * s;
      what += ", the two states of every tracked sample";
    }
  } else {
    bytes += m * p * s;
    what += " and the test points' gradients";
    if (opt.method == "tracin") {
      const index every = opt.tracin_every > 0 ? opt.tracin_every : 1;
      bytes += (static_cast<double>(epochs / every) + 1.0) * p * s;
      what += ", the parameters recorded every --tracin-every epochs";
    }
  }
  const auto available = static_cast<double>(B::memory_available());
  if (bytes > available)
    too_large(fmt::format("{} tracked samples × {} test points of a model with {} parameters: {} need {:.4g} bytes "
                          "({}), more than the {:.4g} available; track fewer (--track FILE){}",
                          n, M, P, what, bytes, opt.precision, available,
                          opt.method == "hessian-free" || opt.method == "exact" ? ", use --lean or --state-dir DIR"
                                                                                  : ""));
}

inline sgd_options sgd_settings(const options& opt) {
  return {.momentum = opt.momentum, .weight_decay = opt.weight_decay};
}

/// The divergence bound of --max-loss: 100·ln C for C classes unless given (trainer_options::max_loss).
inline double divergence_bound(const options& opt, index classes) {
  return opt.max_loss > 0 ? opt.max_loss : 100.0 * std::log(static_cast<double>(std::max<index>(classes, 2)));
}

/// The trainer's divergence bound and checkpoints: --resume DIR keeps checkpointing into DIR
/// unless --checkpoint names another folder.
inline trainer_options trainer_settings(const options& opt, index classes) {
  trainer_options training;
  training.max_loss = divergence_bound(opt, classes);
  training.checkpoint.directory = !opt.checkpoint.empty() ? opt.checkpoint : opt.resume;
  training.checkpoint.every_steps = opt.checkpoint_every;
  return training;
}

} // namespace hydra::cli
