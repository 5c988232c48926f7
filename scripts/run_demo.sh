#!/usr/bin/env bash
# The README's main job: install what is missing, configure, build the `nabla` program only (not
# the tests, benchmarks or the emulated CUDA build), run `nabla demo`.
# Usage: scripts/run_demo.sh [OUT_DIR] (default demo_out); extra flags go to `nabla demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
NABLA_BUILD_TARGETS=nabla_cli scripts/configure.sh
out="${1:-demo_out}"
shift || true
"${NABLA_BUILD_DIR:-build}"/nabla demo --out "$out" "$@"
