#pragma once
// Contributions of tracked training samples to test losses (main text Eq. 7–9):
//
//   C(i, j) = −(1/N) · ∇_w ℓ(x_j^test, y_j^test; w_T) · ∇_{T,i}
//
// Positive: removing sample i (ε_i = −1/N) would raise test loss j to first order — the sample
// helps. Units: test loss. N: the size of the whole training set, however many are tracked.

#include <algorithm>
#include <string>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/nn/batch_norm_state.hpp"
#include "hydra/nn/concepts.hpp"
#include "hydra/train/batch.hpp"

namespace hydra {

/// Row j: ∇_w ℓ(x_j, y_j; w) for every sample of `data` (M × |w|), in batches of `batch_size`.
template <class M, class L>
[[nodiscard]] matrix<typename M::scalar_type, typename M::backend_type>
per_sample_gradients(M& model, L& loss, vector_view<const typename M::scalar_type> w,
                     const dataset<typename M::scalar_type>& data, index batch_size = 256) {
  using T = typename M::scalar_type;
  using B = typename M::backend_type;
  if (batch_size <= 0) throw invalid_argument("per_sample_gradients: batch size must be positive");
  matrix<T, B> gradients(data.size(), model.parameter_count());
  device_batch<T, B> batch;
  for_each_chunk(data, batch_size, batch, [&](index first, index count) {
    model.per_sample_gradients(w, batch.features(), batch.targets(), loss, gradients.view().row_block(first, count));
  });
  return gradients;
}

/// out (n × M) = −(1/N) · hypergradients (n × |w|) · test_gradientsᵀ (|w| × M): one GEMM.
template <class B, Scalar T>
void contributions(matrix_view<const T> hypergradients, matrix_view<const T> test_gradients, index training_set_size,
                   matrix_view<T> out) {
  if (hypergradients.cols != test_gradients.cols || out.rows != hypergradients.rows || out.cols != test_gradients.rows)
    throw shape_error("contributions: hypergradients " + std::to_string(hypergradients.rows) + " x " +
                      std::to_string(hypergradients.cols) + ", test gradients " + std::to_string(test_gradients.rows) +
                      " x " + std::to_string(test_gradients.cols) + ", output " + std::to_string(out.rows) + " x " +
                      std::to_string(out.cols));
  if (training_set_size <= 0) throw invalid_argument("contributions: the training set size N must be positive");
  B::gemm(transpose::no, transpose::yes, T(-1) / static_cast<T>(training_set_size), hypergradients, test_gradients,
          T(0), out);
}

/// The same, allocating the n × M result.
template <class B, Scalar T>
[[nodiscard]] matrix<T, B> contributions(matrix_view<const T> hypergradients, matrix_view<const T> test_gradients,
                                         index training_set_size) {
  matrix<T, B> out(hypergradients.rows, test_gradients.rows);
  contributions<B>(hypergradients, test_gradients, training_set_size, out.view());
  return out;
}

/// C (n × M) for every test point of `test`, computing the test gradients ∇ℓ(x_j, y_j; w) in
/// chunks of `chunk` points so that only chunk × |w| of them are held at once. Batch norms use
/// their running estimates here, as a test prediction does (PyTorch's eval mode): a test point's
/// gradient must not depend on the other test points of its chunk.
template <class M, class L>
[[nodiscard]] matrix<typename M::scalar_type, typename M::backend_type>
test_contributions(M& model, L& loss, vector_view<const typename M::scalar_type> w,
                   const dataset<typename M::scalar_type>& test,
                   matrix_view<const typename M::scalar_type> hypergradients, index training_set_size, index chunk = 256) {
  using T = typename M::scalar_type;
  using B = typename M::backend_type;
  if (chunk <= 0) throw invalid_argument("test_contributions: the chunk size must be positive");
  matrix<T, B> out(hypergradients.rows, test.size());
  matrix<T, B> gradients;
  device_batch<T, B> batch;
  batch_norm_scope<M> evaluation_mode(model, batch_norm_statistics::running);
  for_each_chunk(test, chunk, batch, [&](index first, index count) {
    gradients.resize(count, model.parameter_count());
    model.per_sample_gradients(w, batch.features(), batch.targets(), loss, gradients.view());
    contributions<B>(hypergradients, std::as_const(gradients).view(), training_set_size,
                     out.view().col_block(first, count));
  });
  return out;
}

/// C (n × M) from a lean tracker's projections u_j·∇_{T,i} onto the test gradients u_j:
/// C = −(1/N) · projections.
template <class B, Scalar T>
[[nodiscard]] matrix<T, B> contributions_from_projections(matrix_view<const T> projections, index training_set_size) {
  if (training_set_size <= 0)
    throw invalid_argument("contributions_from_projections: the training set size N must be positive");
  matrix<T, B> out(projections.rows, projections.cols);
  for (index r = 0; r < projections.rows; ++r) {
    const vector_view<T> row(out.view().row(r), out.cols());
    B::copy(vector_view<const T>(projections.row(r), projections.cols), row);
    B::scal(T(-1) / static_cast<T>(training_set_size), row);
  }
  return out;
}

/// C(i) for the mean test loss (Eq. 7): since ∇L_test = (1/M) Σ_j ∇ℓ_j, it is the mean of row i
/// of C(i, j). Host memory.
template <Scalar T>
[[nodiscard]] std::vector<T> mean_over_test_points(matrix_view<const T> contributions_host) {
  std::vector<T> mean(static_cast<std::size_t>(contributions_host.rows), T(0));
  for (index r = 0; r < contributions_host.rows; ++r) {
    double s = 0;
    for (index j = 0; j < contributions_host.cols; ++j) s += contributions_host.row(r)[j];
    mean[static_cast<std::size_t>(r)] = static_cast<T>(s / static_cast<double>(std::max<index>(1, contributions_host.cols)));
  }
  return mean;
}

} // namespace hydra
