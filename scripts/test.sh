#!/usr/bin/env bash
# Builds and runs every test: the command that CI runs (through .ci/run).
#   1. Release build in $HYDRA_BUILD_DIR/release with tests, examples and benchmarks; ctest
#      (including the "consumer" test: install, then find_package(hydra) from a separate project).
#      Where the CUDA toolkit is (/usr/local/cuda), the CUDA tests, examples and benchmarks are
#      built too; without a GPU their device checks report "[skipped] no CUDA device".
#   2. AddressSanitizer + UndefinedBehaviorSanitizer build in $HYDRA_BUILD_DIR/asan (tests only,
#      CPU only: nvcc's device code is outside the sanitizers' reach); ctest without the consumer
#      test.
#   3. scripts/fuzz.sh 60: the libFuzzer targets of tests/fuzz/ (clang 14), 60 s each, in
#      $HYDRA_BUILD_DIR/fuzz.
# HYDRA_BUILD_DIR defaults to "build" (relative paths are relative to the repository root).
# Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_root=${HYDRA_BUILD_DIR:-build}
jobs=2  # CI has 2 cores

step="start"
section() {
  step=$*
  printf '\n==================== %s ====================\n' "$*"
}
trap 'printf "\ntest.sh: FAILED during: %s\n" "$step" >&2' ERR

section "Dependencies"
./scripts/install-deps.sh

section "Release: configure ($build_root/release)"
cmake -S . -B "$build_root/release" -DCMAKE_BUILD_TYPE=Release -DHYDRA_NATIVE_ARCH=ON \
  -DHYDRA_BUILD_TESTS=ON -DHYDRA_BUILD_EXAMPLES=ON -DHYDRA_BUILD_BENCHMARKS=ON
section "Release: build"
cmake --build "$build_root/release" --parallel "$jobs"
section "Release: tests"
ctest --test-dir "$build_root/release" --output-on-failure -j "$jobs"

section "Sanitizers (ASan+UBSan): configure ($build_root/asan)"
cmake -S . -B "$build_root/asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHYDRA_SANITIZE=ON \
  -DHYDRA_BUILD_TESTS=ON -DHYDRA_BUILD_EXAMPLES=OFF -DHYDRA_BUILD_BENCHMARKS=OFF -DHYDRA_CUDA=OFF
section "Sanitizers: build"
cmake --build "$build_root/asan" --parallel "$jobs"
section "Sanitizers: tests (without the consumer test)"
ctest --test-dir "$build_root/asan" --output-on-failure -j "$jobs" -E consumer

# Fuzzing: the readers and the model-spec parser under libFuzzer + ASan/UBSan (clang 14), a fixed
# 60 s per target (docs/building.md, "Fuzzing").
section "Fuzzing (scripts/fuzz.sh 60)"
./scripts/fuzz.sh 60

section "All tests passed (Release and sanitizer builds, fuzzing)"
