#!/usr/bin/env bash
# The install tree as a user meets it: `cmake --install BUILD --prefix P`, then the README's first
# program built twice against P, once with find_package(nabla) and once with pkg-config, and run.
# Checks the installed files and the program's output (dL/dx printed, no weight-gradient kernel).
#   tests/install/check.sh BUILD_DIR [WORK_DIR]
set -euo pipefail
build="$(cd "$1" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
work="${2:-$(mktemp -d /tmp/nabla_install.XXXXXX)}"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in lib/libnabla.a include/nabla/nabla.h include/nabla/tensor.h include/nabla/io/safetensors.h \
         include/nets/unet.h bin/nabla lib/cmake/nabla/nablaConfig.cmake \
         lib/cmake/nabla/nablaConfigVersion.cmake lib/pkgconfig/nabla.pc; do
  [ -e "$prefix/$f" ] || { echo "install: $f missing under $prefix" >&2; exit 1; }
done
"$prefix/bin/nabla" --version | grep -q "nabla 0.1.0"

check_output() {
  local out="$1"
  echo "$out" | grep -q "conv2d weight-gradient kernels run: 0" ||
    { echo "unexpected output from $2:" >&2; echo "$out" >&2; exit 1; }
  # dL/dx of the 8x8 image: 8 rows of numbers, not all zero
  echo "$out" | grep -Eq "[1-9]" || { echo "$2: dx is all zero" >&2; exit 1; }
}

# 1. CMake: find_package(nabla) and nabla::nabla carry C++20, OpenMP, zlib (and CUDA) themselves.
cmake -S "$here" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/cmake" >/dev/null
check_output "$(OMP_NUM_THREADS=2 "$work/cmake/first")" "the find_package build"

# 2. pkg-config, when installed.
if command -v pkg-config >/dev/null; then
  export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
  # shellcheck disable=SC2046
  ${CXX:-c++} -O1 "$here/first.cpp" -o "$work/first_pc" $(pkg-config --cflags --libs nabla)
  check_output "$(OMP_NUM_THREADS=2 "$work/first_pc")" "the pkg-config build"
fi
# 3. The other compiler, when there is one. libomp (clang) also implements libgomp's entry points,
#    so a clang project links a GCC-built nabla and runs the program; a GCC project cannot link a
#    clang-built one, and find_package says so, naming the compiler to use, instead of link errors.
if "${CXX:-c++}" --version | grep -q clang; then other=g++; else other=clang++; fi
if command -v "$other" >/dev/null; then
  if [ "$other" = clang++ ]; then
    CXX="$other" cmake -S "$here" -B "$work/other" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
    cmake --build "$work/other" >/dev/null
    check_output "$(OMP_NUM_THREADS=2 "$work/other/first")" "the find_package build with clang++"
  elif out="$(CXX="$other" cmake -S "$here" -B "$work/other" -DCMAKE_PREFIX_PATH="$prefix" 2>&1)"; then
    echo "install: configuring the first program with $other should fail (libgomp vs libomp)" >&2
    exit 1
  else
    echo "$out" | tr -s ' \n' ' ' | grep -q "cannot link libnabla.a. Configure this project with" ||
      { echo "install: $other: not the expected error:" >&2; echo "$out" >&2; exit 1; }
  fi
fi
echo "install: find_package and pkg-config builds of the first program pass under $prefix"
