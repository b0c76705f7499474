#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang 14 and runs each for a fixed time:
#   scripts/fuzz.sh [SECONDS]      (default 60 per target, run one after the other)
# The build is $HYDRA_BUILD_DIR/fuzz (HYDRA_BUILD_DIR defaults to "build"). Each target starts
# from a copy of its seed corpus (tests/fuzz/corpus/<target>/) in $HYDRA_BUILD_DIR/fuzz/runs/,
# so the inputs libFuzzer adds never land in the repository. Limits: -rss_limit_mb=2048 and
# -malloc_limit_mb=2048, so an allocation sized from a corrupt header is a finding too. The
# scratch file each target writes its inputs to is on /dev/shm where that is writable.
# Exits non-zero if any target found a crash, a sanitizer report, an exception other than a
# hydra::error, or an allocation over the limit; the reproducer's path is printed (run the target
# on it to see the report again: $HYDRA_BUILD_DIR/fuzz/tests/fuzz/<target> <reproducer>).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds == 0)); then
  echo "usage: scripts/fuzz.sh [SECONDS]   (a positive whole number of seconds per target)" >&2
  exit 2
fi
build=${HYDRA_BUILD_DIR:-build}/fuzz
targets=(fuzz_npy fuzz_idx fuzz_cifar fuzz_archive fuzz_model_spec fuzz_cli_arguments)
jobs=2  # CI has 2 cores

printf '\n==================== Fuzzing: configure (%s) ====================\n' "$build"
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHYDRA_FUZZ=ON \
  -DHYDRA_BUILD_TESTS=ON -DHYDRA_BUILD_EXAMPLES=OFF -DHYDRA_BUILD_BENCHMARKS=OFF -DHYDRA_CUDA=OFF
printf '\n==================== Fuzzing: build ====================\n'
cmake --build "$build" --parallel "$jobs" --target "${targets[@]}"

runs=$build/runs
# The targets write every input to a scratch file: on tmpfs they run about 20 times faster than
# on a disk-backed /tmp.
if [[ -d /dev/shm && -w /dev/shm ]]; then scratch=/dev/shm; else scratch=${TMPDIR:-/tmp}; fi
failed=()
for target in "${targets[@]}"; do
  printf '\n==================== Fuzzing: %s for %s s ====================\n' "$target" "$seconds"
  work=$runs/$target
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp tests/fuzz/corpus/"$target"/* "$work/corpus/"
  dict=()
  [[ -f tests/fuzz/$target.dict ]] && dict=("-dict=tests/fuzz/$target.dict")
  status=0
  TMPDIR=$scratch "$build/tests/fuzz/$target" "$work/corpus" "${dict[@]}" -max_total_time="$seconds" \
    -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" >"$work/log" 2>&1 || status=$?
  tail -n 25 "$work/log"
  reproducers=("$work"/artifacts/*)
  if ((status != 0)) || [[ -e ${reproducers[0]} ]]; then
    failed+=("$target")
    echo "fuzz.sh: $target FAILED (exit status $status); log: $work/log"
    for r in "${reproducers[@]}"; do [[ -e $r ]] && echo "fuzz.sh: reproducer: $r"; done
  fi
done

printf '\n==================== Fuzzing: summary ====================\n'
if ((${#failed[@]} > 0)); then
  echo "fuzz.sh: findings in: ${failed[*]}"
  exit 1
fi
echo "fuzz.sh: no findings in ${targets[*]} (${seconds} s each)"
