#pragma once
// The backends by name, without their definitions: what a layer, model, loss or optimizer header
// needs for its default template argument. Including this does not pull in Eigen or CUDA; the
// code that instantiates a type on a backend includes that backend's header
// (hydra/backend/cpu.hpp, hydra/backend/cuda.cuh, or hydra/hydra.hpp for the CPU).

namespace hydra {

struct cpu;   // hydra/backend/cpu.hpp: Eigen on the host
struct cuda;  // hydra/backend/cuda.cuh: CUDA runtime + cuBLAS (nvcc only)

/// The backend used where none is named: Dense<double> is Dense<double, default_backend>.
using default_backend = cpu;

} // namespace hydra
