#pragma once
// Independent references for the influence tests, on the host in double: the objective's Hessian
// built from the model's own HVPs on the whole training set as ONE batch (no chunking, no
// training_objective), a Gaussian-elimination solver with partial pivoting (not the library's
// Cholesky), a Gershgorin bound on the largest eigenvalue, and full-batch gradient descent on the
// weighted objective (1/N) Σ c_k ℓ_k + (λ/2)‖w‖² for retraining.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/data/dataset.hpp"
#include "hydra/nn/concepts.hpp"
#include "support/finite_difference.hpp"

namespace hydra::test {

inline dataset<double> make_data(index n, index features, index classes, unsigned seed) {
  auto x = normal_vector(static_cast<std::size_t>(n * features), seed);
  std::vector<label_type> y(static_cast<std::size_t>(n));
  for (index i = 0; i < n; ++i) y[static_cast<std::size_t>(i)] = static_cast<label_type>((i * 7 + seed) % classes);
  return dataset<double>({features}, std::move(x), std::move(y), classes);
}

inline batch_targets<double> labels_of(const dataset<double>& data) { return {data.labels().data(), {}}; }

/// Row-major P × P: row c = (H + shift·I) e_c with H the Hessian of the mean loss over all of
/// `data` (one model call) plus λI; shift is added on the diagonal (damping).
template <class M, class L>
std::vector<double> reference_hessian(M& model, L& loss, const dataset<double>& data, const std::vector<double>& w,
                                      double weight_decay, double shift = 0) {
  const index P = model.parameter_count();
  std::vector<double> I(static_cast<std::size_t>(P * P), 0.0), H(I.size());
  for (index c = 0; c < P; ++c) I[static_cast<std::size_t>(c * P + c)] = 1;
  model.hessian_vector_products(vector_view<const double>(w.data(), P), data.features_view(), labels_of(data), loss,
                                matrix_view<const double>(I.data(), P, P), matrix_view<double>(H.data(), P, P));
  for (index c = 0; c < P; ++c) H[static_cast<std::size_t>(c * P + c)] += weight_decay + shift;
  return H;
}

/// x = A⁻¹ b by Gaussian elimination with partial pivoting (A row-major n × n).
inline std::vector<double> gaussian_solve(std::vector<double> A, std::vector<double> b) {
  const std::size_t n = b.size();
  for (std::size_t c = 0; c < n; ++c) {
    std::size_t pivot = c;
    for (std::size_t r = c + 1; r < n; ++r)
      if (std::abs(A[r * n + c]) > std::abs(A[pivot * n + c])) pivot = r;
    if (A[pivot * n + c] == 0.0) FAIL("the reference matrix is singular at column ", c);
    for (std::size_t k = 0; k < n; ++k) std::swap(A[c * n + k], A[pivot * n + k]);
    std::swap(b[c], b[pivot]);
    for (std::size_t r = c + 1; r < n; ++r) {
      const double f = A[r * n + c] / A[c * n + c];
      for (std::size_t k = c; k < n; ++k) A[r * n + k] -= f * A[c * n + k];
      b[r] -= f * b[c];
    }
  }
  std::vector<double> x(n);
  for (std::size_t r = n; r-- > 0;) {
    double s = b[r];
    for (std::size_t k = r + 1; k < n; ++k) s -= A[r * n + k] * x[k];
    x[r] = s / A[r * n + r];
  }
  return x;
}

/// A x for row-major A (n × n).
inline std::vector<double> multiply(const std::vector<double>& A, const std::vector<double>& x) {
  const std::size_t n = x.size();
  std::vector<double> y(n, 0.0);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t k = 0; k < n; ++k) y[r] += A[r * n + k] * x[k];
  return y;
}

/// max_r Σ_k |A_rk| ≥ every |eigenvalue| of A (Gershgorin).
inline double gershgorin_bound(const std::vector<double>& A, std::size_t n) {
  double bound = 0;
  for (std::size_t r = 0; r < n; ++r) {
    double s = 0;
    for (std::size_t k = 0; k < n; ++k) s += std::abs(A[r * n + k]);
    bound = std::max(bound, s);
  }
  return bound;
}

inline double norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

/// Row r of a row-major matrix with `cols` columns.
inline std::vector<double> row_of(const std::vector<double>& m, std::size_t r, std::size_t cols) {
  return {m.begin() + static_cast<std::ptrdiff_t>(r * cols), m.begin() + static_cast<std::ptrdiff_t>((r + 1) * cols)};
}

/// A HessianOperator for a fixed symmetric matrix A (row-major n × n): products.row(j) = A v_j.
struct matrix_operator {
  using scalar_type = double;
  using backend_type = cpu;
  std::vector<double> A;
  index n = 0;
  index calls = 0;

  [[nodiscard]] index parameter_count() const { return n; }
  void hessian_vector_products(matrix_view<const double> directions, matrix_view<double> products) {
    for (index j = 0; j < directions.rows; ++j)
      for (index r = 0; r < n; ++r) {
        double s = 0;
        for (index c = 0; c < n; ++c) s += A[static_cast<std::size_t>(r * n + c)] * directions.row(j)[c];
        products.row(j)[r] = s;
      }
    ++calls;
  }
};

/// Per-sample gradients of all of `data` (rows), one model call, on the host.
template <class M, class L>
std::vector<double> sample_gradients(M& model, L& loss, const dataset<double>& data, const std::vector<double>& w) {
  const index P = model.parameter_count();
  std::vector<double> G(static_cast<std::size_t>(data.size() * P));
  model.per_sample_gradients(vector_view<const double>(w.data(), P), data.features_view(), labels_of(data), loss,
                             matrix_view<double>(G.data(), data.size(), P));
  return G;
}

/// ℓ(x_j, y_j; w) for every sample of `data`.
template <class M, class L>
std::vector<double> sample_losses(M& model, L& loss, const dataset<double>& data, const std::vector<double>& w) {
  std::vector<double> out(static_cast<std::size_t>(data.size()));
  for (index j = 0; j < data.size(); ++j) {
    const label_type y = data.label(j);
    out[static_cast<std::size_t>(j)] =
        model.loss(vector_view<const double>(w.data(), model.parameter_count()),
                   matrix_view<const double>(data.sample(j).data(), 1, data.sample_size()), {&y, {}}, loss);
  }
  return out;
}

/// 1/L for softmax regression on `data` with weight decay λ, L = λ + ½·max_i(‖x_i‖² + 1) a bound
/// on the objective's curvature (softmax's Hessian in the logits has norm ≤ ½; the bias adds 1).
inline double softmax_regression_step(const dataset<double>& data, double weight_decay) {
  double widest = 0;
  for (index i = 0; i < data.size(); ++i) {
    double s = 1;
    for (double x : data.sample(i)) s += x * x;
    widest = std::max(widest, s);
  }
  return 1 / (weight_decay + 0.5 * widest);
}

/// Minimises (1/N) Σ_k c_k ℓ_k + (λ/2)‖w‖² by full-batch gradient descent with step `step` from
/// w until ‖∇‖ ≤ tolerance; REQUIREs convergence within max_steps.
template <class M, class L>
std::vector<double> gradient_descent(M& model, L& loss, const dataset<double>& data, std::vector<double> w,
                                     const std::vector<double>& sample_weights, double weight_decay, double step,
                                     double tolerance = 1e-13, index max_steps = 200000) {
  const index P = model.parameter_count(), N = data.size();
  std::vector<double> g(static_cast<std::size_t>(P));
  for (index t = 0; t < max_steps; ++t) {
    const auto G = sample_gradients(model, loss, data, w);
    for (index p = 0; p < P; ++p) {
      double s = 0;
      for (index i = 0; i < N; ++i)
        s += sample_weights[static_cast<std::size_t>(i)] * G[static_cast<std::size_t>(i * P + p)];
      g[static_cast<std::size_t>(p)] = s / static_cast<double>(N) + weight_decay * w[static_cast<std::size_t>(p)];
    }
    if (norm(g) <= tolerance) return w;
    for (index p = 0; p < P; ++p) w[static_cast<std::size_t>(p)] -= step * g[static_cast<std::size_t>(p)];
  }
  FAIL("gradient descent did not reach ‖∇‖ <= ", tolerance, " in ", max_steps, " steps (‖∇‖ = ", norm(g), ")");
  return w;
}

} // namespace hydra::test
