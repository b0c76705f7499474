// hydra_bench_cuda's main: Google Benchmark's, except that without a CUDA device it says why on
// stderr and exits 77 before running anything, so that CTest reports the smoke test as skipped by
// its return code (SKIP_RETURN_CODE), never by matching its output.
#include <benchmark/benchmark.h>

#include <cstdio>

#include "device.cuh"

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  using device = hydra::bench::cuda_bench::device;
  if (device::device_count() == 0) {
    std::fprintf(stderr, "[skipped] no CUDA device: %s\n", device::no_device_reason().c_str());
    return 77;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
