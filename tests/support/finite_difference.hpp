#pragma once
// Independent references for derivative tests: central finite differences of a scalar or vector
// function of the parameters, in double precision, and the relative error used by every test.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <random>
#include <vector>

namespace hydra::test {

/// ‖a − b‖₂ / max(‖b‖₂, floor): one number per comparison, scale-free.
inline double relative_error(const std::vector<double>& a, const std::vector<double>& b, double floor = 1e-300) {
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    norm += b[i] * b[i];
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), floor);
}

/// ∂f/∂w_i ≈ (f(w + h e_i) − f(w − h e_i)) / 2h for every i. Truncation O(h²), rounding O(ε/h).
inline std::vector<double> central_gradient(const std::function<double(const std::vector<double>&)>& f,
                                            std::vector<double> w, double h = 1e-6) {
  std::vector<double> g(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double saved = w[i];
    w[i] = saved + h;
    const double up = f(w);
    w[i] = saved - h;
    const double down = f(w);
    w[i] = saved;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

/// Directional derivative of a vector function: (G(w + h v) − G(w − h v)) / 2h.
inline std::vector<double> central_directional(const std::function<std::vector<double>(const std::vector<double>&)>& G,
                                               const std::vector<double>& w, const std::vector<double>& v,
                                               double h = 1e-5) {
  std::vector<double> up = w, down = w;
  for (std::size_t i = 0; i < w.size(); ++i) {
    up[i] += h * v[i];
    down[i] -= h * v[i];
  }
  auto gu = G(up);
  const auto gd = G(down);
  for (std::size_t i = 0; i < gu.size(); ++i) gu[i] = (gu[i] - gd[i]) / (2 * h);
  return gu;
}

/// The explicit Hessian from loss values alone (no gradient code involved):
/// H_ij ≈ [f(w+he_i+he_j) − f(w+he_i−he_j) − f(w−he_i+he_j) + f(w−he_i−he_j)] / 4h², row-major n × n.
inline std::vector<double> second_differences_hessian(const std::function<double(const std::vector<double>&)>& f,
                                                      std::vector<double> w, double h = 1e-4) {
  const std::size_t n = w.size();
  std::vector<double> H(n * n);
  auto at = [&](std::size_t i, double si, std::size_t j, double sj) {
    const double wi = w[i], wj = w[j];
    w[i] += si * h;
    w[j] += sj * h;
    const double v = f(w);
    w[i] = wi;
    w[j] = wj;
    return v;
  };
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = i; j < n; ++j) {
      const double v = (at(i, 1, j, 1) - at(i, 1, j, -1) - at(i, -1, j, 1) + at(i, -1, j, -1)) / (4 * h * h);
      H[i * n + j] = H[j * n + i] = v;
    }
  return H;
}

/// n standard-normal draws (tests only; the library has its own portable generator).
inline std::vector<double> normal_vector(std::size_t n, unsigned seed, double scale = 1.0) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<double> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

template <class To, class From>
std::vector<To> cast(const std::vector<From>& v) {
  return std::vector<To>(v.begin(), v.end());
}

} // namespace hydra::test
