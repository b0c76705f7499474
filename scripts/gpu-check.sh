#!/usr/bin/env bash
# The GPU half of hydra's checks, for a machine with an NVIDIA GPU (CI has none; scripts/test.sh
# runs everything else). Builds only the CUDA targets, then:
#   1. runs the device tests (tests/**/*.test.cu and the CLI's --device comparison) and fails if
#      any reports itself skipped: on a GPU machine "no CUDA device" is a failure;
#   2. runs compute-sanitizer memcheck on the three device test binaries, where it is installed;
#   3. runs the CUDA benchmarks of docs/performance.md ("GPU") into JSON files.
# Usage: scripts/gpu-check.sh [OUTPUT_DIR]   (default build-gpu/results; benchmarks: GPU_BENCH=0 skips)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-build-gpu/results}
build=build-gpu
jobs=$(nproc)
mkdir -p "$out"

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv | tee "$out/gpu.csv"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DHYDRA_BUILD_TESTS=ON -DHYDRA_BUILD_EXAMPLES=ON \
  -DHYDRA_BUILD_BENCHMARKS=ON >"$out/configure.log"
cmake --build "$build" --parallel "$jobs" --target test_backend_cuda test_hypergradient_cuda_pipeline \
  test_hypergradient_cuda_lean_checkpoint hydra_attribute test_cli_hydra_attribute hydra_bench_cuda >"$out/build.log"

# 1. Device tests: a skip here means the GPU was not found, which is a failure on this machine.
ctest --test-dir "$build" -R '^(backend_cuda|hypergradient_cuda_pipeline|hypergradient_cuda_lean_checkpoint|cli_hydra_attribute)$' \
  --output-on-failure -V 2>&1 | tee "$out/tests.log"
if grep -q '\[skipped\] no CUDA device' "$out/tests.log"; then
  echo "gpu-check: a device test says there is no CUDA device" >&2
  exit 1
fi

# 2. memcheck, where the toolkit has compute-sanitizer.
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if [[ -x "$sanitizer" ]]; then
  for t in test_backend_cuda test_hypergradient_cuda_pipeline test_hypergradient_cuda_lean_checkpoint; do
    "$sanitizer" --tool memcheck --error-exitcode 1 "$build/tests/$t" 2>&1 | tail -20 | tee "$out/memcheck-$t.log"
  done
else
  echo "gpu-check: compute-sanitizer not found; memcheck not run" | tee "$out/memcheck.log"
fi

# 3. Benchmarks (docs/performance.md, "GPU").
if [[ "${GPU_BENCH:-1}" == 1 ]]; then
  bench="$build/benchmarks/hydra_bench_cuda"
  "$bench" --benchmark_filter='BM_Cuda(Update|Transfer|Copy)' --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=true --benchmark_out="$out/recurrence.json"
  "$bench" --benchmark_filter='Hvp|Sgemm' --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
    --benchmark_out="$out/hvp.json"
  "$bench" --benchmark_filter='LeNetEpoch' --benchmark_out="$out/epoch.json"
fi
echo "gpu-check: done; results in $out"
