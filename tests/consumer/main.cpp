// A downstream program built against the installed hydra package: trains softmax regression on a
// tiny separable problem through <hydra/hydra.hpp> and returns non-zero unless it learns it.
#include <cstdio>

#include "softmax_problem.hpp"

int main() {
  const double accuracy = train_softmax_regression<hydra::cpu>();
  std::printf("consumer: installed hydra trained softmax regression to accuracy %.3f\n", accuracy);
  return accuracy >= 0.95 ? 0 : 1;
}
