#pragma once
// The explicit inverse: H + δI formed column by column from Hessian-vector products of the
// identity, factored once by Cholesky (LLᵀ) on the host in double, then any number of
// right-hand sides solved by two triangular substitutions. Small models only: H takes |w|²
// doubles and the factorisation |w|³/6 multiply-adds, hence the size limit.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/influence/concepts.hpp"

namespace hydra {

struct explicit_options {
  /// δ added to the diagonal of H before factoring.
  double damping = 0;
  /// Refuse models with more parameters than this (H alone is |w|² doubles: 200 MB at 5 000).
  index max_parameters = 5000;
};

/// What the factorisation found.
struct explicit_report {
  index parameters = 0;
  double damping = 0;
  /// Smallest and largest Cholesky pivot L_jj² of H + δI. Every pivot lies between the extreme
  /// eigenvalues of H + δI, so max_pivot / min_pivot is a lower bound on its condition number.
  double min_pivot = 0;
  double max_pivot = 0;
  /// max|H_ij − H_ji| / max|H_ij| of the formed H before it was symmetrised (rounding only).
  double relative_asymmetry = 0;
  /// Whole-training-set Hessian-vector-product calls spent forming H.
  index hvp_passes = 0;
};

/// (H + δI)⁻¹ for a HessianOperator, factored once at construction.
template <Scalar T, class B>
class explicit_inverse {
public:
  using scalar_type = T;
  using backend_type = B;

  /// Forms H with HVPs of the identity in blocks of rows, symmetrises it, adds δ and factors.
  /// Throws invalid_argument above options.max_parameters and numerical_error when H + δI is
  /// not (numerically) positive definite, naming the pivot.
  template <class O>
    requires HessianOperator<O> && std::same_as<typename O::scalar_type, T> && std::same_as<typename O::backend_type, B>
  explicit explicit_inverse(O& op, explicit_options options = {}) : P_(op.parameter_count()) {
    if (options.max_parameters < 0)
      throw invalid_argument("explicit_inverse: max_parameters " + std::to_string(options.max_parameters) + " < 0");
    if (P_ > options.max_parameters)
      throw invalid_argument("explicit_inverse: the model has |w| = " + std::to_string(P_) +
                             " parameters, more than explicit_options::max_parameters = " +
                             std::to_string(options.max_parameters) + " (H would need |w|^2 = " +
                             std::to_string(P_ * P_) +
                             " doubles); use conjugate gradient or LiSSA, or raise the limit");
    if (!(options.damping >= 0) || !std::isfinite(options.damping))
      throw invalid_argument("explicit_inverse: damping " + std::to_string(options.damping) +
                             " must be finite and >= 0");
    report_.parameters = P_;
    report_.damping = options.damping;
    form(op);
    factor(options.damping);
  }

  [[nodiscard]] index parameter_count() const noexcept { return P_; }
  [[nodiscard]] const explicit_report& report() const noexcept { return report_; }

  /// solutions.row(j) = (H + δI)⁻¹ rhs.row(j); solutions may be rhs itself.
  void solve(matrix_view<const T> rhs, matrix_view<T> solutions) const {
    if (rhs.cols != P_ || solutions.rows != rhs.rows || solutions.cols != P_)
      throw shape_error("explicit_inverse::solve: right-hand sides " + std::to_string(rhs.rows) + " x " +
                        std::to_string(rhs.cols) + " and solutions " + std::to_string(solutions.rows) + " x " +
                        std::to_string(solutions.cols) + ", expected both k x " + std::to_string(P_));
    const auto n = static_cast<std::size_t>(P_);
    std::vector<T> row(n);
    std::vector<double> x(n);
    for (index j = 0; j < rhs.rows; ++j) {
      B::copy_to_host(rhs.row(j), P_, row.data());
      for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<double>(row[i]);
      // L y = v (rows of L are contiguous), then Lᵀ x = y column-wise, reading row i of L.
      for (std::size_t i = 0; i < n; ++i) {
        const double* Li = &L_[i * n];
        x[i] = (x[i] - dot(Li, x.data(), i)) / Li[i];
      }
      for (std::size_t i = n; i-- > 0;) {
        const double* Li = &L_[i * n];
        x[i] /= Li[i];
        for (std::size_t k = 0; k < i; ++k) x[k] -= Li[k] * x[i];
      }
      for (std::size_t i = 0; i < n; ++i) row[i] = static_cast<T>(x[i]);
      B::copy_from_host(row.data(), P_, solutions.row(j));
    }
  }

private:
  /// L_ holds H (row j = H e_j) after this, symmetrised.
  template <class O>
  void form(O& op) {
    const auto n = static_cast<std::size_t>(P_);
    L_.assign(n * n, 0.0);
    const index block = std::min<index>(P_, 256);
    matrix<T, B> identity(block, P_), columns(block, P_);
    std::vector<T> host(static_cast<std::size_t>(block) * n);
    for (index first = 0; first < P_; first += block) {
      const index count = std::min(block, P_ - first);
      std::fill(host.begin(), host.end(), T(0));
      for (index r = 0; r < count; ++r) host[static_cast<std::size_t>(r * P_ + first + r)] = T(1);
      B::copy_from_host(host.data(), count * P_, identity.data());
      op.hessian_vector_products(std::as_const(identity).view().row_block(0, count),
                                 columns.view().row_block(0, count));
      B::copy_to_host(columns.data(), count * P_, host.data());
      for (index r = 0; r < count; ++r)
        for (index c = 0; c < P_; ++c) {
          const double v = static_cast<double>(host[static_cast<std::size_t>(r * P_ + c)]);
          if (!std::isfinite(v))
            throw numerical_error("explicit_inverse: H e_" + std::to_string(first + r) + " has a NaN or Inf at entry " +
                                  std::to_string(c));
          L_[static_cast<std::size_t>(first + r) * n + static_cast<std::size_t>(c)] = v;
        }
      ++report_.hvp_passes;
    }
    double largest = 0, asymmetry = 0;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j <= i; ++j) {
        const double a = L_[i * n + j], b = L_[j * n + i];
        largest = std::max({largest, std::abs(a), std::abs(b)});
        asymmetry = std::max(asymmetry, std::abs(a - b));
        L_[i * n + j] = L_[j * n + i] = 0.5 * (a + b);
      }
    report_.relative_asymmetry = largest > 0 ? asymmetry / largest : 0.0;
  }

  /// Cholesky by rows, in place in the lower triangle (the upper one is zeroed afterwards):
  /// L_ij = (A_ij − Σ_{k<j} L_ik L_jk) / L_jj, and L_ii² = A_ii + δ − Σ_{k<i} L_ik² is the pivot.
  /// Rows are done in blocks: each earlier row L_j is read once per block, not once per row, so
  /// the |w|³/6 multiply-adds are not limited by memory bandwidth.
  void factor(double damping) {
    const auto n = static_cast<std::size_t>(P_);
    double diagonal = 0;
    for (std::size_t i = 0; i < n; ++i) diagonal = std::max(diagonal, std::abs(L_[i * n + i] + damping));
    // A pivot below |w|·ε·max diag is rounding noise: H + δI is singular to working precision.
    const double singular = static_cast<double>(P_) * std::numeric_limits<double>::epsilon() * diagonal;
    report_.min_pivot = std::numeric_limits<double>::infinity();
    report_.max_pivot = 0;
    constexpr std::size_t rows_per_block = 16;
    for (std::size_t first = 0; first < n; first += rows_per_block) {
      const std::size_t last = std::min(n, first + rows_per_block);
      for (std::size_t j = 0; j < first; ++j) {
        const double* Lj = &L_[j * n];
        for (std::size_t i = first; i < last; ++i) {
          double* Li = &L_[i * n];
          Li[j] = (Li[j] - dot(Li, Lj, j)) / Lj[j];
        }
      }
      for (std::size_t i = first; i < last; ++i) {
        double* Li = &L_[i * n];
        for (std::size_t j = first; j < i; ++j) {
          const double* Lj = &L_[j * n];
          Li[j] = (Li[j] - dot(Li, Lj, j)) / Lj[j];
        }
        const double pivot = Li[i] + damping - dot(Li, Li, i);
        if (!(pivot > singular)) refuse(i, pivot, singular, damping);
        report_.min_pivot = std::min(report_.min_pivot, pivot);
        report_.max_pivot = std::max(report_.max_pivot, pivot);
        Li[i] = std::sqrt(pivot);
        std::fill(Li + i + 1, Li + n, 0.0);
      }
    }
  }

  /// Σ_{k<n} a_k b_k with four independent partial sums: the compiler may not reorder one
  /// floating-point sum, and a single chain of dependent additions runs ~4x slower.
  static double dot(const double* a, const double* b, std::size_t n) noexcept {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    std::size_t k = 0;
    for (; k + 4 <= n; k += 4) {
      s0 += a[k] * b[k];
      s1 += a[k + 1] * b[k + 1];
      s2 += a[k + 2] * b[k + 2];
      s3 += a[k + 3] * b[k + 3];
    }
    for (; k < n; ++k) s0 += a[k] * b[k];
    return (s0 + s1) + (s2 + s3);
  }

  [[noreturn]] void refuse(std::size_t i, double pivot, double singular, double damping) const {
    const std::string what = "explicit_inverse: H + damping (damping = " + std::to_string(damping) + ") is ";
    const std::string where = "Cholesky pivot " + std::to_string(i) + " of " + std::to_string(P_) + " is ";
    if (pivot > 0)
      throw numerical_error(what + "singular to working precision: " + where + std::to_string(pivot) +
                            ", below |w|*eps*max diagonal = " + std::to_string(singular) +
                            "; add damping (explicit_options::damping)");
    throw numerical_error(what + "not positive definite: " + where + std::to_string(pivot) +
                          " (<= 0), so H has an eigenvalue <= -damping (the parameters are not at a minimum of the "
                          "objective); add damping larger than its magnitude (explicit_options::damping)");
  }

  index P_;
  std::vector<double> L_;
  explicit_report report_;
};

template <class O>
explicit_inverse(O&, explicit_options = {}) -> explicit_inverse<typename O::scalar_type, typename O::backend_type>;

/// solutions.row(j) = (H + δI)⁻¹ rhs.row(j) by a fresh factorisation; keep an explicit_inverse
/// to solve more right-hand sides against the same H.
template <class O>
explicit_report explicit_inverse_hvp(O& op, matrix_view<const typename O::scalar_type> rhs,
                                     matrix_view<typename O::scalar_type> solutions, explicit_options options = {}) {
  static_assert(check_hessian_operator<O>());
  const explicit_inverse inverse(op, options);
  inverse.solve(rhs, solutions);
  return inverse.report();
}

} // namespace hydra
