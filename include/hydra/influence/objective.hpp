#pragma once
// The training objective whose Hessian influence functions invert (docs/influence.md):
//
//   R(w) = (1/N) Σ_{i<N} ℓ(x_i, y_i; w) + (λ/2)‖w‖²,   H = ∇²R(ŵ) = (1/N) Σ_i ∇²ℓ_i + λI
//
// at fixed parameters ŵ. The model's hessian_vector_products gives the Hessian of the MEAN loss
// of one batch without weight decay, so the whole-set product is a sum over chunks weighted by
// |chunk|/N, plus λv; k directions go through each chunk together.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/influence/concepts.hpp"
#include "hydra/nn/concepts.hpp"
#include "hydra/nn/hvp_workspace.hpp"
#include "hydra/train/batch.hpp"

namespace hydra {

struct objective_options {
  /// Training samples per Hessian-vector-product call.
  index batch_size = 256;
  /// The most bytes of HVP workspace (the directions' tangents and products) in use at once;
  /// directions are processed in chunks that fit.
  std::size_t hvp_memory_bytes = std::size_t{256} << 20;
  /// Keep the whole training set in backend memory after the first pass (one upload); false
  /// re-uploads it chunk by chunk on every pass (memory: one chunk).
  bool keep_batches = true;
};

/// H v for the objective above, over the whole training set or a mini-batch of it. Holds
/// references to the model, loss, data set and parameters: they must outlive it, and ŵ must not
/// change while it is used.
template <class M, class L>
class training_objective {
  static_assert(check_model<M>());
  static_assert(check_loss<L>());

public:
  using scalar_type = typename M::scalar_type;
  using backend_type = typename M::backend_type;
  using T = scalar_type;
  using B = backend_type;

  training_objective(M& model, L& loss, const dataset<T>& train, vector_view<const T> w, T weight_decay,
                     objective_options options = {})
      : model_(model), loss_(loss), train_(train), w_(w), lambda_(weight_decay), options_(options) {
    if (w.size != model.parameter_count())
      throw shape_error("training_objective: the parameter vector has " + std::to_string(w.size) +
                        " entries, the model has " + std::to_string(model.parameter_count()) + " parameters");
    if (train.empty()) throw invalid_argument("training_objective: the training set is empty");
    if (train.sample_size() != model.input_size())
      throw shape_error("training_objective: training samples have " + std::to_string(train.sample_size()) +
                        " features, the model takes " + std::to_string(model.input_size()));
    if (!(weight_decay >= T(0)) || !std::isfinite(weight_decay))
      throw invalid_argument("training_objective: weight decay " + std::to_string(weight_decay) +
                             " must be finite and >= 0");
    if (options.batch_size <= 0)
      throw invalid_argument("training_objective: batch_size " + std::to_string(options.batch_size) +
                             " must be positive");
  }

  [[nodiscard]] index parameter_count() const noexcept { return w_.size; }
  /// N, the number of samples the mean loss runs over.
  [[nodiscard]] index training_set_size() const noexcept { return train_.size(); }
  [[nodiscard]] T weight_decay() const noexcept { return lambda_; }
  [[nodiscard]] const objective_options& options() const noexcept { return options_; }
  /// Whole-training-set products computed so far (each one pass over the N samples, k directions).
  [[nodiscard]] index full_passes() const noexcept { return full_passes_; }
  /// Mini-batch products computed so far.
  [[nodiscard]] index batch_passes() const noexcept { return batch_passes_; }

  /// products.row(j) = H directions.row(j), H = (1/N) Σ_i ∇²ℓ_i(ŵ) + λI, for k = directions.rows.
  /// products must not overlap directions.
  void hessian_vector_products(matrix_view<const T> directions, matrix_view<T> products) {
    check_directions("hessian_vector_products", directions, products);
    start_with_weight_decay(directions, products);
    const auto N = static_cast<T>(train_.size());
    if (options_.keep_batches) {
      if (chunks_.empty()) upload_training_set();
      for (const auto& chunk : chunks_)
        add_products(chunk, static_cast<T>(chunk.size()) / N, directions, products);
    } else {
      for_each_chunk(train_, options_.batch_size, staging_, [&](index, index count) {
        add_products(staging_, static_cast<T>(count) / N, directions, products);
      });
    }
    ++full_passes_;
  }

  /// The same with the Hessian of the mean loss over the samples `batch` (indices into the
  /// training set; repeats count twice) in place of the whole set, weight decay included:
  /// products.row(j) = ((1/|batch|) Σ_{b} ∇²ℓ_b(ŵ) + λI) directions.row(j).
  void batch_hessian_vector_products(std::span<const index> batch, matrix_view<const T> directions,
                                     matrix_view<T> products) {
    check_directions("batch_hessian_vector_products", directions, products);
    if (batch.empty()) throw invalid_argument("batch_hessian_vector_products: the batch is empty");
    for (std::size_t k = 0; k < batch.size(); ++k)
      if (batch[k] < 0 || batch[k] >= train_.size())
        throw invalid_argument("batch_hessian_vector_products: batch[" + std::to_string(k) + "] = " +
                               std::to_string(batch[k]) + " is outside the training set [0, " +
                               std::to_string(train_.size()) + ")");
    start_with_weight_decay(directions, products);
    const auto size = static_cast<index>(batch.size());
    for (index first = 0; first < size; first += options_.batch_size) {
      const index count = std::min(options_.batch_size, size - first);
      staging_.load(train_, batch.subspan(static_cast<std::size_t>(first), static_cast<std::size_t>(count)));
      add_products(staging_, static_cast<T>(count) / static_cast<T>(size), directions, products);
    }
    ++batch_passes_;
  }

private:
  void check_directions(const char* what, matrix_view<const T> directions, matrix_view<T> products) const {
    const index P = parameter_count();
    if (directions.cols != P || products.rows != directions.rows || products.cols != P)
      throw shape_error(std::string(what) + ": directions " + std::to_string(directions.rows) + " x " +
                        std::to_string(directions.cols) + " and products " + std::to_string(products.rows) + " x " +
                        std::to_string(products.cols) + ", expected both k x " + std::to_string(P));
    // products is written (λv) before the directions are read for the last time.
    const T* d_begin = directions.data;
    const T* d_end = directions.rows > 0 ? directions.row(directions.rows - 1) + P : d_begin;
    const T* p_begin = products.data;
    const T* p_end = products.rows > 0 ? products.row(products.rows - 1) + P : p_begin;
    const std::less<const T*> before;  // a total order even between unrelated arrays
    if (directions.rows > 0 && P > 0 && before(d_begin, p_end) && before(p_begin, d_end))
      throw invalid_argument(std::string(what) + ": products must not overlap directions");
  }

  void start_with_weight_decay(matrix_view<const T> directions, matrix_view<T> products) {
    B::copy(directions, products);
    B::scal(lambda_, products);
  }

  void upload_training_set() {
    std::vector<index> indices;
    for (index first = 0; first < train_.size(); first += options_.batch_size) {
      const index count = std::min(options_.batch_size, train_.size() - first);
      indices.resize(static_cast<std::size_t>(count));
      for (index k = 0; k < count; ++k) indices[static_cast<std::size_t>(k)] = first + k;
      chunks_.emplace_back().load(train_, indices);
    }
  }

  /// products += weight · H_batch directions, H_batch the Hessian of the batch's mean loss.
  void add_products(const device_batch<T, B>& batch, T weight, matrix_view<const T> directions,
                    matrix_view<T> products) {
    const index k = directions.rows, P = parameter_count();
    const index step = directions_per_call(batch.size());
    for (index first = 0; first < k; first += step) {
      const index count = std::min(step, k - first);
      buffer_.resize(count, P);
      model_.hessian_vector_products(w_, batch.features(), batch.targets(), loss_, directions.row_block(first, count),
                                     buffer_.view());
      B::axpy(weight, std::as_const(buffer_).view(), products.row_block(first, count));
    }
  }

  /// Directions per model call so that its workspace stays within hvp_memory_bytes.
  [[nodiscard]] index directions_per_call(index batch) const {
    return hvp_directions_per_call(model_, batch, options_.hvp_memory_bytes);
  }

  M& model_;
  L& loss_;
  const dataset<T>& train_;
  vector_view<const T> w_;
  T lambda_;
  objective_options options_;
  std::vector<device_batch<T, B>> chunks_;
  device_batch<T, B> staging_;
  matrix<T, B> buffer_;
  index full_passes_ = 0;
  index batch_passes_ = 0;
};

} // namespace hydra
