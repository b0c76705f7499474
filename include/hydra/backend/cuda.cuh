#pragma once
// hydra::cuda — the GPU backend: device memory from cudaMalloc, GEMM through cuBLAS, every other
// operation a kernel from backend/cuda/*.cuh. Same operation set and semantics as hydra::cpu
// (docs/backend.md); compile with nvcc and link hydra::cuda. All work of one host thread runs in
// order on that thread's stream; the calls that return a host value (dot, sum, all_finite,
// count_correct, the recurrence's finiteness answer) and the host copies wait for it.

#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "hydra/backend/concepts.hpp"
#include "hydra/backend/detail/owning_buffer.hpp"
#include "hydra/backend/cuda/channels.cuh"
#include "hydra/backend/cuda/context.cuh"
#include "hydra/backend/cuda/element.cuh"
#include "hydra/backend/cuda/launch.cuh"
#include "hydra/backend/cuda/runtime.cuh"
#include "hydra/backend/cuda/status.cuh"
#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"

namespace hydra {

struct cuda {
  template <class T>
  using cmatrix = matrix_view<const std::type_identity_t<T>>;
  template <class T>
  using cvector = vector_view<const std::type_identity_t<T>>;

  static constexpr const char* name = "cuda";
  static constexpr bool host_accessible = false;

  // ---- devices -----------------------------------------------------------------------------
  /// The number of CUDA devices this process can use; 0 when there is none or no driver.
  [[nodiscard]] static int device_count() noexcept { return detail::cuda::device_count(); }
  /// Why device_count() is 0, in the runtime's words ("" when a device is there).
  [[nodiscard]] static std::string no_device_reason() { return detail::cuda::no_device_reason(); }
  /// Every usable device: "cuda:K" with the runtime's name for it and its total memory.
  [[nodiscard]] static std::vector<device_info> devices() {
    std::vector<device_info> out;
    for (int k = 0; k < device_count(); ++k) {
      auto [device_name, memory] = detail::cuda::device_properties(k);
      out.push_back({"cuda:" + std::to_string(k), std::move(device_name), memory});
    }
    return out;
  }
  /// Free memory of the current device in bytes (the tracker's default bound for its states).
  [[nodiscard]] static std::size_t memory_available() { return detail::cuda::memory_available(); }
  /// Waits for everything this thread has enqueued.
  static void synchronize() { detail::cuda::wait(stream()); }

  /// Where cuda::buffer's bytes come from: cudaMalloc (never managed memory), zeroed on this
  /// thread's stream; too little device memory throws allocation_error naming the bytes.
  struct memory {
    static constexpr const char* name = "cuda";
    static void* allocate_zeroed(std::size_t bytes) { return detail::cuda::allocate_zeroed(bytes, stream()); }
    static void release(void* p) noexcept { detail::cuda::release(p); }
  };
  /// Owning, move-only, zero-initialised device memory.
  template <class T>
  using buffer = detail::owning_buffer<T, memory>;

  // ---- memory ------------------------------------------------------------------------------
  // Host copies are synchronous: when they return, the data has arrived, so host memory may be
  // reused at once whatever kind it is (pageable or pinned).
  template <class T>
  static void copy_from_host(const T* src, index n, T* dst) {
    copy_bytes(dst, src, n * static_cast<index>(sizeof(T)), cudaMemcpyHostToDevice);
  }
  template <class T>
  static void copy_to_host(const T* src, index n, T* dst) {
    copy_bytes(dst, src, n * static_cast<index>(sizeof(T)), cudaMemcpyDeviceToHost);
  }

  // ---- BLAS-like ---------------------------------------------------------------------------
  /// C = alpha * op(A) * op(B) + beta * C through cuBLAS. With beta == 0, C is not read.
  template <class T>
  static void gemm(transpose ta, transpose tb, T alpha, cmatrix<T> a, cmatrix<T> b, T beta, matrix_view<T> c) {
    gemm_batched(ta, tb, alpha, a, 0, b, 0, beta, c, 0, 1);
  }
  /// C_i = alpha * op(A_i) * op(B_i) + beta * C_i for i < count (X_i = X shifted by i·stride_x),
  /// one cublas<t>gemmStridedBatched call.
  template <class T>
  static void gemm_batched(transpose ta, transpose tb, T alpha, cmatrix<T> a, index stride_a, cmatrix<T> b,
                           index stride_b, T beta, matrix_view<T> c, index stride_c, index count) {
    if (c.rows == 0 || c.cols == 0 || count == 0) return;
    const index inner = ta == transpose::no ? a.cols : a.rows;
    if (inner == 0) {  // cuBLAS would not touch C: spell out C = beta·C
      for (index i = 0; i < count; ++i) {
        const matrix_view<T> ci{c.data + i * stride_c, c.rows, c.cols, c.stride};
        if (beta == T(0)) fill(T(0), ci); else scal(beta, ci);
      }
      return;
    }
    // Row-major X is column-major Xᵀ: C = op(A)·op(B) is computed as Cᵀ = op(B)ᵀ·op(A)ᵀ.
    const auto op = [](transpose t) { return t == transpose::no ? CUBLAS_OP_N : CUBLAS_OP_T; };
    const auto ld = [](index stride, index cols) { return blas_int(std::max({stride, cols, index{1}}), "gemm"); };
    detail::cuda::gemm_strided_batched<T>(detail::cuda::this_thread_context().blas(), op(tb), op(ta), blas_int(c.cols, "gemm"),
                                          blas_int(c.rows, "gemm"), blas_int(inner, "gemm"), alpha, b.data,
                                          ld(b.stride, b.cols), stride_b, a.data, ld(a.stride, a.cols), stride_a, beta,
                                          c.data, ld(c.stride, c.cols), stride_c, blas_int(count, "gemm"));
  }

  template <class T>
  static void axpy(T alpha, cvector<T> x, vector_view<T> y) {
    detail::cuda::for_each_index(y.size, [=] HYDRA_CUDA_LAMBDA(index i) { y.data[i] += alpha * x.data[i]; }, "axpy");
  }
  template <class T>
  static void axpy(T alpha, cmatrix<T> x, matrix_view<T> y) {
    each(y.rows, y.cols, [=] HYDRA_CUDA_LAMBDA(index r, index j) { y.row(r)[j] += alpha * x.row(r)[j]; }, "axpy");
  }
  template <class T>
  static void scal(T alpha, vector_view<T> x) {
    detail::cuda::for_each_index(x.size, [=] HYDRA_CUDA_LAMBDA(index i) { x.data[i] *= alpha; }, "scal");
  }
  template <class T>
  static void scal(T alpha, matrix_view<T> x) {
    each(x.rows, x.cols, [=] HYDRA_CUDA_LAMBDA(index r, index j) { x.row(r)[j] *= alpha; }, "scal");
  }
  template <class T>
  static void copy(cvector<T> x, vector_view<T> y) {
    detail::cuda::copy(y.data, x.data, static_cast<std::size_t>(y.size) * sizeof(T), cudaMemcpyDeviceToDevice,
                       stream(), false);
  }
  template <class T>
  static void copy(cmatrix<T> x, matrix_view<T> y) {
    if (y.rows > 0 && y.cols > 0)
      detail::cuda::copy_rows(y.data, static_cast<std::size_t>(y.stride) * sizeof(T), x.data,
                              static_cast<std::size_t>(x.stride) * sizeof(T), static_cast<std::size_t>(y.cols) * sizeof(T),
                              static_cast<std::size_t>(y.rows), stream());
  }
  template <class T>
  static void fill(T value, vector_view<T> x) {
    detail::cuda::for_each_index(x.size, [=] HYDRA_CUDA_LAMBDA(index i) { x.data[i] = value; }, "fill");
  }
  template <class T>
  static void fill(T value, matrix_view<T> x) {
    each(x.rows, x.cols, [=] HYDRA_CUDA_LAMBDA(index r, index j) { x.row(r)[j] = value; }, "fill");
  }
  template <class U, class T = std::remove_const_t<U>>
  [[nodiscard]] static T dot(vector_view<U> x, cvector<T> y) {
    const T* xd = x.data;
    const T* yd = y.data;
    return detail::cuda::sum_of<T>(x.size, [=] HYDRA_CUDA_LAMBDA(index i) { return xd[i] * yd[i]; }, scratch<T>(), "dot");
  }
  template <class U, class T = std::remove_const_t<U>>
  [[nodiscard]] static T sum(vector_view<U> x) {
    const T* xd = x.data;
    return detail::cuda::sum_of<T>(x.size, [=] HYDRA_CUDA_LAMBDA(index i) { return xd[i]; }, scratch<T>(), "sum");
  }
  template <class T>
  static void add_row_vector(cvector<T> v, matrix_view<T> m) {
    each(m.rows, m.cols, [=] HYDRA_CUDA_LAMBDA(index r, index j) { m.row(r)[j] += v.data[j]; }, "add_row_vector");
  }
  template <class T>
  static void add_row_vectors(cmatrix<T> vectors, matrix_view<T> m) {
    const index block = vectors.rows > 0 ? m.rows / vectors.rows : 1;
    each(m.rows, m.cols, [=] HYDRA_CUDA_LAMBDA(index r, index j) { m.row(r)[j] += vectors.row(r / block)[j]; },
         "add_row_vectors");
  }
  /// y = alpha * (sum of the rows of a) + beta * y; one thread per column (coalesced across a
  /// row). With beta == 0, y is not read.
  template <class T>
  static void column_sums(T alpha, cmatrix<T> a, T beta, vector_view<T> y) {
    detail::cuda::for_each_index(
        y.size,
        [=] HYDRA_CUDA_LAMBDA(index j) {
          T s = T(0);
          for (index r = 0; r < a.rows; ++r) s += a.row(r)[j];
          y.data[j] = beta == T(0) ? alpha * s : beta * y.data[j] + alpha * s;
        },
        "column_sums");
  }
  /// out.row(j) += alpha * (sum of the rows of block j of a).
  template <class T>
  static void column_sums_batched(T alpha, cmatrix<T> a, index block_rows, matrix_view<T> out) {
    each(out.rows, out.cols,
         [=] HYDRA_CUDA_LAMBDA(index blk, index j) {
           T s = T(0);
           for (index r = blk * block_rows; r < (blk + 1) * block_rows; ++r) s += a.row(r)[j];
           out.row(blk)[j] += alpha * s;
         },
         "column_sums_batched");
  }
  template <class T>
  static void row_outer_products(cmatrix<T> x, cmatrix<T> y, matrix_view<T> out) {
    const index n = y.cols;
    each(out.rows, x.cols * n, [=] HYDRA_CUDA_LAMBDA(index b, index at) { out.row(b)[at] = x.row(b)[at / n] * y.row(b)[at % n]; },
         "row_outer_products");
  }
  template <class U>
  [[nodiscard]] static bool all_finite(vector_view<U> x) {
    const U* xd = x.data;
    return !detail::cuda::any_index(x.size, [=] HYDRA_CUDA_LAMBDA(index i) { return !(xd[i] - xd[i] == U(0)); }, "all_finite");
  }

  // ---- convolutions ----------------------------------------------------------------------------
  template <class T>
  static void im2col(const conv_geometry& g, cmatrix<T> x, matrix_view<T> cols) {
    each(cols.rows, cols.cols,
         [=] HYDRA_CUDA_LAMBDA(index row, index col) {
           index b = 0;
           const index at = detail::cuda::im2col_source(g, row, col, b);
           cols.row(row)[col] = at < 0 ? T(0) : x.row(b)[at];
         },
         "im2col");
  }
  template <class T>
  static void col2im(const conv_geometry& g, cmatrix<T> cols, matrix_view<T> x) {
    each(x.rows, x.cols, [=] HYDRA_CUDA_LAMBDA(index b, index at) { x.row(b)[at] = detail::cuda::col2im_gather(g, cols, b, at); },
         "col2im");
  }
  template <class T>
  static void swap_leading_axes(cmatrix<T> in, index m, index n, matrix_view<T> out) {
    (void)m;
    each(out.rows, out.cols,
         [=] HYDRA_CUDA_LAMBDA(index k, index at) { out.row(k)[at] = in.row(at / n)[k * n + at % n]; }, "swap_leading_axes");
  }

  // ---- pooling -----------------------------------------------------------------------------
  template <class T>
  static void max_pool_forward(const pool_geometry& g, cmatrix<T> x, matrix_view<T> y) {
    max_pool_tangent(g, x, x, y);
  }
  /// d_x = the sum of d_y over the windows whose argmax is each input (a gather: no atomics, so
  /// the result is deterministic), for each of the k = d_y.rows / x.rows blocks.
  template <class T>
  static void max_pool_backward(const pool_geometry& g, cmatrix<T> x, cmatrix<T> d_y, matrix_view<T> d_x) {
    const index batch = x.rows, image = g.height * g.width, pooled = g.out_pixels();
    each(d_x.rows, d_x.cols,
         [=] HYDRA_CUDA_LAMBDA(index r, index at) {
           const index c = at / image;
           d_x.row(r)[at] = detail::cuda::max_pool_gather(g, x.row(r % batch) + c * image, d_y.row(r) + c * pooled,
                                                          at - c * image);
         },
         "max_pool_backward");
  }
  template <class T>
  static void max_pool_tangent(const pool_geometry& g, cmatrix<T> x, cmatrix<T> r_x, matrix_view<T> r_y) {
    const index batch = x.rows, image = g.height * g.width, pooled = g.out_pixels(), ow_n = g.out_width();
    each(r_y.rows, r_y.cols,
         [=] HYDRA_CUDA_LAMBDA(index r, index to) {
           const index c = to / pooled, pixel = to - c * pooled;
           const index from = detail::cuda::window_argmax(g, x.row(r % batch) + c * image, pixel / ow_n, pixel % ow_n);
           r_y.row(r)[to] = r_x.row(r)[c * image + from];
         },
         "max_pool_tangent");
  }
  template <class T>
  static void avg_pool_forward(const pool_geometry& g, cmatrix<T> x, matrix_view<T> y) {
    const index image = g.height * g.width, pooled = g.out_pixels(), ow_n = g.out_width();
    each(y.rows, y.cols,
         [=] HYDRA_CUDA_LAMBDA(index r, index to) {
           const index c = to / pooled, pixel = to - c * pooled;
           y.row(r)[to] = detail::cuda::window_mean(g, x.row(r) + c * image, pixel / ow_n, pixel % ow_n);
         },
         "avg_pool_forward");
  }
  template <class T>
  static void avg_pool_backward(const pool_geometry& g, cmatrix<T> d_y, matrix_view<T> d_x) {
    const index image = g.height * g.width, pooled = g.out_pixels();
    each(d_x.rows, d_x.cols,
         [=] HYDRA_CUDA_LAMBDA(index r, index at) {
           const index c = at / image;
           d_x.row(r)[at] = detail::cuda::avg_pool_gather(g, d_y.row(r) + c * pooled, at - c * image);
         },
         "avg_pool_backward");
  }

  // ---- channels (docs/backend.md: images R × (C·P), rows in blocks of block_rows) ---------------
  /// out(j, c) = alpha·Σ_{r in block j} Σ_p x[r, c·P + p]·y[r', c·P + p] + beta·out(j, c): one
  /// thread block per (j, c), a fixed reduction tree (deterministic). With beta == 0, out is not read.
  template <class T>
  static void channel_sums(T alpha, cmatrix<T> x, cmatrix<T> y, index pixels, index block_rows, T beta,
                           matrix_view<T> out) {
    const index channels = out.cols;
    const bool has_y = !y.empty(), shared_y = has_y && y.rows != x.rows;
    detail::cuda::segment_sums<T>(
        out.rows * channels, block_rows * pixels,
        [=] HYDRA_CUDA_LAMBDA(index s, index i) -> T {
          const index j = s / channels, c = s - j * channels, row = i / pixels;
          const index at = c * pixels + (i - row * pixels);
          const T v = x.row(j * block_rows + row)[at];
          return has_y ? v * y.row(shared_y ? row : j * block_rows + row)[at] : v;
        },
        [=] HYDRA_CUDA_LAMBDA(index s, T sum) {
          const index j = s / channels;
          T& o = out.row(j)[s - j * channels];
          o = beta == T(0) ? alpha * sum : alpha * sum + beta * o;
        },
        "channel_sums");
  }
  /// out[r, c·P + p] = alpha·(a(j, c)·x[r', ·] + b(j, c)·y[r'', ·] + c(j, c)) + beta·out[r, ·],
  /// j = r / block_rows; one thread per element (each reads its own x, y before writing out, so out
  /// may be x or y).
  template <class T>
  static void channel_combine(T alpha, cmatrix<T> a, cmatrix<T> x, cmatrix<T> b, cmatrix<T> y, cmatrix<T> c,
                              index pixels, index block_rows, T beta, matrix_view<T> out) {
    const bool has_a = !a.empty(), has_b = !b.empty(), has_c = !c.empty(), has_x = !x.empty(), has_y = !y.empty();
    const bool shared_x = has_x && x.rows != out.rows, shared_y = has_y && y.rows != out.rows;
    each(out.rows, out.cols,
         [=] HYDRA_CUDA_LAMBDA(index r, index col) {
           const index j = r / block_rows, ch = col / pixels;
           T v = has_c ? alpha * c.row(c.rows == 1 ? 0 : j)[ch] : T(0);
           if (has_x) {
             const T ax = alpha * (has_a ? a.row(a.rows == 1 ? 0 : j)[ch] : T(1));
             v += ax * x.row(shared_x ? r % block_rows : r)[col];
           }
           if (has_y) {
             const T by = alpha * (has_b ? b.row(b.rows == 1 ? 0 : j)[ch] : T(1));
             v += by * y.row(shared_y ? r % block_rows : r)[col];
           }
           T& o = out.row(r)[col];
           o = beta == T(0) ? v : v + beta * o;
         },
         "channel_combine");
  }
  /// out = 1/√(x + shift) elementwise (out may be x).
  template <class T>
  static void inverse_sqrt(T shift, cmatrix<T> x, matrix_view<T> out) {
    each(out.rows, out.cols,
         [=] HYDRA_CUDA_LAMBDA(index r, index j) { out.row(r)[j] = T(1) / ::sqrt(x.row(r)[j] + shift); },
         "inverse_sqrt");
  }

  // ---- the hypergradient recurrence ----------------------------------------------------------
  /// One step of Eq. 35–36 for every row of the states, one fused kernel (blocks across a row's
  /// columns, grid rows over the states): each element of dv and grad is read once and written
  /// once, and its finiteness is checked on the way. The answer is read back, so this call waits
  /// for the stream.
  template <class T>
  static bool hypergradient_update(T p, T lambda, T eta, cmatrix<T> hv, const index* source_rows, const T* weights,
                                   cmatrix<T> sources, matrix_view<T> dv, matrix_view<T> grad) {
    const bool has_hv = !hv.empty();
    const recurrence::step_coefficients<T> c{p, lambda, eta};
    return !detail::cuda::any_element(
        dv.rows, dv.cols,
        [=] HYDRA_CUDA_LAMBDA(index r, index j) {
          const bool has_source = source_rows != nullptr && source_rows[r] >= 0;
          return detail::cuda::update_element(c, has_hv ? hv.row(r) + j : nullptr, has_source,
                                              has_source ? weights[r] : T(0),
                                              has_source ? sources.row(source_rows[r])[j] : T(0), dv.row(r)[j],
                                              grad.row(r)[j]);
        },
        "hypergradient_update");
  }
  /// The lazy Hessian-free update of `count` listed rows (docs/backend.md), one fused kernel over
  /// count × cols elements; waits for the stream to return the finiteness answer.
  template <class T>
  static bool hypergradient_transfer(index count, const index* state_rows, const T* transfers, const index* source_rows,
                                     const T* weights, T eta, cmatrix<T> sources, matrix_view<T> dv,
                                     matrix_view<T> grad) {
    return !detail::cuda::any_element(
        count, dv.cols,
        [=] HYDRA_CUDA_LAMBDA(index k, index j) {
          const index r = state_rows[k];
          const bool has_source = source_rows[k] >= 0;
          const T s = has_source ? sources.row(source_rows[k])[j] : T(0);
          return detail::cuda::transfer_element(transfers + 4 * k, has_source, has_source ? weights[k] : T(0), eta, s,
                                                dv.row(r)[j], grad.row(r)[j]);
        },
        "hypergradient_transfer");
  }

  // ---- activations -------------------------------------------------------------------------
  template <class T>
  static void activation_forward(activation f, cmatrix<T> in, matrix_view<T> out) {
    each(out.rows, out.cols,
         [=] HYDRA_CUDA_LAMBDA(index r, index j) { out.row(r)[j] = detail::cuda::activation_value(f, in.row(r)[j]); },
         "activation_forward");
  }
  template <class T>
  static void activation_backward(activation f, cmatrix<T> in, cmatrix<T> out, cmatrix<T> d_out, matrix_view<T> d_in) {
    each(d_in.rows, d_in.cols,
         [=] HYDRA_CUDA_LAMBDA(index r, index j) {
           d_in.row(r)[j] = d_out.row(r)[j] * detail::cuda::activation_first(f, in.row(r)[j], out.row(r)[j]);
         },
         "activation_backward");
  }
  template <class T>
  static void activation_tangent(activation f, cmatrix<T> in, cmatrix<T> out, cmatrix<T> r_in, matrix_view<T> r_out) {
    const index batch = in.rows;
    if (batch == 0) return;
    each(r_out.rows, r_out.cols,
         [=] HYDRA_CUDA_LAMBDA(index r, index j) {
           const index b = r % batch;
           r_out.row(r)[j] = r_in.row(r)[j] * detail::cuda::activation_first(f, in.row(b)[j], out.row(b)[j]);
         },
         "activation_tangent");
  }
  template <class T>
  static void activation_second_backward(activation f, cmatrix<T> in, cmatrix<T> out, cmatrix<T> d_out,
                                         cmatrix<T> r_in, cmatrix<T> r_d_out, matrix_view<T> r_d_in) {
    const index batch = in.rows;
    if (batch == 0) return;
    const bool curved = !r_in.empty() && f != activation::identity && f != activation::relu;
    each(r_d_in.rows, r_d_in.cols,
         [=] HYDRA_CUDA_LAMBDA(index r, index j) {
           const index b = r % batch;
           T v = r_d_out.row(r)[j] * detail::cuda::activation_first(f, in.row(b)[j], out.row(b)[j]);
           if (curved) v += d_out.row(b)[j] * detail::cuda::activation_second(f, out.row(b)[j]) * r_in.row(r)[j];
           r_d_in.row(r)[j] = v;
         },
         "activation_second_backward");
  }

  // ---- losses (one thread per sample: the class count is small) ------------------------------
  template <class T>
  static void softmax_cross_entropy(cmatrix<T> logits, const label_type* labels, matrix_view<T> probabilities,
                                    vector_view<T> losses) {
    detail::cuda::for_each_index(
        logits.rows,
        [=] HYDRA_CUDA_LAMBDA(index b) {
          const T* z = logits.row(b);
          T* p = probabilities.row(b);
          T zmax = z[0];
          for (index c = 1; c < logits.cols; ++c) zmax = z[c] > zmax ? z[c] : zmax;
          T total = T(0);
          for (index c = 0; c < logits.cols; ++c) total += (p[c] = ::exp(z[c] - zmax));
          for (index c = 0; c < logits.cols; ++c) p[c] /= total;
          losses.data[b] = (zmax - z[labels[b]]) + ::log(total);
        },
        "softmax_cross_entropy");
  }
  template <class T>
  static void softmax_cross_entropy_gradient(cmatrix<T> probabilities, const label_type* labels, T scale,
                                             matrix_view<T> d) {
    each(d.rows, d.cols,
         [=] HYDRA_CUDA_LAMBDA(index b, index c) {
           d.row(b)[c] = scale * probabilities.row(b)[c] - (c == labels[b] ? scale : T(0));
         },
         "softmax_cross_entropy_gradient");
  }
  template <class T>
  static void softmax_cross_entropy_hessian_product(cmatrix<T> probabilities, cmatrix<T> r, T scale,
                                                    matrix_view<T> out) {
    const index batch = probabilities.rows;
    if (batch == 0) return;
    detail::cuda::for_each_index(
        out.rows,
        [=] HYDRA_CUDA_LAMBDA(index row) {
          const T* p = probabilities.row(row % batch);
          const T* v = r.row(row);
          T pr = T(0);
          for (index c = 0; c < out.cols; ++c) pr += p[c] * v[c];
          for (index c = 0; c < out.cols; ++c) out.row(row)[c] = scale * p[c] * (v[c] - pr);
        },
        "softmax_cross_entropy_hessian_product");
  }
  template <class T>
  static void squared_error(cmatrix<T> logits, const label_type* labels, cmatrix<T> targets, vector_view<T> losses) {
    const bool explicit_targets = !targets.empty();
    detail::cuda::for_each_index(
        logits.rows,
        [=] HYDRA_CUDA_LAMBDA(index b) {
          T s = T(0);
          for (index c = 0; c < logits.cols; ++c) {
            const T t = explicit_targets ? targets.row(b)[c] : (labels[b] == c ? T(1) : T(0));
            const T e = logits.row(b)[c] - t;
            s += e * e;
          }
          losses.data[b] = s * (T(1) / static_cast<T>(logits.cols));
        },
        "squared_error");
  }
  template <class T>
  static void squared_error_gradient(cmatrix<T> logits, const label_type* labels, cmatrix<T> targets, T scale,
                                     matrix_view<T> d) {
    const bool explicit_targets = !targets.empty();
    const T factor = scale * T(2) / static_cast<T>(logits.cols);
    each(d.rows, d.cols,
         [=] HYDRA_CUDA_LAMBDA(index b, index c) {
           const T t = explicit_targets ? targets.row(b)[c] : (labels[b] == c ? T(1) : T(0));
           d.row(b)[c] = factor * (logits.row(b)[c] - t);
         },
         "squared_error_gradient");
  }
  template <class U>
  [[nodiscard]] static index count_correct(matrix_view<U> logits, const label_type* labels) {
    return detail::cuda::count_if(
        logits.rows,
        [=] HYDRA_CUDA_LAMBDA(index b) {
          const U* z = logits.row(b);
          index best = 0;
          for (index c = 1; c < logits.cols; ++c)
            if (z[best] < z[c]) best = c;
          return best == labels[b];
        },
        "count_correct");
  }

  // ---- helpers (public: nvcc requires that functions enclosing extended lambdas be) -----------
  /// f(r, j) for every element of a rows × cols matrix.
  template <class F>
  static void each(index rows, index cols, F f, const char* op) {
    detail::cuda::for_each_element(rows, cols, f, op);
  }
  [[nodiscard]] static cudaStream_t stream() { return detail::cuda::this_thread_context().stream(); }
  template <class T>
  [[nodiscard]] static T* scratch() {
    return static_cast<T*>(detail::cuda::this_thread_context().scratch());
  }
  static int blas_int(index value, const char* op) {
    if (value > std::numeric_limits<int>::max())
      throw invalid_argument(std::string("hydra::cuda::") + op + ": dimension " + std::to_string(value) +
                             " exceeds cuBLAS's int range");
    return static_cast<int>(value);
  }
  static void copy_bytes(void* dst, const void* src, index bytes, cudaMemcpyKind kind) {
    if (bytes > 0) detail::cuda::copy(dst, src, static_cast<std::size_t>(bytes), kind, stream(), true);
  }
};

static_assert(Backend<cuda>);

} // namespace hydra
