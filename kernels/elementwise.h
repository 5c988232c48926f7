// Elementwise family: unary maps with up to two scalar parameters, binary maps on
// equal-length (already broadcast) operands, and where(cond, a, b).
//
//   unary   y = f(x; a, b)                 dx = dy * f'(x)            (dx written =)
//   binary  y = f(x1, x2)                  d1 = dy * df/dx1, d2 = dy * df/dx2   (written =)
//   where   y = cond != 0 ? x1 : x2        d1 = cond ? dy : 0, d2 = cond ? 0 : dy
//
// Derivatives at kinks follow PyTorch: relu'(0) = 0, abs'(0) = 0, sign' = 0,
// clamp passes the gradient where lo <= x <= hi, minimum/maximum split it evenly on ties.
// All arrays are contiguous with n elements; a null gradient pointer skips that gradient.
#pragma once

#include <cstdint>

namespace nabla {

enum class UnaryOp {
  Neg,         // -x
  Exp,         // e^x
  Log,         // ln x
  Sqrt,        // sqrt x
  Abs,         // |x|
  Sign,        // sign x (0 at 0)
  PowScalar,   // x^a
  Clamp,       // min(max(x, a), b)
  AddScalar,   // x + a
  MulScalar,   // x * a
  RSubScalar,  // a - x
  RDivScalar,  // a / x
  Relu,        // max(x, 0)
  LeakyRelu,   // x > 0 ? x : a*x
  Sigmoid,     // 1 / (1 + e^-x), computed without overflow
  Tanh,        // tanh x
};
const char* unary_op_name(UnaryOp op);

enum class BinaryOp { Add, Sub, Mul, Div, Pow, Minimum, Maximum };
const char* binary_op_name(BinaryOp op);

}  // namespace nabla

namespace nabla::cpu {

// requires: x, y hold n elements (may alias). ensures: y[i] = f(x[i]; a, b).
template <typename T>
void unary_forward(UnaryOp op, const T* x, T* y, int64_t n, T a, T b);

// requires: x is the forward input, y the forward output (the rule uses whichever is cheaper),
//           dy the output gradient. ensures: dx[i] = dy[i] * f'(x[i]) written (=).
template <typename T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* dy, T* dx, int64_t n, T a, T b);

// ensures: y[i] = f(x1[i], x2[i]).
template <typename T>
void binary_forward(BinaryOp op, const T* x1, const T* x2, T* y, int64_t n);

// ensures: d1[i] = dy[i] * df/dx1, d2[i] = dy[i] * df/dx2 (=); null d1 or d2 is skipped.
template <typename T>
void binary_backward(BinaryOp op, const T* x1, const T* x2, const T* dy, T* d1, T* d2, int64_t n);

// ensures: y[i] = cond[i] != 0 ? x1[i] : x2[i].
template <typename T>
void where_forward(const T* cond, const T* x1, const T* x2, T* y, int64_t n);

// ensures: d1[i] = cond ? dy : 0, d2[i] = cond ? 0 : dy (=); null pointers skipped.
template <typename T>
void where_backward(const T* cond, const T* dy, T* d1, T* d2, int64_t n);

}  // namespace nabla::cpu

// CUDA twins (kernels/cuda/elementwise.cu), same contracts and kink rules; every pointer is
// device memory.
namespace nabla::cuda {
template <typename T>
void unary_forward(UnaryOp op, const T* x, T* y, int64_t n, T a, T b);
template <typename T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* dy, T* dx, int64_t n, T a, T b);
template <typename T>
void binary_forward(BinaryOp op, const T* x1, const T* x2, T* y, int64_t n);
template <typename T>
void binary_backward(BinaryOp op, const T* x1, const T* x2, const T* dy, T* d1, T* d2, int64_t n);
template <typename T>
void where_forward(const T* cond, const T* x1, const T* x2, T* y, int64_t n);
template <typename T>
void where_backward(const T* cond, const T* dy, T* d1, T* d2, int64_t n);
}  // namespace nabla::cuda

// The explicit instantiations, one list for both backends: kernels/cpu/elementwise.cpp and
// kernels/cuda/elementwise.cu expand it in their namespace for each element type.
#define NABLA_ELEMENTWISE_INSTANTIATE(T)                                                     \
  template void unary_forward<T>(UnaryOp, const T*, T*, int64_t, T, T);                      \
  template void unary_backward<T>(UnaryOp, const T*, const T*, const T*, T*, int64_t, T, T); \
  template void binary_forward<T>(BinaryOp, const T*, const T*, T*, int64_t);                \
  template void binary_backward<T>(BinaryOp, const T*, const T*, const T*, T*, T*, int64_t); \
  template void where_forward<T>(const T*, const T*, const T*, T*, int64_t);                 \
  template void where_backward<T>(const T*, const T*, T*, T*, int64_t);
