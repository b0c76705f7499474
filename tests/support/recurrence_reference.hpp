#pragma once
// What a backend's recurrence kernels must compute, element by element, from recurrence.hpp's
// scalar functions (hypergradient_update: recurrence::step; hypergradient_transfer:
// recurrence::transfer / start), and the rounding a backend may add on top: it may block,
// vectorise or contract a·b + c into one FMA, so each result is allowed
//   k·ε·(sum of the magnitudes of the terms it adds)
// with k = 4 (three additions and a product each round once) and ε the type's epsilon; the
// hypergradient also inherits η times its momentum derivative's allowance. A kernel that leaves
// out, doubles or reorders a term (e.g. uses the old dv in Eq. 36) misses by O(|term|), which
// for the random inputs here is at least 1e-4 of the terms' size, far above that bound.

#include <algorithm>
#include <cmath>
#include <limits>
#include <iomanip>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "hydra/core/types.hpp"
#include "hydra/hypergradient/recurrence.hpp"

namespace hydra::test {

/// Random inputs of one recurrence kernel call, row-major host arrays.
template <class T>
struct recurrence_inputs {
  index rows = 0, cols = 0, batch = 0;
  T p{}, lambda{}, eta{};
  std::vector<T> dv, grad, hv, sources;  // rows × cols (hv), batch × cols (sources)
  std::vector<index> source_rows;        // per state row; < 0: not in the batch
  std::vector<T> weights;                // per state row
  // the lazy transfer: per listed row (state_rows), its 2 × 2 transfer (zero: never touched)
  std::vector<index> state_rows;
  std::vector<T> transfers;
};

template <class T>
recurrence_inputs<T> random_recurrence_inputs(index rows, index cols, index batch, unsigned seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal;
  const auto fill = [&](std::size_t n) {
    std::vector<T> v(n);
    for (auto& x : v) x = static_cast<T>(normal(engine));
    return v;
  };
  recurrence_inputs<T> in;
  in.rows = rows, in.cols = cols, in.batch = batch;
  in.p = T(0.9), in.lambda = T(0.013), in.eta = T(0.037);
  const auto n = static_cast<std::size_t>(rows * cols);
  in.dv = fill(n), in.grad = fill(n), in.hv = fill(n), in.sources = fill(static_cast<std::size_t>(batch * cols));
  for (index r = 0; r < rows; ++r) {
    const bool in_batch = r % 3 != 1;
    in.source_rows.push_back(in_batch ? (r * 2) % batch : -1);
    in.weights.push_back(in_batch ? static_cast<T>(1.5 + r) : T(0));
  }
  // Every other row listed, in reverse; the last listed row fresh (zero transfer).
  for (index r = rows - 1; r >= 0; r -= 2) {
    in.state_rows.push_back(r);
    const auto m = fill(4);
    in.transfers.insert(in.transfers.end(), m.begin(), m.end());
  }
  std::fill(in.transfers.end() - 4, in.transfers.end(), T(0));
  return in;
}

/// Expected values and the allowance per element.
template <class T>
struct recurrence_expectation {
  std::vector<T> dv, grad, dv_allowance, grad_allowance;
};

/// hypergradient_update's expected result per element: recurrence::step with the terms present.
template <class T>
recurrence_expectation<T> expected_update(const recurrence_inputs<T>& in, bool with_hessian, bool with_sources) {
  constexpr T eps = std::numeric_limits<T>::epsilon();
  const recurrence::step_coefficients<T> c{in.p, in.lambda, in.eta};
  recurrence_expectation<T> out{in.dv, in.grad, in.dv, in.grad};
  for (index r = 0; r < in.rows; ++r)
    for (index j = 0; j < in.cols; ++j) {
      const auto e = static_cast<std::size_t>(r * in.cols + j);
      const index s = with_sources ? in.source_rows[static_cast<std::size_t>(r)] : -1;
      const T h = in.hv[e];
      const T ws = s >= 0 ? in.weights[static_cast<std::size_t>(r)] * in.sources[static_cast<std::size_t>(s * in.cols + j)] : T(0);
      T d = in.dv[e], g = in.grad[e];
      if (with_hessian && s >= 0) recurrence::step(c, d, g, h, ws);
      else if (with_hessian) recurrence::step(c, d, g, h);
      else if (s >= 0) recurrence::step(c, d, g, ws);
      else recurrence::step(c, d, g);
      out.dv[e] = d, out.grad[e] = g;
      const T size = std::abs(in.p * in.dv[e]) + std::abs(in.lambda * in.grad[e]) + (with_hessian ? std::abs(h) : T(0)) +
                     std::abs(ws);
      out.dv_allowance[e] = 4 * eps * size;
      out.grad_allowance[e] = in.eta * out.dv_allowance[e] + 4 * eps * (std::abs(in.grad[e]) + std::abs(in.eta * d));
    }
  return out;
}

/// hypergradient_transfer's expected result: the listed rows by recurrence::transfer / start
/// (with the gradient term where the row has a source), the others unchanged (allowance 0).
template <class T>
recurrence_expectation<T> expected_transfer(const recurrence_inputs<T>& in) {
  constexpr T eps = std::numeric_limits<T>::epsilon();
  recurrence_expectation<T> out{in.dv, in.grad, std::vector<T>(in.dv.size()), std::vector<T>(in.dv.size())};
  for (std::size_t k = 0; k < in.state_rows.size(); ++k) {
    const index r = in.state_rows[k], s = in.source_rows[k];
    const T* m = in.transfers.data() + 4 * k;
    const T w = s >= 0 ? in.weights[k] : T(0);
    for (index j = 0; j < in.cols; ++j) {
      const auto e = static_cast<std::size_t>(r * in.cols + j);
      const T src = s >= 0 ? in.sources[static_cast<std::size_t>(s * in.cols + j)] : T(0);
      const bool fresh = recurrence::is_fresh(m);
      T d = in.dv[e], g = in.grad[e];
      if (fresh && s < 0) recurrence::start(d, g);
      else if (fresh) recurrence::start(w, in.eta, src, d, g);
      else if (s < 0) recurrence::transfer(m, d, g);
      else recurrence::transfer(m, w, in.eta, src, d, g);
      out.dv[e] = d, out.grad[e] = g;
      const T d0 = fresh ? T(0) : in.dv[e], g0 = fresh ? T(0) : in.grad[e];
      out.dv_allowance[e] = 4 * eps * (std::abs(m[0] * d0) + std::abs(m[1] * g0) + std::abs(w * src));
      out.grad_allowance[e] = 5 * eps * (std::abs(m[2] * d0) + std::abs(m[3] * g0) + std::abs(in.eta * w * src));
    }
  }
  return out;
}

/// The first element outside its allowance, as "dv[r, j] = got, recurrence.hpp: want ± allowance";
/// empty when every element is within.
template <class T>
std::string recurrence_departure(const std::vector<T>& got, const std::vector<T>& want, const std::vector<T>& allowance,
                                 index cols, const char* what) {
  for (std::size_t e = 0; e < want.size(); ++e)
    if (!(std::abs(got[e] - want[e]) <= allowance[e])) {
      std::ostringstream out;
      out << std::setprecision(17) << what << "[" << static_cast<index>(e) / cols << ", " << static_cast<index>(e) % cols
          << "] = " << got[e] << ", recurrence.hpp: " << want[e] << " ± " << allowance[e];
      return out.str();
    }
  return {};
}

} // namespace hydra::test
