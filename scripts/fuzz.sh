#!/usr/bin/env bash
# Fuzzes nabla's file loaders with libFuzzer + AddressSanitizer + UBSan (clang only).
#   scripts/fuzz.sh [TARGET|all] [SECONDS]     default: all targets, 60 s each
# Targets (tests/fuzz/targets.cpp): safetensors npy idx idx_gz png image_mask run_state.
# Builds build-fuzz/ (clang, CPU only, -fsanitize=fuzzer-no-link,address,undefined), writes each
# target's seed corpus with the project's own writers (nabla_fuzz_replay --seeds), then runs
# libFuzzer at nice 19 on one core per target in turn. The growing corpus stays in
# build-fuzz/fuzz/corpus/<target>; crashes go to build-fuzz/fuzz/findings/<target>/. A crash file
# belongs, minimised (-minimize_crash=1), in tests/fuzz/regressions/<target>/ with a line in
# expected.tsv once its fix is in. Needs clang and libclang-rt-dev: scripts/install_deps.sh --fuzz.
#   NABLA_FUZZ_BUILD_DIR  build folder (default build-fuzz)
#   NABLA_FUZZ_ARGS       extra libFuzzer flags, e.g. "-runs=1000000"
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-all}"
seconds="${2:-60}"
build="${NABLA_FUZZ_BUILD_DIR:-build-fuzz}"
all=(safetensors npy idx idx_gz png image_mask run_state)
if [ "$target" = all ]; then targets=("${all[@]}"); else targets=("$target"); fi
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (${all[*]})" >&2; exit 2; }
done
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (scripts/install_deps.sh --fuzz)" >&2; exit 2; }

# -max_len per target: large enough for deep JSON nesting and big headers where the format has one.
max_len() {
  case "$1" in
    safetensors) echo 4194304 ;;
    run_state) echo 1048576 ;;
    png|image_mask) echo 262144 ;;
    *) echo 65536 ;;
  esac
}

flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS="$flags" -DNABLA_FUZZ=ON -DNABLA_CUDA=OFF -DNABLA_CUDA_EMU=OFF \
    -DNABLA_BUILD_BENCH=OFF -DNABLA_NATIVE=OFF \
    $(command -v ccache >/dev/null && echo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
build_targets=(--target nabla_fuzz_replay)
for t in "${targets[@]}"; do build_targets+=(--target "fuzz_$t"); done
nice -n 19 cmake --build "$build" -j "$(nproc)" "${build_targets[@]}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export OMP_NUM_THREADS=1
"$build/nabla_fuzz_replay" --seeds "$build/fuzz/seeds" >/dev/null
status=0
for t in "${targets[@]}"; do
  corpus="$build/fuzz/corpus/$t" findings="$build/fuzz/findings/$t"
  mkdir -p "$corpus" "$findings"
  extra=()
  [ -d "tests/fuzz/regressions/$t" ] && extra+=("tests/fuzz/regressions/$t")
  log="$build/fuzz/$t.log"
  echo "fuzz.sh: $t for ${seconds}s (max_len $(max_len "$t")), log $log"
  # shellcheck disable=SC2086
  if ! nice -n 19 "$build/fuzz_$t" -max_len="$(max_len "$t")" -max_total_time="$seconds" \
      -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$findings/" \
      ${NABLA_FUZZ_ARGS:-} "$corpus" "$build/fuzz/seeds/$t" "${extra[@]}" >"$log" 2>&1; then
    status=1
    echo "fuzz.sh: $t: FINDING, see $log and $findings/" >&2
  fi
  grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" "$log" |
    sed "s/^/  $t /" || true
done
exit $status
