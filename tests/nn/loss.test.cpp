// Losses on network outputs: values by hand, stability for huge logits, and gradient and Hessian
// products with respect to the outputs against central differences.

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/nn/loss.hpp"
#include "support/finite_difference.hpp"

namespace hydra::test {
namespace {
template <class L>
double mean_value(L& loss, const std::vector<double>& z, index rows, index cols, batch_targets<double> y) {
  std::vector<double> out(static_cast<std::size_t>(rows));
  loss.values(matrix_view<const double>(z.data(), rows, cols), y, vector_view<double>(out.data(), rows));
  double s = 0;
  for (double v : out) s += v;
  return s / static_cast<double>(rows);
}

/// ∂(mean loss)/∂z and its directional derivative against central differences (scale = 1/B).
template <class L>
void check_output_derivatives(L& loss, index rows, index cols, batch_targets<double> y) {
  const auto z = normal_vector(static_cast<std::size_t>(rows * cols), 5, 2.0);
  const double scale = 1.0 / static_cast<double>(rows);
  auto f = [&](const std::vector<double>& v) { return mean_value(loss, v, rows, cols, y); };
  std::vector<double> d(z.size());
  loss.gradient(matrix_view<const double>(z.data(), rows, cols), y, scale, matrix_view<double>(d.data(), rows, cols));
  CHECK(relative_error(d, central_gradient(f, z)) <= 1e-8);

  const index k = 3;
  const auto r = normal_vector(static_cast<std::size_t>(k * rows * cols), 6);
  std::vector<double> hr(r.size());
  loss.hessian_product(matrix_view<const double>(z.data(), rows, cols), y, scale,
                       matrix_view<const double>(r.data(), k * rows, cols), matrix_view<double>(hr.data(), k * rows, cols));
  auto G = [&](const std::vector<double>& v) {
    std::vector<double> g(v.size());
    loss.gradient(matrix_view<const double>(v.data(), rows, cols), y, scale, matrix_view<double>(g.data(), rows, cols));
    return g;
  };
  for (index j = 0; j < k; ++j) {
    const std::vector<double> rj(r.begin() + j * rows * cols, r.begin() + (j + 1) * rows * cols);
    const std::vector<double> hj(hr.begin() + j * rows * cols, hr.begin() + (j + 1) * rows * cols);
    CHECK(relative_error(hj, central_directional(G, z, rj)) <= 1e-8);
  }
}
} // namespace

TEST_CASE("softmax cross-entropy values by hand") {
  SoftmaxCrossEntropy<double> loss;
  const std::vector<label_type> labels{0, 2};
  // Row 0: z = (0, 0, 0) → −log(1/3). Row 1: z = (1, 2, 3), y = 2 → log(e + e² + e³) − 3.
  const std::vector<double> z{0, 0, 0, 1, 2, 3};
  std::vector<double> out(2);
  loss.values(matrix_view<const double>(z.data(), 2, 3), {labels.data(), {}}, vector_view<double>(out.data(), 2));
  CHECK(out[0] == doctest::Approx(std::log(3.0)).epsilon(1e-15));
  CHECK(out[1] == doctest::Approx(std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3).epsilon(1e-15));
}

TEST_CASE_TEMPLATE("softmax cross-entropy stays finite for huge logits", T, float, double) {
  SoftmaxCrossEntropy<T> loss;
  const std::vector<label_type> labels{1, 0};
  const std::vector<T> z{1000, -1000, 0, 1000};  // 2 classes
  std::vector<T> out(2), d(4);
  loss.values(matrix_view<const T>(z.data(), 2, 2), {labels.data(), {}}, vector_view<T>(out.data(), 2));
  CHECK(out[0] == doctest::Approx(2000));  // logsumexp = 1000, minus z_1 = −1000
  CHECK(out[1] == doctest::Approx(1000));
  loss.gradient(matrix_view<const T>(z.data(), 2, 2), {labels.data(), {}}, T(1), matrix_view<T>(d.data(), 2, 2));
  CHECK(d == std::vector<T>{1, -1, -1, 1});
}

TEST_CASE("softmax cross-entropy derivatives with respect to the logits") {
  SoftmaxCrossEntropy<double> loss;
  const std::vector<label_type> labels{0, 3, 1, 2};
  check_output_derivatives(loss, 4, 4, {labels.data(), {}});
}

TEST_CASE("mean squared error: PyTorch's MSELoss scaling, one-hot labels and real targets") {
  MeanSquaredError<double> loss;
  const std::vector<label_type> labels{1};
  const std::vector<double> z{0.5, 0.5, 2};
  std::vector<double> out(1);
  // One-hot (0, 1, 0): (0.25 + 0.25 + 4) / 3
  loss.values(matrix_view<const double>(z.data(), 1, 3), {labels.data(), {}}, vector_view<double>(out.data(), 1));
  CHECK(out[0] == doctest::Approx(4.5 / 3).epsilon(1e-15));
  const std::vector<double> targets{1, 1, 1};
  loss.values(matrix_view<const double>(z.data(), 1, 3), {labels.data(), matrix_view<const double>(targets.data(), 1, 3)},
              vector_view<double>(out.data(), 1));
  CHECK(out[0] == doctest::Approx((0.25 + 0.25 + 1) / 3).epsilon(1e-15));

  const std::vector<label_type> many{0, 1, 2};
  check_output_derivatives(loss, 3, 3, {many.data(), {}});
  const auto real = normal_vector(6, 8);
  check_output_derivatives(loss, 3, 2, {many.data(), matrix_view<const double>(real.data(), 3, 2)});
}

} // namespace hydra::test
