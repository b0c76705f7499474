// The consumer's CUDA program: main.cpp's softmax regression on hydra::cuda, through the installed
// package's hydra::cuda target. Without a device it says so and succeeds (it was built and linked,
// which is what a machine without a GPU can check).
#include <hydra/backend/cuda.cuh>

#include <cstdio>

#include "softmax_problem.hpp"

int main() {
  if (hydra::cuda::device_count() == 0) {
    std::printf("consumer_cuda: built and linked; not run: no CUDA device (%s)\n",
                hydra::cuda::no_device_reason().c_str());
    return 0;
  }
  const double accuracy = train_softmax_regression<hydra::cuda>();
  std::printf("consumer_cuda: installed hydra trained softmax regression on the GPU to accuracy %.3f\n", accuracy);
  return accuracy >= 0.95 ? 0 : 1;
}
