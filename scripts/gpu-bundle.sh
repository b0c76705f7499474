#!/usr/bin/env bash
# Packs the GPU checks for a GPU machine that has the CUDA toolkit and driver but none of hydra's
# other dependencies and no network (the machines the `device` tool lends). Run it here, where the
# toolkit and scripts/install-deps.sh's packages are; no GPU is needed. It builds the device test
# binaries, hydra-attribute with its CLI test, hydra_bench_cuda and the main job's CUDA build
# (fashion_mnist_attribution_cuda) for sm_90 (H100, H200) without -march=native (the GPU
# machine's CPU is not this one), then fills BUNDLE (default .gpu, ignored by git) with
#   bin/   those binaries;
#   lib/   the shared libraries they load that are neither glibc's nor the CUDA toolkit's (the GPU
#          machine brings its own toolkit, matching its driver);
#   data/  Fashion-MNIST's four files, for the epoch benchmark and the main job (without them the
#          benchmark uses synthetic data and the main job is not run).
# There: scripts/gpu-check.sh --bundle BUNDLE [OUTPUT_DIR]. With the device tool:
#   run(command="scripts/gpu-check.sh --bundle .gpu $OUT", carry=[".gpu"], timeout_s=...)
# Usage: scripts/gpu-bundle.sh [BUNDLE]   (build folder: ${HYDRA_BUILD_DIR:-build}/gpu-bundle)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bundle=${1:-.gpu}
build=${HYDRA_BUILD_DIR:-build}/gpu-bundle
data=/usr/share/datasets/fashion-mnist

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DHYDRA_NATIVE_ARCH=OFF -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DHYDRA_BUILD_TESTS=ON -DHYDRA_BUILD_EXAMPLES=ON -DHYDRA_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$build" --parallel "$(nproc)" --target test_backend_cuda test_hypergradient_cuda_pipeline \
  test_hypergradient_cuda_lean_checkpoint hydra_attribute test_cli_hydra_attribute hydra_bench_cuda \
  fashion_mnist_attribution_cuda

rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib" "$bundle/data"
cp "$build"/tests/test_backend_cuda "$build"/tests/test_hypergradient_cuda_pipeline \
  "$build"/tests/test_hypergradient_cuda_lean_checkpoint "$build"/examples/hydra-attribute \
  "$build"/examples/test_cli_hydra_attribute "$build"/benchmarks/hydra_bench_cuda \
  "$build"/examples/fashion_mnist_attribution_cuda "$bundle/bin/"
for binary in "$bundle"/bin/*; do ldd "$binary"; done | awk '$3 ~ /^\// { print $3 }' | sort -u |
  grep -Ev '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*)\.so|/usr/local/cuda|/libcuda\.so' |
  xargs -r cp -L -t "$bundle/lib/"
for file in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
  if [[ -f $data/$file ]]; then cp "$data/$file" "$bundle/data/"; fi
done
echo "gpu-bundle: $(du -sh "$bundle" | cut -f1) in $bundle (the device tool carries at most 64 MiB with the tree):"
ls -l "$bundle"/bin "$bundle"/lib "$bundle"/data
