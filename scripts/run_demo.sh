#!/usr/bin/env bash
# The README's main job: install what is missing, configure, build, run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/configure.sh
"${NABLA_BUILD_DIR:-build}"/input_gradient --out "${1:-demo_out}"
