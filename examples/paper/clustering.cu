// paper_clustering with --device cuda: clustering.cpp compiled by nvcc with its hydra::cuda branch
// switched on (examples/paper/clustering.cmake builds paper_clustering from this file where CMake
// finds the CUDA toolkit).
#define HYDRA_PAPER_WITH_CUDA
#include "clustering.cpp"
