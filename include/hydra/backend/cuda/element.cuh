#pragma once
// The per-element arithmetic of hydra::cuda's kernels as __host__ __device__ functions: the
// kernels are grid-stride loops around these, and the tests run the same functions on the host
// against hydra::cpu, so the index arithmetic is checked on machines without a GPU too.

#include <cmath>

#include "hydra/backend/detail/window_argmax.hpp"
#include "hydra/core/types.hpp"
#include "hydra/hypergradient/recurrence.hpp"

namespace hydra::detail::cuda {

using hydra::detail::window_argmax;  // the pooling rule shared with hydra::cpu

// ---- activations (docs/backend.md: derivatives of tanh and sigmoid from the stored output) ----
template <class T>
HYDRA_HOST_DEVICE inline T activation_value(activation f, T in) {
  switch (f) {
    case activation::identity: return in;
    case activation::relu: return in < T(0) ? T(0) : in;  // max(in, 0) as hydra::cpu: a NaN stays NaN
    case activation::tanh: return ::tanh(in);
    case activation::sigmoid: return T(1) / (T(1) + ::exp(-in));
    case activation::relu6: return in < T(0) ? T(0) : (in > T(6) ? T(6) : in);  // a NaN stays NaN
  }
  return in;
}
/// f'(in), from in (relu) or from out = f(in) (tanh, sigmoid).
template <class T>
HYDRA_HOST_DEVICE inline T activation_first(activation f, T in, T out) {
  switch (f) {
    case activation::identity: return T(1);
    case activation::relu: return in > T(0) ? T(1) : T(0);
    case activation::tanh: return T(1) - out * out;
    case activation::sigmoid: return out * (T(1) - out);
    case activation::relu6: return in > T(0) && in < T(6) ? T(1) : T(0);
  }
  return T(1);
}
/// f''(in) from out = f(in); zero for identity and (almost everywhere) ReLU, ReLU6.
template <class T>
HYDRA_HOST_DEVICE inline T activation_second(activation f, T out) {
  switch (f) {
    case activation::identity:
    case activation::relu:
    case activation::relu6: return T(0);
    case activation::tanh: return T(-2) * out * (T(1) - out * out);
    case activation::sigmoid: return out * (T(1) - out) * (T(1) - T(2) * out);
  }
  return T(0);
}

// ---- convolutions ---------------------------------------------------------------------------
/// Element (row, col) of im2col's output: the offset within x's row b = col / (Ho·Wo) of the
/// input it copies, or −1 where it reads the zero padding. `sample` receives b.
HYDRA_HOST_DEVICE inline index im2col_source(const conv_geometry& g, index row, index col, index& sample) {
  const index ow_n = g.out_width(), pixels = g.out_height() * ow_n;
  sample = col / pixels;
  const index pixel = col - sample * pixels, oh = pixel / ow_n, ow = pixel - oh * ow_n;
  const index j = row % g.kernel_w, i = (row / g.kernel_w) % g.kernel_h, c = row / (g.kernel_w * g.kernel_h);
  const index h = oh * g.stride - g.padding + i, w = ow * g.stride - g.padding + j;
  if (h < 0 || h >= g.height || w < 0 || w >= g.width) return -1;
  return (c * g.height + h) * g.width + w;
}

/// col2im as a gather, so that no two threads write one element: x[b, at] = the sum of the
/// im2col entries copied from input position `at` of sample b, in a fixed order.
template <class T>
HYDRA_HOST_DEVICE inline T col2im_gather(const conv_geometry& g, matrix_view<const T> cols, index b, index at) {
  const index ow_n = g.out_width(), oh_n = g.out_height(), pixels = oh_n * ow_n;
  const index c = at / (g.height * g.width), hw = at - c * g.height * g.width, h = hw / g.width, w = hw - h * g.width;
  T sum = T(0);
  for (index i = 0; i < g.kernel_h; ++i) {
    const index oh_s = h + g.padding - i;  // = oh·stride
    if (oh_s < 0 || oh_s % g.stride != 0 || oh_s / g.stride >= oh_n) continue;
    for (index j = 0; j < g.kernel_w; ++j) {
      const index ow_s = w + g.padding - j;
      if (ow_s < 0 || ow_s % g.stride != 0 || ow_s / g.stride >= ow_n) continue;
      const index row = (c * g.kernel_h + i) * g.kernel_w + j;
      sum += cols.row(row)[b * pixels + (oh_s / g.stride) * ow_n + ow_s / g.stride];
    }
  }
  return sum;
}

// ---- pooling --------------------------------------------------------------------------------
/// The range [lo, hi) of window indices along one axis whose window [o·s, o·s + k) covers
/// position p, clipped to [0, count).
HYDRA_HOST_DEVICE inline void covering_windows(index p, index window, index stride, index count, index& lo,
                                               index& hi) {
  lo = p - window + 1 > 0 ? (p - window + 1 + stride - 1) / stride : 0;
  hi = p / stride + 1;
  if (hi > count) hi = count;
}

/// max_pool_backward as a gather: the sum of d_y over the windows of channel c whose argmax in
/// x (row `image`) is position hw.
template <class T>
HYDRA_HOST_DEVICE inline T max_pool_gather(const pool_geometry& g, const T* image, const T* d_y_channel, index hw) {
  const index h = hw / g.width, w = hw - h * g.width, ow_n = g.out_width();
  index oh_lo, oh_hi, ow_lo, ow_hi;
  covering_windows(h, g.window, g.stride, g.out_height(), oh_lo, oh_hi);
  covering_windows(w, g.window, g.stride, ow_n, ow_lo, ow_hi);
  T sum = T(0);
  for (index oh = oh_lo; oh < oh_hi; ++oh)
    for (index ow = ow_lo; ow < ow_hi; ++ow)
      if (window_argmax(g, image, oh, ow) == hw) sum += d_y_channel[oh * ow_n + ow];
  return sum;
}

/// avg_pool_backward as a gather: the sum of d_y / window² over the windows of the channel that
/// cover hw (each share scaled first, in window order, as hydra::cpu adds them).
template <class T>
HYDRA_HOST_DEVICE inline T avg_pool_gather(const pool_geometry& g, const T* d_y_channel, index hw) {
  const index h = hw / g.width, w = hw - h * g.width, ow_n = g.out_width();
  index oh_lo, oh_hi, ow_lo, ow_hi;
  covering_windows(h, g.window, g.stride, g.out_height(), oh_lo, oh_hi);
  covering_windows(w, g.window, g.stride, ow_n, ow_lo, ow_hi);
  const T scale = T(1) / static_cast<T>(g.window * g.window);
  T sum = T(0);
  for (index oh = oh_lo; oh < oh_hi; ++oh)
    for (index ow = ow_lo; ow < ow_hi; ++ow) sum += scale * d_y_channel[oh * ow_n + ow];
  return sum;
}

/// The mean of window (oh, ow) of one channel's image.
template <class T>
HYDRA_HOST_DEVICE inline T window_mean(const pool_geometry& g, const T* image, index oh, index ow) {
  const T* corner = image + oh * g.stride * g.width + ow * g.stride;
  T sum = T(0);
  for (index i = 0; i < g.window; ++i)
    for (index j = 0; j < g.window; ++j) sum += corner[i * g.width + j];
  return T(1) / static_cast<T>(g.window * g.window) * sum;
}

// ---- the recurrence (hypergradient/recurrence.hpp) per element ------------------------------
/// One element of hypergradient_update: recurrence::step with the Hessian and gradient terms that
/// are present (each branch adds exactly the terms of its case, as hydra::cpu does). Returns
/// whether either result is not finite.
template <class T>
HYDRA_HOST_DEVICE inline bool update_element(const recurrence::step_coefficients<T>& c, const T* hv, bool has_source,
                                             T w, T s, T& dv, T& grad) {
  T d = dv, g = grad;  // in registers: dv and grad are device memory the compiler cannot tell apart
  if (hv == nullptr && !has_source) recurrence::step(c, d, g);
  else if (hv == nullptr) recurrence::step(c, d, g, w * s);
  else if (!has_source) recurrence::step(c, d, g, *hv);
  else recurrence::step(c, d, g, *hv, w * s);
  dv = d;
  grad = g;
  return !(d - d == T(0)) || !(g - g == T(0));
}

/// One element of hypergradient_transfer: recurrence::transfer by m, with the gradient term w·s
/// when has_source; a zero m starts the state without reading (d, g), which may be
/// uninitialised. Returns whether either result is not finite.
template <class T>
HYDRA_HOST_DEVICE inline bool transfer_element(const T* m, bool has_source, T w, T eta, T s, T& d, T& g) {
  const bool fresh = recurrence::is_fresh(m);
  if (fresh && !has_source) recurrence::start(d, g);
  else if (fresh) recurrence::start(w, eta, s, d, g);
  else if (!has_source) recurrence::transfer(m, d, g);
  else recurrence::transfer(m, w, eta, s, d, g);
  return !(d - d == T(0)) || !(g - g == T(0));
}

} // namespace hydra::detail::cuda
