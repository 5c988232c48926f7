#!/usr/bin/env bash
# Developer helper: builds the engine core (tensor, autograd, elementwise, reduce, copy,
# random, gemm) into /tmp/nabla_core/libcore.a so op families can be compiled and tested
# on their own while the rest of the tree is in flux:
#   g++ -std=c++20 -O2 -fopenmp -march=native -I build/include -I . my_op.cpp tests/test_x.cpp \
#       tests/main.cpp /tmp/nabla_core/libcore.a -o /tmp/test_x
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/include /tmp/nabla_core
[ -e build/include/nabla ] || ln -s "$PWD/engine" build/include/nabla
srcs="engine/tensor.cpp engine/autograd.cpp engine/random.cpp engine/npy.cpp
      engine/ops/common.cpp engine/ops/elementwise.cpp engine/ops/reduce.cpp
      kernels/cpu/copy.cpp kernels/cpu/random.cpp kernels/cpu/elementwise.cpp
      kernels/cpu/reduce.cpp kernels/cpu/gemm.cpp"
objs=()
for s in $srcs; do
  o=/tmp/nabla_core/$(echo "$s" | tr / _).o
  g++ -std=c++20 -O2 -fopenmp -march=native -Ibuild/include -I. -c "$s" -o "$o" &
  objs+=("$o")
  while [ "$(jobs -r | wc -l)" -ge 2 ]; do sleep 0.2; done
done
wait
rm -f /tmp/nabla_core/libcore.a
ar rcs /tmp/nabla_core/libcore.a "${objs[@]}"
echo "built /tmp/nabla_core/libcore.a"
