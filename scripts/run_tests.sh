#!/usr/bin/env bash
# The README's test command: install what is missing, configure, build, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/configure.sh
# The sanitizer pass (scripts/run_sanitizers.sh): an ASan + UBSan build of the loader, autograd,
# nn, attack and CLI tests and the fuzz regression replay. NABLA_SANITIZE=0 skips it. It runs
# before the main suite so that CTest's summary of the whole suite stays the last line.
status=0
if [ "${NABLA_SANITIZE:-1}" != 0 ]; then
  scripts/run_sanitizers.sh || status=$?
fi
cd "${NABLA_BUILD_DIR:-build}"
ctest --output-on-failure -j "$(nproc)" || status=$?
exit $status
