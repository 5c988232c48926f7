#!/usr/bin/env bash
# Configures and builds nabla into build/ (Release). The CUDA backend is compiled when nvcc
# is found (on PATH or at /usr/local/cuda/bin/nvcc); otherwise the CPU build.
#   NABLA_BUILD_DIR   build folder (default build)
#   NABLA_CMAKE_ARGS  extra CMake arguments, e.g. -DCMAKE_CUDA_ARCHITECTURES=80
#   NABLA_BUILD_TARGETS  CMake targets to build, e.g. "nabla_cli" (the `nabla` program; default:
#                        everything, tests included)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${NABLA_BUILD_DIR:-build}"
cuda_args=()
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  cuda_args+=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
fi
# shellcheck disable=SC2086
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "${cuda_args[@]}" ${NABLA_CMAKE_ARGS:-}
targets=()
for t in ${NABLA_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build" -j "$(nproc)" "${targets[@]}"
