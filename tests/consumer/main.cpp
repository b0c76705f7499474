// Uses the installed hydra through its public entry header; returns non-zero on a wrong result.
// TEMPORARY: <hydra/hydra.hpp> does not exist yet; switch these two includes to it once it does.
#include <hydra/backend/cpu.hpp>
#include <hydra/core/tensor.hpp>

#include <cstdio>
#include <utility>

int main() {
  hydra::matrix<double, hydra::cpu> m(2, 3);
  hydra::cpu::fill(1.0, m.view());
  const double sum = hydra::cpu::sum(std::as_const(m).flat());
  if (sum != 6.0) {
    std::fprintf(stderr, "consumer: sum of a 2 x 3 matrix of ones is %g, expected 6\n", sum);
    return 1;
  }
  std::printf("consumer: hydra works from its installed package (sum = %g)\n", sum);
  return 0;
}
