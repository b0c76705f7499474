// docs/backend.md's example: containers on hydra::cpu, explicit host <-> backend copies, and two
// calls of the backend's gemm (C = alpha * op(A) * op(B) + beta * C). The host copy of the result
// is read as a 2 x 2 array through a zero-copy xtensor adaptor (hydra/data/xtensor.hpp). Exits 0
// only when the result is right.

#include <cstdio>
#include <vector>

#include <hydra/backend/concepts.hpp>
#include <hydra/backend/cpu.hpp>
#include <hydra/core/tensor.hpp>
#include <hydra/data/xtensor.hpp>

int main() {
  using T = double;
  using B = hydra::cpu;  // any hydra::Backend: the code below never names Eigen
  static_assert(hydra::Backend<B>);

  // A (2 × 3) and Bm (3 × 2), row-major, copied from host memory into backend memory.
  const std::vector<T> a_host{1, 2, 3, 4, 5, 6};
  const std::vector<T> b_host{7, 8, 9, 10, 11, 12};
  const auto a = hydra::matrix<T, B>::from_host(a_host, 2, 3);
  const auto bm = hydra::matrix<T, B>::from_host(b_host, 3, 2);
  hydra::matrix<T, B> c(2, 2);

  // C = A·Bm (beta = 0: C is not read), then C += Bmᵀ·Aᵀ = (A·Bm)ᵀ, so C = A·Bm + (A·Bm)ᵀ.
  B::gemm(hydra::transpose::no, hydra::transpose::no, T(1), a.view(), bm.view(), T(0), c.view());
  B::gemm(hydra::transpose::yes, hydra::transpose::yes, T(1), bm.view(), a.view(), T(1), c.view());

  // Back to the host, explicitly, and compare with the hand-computed result
  // A·Bm = [58 64; 139 154] (all values are exact in double).
  const std::vector<T> result = c.to_host();
  const std::vector<T> expected{116, 203, 203, 308};
  std::printf("%s: C = A*B + (A*B)^T =\n", B::name);
  const auto C = hydra::as_xtensor(hydra::matrix_view<const T>(result.data(), c.rows(), c.cols()));  // no copy
  for (hydra::index r = 0; r < c.rows(); ++r) std::printf("  %6.1f %6.1f\n", C(r, 0), C(r, 1));
  if (result != expected) {
    std::printf("unexpected result\n");
    return 1;
  }
  return 0;
}
