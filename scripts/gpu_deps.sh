#!/usr/bin/env bash
# Copies what the build needs from this machine's Debian packages into .deps/ (git-ignored),
# for a machine that has a compiler, CMake and the CUDA toolkit but no package registry (the
# lent GPU machine). Pass `.deps` in the device tool's `carry`; there, scripts/gpu_run.sh
# builds against it. Headers: stb, doctest, CLI11, nlohmann-json, Google Benchmark, zlib;
# libraries: Google Benchmark, zlib (static); CMake package files; and Fashion-MNIST (the CLI
# tests and the demo read it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
d=.deps
rm -rf "$d"
mkdir -p "$d/include" "$d/lib/cmake" "$d/lib/x86_64-linux-gnu/cmake" "$d/fashion-mnist"
cp -r /usr/include/stb /usr/include/doctest /usr/include/CLI /usr/include/nlohmann \
      /usr/include/benchmark /usr/include/zlib.h /usr/include/zconf.h "$d/include/"
cp -r /usr/lib/cmake/doctest "$d/lib/cmake/"
cp -r /usr/share/cmake/CLI11 "$d/lib/cmake/" 2>/dev/null || true
cp -r /usr/share/cmake/nlohmann_json "$d/lib/cmake/" 2>/dev/null || true
# The package files locate their libraries relative to themselves: keep Debian's layout.
cp -r /usr/lib/x86_64-linux-gnu/cmake/benchmark "$d/lib/x86_64-linux-gnu/cmake/"
cp -P /usr/lib/x86_64-linux-gnu/libbenchmark* "$d/lib/x86_64-linux-gnu/"
cp /usr/lib/x86_64-linux-gnu/libz.a "$d/lib/"
cp /usr/share/datasets/fashion-mnist/*.gz "$d/fashion-mnist/"
du -sh "$d"
