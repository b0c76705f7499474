#pragma once
// Losses on network outputs: softmax cross-entropy on logits and mean squared error. Both are
// per-sample losses ℓ(z_b, y_b); models average them over the batch (docs/conventions.md).

#include "hydra/backend/concepts.hpp"
#include "hydra/backend/fwd.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/nn/concepts.hpp"

namespace hydra {

/// ℓ(z, y) = −log softmax(z)_y = logsumexp(z) − z_y, computed with the max shift so it stays finite
/// for large logits. Same as torch.nn.CrossEntropyLoss per sample.
template <Scalar T, Backend B = default_backend>
class SoftmaxCrossEntropy {
public:
  using scalar_type = T;
  using backend_type = B;

  /// out_b = ℓ(z_b, y_b)
  void values(matrix_view<const T> logits, batch_targets<T> y, vector_view<T> out) {
    B::softmax_cross_entropy(logits, y.labels, probabilities(logits), out);
  }
  /// d_b = scale · ∂ℓ/∂z_b = scale · (softmax(z_b) − onehot(y_b))
  void gradient(matrix_view<const T> logits, batch_targets<T> y, T scale, matrix_view<T> d) {
    refresh(logits, y);
    B::softmax_cross_entropy_gradient(probs_.view(), y.labels, scale, d);
  }
  /// For each of the k = r.rows / logits.rows blocks: out_jb = scale · ∇²_z ℓ(z_b) r_jb, with
  /// ∇²_z ℓ = diag(p) − p pᵀ (independent of the label).
  void hessian_product(matrix_view<const T> logits, batch_targets<T> y, T scale, matrix_view<const T> r,
                       matrix_view<T> out) {
    refresh(logits, y);
    B::softmax_cross_entropy_hessian_product(probs_.view(), r, scale, out);
  }

private:
  matrix_view<T> probabilities(matrix_view<const T> logits) {
    probs_.resize(logits.rows, logits.cols);
    return probs_.view();
  }
  void refresh(matrix_view<const T> logits, batch_targets<T> y) {
    scratch_.resize(logits.rows);
    values(logits, y, scratch_.view());
  }
  matrix<T, B> probs_;
  vector<T, B> scratch_;
};

/// ℓ(z, y) = (1/C) · ‖z − y‖², the per-sample part of torch.nn.MSELoss(reduction='mean'), where y
/// is the sample's target row or, for classification data, the one-hot encoding of its label.
template <Scalar T, Backend B = default_backend>
class MeanSquaredError {
public:
  using scalar_type = T;
  using backend_type = B;

  void values(matrix_view<const T> outputs, batch_targets<T> y, vector_view<T> out) {
    B::squared_error(outputs, y.labels, y.values, out);
  }
  /// d_b = scale · (2/C) · (z_b − y_b)
  void gradient(matrix_view<const T> outputs, batch_targets<T> y, T scale, matrix_view<T> d) {
    B::squared_error_gradient(outputs, y.labels, y.values, scale, d);
  }
  /// out = scale · (2/C) · r: the Hessian with respect to the outputs is (2/C)·I.
  void hessian_product(matrix_view<const T> outputs, batch_targets<T>, T scale, matrix_view<const T> r,
                       matrix_view<T> out) {
    B::copy(r, out);
    B::scal(scale * T(2) / static_cast<T>(outputs.cols), out);
  }
};

} // namespace hydra
