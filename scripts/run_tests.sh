#!/usr/bin/env bash
# The README's test command: install what is missing, configure, build, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/configure.sh
cd "${NABLA_BUILD_DIR:-build}"
ctest --output-on-failure -j "$(nproc)"
