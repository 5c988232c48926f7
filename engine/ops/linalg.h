// Linear algebra: matmul and linear.
//
//   matmul(a, b)  like torch.matmul:
//     [M, K] x [K, N] -> [M, N]                      C = A B
//     [K] x [K, N] -> [N], [M, K] x [K] -> [M], [K] x [K] -> []   (a 1-D operand is a row on the
//                   left, a column on the right, and that dim is dropped from the result)
//     [*ba, M, K] x [*bb, K, N] -> [*broadcast(ba, bb), M, N]     one product per batch index,
//                   batch dims broadcast NumPy-style: [2, 1, M, K] x [3, K, N] -> [2, 3, M, N]
//   linear(x, weight, bias)  x [*, in], weight [out, in], bias [out] or undefined -> [*, out]
//                   y = x W^T + b  (PyTorch's layout: one row of W per output feature)
//
// Backward (derived in docs/backprop.md): dA = dC B^T, dB = A^T dC, summed over the batch dims
// an operand was broadcast along; for linear dx = dy W, dW = dy^T x, db = sum over rows of dy.
// Every product runs on the GEMM of kernels/gemm.h with its transpose flags, so no transposed
// copy is ever made, and a gradient nobody asked for is never computed.
#pragma once

#include <nabla/tensor.h>

namespace nabla {

// requires: a, b float tensors with >= 1 dim, same dtype and device; a.size(-1) == the
//           contraction size of b (b.size(-2), or b.size(0) for 1-D b); batch dims broadcast.
Tensor matmul(const Tensor& a, const Tensor& b);

// requires: x [*, in] with >= 1 dim, weight [out, in], bias [out] or undefined; same dtype and
//           device. ensures: [*, out].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace nabla
