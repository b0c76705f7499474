#!/usr/bin/env bash
# The main job: installs what is missing, builds the example in Release, and runs it with the
# arguments given here, e.g. ./scripts/main.sh --help
# Set-up output goes to stderr, so stdout carries only the job's own output.
# HYDRA_BUILD_DIR defaults to "build" (relative paths are relative to the repository root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir=${HYDRA_BUILD_DIR:-build}/release
target=fashion_mnist_attribution

{
  ./scripts/install-deps.sh
  # Same configuration as scripts/test.sh, so that the two share one build folder.
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DHYDRA_NATIVE_ARCH=ON \
    -DHYDRA_BUILD_TESTS=ON -DHYDRA_BUILD_EXAMPLES=ON -DHYDRA_BUILD_BENCHMARKS=ON
  cmake --build "$build_dir" --target "$target" --parallel 2
} >&2

exec "$build_dir/examples/$target" "$@"
