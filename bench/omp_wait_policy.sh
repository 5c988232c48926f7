#!/usr/bin/env bash
# The FashionCNN train step (bench_train_step, batch 64) under OpenMP wait policies, on a quiet
# core pair and with a competing process pinned to core 1 (`taskset -c 1 yes`).
#   bench/omp_wait_policy.sh [BUILD_DIR] [REPETITIONS]
# Prints one line per (load, threads, policy): the median step time over REPETITIONS runs of
# Google Benchmark's BM_fashioncnn_train_step (min_time 2 s each), real and CPU time. The policies:
#   default     neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT set (libgomp spins 300000 iterations)
#   spin10k     GOMP_SPINCOUNT=10000
#   spin1k      GOMP_SPINCOUNT=1000 (the `nabla` program's default)
#   passive     OMP_WAIT_POLICY=passive (sleep at once)
#   active      OMP_WAIT_POLICY=active (spin for a long time)
# A clang build links libomp, which has no spin count; it is swept over KMP_BLOCKTIME instead:
#   default     KMP_BLOCKTIME unset (libomp waits 200 ms before it sleeps)
#   bt0, bt1    KMP_BLOCKTIME=0 (sleep at once; nabla's default), KMP_BLOCKTIME=1 (1 ms)
#   passive, active as above
set -euo pipefail
build="${1:-build}"
reps="${2:-3}"
bin="$build/bench_train_step"
[ -x "$bin" ] || { echo "build $bin first: cmake --build $build --target bench_train_step" >&2; exit 2; }
run() {  # load threads policy env...
  local load="$1" threads="$2" policy="$3"
  shift 3
  local line
  line=$(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u KMP_BLOCKTIME "$@" OMP_NUM_THREADS="$threads" "$bin" \
        --benchmark_filter='^BM_fashioncnn_train_step/' --benchmark_min_time=2 \
        --benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true \
        --benchmark_format=csv 2>/dev/null | grep '_median"')
  # CSV: name, iterations, real_time, cpu_time, time_unit, ...
  printf "%-10s %7s %-8s %10s %s (cpu %s)\n" "$load" "$threads" "$policy" \
    "$(echo "$line" | cut -d, -f3)" "$(echo "$line" | cut -d, -f5)" "$(echo "$line" | cut -d, -f4)"
}
libomp=0
ldd "$bin" | grep -q libomp && libomp=1
sweep() {
  local load="$1"
  run "$load" 1 default
  run "$load" 2 default
  if [ $libomp = 1 ]; then
    run "$load" 2 bt0 KMP_BLOCKTIME=0
    run "$load" 2 bt1 KMP_BLOCKTIME=1
  else
    run "$load" 2 spin10k GOMP_SPINCOUNT=10000
    run "$load" 2 spin1k GOMP_SPINCOUNT=1000
  fi
  run "$load" 2 passive OMP_WAIT_POLICY=passive
  run "$load" 2 active OMP_WAIT_POLICY=active
}
echo "OpenMP runtime: $([ $libomp = 1 ] && echo libomp || echo libgomp) ($bin)"
printf "%-10s %7s %-8s %13s\n" load threads policy "step (median)"
sweep none
taskset -c 1 yes >/dev/null &
yes_pid=$!
trap 'kill $yes_pid 2>/dev/null || true' EXIT
sweep "yes@core1"
