// paper_approximation with --device cuda: approximation.cpp compiled by nvcc with its hydra::cuda
// branch switched on (examples/paper/approximation.cmake builds paper_approximation from this file
// where CMake finds the CUDA toolkit).
#define HYDRA_PAPER_WITH_CUDA
#include "approximation.cpp"
