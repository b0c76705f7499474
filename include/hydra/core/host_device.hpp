#pragma once
// HYDRA_HOST_DEVICE marks a function that every backend runs: on the host, and on a CUDA device
// when nvcc compiles it. Such functions hold the arithmetic that must be written once for all
// backends (the hypergradient recurrence, the pooling argmax).

#if defined(__CUDACC__)
#define HYDRA_HOST_DEVICE __host__ __device__
#else
#define HYDRA_HOST_DEVICE
#endif
