// hydra::cpu, part 1: memory (cpu::buffer, hydra::vector / hydra::matrix on cpu) and the BLAS-like
// operations, each against a plain loop computed in long double (tests/backend/reference.hpp),
// for float and double. Outputs are strided views whose padding holds a sentinel that must
// survive; inputs are strided views whose padding holds NaN that must not leak into results.
// Activations and losses are in cpu_kernels.test.cpp.

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "backend/reference.hpp"
#include "hydra/backend/cpu.hpp"
#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"

namespace hydra::test {
namespace {

constexpr double sentinel = 777.25;  // exactly representable in float and double

/// Element (i, k) of op(A).
template <class T>
real op_at(const host_matrix<T>& a, transpose t, index i, index k) {
  return t == transpose::no ? real(a(i, k)) : real(a(k, i));
}

/// alpha * op(A) * op(B) + beta * C0 by the triple loop; C0 is not read when beta == 0.
template <class T>
ref_matrix reference_gemm(transpose ta, transpose tb, T alpha, const host_matrix<T>& a, const host_matrix<T>& b,
                          T beta, const host_matrix<T>& c0) {
  const index m = c0.rows, n = c0.cols;
  const index inner = ta == transpose::no ? a.cols : a.rows;
  ref_matrix c(m, n);
  for (index i = 0; i < m; ++i)
    for (index j = 0; j < n; ++j) {
      real s = 0;
      for (index k = 0; k < inner; ++k) s += op_at(a, ta, i, k) * op_at(b, tb, k, j);
      c(i, j) = real(alpha) * s + (beta == T(0) ? real(0) : real(beta) * real(c0(i, j)));
    }
  return c;
}

/// A stored operand for op(X) of shape rows × cols: stored transposed when t == yes; padded rows.
template <class T>
host_matrix<T> operand(random_source& rng, transpose t, index rows, index cols, index pad) {
  const index r = t == transpose::no ? rows : cols;
  const index c = t == transpose::no ? cols : rows;
  return rng.filled<T>(r, c, c + pad);
}

constexpr std::array<std::pair<transpose, transpose>, 4> all_transposes{{{transpose::no, transpose::no},
                                                                          {transpose::no, transpose::yes},
                                                                          {transpose::yes, transpose::no},
                                                                          {transpose::yes, transpose::yes}}};

} // namespace

// ---- devices -----------------------------------------------------------------------------------

TEST_CASE("cpu reports the host as its one device, with the physical memory as its bound") {
  const auto devices = cpu::devices();
  REQUIRE(devices.size() == 1);
  CHECK(devices[0].id == "cpu");
  CHECK(devices[0].name.find("hardware threads") != std::string::npos);
  CHECK(devices[0].memory_bytes == cpu::memory_available());
  CHECK(cpu::memory_available() > (std::size_t{1} << 26));  // any machine that builds hydra has 64 MiB
  CHECK(cpu::no_device_reason().empty());
}

// ---- memory ------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("cpu::buffer is zero-initialised, 64-byte aligned and movable", T, float, double) {
  using buffer = cpu::buffer<T>;
  static_assert(!std::is_copy_constructible_v<buffer>);
  static_assert(!std::is_copy_assignable_v<buffer>);
  static_assert(std::is_nothrow_move_constructible_v<buffer>);
  static_assert(std::is_nothrow_move_assignable_v<buffer>);

  SUBCASE("default and empty buffers own nothing") {
    const buffer none;
    CHECK(none.data() == nullptr);
    CHECK(none.size() == 0);
    const buffer zero(0);
    CHECK(zero.data() == nullptr);
    CHECK(zero.size() == 0);
  }
  SUBCASE("zero-initialised and aligned for several sizes") {
    for (index n : {1, 3, 16, 17, 1000, 4099}) {
      CAPTURE(n);
      buffer b(n);
      REQUIRE(b.data() != nullptr);
      CHECK(b.size() == n);
      CHECK(reinterpret_cast<std::uintptr_t>(b.data()) % 64 == 0);
      bool zero = true;
      for (index i = 0; i < n; ++i) zero = zero && b.data()[i] == T(0);
      CHECK(zero);
      b.data()[n - 1] = T(5);  // the whole range is writable (ASan checks the bounds)
    }
  }
  SUBCASE("move construction and assignment transfer ownership") {
    buffer a(10);
    a.data()[3] = T(2.5);
    T* const p = a.data();
    buffer b(std::move(a));
    CHECK(b.data() == p);
    CHECK(b.size() == 10);
    CHECK(b.data()[3] == T(2.5));
    CHECK(a.data() == nullptr);  // NOLINT(bugprone-use-after-move): moved-from state is specified
    CHECK(a.size() == 0);

    buffer c(4);
    c = std::move(b);  // c's old memory is released (ASan/LSan would report a leak)
    CHECK(c.data() == p);
    CHECK(c.size() == 10);
    CHECK(b.data() == nullptr);  // NOLINT(bugprone-use-after-move)
    CHECK(b.size() == 0);

    auto& alias = c;
    c = std::move(alias);  // self-move keeps the contents
    CHECK(c.data() == p);
    CHECK(c.size() == 10);
  }
  SUBCASE("a size whose byte count overflows size_t is an allocation_error, before allocating") {
    CHECK_THROWS_AS(buffer(std::numeric_limits<index>::max()), hydra::allocation_error);
  }
  SUBCASE("a negative size is an invalid_argument") {
    CHECK_THROWS_AS(buffer(-1), hydra::invalid_argument);
    CHECK_THROWS_AS(buffer(-1000), hydra::invalid_argument);
  }
}

TEST_CASE_TEMPLATE("copy_from_host / copy_to_host copy exactly n elements", T, float, double) {
  const std::vector<T> src{T(1), T(-2), T(3.5), T(4)};
  std::vector<T> dst(6, T(9));
  cpu::copy_from_host(src.data(), 3, dst.data());
  CHECK(dst == std::vector<T>{T(1), T(-2), T(3.5), T(9), T(9), T(9)});
  std::vector<T> back(4, T(0));
  cpu::copy_to_host(dst.data(), 4, back.data());
  CHECK(back == std::vector<T>{T(1), T(-2), T(3.5), T(9)});
  cpu::copy_to_host(static_cast<const T*>(nullptr), 0, static_cast<T*>(nullptr));  // n == 0: no access
}

TEST_CASE_TEMPLATE("hydra::matrix and hydra::vector on cpu", T, float, double) {
  using mat = hydra::matrix<T, cpu>;
  using vec = hydra::vector<T, cpu>;

  SUBCASE("matrix from_host / to_host round trip, row-major element access") {
    const std::vector<T> values{T(1), T(2), T(3), T(4), T(5), T(6)};
    const mat m = mat::from_host(values, 2, 3);
    CHECK(m.rows() == 2);
    CHECK(m.cols() == 3);
    CHECK(m.size() == 6);
    CHECK(m.to_host() == values);
    CHECK(m(0, 2) == T(3));
    CHECK(m(1, 0) == T(4));
    const auto v = m.view();
    CHECK(v.stride == 3);
    CHECK(v.row(1)[1] == T(5));
    CHECK(m.flat().size == 6);
    CHECK(reinterpret_cast<std::uintptr_t>(m.data()) % 64 == 0);
  }
  SUBCASE("matrix from_host with the wrong number of values is a shape_error") {
    const std::vector<T> values(5, T(1));
    CHECK_THROWS_AS(mat::from_host(values, 2, 3), hydra::shape_error);
    CHECK_THROWS_AS(mat::from_host(values, 3, 2), hydra::shape_error);
    CHECK_THROWS_AS(mat::from_host(std::vector<T>{}, 1, 1), hydra::shape_error);
    CHECK_NOTHROW(mat::from_host(std::vector<T>{}, 0, 4));
  }
  SUBCASE("matrix with a negative shape is an invalid_argument") {
    CHECK_THROWS_AS(mat(-1, 2), hydra::invalid_argument);
    CHECK_THROWS_AS(mat(2, -1), hydra::invalid_argument);
    mat m(1, 1);
    CHECK_THROWS_AS(m.resize(-2, 3), hydra::invalid_argument);
  }
  SUBCASE("a new matrix is zero") {
    const mat m(3, 4);
    for (T x : m.to_host()) CHECK(x == T(0));
  }
  SUBCASE("matrix resize reallocates only when the element count grows") {
    mat m(4, 5);
    const T* const p = m.data();
    m.resize(2, 10);  // same count
    CHECK(m.data() == p);
    CHECK(m.rows() == 2);
    CHECK(m.cols() == 10);
    CHECK(m.size() == 20);
    m.resize(3, 3);  // fewer
    CHECK(m.data() == p);
    CHECK(m.size() == 9);
    CHECK(m.view().stride == 3);
    CHECK(m.to_host().size() == 9);
    m.resize(4, 5);  // back up to the capacity: still no reallocation
    CHECK(m.data() == p);
    m.resize(7, 3);  // 21 > 20: a new buffer of the new size
    CHECK(m.rows() == 7);
    CHECK(m.cols() == 3);
    CHECK(m.to_host().size() == 21);
    m(6, 2) = T(1);  // the last element is inside the new allocation (ASan)
  }
  SUBCASE("vector from_host / to_host round trip and resize") {
    const std::vector<T> values{T(-1), T(0.5), T(8)};
    vec v = vec::from_host(values);
    CHECK(v.size() == 3);
    CHECK(v.to_host() == values);
    CHECK(v[2] == T(8));
    CHECK(v.view().size == 3);
    v.resize(3);  // unchanged size keeps the contents
    CHECK(v.to_host() == values);
    v.resize(5);  // a different size: a fresh zeroed buffer
    CHECK(v.size() == 5);
    CHECK(v.to_host() == std::vector<T>(5, T(0)));
    v.resize(0);
    CHECK(v.size() == 0);
    CHECK(v.to_host().empty());
    CHECK_THROWS_AS(v.resize(-1), hydra::invalid_argument);
  }
}

// ---- gemm -------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("gemm: all transposes, alpha/beta, strided operands", T, float, double) {
  random_source rng(11);
  const index m = 5, n = 4, k = 7;
  struct coefficients {
    double alpha, beta;
  };
  for (const auto& [ta, tb] : all_transposes) {
    for (const coefficients ab : {coefficients{1, 0}, coefficients{0.5, -1.5}, coefficients{-2, 1},
                                  coefficients{1.25, 0.75}}) {
      CAPTURE(static_cast<int>(ta));
      CAPTURE(static_cast<int>(tb));
      CAPTURE(ab.alpha);
      CAPTURE(ab.beta);
      const T alpha = T(ab.alpha), beta = T(ab.beta);
      const auto a = operand<T>(rng, ta, m, k, 3);  // padding is NaN
      const auto b = operand<T>(rng, tb, k, n, 2);
      host_matrix<T> c(m, n, n + 1, T(sentinel));
      if (beta == T(0)) {
        for (index i = 0; i < m; ++i)
          for (index j = 0; j < n; ++j) c(i, j) = std::numeric_limits<T>::quiet_NaN();  // must vanish
      } else {
        rng.fill(c);
      }
      const auto want = reference_gemm(ta, tb, alpha, a, b, beta, c);
      cpu::gemm(ta, tb, alpha, a.cview(), b.cview(), beta, c.view());
      CHECK(relative_error(c, want) <= tol<T>);
      CHECK(c.padding_is(T(sentinel)));
    }
  }
}

TEST_CASE_TEMPLATE("gemm on row and column blocks of larger matrices", T, float, double) {
  random_source rng(12);
  // Parent matrices; the operands are interior blocks, so stride > cols and the block edges
  // border live data of the parent that must be neither read (NaN) nor written (sentinel).
  host_matrix<T> pa(9, 11, 11);
  host_matrix<T> pb(8, 10, 10);
  for (const auto& [ta, tb] : all_transposes) {
    CAPTURE(static_cast<int>(ta));
    CAPTURE(static_cast<int>(tb));
    host_matrix<T> pc(10, 12, 12, T(sentinel));
    std::fill(pa.data.begin(), pa.data.end(), std::numeric_limits<T>::quiet_NaN());
    std::fill(pb.data.begin(), pb.data.end(), std::numeric_limits<T>::quiet_NaN());
    const index m = 4, n = 3, k = 5;
    // op(A) is m × k: A is rows [2, 2 + ar) and cols [3, 3 + ac) of pa.
    const index ar = ta == transpose::no ? m : k, ac = ta == transpose::no ? k : m;
    const index br = tb == transpose::no ? k : n, bc = tb == transpose::no ? n : k;
    host_matrix<T> a(ar, ac, ac), b(br, bc, bc), c0(m, n, n);
    rng.fill(a);
    rng.fill(b);
    rng.fill(c0);
    for (index i = 0; i < ar; ++i)
      for (index j = 0; j < ac; ++j) pa(2 + i, 3 + j) = a(i, j);
    for (index i = 0; i < br; ++i)
      for (index j = 0; j < bc; ++j) pb(1 + i, 4 + j) = b(i, j);
    for (index i = 0; i < m; ++i)
      for (index j = 0; j < n; ++j) pc(5 + i, 6 + j) = c0(i, j);
    const T alpha = T(0.75), beta = T(-0.5);
    const auto want = reference_gemm(ta, tb, alpha, a, b, beta, c0);

    const matrix_view<const T> va = pa.cview().row_block(2, ar).col_block(3, ac);
    const matrix_view<const T> vb = pb.cview().col_block(4, bc).row_block(1, br);
    const matrix_view<T> vc = pc.view().row_block(5, m).col_block(6, n);
    CHECK(va.stride == 11);
    CHECK(vc.stride == 12);
    cpu::gemm(ta, tb, alpha, va, vb, beta, vc);

    host_matrix<T> got(m, n, n);
    for (index i = 0; i < m; ++i)
      for (index j = 0; j < n; ++j) got(i, j) = pc(5 + i, 6 + j);
    CHECK(relative_error(got, want) <= tol<T>);
    bool outside_untouched = true;
    for (index i = 0; i < pc.rows; ++i)
      for (index j = 0; j < pc.cols; ++j) {
        const bool inside = i >= 5 && i < 5 + m && j >= 6 && j < 6 + n;
        if (!inside) outside_untouched = outside_untouched && pc(i, j) == T(sentinel);
      }
    CHECK(outside_untouched);
  }
}

TEST_CASE_TEMPLATE("gemm with an empty inner dimension scales C by beta (C not read when beta = 0)", T, float,
                   double) {
  const host_matrix<T> a(3, 0, 0), b(0, 2, 2);
  host_matrix<T> c(3, 2, 3, T(sentinel));
  for (index i = 0; i < 3; ++i)
    for (index j = 0; j < 2; ++j) c(i, j) = std::numeric_limits<T>::quiet_NaN();
  cpu::gemm(transpose::no, transpose::no, T(1), a.cview(), b.cview(), T(0), c.view());
  for (index i = 0; i < 3; ++i)
    for (index j = 0; j < 2; ++j) CHECK(c(i, j) == T(0));
  for (index i = 0; i < 3; ++i)
    for (index j = 0; j < 2; ++j) c(i, j) = T(i - j);
  cpu::gemm(transpose::no, transpose::no, T(1), a.cview(), b.cview(), T(2), c.view());
  for (index i = 0; i < 3; ++i)
    for (index j = 0; j < 2; ++j) CHECK(c(i, j) == T(2 * (i - j)));
  CHECK(c.padding_is(T(sentinel)));
}

// ---- gemm_batched -----------------------------------------------------------------------------

TEST_CASE_TEMPLATE("gemm_batched with per-item and shared (stride 0) operands", T, float, double) {
  random_source rng(13);
  const index m = 3, n = 4, k = 5, count = 3;
  struct strides {
    bool share_a, share_b;
  };
  for (const auto& [ta, tb] : all_transposes) {
    for (const strides s : {strides{false, false}, strides{true, false}, strides{false, true}}) {
      CAPTURE(static_cast<int>(ta));
      CAPTURE(static_cast<int>(tb));
      CAPTURE(s.share_a);
      CAPTURE(s.share_b);
      // Item i of X lives at X.data + i * stride_x; items are padded matrices with gaps between.
      std::vector<host_matrix<T>> as, bs, cs;
      for (index i = 0; i < count; ++i) {
        as.push_back(operand<T>(rng, ta, m, k, 2));
        bs.push_back(operand<T>(rng, tb, k, n, 1));
        cs.push_back(rng.filled<T>(m, n, n + 2));
      }
      if (s.share_a) as.assign(static_cast<std::size_t>(count), as[0]);
      if (s.share_b) bs.assign(static_cast<std::size_t>(count), bs[0]);
      const index item_a = static_cast<index>(as[0].data.size()) + 3;  // 3 NaN elements between items
      const index item_b = static_cast<index>(bs[0].data.size()) + 1;
      const index item_c = static_cast<index>(cs[0].data.size()) + 2;
      const index stride_a = s.share_a ? 0 : item_a, stride_b = s.share_b ? 0 : item_b;
      std::vector<T> pa(static_cast<std::size_t>(count * item_a), std::numeric_limits<T>::quiet_NaN());
      std::vector<T> pb(static_cast<std::size_t>(count * item_b), std::numeric_limits<T>::quiet_NaN());
      std::vector<T> pc(static_cast<std::size_t>(count * item_c), T(sentinel));
      for (index i = 0; i < count; ++i) {
        std::copy(as[i].data.begin(), as[i].data.end(), pa.begin() + i * stride_a);
        std::copy(bs[i].data.begin(), bs[i].data.end(), pb.begin() + i * stride_b);
        std::copy(cs[i].data.begin(), cs[i].data.end(), pc.begin() + i * item_c);
      }
      // The padding of each C item is a sentinel too.
      for (index i = 0; i < count; ++i)
        for (index r = 0; r < m; ++r)
          for (index c = n; c < n + 2; ++c) pc[static_cast<std::size_t>(i * item_c + r * (n + 2) + c)] = T(sentinel);

      const T alpha = T(1.5), beta = T(-0.25);
      cpu::gemm_batched(ta, tb, alpha, matrix_view<const T>(pa.data(), as[0].rows, as[0].cols, as[0].stride),
                        stride_a, matrix_view<const T>(pb.data(), bs[0].rows, bs[0].cols, bs[0].stride), stride_b,
                        beta, matrix_view<T>(pc.data(), m, n, n + 2), item_c, count);
      for (index i = 0; i < count; ++i) {
        CAPTURE(i);
        const auto want = reference_gemm(ta, tb, alpha, as[i], bs[i], beta, cs[i]);
        host_matrix<T> got(m, n, n + 2);
        std::copy(pc.begin() + i * item_c, pc.begin() + i * item_c + (m * (n + 2)), got.data.begin());
        CHECK(relative_error(got, want) <= tol<T>);
        CHECK(got.padding_is(T(sentinel)));
        for (index g = 0; g < 2; ++g) CHECK(pc[static_cast<std::size_t>(i * item_c + m * (n + 2) + g)] == T(sentinel));
      }
    }
  }
}

TEST_CASE_TEMPLATE("gemm_batched with beta = 0 ignores NaN in every C item; count = 0 does nothing", T, float,
                   double) {
  random_source rng(14);
  const auto a = rng.filled<T>(2, 3, 3);
  const auto b = rng.filled<T>(3, 2, 2);
  std::vector<T> pc(8, std::numeric_limits<T>::quiet_NaN());
  cpu::gemm_batched(transpose::no, transpose::no, T(1), a.cview(), 0, b.cview(), 0, T(0),
                    matrix_view<T>(pc.data(), 2, 2), 4, 2);
  const host_matrix<T> c0(2, 2);
  const auto want = reference_gemm(transpose::no, transpose::no, T(1), a, b, T(0), c0);
  for (index i = 0; i < 2; ++i) {
    host_matrix<T> got(2, 2);
    std::copy(pc.begin() + 4 * i, pc.begin() + 4 * i + 4, got.data.begin());
    CHECK(relative_error(got, want) <= tol<T>);
  }
  std::vector<T> untouched(4, T(sentinel));
  cpu::gemm_batched(transpose::no, transpose::no, T(1), a.cview(), 0, b.cview(), 0, T(0),
                    matrix_view<T>(untouched.data(), 2, 2), 4, 0);
  CHECK(untouched == std::vector<T>(4, T(sentinel)));
}

// ---- level-1 operations -----------------------------------------------------------------------

TEST_CASE_TEMPLATE("axpy, scal, copy, fill on vectors", T, float, double) {
  random_source rng(21);
  const index n = 13;
  const auto x = rng.values<T>(n);
  const auto y0 = rng.values<T>(n);

  auto y = y0;
  cpu::axpy(T(-0.75), vector_view<const T>(x.data(), n), vector_view<T>(y.data(), n));
  std::vector<real> want(static_cast<std::size_t>(n));
  for (index i = 0; i < n; ++i) want[i] = real(y0[i]) + real(-0.75) * real(x[i]);
  CHECK(relative_error(y, want) <= tol<T>);

  y = y0;
  cpu::scal(T(3.5), vector_view<T>(y.data(), n));
  for (index i = 0; i < n; ++i) want[i] = real(3.5) * real(y0[i]);
  CHECK(relative_error(y, want) <= tol<T>);

  std::vector<T> z(static_cast<std::size_t>(n + 1), T(sentinel));
  cpu::copy(vector_view<const T>(x.data(), n), vector_view<T>(z.data(), n));
  for (index i = 0; i < n; ++i) CHECK(z[i] == x[i]);
  CHECK(z[n] == T(sentinel));

  cpu::fill(T(-4), vector_view<T>(z.data(), n));
  for (index i = 0; i < n; ++i) CHECK(z[i] == T(-4));
  CHECK(z[n] == T(sentinel));

  // Segments: only the segment changes.
  std::vector<T> w(10, T(1));
  const vector_view<T> whole(w.data(), 10);
  cpu::scal(T(2), whole.segment(3, 4));
  cpu::axpy(T(1), vector_view<const T>(x.data(), 2), whole.segment(8, 2));
  for (index i = 0; i < 10; ++i) {
    const real expected = i >= 3 && i < 7 ? 2 : i >= 8 ? 1 + real(x[i - 8]) : 1;
    CHECK(relative_error(w[i], expected) <= tol<T>);
  }
  // Empty vectors are fine.
  cpu::axpy(T(1), vector_view<const T>(), vector_view<T>());
  cpu::scal(T(1), vector_view<T>());
  cpu::copy(vector_view<const T>(), vector_view<T>());
  cpu::fill(T(1), vector_view<T>());
}

TEST_CASE_TEMPLATE("axpy, scal, copy, fill on strided matrices leave the padding alone", T, float, double) {
  random_source rng(22);
  const index r = 4, c = 3;
  const auto x = rng.filled<T>(r, c, c + 2);  // NaN padding
  auto y0 = rng.filled<T>(r, c, c + 1);
  for (index i = 0; i < r; ++i) y0(i, c) = T(sentinel);

  auto y = y0;
  cpu::axpy(T(2.5), x.cview(), y.view());
  ref_matrix want(r, c);
  for (index i = 0; i < r; ++i)
    for (index j = 0; j < c; ++j) want(i, j) = real(y0(i, j)) + real(2.5) * real(x(i, j));
  CHECK(relative_error(y, want) <= tol<T>);
  CHECK(y.padding_is(T(sentinel)));

  y = y0;
  cpu::scal(T(-0.5), y.view());
  for (index i = 0; i < r; ++i)
    for (index j = 0; j < c; ++j) want(i, j) = real(-0.5) * real(y0(i, j));
  CHECK(relative_error(y, want) <= tol<T>);
  CHECK(y.padding_is(T(sentinel)));

  y = y0;
  cpu::copy(x.cview(), y.view());
  for (index i = 0; i < r; ++i)
    for (index j = 0; j < c; ++j) CHECK(y(i, j) == x(i, j));
  CHECK(y.padding_is(T(sentinel)));

  y = y0;
  cpu::fill(T(6), y.view().col_block(1, 2));
  for (index i = 0; i < r; ++i) {
    CHECK(y(i, 0) == y0(i, 0));
    CHECK(y(i, 1) == T(6));
    CHECK(y(i, 2) == T(6));
  }
  CHECK(y.padding_is(T(sentinel)));

  y = y0;
  cpu::fill(T(0), y.view().row_block(1, 2));
  for (index j = 0; j < c; ++j) {
    CHECK(y(0, j) == y0(0, j));
    CHECK(y(1, j) == T(0));
    CHECK(y(2, j) == T(0));
    CHECK(y(3, j) == y0(3, j));
  }
  CHECK(y.padding_is(T(sentinel)));
}

TEST_CASE_TEMPLATE("dot and sum", T, float, double) {
  random_source rng(23);
  for (index n : {0, 1, 7, 100}) {
    CAPTURE(n);
    // Positive entries keep both well conditioned, so the relative error is the rounding error.
    const auto x = rng.values<T>(n, 0.5, 1.5);
    const auto y = rng.values<T>(n, 0.5, 1.5);
    real d = 0, s = 0;
    for (index i = 0; i < n; ++i) {
      d += real(x[i]) * real(y[i]);
      s += real(x[i]);
    }
    const vector_view<const T> vx(x.data(), n), vy(y.data(), n);
    const T got_dot = cpu::dot(vx, vy);
    const T got_sum = cpu::sum(vx);
    CHECK(relative_error(got_dot, d) <= tol<T>);
    CHECK(relative_error(got_sum, s) <= tol<T>);
    // Mutable views are accepted too. (Not bit-equal to got_sum: the copy may be aligned
    // differently, and Eigen's vectorised reduction sums in an alignment-dependent order.)
    auto xm = x;
    CHECK(relative_error(cpu::sum(vector_view<T>(xm.data(), n)), s) <= tol<T>);
  }
  // Mixed signs, exact in binary: 1*4 + (-2)*0.5 + 3*(-1) = 0.
  const std::vector<T> a{T(1), T(-2), T(3)}, b{T(4), T(0.5), T(-1)};
  CHECK(cpu::dot(vector_view<const T>(a.data(), 3), vector_view<const T>(b.data(), 3)) == T(0));
  CHECK(cpu::sum(vector_view<const T>(a.data(), 3)) == T(2));
}

// ---- row and column reductions ----------------------------------------------------------------

TEST_CASE_TEMPLATE("add_row_vector adds v to every row", T, float, double) {
  random_source rng(31);
  const index r = 5, c = 4;
  const auto v = rng.values<T>(c);
  auto m0 = rng.filled<T>(r, c, c + 3);
  for (index i = 0; i < r; ++i)
    for (index j = c; j < c + 3; ++j) m0(i, j) = T(sentinel);
  auto m = m0;
  cpu::add_row_vector(vector_view<const T>(v.data(), c), m.view());
  ref_matrix want(r, c);
  for (index i = 0; i < r; ++i)
    for (index j = 0; j < c; ++j) want(i, j) = real(m0(i, j)) + real(v[j]);
  CHECK(relative_error(m, want) <= tol<T>);
  CHECK(m.padding_is(T(sentinel)));
}

TEST_CASE_TEMPLATE("add_row_vectors adds vectors.row(j) to every row of block j", T, float, double) {
  random_source rng(32);
  const index c = 3;
  for (index blocks : {1, 3}) {
    CAPTURE(blocks);
    const index block_rows = 4, r = blocks * block_rows;
    const auto vectors = rng.filled<T>(blocks, c, c + 1);  // NaN padding
    auto m0 = rng.filled<T>(r, c, c + 2);
    for (index i = 0; i < r; ++i)
      for (index j = c; j < c + 2; ++j) m0(i, j) = T(sentinel);
    auto m = m0;
    cpu::add_row_vectors(vectors.cview(), m.view());
    ref_matrix want(r, c);
    for (index i = 0; i < r; ++i)
      for (index j = 0; j < c; ++j) want(i, j) = real(m0(i, j)) + real(vectors(i / block_rows, j));
    CHECK(relative_error(m, want) <= tol<T>);
    CHECK(m.padding_is(T(sentinel)));
  }
}

TEST_CASE_TEMPLATE("column_sums: y = alpha * (sum of rows) + beta * y", T, float, double) {
  random_source rng(33);
  const index r = 6, c = 5;
  const auto a = rng.filled<T>(r, c, c + 2);  // NaN padding
  struct coefficients {
    double alpha, beta;
  };
  for (const coefficients ab : {coefficients{1, 0}, coefficients{-0.5, 0}, coefficients{2, 1}, coefficients{0.5, -3}}) {
    CAPTURE(ab.alpha);
    CAPTURE(ab.beta);
    auto y = rng.values<T>(c);
    if (ab.beta == 0) y.assign(static_cast<std::size_t>(c), std::numeric_limits<T>::quiet_NaN());  // not read
    std::vector<real> want(static_cast<std::size_t>(c));
    for (index j = 0; j < c; ++j) {
      real s = 0;
      for (index i = 0; i < r; ++i) s += real(a(i, j));
      want[j] = real(T(ab.alpha)) * s + (ab.beta == 0 ? real(0) : real(T(ab.beta)) * real(y[j]));
    }
    cpu::column_sums(T(ab.alpha), a.cview(), T(ab.beta), vector_view<T>(y.data(), c));
    CHECK(relative_error(y, want) <= tol<T>);
  }
  // No rows: y = beta * y (and 0 for beta == 0 even when y held NaN).
  std::vector<T> y(static_cast<std::size_t>(c), std::numeric_limits<T>::quiet_NaN());
  cpu::column_sums(T(1), a.cview().row_block(0, 0), T(0), vector_view<T>(y.data(), c));
  CHECK(y == std::vector<T>(static_cast<std::size_t>(c), T(0)));
}

TEST_CASE_TEMPLATE("column_sums_batched adds alpha * (sum of block j's rows) into out.row(j)", T, float, double) {
  random_source rng(34);
  const index blocks = 3, block_rows = 4, c = 3;
  const auto a = rng.filled<T>(blocks * block_rows, c, c + 1);  // NaN padding
  auto out0 = rng.filled<T>(blocks, c, c + 2);                    // non-zero: the kernel adds
  for (index i = 0; i < blocks; ++i)
    for (index j = c; j < c + 2; ++j) out0(i, j) = T(sentinel);
  auto out = out0;
  cpu::column_sums_batched(T(-1.5), a.cview(), block_rows, out.view());
  ref_matrix want(blocks, c);
  for (index b = 0; b < blocks; ++b)
    for (index j = 0; j < c; ++j) {
      real s = 0;
      for (index i = 0; i < block_rows; ++i) s += real(a(b * block_rows + i, j));
      want(b, j) = real(out0(b, j)) + real(-1.5) * s;
    }
  CHECK(relative_error(out, want) <= tol<T>);
  CHECK(out.padding_is(T(sentinel)));
}

TEST_CASE_TEMPLATE("row_outer_products writes vec(x_b y_b^T) row-major into row b", T, float, double) {
  random_source rng(35);
  const index rows = 4, mx = 3, ny = 5;
  const auto x = rng.filled<T>(rows, mx, mx + 1);  // NaN padding
  const auto y = rng.filled<T>(rows, ny, ny + 2);
  host_matrix<T> out(rows, mx * ny, mx * ny + 1, T(sentinel));
  for (index i = 0; i < rows; ++i)
    for (index j = 0; j < mx * ny; ++j) out(i, j) = std::numeric_limits<T>::quiet_NaN();  // overwritten
  cpu::row_outer_products(x.cview(), y.cview(), out.view());
  ref_matrix want(rows, mx * ny);
  for (index b = 0; b < rows; ++b)
    for (index o = 0; o < mx; ++o)
      for (index i = 0; i < ny; ++i) want(b, o * ny + i) = real(x(b, o)) * real(y(b, i));
  CHECK(relative_error(out, want) <= tol<T>);
  CHECK(out.padding_is(T(sentinel)));
}

// ---- channels: images R × (C·P), rows in blocks of block_rows ------------------------------------

namespace {
/// Row r of an operand stored with `rows` rows (its own row) or block_rows rows (shared: r mod block_rows).
template <class T>
const T* operand_row(const host_matrix<T>& m, index r, index rows, index block_rows) {
  return &m(m.rows == rows ? r : r % block_rows, 0);
}
/// Coefficient (j, c): row 0 for a 1-row matrix, row j otherwise; `absent` without a matrix.
template <class T>
real coefficient_at(const host_matrix<T>* m, index j, index c, real absent) {
  return m == nullptr ? absent : real((*m)(m->rows == 1 ? 0 : j, c));
}
template <class T>
matrix_view<const T> view_or_empty(const host_matrix<T>* m) {
  return m == nullptr ? matrix_view<const T>{} : m->cview();
}
} // namespace

TEST_CASE_TEMPLATE("channel_sums: per block and channel, y absent, shared or per row; alpha and beta", T, float,
                   double) {
  random_source rng(36);
  const index C = 3, P = 5;
  // (blocks, block_rows): three direction blocks, one block of all rows, one block per row.
  for (const auto& [blocks, block_rows] : {std::pair<index, index>{3, 4}, {1, 6}, {5, 1}}) {
    const index R = blocks * block_rows;
    const auto x = rng.filled<T>(R, C * P, C * P + 2);  // NaN padding must not leak
    const auto shared = rng.filled<T>(block_rows, C * P, C * P + 1);
    const auto per_row = rng.filled<T>(R, C * P, C * P + 3);
    for (const host_matrix<T>* y : {static_cast<const host_matrix<T>*>(nullptr), &shared, &per_row}) {
      for (const auto& [alpha, beta] : {std::pair<double, double>{1, 0}, {-0.5, 0}, {2, 1}, {0.5, -3}}) {
        CAPTURE(blocks);
        CAPTURE(block_rows);
        CAPTURE(alpha);
        CAPTURE(beta);
        host_matrix<T> out(blocks, C, C + 2, T(sentinel));
        for (index j = 0; j < blocks; ++j)
          for (index c = 0; c < C; ++c)
            out(j, c) = beta == 0 ? std::numeric_limits<T>::quiet_NaN() : rng.uniform<T>(-1, 1);  // NaN: not read
        ref_matrix want(blocks, C);
        for (index j = 0; j < blocks; ++j)
          for (index c = 0; c < C; ++c) {
            real s = 0;
            for (index i = 0; i < block_rows; ++i) {
              const index r = j * block_rows + i;
              for (index p = 0; p < P; ++p) {
                const real factor = y == nullptr ? real(1) : real(operand_row(*y, r, R, block_rows)[c * P + p]);
                s += real(x(r, c * P + p)) * factor;
              }
            }
            want(j, c) = real(T(alpha)) * s + (beta == 0 ? real(0) : real(T(beta)) * real(out(j, c)));
          }
        cpu::channel_sums(T(alpha), x.cview(), view_or_empty(y), P, block_rows, T(beta), out.view());
        CHECK(relative_error(out, want) <= tol<T>);
        CHECK(out.padding_is(T(sentinel)));
      }
    }
  }
}

TEST_CASE_TEMPLATE("channel_combine: per-block or broadcast coefficients, shared or per-row operands, absent terms",
                   T, float, double) {
  random_source rng(37);
  const index blocks = 3, block_rows = 4, R = blocks * block_rows, C = 3, P = 5;
  const auto x_rows = rng.filled<T>(R, C * P, C * P + 2);
  const auto x_shared = rng.filled<T>(block_rows, C * P, C * P + 1);
  const auto y_rows = rng.filled<T>(R, C * P, C * P + 3);
  const auto y_shared = rng.filled<T>(block_rows, C * P, C * P + 2);
  const auto per_block = rng.filled<T>(blocks, C, C + 2);  // coefficients, strided, NaN padding
  const auto per_block2 = rng.filled<T>(blocks, C, C + 1);
  const auto broadcast = rng.filled<T>(1, C, C + 1);
  const auto broadcast2 = rng.filled<T>(1, C, C + 3);
  struct terms {
    const host_matrix<T>* a;
    const host_matrix<T>* x;
    const host_matrix<T>* b;
    const host_matrix<T>* y;
    const host_matrix<T>* c;
  };
  const terms cases[] = {
      {&per_block, &x_rows, &broadcast, &y_shared, &per_block2},  // the tangent's shape
      {&broadcast, &x_shared, &per_block, &y_rows, &broadcast2},
      {&per_block, &x_shared, &per_block2, &y_shared, nullptr},    // both shared: every block its own coefficients
      {nullptr, &x_rows, nullptr, &y_rows, &per_block},            // a = b = 1
      {&broadcast, &x_rows, nullptr, nullptr, nullptr},            // one term
      {nullptr, nullptr, &per_block, &y_shared, &broadcast},       // no x term
      {nullptr, nullptr, nullptr, nullptr, &per_block},            // constants only
  };
  for (std::size_t t = 0; t < std::size(cases); ++t)
    for (const auto& [alpha, beta] : {std::pair<double, double>{1, 0}, {-2, 0}, {1, 1}, {0.5, -0.75}}) {
      CAPTURE(t);
      CAPTURE(alpha);
      CAPTURE(beta);
      const terms& k = cases[t];
      host_matrix<T> out(R, C * P, C * P + 2, T(sentinel));
      for (index r = 0; r < R; ++r)
        for (index i = 0; i < C * P; ++i)
          out(r, i) = beta == 0 ? std::numeric_limits<T>::quiet_NaN() : rng.uniform<T>(-1, 1);  // NaN: not read
      ref_matrix want(R, C * P);
      for (index r = 0; r < R; ++r)
        for (index c = 0; c < C; ++c)
          for (index p = 0; p < P; ++p) {
            const index j = r / block_rows, at = c * P + p;
            real v = coefficient_at(k.c, j, c, 0);
            if (k.x != nullptr) v += coefficient_at(k.a, j, c, 1) * real(operand_row(*k.x, r, R, block_rows)[at]);
            if (k.y != nullptr) v += coefficient_at(k.b, j, c, 1) * real(operand_row(*k.y, r, R, block_rows)[at]);
            want(r, at) = real(T(alpha)) * v + (beta == 0 ? real(0) : real(T(beta)) * real(out(r, at)));
          }
      cpu::channel_combine(T(alpha), view_or_empty(k.a), view_or_empty(k.x), view_or_empty(k.b), view_or_empty(k.y),
                           view_or_empty(k.c), P, block_rows, T(beta), out.view());
      CHECK(relative_error(out, want) <= tol<T>);
      CHECK(out.padding_is(T(sentinel)));
    }
}

TEST_CASE_TEMPLATE("channel_combine in place (out is x or y) and with one pixel per channel (coefficient algebra)", T,
                   float, double) {
  random_source rng(38);
  const index blocks = 2, block_rows = 3, R = blocks * block_rows, C = 4, P = 2;
  const auto a = rng.filled<T>(blocks, C, C + 1);
  const auto b = rng.filled<T>(1, C, C + 2);
  const auto y = rng.filled<T>(block_rows, C * P, C * P + 1);
  for (const bool out_is_x : {true, false}) {
    CAPTURE(out_is_x);
    auto buffer = rng.filled<T>(R, C * P, C * P + 2);
    for (index r = 0; r < R; ++r)
      for (index i = C * P; i < C * P + 2; ++i) buffer(r, i) = T(sentinel);
    const auto before = buffer;
    ref_matrix want(R, C * P);
    for (index r = 0; r < R; ++r)
      for (index i = 0; i < C * P; ++i) {
        const index j = r / block_rows, c = i / P;
        const real own = before(r, i), other = y(r % block_rows, i);
        // out = 1.5·(a·own + b·other) + 0.5·own when out is x,
        //       1.5·(a·other + b·own) + 0.5·own when out is y
        want(r, i) = out_is_x ? real(T(1.5)) * (real(a(j, c)) * own + real(b(0, c)) * other) + real(T(0.5)) * own
                              : real(T(1.5)) * (real(a(j, c)) * other + real(b(0, c)) * own) + real(T(0.5)) * own;
      }
    if (out_is_x)
      cpu::channel_combine(T(1.5), a.cview(), buffer.cview(), b.cview(), y.cview(), {}, P, block_rows, T(0.5),
                           buffer.view());
    else
      cpu::channel_combine(T(1.5), a.cview(), y.cview(), b.cview(), buffer.cview(), {}, P, block_rows, T(0.5),
                           buffer.view());
    CHECK(relative_error(buffer, want) <= tol<T>);
    CHECK(buffer.padding_is(T(sentinel)));
  }
  // pixels = 1, block_rows = 1: elementwise a ⊙ x + b ⊙ y + c on k × C arrays, 1-row ones broadcast.
  const index k = 3;
  const auto u = rng.filled<T>(k, C, C + 1), v = rng.filled<T>(1, C, C + 2), w = rng.filled<T>(k, C, C + 3);
  host_matrix<T> out(k, C, C + 1, T(sentinel));
  cpu::channel_combine(T(-1), v.cview(), u.cview(), u.cview(), w.cview(), v.cview(), 1, 1, T(0), out.view());
  ref_matrix want(k, C);
  for (index j = 0; j < k; ++j)
    for (index c = 0; c < C; ++c)
      want(j, c) = -(real(v(0, c)) * real(u(j, c)) + real(u(j, c)) * real(w(j, c)) + real(v(0, c)));
  CHECK(relative_error(out, want) <= tol<T>);
  CHECK(out.padding_is(T(sentinel)));
}

TEST_CASE_TEMPLATE("inverse_sqrt: 1 / sqrt(x + shift), also in place", T, float, double) {
  random_source rng(39);
  const auto x = rng.filled<T>(3, 5, 7, 0, 4);  // NaN padding
  for (const double shift : {1e-5, 0.5}) {
    CAPTURE(shift);
    host_matrix<T> out(3, 5, 6, T(sentinel));
    cpu::inverse_sqrt(T(shift), x.cview(), out.view());
    ref_matrix want(3, 5);
    for (index r = 0; r < 3; ++r)
      for (index c = 0; c < 5; ++c) want(r, c) = 1 / std::sqrt(real(x(r, c)) + real(T(shift)));
    CHECK(relative_error(out, want) <= tol<T>);
    CHECK(out.padding_is(T(sentinel)));
    auto in_place = x;
    cpu::inverse_sqrt(T(shift), in_place.cview(), in_place.view());
    CHECK(relative_error(in_place, want) <= tol<T>);
  }
}

TEST_CASE_TEMPLATE("all_finite detects NaN, +Inf and -Inf", T, float, double) {
  random_source rng(36);
  auto x = rng.values<T>(9, -1e30, 1e30);
  const vector_view<const T> v(x.data(), 9);
  CHECK(cpu::all_finite(v));
  CHECK(cpu::all_finite(vector_view<const T>()));
  x[8] = std::numeric_limits<T>::max();
  CHECK(cpu::all_finite(v));
  x[8] = std::numeric_limits<T>::denorm_min();
  CHECK(cpu::all_finite(v));
  for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                -std::numeric_limits<T>::infinity()}) {
    for (std::size_t at : {std::size_t{0}, std::size_t{4}, std::size_t{8}}) {
      CAPTURE(bad);
      CAPTURE(at);
      auto y = x;
      y[at] = bad;
      CHECK_FALSE(cpu::all_finite(vector_view<const T>(y.data(), 9)));
      CHECK_FALSE(cpu::all_finite(vector_view<T>(y.data(), 9)));
    }
  }
  // Only the view's elements count.
  x.push_back(std::numeric_limits<T>::quiet_NaN());
  CHECK(cpu::all_finite(vector_view<const T>(x.data(), 9)));
}

TEST_CASE_TEMPLATE("hypergradient_update: one step of Eq. 35-36 per row, with and without Hessian and gradient terms", T,
                   float, double) {
  random_source rng(61);
  const index n = 4, P = 5, batch = 3;
  const T p = T(0.9), lambda = T(0.01), eta = T(0.1);
  auto dv0 = rng.values<T>(static_cast<std::size_t>(n * P), -1, 1);
  auto grad0 = rng.values<T>(static_cast<std::size_t>(n * P), -1, 1);
  const auto hv = rng.values<T>(static_cast<std::size_t>(n * P), -1, 1);
  const auto sources = rng.values<T>(static_cast<std::size_t>(batch * P), -1, 1);
  const std::vector<index> rows{2, -1, 0, -1};  // rows 0 and 2 are in the batch, at positions 2 and 0
  const std::vector<T> weights{T(16.0 / 3), T(0), T(32.0 / 3), T(0)};  // N/|B| = 16/3, row 2 twice
  for (bool with_hessian : {true, false}) {
    for (bool with_sources : {true, false}) {
      CAPTURE(with_hessian);
      CAPTURE(with_sources);
      auto dv = dv0, grad = grad0;
      const bool finite = cpu::hypergradient_update(p, lambda, eta,
                                with_hessian ? matrix_view<const T>(hv.data(), n, P) : matrix_view<const T>{},
                                with_sources ? rows.data() : nullptr, with_sources ? weights.data() : nullptr,
                                matrix_view<const T>(sources.data(), batch, P), matrix_view<T>(dv.data(), n, P),
                                matrix_view<T>(grad.data(), n, P));
      ref_matrix want_dv(n, P), want_grad(n, P);
      for (index r = 0; r < n; ++r)
        for (index k = 0; k < P; ++k) {
          const auto at = static_cast<std::size_t>(r * P + k);
          real d = real(p) * real(dv0[at]) + real(lambda) * real(grad0[at]);
          if (with_hessian) d += real(hv[at]);
          if (with_sources && rows[static_cast<std::size_t>(r)] >= 0)
            d += real(weights[static_cast<std::size_t>(r)]) *
                 real(sources[static_cast<std::size_t>(rows[static_cast<std::size_t>(r)] * P + k)]);
          want_dv(r, k) = d;
          want_grad(r, k) = real(grad0[at]) - real(eta) * d;
        }
      host_matrix<T> got_dv(n, P), got_grad(n, P);
      got_dv.data = dv;
      got_grad.data = grad;
      CHECK(relative_error(got_dv, want_dv) <= tol<T>);
      CHECK(relative_error(got_grad, want_grad) <= tol<T>);
      CHECK(finite);
    }
  }
  // A non-finite value anywhere in what is written is reported (here an Inf gradient source).
  for (T bad : {std::numeric_limits<T>::infinity(), std::numeric_limits<T>::quiet_NaN()}) {
    auto dv = dv0, grad = grad0, src = sources;
    src[static_cast<std::size_t>(2 * P + 3)] = bad;  // row 0 of the states reads source row 2
    CHECK_FALSE(cpu::hypergradient_update(p, lambda, eta, matrix_view<const T>{}, rows.data(), weights.data(),
                                          matrix_view<const T>(src.data(), batch, P), matrix_view<T>(dv.data(), n, P),
                                          matrix_view<T>(grad.data(), n, P)));
  }
}

TEST_CASE_TEMPLATE("hypergradient_transfer: a 2 x 2 transfer per listed row, a gradient term, zero transfers write only", T,
                   float, double) {
  random_source rng(67);
  const index n = 5, P = 4100, batch = 3;  // P spans two of the kernel's 2048-element blocks
  auto dv0 = rng.values<T>(static_cast<std::size_t>(n * P), -1, 1);
  auto grad0 = rng.values<T>(static_cast<std::size_t>(n * P), -1, 1);
  const auto sources = rng.values<T>(static_cast<std::size_t>(batch * P), -1, 1);
  const T eta = T(0.3);
  // Listed rows 3, 0, 4: a transfer with a source, a transfer without, a zero transfer (never
  // touched: its old contents, here NaN, must not be read) with a source. Rows 1 and 2 unlisted.
  const std::vector<index> state_rows{3, 0, 4};
  const std::vector<T> transfers{T(0.9), T(0.01), T(-0.27), T(0.997), T(0.5), T(-0.25), T(0.125), T(2), 0, 0, 0, 0};
  const std::vector<index> source_rows{2, -1, 0};
  const std::vector<T> weights{T(7), T(99), T(3.5)};
  for (index k = 0; k < P; ++k) dv0[static_cast<std::size_t>(4 * P + k)] = std::numeric_limits<T>::quiet_NaN();
  auto dv = dv0, grad = grad0;
  CHECK(cpu::hypergradient_transfer(3, state_rows.data(), transfers.data(), source_rows.data(), weights.data(), eta,
                                    matrix_view<const T>(sources.data(), batch, P), matrix_view<T>(dv.data(), n, P),
                                    matrix_view<T>(grad.data(), n, P)));
  ref_matrix want_dv(n, P), want_grad(n, P);
  for (index r = 0; r < n; ++r)
    for (index k = 0; k < P; ++k) {
      const auto at = static_cast<std::size_t>(r * P + k);
      want_dv(r, k) = real(dv0[at]);
      want_grad(r, k) = real(grad0[at]);
    }
  for (std::size_t j = 0; j < state_rows.size(); ++j) {
    const index r = state_rows[j];
    const bool fresh = j == 2;
    for (index k = 0; k < P; ++k) {
      const auto at = static_cast<std::size_t>(r * P + k);
      const real d = fresh ? 0 : real(dv0[at]), g = real(grad0[at]);
      const auto* m = transfers.data() + 4 * j;
      real nd = fresh ? 0 : real(m[0]) * d + real(m[1]) * g;
      real ng = fresh ? 0 : real(m[2]) * d + real(m[3]) * g;
      if (source_rows[j] >= 0) {
        const real s = real(weights[j]) * real(sources[static_cast<std::size_t>(source_rows[j] * P + k)]);
        nd += s;
        ng -= real(eta) * s;
      }
      want_dv(r, k) = nd;
      want_grad(r, k) = ng;
    }
  }
  host_matrix<T> got_dv(n, P), got_grad(n, P);
  got_dv.data = dv;
  got_grad.data = grad;
  CHECK(relative_error(got_dv, want_dv) <= tol<T>);
  CHECK(relative_error(got_grad, want_grad) <= tol<T>);
  // Unlisted rows are untouched, bit for bit.
  for (const index r : {index{1}, index{2}})
    for (index k = 0; k < P; ++k) {
      const auto at = static_cast<std::size_t>(r * P + k);
      CHECK_EQ(dv[at], dv0[at]);
      CHECK_EQ(grad[at], grad0[at]);
    }
  // A NaN read through a non-zero transfer is reported.
  auto bad_dv = dv0, bad_grad = grad0;
  const std::vector<index> nan_row{4};
  CHECK_FALSE(cpu::hypergradient_transfer(1, nan_row.data(), transfers.data(), source_rows.data(), weights.data(), eta,
                                          matrix_view<const T>(sources.data(), batch, P),
                                          matrix_view<T>(bad_dv.data(), n, P), matrix_view<T>(bad_grad.data(), n, P)));
}

} // namespace hydra::test
