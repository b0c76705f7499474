#!/usr/bin/env bash
# The GPU half of hydra's checks, for a machine with an NVIDIA GPU (CI has none; scripts/test.sh
# runs everything else):
#   1. the device tests (tests/**/*.test.cu and the CLI's --device comparison) must pass, and none
#      may report itself skipped: on a GPU machine "no CUDA device" is a failure;
#   2. the CUDA benchmarks of docs/performance.md ("GPU") into JSON files;
#   3. the main job on the GPU (fashion_mnist_attribution_cuda --device cuda, its default run on the
#      real Fashion-MNIST), where the data are;
#   4. compute-sanitizer memcheck on the three device test binaries, where it is installed (last:
#      it is the slowest, and a call cut short should lose the least).
# Every step runs even when an earlier one failed, each under a time limit, and the last lines
# printed are a table of the steps; logs and JSON go to OUTPUT_DIR. Exit status 1 if any failed.
# Usage:
#   scripts/gpu-check.sh [OUTPUT_DIR]               builds the CUDA targets in build-gpu first
#                                                   (needs hydra's Debian dependencies)
#   scripts/gpu-check.sh --bundle DIR [OUTPUT_DIR]  runs what scripts/gpu-bundle.sh packed in DIR
#                                                   (for a GPU machine with only the CUDA toolkit)
# OUTPUT_DIR defaults to build-gpu/results. GPU_STEPS chooses the steps (default "tests bench
# example memcheck"), so that a time-limited machine can take them in separate calls.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

bundle=""
if [[ "${1:-}" == --bundle ]]; then
  bundle=$(cd "${2:?--bundle needs a folder}" && pwd) || exit 1
  shift 2
fi
out=${1:-build-gpu/results}
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 1
tests=(test_backend_cuda test_hypergradient_cuda_pipeline test_hypergradient_cuda_lean_checkpoint)
steps=" ${GPU_STEPS:-tests bench example memcheck} "
summary=()
failed=0
want() { [[ $steps == *" $1 "* ]]; }
note() {  # note STEP RESULT
  summary+=("$(printf '%-44s %s' "$1" "$2")")
  [[ $2 == ok* || $2 == "not run"* ]] || failed=1
}
judge() {  # judge STEP STATUS SECONDS OK_DETAIL FAILED_DETAIL: the exit status of `timeout SECONDS …`
  case $2 in
    0) note "$1" "ok: $4" ;;
    124) note "$1" "FAILED: over ${3}s" ;;
    *) note "$1" "FAILED (exit $2): $5" ;;
  esac
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv 2>&1 |
  tee "$out/gpu.csv"

if [[ -n $bundle ]]; then
  bin=$bundle/bin test_dir=$bundle/bin cli_dir=$bundle/bin bench_dir=$bundle/bin example_dir=$bundle/bin
  data=$bundle/data
  export LD_LIBRARY_PATH=$bundle/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export HYDRA_ATTRIBUTE=$bundle/bin/hydra-attribute HYDRA_FASHION_MNIST_DIR=$bundle/data
  # A toolkit library that is elsewhere on this machine (another CUDA folder, a Python wheel).
  for lib in $(ldd "$bin/test_backend_cuda" "$bin/hydra_bench_cuda" | awk '/not found/ { print $1 }' | sort -u); do
    found=$(find /usr/local /opt /usr/lib -name "$lib" 2>/dev/null | head -1)
    if [[ -n $found ]]; then
      LD_LIBRARY_PATH=$(dirname "$found"):$LD_LIBRARY_PATH
    else
      echo "gpu-check: $lib not found on this machine" >&2
    fi
  done
else
  build="build-gpu"
  if cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release -DHYDRA_BUILD_TESTS=ON -DHYDRA_BUILD_EXAMPLES=ON \
       -DHYDRA_BUILD_BENCHMARKS=ON >"$out/configure.log" 2>&1 &&
     cmake --build $build --parallel "$(nproc)" --target "${tests[@]}" hydra_attribute test_cli_hydra_attribute \
       hydra_bench_cuda fashion_mnist_attribution_cuda >"$out/build.log" 2>&1; then
    note build ok
  else
    note build "FAILED (see build.log)"
  fi
  test_dir=$build/tests cli_dir=$build/examples bench_dir=$build/benchmarks example_dir=$build/examples
  data=/usr/share/datasets/fashion-mnist
fi

# 1. Device tests: a skip means the GPU was not found, which is a failure on this machine.
run_test() {  # run_test NAME BINARY SECONDS
  local log=$out/test-$1.log
  timeout "$3" "$2" >"$log" 2>&1
  local status=$?
  local counts
  counts=$(grep -E '^\[doctest\] (test cases|assertions)' "$log" | tr -s ' ' | tr '\n' ' ')
  if grep -q '\[skipped\]' "$log"; then
    note "test $1" "FAILED: reports no CUDA device"
  else
    judge "test $1" $status "$3" "$counts" "$counts"
  fi
}
if want tests; then
  for t in "${tests[@]}"; do run_test "$t" "$test_dir/$t" 120; done
  run_test test_cli_hydra_attribute "$cli_dir/test_cli_hydra_attribute" 120
fi

# 2. Benchmarks (docs/performance.md, "GPU").
bench() {  # bench NAME FILTER SECONDS [ARGS...]
  local name=$1 filter=$2 seconds=$3
  shift 3
  timeout "$seconds" "$bench_dir/hydra_bench_cuda" --benchmark_filter="$filter" --benchmark_out="$out/$name.json" \
    "$@" >"$out/bench-$name.log" 2>&1
  local status=$?
  local errors
  errors=$(grep -c 'ERROR OCCURRED' "$out/bench-$name.log")
  ((status == 0 && errors > 0)) && status=1
  judge "benchmark $name" $status "$seconds" "$name.json" \
    "$errors benchmarks with errors: $(grep -m1 -o "ERROR OCCURRED.*" "$out/bench-$name.log")"
}
if want bench; then
  bench recurrence 'BM_Cuda(Update|Transfer|Copy)' 240 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
  bench hvp 'Hvp|Sgemm' 180 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
  bench epoch 'LeNetEpoch' 300
fi

# 3. The main job on the GPU.
if want example; then
  if [[ -f $data/t10k-labels-idx1-ubyte.gz ]]; then
    timeout 300 "$example_dir/fashion_mnist_attribution_cuda" --device cuda --data-dir "$data" >"$out/example.log" 2>&1
    judge "main job on cuda" $? 300 "$(grep -E '^(test accuracy|total)' "$out/example.log" | tr '\n' ' ')" \
      "$(tail -1 "$out/example.log")"
  else
    note "main job on cuda" "not run: no Fashion-MNIST in $data"
  fi
fi

# 4. memcheck, where the toolkit has compute-sanitizer: last, because it is the slowest.
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
want memcheck && for t in "${tests[@]}"; do
  if [[ ! -x $sanitizer ]]; then
    note "memcheck $t" "not run: no compute-sanitizer"
    continue
  fi
  timeout 150 "$sanitizer" --tool memcheck --error-exitcode 1 "$test_dir/$t" >"$out/memcheck-$t.log" 2>&1
  status=$?  # over the limit: the log holds what it found so far
  result=$(grep -E '^========= (ERROR SUMMARY|LEAK SUMMARY)' "$out/memcheck-$t.log" | tr '\n' ' ')
  judge "memcheck $t" $status 150 "$result" "$result"
done

printf '%s\n' "" "${summary[@]}" | tee "$out/summary.txt"
echo "gpu-check: results in $out"
exit $failed
