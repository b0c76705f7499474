#pragma once
// hydra::cpu — the host backend on Eigen. This is the only place (with its test) that names
// Eigen; layers and models see the operation set of backend/concepts.hpp.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <unistd.h>

#include <Eigen/Core>

#include "hydra/backend/concepts.hpp"
#include "hydra/backend/detail/owning_buffer.hpp"
#include "hydra/backend/detail/window_argmax.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/types.hpp"
#include "hydra/hypergradient/recurrence.hpp"

namespace hydra {

struct cpu {
  // Read-only operands are non-deduced, so T comes from the output or a scalar and mutable views
  // convert implicitly.
  template <class T>
  using cmatrix = matrix_view<const std::type_identity_t<T>>;
  template <class T>
  using cvector = vector_view<const std::type_identity_t<T>>;

  static constexpr const char* name = "cpu";
  static constexpr bool host_accessible = true;

  // ---- devices -----------------------------------------------------------------------------
  /// The host, as one device.
  [[nodiscard]] static std::vector<device_info> devices() {
    return {{"cpu", "host (" + std::to_string(std::thread::hardware_concurrency()) + " hardware threads)",
             memory_available()}};
  }
  /// Always "": the host is always there.
  [[nodiscard]] static std::string no_device_reason() { return {}; }
  /// The host's physical memory in bytes (the tracker's default bound for its states).
  [[nodiscard]] static std::size_t memory_available() {
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    const long page = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page)
                                 : static_cast<std::size_t>(-1);
  }

  /// Where cpu::buffer's bytes come from: 64-byte aligned host memory, zeroed.
  struct memory {
    static constexpr const char* name = "cpu";
    static constexpr std::size_t alignment = 64;
    static void* allocate_zeroed(std::size_t bytes) {
      void* p = ::operator new(bytes, std::align_val_t{alignment});
      std::memset(p, 0, bytes);
      return p;
    }
    static void release(void* p) noexcept { ::operator delete(p, std::align_val_t{alignment}); }
  };
  /// Owning, move-only, zero-initialised, 64-byte aligned host memory.
  template <class T>
  using buffer = detail::owning_buffer<T, memory>;

  // ---- memory ------------------------------------------------------------------------------
  template <class T>
  static void copy_from_host(const T* src, index n, T* dst) {
    if (n > 0) std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(T));
  }
  template <class T>
  static void copy_to_host(const T* src, index n, T* dst) {
    if (n > 0) std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(T));
  }
  /// Nothing is asynchronous on the host.
  static void synchronize() noexcept {}

  // ---- BLAS-like ---------------------------------------------------------------------------
  /// C = alpha * op(A) * op(B) + beta * C. With beta == 0, C is not read (NaNs in it vanish).
  template <class T>
  static void gemm(transpose ta, transpose tb, T alpha, cmatrix<T> a, cmatrix<T> b, T beta,
                   matrix_view<T> c) {
    auto C = map(c);
    if (c.rows == 0 || c.cols == 0) return;
    const index inner = ta == transpose::no ? a.cols : a.rows;
    if (inner == 0) {
      if (beta == T(0)) C.setZero(); else C *= beta;
      return;
    }
    auto A = map(a);
    auto B = map(b);
    if (beta == T(0)) C.setZero(); else if (beta != T(1)) C *= beta;
    // Four spelled-out cases keep Eigen on its GEMM kernel without temporaries.
    if (ta == transpose::no && tb == transpose::no) C.noalias() += alpha * A * B;
    else if (ta == transpose::no) C.noalias() += alpha * A * B.transpose();
    else if (tb == transpose::no) C.noalias() += alpha * A.transpose() * B;
    else C.noalias() += alpha * A.transpose() * B.transpose();
  }

  /// For i in [0, count): C_i = alpha * op(A_i) * op(B_i) + beta * C_i, where X_i is the view X
  /// shifted by i * stride_x elements. A stride of 0 reuses one operand for every i.
  template <class T>
  static void gemm_batched(transpose ta, transpose tb, T alpha, cmatrix<T> a, index stride_a,
                           cmatrix<T> b, index stride_b, T beta, matrix_view<T> c, index stride_c,
                           index count) {
    for (index i = 0; i < count; ++i) {
      gemm(ta, tb, alpha, shifted(a, i * stride_a), shifted(b, i * stride_b), beta, shifted(c, i * stride_c));
    }
  }

  /// y += alpha * x
  template <class T>
  static void axpy(T alpha, cvector<T> x, vector_view<T> y) {
    assert(x.size == y.size);
    map(y) += alpha * map(x);
  }
  /// y += alpha * x for matrices of equal shape.
  template <class T>
  static void axpy(T alpha, cmatrix<T> x, matrix_view<T> y) {
    assert(x.rows == y.rows && x.cols == y.cols);
    map(y) += alpha * map(x);
  }
  template <class T>
  static void scal(T alpha, vector_view<T> x) {
    map(x) *= alpha;
  }
  template <class T>
  static void scal(T alpha, matrix_view<T> x) {
    map(x) *= alpha;
  }
  template <class T>
  static void copy(cvector<T> x, vector_view<T> y) {
    assert(x.size == y.size);
    copy_from_host(x.data, x.size, y.data);
  }
  template <class T>
  static void copy(cmatrix<T> x, matrix_view<T> y) {
    assert(x.rows == y.rows && x.cols == y.cols);
    map(y) = map(x);
  }
  template <class T>
  static void fill(T value, vector_view<T> x) {
    map(x).setConstant(value);
  }
  template <class T>
  static void fill(T value, matrix_view<T> x) {
    map(x).setConstant(value);
  }
  template <class U, class T = std::remove_const_t<U>>
  [[nodiscard]] static T dot(vector_view<U> x, cvector<T> y) {
    assert(x.size == y.size);
    return map(x).dot(map(y));
  }
  template <class U, class T = std::remove_const_t<U>>
  [[nodiscard]] static T sum(vector_view<U> x) {
    return map(x).sum();
  }
  /// m.row(r) += v for every r.
  template <class T>
  static void add_row_vector(cvector<T> v, matrix_view<T> m) {
    assert(v.size == m.cols);
    map(m).rowwise() += map(v).transpose();
  }
  /// m is vectors.rows blocks of m.rows / vectors.rows rows each; block j += vectors.row(j) in
  /// every row (one bias per direction in batched tangent passes).
  template <class T>
  static void add_row_vectors(cmatrix<T> vectors, matrix_view<T> m) {
    assert(vectors.cols == m.cols && vectors.rows > 0 && m.rows % vectors.rows == 0);
    const index block = m.rows / vectors.rows;
    for (index j = 0; j < vectors.rows; ++j)
      map(m.row_block(j * block, block)).rowwise() += map(vectors.row_block(j, 1)).row(0);
  }
  /// y = alpha * (sum of the rows of a) + beta * y. With beta == 0, y is not read.
  template <class T>
  static void column_sums(T alpha, cmatrix<T> a, T beta, vector_view<T> y) {
    assert(a.cols == y.size);
    auto Y = map(y);
    if (beta == T(0)) Y.setZero(); else if (beta != T(1)) Y *= beta;
    if (a.rows > 0) Y.noalias() += alpha * map(a).colwise().sum().transpose();
  }
  /// a is out.rows blocks of block_rows rows each; out.row(j) += alpha * (sum of block j's rows).
  template <class T>
  static void column_sums_batched(T alpha, cmatrix<T> a, index block_rows, matrix_view<T> out) {
    assert(a.rows == out.rows * block_rows && a.cols == out.cols);
    for (index j = 0; j < out.rows; ++j) {
      map(out.row_block(j, 1)).noalias() += alpha * map(a.row_block(j * block_rows, block_rows)).colwise().sum();
    }
  }
  /// out.row(b) = vec(x.row(b)^T * y.row(b)): the outer product of row b of x (m) and row b of y
  /// (n), row-major m x n, written into the first m * n entries of out's row b.
  template <class T>
  static void row_outer_products(cmatrix<T> x, cmatrix<T> y, matrix_view<T> out) {
    assert(x.rows == y.rows && x.rows == out.rows && out.cols == x.cols * y.cols);
    for (index b = 0; b < x.rows; ++b) {
      const T* xb = x.row(b);
      const T* yb = y.row(b);
      T* ob = out.row(b);
      for (index o = 0; o < x.cols; ++o) {
        Eigen::Map<Vec<T>>(ob + o * y.cols, y.cols) = xb[o] * Eigen::Map<const Vec<T>>(yb, y.cols);
      }
    }
  }
  template <class U>
  [[nodiscard]] static bool all_finite(vector_view<U> x) {
    return map(x).allFinite();
  }

  // ---- convolutions ----------------------------------------------------------------------------
  /// cols ((C·kh·kw) × (B·Ho·Wo)): column b·Ho·Wo + oh·Wo + ow holds the receptive field of output
  /// pixel (oh, ow) of sample b (row x.row(b) is C × H × W), row (c·kh + i)·kw + j its input
  /// x[b, c, oh·s − p + i, ow·s − p + j], zero outside the image.
  template <class T>
  static void im2col(const conv_geometry& g, cmatrix<T> x, matrix_view<T> cols) {
    const index oh_n = g.out_height(), ow_n = g.out_width(), pixels = oh_n * ow_n;
    assert(x.cols == g.input_size() && cols.rows == g.patch_size() && cols.cols == x.rows * pixels);
    for (index c = 0; c < g.channels; ++c)
      for (index i = 0; i < g.kernel_h; ++i) {
        const auto [oh_lo, oh_hi] = inside(g.padding - i, g.height, g.stride, oh_n);
        for (index j = 0; j < g.kernel_w; ++j) {
          // The output columns whose input column ow·s − p + j lies in the image; the rest read padding.
          const auto [ow_lo, ow_hi] = inside(g.padding - j, g.width, g.stride, ow_n);
          T* row = cols.row((c * g.kernel_h + i) * g.kernel_w + j);
          for (index b = 0; b < x.rows; ++b) {
            const T* image = x.row(b) + c * g.height * g.width;
            T* out = row + b * pixels;
            std::fill(out, out + oh_lo * ow_n, T(0));
            for (index oh = oh_lo; oh < oh_hi; ++oh) {
              // in[q] is the input under output column ow_lo + q (never a pointer outside the image).
              const T* in = image + (oh * g.stride - g.padding + i) * g.width + ow_lo * g.stride - g.padding + j;
              T* o = out + oh * ow_n;
              std::fill(o, o + ow_lo, T(0));
              if (g.stride == 1) std::copy(in, in + (ow_hi - ow_lo), o + ow_lo);
              else
                for (index q = 0; q < ow_hi - ow_lo; ++q) o[ow_lo + q] = in[q * g.stride];
              std::fill(o + ow_hi, o + ow_n, T(0));
            }
            std::fill(out + oh_hi * ow_n, out + pixels, T(0));
          }
        }
      }
  }
  /// The adjoint of im2col: x (B × C·H·W) = the sum, over every column entry, of its value at the
  /// input position it was copied from (positions in the padding are dropped). Overwrites x.
  template <class T>
  static void col2im(const conv_geometry& g, cmatrix<T> cols, matrix_view<T> x) {
    const index oh_n = g.out_height(), ow_n = g.out_width(), pixels = oh_n * ow_n;
    assert(x.cols == g.input_size() && cols.rows == g.patch_size() && cols.cols == x.rows * pixels);
    fill(T(0), x);
    for (index c = 0; c < g.channels; ++c)
      for (index i = 0; i < g.kernel_h; ++i) {
        const auto [oh_lo, oh_hi] = inside(g.padding - i, g.height, g.stride, oh_n);
        for (index j = 0; j < g.kernel_w; ++j) {
          const auto [ow_lo, ow_hi] = inside(g.padding - j, g.width, g.stride, ow_n);
          const T* row = cols.row((c * g.kernel_h + i) * g.kernel_w + j);
          for (index b = 0; b < x.rows; ++b) {
            T* image = x.row(b) + c * g.height * g.width;
            const T* in = row + b * pixels;
            for (index oh = oh_lo; oh < oh_hi; ++oh) {
              T* out = image + (oh * g.stride - g.padding + i) * g.width + ow_lo * g.stride - g.padding + j;
              const T* o = in + oh * ow_n + ow_lo;
              for (index q = 0; q < ow_hi - ow_lo; ++q) out[q * g.stride] += o[q];
            }
          }
        }
      }
  }
  /// in (A × (M·N)) read as an A × M × N array, written to out (M × (A·N)) as M × A × N: the
  /// first two axes swapped, the last kept contiguous (NCHW batch-major ↔ channel-major).
  template <class T>
  static void swap_leading_axes(cmatrix<T> in, index m, index n, matrix_view<T> out) {
    assert(in.cols == m * n && out.rows == m && out.cols == in.rows * n);
    for (index a = 0; a < in.rows; ++a)
      for (index k = 0; k < m; ++k) copy_from_host(in.row(a) + k * n, n, out.row(k) + a * n);
  }

  // ---- pooling -----------------------------------------------------------------------------
  // g is a pool_geometry; x is B × (C·H·W) and a pooled output B × (C·Ho·Wo), each row NCHW. Max
  // pooling routes through the argmax of each window of x: the FIRST maximum in row-major window
  // order on ties (a NaN beats every number, so it propagates), one rule for every kernel here.

  /// y[b, c, oh, ow] = max of x[b, c, oh·s + i, ow·s + j] over i, j in [0, window).
  template <class T>
  static void max_pool_forward(const pool_geometry& g, cmatrix<T> x, matrix_view<T> y) {
    max_pool_tangent(g, x, x, y);  // the values of x at its own argmax are the maxima
  }
  /// The adjoint of routing by x's argmax: d_x = 0, then each d_y entry is added at the argmax of
  /// its window (windows that overlap accumulate), for each of the k = d_y.rows / x.rows blocks
  /// (row j·B + b of d_y uses x.row(b)). Overwrites d_x (as many rows as d_y).
  template <class T>
  static void max_pool_backward(const pool_geometry& g, cmatrix<T> x, cmatrix<T> d_y, matrix_view<T> d_x) {
    assert(x.cols == g.input_size() && d_y.cols == g.output_size() && d_x.cols == x.cols && d_x.rows == d_y.rows);
    assert(x.rows > 0 ? d_y.rows % x.rows == 0 : d_y.rows == 0);
    fill(T(0), d_x);
    const index batch = x.rows, k = batch > 0 ? d_y.rows / batch : 0;
    for_each_window_argmax<T>(g, x, [&](index b, index from, index to) {
      for (index j = 0; j < k; ++j) d_x.row(j * batch + b)[from] += d_y.row(j * batch + b)[to];
    });
  }
  /// r_y = r_x at the argmax of x's windows, for each of the k = r_x.rows / x.rows blocks (row
  /// j·B + b of r_x is routed by x.row(b)): max pooling's R-operator uses the first-order argmax.
  template <class T>
  static void max_pool_tangent(const pool_geometry& g, cmatrix<T> x, cmatrix<T> r_x, matrix_view<T> r_y) {
    assert(x.cols == g.input_size() && r_x.cols == x.cols && r_y.cols == g.output_size() && r_y.rows == r_x.rows);
    assert(x.rows > 0 ? r_x.rows % x.rows == 0 : r_x.rows == 0);
    const index batch = x.rows, k = batch > 0 ? r_x.rows / batch : 0;
    for_each_window_argmax<T>(g, x, [&](index b, index from, index to) {
      for (index j = 0; j < k; ++j) r_y.row(j * batch + b)[to] = r_x.row(j * batch + b)[from];
    });
  }
  /// y[b, c, oh, ow] = the mean of x[b, c, oh·s + i, ow·s + j] over i, j in [0, window). Linear:
  /// it is also the tangent of average pooling, for any number of rows.
  template <class T>
  static void avg_pool_forward(const pool_geometry& g, cmatrix<T> x, matrix_view<T> y) {
    assert(x.cols == g.input_size() && y.cols == g.output_size() && y.rows == x.rows);
    const T scale = T(1) / static_cast<T>(g.window * g.window);
    const index image = g.height * g.width, oh_n = g.out_height(), ow_n = g.out_width();
    for (index r = 0; r < x.rows; ++r)
      for (index c = 0; c < g.channels; ++c) {
        const T* in = x.row(r) + c * image;
        T* out = y.row(r) + c * oh_n * ow_n;
        for (index oh = 0; oh < oh_n; ++oh)
          for (index ow = 0; ow < ow_n; ++ow) {
            const T* corner = in + oh * g.stride * g.width + ow * g.stride;
            T sum = T(0);
            for (index i = 0; i < g.window; ++i)
              for (index j = 0; j < g.window; ++j) sum += corner[i * g.width + j];
            out[oh * ow_n + ow] = scale * sum;
          }
      }
  }
  /// The adjoint of avg_pool_forward: d_x = 0, then d_y[r, c, oh, ow] / window² is added to every
  /// input of its window (windows that overlap accumulate), row by row for any number of rows.
  /// Overwrites d_x.
  template <class T>
  static void avg_pool_backward(const pool_geometry& g, cmatrix<T> d_y, matrix_view<T> d_x) {
    assert(d_y.cols == g.output_size() && d_x.cols == g.input_size() && d_x.rows == d_y.rows);
    fill(T(0), d_x);
    const T scale = T(1) / static_cast<T>(g.window * g.window);
    const index image = g.height * g.width, oh_n = g.out_height(), ow_n = g.out_width();
    for (index r = 0; r < d_y.rows; ++r)
      for (index c = 0; c < g.channels; ++c) {
        const T* in = d_y.row(r) + c * oh_n * ow_n;
        T* out = d_x.row(r) + c * image;
        for (index oh = 0; oh < oh_n; ++oh)
          for (index ow = 0; ow < ow_n; ++ow) {
            T* corner = out + oh * g.stride * g.width + ow * g.stride;
            const T share = scale * in[oh * ow_n + ow];
            for (index i = 0; i < g.window; ++i)
              for (index j = 0; j < g.window; ++j) corner[i * g.width + j] += share;
          }
      }
  }

  // ---- channels ----------------------------------------------------------------------------
  // Images stored R × (C·P): each row C channels of P pixels, the rows in R / block_rows blocks of
  // block_rows rows (block j = direction j of a batched pass, or all rows for block_rows = R). A
  // "shared" operand has block_rows rows and serves every block (row r' = r mod block_rows); a
  // coefficient matrix has one row per block, or one row for all blocks.

  /// out(j, c) = alpha·Σ_{r in block j} Σ_p x[r, c·P + p]·y[r', c·P + p] + beta·out(j, c), with
  /// y empty (factor 1), shared or of x's rows (r' = r). x has out.rows·block_rows rows and
  /// out.cols·pixels columns. With beta == 0, out is not read.
  template <class T>
  static void channel_sums(T alpha, cmatrix<T> x, cmatrix<T> y, index pixels, index block_rows, T beta,
                           matrix_view<T> out) {
    assert(pixels > 0 && block_rows > 0 && x.rows == out.rows * block_rows && x.cols == out.cols * pixels);
    assert(y.empty() || (y.cols == x.cols && (y.rows == block_rows || y.rows == x.rows)));
    const index channels = out.cols;
    Vec<T> acc(channels);
    for (index j = 0; j < out.rows; ++j) {
      acc.setZero();
      for (index i = 0; i < block_rows; ++i) {
        const index r = j * block_rows + i;
        const T* xr = x.row(r);
        if (y.empty()) {
          for (index c = 0; c < channels; ++c) acc[c] += Eigen::Map<const Vec<T>>(xr + c * pixels, pixels).sum();
        } else {
          const T* yr = y.row(y.rows == x.rows ? r : i);
          for (index c = 0; c < channels; ++c) {
            const auto xc = Eigen::Map<const Vec<T>>(xr + c * pixels, pixels);
            acc[c] += xc.dot(Eigen::Map<const Vec<T>>(yr + c * pixels, pixels));
          }
        }
      }
      auto o = map(out.row_block(j, 1)).row(0);
      if (beta == T(0)) o = alpha * acc.transpose();
      else o = alpha * acc.transpose() + beta * o;
    }
  }

  /// out[r, c·P + p] = alpha·(a(j, c)·x[r', c·P + p] + b(j, c)·y[r'', c·P + p] + c(j, c))
  ///                   + beta·out[r, c·P + p],  j = r / block_rows,
  /// where x and y are each empty (the term is dropped), shared, or of out's rows; a, b, c are each
  /// 1 × C (every block) or (out.rows / block_rows) × C; an empty a or b is 1, an empty c is 0.
  /// With beta == 0, out is not read. out may be the same view as x or y when that has out's rows.
  template <class T>
  static void channel_combine(T alpha, cmatrix<T> a, cmatrix<T> x, cmatrix<T> b, cmatrix<T> y, cmatrix<T> c,
                              index pixels, index block_rows, T beta, matrix_view<T> out) {
    assert(pixels > 0 && block_rows > 0 && out.rows % block_rows == 0 && out.cols % pixels == 0);
    const index channels = out.cols / pixels;
    const bool has_x = !x.empty(), has_y = !y.empty(), has_c = !c.empty();
    assert(!has_x || (x.cols == out.cols && (x.rows == block_rows || x.rows == out.rows)));
    assert(!has_y || (y.cols == out.cols && (y.rows == block_rows || y.rows == out.rows)));
    const auto coefficient = [&](cmatrix<T> m, index j, index ch, T otherwise) {
      return m.empty() ? otherwise : m.row(m.rows == 1 ? 0 : j)[ch];
    };
    for (index r = 0; r < out.rows; ++r) {
      const index j = r / block_rows;
      const T* xr = has_x ? x.row(x.rows == out.rows ? r : r % block_rows) : nullptr;
      const T* yr = has_y ? y.row(y.rows == out.rows ? r : r % block_rows) : nullptr;
      T* o = out.row(r);
      for (index ch = 0; ch < channels; ++ch) {
        const T ax = alpha * coefficient(a, j, ch, T(1)), by = alpha * coefficient(b, j, ch, T(1));
        const T cc = has_c ? alpha * coefficient(c, j, ch, T(0)) : T(0);
        const index first = ch * pixels;
        // One pass per element: out may alias x or y, so each is read before out is written.
        for (index p = first; p < first + pixels; ++p) {
          T v = cc;
          if (has_x) v += ax * xr[p];
          if (has_y) v += by * yr[p];
          o[p] = beta == T(0) ? v : v + beta * o[p];
        }
      }
    }
  }

  /// out = 1/√(x + shift) elementwise (equal shapes; out may be x).
  template <class T>
  static void inverse_sqrt(T shift, cmatrix<T> x, matrix_view<T> out) {
    assert(x.rows == out.rows && x.cols == out.cols);
    for (index r = 0; r < out.rows; ++r)
      for (index j = 0; j < out.cols; ++j) out.row(r)[j] = T(1) / std::sqrt(x.row(r)[j] + shift);
  }

private:
  /// The outputs o in [lo, hi) ⊆ [0, count) whose input o·stride − shift lies in [0, size): with
  /// shift = padding − kernel offset, the rows (or columns) of an im2col row that read the image.
  static std::pair<index, index> inside(index shift, index size, index stride, index count) {
    const index lo = std::min(count, shift > 0 ? (shift + stride - 1) / stride : index{0});
    const index end = size + shift;  // first o·stride that falls past the image
    const index hi = end > 0 ? std::min(count, (end + stride - 1) / stride) : index{0};
    return {lo, std::max(lo, hi)};
  }

  /// f(b, from, to) for every window of every row b of x: `from` is the offset in the row of the
  /// window's argmax, `to` the offset of the window's output in a pooled row.
  template <class T, class F>
  static void for_each_window_argmax(const pool_geometry& g, cmatrix<T> x, F&& f) {
    const index image = g.height * g.width, oh_n = g.out_height(), ow_n = g.out_width();
    for (index b = 0; b < x.rows; ++b)
      for (index c = 0; c < g.channels; ++c)
        for (index oh = 0; oh < oh_n; ++oh)
          for (index ow = 0; ow < ow_n; ++ow)
            f(b, c * image + detail::window_argmax(g, x.row(b) + c * image, oh, ow), (c * oh_n + oh) * ow_n + ow);
  }

  /// Σ (x − x) over n values just written: 0 when all are finite, NaN when any is NaN or ±Inf.
  /// Called on a block while it is still in L1, which makes the recurrence kernels' check free.
  template <class T>
  static T non_finite_poison(const T* x, index n) {
    const auto X = Eigen::Map<const Vec<T>>(x, n).array();
    return (X - X).sum();
  }

  /// One block of hypergradient_transfer (recurrence::transfer per element): each element read
  /// once and written once, the case chosen once per block so the loop vectorises.
  template <class T>
  static void transfer_block(index n, const T* m, bool fresh, T w, T eta, const T* __restrict source,
                             T* __restrict D, T* __restrict G) {
    if (fresh && source == nullptr) {
      for (index j = 0; j < n; ++j) recurrence::start(D[j], G[j]);
    } else if (fresh) {
      for (index j = 0; j < n; ++j) recurrence::start(w, eta, source[j], D[j], G[j]);
    } else if (source == nullptr) {
      for (index j = 0; j < n; ++j) recurrence::transfer(m, D[j], G[j]);
    } else {
      for (index j = 0; j < n; ++j) recurrence::transfer(m, w, eta, source[j], D[j], G[j]);
    }
  }

public:

  // ---- the hypergradient recurrence ----------------------------------------------------------
  /// One step of Eq. 35–36 (recurrence::step) for every row r (one tracked sample) of the states,
  /// in one pass, on blocks of coordinates:
  ///   dv_r ← p·dv_r + λ·grad_r + hv_r + weights[r]·sources.row(source_rows[r])
  ///   grad_r ← grad_r − η·dv_r
  /// hv empty means no Hessian term; source_rows[r] < 0 means no gradient term for row r.
  /// source_rows and weights hold dv.rows entries in backend memory. Returns whether every value
  /// written is finite, checked on each block while it is still in cache (so the check is free).
  template <class T>
  static bool hypergradient_update(T p, T lambda, T eta, cmatrix<T> hv, const index* source_rows, const T* weights,
                                   cmatrix<T> sources, matrix_view<T> dv, matrix_view<T> grad) {
    assert(dv.rows == grad.rows && dv.cols == grad.cols);
    constexpr index block = 2048;  // 16 KiB of doubles per state: both stay in L1 for the check
    const recurrence::step_coefficients<T> c{p, lambda, eta};
    T poison = T(0);
    for (index r = 0; r < dv.rows; ++r) {
      const bool has_source = source_rows != nullptr && source_rows[r] >= 0;
      for (index first = 0; first < dv.cols; first += block) {
        const index n = std::min(block, dv.cols - first);
        auto D = Eigen::Map<Vec<T>>(dv.row(r) + first, n).array();
        auto G = Eigen::Map<Vec<T>>(grad.row(r) + first, n).array();
        const auto H = Eigen::Map<const Vec<T>>(hv.empty() ? nullptr : hv.row(r) + first, n).array();
        const auto S = Eigen::Map<const Vec<T>>(has_source ? sources.row(source_rows[r]) + first : nullptr, n).array();
        if (hv.empty() && !has_source) recurrence::step(c, D, G);
        else if (hv.empty()) recurrence::step(c, D, G, weights[r] * S);
        else if (!has_source) recurrence::step(c, D, G, H);
        else recurrence::step(c, D, G, H, weights[r] * S);
        poison += non_finite_poison(dv.row(r) + first, n) + non_finite_poison(grad.row(r) + first, n);
      }
    }
    return poison == T(0);
  }

  /// The lazy Hessian-free update (hypergradient/transfer.hpp) of `count` listed rows, one pass
  /// each: for k < count, r = state_rows[k], m = transfers[4k .. 4k+3] (row-major 2 × 2),
  ///   (dv_r, grad_r) ← (m0·dv_r + m1·grad_r, m2·dv_r + m3·grad_r) + w_k·s·(1, −η)
  /// with s = sources.row(source_rows[k]) and w_k = weights[k] when source_rows[k] ≥ 0, no term
  /// otherwise. A zero m overwrites without reading (a state never touched is zero and may be
  /// uninitialised memory). All pointers hold `count` (transfers 4·count) entries in backend
  /// memory. Returns whether every value written is finite.
  template <class T>
  static bool hypergradient_transfer(index count, const index* state_rows, const T* transfers, const index* source_rows,
                                     const T* weights, T eta, cmatrix<T> sources, matrix_view<T> dv,
                                     matrix_view<T> grad) {
    assert(dv.rows == grad.rows && dv.cols == grad.cols);
    constexpr index block = 2048;  // as in hypergradient_update: the check reads the block from L1
    T poison = T(0);
    for (index k = 0; k < count; ++k) {
      const index r = state_rows[k];
      const T* m = transfers + 4 * k;
      const bool fresh = recurrence::is_fresh(m);
      const T* source = source_rows[k] >= 0 ? sources.row(source_rows[k]) : nullptr;
      const T w = source != nullptr ? weights[k] : T(0);
      for (index first = 0; first < dv.cols; first += block) {
        const index n = std::min(block, dv.cols - first);
        transfer_block(n, m, fresh, w, eta, source != nullptr ? source + first : nullptr, dv.row(r) + first,
                       grad.row(r) + first);
        poison += non_finite_poison(dv.row(r) + first, n) + non_finite_poison(grad.row(r) + first, n);
      }
    }
    return poison == T(0);
  }

  // ---- activations -------------------------------------------------------------------------
  /// out = f(in)
  template <class T>
  static void activation_forward(activation f, cmatrix<T> in, matrix_view<T> out) {
    auto X = map(in);
    auto Y = map(out);
    switch (f) {
      case activation::identity: Y = X; break;
      case activation::relu: Y = X.cwiseMax(T(0)); break;
      case activation::tanh: Y = X.array().tanh().matrix(); break;
      case activation::sigmoid: Y = (T(1) / (T(1) + (-X.array()).exp())).matrix(); break;
      case activation::relu6: Y = X.cwiseMax(T(0)).cwiseMin(T(6)); break;  // a NaN stays NaN
    }
  }
  /// d_in = d_out ⊙ f'(in); `out` = f(in) from the forward pass.
  template <class T>
  static void activation_backward(activation f, cmatrix<T> in, cmatrix<T> out,
                                  cmatrix<T> d_out, matrix_view<T> d_in) {
    auto D = map(d_in);
    D = (map(d_out).array() * first_derivative(f, map(in), map(out))).matrix();
  }
  /// r_out_j = f'(in) ⊙ r_in_j for each of the k = r_in.rows / in.rows blocks.
  template <class T>
  static void activation_tangent(activation f, cmatrix<T> in, cmatrix<T> out,
                                 cmatrix<T> r_in, matrix_view<T> r_out) {
    const index batch = in.rows;
    const auto fp = first_derivative(f, map(in), map(out)).eval();
    for (index j = 0; batch > 0 && j < r_in.rows / batch; ++j) {
      map(r_out.row_block(j * batch, batch)) = (map(r_in.row_block(j * batch, batch)).array() * fp).matrix();
    }
  }
  /// The R-operator of activation_backward, block by block:
  /// r_d_in_j = r_d_out_j ⊙ f'(in) + d_out ⊙ f''(in) ⊙ r_in_j. An empty r_in means r_in = 0
  /// (the layer's input does not depend on the parameters).
  template <class T>
  static void activation_second_backward(activation f, cmatrix<T> in, cmatrix<T> out,
                                         cmatrix<T> d_out, cmatrix<T> r_in,
                                         cmatrix<T> r_d_out, matrix_view<T> r_d_in) {
    const index batch = in.rows;
    const auto fp = first_derivative(f, map(in), map(out)).eval();
    const bool curved = !r_in.empty() && f != activation::identity && f != activation::relu;
    Arr<T> d_fpp;
    if (curved) d_fpp = map(d_out).array() * second_derivative(f, map(out));
    for (index j = 0; batch > 0 && j < r_d_out.rows / batch; ++j) {
      auto R = map(r_d_in.row_block(j * batch, batch));
      R = (map(r_d_out.row_block(j * batch, batch)).array() * fp).matrix();
      if (curved) R.array() += d_fpp * map(r_in.row_block(j * batch, batch)).array();
    }
  }

  // ---- losses ------------------------------------------------------------------------------
  /// probabilities = softmax(logits) row by row (max-shifted), losses_b = -log p_b[labels_b]
  /// computed as logsumexp(z_b) - z_b[y_b] so that it stays finite for large logits.
  template <class T>
  static void softmax_cross_entropy(cmatrix<T> logits, const label_type* labels,
                                    matrix_view<T> probabilities, vector_view<T> losses) {
    for (index b = 0; b < logits.rows; ++b) {
      auto z = map(logits.row_block(b, 1)).array();
      auto p = map(probabilities.row_block(b, 1)).array();
      const T zmax = z.maxCoeff();
      p = (z - zmax).exp();
      const T total = p.sum();
      p /= total;
      losses.data[b] = (zmax - z(0, labels[b])) + std::log(total);  // two non-negative terms: no cancellation
    }
  }
  /// d = scale * (p - onehot(labels)).
  template <class T>
  static void softmax_cross_entropy_gradient(cmatrix<T> probabilities, const label_type* labels, T scale,
                                             matrix_view<T> d) {
    auto D = map(d);
    D = scale * map(probabilities);
    for (index b = 0; b < d.rows; ++b) D(b, labels[b]) -= scale;
  }
  /// out_j = scale * (diag(p) - p p^T) r_j per sample, for the k = r.rows / p.rows blocks of r.
  template <class T>
  static void softmax_cross_entropy_hessian_product(cmatrix<T> probabilities, cmatrix<T> r,
                                                    T scale, matrix_view<T> out) {
    const index batch = probabilities.rows;
    const auto P = map(probabilities);
    for (index j = 0; batch > 0 && j < r.rows / batch; ++j) {
      const auto R = map(r.row_block(j * batch, batch));
      auto O = map(out.row_block(j * batch, batch));
      const auto pr = (P.array() * R.array()).rowwise().sum().eval();  // p_b · r_b
      O = (scale * P.array() * (R.array().colwise() - pr)).matrix();
    }
  }
  /// losses_b = (1/C) * ||z_b - y_b||^2, where y_b is row b of targets, or onehot(labels_b) when
  /// targets is empty (C = logits.cols).
  template <class T>
  static void squared_error(cmatrix<T> logits, const label_type* labels, cmatrix<T> targets,
                            vector_view<T> losses) {
    const T inv_c = T(1) / static_cast<T>(logits.cols);
    for (index b = 0; b < logits.rows; ++b) {
      T s = 0;
      for (index c = 0; c < logits.cols; ++c) {
        const T e = logits.row(b)[c] - target_at<T>(labels, targets, b, c);
        s += e * e;
      }
      losses.data[b] = s * inv_c;
    }
  }
  /// d = scale * (2/C) * (z - y), with y as in squared_error.
  template <class T>
  static void squared_error_gradient(cmatrix<T> logits, const label_type* labels,
                                     cmatrix<T> targets, T scale, matrix_view<T> d) {
    const T factor = scale * T(2) / static_cast<T>(logits.cols);
    for (index b = 0; b < logits.rows; ++b)
      for (index c = 0; c < logits.cols; ++c)
        d.row(b)[c] = factor * (logits.row(b)[c] - target_at<T>(labels, targets, b, c));
  }
  /// Rows whose largest logit (first on ties) is at the label's position.
  template <class U>
  [[nodiscard]] static index count_correct(matrix_view<U> logits, const label_type* labels) {
    index correct = 0;
    for (index b = 0; b < logits.rows; ++b) {
      const U* z = logits.row(b);
      correct += (std::max_element(z, z + logits.cols) - z) == labels[b];
    }
    return correct;
  }

private:
  template <class T>
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  template <class T>
  using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;
  template <class T>
  using Arr = Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

  template <class T>
  static auto map(matrix_view<T> v) {
    using M = std::conditional_t<std::is_const_v<T>, const Mat<std::remove_const_t<T>>, Mat<T>>;
    return Eigen::Map<M, Eigen::Unaligned, Eigen::OuterStride<>>(v.data, v.rows, v.cols,
                                                                 Eigen::OuterStride<>(std::max<index>(v.stride, 1)));
  }
  template <class T>
  static auto map(vector_view<T> v) {
    using V = std::conditional_t<std::is_const_v<T>, const Vec<std::remove_const_t<T>>, Vec<T>>;
    return Eigen::Map<V>(v.data, v.size);
  }
  template <class T>
  static matrix_view<T> shifted(matrix_view<T> v, index offset) {
    return {v.data + offset, v.rows, v.cols, v.stride};
  }
  template <class T>
  static T target_at(const label_type* labels, cmatrix<T> targets, index b, index c) {
    if (!targets.empty()) return targets.row(b)[c];
    return labels[b] == c ? T(1) : T(0);
  }
  /// f'(in) as an array expression; tanh and sigmoid use the stored output.
  template <class In, class Out>
  static auto first_derivative(activation f, const In& in, const Out& out) {
    using T = typename In::Scalar;
    Arr<T> r(in.rows(), in.cols());
    switch (f) {
      case activation::identity: r.setOnes(); break;
      case activation::relu: r = (in.array() > T(0)).template cast<T>(); break;
      case activation::tanh: r = T(1) - out.array().square(); break;
      case activation::sigmoid: r = out.array() * (T(1) - out.array()); break;
      // PyTorch's hardtanh backward: 1 strictly inside (0, 6), 0 at and beyond the kinks.
      case activation::relu6: r = ((in.array() > T(0)) && (in.array() < T(6))).template cast<T>(); break;
    }
    return r;
  }
  /// f''(in) from the stored output f(in); zero for identity and (almost everywhere) ReLU, ReLU6.
  template <class Out>
  static auto second_derivative(activation f, const Out& out) {
    using T = typename Out::Scalar;
    Arr<T> r(out.rows(), out.cols());
    const auto a = out.array();
    switch (f) {
      case activation::identity:
      case activation::relu:
      case activation::relu6: r.setZero(); break;
      case activation::tanh: r = T(-2) * a * (T(1) - a.square()); break;
      case activation::sigmoid: r = a * (T(1) - a) * (T(1) - T(2) * a); break;
    }
    return r;
  }
};

} // namespace hydra
