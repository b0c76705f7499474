// A downstream program built against the installed hydra package: trains softmax regression on a
// tiny separable problem through <hydra/hydra.hpp> and returns non-zero unless it learns it; and
// reads a matrix through the optional <hydra/data/xtensor.hpp>, whose dependency the package
// exports.
#include <cstdio>

#include <hydra/data/xtensor.hpp>

#include "softmax_problem.hpp"

int main() {
  const double accuracy = train_softmax_regression<hydra::cpu>();
  std::printf("consumer: installed hydra trained softmax regression to accuracy %.3f\n", accuracy);
  const double values[] = {1, 2, 3, 4, 5, 6};
  const auto a = hydra::as_xtensor(hydra::matrix_view<const double>(values, 2, 3));
  const bool adapted = a(1, 2) == 6 && a.shape()[0] == 2 && a.shape()[1] == 3;
  std::printf("consumer: <hydra/data/xtensor.hpp> adapts a 2 x 3 view: %s\n", adapted ? "yes" : "no");
  return accuracy >= 0.95 && adapted ? 0 : 1;
}
