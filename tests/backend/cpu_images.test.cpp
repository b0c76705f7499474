// hydra::cpu, part 3: the image kernels. im2col/col2im against a plain gather loop over every
// geometry corner (padding wider than the kernel reach, strides that skip inputs), and the pooling
// kernels against plain window loops in long double, for float and double, on strided views (NaN in
// the input padding, a sentinel in the output padding), with overlapping windows, borders that do
// not fill a window, ties and the k-block layout of the R-passes. The layers' derivatives are
// checked inside small models in tests/nn.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/reference.hpp"
#include "hydra/backend/cpu.hpp"

namespace hydra::test {
namespace {

constexpr double sentinel = 777.25;

// ---- im2col / col2im ----------------------------------------------------------------------

TEST_CASE_TEMPLATE("im2col gathers receptive fields and col2im is its adjoint", T, float, double) {
  random_source rng(10);
  const conv_geometry shapes[] = {
      {1, 28, 28, 5, 5, 1, 2},  // LeNet's conv1
      {2, 5, 7, 3, 2, 2, 1},    // rectangular kernel, stride 2
      {3, 6, 5, 3, 3, 3, 4},    // padding wider than the kernel: whole output rows read zeros
      {1, 4, 4, 1, 1, 2, 0},    // a 1 × 1 kernel that skips every other input
  };
  for (const auto& g : shapes) {
    CAPTURE(g.stride);
    CAPTURE(g.padding);
    const index batch = 2, oh_n = g.out_height(), ow_n = g.out_width(), pixels = g.out_pixels();
    const auto x = rng.filled<T>(batch, g.input_size(), g.input_size() + 1);
    host_matrix<T> cols(g.patch_size(), batch * pixels, batch * pixels + 2, T(sentinel));
    cpu::im2col(g, x.cview(), cols.view());
    ref_matrix expected(g.patch_size(), batch * pixels);
    for (index c = 0; c < g.channels; ++c)
      for (index i = 0; i < g.kernel_h; ++i)
        for (index j = 0; j < g.kernel_w; ++j)
          for (index b = 0; b < batch; ++b)
            for (index oh = 0; oh < oh_n; ++oh)
              for (index ow = 0; ow < ow_n; ++ow) {
                const index h = oh * g.stride - g.padding + i, w = ow * g.stride - g.padding + j;
                if (h >= 0 && h < g.height && w >= 0 && w < g.width)
                  expected((c * g.kernel_h + i) * g.kernel_w + j, b * pixels + oh * ow_n + ow) =
                      x(b, (c * g.height + h) * g.width + w);
              }
    CHECK(relative_error(cols, expected) == 0.0);  // copies and zeros, bit-exact
    CHECK(cols.padding_is(T(sentinel)));

    // <im2col(x), d> = <x, col2im(d)> for a random d.
    const auto d = rng.filled<T>(g.patch_size(), batch * pixels, batch * pixels + 1);
    host_matrix<T> back(batch, g.input_size(), g.input_size() + 2, T(sentinel));
    cpu::col2im(g, d.cview(), back.view());
    CHECK(back.padding_is(T(sentinel)));
    real left = 0, right = 0, scale = 0;
    for (index r = 0; r < g.patch_size(); ++r)
      for (index q = 0; q < batch * pixels; ++q) {
        left += real(cols(r, q)) * real(d(r, q));
        scale += std::fabs(real(cols(r, q)) * real(d(r, q)));
      }
    for (index b = 0; b < batch; ++b)
      for (index q = 0; q < g.input_size(); ++q) right += real(x(b, q)) * real(back(b, q));
    CHECK(static_cast<double>(std::fabs(left - right) / scale) <= tol<T>);
  }
}

// ---- pooling ---------------------------------------------------------------------------------

const pool_geometry geometries[] = {
    {2, 4, 4, 2, 2},  // LeNet's 2 × 2 / 2
    {3, 5, 7, 3, 2},  // overlapping windows; the last row/column of a 7-wide image is dropped
    {1, 5, 5, 2, 3},  // stride > window: some inputs belong to no window
    {2, 3, 3, 3, 1},  // one window covers the whole image
};

/// Flat offset (within a row) of x[c, h, w].
index at(const pool_geometry& g, index c, index h, index w) { return (c * g.height + h) * g.width + w; }
index out_at(const pool_geometry& g, index c, index oh, index ow) { return (c * g.out_height() + oh) * g.out_width() + ow; }

/// The offsets of window (c, oh, ow) in row-major window order.
std::vector<index> window(const pool_geometry& g, index c, index oh, index ow) {
  std::vector<index> cells;
  for (index i = 0; i < g.window; ++i)
    for (index j = 0; j < g.window; ++j) cells.push_back(at(g, c, oh * g.stride + i, ow * g.stride + j));
  return cells;
}

/// The first cell holding the largest value (std::max_element's rule).
template <class T>
index first_argmax(const host_matrix<T>& x, index r, const std::vector<index>& cells) {
  return *std::max_element(cells.begin(), cells.end(), [&](index a, index b) { return x(r, a) < x(r, b); });
}

template <class F>
void for_each_window(const pool_geometry& g, F&& f) {
  for (index c = 0; c < g.channels; ++c)
    for (index oh = 0; oh < g.out_height(); ++oh)
      for (index ow = 0; ow < g.out_width(); ++ow) f(out_at(g, c, oh, ow), window(g, c, oh, ow));
}

} // namespace

TEST_CASE_TEMPLATE("max_pool_forward/avg_pool_forward equal window loops", T, float, double) {
  random_source rng(11);
  for (const auto& g : geometries) {
    CAPTURE(g.window);
    CAPTURE(g.stride);
    const index rows = 3;
    const auto x = rng.filled<T>(rows, g.input_size(), g.input_size() + 2);
    host_matrix<T> max_y(rows, g.output_size(), g.output_size() + 1, T(sentinel));
    host_matrix<T> avg_y(rows, g.output_size(), g.output_size() + 1, T(sentinel));
    cpu::max_pool_forward(g, x.cview(), max_y.view());
    cpu::avg_pool_forward(g, x.cview(), avg_y.view());
    ref_matrix max_ref(rows, g.output_size()), avg_ref(rows, g.output_size());
    for (index r = 0; r < rows; ++r)
      for_each_window(g, [&](index o, const std::vector<index>& cells) {
        max_ref(r, o) = x(r, first_argmax(x, r, cells));
        for (index cell : cells) avg_ref(r, o) += real(x(r, cell));
        avg_ref(r, o) /= real(cells.size());
      });
    CHECK(relative_error(max_y, max_ref) == 0.0);  // a copy, bit-exact
    CHECK(relative_error(avg_y, avg_ref) <= tol<T>);
    CHECK(max_y.padding_is(T(sentinel)));
    CHECK(avg_y.padding_is(T(sentinel)));
  }
}

TEST_CASE_TEMPLATE("max pooling routes tangents and gradients through the first argmax, for k blocks", T, float,
                   double) {
  random_source rng(12);
  for (const auto& g : geometries) {
    CAPTURE(g.window);
    CAPTURE(g.stride);
    const index batch = 2, k = 3;
    auto x = rng.filled<T>(batch, g.input_size(), g.input_size() + 1);
    // Ties: row 1, channel 0 is constant, so each of its windows must route to its first cell.
    for (index h = 0; h < g.height; ++h)
      for (index w = 0; w < g.width; ++w) x(1, at(g, 0, h, w)) = T(0.5);
    const auto r_x = rng.filled<T>(k * batch, g.input_size(), g.input_size() + 3);
    const auto d_y = rng.filled<T>(k * batch, g.output_size(), g.output_size() + 2);
    host_matrix<T> r_y(k * batch, g.output_size(), g.output_size() + 1, T(sentinel));
    host_matrix<T> d_x(k * batch, g.input_size(), g.input_size() + 1, T(sentinel));
    cpu::max_pool_tangent(g, x.cview(), r_x.cview(), r_y.view());
    cpu::max_pool_backward(g, x.cview(), d_y.cview(), d_x.view());

    ref_matrix r_y_ref(k * batch, g.output_size()), d_x_ref(k * batch, g.input_size());
    for (index j = 0; j < k; ++j)
      for (index b = 0; b < batch; ++b)
        for_each_window(g, [&](index o, const std::vector<index>& cells) {
          const index from = first_argmax(x, b, cells);
          r_y_ref(j * batch + b, o) = r_x(j * batch + b, from);
          d_x_ref(j * batch + b, from) += real(d_y(j * batch + b, o));
        });
    CHECK(relative_error(r_y, r_y_ref) == 0.0);
    CHECK(relative_error(d_x, d_x_ref) <= tol<T>);
    CHECK(r_y.padding_is(T(sentinel)));
    CHECK(d_x.padding_is(T(sentinel)));
    // The tie rule itself, independent of first_argmax: window (0, 0) of the constant channel takes
    // its top-left cell.
    for (index j = 0; j < k; ++j) CHECK(r_y(j * batch + 1, out_at(g, 0, 0, 0)) == r_x(j * batch + 1, at(g, 0, 0, 0)));
  }
}

TEST_CASE_TEMPLATE("avg_pool_backward is the adjoint of avg_pool_forward", T, float, double) {
  random_source rng(13);
  for (const auto& g : geometries) {
    CAPTURE(g.window);
    const index rows = 4;
    const auto x = rng.filled<T>(rows, g.input_size(), g.input_size() + 1);
    const auto d_y = rng.filled<T>(rows, g.output_size(), g.output_size() + 2);
    host_matrix<T> d_x(rows, g.input_size(), g.input_size() + 1, T(sentinel));
    cpu::avg_pool_backward(g, d_y.cview(), d_x.view());
    ref_matrix d_x_ref(rows, g.input_size());
    for (index r = 0; r < rows; ++r)
      for_each_window(g, [&](index o, const std::vector<index>& cells) {
        for (index cell : cells) d_x_ref(r, cell) += real(d_y(r, o)) / real(cells.size());
      });
    CHECK(relative_error(d_x, d_x_ref) <= tol<T>);
    CHECK(d_x.padding_is(T(sentinel)));
    // <avg(x), d_y> = <x, avgᵀ(d_y)>
    host_matrix<T> y(rows, g.output_size());
    cpu::avg_pool_forward(g, x.cview(), y.view());
    real left = 0, right = 0, scale = 0;
    for (index r = 0; r < rows; ++r) {
      for (index o = 0; o < g.output_size(); ++o) left += real(y(r, o)) * real(d_y(r, o));
      for (index i = 0; i < g.input_size(); ++i) {
        right += real(x(r, i)) * real(d_x(r, i));
        scale += std::fabs(real(x(r, i)) * real(d_x(r, i)));
      }
    }
    CHECK(static_cast<double>(std::fabs(left - right) / scale) <= tol<T>);
  }
}

TEST_CASE("max pooling propagates a NaN in its window") {
  const pool_geometry g{1, 2, 2, 2, 2};
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (index where = 0; where < 4; ++where) {
    CAPTURE(where);
    std::vector<double> x{1, 2, 3, 4};
    x[static_cast<std::size_t>(where)] = nan;
    double y = 0;
    cpu::max_pool_forward(g, matrix_view<const double>(x.data(), 1, 4), matrix_view<double>(&y, 1, 1));
    CHECK(std::isnan(y));
  }
}

} // namespace hydra::test
