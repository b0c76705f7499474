#pragma once
// Ground truth for contributions, by retraining (docs/attribution.md, "Ground truth"):
//
// - trajectory-specific leave-one-out: replay the same SGD run (same initial parameters, batch
//   order, learning rates, momentum, weight decay) without sample i — each batch that held i keeps
//   its other samples and averages over |B_t| − 1 — and record Δℓ_j = ℓ_j(w_T^{−i}) − ℓ_j(w_T)
//   for every test point j. C(i, j) is the first-order effect of ε_i = −1/N alone; re-averaging
//   the batch over |B_t| − 1 scales the other samples' gradients by |B_t|/(|B_t| − 1) as well, an
//   effect of the same order that C does not model, so the two are compared by correlation (the
//   paper's practice), not entry by entry.
// - sample-weight perturbation: replay with sample i's weight 1/N ± ε in the training loss (its
//   batch gradient term scaled by 1 ± N·ε) and form the central difference
//   −(1/N)·(ℓ_j(w_T(+ε)) − ℓ_j(w_T(−ε)))/(2ε), which C(i, j) equals up to O(ε²) when the run is
//   smooth in ε (the engine's first-order check, for users' own models).
//
// Both replay SGD on the model's own backend; the results are host matrices in double.

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/data/batch_order.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/nn/concepts.hpp"
#include "hydra/nn/training_mode.hpp"
#include "hydra/optim/sgd.hpp"
#include "hydra/train/batch.hpp"

namespace hydra {

/// The SGD run to replay: the per-step learning rates actually applied (one per step of the
/// batch order; record them from step_context::learning_rate) and the optimizer's settings.
struct sgd_replay {
  std::span<const double> learning_rates;
  sgd_options optimizer{};
};

/// How the replay treats one training sample: as recorded, removed from its batches, or with its
/// loss weight 1/N + epsilon.
struct sample_change {
  enum class kind { none, remove, reweight };
  kind what = kind::none;
  index sample = -1;
  double epsilon = 0;

  [[nodiscard]] static sample_change none() { return {}; }
  [[nodiscard]] static sample_change remove(index i) { return {kind::remove, i, 0}; }
  [[nodiscard]] static sample_change reweight(index i, double eps) { return {kind::reweight, i, eps}; }
};

/// Final parameters of the SGD run from w0 along `order` with `change` applied. Throws
/// invalid_argument when the rates do not match the order's steps or the sample is out of range,
/// shape_error when w0 is not |w| long, numerical_error (naming the step) when the parameters stop
/// being finite.
template <class M, class L>
[[nodiscard]] vector<typename M::scalar_type, typename M::backend_type>
replay_sgd(M& model, L& loss, const dataset<typename M::scalar_type>& train, const batch_order& order,
           vector_view<const typename M::scalar_type> w0, const sgd_replay& run, sample_change change = {}) {
  using T = typename M::scalar_type;
  using B = typename M::backend_type;
  const index P = model.parameter_count();
  const index N = train.size();
  if (w0.size != P)
    throw shape_error("replay_sgd: the initial parameters have " + std::to_string(w0.size) + " values, the model " +
                      std::to_string(P));
  if (static_cast<index>(run.learning_rates.size()) != order.steps())
    throw invalid_argument("replay_sgd: " + std::to_string(run.learning_rates.size()) + " learning rates for " +
                           std::to_string(order.steps()) + " steps of the batch order");
  if (batch_norm_count(model) > 0 || dropout_count(model) > 0)
    throw invalid_argument("replay_sgd: the model has batch norms or dropout, whose training step this replay does not "
                           "reproduce (a removed or reweighted sample also changes the batch statistics); use the "
                           "trainer with a sample-weighted loss instead");
  if (change.what != sample_change::kind::none && (change.sample < 0 || change.sample >= N))
    throw invalid_argument("replay_sgd: sample " + std::to_string(change.sample) + " is not in [0, " +
                           std::to_string(N) + ")");

  vector<T, B> w(P), g(P), g_i(P);
  B::copy(w0, w.view());
  SGD<T, B> optimizer(P, run.optimizer);
  device_batch<T, B> batch, single;
  std::vector<index> kept;
  const index i = change.sample;
  for (index t = 0; t < order.steps(); ++t) {
    const auto indices = order.batch(t);
    const auto n = static_cast<index>(indices.size());
    const bool has_i = change.what != sample_change::kind::none && std::find(indices.begin(), indices.end(), i) != indices.end();
    if (has_i && change.what == sample_change::kind::remove) {
      kept.clear();
      for (index s : indices)
        if (s != i) kept.push_back(s);
      if (kept.empty()) {
        B::fill(T(0), g.view());  // the batch held only i: momentum and weight decay alone move w
      } else {
        batch.load(train, kept);
        model.gradient(std::as_const(w).view(), batch.features(), batch.targets(), loss, g.view());
      }
    } else {
      batch.load(train, indices);
      model.gradient(std::as_const(w).view(), batch.features(), batch.targets(), loss, g.view());
      if (has_i) {  // reweight: (1/|B|)·Σ_b (1 + N·ε·[b = i])·∇ℓ_b adds (N·ε/|B|)·∇ℓ_i
        const index one[] = {i};
        single.load(train, one);
        model.gradient(std::as_const(w).view(), single.features(), single.targets(), loss, g_i.view());
        B::axpy(static_cast<T>(static_cast<double>(N) * change.epsilon / static_cast<double>(n)),
                std::as_const(g_i).view(), g.view());
      }
    }
    optimizer.step(w.view(), std::as_const(g).view(), static_cast<T>(run.learning_rates[static_cast<std::size_t>(t)]));
    if (!B::all_finite(std::as_const(w).view()))
      throw numerical_error("replay_sgd: the parameters are not finite after step " + std::to_string(t) +
                            (change.what == sample_change::kind::none ? std::string()
                                                                      : " (replay for sample " + std::to_string(i) + ")"));
  }
  return w;
}

/// ℓ(x_j, y_j; w) for every point of `data`, in double, computed in chunks of `chunk`.
template <class M, class L>
[[nodiscard]] std::vector<double> per_sample_losses(M& model, L& loss, vector_view<const typename M::scalar_type> w,
                                                    const dataset<typename M::scalar_type>& data, index chunk = 256) {
  using T = typename M::scalar_type;
  using B = typename M::backend_type;
  if (chunk <= 0) throw invalid_argument("per_sample_losses: the chunk size must be positive");
  std::vector<double> out(static_cast<std::size_t>(data.size()));
  std::vector<T> host;
  matrix<T, B> outputs;
  vector<T, B> values;
  device_batch<T, B> batch;
  for_each_chunk(data, chunk, batch, [&](index first, index count) {
    outputs.resize(count, model.output_size());
    values.resize(count);
    model.forward(w, batch.features(), outputs.view());
    loss.values(std::as_const(outputs).view(), batch.targets(), values.view());
    host.resize(static_cast<std::size_t>(count));
    B::copy_to_host(values.data(), count, host.data());
    for (index j = 0; j < count; ++j) out[static_cast<std::size_t>(first + j)] = static_cast<double>(host[static_cast<std::size_t>(j)]);
  });
  return out;
}

/// Row k, column j: ℓ_j(w_T without samples[k]) − ℓ_j(w_T), trajectory-specific leave-one-out
/// (one replay per sample, plus one unchanged replay for w_T). Same sign and units as C(i, j):
/// positive means removing the sample raised test loss j. Cost: samples.size() + 1 replays.
template <class M, class L>
[[nodiscard]] matrix<double, cpu> leave_one_out(M& model, L& loss, const dataset<typename M::scalar_type>& train,
                                                const dataset<typename M::scalar_type>& test, const batch_order& order,
                                                vector_view<const typename M::scalar_type> w0, const sgd_replay& run,
                                                std::span<const index> samples) {
  const auto w_T = replay_sgd(model, loss, train, order, w0, run);
  const auto base = per_sample_losses(model, loss, std::as_const(w_T).view(), test);
  matrix<double, cpu> out(static_cast<index>(samples.size()), test.size());
  for (std::size_t k = 0; k < samples.size(); ++k) {
    const auto w = replay_sgd(model, loss, train, order, w0, run, sample_change::remove(samples[k]));
    const auto changed = per_sample_losses(model, loss, std::as_const(w).view(), test);
    for (index j = 0; j < test.size(); ++j)
      out.view().row(static_cast<index>(k))[j] = changed[static_cast<std::size_t>(j)] - base[static_cast<std::size_t>(j)];
  }
  return out;
}

/// Row k, column j: −(1/N)·(ℓ_j(w_T(+ε)) − ℓ_j(w_T(−ε)))/(2ε) with sample samples[k] weighted
/// 1/N ± ε: the retraining estimate of C(samples[k], j), exact up to O(ε²) on a smooth run. Pick ε
/// well below 1/N (e.g. 1e-3/N) in double; in float the difference drowns in rounding below ~1e-2/N.
template <class M, class L>
[[nodiscard]] matrix<double, cpu> weight_perturbation(M& model, L& loss, const dataset<typename M::scalar_type>& train,
                                                      const dataset<typename M::scalar_type>& test,
                                                      const batch_order& order,
                                                      vector_view<const typename M::scalar_type> w0,
                                                      const sgd_replay& run, std::span<const index> samples,
                                                      double epsilon) {
  if (!(epsilon > 0) || !std::isfinite(epsilon))
    throw invalid_argument("weight_perturbation: epsilon must be finite and > 0, got " + std::to_string(epsilon));
  const double N = static_cast<double>(train.size());
  matrix<double, cpu> out(static_cast<index>(samples.size()), test.size());
  for (std::size_t k = 0; k < samples.size(); ++k) {
    const auto up = replay_sgd(model, loss, train, order, w0, run, sample_change::reweight(samples[k], epsilon));
    const auto down = replay_sgd(model, loss, train, order, w0, run, sample_change::reweight(samples[k], -epsilon));
    const auto l_up = per_sample_losses(model, loss, std::as_const(up).view(), test);
    const auto l_down = per_sample_losses(model, loss, std::as_const(down).view(), test);
    for (index j = 0; j < test.size(); ++j)
      out.view().row(static_cast<index>(k))[j] =
          -(l_up[static_cast<std::size_t>(j)] - l_down[static_cast<std::size_t>(j)]) / (2 * epsilon * N);
  }
  return out;
}

} // namespace hydra
