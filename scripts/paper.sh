#!/usr/bin/env bash
# Runs the CPU default of every experiment of the paper (docs/experiments.md), one after the other,
# and draws their figures:  ./scripts/paper.sh [RESULTS_DIR] [EXPERIMENT ...]
#   RESULTS_DIR  where each experiment writes its folder (default: results)
#   EXPERIMENT   approximation, inspection, cleaning, clustering, cifar10 (default: the first four,
#                and cifar10 when HYDRA_CIFAR10_DIR names the cifar-10-batches-bin folder of the
#                official CIFAR-10 binary distribution, which our machines do not have)
# Each program's own --paper run is the paper's protocol; see docs/experiments.md for the commands.
# Set-up output goes to stderr; each run's output is also kept in RESULTS_DIR/<experiment>.log.
# HYDRA_BUILD_DIR defaults to "build" (relative paths are relative to the repository root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

results=${1:-results}
shift || true
experiments=("$@")
if [[ ${#experiments[@]} -eq 0 ]]; then
  experiments=(approximation inspection cleaning clustering)
  [[ -n ${HYDRA_CIFAR10_DIR:-} ]] && experiments+=(cifar10)
fi
for experiment in "${experiments[@]}"; do
  if [[ $experiment == cifar10 && -z ${HYDRA_CIFAR10_DIR:-} ]]; then
    echo "paper.sh: cifar10 needs HYDRA_CIFAR10_DIR, the cifar-10-batches-bin folder of the official binary" \
      "distribution (https://www.cs.toronto.edu/~kriz/cifar.html)" >&2
    exit 1
  fi
done
build_dir=${HYDRA_BUILD_DIR:-build}/release

{
  ./scripts/install-deps.sh
  # Same configuration as scripts/test.sh, so that the two share one build folder.
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DHYDRA_NATIVE_ARCH=ON \
    -DHYDRA_BUILD_TESTS=ON -DHYDRA_BUILD_EXAMPLES=ON -DHYDRA_BUILD_BENCHMARKS=ON
  cmake --build "$build_dir" --parallel 2 --target "${experiments[@]/#/paper_}"
} >&2

mkdir -p "$results"
summary=()
for experiment in "${experiments[@]}"; do
  printf '\n==================== %s ====================\n' "$experiment"
  start=$SECONDS
  extra=()
  [[ $experiment == cifar10 ]] && extra=(--cifar-dir "$HYDRA_CIFAR10_DIR")
  "$build_dir/examples/paper/paper_$experiment" --out "$results/$experiment" "${extra[@]}" 2>&1 |
    tee "$results/$experiment.log"
  /usr/bin/python3 scripts/plot_paper.py "$results/$experiment"
  summary+=("$(printf '%-14s %5d s   %s' "$experiment" $((SECONDS - start)) "$results/$experiment")")
done
printf '\n==================== summary ====================\n'
printf '%s\n' "${summary[@]}"
