// hydra-attribute with --device cuda: the tool's one source, hydra_attribute.cpp, compiled by nvcc
// with its hydra::cuda branch switched on. CMake builds this file instead of the .cpp when the CUDA
// toolkit is found (examples/CMakeLists.txt); there is nothing else here, so the two builds cannot
// drift apart.
#define HYDRA_ATTRIBUTE_WITH_CUDA
#include "hydra_attribute.cpp"
