// Dense: the flat parameter layout contract (weight out × in row-major, then bias; PyTorch's
// parameters_to_vector order) and forward values computed by hand.

#include <doctest/doctest.h>

#include <vector>

#include "hydra/backend/cpu.hpp"
#include "hydra/nn/dense.hpp"
#include "hydra/nn/models.hpp"

namespace hydra::test {

TEST_CASE_TEMPLATE("Dense reads weight out × in row-major, then bias", T, float, double) {
  Dense<T> layer(3, 2);
  CHECK(layer.parameter_count() == 8);
  // W = [[1, 2, 3], [4, 5, 6]], b = [0.5, -1]
  const std::vector<T> w{1, 2, 3, 4, 5, 6, T(0.5), -1};
  const std::vector<T> x{1, 0, -1,   // sample 0
                         2, 1, 0};   // sample 1
  std::vector<T> y(4);
  layer.forward(w.data(), matrix_view<const T>(x.data(), 2, 3), matrix_view<T>(y.data(), 2, 2));
  // y0 = [1 − 3 + 0.5, 4 − 6 − 1] = [−1.5, −3];  y1 = [2 + 2 + 0.5, 8 + 5 − 1] = [4.5, 12]
  CHECK(y == std::vector<T>{T(-1.5), -3, T(4.5), 12});
}

TEST_CASE("an Mlp lays its layers out one after another, weight then bias") {
  Mlp<double> model(784, {256, 128}, 10);
  // PyTorch: Linear(784,256), Linear(256,128), Linear(128,10) → 200960 + 32896 + 1290
  CHECK(model.parameter_count() == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
  const auto& offsets = model.parameter_offsets();
  REQUIRE(offsets.size() == 6);  // Dense, ReLU, Dense, ReLU, Dense + the end
  CHECK(offsets[1] == 784 * 256 + 256);
  CHECK(offsets[2] == offsets[1]);  // the activation owns no parameters
  CHECK(offsets[3] == offsets[2] + 256 * 128 + 128);
}

TEST_CASE("Dense rejects non-positive sizes") {
  CHECK_THROWS_AS(Dense<double>(0, 3), invalid_argument);
  CHECK_THROWS_WITH(Dense<double>(4, -1), doctest::Contains("4 -> -1"));
  CHECK_THROWS_WITH_AS(Dense<double>(6, 4611686018427387904), doctest::Contains("more parameters than an index holds"),
                       invalid_argument);
  CHECK(Dense<double>(1, 4611686018427387903).parameter_count() == 9223372036854775806);  // 2·(2^62 − 1)
}

} // namespace hydra::test

namespace hydra::test {

TEST_CASE("initialize follows PyTorch's nn.Linear ranges and is reproducible from the seed") {
  Mlp<double> model(100, {25}, 4);
  const index P = model.parameter_count();
  std::vector<double> a(static_cast<std::size_t>(P)), b(a.size()), c(a.size());
  model.initialize(vector_view<double>(a.data(), P), 7);
  model.initialize(vector_view<double>(b.data(), P), 7);
  model.initialize(vector_view<double>(c.data(), P), 8);
  CHECK(a == b);
  CHECK(a != c);
  const auto& off = model.parameter_offsets();
  double max_first = 0, max_second = 0;
  for (index i = off[0]; i < off[1]; ++i) max_first = std::max(max_first, std::abs(a[static_cast<std::size_t>(i)]));
  for (index i = off[2]; i < off[3]; ++i) max_second = std::max(max_second, std::abs(a[static_cast<std::size_t>(i)]));
  CHECK(max_first <= 0.1);               // 1/√100
  CHECK(max_first > 0.09);               // 2525 uniform draws come close to the bound
  CHECK(max_second <= 0.2);              // 1/√25
  CHECK(max_second > 0.15);              // 104 draws
}

} // namespace hydra::test
