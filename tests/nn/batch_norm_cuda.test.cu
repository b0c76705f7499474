// BatchNorm2d on hydra::cuda against the same layer on hydra::cpu: every pass (forward, the
// running-statistics update, backward, per-sample gradients, tangent with and without r_x, second
// backward with and without r_x), both modes, on identical inputs, with strided (column-block)
// views. The layer's derivatives themselves are checked against finite differences on the CPU
// (batch_norm.test.cpp). The emulated build (docs/backend.md, "Host emulation") runs this
// everywhere; with a real device and no emulation, it is skipped without one.
//
// Tolerance, relative to each output's largest magnitude: double 1e-12, float 1e-5. The two
// backends compute the same formulas; they differ in the order of the channel sums (a reduction
// tree of 256 threads against Eigen's vectorised sums, over n = B·H·W ≤ 150 values here) and in
// FMA contraction, a few hundred ε of accumulated rounding at most, while a wrong index or
// coefficient is off by O(1).

#include <doctest/doctest.h>

#include <hydra/backend/cuda.cuh>

#include <span>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/core/tensor.hpp"
#include "hydra/nn/batch_norm.hpp"
#include "support/cuda_device.hpp"
#include "support/finite_difference.hpp"

namespace hydra::test {
namespace {

template <class T>
struct tolerance_of {
  static constexpr double value = 1e-12;
};
template <>
struct tolerance_of<float> {
  static constexpr double value = 1e-5;
};

/// Host inputs of every pass; each matrix is a column block (offset 1) of a buffer two columns
/// wider, as a DenseNet block passes its inputs.
struct inputs {
  index C = 3, H = 5, W = 6, B = 5, k = 3;
  [[nodiscard]] index D() const { return C * H * W; }
  std::vector<double> x, w, g, dir, r_x, r_g, hv0;
};

inputs make_inputs() {
  inputs in;
  const auto wide = [](index rows, index cols, unsigned seed) {
    return normal_vector(static_cast<std::size_t>(rows * (cols + 2)), seed);
  };
  in.x = wide(in.B, in.D(), 1);
  for (auto& v : in.x) v = 1.5 * v + 0.5;
  in.w = normal_vector(static_cast<std::size_t>(2 * in.C), 2, 0.4);
  for (index c = 0; c < in.C; ++c) in.w[static_cast<std::size_t>(c)] += 1;
  in.g = wide(in.B, in.D(), 3);
  in.dir = wide(in.k, 2 * in.C, 4);
  in.r_x = wide(in.k * in.B, in.D(), 5);
  in.r_g = wide(in.k * in.B, in.D(), 6);
  in.hv0 = wide(in.k, 2 * in.C, 7);
  return in;
}

/// A host buffer in backend memory, viewed as its column block [1, 1 + cols) of rows × (cols + 2).
template <class T, class B>
struct block {
  index rows, cols;
  vector<T, B> storage;
  block(const std::vector<double>& host, index rows_, index cols_)
      : rows(rows_), cols(cols_), storage(vector<T, B>::from_host(cast<T>(host))) {}
  block(index rows_, index cols_) : rows(rows_), cols(cols_), storage(rows_ * (cols_ + 2)) {}
  [[nodiscard]] matrix_view<T> view() { return {storage.data() + 1, rows, cols, cols + 2}; }
  [[nodiscard]] matrix_view<const T> cview() const { return {storage.data() + 1, rows, cols, cols + 2}; }
  /// The block's elements, row by row, as doubles.
  [[nodiscard]] std::vector<double> host() const {
    const auto all = storage.to_host();
    std::vector<double> out;
    for (index r = 0; r < rows; ++r)
      for (index c = 0; c < cols; ++c)
        out.push_back(static_cast<double>(all[static_cast<std::size_t>(r * (cols + 2) + 1 + c)]));
    return out;
  }
};

/// Every output of every pass on backend B, as host doubles, in one list.
template <class T, class B>
std::vector<std::vector<double>> run_all(const inputs& in, batch_norm_statistics mode) {
  BatchNorm2d<T, B> bn(in.C, in.H, in.W);
  const std::vector<T> mean{T(0.2), T(-0.4), T(0.1)}, var{T(0.7), T(1.6), T(0.3)};
  bn.set_running_statistics(mean, var);
  const vector<T, B> w = vector<T, B>::from_host(cast<T>(in.w));
  const block<T, B> x(in.x, in.B, in.D()), g(in.g, in.B, in.D()), dir(in.dir, in.k, 2 * in.C);
  const block<T, B> r_x(in.r_x, in.k * in.B, in.D()), r_g(in.r_g, in.k * in.B, in.D());
  block<T, B> y(in.B, in.D()), dx(in.B, in.D()), G(in.B, 2 * in.C), r_y(in.k * in.B, in.D()),
      r_y0(in.k * in.B, in.D()), r_dx(in.k * in.B, in.D());
  block<T, B> hv(in.hv0, in.k, 2 * in.C), hv_alone(in.hv0, in.k, 2 * in.C);
  vector<T, B> grad(2 * in.C);
  std::vector<std::vector<double>> out;

  bn.forward(w.data(), x.cview(), y.view());
  if (mode == batch_norm_statistics::batch) {
    bn.update_running_statistics();
    out.push_back(cast<double>(bn.running_mean()));
    out.push_back(cast<double>(bn.running_var()));
  }
  bn.set_statistics(mode);
  bn.forward(w.data(), x.cview(), y.view());
  bn.backward(w.data(), x.cview(), y.cview(), g.cview(), dx.view(), grad.data());
  bn.per_sample_gradients(x.cview(), g.cview(), G.view());
  bn.tangent(w.data(), dir.cview(), x.cview(), y.cview(), r_x.cview(), r_y.view());
  bn.tangent(w.data(), dir.cview(), x.cview(), y.cview(), {}, r_y0.view());
  bn.second_backward(w.data(), dir.cview(), x.cview(), y.cview(), r_x.cview(), g.cview(), r_g.cview(), r_dx.view(),
                     hv.view());
  bn.second_backward(w.data(), dir.cview(), x.cview(), y.cview(), {}, g.cview(), r_g.cview(), {}, hv_alone.view());
  for (const auto* m : {&y, &dx, &G, &r_y, &r_y0, &r_dx, &hv, &hv_alone}) out.push_back(m->host());
  out.push_back(cast<double>(grad.to_host()));
  return out;
}

} // namespace

TEST_CASE_TEMPLATE("BatchNorm2d on cuda equals BatchNorm2d on cpu in every pass, both modes", T, float, double) {
  if (!have_device()) return;
  const auto in = make_inputs();
  for (const auto mode : {batch_norm_statistics::batch, batch_norm_statistics::running}) {
    CAPTURE(mode == batch_norm_statistics::batch);
    const auto want = run_all<T, cpu>(in, mode);
    const auto got = run_all<T, cuda>(in, mode);
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      CAPTURE(i);
      CHECK(relative_difference(got[i], want[i]) <= tolerance_of<T>::value);
    }
  }
}

} // namespace hydra::test
