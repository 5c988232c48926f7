#!/usr/bin/env bash
# On the GPU machine (device tool, with carry [".deps"]): configure against .deps, build with
# every core, run the whole test suite, then the CUDA benchmarks and compare_pytorch.py;
# logs and JSON go to $OUT (default gpu_out).
#   scripts/gpu_run.sh [tests|bench|all]   (default all)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_out}"
mkdir -p "$out"
what="${1:-all}"
deps="$PWD/.deps"
export CPATH="$deps/include${CPATH:+:$CPATH}"
export LIBRARY_PATH="$deps/lib:$deps/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}"
export LD_LIBRARY_PATH="$deps/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export NABLA_FASHION_MNIST="$deps/fashion-mnist"
{
  nvidia-smi || true
  nvcc --version || /usr/local/cuda/bin/nvcc --version
  git log -1 --format='commit %H %cd' 2>/dev/null || true
} > "$out/device.txt" 2>&1
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$deps" \
  -DZLIB_LIBRARY="$deps/lib/libz.a" -DZLIB_INCLUDE_DIR="$deps/include" \
  -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc > "$out/configure.log" 2>&1 || {
  tail -30 "$out/configure.log"; exit 1; }
cmake --build build-gpu -j "$(nproc)" > "$out/build.log" 2>&1 || {
  grep -E "error" "$out/build.log" | head -40; exit 1; }
echo "built"
if [ "$what" = tests ] || [ "$what" = all ]; then
  (cd build-gpu && ctest -j 8 --output-on-failure --timeout 300) > "$out/ctest.log" 2>&1
  grep -E "tests passed|tests failed|Failed|\*\*\*" "$out/ctest.log" | tail -40
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  for b in build-gpu/bench_cuda_*; do
    [ -x "$b" ] || continue
    "$b" --benchmark_format=json --benchmark_out="$out/$(basename "$b").json" \
      --benchmark_out_format=json > "$out/$(basename "$b").txt" 2>&1
    tail -25 "$out/$(basename "$b").txt"
  done
  python3 bench/compare_pytorch.py --build-dir build-gpu --device cuda > "$out/compare_pytorch.txt" 2>&1
  cat "$out/compare_pytorch.txt"
fi
