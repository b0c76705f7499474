#!/usr/bin/env bash
# Runs the CPU default of every experiment of the paper (docs/experiments.md), one after the other,
# and draws their figures:  ./scripts/paper.sh [RESULTS_DIR] [EXPERIMENT ...]
#   RESULTS_DIR  where each experiment writes its folder (default: results)
#   EXPERIMENT   approximation, inspection, cleaning, clustering (default: all four)
# Each program's own --paper run is the paper's protocol; see docs/experiments.md for the commands.
# Set-up output goes to stderr; each run's output is also kept in RESULTS_DIR/<experiment>.log.
# HYDRA_BUILD_DIR defaults to "build" (relative paths are relative to the repository root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

results=${1:-results}
shift || true
experiments=("$@")
[[ ${#experiments[@]} -gt 0 ]] || experiments=(approximation inspection cleaning clustering)
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
  "$build_dir/examples/paper/paper_$experiment" --out "$results/$experiment" 2>&1 | tee "$results/$experiment.log"
  /usr/bin/python3 scripts/plot_paper.py "$results/$experiment"
  summary+=("$(printf '%-14s %5d s   %s' "$experiment" $((SECONDS - start)) "$results/$experiment")")
done
printf '\n==================== summary ====================\n'
printf '%s\n' "${summary[@]}"
