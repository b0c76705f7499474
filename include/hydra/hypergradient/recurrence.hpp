#pragma once
// The hypergradient recurrence, written once (supplement Eq. 35–36; docs/hypergradient.md). For a
// tracked training sample i, each coordinate of its state (dv_t/dε_i, ∇_{t,i}) advances at step t
// with momentum p, weight decay λ and learning rate η_t as
//
//   dv_t = p·dv_{t−1} + λ·∇_{t−1} + (H_t ∇_{t−1}) + [i ∈ B_t]·w_{t,i}·g_{t,i}        (Eq. 35)
//   ∇_t  = ∇_{t−1} − η_t·dv_t                                                     (Eq. 36)
//
// with w_{t,i} = (N/|B_t|)·(times i occurs in B_t). Every backend kernel (the eager update, the
// lazy transfer) and the host bookkeeping of the lazy and lean paths call the functions below;
// nothing else spells the update out. They are generic in the coordinate type so that hydra::cpu
// can pass whole Eigen array blocks (one vectorised expression, the same operations in the same
// order as on one scalar) and hydra::cuda one element per thread.
//
// Without the Hessian term the map is linear with one 2 × 2 matrix per step, the same for every
// coordinate and sample (substitute Eq. 35 into Eq. 36):
//
//   (dv_t, ∇_t) = A_t·(dv_{t−1}, ∇_{t−1}) + [i ∈ B_t]·w_{t,i}·g_{t,i}·(1, −η_t),
//   A_t = [[p, λ], [−η_t·p, 1 − η_t·λ]]
//
// which the lazy update composes over the steps a state missed (transfer.hpp). A product applied
// as a matrix rounds differently from the eager two-line update, never by more than rounding.

#include <array>

#include "hydra/core/host_device.hpp"

namespace hydra {

namespace recurrence {

/// The constants of step t: momentum p, weight decay λ, learning rate η_t.
template <class T>
struct step_coefficients {
  T p;
  T lambda;
  T eta;
};

/// Eq. 35, one coordinate (or a block of coordinates): p·dv_{t−1} + λ·∇_{t−1}, then each term in
/// `added` in order — the Hessian term (H_t∇_{t−1}) where there is one, then the gradient term
/// w_{t,i}·g_{t,i} where i ∈ B_t.
template <class T, class V, class... Added>
HYDRA_HOST_DEVICE constexpr auto momentum_derivative(const step_coefficients<T>& c, const V& dv, const V& grad,
                                                     const Added&... added) {
  return ((c.p * dv + c.lambda * grad) + ... + added);
}

/// Eq. 36: ∇_t = ∇_{t−1} − η_t·dv_t.
template <class T, class V, class D>
HYDRA_HOST_DEVICE constexpr auto hypergradient(const step_coefficients<T>& c, const V& grad, const D& dv_t) {
  return grad - c.eta * dv_t;
}

/// One eager step of both equations in place: dv ← Eq. 35, then ∇ ← Eq. 36 with the new dv.
template <class T, class V, class... Added>
HYDRA_HOST_DEVICE constexpr void step(const step_coefficients<T>& c, V&& dv, V&& grad, const Added&... added) {
  dv = momentum_derivative(c, dv, grad, added...);
  grad = hypergradient(c, grad, dv);
}

// ---- the Hessian-free map as 2 × 2 matrices (the lazy update) ---------------------------------

/// A 2 × 2 matrix, row-major: {m00, m01, m10, m11}, acting on (dv, ∇).
using transfer_matrix = std::array<double, 4>;

inline constexpr transfer_matrix identity_transfer{1.0, 0.0, 0.0, 1.0};

/// A_t for momentum p, weight decay λ and learning rate η.
[[nodiscard]] constexpr transfer_matrix step_transfer(double p, double lambda, double eta) noexcept {
  return {p, lambda, -eta * p, 1.0 - eta * lambda};
}

/// a · b.
[[nodiscard]] constexpr transfer_matrix operator*(const transfer_matrix& a, const transfer_matrix& b) noexcept {
  return {a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3], a[2] * b[0] + a[3] * b[2], a[2] * b[1] + a[3] * b[3]};
}

/// A state's coordinate brought over the steps it missed by m = A_t ⋯ A_{s+1} (m: 4 entries,
/// row-major, in the state's scalar type): (dv, ∇) ← m·(dv, ∇).
template <class T>
HYDRA_HOST_DEVICE constexpr void transfer(const T* m, T& dv, T& grad) {
  const T d = dv, g = grad;
  dv = m[0] * d + m[1] * g;
  grad = m[2] * d + m[3] * g;
}

/// The same, plus step t's gradient term w·g·(1, −η_t) (i ∈ B_t; m includes A_t).
template <class T>
HYDRA_HOST_DEVICE constexpr void transfer(const T* m, T w, T eta, T g_ti, T& dv, T& grad) {
  const T d = dv, g = grad;
  dv = m[0] * d + m[1] * g + w * g_ti;
  grad = m[2] * d + m[3] * g - eta * w * g_ti;
}

/// The first touch of a state that is still zero (the transfer m is the zero matrix): the gradient
/// term alone, written without reading the state (its memory may be uninitialised).
template <class T>
HYDRA_HOST_DEVICE constexpr void start(T w, T eta, T g_ti, T& dv, T& grad) {
  dv = w * g_ti;
  grad = -(eta * w) * g_ti;
}

/// A never-touched state outside the batch: still zero, written without reading.
template <class T>
HYDRA_HOST_DEVICE constexpr void start(T& dv, T& grad) {
  dv = T(0);
  grad = T(0);
}

/// Whether m is the zero matrix: the state was never touched and must be written, not read.
template <class T>
HYDRA_HOST_DEVICE constexpr bool is_fresh(const T* m) {
  return m[0] == T(0) && m[1] == T(0) && m[2] == T(0) && m[3] == T(0);
}

} // namespace recurrence

// The 2 × 2 algebra keeps its names in namespace hydra (transfer_ledger, tests, users).
using recurrence::identity_transfer;
using recurrence::step_transfer;
using recurrence::transfer_matrix;
using recurrence::operator*;

} // namespace hydra
