#!/usr/bin/env bash
# The sanitizer pass of CI: builds the CPU library, the `nabla` CLI and a subset of the tests with
# -fsanitize=address,undefined (g++, -O1) into build-asan/ and runs them with leak detection on,
# plus the fuzz regression replay. The subset is the code that reads files and runs the graph:
# loaders (io, data, hardening, tensor), autograd, nn, attacks and the inspect CLI test.
# The full suite under ASan would roughly double CI time; see docs/reliability.md for the figure.
#   NABLA_ASAN_BUILD_DIR  build folder (default build-asan)
#   NABLA_ASAN_TESTS      test programs to build and run (default: the subset below)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${NABLA_ASAN_BUILD_DIR:-build-asan}"
read -r -a tests <<<"${NABLA_ASAN_TESTS:-test_io test_data test_hardening test_tensor test_autograd test_nn test_attack test_attack_step test_inspect_cli}"
flags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DNABLA_CUDA=OFF -DNABLA_CUDA_EMU=OFF \
  -DNABLA_BUILD_BENCH=OFF "${launcher[@]}" >/dev/null
targets=(--target nabla_fuzz_replay --target nabla_cli)
for t in "${tests[@]}"; do targets+=(--target "$t"); done
cmake --build "$build" -j "$(nproc)" "${targets[@]}"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
regex="^($(IFS='|'; echo "${tests[*]}")):|^fuzz regressions"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" -R "$regex"
