#pragma once
// Gradient-similarity baselines, on the sign and scale of HYDRA's C(i, j) and of C_IF
// (docs/influence.md, "Gradient similarity"): positive means that removing training sample i
// would raise test loss j.
//
//   Grad-Dot   C(i, j) = (1/N) · ∇ℓ(test_j; w_T) · ∇ℓ(z_i; w_T)      influence functions with H = I
//   Grad-Cos   C(i, j) = cos(∇ℓ(test_j; w_T), ∇ℓ(z_i; w_T))            unitless; 0 for a zero gradient
//   TracIn-CP  C(i, j) = Σ_c weight_c · ∇ℓ(test_j; w_c) · ∇ℓ(z_i; w_c) (Pruthi et al. 2020)
//
// TracIn's weights are an input: tracin_weight() gives the default η_c·K/(|B|(1−μ)) for
// checkpoints every K epochs of SGD with momentum μ; the docs derive it.
// Every method holds the M × |w| test gradients and `train_chunk` × |w| training gradients at
// once, and adds one GEMM per chunk (per checkpoint) into the n × M result.

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/train/batch.hpp"

namespace hydra {

struct gradient_similarity_options {
  /// Samples per model call when computing per-sample gradients.
  index gradient_batch = 256;
  /// Training samples whose gradients are held at once (train_chunk × |w| scalars): bounds the
  /// memory whatever the number of tracked samples.
  index train_chunk = 256;
};

/// One checkpoint w_c of a training run and its TracIn weight. `step` places it in the run (the
/// steps taken before it was saved, or its epoch: any strictly increasing count); `parameters`
/// (|w|, backend memory) must stay valid during the call.
template <Scalar T>
struct tracin_checkpoint {
  index step = 0;
  vector_view<const T> parameters;
  double weight = 0;
};

/// The default TracIn weight of a checkpoint that closes `epochs` epochs of SGD at learning rate
/// η with batches of `batch_size` and momentum μ: η · epochs / (batch_size · (1 − μ)). Each epoch
/// visits sample i once, and that visit's impulse η/|B|·∇ℓ_i moves w by η/(|B|(1 − μ)) in all
/// (docs/influence.md). With a schedule, η is the mean rate over the interval.
[[nodiscard]] inline double tracin_weight(double learning_rate, index epochs, index batch_size, double momentum) {
  if (!std::isfinite(learning_rate) || learning_rate <= 0)
    throw invalid_argument("tracin_weight: the learning rate must be finite and > 0, got " +
                           std::to_string(learning_rate));
  if (epochs <= 0) throw invalid_argument("tracin_weight: epochs must be > 0, got " + std::to_string(epochs));
  if (batch_size <= 0)
    throw invalid_argument("tracin_weight: the batch size must be > 0, got " + std::to_string(batch_size));
  if (!(momentum >= 0 && momentum < 1))
    throw invalid_argument("tracin_weight: the momentum must be in [0, 1), got " + std::to_string(momentum));
  return learning_rate * static_cast<double>(epochs) / (static_cast<double>(batch_size) * (1 - momentum));
}

namespace detail::gradient_similarity {

/// Refuses, before any gradient is computed, tracked indices outside the training set, test
/// samples of another width and non-positive batch or chunk sizes.
template <Scalar T>
void check_inputs(const char* who, const dataset<T>& train, std::span<const index> tracked, const dataset<T>& test,
                  const gradient_similarity_options& options) {
  const std::string where(who);
  for (std::size_t r = 0; r < tracked.size(); ++r)
    if (tracked[r] < 0 || tracked[r] >= train.size())
      throw invalid_argument(where + ": tracked[" + std::to_string(r) + "] = " + std::to_string(tracked[r]) +
                             " is outside the training set [0, " + std::to_string(train.size()) + ")");
  if (test.sample_size() != train.sample_size() && !test.empty())
    throw shape_error(where + ": test samples have " + std::to_string(test.sample_size()) +
                      " features, training samples " + std::to_string(train.sample_size()));
  if (options.gradient_batch <= 0)
    throw invalid_argument(where + ": gradient_batch must be > 0, got " + std::to_string(options.gradient_batch));
  if (options.train_chunk <= 0)
    throw invalid_argument(where + ": train_chunk must be > 0, got " + std::to_string(options.train_chunk));
}

template <class M>
void check_parameters(const char* who, const std::string& what, const M& model,
                      vector_view<const typename M::scalar_type> w) {
  if (w.size != model.parameter_count())
    throw shape_error(std::string(who) + ": " + what + " has " + std::to_string(w.size) + " entries, the model has " +
                      std::to_string(model.parameter_count()) + " parameters");
}

/// G (|indices| × |w|, resized) = ∇ℓ(data[indices[k]]; w) row by row, `batch_size` samples per
/// model call. Throws numerical_error naming the first sample whose gradient is not finite.
template <class M, class L>
void gradients_of(M& model, L& loss, vector_view<const typename M::scalar_type> w,
                  const dataset<typename M::scalar_type>& data, std::span<const index> indices, index batch_size,
                  device_batch<typename M::scalar_type, typename M::backend_type>& batch,
                  matrix<typename M::scalar_type, typename M::backend_type>& G, const char* who, const char* what,
                  const std::string& at) {
  using T = typename M::scalar_type;
  using B = typename M::backend_type;
  const auto n = static_cast<index>(indices.size());
  G.resize(n, model.parameter_count());
  for (index first = 0; first < n; first += batch_size) {
    const index count = std::min(batch_size, n - first);
    batch.load(data, indices.subspan(static_cast<std::size_t>(first), static_cast<std::size_t>(count)));
    model.per_sample_gradients(w, batch.features(), batch.targets(), loss, G.view().row_block(first, count));
  }
  if (B::all_finite(std::as_const(G).flat())) return;
  for (index r = 0; r < n; ++r)
    if (!B::all_finite(vector_view<const T>(std::as_const(G).view().row(r), G.cols())))
      throw numerical_error(std::string(who) + ": the gradient of " + what + " sample " +
                            std::to_string(indices[static_cast<std::size_t>(r)]) + " " + at +
                            " is not finite; check the parameters");
}

/// Scales every row of G to unit length; a row whose squared norm is 0 in T stays (or becomes)
/// zero, so that its cosines are 0 rather than 0/0.
template <class B, Scalar T>
void normalize_rows(matrix<T, B>& G, std::span<const index> indices, const char* what) {
  for (index r = 0; r < G.rows(); ++r) {
    const vector_view<T> row(G.view().row(r), G.cols());
    const T squared = B::dot(vector_view<const T>(row), vector_view<const T>(row));
    if (!std::isfinite(squared))
      throw numerical_error("grad_cos: the squared norm of the gradient of " + std::string(what) + " sample " +
                            std::to_string(indices[static_cast<std::size_t>(r)]) + " overflows; use float64");
    if (squared > T(0)) B::scal(T(1) / std::sqrt(squared), row);
    else B::fill(T(0), row);
  }
}

inline std::vector<index> all_of(index n) {
  std::vector<index> indices(static_cast<std::size_t>(n));
  std::iota(indices.begin(), indices.end(), index(0));
  return indices;
}

/// out (n × M) += Σ_c alpha_c · G_train(w_c) · G_test(w_c)ᵀ over `checkpoints`, the training
/// gradients `train_chunk` rows at a time; with `cosine`, the rows are normalised first. The
/// first checkpoint writes (beta = 0), the rest accumulate.
template <class M, class L>
void accumulate(M& model, L& loss, std::span<const tracin_checkpoint<typename M::scalar_type>> checkpoints,
                const dataset<typename M::scalar_type>& train, std::span<const index> tracked,
                const dataset<typename M::scalar_type>& test, const gradient_similarity_options& options, bool cosine,
                const char* who, matrix<typename M::scalar_type, typename M::backend_type>& out) {
  using T = typename M::scalar_type;
  using B = typename M::backend_type;
  const auto n = static_cast<index>(tracked.size());
  const auto test_indices = all_of(test.size());
  device_batch<T, B> batch;
  matrix<T, B> test_gradients, train_gradients;
  for (std::size_t c = 0; c < checkpoints.size(); ++c) {
    const auto& checkpoint = checkpoints[c];
    const std::string at = std::string(who) == "tracin" ? "at checkpoints[" + std::to_string(c) + "]" : "at w";
    gradients_of(model, loss, checkpoint.parameters, test, test_indices, options.gradient_batch, batch, test_gradients,
                 who, "test", at);
    if (cosine) normalize_rows<B>(test_gradients, test_indices, "test");
    const T beta = c == 0 ? T(0) : T(1);
    for (index first = 0; first < n; first += options.train_chunk) {
      const index count = std::min(options.train_chunk, n - first);
      const auto rows = tracked.subspan(static_cast<std::size_t>(first), static_cast<std::size_t>(count));
      gradients_of(model, loss, checkpoint.parameters, train, rows, options.gradient_batch, batch, train_gradients,
                   who, "training", at);
      if (cosine) normalize_rows<B>(train_gradients, rows, "training");
      B::gemm(transpose::no, transpose::yes, static_cast<T>(checkpoint.weight), std::as_const(train_gradients).view(),
              std::as_const(test_gradients).view(), beta, out.view().row_block(first, count));
    }
  }
}

} // namespace detail::gradient_similarity

/// Grad-Dot: C(r, j) = (1/N) · ∇ℓ(test_j; w) · ∇ℓ(train[tracked[r]]; w) for the tracked samples
/// (indices into `train`, the whole training set, N = train.size(); repeats allowed) and every
/// test point, at the trained parameters w. Influence functions with H = I: same sign and units.
template <class M, class L>
[[nodiscard]] matrix<typename M::scalar_type, typename M::backend_type>
grad_dot(M& model, L& loss, vector_view<const typename M::scalar_type> w, const dataset<typename M::scalar_type>& train,
         std::span<const index> tracked, const dataset<typename M::scalar_type>& test,
         const gradient_similarity_options& options = {}) {
  using T = typename M::scalar_type;
  detail::gradient_similarity::check_inputs("grad_dot", train, tracked, test, options);
  detail::gradient_similarity::check_parameters("grad_dot", "w", model, w);
  if (train.size() <= 0) throw invalid_argument("grad_dot: the training set is empty (N = 0)");
  const tracin_checkpoint<T> at_w{0, w, 1.0 / static_cast<double>(train.size())};
  matrix<typename M::scalar_type, typename M::backend_type> out(static_cast<index>(tracked.size()), test.size());
  detail::gradient_similarity::accumulate(model, loss, std::span(&at_w, 1), train, tracked, test, options, false,
                                          "grad_dot", out);
  return out;
}

/// Grad-Cos: C(r, j) = cos(∇ℓ(test_j; w), ∇ℓ(train[tracked[r]]; w)) in [−1, 1], unitless, with
/// Grad-Dot's sign. 0 where either gradient is zero (its squared norm is 0 in T), never NaN.
template <class M, class L>
[[nodiscard]] matrix<typename M::scalar_type, typename M::backend_type>
grad_cos(M& model, L& loss, vector_view<const typename M::scalar_type> w, const dataset<typename M::scalar_type>& train,
         std::span<const index> tracked, const dataset<typename M::scalar_type>& test,
         const gradient_similarity_options& options = {}) {
  using T = typename M::scalar_type;
  detail::gradient_similarity::check_inputs("grad_cos", train, tracked, test, options);
  detail::gradient_similarity::check_parameters("grad_cos", "w", model, w);
  const tracin_checkpoint<T> at_w{0, w, 1.0};
  matrix<typename M::scalar_type, typename M::backend_type> out(static_cast<index>(tracked.size()), test.size());
  detail::gradient_similarity::accumulate(model, loss, std::span(&at_w, 1), train, tracked, test, options, true,
                                          "grad_cos", out);
  return out;
}

/// TracIn-CP: C(r, j) = Σ_c checkpoints[c].weight · ∇ℓ(test_j; w_c) · ∇ℓ(train[tracked[r]]; w_c).
/// With the weights of tracin_weight() it is on C's sign and scale. Throws invalid_argument for no
/// checkpoints, steps that are not strictly increasing or a weight that is negative or not
/// finite, shape_error for a checkpoint whose length is not the model's |w|, all before any
/// gradient is computed.
template <class M, class L>
[[nodiscard]] matrix<typename M::scalar_type, typename M::backend_type>
tracin(M& model, L& loss, std::span<const tracin_checkpoint<typename M::scalar_type>> checkpoints,
       const dataset<typename M::scalar_type>& train, std::span<const index> tracked,
       const dataset<typename M::scalar_type>& test, const gradient_similarity_options& options = {}) {
  using B = typename M::backend_type;
  detail::gradient_similarity::check_inputs("tracin", train, tracked, test, options);
  if (checkpoints.empty()) throw invalid_argument("tracin: no checkpoints");
  for (std::size_t c = 0; c < checkpoints.size(); ++c) {
    const auto& checkpoint = checkpoints[c];
    const std::string name = "checkpoints[" + std::to_string(c) + "]";
    detail::gradient_similarity::check_parameters("tracin", name, model, checkpoint.parameters);
    if (!std::isfinite(checkpoint.weight) || checkpoint.weight < 0)
      throw invalid_argument("tracin: " + name + ".weight = " + std::to_string(checkpoint.weight) +
                             " must be finite and >= 0");
    if (c > 0 && checkpoint.step <= checkpoints[c - 1].step)
      throw invalid_argument("tracin: " + name + ".step = " + std::to_string(checkpoint.step) +
                             " does not come after checkpoints[" + std::to_string(c - 1) +
                             "].step = " + std::to_string(checkpoints[c - 1].step) +
                             "; checkpoint steps must be strictly increasing");
  }
  matrix<typename M::scalar_type, B> out(static_cast<index>(tracked.size()), test.size());
  detail::gradient_similarity::accumulate(model, loss, checkpoints, train, tracked, test, options, false, "tracin",
                                          out);
  return out;
}

} // namespace hydra
