// The main job's example with --device cuda: fashion_mnist_attribution.cpp, compiled by nvcc with
// its hydra::cuda branch switched on (target fashion_mnist_attribution_cuda, where CMake finds the
// CUDA toolkit). The main job itself builds the .cpp with g++ only, so it needs no toolkit.
#define HYDRA_EXAMPLE_WITH_CUDA
#include "fashion_mnist_attribution.cpp"
