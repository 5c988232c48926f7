#!/usr/bin/env bash
# Installs the Debian packages nabla needs that are not installed yet (see DESIGN.md).
#   scripts/install_deps.sh          build + tests + data
#   scripts/install_deps.sh --bench  also OpenBLAS (SGEMM baseline) and python3-torch (reference)
#   scripts/install_deps.sh --fuzz   also clang and libclang-rt-14-dev (libFuzzer, ASan, UBSan)
# Uses sudo when not root. Never downloads anything but Debian packages.
set -euo pipefail

pkgs=(cmake g++ make libomp-dev libstb-dev doctest-dev libbenchmark-dev libcli11-dev
      nlohmann-json3-dev zlib1g-dev dataset-fashion-mnist)
if [ "${1:-}" = "--bench" ]; then
  pkgs+=(libopenblas-dev python3-torch python3-numpy)
fi
# --fuzz: clang with libFuzzer and the sanitizer runtimes, for scripts/fuzz.sh and the clang build.
if [ "${1:-}" = "--fuzz" ]; then
  pkgs+=(clang libclang-rt-14-dev)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#pkgs[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install_deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
