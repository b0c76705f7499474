// hydra::cuda against hydra::cpu (docs/backend.md), in two parts.
//
// 1. Without a GPU (every machine): the concept and traits, the errors thrown before any CUDA call
//    (negative or overflowing sizes, wrong shapes), detail::cuda::check's messages, and the
//    per-element functions of backend/cuda/element.cuh run on the host against hydra::cpu. The
//    kernels are grid-stride loops around exactly these functions, so their index arithmetic
//    (im2col/col2im, window argmax, the pooling gathers, the lazy transfer) is checked here even
//    where no kernel can run.
// 2. With a GPU: every operation of hydra::cuda against hydra::cpu on identical inputs, for float
//    and double. Inputs travel to the device with their padding (NaN, which must not leak into a
//    result); outputs carry a sentinel in their padding that must survive. Without a device these
//    test cases print "[skipped] no CUDA device: <reason>" and return, so CTest reports the
//    executable as skipped (SKIP_REGULAR_EXPRESSION "\[skipped\]") after the host checks ran.
//    The file is also built as test_backend_cuda_emulated, with the kernel bodies and the runtime
//    emulated on the host (docs/backend.md, "Host emulation"): there part 2 runs everywhere.
//
// Tolerances: norm-wise relative error max|got − want| / max|want| over a view's elements, where
// `want` is hydra::cpu's result on the same inputs.
//  - device, double: 1e-12. The device sums in another order than Eigen (cuBLAS tiles, reduction
//    trees, one thread per column) and nvcc contracts a·b + c into one FMA, so the two backends
//    differ by rounding: at most a few hundred eps of double for the sums of ≤ 1000 terms here,
//    while any wrong index or formula is off by O(1).
//  - device, float: 1e-5 (≈ 80 eps of float), the same reasoning; CUDA's expf/tanhf and Eigen's
//    vectorised float exp/tanh also differ by a few ulp.
//  - exact (equal values, NaN equal to NaN), on the device and on the host, where the result is a
//    copy, a fill, a single product or sum, a routing, or a sum of additions in the same order as
//    hydra::cpu's (no product feeds a sum, so no FMA contraction can change it): copy, fill, scal,
//    add_row_vector(s), row_outer_products, im2col, col2im, swap_leading_axes, max pooling (forward,
//    tangent, backward), avg_pool_forward, all_finite, count_correct, integer-valued sums.
//  - host element functions otherwise (activations, the transfer, avg_pool_gather for a window
//    that is not a power of two), double: 1e-14. Same formulas as hydra::cpu, but Eigen evaluates
//    exp vectorised (≈ 1 ulp from the C library's), divides where the gather multiplies by 1/k²,
//    and a build with -march=native may contract a product into a sum on one side only.

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "backend/reference.hpp"
#include "hydra/backend/cpu.hpp"
#include "hydra/backend/cuda.cuh"
#include "hydra/core/error.hpp"
#include "hydra/core/tensor.hpp"
#include "support/messages.hpp"
#include "support/recurrence_reference.hpp"
#include "support/skip.hpp"

namespace hydra::test {
namespace {

namespace kernels = hydra::detail::cuda;

constexpr double sentinel = 777.25;  // exactly representable in float and double
constexpr double host_tol = 1e-14;   // host element functions vs hydra::cpu, double (see the top)

template <class T>
struct device_tolerance;
template <>
struct device_tolerance<double> {
  static constexpr double value = 1e-12;
};
template <>
struct device_tolerance<float> {
  static constexpr double value = 1e-5;
};
template <class T>
inline constexpr double device_tol = device_tolerance<T>::value;

/// Whether this process has a CUDA device; if not, says so in the form CTest counts as a skip.
/// Called once at the top of every test case that needs a device.
bool have_device() {
  if (cuda::device_count() > 0) return true;
  HYDRA_TEST_SKIP("no CUDA device: " << cuda::no_device_reason());
  return false;
}

// ---- comparing results ------------------------------------------------------------------------

template <class T>
bool same_value(T a, T b) {
  return a == b || (std::isnan(a) && std::isnan(b));
}
/// Equal values, NaN equal to NaN, element by element (padding included).
template <class T>
bool identical(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), same_value<T>);
}
template <class T>
bool identical(const host_matrix<T>& a, const host_matrix<T>& b) {
  return a.rows == b.rows && a.cols == b.cols && a.stride == b.stride && identical(a.data, b.data);
}
/// Same shape and stride, and the padding (columns [cols, stride)) holds the same values.
template <class T>
bool same_padding(const host_matrix<T>& a, const host_matrix<T>& b) {
  if (a.rows != b.rows || a.cols != b.cols || a.stride != b.stride) return false;
  for (index r = 0; r < a.rows; ++r)
    for (index c = a.cols; c < a.stride; ++c)
      if (!same_value(a(r, c), b(r, c))) return false;
  return true;
}
/// got's elements within `tolerance` of want's (norm-wise), and its padding untouched like want's.
template <class T>
void check_close(const host_matrix<T>& got, const host_matrix<T>& want, double tolerance) {
  CHECK(relative_error(got, to_ref(want)) <= tolerance);
  CHECK(same_padding(got, want));
}
/// The first n entries within `tolerance` of want's (norm-wise), the rest (a sentinel) identical.
template <class T>
void check_close(const std::vector<T>& got, const std::vector<T>& want, index n, double tolerance) {
  REQUIRE(got.size() == want.size());
  host_matrix<T> got_head(1, n, n), want_head(1, n, n);
  std::copy(got.begin(), got.begin() + n, got_head.data.begin());
  std::copy(want.begin(), want.begin() + n, want_head.data.begin());
  CHECK(relative_error(got_head, to_ref(want_head)) <= tolerance);
  CHECK(std::equal(got.begin() + n, got.end(), want.begin() + n, same_value<T>));
}

/// An output matrix: NaN in the elements (they must be overwritten), the sentinel in the padding.
template <class T>
host_matrix<T> output(index rows, index cols, index pad = 3) {
  host_matrix<T> m(rows, cols, cols + pad, T(sentinel));
  for (index i = 0; i < rows; ++i)
    for (index j = 0; j < cols; ++j) m(i, j) = std::numeric_limits<T>::quiet_NaN();
  return m;
}

// ---- device copies ----------------------------------------------------------------------------

/// A host_matrix's whole storage, padding included, in device memory with the same shape and
/// stride: the NaN padding of an input and the sentinel padding of an output travel with it.
template <class T>
class device_matrix {
public:
  explicit device_matrix(const host_matrix<T>& h)
      : rows_(h.rows), cols_(h.cols), stride_(h.stride), storage_(hydra::vector<T, cuda>::from_host(h.data)) {}
  [[nodiscard]] matrix_view<T> view() { return {storage_.data(), rows_, cols_, stride_}; }
  [[nodiscard]] matrix_view<const T> cview() const { return {storage_.data(), rows_, cols_, stride_}; }
  [[nodiscard]] host_matrix<T> to_host() const {
    host_matrix<T> h(rows_, cols_, stride_);
    h.data = storage_.to_host();
    return h;
  }

private:
  index rows_, cols_, stride_;
  hydra::vector<T, cuda> storage_;
};

/// Any host array (indices, labels, weights, a flat vector) in a cuda::buffer.
template <class U>
class device_array {
public:
  explicit device_array(const std::vector<U>& values) : buffer_(static_cast<index>(values.size())) {
    cuda::copy_from_host(values.data(), buffer_.size(), buffer_.data());
  }
  [[nodiscard]] U* data() { return buffer_.data(); }
  [[nodiscard]] const U* data() const { return buffer_.data(); }
  [[nodiscard]] index size() const { return buffer_.size(); }
  [[nodiscard]] vector_view<U> view() { return {buffer_.data(), buffer_.size()}; }
  [[nodiscard]] std::vector<U> to_host() const {
    std::vector<U> out(static_cast<std::size_t>(buffer_.size()));
    cuda::copy_to_host(buffer_.data(), buffer_.size(), out.data());
    return out;
  }

private:
  cuda::buffer<U> buffer_;
};

// ---- shared inputs ----------------------------------------------------------------------------

constexpr std::array<std::pair<transpose, transpose>, 4> all_transposes{{{transpose::no, transpose::no},
                                                                          {transpose::no, transpose::yes},
                                                                          {transpose::yes, transpose::no},
                                                                          {transpose::yes, transpose::yes}}};

/// A stored operand for op(X) of shape rows × cols: stored transposed when t == yes; NaN padding.
template <class T>
host_matrix<T> operand(random_source& rng, transpose t, index rows, index cols, index pad) {
  const index r = t == transpose::no ? rows : cols;
  const index c = t == transpose::no ? cols : rows;
  return rng.filled<T>(r, c, c + pad);
}

/// Convolution geometries: kernels 3 × 3, 5 × 5 and 2 × 3, strides 1 and 2, padding 0, 1 and 2 on
/// 3 channels, plus LeNet's conv1, padding wider than the kernel and a 1 × 1 kernel that skips.
std::vector<conv_geometry> conv_geometries() {
  constexpr std::pair<index, index> kernel_shapes[] = {{3, 3}, {5, 5}, {2, 3}};
  std::vector<conv_geometry> out;
  for (const auto& [kh, kw] : kernel_shapes)
    for (index stride : {1, 2})
      for (index padding : {0, 1, 2}) out.push_back({3, 7, 8, kh, kw, stride, padding});
  out.push_back({1, 28, 28, 5, 5, 1, 2});  // LeNet's conv1
  out.push_back({2, 6, 5, 3, 3, 3, 4});    // whole output rows read only padding
  out.push_back({1, 4, 4, 1, 1, 2, 0});    // every other input is skipped
  return out;
}

/// Pooling geometries: LeNet's 2 × 2 / 2, overlapping windows (stride < window) with a dropped
/// border, stride > window (inputs in no window), one window over the image, heavy overlap.
constexpr pool_geometry pool_geometries[] = {
    {2, 4, 4, 2, 2}, {3, 5, 7, 3, 2}, {1, 5, 5, 2, 3}, {2, 3, 3, 3, 1}, {2, 6, 6, 3, 1}, {1, 8, 8, 4, 4},
};

/// Offset within a row of x[c, h, w].
index pixel_at(const pool_geometry& g, index c, index h, index w) { return (c * g.height + h) * g.width + w; }

/// Pooling inputs with the cases the argmax rule is about, three samples (NaN padding): sample 0
/// random with a NaN at channel 0, (1, 1); sample 1 with a constant channel 0 (every window a tie);
/// sample 2 drawn from {-1, -0.5, 0, 0.5, 1} (ties between some cells of most windows).
template <class T>
host_matrix<T> pool_input(random_source& rng, const pool_geometry& g) {
  auto x = rng.filled<T>(3, g.input_size(), g.input_size() + 1);
  x(0, pixel_at(g, 0, 1, 1)) = std::numeric_limits<T>::quiet_NaN();
  for (index h = 0; h < g.height; ++h)
    for (index w = 0; w < g.width; ++w) x(1, pixel_at(g, 0, h, w)) = T(0.5);
  for (index i = 0; i < g.input_size(); ++i) x(2, i) = T(std::floor(rng.uniform<double>(-2, 3)) * 0.5);
  return x;
}

constexpr activation all_activations[] = {activation::identity, activation::relu, activation::tanh,
                                          activation::sigmoid, activation::relu6};

/// Pre-activations in [-3, 3] (NaN padding) with the saturating cases ±1000 and ±80, a 0 (the kink
/// of ReLU and ReLU6, where both backends take f' = 0), and ReLU6's other kink 6 and values past it.
template <class T>
host_matrix<T> pre_activations(random_source& rng, index rows, index cols) {
  auto x = rng.filled<T>(rows, cols, cols + 2, -3, 3);
  x(0, 0) = T(-1000);
  x(0, 1) = T(1000);
  x(0, 2) = T(0);
  x(1, 0) = T(-80);
  x(1, 1) = T(80);
  x(1, 2) = T(6);
  x(2, 0) = T(6.5);
  x(2, 1) = T(5.5);
  return x;
}

} // namespace

// =================================================================================================
// Part 1: no GPU needed
// =================================================================================================

static_assert(Backend<cuda>);
static_assert(!cuda::host_accessible);
static_assert(!host_accessible_v<cuda>);
static_assert(std::is_base_of_v<hydra::error, cuda_error>);
static_assert(!std::is_copy_constructible_v<cuda::buffer<float>>);
static_assert(std::is_nothrow_move_constructible_v<cuda::buffer<double>>);
static_assert(std::is_nothrow_move_assignable_v<cuda::buffer<double>>);

TEST_CASE("hydra::cuda: name, host access, and what it reports about devices") {
  CHECK(std::string(cuda::name) == "cuda");
  CHECK_FALSE(cuda::host_accessible);
  const int devices = cuda::device_count();
  CHECK(devices >= 0);
  // The reason is empty exactly when there is a device.
  CHECK(cuda::no_device_reason().empty() == (devices > 0));
  if (devices == 0) MESSAGE("no CUDA device here: " << cuda::no_device_reason());
  // devices(): one entry per usable device, as tools list them (hydra-attribute --list-devices).
  const auto listed = cuda::devices();
  REQUIRE(static_cast<int>(listed.size()) == devices);
  for (int k = 0; k < devices; ++k) {
    CHECK(listed[static_cast<std::size_t>(k)].id == "cuda:" + std::to_string(k));
    CHECK_FALSE(listed[static_cast<std::size_t>(k)].name.empty());
    CHECK(listed[static_cast<std::size_t>(k)].memory_bytes > 0);
  }
}

TEST_CASE_TEMPLATE("cuda::buffer and the containers reject bad sizes before any CUDA call", T, float, double) {
  CHECK_THROWS_AS(cuda::buffer<T>(-1), hydra::invalid_argument);
  CHECK_THROWS_AS(cuda::buffer<T>(-1000), hydra::invalid_argument);
  CHECK(contains(message_of<hydra::invalid_argument>([] { cuda::buffer<T> b(-3); }), "negative size -3"));
  // Byte counts that overflow size_t: the largest index, and the first element count past the limit.
  CHECK_THROWS_AS(cuda::buffer<T>(std::numeric_limits<index>::max()), hydra::allocation_error);
  const auto first_overflow = static_cast<index>(std::numeric_limits<std::size_t>::max() / sizeof(T) + 1);
  CHECK_THROWS_AS(cuda::buffer<T>{first_overflow}, hydra::allocation_error);  // braces: not a declaration

  // Empty buffers own nothing and never reach the runtime.
  const cuda::buffer<T> none;
  CHECK(none.data() == nullptr);
  CHECK(none.size() == 0);
  cuda::buffer<T> zero(0);
  CHECK(zero.data() == nullptr);
  CHECK(zero.size() == 0);
  cuda::buffer<T> moved(std::move(zero));
  CHECK(moved.data() == nullptr);
  CHECK(moved.size() == 0);

  using mat = hydra::matrix<T, cuda>;
  using vec = hydra::vector<T, cuda>;
  CHECK_THROWS_AS(mat(-1, 2), hydra::invalid_argument);
  CHECK_THROWS_AS(mat(2, -1), hydra::invalid_argument);
  const std::vector<T> five(5, T(1));
  CHECK_THROWS_AS(mat::from_host(five, 2, 3), hydra::shape_error);  // checked before allocating
  CHECK_THROWS_AS(mat::from_host(std::vector<T>{}, 1, 1), hydra::shape_error);
  CHECK_THROWS_AS(vec(-2), hydra::invalid_argument);
  // Zero-sized containers and n = 0 copies touch nothing (so they work without a device).
  const mat empty = mat::from_host(std::vector<T>{}, 0, 4);
  CHECK(empty.rows() == 0);
  CHECK(empty.cols() == 4);
  CHECK(empty.to_host().empty());
  CHECK(vec(0).to_host().empty());
  cuda::copy_from_host(static_cast<const T*>(nullptr), 0, static_cast<T*>(nullptr));
  cuda::copy_to_host(static_cast<const T*>(nullptr), 0, static_cast<T*>(nullptr));
}

TEST_CASE("without a device, a CUDA call fails with a cuda_error that names it") {
  if (cuda::device_count() > 0) return;  // the failure under test needs a machine without one
  // The first call that needs the runtime fails (which one is the backend's business): the message
  // is "hydra::cuda: <call> failed: <cudaError name> (<description>)".
  const std::string message = message_of<cuda_error>([] { cuda::buffer<double> b(16); });
  CAPTURE(message);
  CHECK(message.rfind("hydra::cuda: ", 0) == 0);
  CHECK(contains(message, " failed: cudaError"));
  CHECK_THROWS_AS(cuda::buffer<float>(4), hydra::error);
}

TEST_CASE("detail::cuda::check turns a failed status into a cuda_error naming the call and the status") {
  CHECK_NOTHROW(kernels::check(cudaSuccess, "cudaMalloc"));
  CHECK_NOTHROW(kernels::check(CUBLAS_STATUS_SUCCESS, "cublasSgemm"));

  CHECK_THROWS_AS(kernels::check(cudaErrorMemoryAllocation, "cudaMalloc"), cuda_error);
  CHECK_THROWS_AS(kernels::check(cudaErrorMemoryAllocation, "cudaMalloc"), hydra::error);
  const std::string runtime = message_of<cuda_error>([] { kernels::check(cudaErrorMemoryAllocation, "cudaMalloc"); });
  CAPTURE(runtime);
  CHECK(contains(runtime, "cudaMalloc"));
  CHECK(contains(runtime, "cudaErrorMemoryAllocation"));
  CHECK(contains(runtime, cudaGetErrorString(cudaErrorMemoryAllocation)));  // the runtime's description

  CHECK_THROWS_AS(kernels::check(CUBLAS_STATUS_INVALID_VALUE, "cublasSgemm"), cuda_error);
  const std::string blas = message_of<cuda_error>([] { kernels::check(CUBLAS_STATUS_INVALID_VALUE, "cublasSgemm"); });
  CAPTURE(blas);
  CHECK(contains(blas, "cublasSgemm"));
  CHECK(contains(blas, "CUBLAS_STATUS_INVALID_VALUE"));
  CHECK(contains(message_of<cuda_error>([] { kernels::check(CUBLAS_STATUS_NOT_SUPPORTED, "cublasDgemm"); }),
                 "CUBLAS_STATUS_NOT_SUPPORTED"));
}

// ---- element.cuh on the host ------------------------------------------------------------------

TEST_CASE("element.cuh: im2col_source and col2im_gather reproduce cpu::im2col and cpu::col2im exactly") {
  random_source rng(201);
  for (const conv_geometry& g : conv_geometries()) {
    CAPTURE(g.channels);
    CAPTURE(g.kernel_h);
    CAPTURE(g.kernel_w);
    CAPTURE(g.stride);
    CAPTURE(g.padding);
    const index batch = 3, columns = batch * g.out_pixels();
    const auto x = rng.filled<double>(batch, g.input_size(), g.input_size() + 1);  // NaN padding

    host_matrix<double> want(g.patch_size(), columns, columns + 2, sentinel);
    cpu::im2col(g, x.cview(), want.view());
    host_matrix<double> got(g.patch_size(), columns, columns + 2, sentinel);
    bool in_range = true;
    index zeros = 0;
    for (index row = 0; row < got.rows; ++row)
      for (index col = 0; col < got.cols; ++col) {  // im2col's kernel, element by element
        index b = -1;
        const index at = kernels::im2col_source(g, row, col, b);
        in_range = in_range && b >= 0 && b < batch && at >= -1 && at < g.input_size();
        got(row, col) = at < 0 ? 0.0 : x(b, at);
        zeros += at < 0;
      }
    CHECK(in_range);
    CHECK(identical(got, want));
    CHECK((zeros > 0) == (g.padding > 0));  // padding, and only padding, reads zeros

    // col2im: one gather per input element sums the same entries in cpu::col2im's order.
    const auto d = rng.filled<double>(g.patch_size(), columns, columns + 1);
    host_matrix<double> back_want(batch, g.input_size(), g.input_size() + 2, sentinel);
    auto back_got = back_want;
    cpu::col2im(g, d.cview(), back_want.view());
    for (index b = 0; b < batch; ++b)
      for (index at = 0; at < g.input_size(); ++at) back_got(b, at) = kernels::col2im_gather(g, d.cview(), b, at);
    CHECK(identical(back_got, back_want));
  }
}

TEST_CASE("element.cuh: window_argmax and the pooling gathers reproduce cpu's pooling") {
  random_source rng(202);
  for (const pool_geometry& g : pool_geometries) {
    CAPTURE(g.channels);
    CAPTURE(g.window);
    CAPTURE(g.stride);
    const index batch = 3, k = 2, image = g.height * g.width, pooled = g.out_pixels(), ow_n = g.out_width();
    const auto x = pool_input<double>(rng, g);
    const auto r_x = rng.filled<double>(k * batch, g.input_size(), g.input_size() + 2);
    const auto d_y = rng.filled<double>(k * batch, g.output_size(), g.output_size() + 1);

    // Forward and tangent (the kernels route r_x through window_argmax of x's row r % batch).
    host_matrix<double> y_want = output<double>(batch, g.output_size()), y_got = y_want;
    host_matrix<double> r_y_want = output<double>(k * batch, g.output_size()), r_y_got = r_y_want;
    cpu::max_pool_forward(g, x.cview(), y_want.view());
    cpu::max_pool_tangent(g, x.cview(), r_x.cview(), r_y_want.view());
    for (index r = 0; r < k * batch; ++r)
      for (index to = 0; to < g.output_size(); ++to) {
        const index c = to / pooled, pixel = to - c * pooled;
        const index from = kernels::window_argmax(g, x.cview().row(r % batch) + c * image, pixel / ow_n, pixel % ow_n);
        r_y_got(r, to) = r_x(r, c * image + from);
        if (r < batch) y_got(r, to) = x(r, c * image + from);
      }
    CHECK(identical(y_got, y_want));
    CHECK(identical(r_y_got, r_y_want));
    // The tie rule itself: window (0, 0) of sample 1's constant channel takes its top-left cell.
    CHECK(kernels::window_argmax(g, x.cview().row(1), 0, 0) == 0);
    // The NaN at (1, 1) of sample 0 wins every window that holds it.
    CHECK(std::isnan(y_got(0, 0)));

    // Backward: a gather of d_y over the windows whose argmax is each input.
    host_matrix<double> d_x_want = output<double>(k * batch, g.input_size()), d_x_got = d_x_want;
    cpu::max_pool_backward(g, x.cview(), d_y.cview(), d_x_want.view());
    for (index r = 0; r < k * batch; ++r)
      for (index at = 0; at < g.input_size(); ++at) {
        const index c = at / image;
        d_x_got(r, at) =
            kernels::max_pool_gather(g, x.cview().row(r % batch) + c * image, d_y.cview().row(r) + c * pooled, at - c * image);
      }
    CHECK(identical(d_x_got, d_x_want));

    // Average pooling: window_mean sums in cpu's order (exact); avg_pool_gather divides the sum by
    // k² where cpu adds d / k² per window (exact when k² is a power of two, else 1e-14).
    host_matrix<double> a_want = output<double>(k * batch, g.output_size()), a_got = a_want;
    cpu::avg_pool_forward(g, r_x.cview(), a_want.view());
    for (index r = 0; r < k * batch; ++r)
      for (index to = 0; to < g.output_size(); ++to) {
        const index c = to / pooled, pixel = to - c * pooled;
        a_got(r, to) = kernels::window_mean(g, r_x.cview().row(r) + c * image, pixel / ow_n, pixel % ow_n);
      }
    CHECK(identical(a_got, a_want));
    host_matrix<double> ad_want = output<double>(k * batch, g.input_size()), ad_got = ad_want;
    cpu::avg_pool_backward(g, d_y.cview(), ad_want.view());
    for (index r = 0; r < k * batch; ++r)
      for (index at = 0; at < g.input_size(); ++at) {
        const index c = at / image;
        ad_got(r, at) = kernels::avg_pool_gather(g, d_y.cview().row(r) + c * pooled, at - c * image);
      }
    const bool power_of_two = (g.window & (g.window - 1)) == 0;
    if (power_of_two) CHECK(identical(ad_got, ad_want));
    check_close(ad_got, ad_want, host_tol);
  }
}

TEST_CASE("element.cuh: activation_value/first/second reproduce cpu's activation kernels") {
  random_source rng(203);
  const index batch = 4, cols = 9, k = 3;
  for (activation f : all_activations) {
    CAPTURE(name_of(f));
    const auto in = pre_activations<double>(rng, batch, cols);
    host_matrix<double> out = output<double>(batch, cols), out_got = out;
    cpu::activation_forward(f, in.cview(), out.view());
    for (index i = 0; i < batch; ++i)
      for (index j = 0; j < cols; ++j) out_got(i, j) = kernels::activation_value(f, in(i, j));
    if (f == activation::identity || f == activation::relu || f == activation::relu6) CHECK(identical(out_got, out));
    check_close(out_got, out, host_tol);

    const auto d_out = rng.filled<double>(batch, cols, cols + 1);
    const auto r_in = rng.filled<double>(k * batch, cols, cols + 1);
    const auto r_d_out = rng.filled<double>(k * batch, cols, cols + 2);
    // backward: d_out ⊙ f'(in)
    host_matrix<double> d_in = output<double>(batch, cols), d_in_got = d_in;
    cpu::activation_backward(f, in.cview(), out.cview(), d_out.cview(), d_in.view());
    for (index i = 0; i < batch; ++i)
      for (index j = 0; j < cols; ++j) d_in_got(i, j) = d_out(i, j) * kernels::activation_first(f, in(i, j), out(i, j));
    check_close(d_in_got, d_in, host_tol);
    // tangent: f'(in) ⊙ r_in_j for k blocks
    host_matrix<double> r_out = output<double>(k * batch, cols), r_out_got = r_out;
    cpu::activation_tangent(f, in.cview(), out.cview(), r_in.cview(), r_out.view());
    for (index i = 0; i < k * batch; ++i)
      for (index j = 0; j < cols; ++j)
        r_out_got(i, j) = r_in(i, j) * kernels::activation_first(f, in(i % batch, j), out(i % batch, j));
    check_close(r_out_got, r_out, host_tol);
    // second backward, with and without r_in
    for (bool with_r_in : {true, false}) {
      CAPTURE(with_r_in);
      host_matrix<double> r_d_in = output<double>(k * batch, cols), r_d_in_got = r_d_in;
      cpu::activation_second_backward(f, in.cview(), out.cview(), d_out.cview(),
                                      with_r_in ? r_in.cview() : matrix_view<const double>(), r_d_out.cview(),
                                      r_d_in.view());
      for (index i = 0; i < k * batch; ++i)
        for (index j = 0; j < cols; ++j) {
          const index b = i % batch;
          double v = r_d_out(i, j) * kernels::activation_first(f, in(b, j), out(b, j));
          if (with_r_in) v += d_out(b, j) * kernels::activation_second(f, out(b, j)) * r_in(i, j);
          r_d_in_got(i, j) = v;
        }
      check_close(r_d_in_got, r_d_in, host_tol);
    }
  }
  // The closed forms at a few points, independent of hydra::cpu.
  CHECK(kernels::activation_value(activation::relu, -2.0) == 0.0);
  CHECK(kernels::activation_value(activation::sigmoid, -1000.0) == 0.0);
  CHECK(kernels::activation_value(activation::sigmoid, 1000.0) == 1.0);
  CHECK(kernels::activation_first(activation::relu, 0.0, 0.0) == 0.0);
  CHECK(kernels::activation_first(activation::sigmoid, 0.0, 0.5) == 0.25);
  CHECK(kernels::activation_second(activation::tanh, 0.5) == -0.75);
  CHECK(kernels::activation_second(activation::relu, 3.0) == 0.0);
}

TEST_CASE("element.cuh: transfer_element reproduces cpu::hypergradient_transfer") {
  random_source rng(204);
  const index n = 6, P = 37, batch = 3;
  const double eta = 0.3, nan = std::numeric_limits<double>::quiet_NaN();
  auto dv0 = rng.filled<double>(n, P, P + 2);  // NaN padding: the transfer must not touch it
  auto grad0 = rng.filled<double>(n, P, P + 1);
  const auto sources = rng.filled<double>(batch, P, P + 3);
  // Listed rows 3, 0, 4, 5, 1: a transfer with a source, one without, a zero transfer with a
  // source and one without (rows 4 and 5: never touched, NaN old state that must not be read), a
  // transfer with a source at weight 0. Row 2 is not listed.
  const std::vector<index> state_rows{3, 0, 4, 5, 1};
  const std::vector<double> transfers{0.9, 0.01, -0.27, 0.997, 0.5, -0.25, 0.125, 2, 0, 0, 0, 0,
                                      0,   0,    0,     0,     1.5, 0.5,  -1,    0.75};
  const std::vector<index> source_rows{2, -1, 0, -1, 1};
  const std::vector<double> weights{7, 99, 3.5, 99, 0};
  for (index j = 0; j < P; ++j) dv0(4, j) = grad0(4, j) = dv0(5, j) = grad0(5, j) = nan;
  const index count = static_cast<index>(state_rows.size());

  auto dv_want = dv0, grad_want = grad0, dv_got = dv0, grad_got = grad0;
  const bool finite_want = cpu::hypergradient_transfer(count, state_rows.data(), transfers.data(), source_rows.data(),
                                                       weights.data(), eta, sources.cview(), dv_want.view(),
                                                       grad_want.view());
  bool non_finite = false;
  for (index k = 0; k < count; ++k)  // hypergradient_transfer's kernel, element by element
    for (index j = 0; j < P; ++j) {
      const index r = state_rows[k];
      const bool has_source = source_rows[k] >= 0;
      const double s = has_source ? sources(source_rows[k], j) : 0.0;
      non_finite |= kernels::transfer_element(transfers.data() + 4 * k, has_source, has_source ? weights[k] : 0.0, eta,
                                              s, dv_got(r, j), grad_got(r, j));
    }
  CHECK(finite_want);
  CHECK_FALSE(non_finite);
  check_close(dv_got, dv_want, host_tol);
  check_close(grad_got, grad_want, host_tol);
  for (index j = 0; j < P; ++j) {  // the fresh rows: written without reading, plain values
    CHECK(dv_got(4, j) == 3.5 * sources(0, j));
    CHECK(grad_got(4, j) == -(eta * 3.5) * sources(0, j));
    CHECK(dv_got(5, j) == 0.0);
    CHECK(grad_got(5, j) == 0.0);
    CHECK(dv_got(2, j) == dv0(2, j));  // unlisted
    CHECK(grad_got(2, j) == grad0(2, j));
  }
  // A NaN read through a non-zero transfer is reported, by both.
  const std::vector<double> through{0.5, 0.5, 0.5, 0.5};
  const std::vector<index> nan_row{4}, no_source{-1};
  auto dv_bad = dv0, grad_bad = grad0;
  CHECK_FALSE(cpu::hypergradient_transfer(1, nan_row.data(), through.data(), no_source.data(), weights.data(), eta,
                                          sources.cview(), dv_bad.view(), grad_bad.view()));
  double d = nan, g = 1;
  CHECK(kernels::transfer_element(through.data(), false, 0.0, eta, 0.0, d, g));
  double d_inf = 1, g_inf = 1;
  CHECK(kernels::transfer_element(through.data(), true, 1.0, eta, std::numeric_limits<double>::infinity(), d_inf, g_inf));
}

// =================================================================================================
// Part 2: on the device, against hydra::cpu
// =================================================================================================

// ---- memory -------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("cuda::buffer: zeroed device memory, movable; host copies move exactly n elements", T, float,
                   double) {
  if (!have_device()) return;
  for (index n : {1, 3, 1000, 4099}) {
    CAPTURE(n);
    const cuda::buffer<T> b(n);
    REQUIRE(b.data() != nullptr);
    CHECK(b.size() == n);
    std::vector<T> back(static_cast<std::size_t>(n), T(7));
    cuda::copy_to_host(b.data(), n, back.data());
    CHECK(back == std::vector<T>(static_cast<std::size_t>(n), T(0)));
  }

  cuda::buffer<T> a(6);
  const std::vector<T> nines(6, T(9));
  cuda::copy_from_host(nines.data(), 6, a.data());
  const std::vector<T> src{T(1), T(-2), T(3.5), T(4)};
  cuda::copy_from_host(src.data(), 3, a.data());  // exactly 3 elements
  std::vector<T> back(6, T(0));
  cuda::copy_to_host(a.data(), 6, back.data());
  CHECK(back == std::vector<T>{T(1), T(-2), T(3.5), T(9), T(9), T(9)});
  std::vector<T> part(4, T(-1));
  cuda::copy_to_host(a.data() + 1, 2, part.data());
  CHECK(part == std::vector<T>{T(-2), T(3.5), T(-1), T(-1)});

  T* const p = a.data();
  cuda::buffer<T> b(std::move(a));
  CHECK(b.data() == p);
  CHECK(b.size() == 6);
  CHECK(a.data() == nullptr);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  CHECK(a.size() == 0);
  cuda::buffer<T> c(4);
  c = std::move(b);  // c's old memory is freed
  CHECK(c.data() == p);
  CHECK(c.size() == 6);
  CHECK(b.data() == nullptr);  // NOLINT(bugprone-use-after-move)
  auto& alias = c;
  c = std::move(alias);  // self-move keeps the contents
  CHECK(c.data() == p);
  back.assign(6, T(0));
  cuda::copy_to_host(c.data(), 6, back.data());
  CHECK(back == std::vector<T>{T(1), T(-2), T(3.5), T(9), T(9), T(9)});

  // Out of device memory is an allocation_error, and the runtime is usable afterwards.
  CHECK_THROWS_AS(cuda::buffer<T>(index{1} << 55), hydra::allocation_error);
  hydra::vector<T, cuda> after(5);
  cuda::fill(T(2.5), after.view());
  CHECK(after.to_host() == std::vector<T>(5, T(2.5)));
  CHECK_NOTHROW(cuda::synchronize());
}

TEST_CASE_TEMPLATE("hydra::matrix and hydra::vector on cuda", T, float, double) {
  if (!have_device()) return;
  using mat = hydra::matrix<T, cuda>;
  using vec = hydra::vector<T, cuda>;
  const std::vector<T> values{T(1), T(2), T(3), T(4), T(5), T(6)};
  const mat m = mat::from_host(values, 2, 3);
  CHECK(m.rows() == 2);
  CHECK(m.cols() == 3);
  CHECK(m.view().stride == 3);
  CHECK(m.to_host() == values);
  CHECK(mat(3, 4).to_host() == std::vector<T>(12, T(0)));  // a new matrix is zero

  mat r(4, 5);
  const T* const first = r.data();
  r.resize(2, 10);  // same count: no reallocation
  CHECK(r.data() == first);
  r.resize(3, 3);
  CHECK(r.data() == first);
  CHECK(r.to_host().size() == 9);
  r.resize(7, 3);  // 21 > 20: a new buffer of the new size, zeroed
  CHECK(r.to_host() == std::vector<T>(21, T(0)));

  vec v = vec::from_host(std::vector<T>{T(-1), T(0.5), T(8)});
  v.resize(3);  // unchanged size keeps the contents
  CHECK(v.to_host() == std::vector<T>{T(-1), T(0.5), T(8)});
  v.resize(5);
  CHECK(v.to_host() == std::vector<T>(5, T(0)));
}

// ---- gemm -------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("gemm: all transposes, beta 0 / 1 / 0.5, NaN in C with beta = 0, strided operands", T, float,
                   double) {
  if (!have_device()) return;
  random_source rng(301);
  struct shape {
    index m, n, k;
  };
  struct coefficients {
    double alpha, beta;
  };
  for (const shape s : {shape{37, 29, 23}, shape{64, 64, 64}, shape{1, 7, 5}, shape{6, 1, 1}, shape{3, 4, 1}}) {
    for (const auto& [ta, tb] : all_transposes) {
      for (const coefficients ab : {coefficients{1, 0}, coefficients{-0.75, 1}, coefficients{1.5, 0.5}}) {
        CAPTURE(s.m);
        CAPTURE(s.n);
        CAPTURE(s.k);
        CAPTURE(static_cast<int>(ta));
        CAPTURE(static_cast<int>(tb));
        CAPTURE(ab.beta);
        const T alpha = T(ab.alpha), beta = T(ab.beta);
        const auto a = operand<T>(rng, ta, s.m, s.k, 3);  // NaN padding
        const auto b = operand<T>(rng, tb, s.k, s.n, 2);
        host_matrix<T> c = output<T>(s.m, s.n, 1);  // NaN elements: must vanish with beta = 0
        if (beta != T(0)) rng.fill(c);
        auto want = c;
        cpu::gemm(ta, tb, alpha, a.cview(), b.cview(), beta, want.view());
        const device_matrix<T> da(a), db(b);
        device_matrix<T> dc(c);
        cuda::gemm(ta, tb, alpha, da.cview(), db.cview(), beta, dc.view());
        check_close(dc.to_host(), want, device_tol<T>);
      }
    }
  }
}

TEST_CASE_TEMPLATE("gemm on interior blocks of larger matrices reads and writes only the blocks", T, float, double) {
  if (!have_device()) return;
  random_source rng(302);
  for (const auto& [ta, tb] : all_transposes) {
    CAPTURE(static_cast<int>(ta));
    CAPTURE(static_cast<int>(tb));
    const index m = 7, n = 5, k = 6;
    const index ar = ta == transpose::no ? m : k, ac = ta == transpose::no ? k : m;
    const index br = tb == transpose::no ? k : n, bc = tb == transpose::no ? n : k;
    // Parents full of NaN around the operand blocks, a parent of sentinels around C's block.
    host_matrix<T> pa(12, 13, 13), pb(11, 12, 12), pc(13, 14, 14, T(sentinel));
    for (index i = 0; i < ar; ++i)
      for (index j = 0; j < ac; ++j) pa(2 + i, 3 + j) = rng.uniform<T>(-1, 1);
    for (index i = 0; i < br; ++i)
      for (index j = 0; j < bc; ++j) pb(1 + i, 4 + j) = rng.uniform<T>(-1, 1);
    for (index i = 0; i < m; ++i)
      for (index j = 0; j < n; ++j) pc(5 + i, 6 + j) = rng.uniform<T>(-1, 1);
    const T alpha = T(0.75), beta = T(-0.5);
    auto want = pc;
    cpu::gemm(ta, tb, alpha, pa.cview().row_block(2, ar).col_block(3, ac), pb.cview().row_block(1, br).col_block(4, bc),
              beta, want.view().row_block(5, m).col_block(6, n));
    const device_matrix<T> da(pa), db(pb);
    device_matrix<T> dc(pc);
    cuda::gemm(ta, tb, alpha, da.cview().row_block(2, ar).col_block(3, ac), db.cview().row_block(1, br).col_block(4, bc),
               beta, dc.view().row_block(5, m).col_block(6, n));
    const auto got = dc.to_host();
    host_matrix<T> got_block(m, n), want_block(m, n);
    bool outside_untouched = true;
    for (index i = 0; i < pc.rows; ++i)
      for (index j = 0; j < pc.cols; ++j) {
        if (i >= 5 && i < 5 + m && j >= 6 && j < 6 + n) {
          got_block(i - 5, j - 6) = got(i, j);
          want_block(i - 5, j - 6) = want(i, j);
        } else {
          outside_untouched = outside_untouched && got(i, j) == T(sentinel);
        }
      }
    CHECK(outside_untouched);
    check_close(got_block, want_block, device_tol<T>);
  }
}

TEST_CASE_TEMPLATE("gemm with an empty inner dimension: C = beta * C, and 0 for beta = 0 even over NaN", T, float,
                   double) {
  if (!have_device()) return;
  const host_matrix<T> a(3, 0, 1), b(0, 2, 2);
  for (const transpose ta : {transpose::no, transpose::yes}) {
    CAPTURE(static_cast<int>(ta));
    const host_matrix<T> at = ta == transpose::no ? a : host_matrix<T>(0, 3, 3);
    host_matrix<T> c = output<T>(3, 2, 1);
    device_matrix<T> dc(c);
    const device_matrix<T> da(at), db(b);
    cuda::gemm(ta, transpose::no, T(1), da.cview(), db.cview(), T(0), dc.view());
    auto zeros = c;
    for (index i = 0; i < 3; ++i)
      for (index j = 0; j < 2; ++j) zeros(i, j) = T(0);
    CHECK(identical(dc.to_host(), zeros));

    for (index i = 0; i < 3; ++i)
      for (index j = 0; j < 2; ++j) c(i, j) = T(i - j);
    device_matrix<T> dc2(c);
    cuda::gemm(ta, transpose::no, T(1), da.cview(), db.cview(), T(2), dc2.view());
    auto doubled = c;
    cpu::gemm(ta, transpose::no, T(1), at.cview(), b.cview(), T(2), doubled.view());
    CHECK(identical(dc2.to_host(), doubled));
    CHECK(doubled(2, 0) == T(4));
  }
}

TEST_CASE_TEMPLATE("gemm_batched: per-item and shared (stride 0) operands, beta = 0 over NaN, count 0", T, float,
                   double) {
  if (!have_device()) return;
  random_source rng(303);
  const index m = 5, n = 6, k = 7, count = 4;
  struct sharing {
    bool a, b;
  };
  for (const auto& [ta, tb] : all_transposes) {
    for (const sharing s : {sharing{false, false}, sharing{true, false}, sharing{false, true}}) {
      for (const double beta_d : {0.0, -0.25}) {
        CAPTURE(static_cast<int>(ta));
        CAPTURE(static_cast<int>(tb));
        CAPTURE(s.a);
        CAPTURE(s.b);
        CAPTURE(beta_d);
        // Item i of X at X.data + i * stride_x: padded items with NaN gaps (inputs) or sentinel
        // gaps (C) between them.
        const auto a0 = operand<T>(rng, ta, m, k, 2);
        const auto b0 = operand<T>(rng, tb, k, n, 1);
        const index item_a = static_cast<index>(a0.data.size()) + 3, item_b = static_cast<index>(b0.data.size()) + 1;
        const index c_stride = n + 2, item_c = m * c_stride + 2;
        const index stride_a = s.a ? 0 : item_a, stride_b = s.b ? 0 : item_b;
        std::vector<T> pa(static_cast<std::size_t>(count * item_a), std::numeric_limits<T>::quiet_NaN());
        std::vector<T> pb(static_cast<std::size_t>(count * item_b), std::numeric_limits<T>::quiet_NaN());
        std::vector<T> pc(static_cast<std::size_t>(count * item_c), T(sentinel));
        for (index i = 0; i < count; ++i) {
          const auto ai = operand<T>(rng, ta, m, k, 2), bi = operand<T>(rng, tb, k, n, 1);
          std::copy(ai.data.begin(), ai.data.end(), pa.begin() + i * item_a);
          std::copy(bi.data.begin(), bi.data.end(), pb.begin() + i * item_b);
          for (index r = 0; r < m; ++r)
            for (index j = 0; j < n; ++j)
              pc[static_cast<std::size_t>(i * item_c + r * c_stride + j)] =
                  beta_d == 0 ? std::numeric_limits<T>::quiet_NaN() : rng.uniform<T>(-1, 1);
        }
        const T alpha = T(1.5), beta = T(beta_d);
        auto want = pc;
        cpu::gemm_batched(ta, tb, alpha, matrix_view<const T>(pa.data(), a0.rows, a0.cols, a0.stride), stride_a,
                          matrix_view<const T>(pb.data(), b0.rows, b0.cols, b0.stride), stride_b, beta,
                          matrix_view<T>(want.data(), m, n, c_stride), item_c, count);
        const device_array<T> da(pa), db(pb);
        device_array<T> dc(pc);
        cuda::gemm_batched(ta, tb, alpha, matrix_view<const T>(da.data(), a0.rows, a0.cols, a0.stride), stride_a,
                           matrix_view<const T>(db.data(), b0.rows, b0.cols, b0.stride), stride_b, beta,
                           matrix_view<T>(dc.data(), m, n, c_stride), item_c, count);
        const auto got = dc.to_host();
        for (index i = 0; i < count; ++i) {
          CAPTURE(i);
          host_matrix<T> got_i(m, n, c_stride), want_i(m, n, c_stride);
          std::copy(got.begin() + i * item_c, got.begin() + i * item_c + m * c_stride, got_i.data.begin());
          std::copy(want.begin() + i * item_c, want.begin() + i * item_c + m * c_stride, want_i.data.begin());
          check_close(got_i, want_i, device_tol<T>);
          CHECK(got[static_cast<std::size_t>(i * item_c + m * c_stride)] == T(sentinel));  // the gap
          CHECK(got[static_cast<std::size_t>(i * item_c + m * c_stride + 1)] == T(sentinel));
        }
      }
    }
  }
  // count = 0 touches nothing.
  const auto a = rng.filled<T>(2, 3, 3);
  const device_matrix<T> da(a);
  device_array<T> untouched(std::vector<T>(4, T(sentinel)));
  cuda::gemm_batched(transpose::no, transpose::no, T(1), da.cview(), 0, da.cview(), 0, T(0),
                     matrix_view<T>(untouched.data(), 2, 2), 4, 0);
  CHECK(untouched.to_host() == std::vector<T>(4, T(sentinel)));
}

TEST_CASE("gemm dimensions beyond cuBLAS's int range are an invalid_argument") {
  if (!have_device()) return;
  cuda::buffer<float> storage(4);  // never read: the check comes before any cuBLAS call
  const index huge = index{1} << 31;
  const matrix_view<const float> a(storage.data(), 1, 1, 1), b(storage.data(), 1, huge, huge);
  const matrix_view<float> c(storage.data(), 1, huge, huge);
  CHECK_THROWS_AS(cuda::gemm(transpose::no, transpose::no, 1.0f, a, b, 0.0f, c), hydra::invalid_argument);
}

TEST_CASE_TEMPLATE("cuBLAS refuses a leading dimension below its minimum; the error names the call and status", T,
                   float, double) {
  if (!have_device()) return;
  // Host emulation applies cuBLAS's documented checks, so that a mapping cuBLAS would refuse fails
  // without a GPU too; on a GPU this asks cuBLAS itself.
  cuda::buffer<T> storage(64);
  const std::string call = std::is_same_v<T, float> ? "cublasSgemmStridedBatched" : "cublasDgemmStridedBatched";
  const auto gemm = [&](cublasOperation_t op_a, cublasOperation_t op_b, int lda, int ldb, int ldc) {
    kernels::gemm_strided_batched<T>(kernels::this_thread_context().blas(), op_a, op_b, 3, 2, 4, T(1),
                                     storage.data(), lda, 0, storage.data(), ldb, 0, T(0), storage.data() + 32, ldc,
                                     0, 1);
    cuda::synchronize();
  };
  const auto refused = [&](auto&& run) {
    try {
      run();
    } catch (const cuda_error& e) {
      return contains(e.what(), call) && contains(e.what(), "CUBLAS_STATUS_INVALID_VALUE");
    }
    return false;
  };
  // m = 3, n = 2, k = 4: lda ≥ m (N) or k (T), ldb ≥ k (N) or n (T), ldc ≥ m.
  CHECK_NOTHROW(gemm(CUBLAS_OP_N, CUBLAS_OP_N, 3, 4, 3));
  CHECK_NOTHROW(gemm(CUBLAS_OP_T, CUBLAS_OP_T, 4, 2, 3));
  CHECK(refused([&] { gemm(CUBLAS_OP_N, CUBLAS_OP_N, 2, 4, 3); }));
  CHECK(refused([&] { gemm(CUBLAS_OP_T, CUBLAS_OP_N, 3, 4, 3); }));
  CHECK(refused([&] { gemm(CUBLAS_OP_N, CUBLAS_OP_N, 3, 3, 3); }));
  CHECK(refused([&] { gemm(CUBLAS_OP_N, CUBLAS_OP_T, 3, 1, 3); }));
  CHECK(refused([&] { gemm(CUBLAS_OP_N, CUBLAS_OP_N, 3, 4, 2); }));
}

TEST_CASE("host emulation visits every index of a launch once, not in increasing order") {
  // Runs everywhere: the order in which emulated kernels call their bodies (launch.cuh).
  for (index n = 1; n <= 300; ++n) {
    std::vector<int> visits(static_cast<std::size_t>(n), 0);
    index previous = -1;
    bool increasing = true;
    kernels::emulated_scattered(n, [&](index i) {
      if (i >= 0 && i < n) ++visits[static_cast<std::size_t>(i)];
      increasing = increasing && i > previous;
      previous = i;
    });
    INFO("n = " << n);
    CHECK(std::all_of(visits.begin(), visits.end(), [](int v) { return v == 1; }));
    if (n >= 3) CHECK_FALSE(increasing);
  }
}

// ---- level-1 operations -----------------------------------------------------------------------

TEST_CASE_TEMPLATE("axpy, scal, copy, fill on vectors and segments", T, float, double) {
  if (!have_device()) return;
  random_source rng(311);
  const index n = 1001;
  const auto x = rng.values<T>(n);
  auto y0 = rng.values<T>(n);
  y0.push_back(T(sentinel));  // one element past the views
  const device_array<T> dx(x);

  auto want = y0;
  cpu::axpy(T(-0.75), vector_view<const T>(x.data(), n), vector_view<T>(want.data(), n));
  device_array<T> dy(y0);
  cuda::axpy(T(-0.75), vector_view<const T>(dx.data(), n), vector_view<T>(dy.data(), n));
  check_close(dy.to_host(), want, n, device_tol<T>);  // a·x + y: contracted to an FMA on the device

  want = y0;
  cpu::scal(T(3.5), vector_view<T>(want.data(), n));
  device_array<T> ds(y0);
  cuda::scal(T(3.5), vector_view<T>(ds.data(), n));
  CHECK(identical(ds.to_host(), want));

  want = y0;
  cpu::copy(vector_view<const T>(x.data(), n), vector_view<T>(want.data(), n));
  device_array<T> dcopy(y0);
  cuda::copy(vector_view<const T>(dx.data(), n), vector_view<T>(dcopy.data(), n));
  CHECK(identical(dcopy.to_host(), want));

  want = y0;
  cpu::fill(T(-4), vector_view<T>(want.data(), n));
  device_array<T> dfill(y0);
  cuda::fill(T(-4), vector_view<T>(dfill.data(), n));
  CHECK(identical(dfill.to_host(), want));

  // Segments: only the segment changes.
  std::vector<T> w0(20, T(1));
  auto w = w0;
  const vector_view<T> whole(w.data(), 20);
  cpu::scal(T(2), whole.segment(3, 4));
  cpu::axpy(T(1), vector_view<const T>(x.data(), 5), whole.segment(12, 5));
  cpu::fill(T(-1), whole.segment(18, 1));
  device_array<T> dw(w0);
  cuda::scal(T(2), dw.view().segment(3, 4));
  cuda::axpy(T(1), vector_view<const T>(dx.data(), 5), dw.view().segment(12, 5));
  cuda::fill(T(-1), dw.view().segment(18, 1));
  CHECK(identical(dw.to_host(), w));  // 1 + x is one rounding with or without an FMA

  // Empty views are fine.
  cuda::axpy(T(1), vector_view<const T>(), vector_view<T>());
  cuda::scal(T(1), vector_view<T>());
  cuda::copy(vector_view<const T>(), vector_view<T>());
  cuda::fill(T(1), vector_view<T>());
}

TEST_CASE_TEMPLATE("axpy, scal, copy, fill on strided matrices and blocks leave the padding alone", T, float, double) {
  if (!have_device()) return;
  random_source rng(312);
  const index r = 33, c = 17;
  const auto x = rng.filled<T>(r, c, c + 2);  // NaN padding
  auto y0 = output<T>(r, c, 1);
  rng.fill(y0);
  const device_matrix<T> dx(x);

  auto want = y0;
  cpu::axpy(T(2.5), x.cview(), want.view());
  device_matrix<T> dy(y0);
  cuda::axpy(T(2.5), dx.cview(), dy.view());
  check_close(dy.to_host(), want, device_tol<T>);

  want = y0;
  cpu::scal(T(-0.5), want.view());
  device_matrix<T> ds(y0);
  cuda::scal(T(-0.5), ds.view());
  CHECK(identical(ds.to_host(), want));

  want = y0;
  cpu::copy(x.cview(), want.view());
  device_matrix<T> dcopy(y0);
  cuda::copy(dx.cview(), dcopy.view());
  CHECK(identical(dcopy.to_host(), want));

  // Blocks: a column block keeps the parent's stride, a row block starts mid-matrix.
  want = y0;
  cpu::fill(T(6), want.view().col_block(1, 2));
  cpu::fill(T(0), want.view().row_block(20, 3));
  cpu::copy(x.cview().row_block(2, 4).col_block(5, 7), want.view().row_block(10, 4).col_block(3, 7));
  cpu::scal(T(4), want.view().row_block(25, 5).col_block(10, 7));
  device_matrix<T> db(y0);
  cuda::fill(T(6), db.view().col_block(1, 2));
  cuda::fill(T(0), db.view().row_block(20, 3));
  cuda::copy(dx.cview().row_block(2, 4).col_block(5, 7), db.view().row_block(10, 4).col_block(3, 7));
  cuda::scal(T(4), db.view().row_block(25, 5).col_block(10, 7));
  CHECK(identical(db.to_host(), want));
}

TEST_CASE_TEMPLATE("dot and sum", T, float, double) {
  if (!have_device()) return;
  random_source rng(313);
  for (index n : {0, 1, 7, 256, 1000}) {
    CAPTURE(n);
    // Positive entries keep both well conditioned: the backends differ by rounding only.
    const auto x = rng.values<T>(n, 0.5, 1.5);
    const auto y = rng.values<T>(n, 0.5, 1.5);
    const device_array<T> dx(x), dy(y);
    const vector_view<const T> hx(x.data(), n), hy(y.data(), n), vx(dx.data(), n), vy(dy.data(), n);
    const T want_dot = cpu::dot(hx, hy), want_sum = cpu::sum(hx);
    CHECK(relative_error(cuda::dot(vx, vy), real(want_dot)) <= device_tol<T>);
    CHECK(relative_error(cuda::sum(vx), real(want_sum)) <= device_tol<T>);
    // A mutable view is accepted too.
    device_array<T> mx(x);
    CHECK(relative_error(cuda::sum(mx.view()), real(want_sum)) <= device_tol<T>);
    CHECK(relative_error(cuda::dot(mx.view(), vy), real(want_dot)) <= device_tol<T>);
  }
  // Small integers sum exactly in any order (every partial sum stays below 2^24): exact results
  // past one element per thread of the reduction (65536 threads).
  for (index n : {65537, 300001}) {
    CAPTURE(n);
    std::vector<T> x(static_cast<std::size_t>(n)), y(static_cast<std::size_t>(n));
    long long dot = 0, sum = 0;
    for (index i = 0; i < n; ++i) {
      x[i] = T(i % 5 - 2);
      y[i] = T(i % 3 - 1);
      dot += (i % 5 - 2) * (i % 3 - 1);
      sum += i % 5 - 2;
    }
    const device_array<T> dx(x), dy(y);
    CHECK(cuda::dot(vector_view<const T>(dx.data(), n), vector_view<const T>(dy.data(), n)) == T(dot));
    CHECK(cuda::sum(vector_view<const T>(dx.data(), n)) == T(sum));
    CHECK(cpu::sum(vector_view<const T>(x.data(), n)) == T(sum));
  }
  const std::vector<T> a{T(1), T(-2), T(3)}, b{T(4), T(0.5), T(-1)};
  const device_array<T> da(a), db(b);
  CHECK(cuda::dot(vector_view<const T>(da.data(), 3), vector_view<const T>(db.data(), 3)) == T(0));
  CHECK(cuda::sum(vector_view<const T>(da.data(), 3)) == T(2));
}

// ---- row and column reductions ----------------------------------------------------------------

TEST_CASE_TEMPLATE("add_row_vector and add_row_vectors", T, float, double) {
  if (!have_device()) return;
  random_source rng(321);
  const index c = 13;
  const auto v = rng.values<T>(c);
  const device_array<T> dv(v);
  for (index blocks : {1, 3}) {
    CAPTURE(blocks);
    const index rows = 4 * blocks;
    auto m0 = output<T>(rows, c, 2);
    rng.fill(m0);
    const auto vectors = rng.filled<T>(blocks, c, c + 1);  // NaN padding

    auto want = m0;
    cpu::add_row_vector(vector_view<const T>(v.data(), c), want.view());
    device_matrix<T> dm(m0);
    cuda::add_row_vector(vector_view<const T>(dv.data(), c), dm.view());
    CHECK(identical(dm.to_host(), want));

    want = m0;
    cpu::add_row_vectors(vectors.cview(), want.view());
    device_matrix<T> dm2(m0);
    const device_matrix<T> dvectors(vectors);
    cuda::add_row_vectors(dvectors.cview(), dm2.view());
    CHECK(identical(dm2.to_host(), want));
  }
}

TEST_CASE_TEMPLATE("column_sums: beta = 0 does not read y; beta != 0 scales it", T, float, double) {
  if (!have_device()) return;
  random_source rng(322);
  struct coefficients {
    double alpha, beta;
  };
  for (const index rows : {0, 1, 6, 300}) {
    const index c = 70;
    const auto a = rng.filled<T>(rows, c, c + 2);  // NaN padding
    const device_matrix<T> da(a);
    for (const coefficients ab : {coefficients{1, 0}, coefficients{-0.5, 0}, coefficients{2, 1}, coefficients{0.5, -3}}) {
      CAPTURE(rows);
      CAPTURE(ab.alpha);
      CAPTURE(ab.beta);
      auto y = rng.values<T>(c);
      if (ab.beta == 0) y.assign(static_cast<std::size_t>(c), std::numeric_limits<T>::quiet_NaN());
      y.push_back(T(sentinel));
      auto want = y;
      cpu::column_sums(T(ab.alpha), a.cview(), T(ab.beta), vector_view<T>(want.data(), c));
      device_array<T> dy(y);
      cuda::column_sums(T(ab.alpha), da.cview(), T(ab.beta), vector_view<T>(dy.data(), c));
      check_close(dy.to_host(), want, c, device_tol<T>);
    }
  }
}

TEST_CASE_TEMPLATE("column_sums_batched adds alpha * (sum of block j's rows) into out.row(j)", T, float, double) {
  if (!have_device()) return;
  random_source rng(323);
  const index blocks = 3, block_rows = 40, c = 11;
  const auto a = rng.filled<T>(blocks * block_rows, c, c + 1);  // NaN padding
  auto out0 = output<T>(blocks, c, 2);
  rng.fill(out0);  // non-zero: the operation adds
  auto want = out0;
  cpu::column_sums_batched(T(-1.5), a.cview(), block_rows, want.view());
  const device_matrix<T> da(a);
  device_matrix<T> dout(out0);
  cuda::column_sums_batched(T(-1.5), da.cview(), block_rows, dout.view());
  check_close(dout.to_host(), want, device_tol<T>);
}

TEST_CASE_TEMPLATE("row_outer_products writes vec(x_b y_b^T) into row b", T, float, double) {
  if (!have_device()) return;
  random_source rng(324);
  const index rows = 9, mx = 7, ny = 5;
  const auto x = rng.filled<T>(rows, mx, mx + 1);  // NaN padding
  const auto y = rng.filled<T>(rows, ny, ny + 2);
  const auto out0 = output<T>(rows, mx * ny, 1);
  auto want = out0;
  cpu::row_outer_products(x.cview(), y.cview(), want.view());
  const device_matrix<T> dx(x), dy(y);
  device_matrix<T> dout(out0);
  cuda::row_outer_products(dx.cview(), dy.cview(), dout.view());
  CHECK(identical(dout.to_host(), want));  // one product per element
}

TEST_CASE_TEMPLATE("all_finite detects NaN, +Inf and -Inf; empty is finite; only the view counts", T, float, double) {
  if (!have_device()) return;
  random_source rng(325);
  const index n = 1000;
  auto x = rng.values<T>(n, -1e30, 1e30);
  x[n - 1] = std::numeric_limits<T>::max();
  x[n - 2] = std::numeric_limits<T>::denorm_min();
  x.push_back(std::numeric_limits<T>::quiet_NaN());  // just past the view
  const device_array<T> dx(x);
  CHECK(cuda::all_finite(vector_view<const T>(dx.data(), n)));
  CHECK_FALSE(cuda::all_finite(vector_view<const T>(dx.data(), n + 1)));
  CHECK(cuda::all_finite(vector_view<const T>()));
  for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                -std::numeric_limits<T>::infinity()}) {
    for (index at : {index{0}, index{517}, n - 1}) {
      CAPTURE(bad);
      CAPTURE(at);
      auto y = x;
      y[at] = bad;
      device_array<T> dy(y);
      CHECK_FALSE(cuda::all_finite(vector_view<const T>(dy.data(), n)));
      CHECK_FALSE(cuda::all_finite(dy.view().segment(0, n)));
      CHECK(cuda::all_finite(dy.view().segment(at + 1, n - at - 1)));  // the rest of the view
    }
  }
}

TEST_CASE_TEMPLATE("grid-stride loops reach every index past the largest grid (2^24 threads)", T, float, double) {
  if (!have_device()) return;
  const index side = 4097, n = side * side;  // > 65536 blocks × 256 threads
  std::vector<T> pattern(static_cast<std::size_t>(n));
  long long sum = 0, squares = 0;
  for (index i = 0; i < n; ++i) {
    pattern[i] = T(i % 3 - 1);
    sum += i % 3 - 1;
    squares += (i % 3 - 1) * (i % 3 - 1);
  }
  auto v = hydra::vector<T, cuda>::from_host(pattern);
  // Exact: small integers, every partial sum below 2^24.
  CHECK(cuda::sum(v.view()) == T(sum));
  CHECK(cuda::dot(v.view(), vector_view<const T>(v.view())) == T(squares));
  CHECK(cuda::all_finite(v.view()));
  const T nan = std::numeric_limits<T>::quiet_NaN();
  cuda::copy_from_host(&nan, 1, v.data() + (n - 1));
  CHECK_FALSE(cuda::all_finite(v.view()));

  cuda::fill(T(1.5), v.view());
  // A side × (side − 1) matrix of stride side over the same memory: its last column is padding.
  cuda::scal(T(2), matrix_view<T>(v.data(), side, side - 1, side));
  const auto host = v.to_host();
  bool right = true;
  for (index i = 0; i < n; ++i) right = right && host[i] == (i % side == side - 1 ? T(1.5) : T(3));
  CHECK(right);
}

// ---- convolutions -----------------------------------------------------------------------------

TEST_CASE_TEMPLATE("im2col, col2im and swap_leading_axes equal cpu's exactly", T, float, double) {
  if (!have_device()) return;
  random_source rng(331);
  for (const conv_geometry& g : conv_geometries()) {
    CAPTURE(g.channels);
    CAPTURE(g.kernel_h);
    CAPTURE(g.kernel_w);
    CAPTURE(g.stride);
    CAPTURE(g.padding);
    const index batch = 3, columns = batch * g.out_pixels();
    const auto x = rng.filled<T>(batch, g.input_size(), g.input_size() + 1);  // NaN padding
    const auto cols0 = output<T>(g.patch_size(), columns, 2);
    auto want = cols0;
    cpu::im2col(g, x.cview(), want.view());
    const device_matrix<T> dx(x);
    device_matrix<T> dcols(cols0);
    cuda::im2col(g, dx.cview(), dcols.view());
    CHECK(identical(dcols.to_host(), want));

    // col2im sums the same entries in the same order as cpu's: exact.
    const auto d = rng.filled<T>(g.patch_size(), columns, columns + 1);
    const auto x0 = output<T>(batch, g.input_size(), 2);
    auto back = x0;
    cpu::col2im(g, d.cview(), back.view());
    const device_matrix<T> dd(d);
    device_matrix<T> dback(x0);
    cuda::col2im(g, dd.cview(), dback.view());
    CHECK(identical(dback.to_host(), back));
  }
  struct axes {
    index a, m, n;  // in is a × (m·n), out is m × (a·n)
  };
  for (const axes s : {axes{3, 4, 5}, axes{1, 6, 2}, axes{7, 1, 9}, axes{64, 16, 25}}) {
    const index a = s.a, m = s.m, n = s.n;
    CAPTURE(a);
    CAPTURE(m);
    CAPTURE(n);
    const auto in = rng.filled<T>(a, m * n, m * n + 1);
    const auto out0 = output<T>(m, a * n, 2);
    auto want = out0;
    cpu::swap_leading_axes(in.cview(), m, n, want.view());
    const device_matrix<T> din(in);
    device_matrix<T> dout(out0);
    cuda::swap_leading_axes(din.cview(), m, n, dout.view());
    CHECK(identical(dout.to_host(), want));
  }
}

// ---- pooling ----------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("pooling: max routing exact (ties, NaN, overlap, k blocks), average within tolerance", T, float,
                   double) {
  if (!have_device()) return;
  random_source rng(341);
  for (const pool_geometry& g : pool_geometries) {
    CAPTURE(g.channels);
    CAPTURE(g.window);
    CAPTURE(g.stride);
    const index batch = 3, k = 3;
    const auto x = pool_input<T>(rng, g);
    const auto r_x = rng.filled<T>(k * batch, g.input_size(), g.input_size() + 2);
    const auto d_y = rng.filled<T>(k * batch, g.output_size(), g.output_size() + 1);
    const device_matrix<T> dx(x), dr_x(r_x), dd_y(d_y);

    const auto y0 = output<T>(batch, g.output_size());
    auto y = y0;
    cpu::max_pool_forward(g, x.cview(), y.view());
    device_matrix<T> dy(y0);
    cuda::max_pool_forward(g, dx.cview(), dy.view());
    CHECK(identical(dy.to_host(), y));
    CHECK(std::isnan(dy.to_host()(0, 0)));  // the NaN wins its windows

    const auto r_y0 = output<T>(k * batch, g.output_size());
    auto r_y = r_y0;
    cpu::max_pool_tangent(g, x.cview(), r_x.cview(), r_y.view());
    device_matrix<T> dr_y(r_y0);
    cuda::max_pool_tangent(g, dx.cview(), dr_x.cview(), dr_y.view());
    CHECK(identical(dr_y.to_host(), r_y));

    const auto d_x0 = output<T>(k * batch, g.input_size());
    auto d_x = d_x0;
    cpu::max_pool_backward(g, x.cview(), d_y.cview(), d_x.view());
    device_matrix<T> dd_x(d_x0);
    cuda::max_pool_backward(g, dx.cview(), dd_y.cview(), dd_x.view());
    CHECK(identical(dd_x.to_host(), d_x));  // sums of d_y in cpu's order

    const auto a0 = output<T>(k * batch, g.output_size());
    auto a = a0;
    cpu::avg_pool_forward(g, r_x.cview(), a.view());
    device_matrix<T> da(a0);
    cuda::avg_pool_forward(g, dr_x.cview(), da.view());
    CHECK(identical(da.to_host(), a));  // the same additions, then the same product

    const auto ad0 = output<T>(k * batch, g.input_size());
    auto ad = ad0;
    cpu::avg_pool_backward(g, d_y.cview(), ad.view());
    device_matrix<T> dad(ad0);
    cuda::avg_pool_backward(g, dd_y.cview(), dad.view());
    check_close(dad.to_host(), ad, device_tol<T>);
  }
}

// ---- the hypergradient recurrence -------------------------------------------------------------

// ---- channels ---------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("channel_sums: y absent, shared or per row; blocks of one row, of all rows, of directions", T,
                   float, double) {
  if (!have_device()) return;
  random_source rng(351);
  const index C = 5;
  struct shape {
    index blocks, block_rows, pixels;
  };
  // Segments longer than a thread block (20·30 terms), a single block, one block per row, P = 1.
  for (const shape sh : {shape{3, 20, 30}, shape{1, 7, 4}, shape{6, 1, 9}, shape{2, 50, 1}}) {
    const index R = sh.blocks * sh.block_rows, cols = C * sh.pixels;
    const auto x = rng.filled<T>(R, cols, cols + 2);  // NaN padding
    const auto shared = rng.filled<T>(sh.block_rows, cols, cols + 1);
    const auto per_row = rng.filled<T>(R, cols, cols + 3);
    const device_matrix<T> dx(x), dshared(shared), dper_row(per_row);
    for (int which = 0; which < 3; ++which)
      for (const auto& [alpha, beta] : {std::pair<double, double>{1, 0}, {-0.5, 0}, {2, 1}, {0.5, -3}}) {
        CAPTURE(sh.blocks);
        CAPTURE(sh.block_rows);
        CAPTURE(sh.pixels);
        CAPTURE(which);
        CAPTURE(alpha);
        auto out0 = output<T>(sh.blocks, C, 2);
        if (beta != 0) rng.fill(out0);  // otherwise NaN: not read
        auto want = out0;
        const matrix_view<const T> none{};
        const auto y_host = which == 0 ? none : which == 1 ? shared.cview() : per_row.cview();
        const auto y_device = which == 0 ? none : which == 1 ? dshared.cview() : dper_row.cview();
        cpu::channel_sums(T(alpha), x.cview(), y_host, sh.pixels, sh.block_rows, T(beta), want.view());
        device_matrix<T> dout(out0);
        cuda::channel_sums(T(alpha), dx.cview(), y_device, sh.pixels, sh.block_rows, T(beta), dout.view());
        check_close(dout.to_host(), want, device_tol<T>);
      }
  }
}

TEST_CASE_TEMPLATE("channel_combine: coefficients per block or broadcast, operands shared or per row, in place", T,
                   float, double) {
  if (!have_device()) return;
  random_source rng(352);
  const index blocks = 3, block_rows = 4, R = blocks * block_rows, C = 3, P = 7, cols = C * P;
  const auto x_rows = rng.filled<T>(R, cols, cols + 2), x_shared = rng.filled<T>(block_rows, cols, cols + 1);
  const auto y_rows = rng.filled<T>(R, cols, cols + 1), y_shared = rng.filled<T>(block_rows, cols, cols + 3);
  const auto per_block = rng.filled<T>(blocks, C, C + 2), per_block2 = rng.filled<T>(blocks, C, C + 1);
  const auto broadcast = rng.filled<T>(1, C, C + 1);
  const device_matrix<T> dx_rows(x_rows), dx_shared(x_shared), dy_rows(y_rows), dy_shared(y_shared);
  const device_matrix<T> dper_block(per_block), dper_block2(per_block2), dbroadcast(broadcast);
  struct terms {
    const host_matrix<T>* a;
    const device_matrix<T>* da;
    const host_matrix<T>* x;
    const device_matrix<T>* dx;
    const host_matrix<T>* b;
    const device_matrix<T>* db;
    const host_matrix<T>* y;
    const device_matrix<T>* dy;
    const host_matrix<T>* c;
    const device_matrix<T>* dc;
  };
  const terms cases[] = {
      {&per_block, &dper_block, &x_rows, &dx_rows, &broadcast, &dbroadcast, &y_shared, &dy_shared, &per_block2,
       &dper_block2},
      {&broadcast, &dbroadcast, &x_shared, &dx_shared, &per_block, &dper_block, &y_rows, &dy_rows, nullptr, nullptr},
      {nullptr, nullptr, &x_rows, &dx_rows, nullptr, nullptr, nullptr, nullptr, &broadcast, &dbroadcast},
      {nullptr, nullptr, nullptr, nullptr, &per_block2, &dper_block2, &y_shared, &dy_shared, nullptr, nullptr},
  };
  const auto host = [](const host_matrix<T>* m) { return m == nullptr ? matrix_view<const T>{} : m->cview(); };
  const auto device = [](const device_matrix<T>* m) { return m == nullptr ? matrix_view<const T>{} : m->cview(); };
  for (std::size_t t = 0; t < std::size(cases); ++t)
    for (const auto& [alpha, beta] : {std::pair<double, double>{1, 0}, {-2, 0}, {0.5, -0.75}}) {
      CAPTURE(t);
      CAPTURE(alpha);
      CAPTURE(beta);
      const terms& k = cases[t];
      auto out0 = output<T>(R, cols, 2);
      if (beta != 0) rng.fill(out0);
      auto want = out0;
      cpu::channel_combine(T(alpha), host(k.a), host(k.x), host(k.b), host(k.y), host(k.c), P, block_rows, T(beta),
                           want.view());
      device_matrix<T> dout(out0);
      cuda::channel_combine(T(alpha), device(k.da), device(k.dx), device(k.db), device(k.dy), device(k.dc), P,
                            block_rows, T(beta), dout.view());
      check_close(dout.to_host(), want, device_tol<T>);
    }
  // In place: out is x, each element read before it is written.
  auto buffer = rng.filled<T>(R, cols, cols + 2);
  auto want = buffer;
  cpu::channel_combine(T(1.5), per_block.cview(), want.cview(), broadcast.cview(), y_shared.cview(), {}, P, block_rows,
                       T(0.5), want.view());
  device_matrix<T> dbuffer(buffer);
  cuda::channel_combine(T(1.5), dper_block.cview(), dbuffer.cview(), dbroadcast.cview(), dy_shared.cview(), {}, P,
                        block_rows, T(0.5), dbuffer.view());
  check_close(dbuffer.to_host(), want, device_tol<T>);
}

TEST_CASE_TEMPLATE("inverse_sqrt: 1 / sqrt(x + shift), also in place", T, float, double) {
  if (!have_device()) return;
  random_source rng(353);
  const auto x = rng.filled<T>(3, 70, 71, 0, 4);  // NaN padding
  const device_matrix<T> dx(x);
  for (const double shift : {1e-5, 0.5}) {
    const auto out0 = output<T>(3, 70, 2);
    auto want = out0;
    cpu::inverse_sqrt(T(shift), x.cview(), want.view());
    device_matrix<T> dout(out0);
    cuda::inverse_sqrt(T(shift), dx.cview(), dout.view());
    check_close(dout.to_host(), want, device_tol<T>);
    device_matrix<T> in_place(x);
    cuda::inverse_sqrt(T(shift), in_place.cview(), in_place.view());
    check_close(in_place.to_host(), [&] {
      auto w = x;
      cpu::inverse_sqrt(T(shift), w.cview(), w.view());
      return w;
    }(), device_tol<T>);
  }
}

TEST_CASE_TEMPLATE("hypergradient_update: with and without hv, rows null or < 0; a NaN or Inf is reported", T, float,
                   double) {
  if (!have_device()) return;
  random_source rng(351);
  const index n = 5, P = 301, batch = 3;
  const T p = T(0.9), lambda = T(0.01), eta = T(0.1);
  auto dv0 = output<T>(n, P, 2);
  auto grad0 = output<T>(n, P, 1);
  rng.fill(dv0);
  rng.fill(grad0);
  const auto hv = rng.filled<T>(n, P, P + 3);  // NaN padding
  auto sources = rng.filled<T>(batch, P, P + 1);
  const std::vector<index> rows{2, -1, 0, -1, 2};
  const std::vector<T> weights{T(16.0 / 3), T(0), T(32.0 / 3), T(0), T(1.5)};
  const device_array<index> drows(rows);
  const device_array<T> dweights(weights);
  const device_matrix<T> dhv(hv), dsources(sources);
  for (bool with_hessian : {true, false}) {
    for (bool with_rows : {true, false}) {
      CAPTURE(with_hessian);
      CAPTURE(with_rows);
      auto dv = dv0, grad = grad0;
      const bool want = cpu::hypergradient_update(p, lambda, eta, with_hessian ? hv.cview() : matrix_view<const T>{},
                                                  with_rows ? rows.data() : nullptr, with_rows ? weights.data() : nullptr,
                                                  sources.cview(), dv.view(), grad.view());
      device_matrix<T> ddv(dv0), dgrad(grad0);
      const bool got = cuda::hypergradient_update(p, lambda, eta, with_hessian ? dhv.cview() : matrix_view<const T>{},
                                                  with_rows ? drows.data() : nullptr,
                                                  with_rows ? dweights.data() : nullptr, dsources.cview(), ddv.view(),
                                                  dgrad.view());
      CHECK(want);
      CHECK(got);
      check_close(ddv.to_host(), dv, device_tol<T>);
      check_close(dgrad.to_host(), grad, device_tol<T>);
    }
  }
  for (T bad : {std::numeric_limits<T>::infinity(), std::numeric_limits<T>::quiet_NaN()}) {
    CAPTURE(bad);
    auto src = sources;
    src(2, 117) = bad;  // read by state rows 0 and 4
    const device_matrix<T> dsrc(src);
    device_matrix<T> ddv(dv0), dgrad(grad0);
    CHECK_FALSE(cuda::hypergradient_update(p, lambda, eta, matrix_view<const T>{}, drows.data(), dweights.data(),
                                           dsrc.cview(), ddv.view(), dgrad.view()));
    // Source row 2 read by no state: nothing non-finite is written.
    const std::vector<index> other{1, -1, 0, -1, 1};
    const device_array<index> dother(other);
    device_matrix<T> ddv2(dv0), dgrad2(grad0);
    CHECK(cuda::hypergradient_update(p, lambda, eta, matrix_view<const T>{}, dother.data(), dweights.data(),
                                     dsrc.cview(), ddv2.view(), dgrad2.view()));
  }
}

TEST_CASE_TEMPLATE("hypergradient_transfer: listed rows only, zero transfers write without reading", T, float, double) {
  if (!have_device()) return;
  random_source rng(352);
  const index n = 7, P = 513, batch = 3;
  const T eta = T(0.3), nan = std::numeric_limits<T>::quiet_NaN();
  auto dv0 = output<T>(n, P, 2);
  auto grad0 = output<T>(n, P, 1);
  rng.fill(dv0);
  rng.fill(grad0);
  for (index j = 0; j < P; ++j) dv0(4, j) = grad0(4, j) = dv0(6, j) = grad0(6, j) = nan;  // never touched
  const auto sources = rng.filled<T>(batch, P, P + 2);  // NaN padding
  // Rows 3 (transfer + source), 0 (transfer, no source), 4 (zero transfer + source), 6 (zero
  // transfer, no source), 1 (transfer, source at weight 0); rows 2 and 5 unlisted.
  const std::vector<index> state_rows{3, 0, 4, 6, 1};
  const std::vector<T> transfers{T(0.9), T(0.01), T(-0.27), T(0.997), T(0.5), T(-0.25), T(0.125), T(2), 0, 0, 0, 0,
                                 0,      0,       0,        0,        T(1.5), T(0.5),  T(-1),   T(0.75)};
  const std::vector<index> source_rows{2, -1, 0, -1, 1};
  const std::vector<T> weights{T(7), T(99), T(3.5), T(99), T(0)};
  const index count = static_cast<index>(state_rows.size());
  const device_array<index> dstate(state_rows), dsource_rows(source_rows);
  const device_array<T> dtransfers(transfers), dweights(weights);
  const device_matrix<T> dsources(sources);

  auto dv = dv0, grad = grad0;
  CHECK(cpu::hypergradient_transfer(count, state_rows.data(), transfers.data(), source_rows.data(), weights.data(), eta,
                                    sources.cview(), dv.view(), grad.view()));
  device_matrix<T> ddv(dv0), dgrad(grad0);
  CHECK(cuda::hypergradient_transfer(count, dstate.data(), dtransfers.data(), dsource_rows.data(), dweights.data(), eta,
                                     dsources.cview(), ddv.view(), dgrad.view()));
  const auto got_dv = ddv.to_host(), got_grad = dgrad.to_host();
  check_close(got_dv, dv, device_tol<T>);
  check_close(got_grad, grad, device_tol<T>);
  bool unlisted_untouched = true;
  for (const index r : {index{2}, index{5}})
    for (index j = 0; j < P; ++j)
      unlisted_untouched = unlisted_untouched && got_dv(r, j) == dv0(r, j) && got_grad(r, j) == grad0(r, j);
  CHECK(unlisted_untouched);

  // count = 0 writes nothing; a NaN read through a non-zero transfer is reported.
  device_matrix<T> none_dv(dv0), none_grad(grad0);
  CHECK(cuda::hypergradient_transfer(0, dstate.data(), dtransfers.data(), dsource_rows.data(), dweights.data(), eta,
                                     dsources.cview(), none_dv.view(), none_grad.view()));
  CHECK(identical(none_dv.to_host(), dv0));
  const device_array<index> nan_row(std::vector<index>{4});
  device_matrix<T> bad_dv(dv0), bad_grad(grad0);
  CHECK_FALSE(cuda::hypergradient_transfer(1, nan_row.data(), dtransfers.data(), dsource_rows.data(), dweights.data(),
                                           eta, dsources.cview(), bad_dv.view(), bad_grad.view()));
}

TEST_CASE_TEMPLATE("hypergradient_update and hypergradient_transfer depart from recurrence.hpp by rounding only", T,
                   float, double) {
  if (!have_device()) return;
  // The allowance is tests/support/recurrence_reference.hpp's (FMA contraction, blocking).
  const index rows = 9, cols = 1031, batch = 4;
  const auto in = random_recurrence_inputs<T>(rows, cols, batch, 353);
  const device_array<T> dhv(in.hv), dsources(in.sources), dweights(in.weights), dtransfers(in.transfers);
  const device_array<index> dsource_rows(in.source_rows), dstate_rows(in.state_rows);
  const matrix_view<const T> sources(dsources.data(), batch, cols);
  for (const bool with_hessian : {false, true})
    for (const bool with_sources : {false, true}) {
      CAPTURE(with_hessian);
      CAPTURE(with_sources);
      const auto want = expected_update(in, with_hessian, with_sources);
      device_array<T> dv(in.dv), grad(in.grad);
      CHECK(cuda::hypergradient_update(in.p, in.lambda, in.eta,
                                       with_hessian ? matrix_view<const T>(dhv.data(), rows, cols) : matrix_view<const T>{},
                                       with_sources ? dsource_rows.data() : nullptr,
                                       with_sources ? dweights.data() : nullptr, sources,
                                       matrix_view<T>(dv.data(), rows, cols), matrix_view<T>(grad.data(), rows, cols)));
      CHECK(recurrence_departure(dv.to_host(), want.dv, want.dv_allowance, cols, "dv") == "");
      CHECK(recurrence_departure(grad.to_host(), want.grad, want.grad_allowance, cols, "grad") == "");
    }
  const auto want = expected_transfer(in);
  device_array<T> dv(in.dv), grad(in.grad);
  CHECK(cuda::hypergradient_transfer(dstate_rows.size(), dstate_rows.data(), dtransfers.data(), dsource_rows.data(),
                                     dweights.data(), in.eta, sources, matrix_view<T>(dv.data(), rows, cols),
                                     matrix_view<T>(grad.data(), rows, cols)));
  CHECK(recurrence_departure(dv.to_host(), want.dv, want.dv_allowance, cols, "dv") == "");
  CHECK(recurrence_departure(grad.to_host(), want.grad, want.grad_allowance, cols, "grad") == "");
}

// ---- activations ------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("activations: forward, backward, tangent (k blocks), second backward with and without r_in", T,
                   float, double) {
  if (!have_device()) return;
  random_source rng(361);
  const index batch = 6, cols = 41, k = 3;
  for (activation f : all_activations) {
    CAPTURE(name_of(f));
    const auto in = pre_activations<T>(rng, batch, cols);
    const device_matrix<T> din(in);
    const auto out0 = output<T>(batch, cols);
    auto out = out0;
    cpu::activation_forward(f, in.cview(), out.view());
    device_matrix<T> dout(out0);
    cuda::activation_forward(f, din.cview(), dout.view());
    check_close(dout.to_host(), out, device_tol<T>);

    // The derivatives read the stored output: both backends get cpu's, so they see equal inputs.
    const device_matrix<T> stored(out);
    const auto d_out = rng.filled<T>(batch, cols, cols + 1);
    const auto r_in = rng.filled<T>(k * batch, cols, cols + 1);
    const auto r_d_out = rng.filled<T>(k * batch, cols, cols + 2);
    const device_matrix<T> dd_out(d_out), dr_in(r_in), dr_d_out(r_d_out);

    const auto d_in0 = output<T>(batch, cols);
    auto d_in = d_in0;
    cpu::activation_backward(f, in.cview(), out.cview(), d_out.cview(), d_in.view());
    device_matrix<T> dd_in(d_in0);
    cuda::activation_backward(f, din.cview(), stored.cview(), dd_out.cview(), dd_in.view());
    check_close(dd_in.to_host(), d_in, device_tol<T>);

    const auto r_out0 = output<T>(k * batch, cols);
    auto r_out = r_out0;
    cpu::activation_tangent(f, in.cview(), out.cview(), r_in.cview(), r_out.view());
    device_matrix<T> dr_out(r_out0);
    cuda::activation_tangent(f, din.cview(), stored.cview(), dr_in.cview(), dr_out.view());
    check_close(dr_out.to_host(), r_out, device_tol<T>);

    for (bool with_r_in : {true, false}) {
      CAPTURE(with_r_in);
      const auto r_d_in0 = output<T>(k * batch, cols);
      auto r_d_in = r_d_in0;
      cpu::activation_second_backward(f, in.cview(), out.cview(), d_out.cview(),
                                      with_r_in ? r_in.cview() : matrix_view<const T>(), r_d_out.cview(), r_d_in.view());
      device_matrix<T> dr_d_in(r_d_in0);
      cuda::activation_second_backward(f, din.cview(), stored.cview(), dd_out.cview(),
                                       with_r_in ? dr_in.cview() : matrix_view<const T>(), dr_d_out.cview(),
                                       dr_d_in.view());
      check_close(dr_d_in.to_host(), r_d_in, device_tol<T>);
    }
  }
}

// ---- losses -----------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("softmax_cross_entropy: probabilities and losses, also for logits of ±1000", T, float, double) {
  if (!have_device()) return;
  random_source rng(371);
  const index rows = 37, cols = 10;
  auto logits = rng.filled<T>(rows, cols, cols + 2, -4, 4);  // NaN padding
  // Rows 0–4: the huge logits of cpu's test (exp(±1000) overflows float and double).
  const double huge[5][3] = {{1000, -1000, 0}, {1000, -1000, 0}, {-1000, -1000, -1000}, {1000, 1000, -1000},
                             {-1000, 999, 1000}};
  for (index b = 0; b < 5; ++b)
    for (index c = 0; c < cols; ++c) logits(b, c) = c < 3 ? T(huge[b][c]) : T(-1000);
  std::vector<label_type> labels;
  for (index b = 0; b < rows; ++b) labels.push_back(static_cast<label_type>((3 * b + 1) % cols));
  labels[0] = 0;
  labels[2] = 2;
  const device_array<label_type> dlabels(labels);
  const device_matrix<T> dlogits(logits);

  const auto p0 = output<T>(rows, cols);
  auto p = p0;
  std::vector<T> losses(static_cast<std::size_t>(rows) + 1, T(sentinel));
  auto want_losses = losses;
  cpu::softmax_cross_entropy(logits.cview(), labels.data(), p.view(), vector_view<T>(want_losses.data(), rows));
  device_matrix<T> dp(p0);
  device_array<T> dlosses(losses);
  cuda::softmax_cross_entropy(dlogits.cview(), dlabels.data(), dp.view(), vector_view<T>(dlosses.data(), rows));
  check_close(dp.to_host(), p, device_tol<T>);
  const auto got_losses = dlosses.to_host();
  CHECK(got_losses[rows] == T(sentinel));
  for (index b = 0; b < rows; ++b) {  // each loss to relative accuracy, however large
    CAPTURE(b);
    CHECK(std::isfinite(got_losses[b]));
    CHECK(std::fabs(real(got_losses[b]) - real(want_losses[b])) <=
          device_tol<T> * std::max<real>(1, std::fabs(real(want_losses[b]))));
  }
  CHECK(got_losses[1] == T(2000));  // exp(1000 - 1000) next to exp(-2000): (1000 - -1000) + log 1
}

TEST_CASE_TEMPLATE("softmax_cross_entropy_gradient and _hessian_product (k = 1, 3)", T, float, double) {
  if (!have_device()) return;
  random_source rng(372);
  const index batch = 23, cols = 10;
  const auto p = probabilities<T>(rng, batch, cols);
  std::vector<label_type> labels;
  for (index b = 0; b < batch; ++b) labels.push_back(static_cast<label_type>((7 * b + 3) % cols));
  const device_array<label_type> dlabels(labels);
  const device_matrix<T> dp(p);
  for (double scale : {1.0, 0.2, -3.0}) {
    CAPTURE(scale);
    const auto d0 = output<T>(batch, cols);
    auto d = d0;
    cpu::softmax_cross_entropy_gradient(p.cview(), labels.data(), T(scale), d.view());
    device_matrix<T> dd(d0);
    cuda::softmax_cross_entropy_gradient(dp.cview(), dlabels.data(), T(scale), dd.view());
    check_close(dd.to_host(), d, device_tol<T>);
  }
  for (index k : {1, 3}) {
    CAPTURE(k);
    const auto r = rng.filled<T>(k * batch, cols, cols + 2);
    const auto out0 = output<T>(k * batch, cols);
    auto out = out0;
    cpu::softmax_cross_entropy_hessian_product(p.cview(), r.cview(), T(0.25), out.view());
    const device_matrix<T> dr(r);
    device_matrix<T> dout(out0);
    cuda::softmax_cross_entropy_hessian_product(dp.cview(), dr.cview(), T(0.25), dout.view());
    check_close(dout.to_host(), out, device_tol<T>);
  }
}

TEST_CASE_TEMPLATE("squared_error and its gradient, with explicit targets and with one-hot labels", T, float, double) {
  if (!have_device()) return;
  random_source rng(373);
  const index rows = 29, cols = 7;
  const auto z = rng.filled<T>(rows, cols, cols + 1, -2, 2);  // NaN padding
  const auto targets = rng.filled<T>(rows, cols, cols + 2, -2, 2);
  std::vector<label_type> labels;
  for (index b = 0; b < rows; ++b) labels.push_back(static_cast<label_type>((5 * b + 2) % cols));
  const device_array<label_type> dlabels(labels);
  const device_matrix<T> dz(z), dtargets(targets);
  for (bool one_hot : {false, true}) {
    CAPTURE(one_hot);
    const matrix_view<const T> t = one_hot ? matrix_view<const T>() : targets.cview();
    const matrix_view<const T> dt = one_hot ? matrix_view<const T>() : dtargets.cview();
    std::vector<T> losses(static_cast<std::size_t>(rows) + 1, T(sentinel));
    auto want = losses;
    cpu::squared_error(z.cview(), labels.data(), t, vector_view<T>(want.data(), rows));
    device_array<T> dlosses(losses);
    cuda::squared_error(dz.cview(), dlabels.data(), dt, vector_view<T>(dlosses.data(), rows));
    check_close(dlosses.to_host(), want, rows, device_tol<T>);

    const auto d0 = output<T>(rows, cols);
    auto d = d0;
    cpu::squared_error_gradient(z.cview(), labels.data(), t, T(-0.5), d.view());
    device_matrix<T> dd(d0);
    cuda::squared_error_gradient(dz.cview(), dlabels.data(), dt, T(-0.5), dd.view());
    check_close(dd.to_host(), d, device_tol<T>);
  }
}

TEST_CASE_TEMPLATE("count_correct: first maximum on ties, exactly cpu's count", T, float, double) {
  if (!have_device()) return;
  const index rows = 6, cols = 3;
  host_matrix<T> z(rows, cols, cols + 1);  // NaN padding must not take part
  const double v[rows][cols] = {{1, 3, 3}, {1, 3, 3}, {5, 5, 5}, {-1, 2, 0}, {0, 0, 7}, {-3, -2, -2}};
  for (index b = 0; b < rows; ++b)
    for (index c = 0; c < cols; ++c) z(b, c) = T(v[b][c]);
  //                                    correct  wrong (tie)  correct  correct  wrong  correct
  const std::vector<label_type> labels{1, 2, 0, 1, 0, 1};
  const device_matrix<T> dz(z);
  const device_array<label_type> dlabels(labels);
  CHECK(cuda::count_correct(dz.cview(), dlabels.data()) == 4);
  CHECK(cuda::count_correct(dz.cview().row_block(0, 0), dlabels.data()) == 0);
  device_matrix<T> mz(z);
  CHECK(cuda::count_correct(mz.view(), dlabels.data()) == 4);

  // Many rows of small integers (ties in most rows), against cpu.
  random_source rng(381);
  const index many = 5000, classes = 10;
  host_matrix<T> logits(many, classes, classes + 1);
  std::vector<label_type> many_labels;
  for (index b = 0; b < many; ++b) {
    for (index c = 0; c < classes; ++c) logits(b, c) = T(std::floor(rng.uniform<double>(0, 4)));
    many_labels.push_back(static_cast<label_type>(std::floor(rng.uniform<double>(0, classes))));
  }
  const index want = cpu::count_correct(logits.cview(), many_labels.data());
  const device_matrix<T> dlogits(logits);
  const device_array<label_type> dmany(many_labels);
  CHECK(cuda::count_correct(dlogits.cview(), dmany.data()) == want);
  CHECK(want > 0);
}

} // namespace hydra::test
