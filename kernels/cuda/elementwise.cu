// Elementwise family on the GPU: unary maps with scalar parameters, binary maps on equal-length
// (already broadcast) operands, and where; kernels/elementwise.h gives the math, the contracts
// and the kink conventions, which these kernels follow exactly (relu'(0) = 0, abs'(0) = 0,
// sign' = 0, clamp passes the gradient on [lo, hi], minimum/maximum split it on ties, pow's
// zero special cases).
//
//   y[i] = f(in_0[i], ..., in_{N-1}[i])      N <= 3 inputs, one output, n elements
//
// Every entry point is one launch of map_kernel with a functor for the op; the op is a
// template argument, so the switch over ops happens once on the host and each kernel body is
// straight-line code.
//
// Versions:
//   1  one thread per element, grid-stride.
//   2  (this) one thread per 16-byte pack (float4 for float, double2 for double) when every
//      pointer is 16-byte aligned, and a scalar tail for the last n % V elements; unaligned
//      pointers (a view starting mid-storage) fall back to version 1 (V = 1). Inputs that a
//      backward rule does not read (x for exp's, x1 and x2 for add's) are passed as null and
//      never loaded, so add's backward streams only dy.
//
//   map_kernel  one thread per pack of V consecutive elements (grid-stride over packs); then
//               the threads of the grid take the tail elements one each
//
// Aliasing: unary_forward allows y == x. Each element is read and then written by the same
// thread and no other thread touches it, so no pointer is declared __restrict__ and that
// in-place use is safe.
#include "kernels/cuda/common.cuh"
#include "kernels/elementwise.h"

#include <cmath>
#include <cstdint>
#include <type_traits>

namespace nabla::cuda {

namespace {

// ---------------------------------------------------------------- the generic map

template <typename T, int N>
struct Inputs {
  const T* p[N];  // null: this input is not read (its value is 0 in the functor)
};

template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

template <typename F, typename T>
__device__ __forceinline__ T apply(const F& f, const T (&a)[1]) {
  return f(a[0]);
}
template <typename F, typename T>
__device__ __forceinline__ T apply(const F& f, const T (&a)[2]) {
  return f(a[0], a[1]);
}
template <typename F, typename T>
__device__ __forceinline__ T apply(const F& f, const T (&a)[3]) {
  return f(a[0], a[1], a[2]);
}

template <typename T, int V, int N, typename F>
__global__ void map_kernel(F f, Inputs<T, N> in, T* out, int64_t n) {
  using P = Pack<T, V>;
  const int64_t packs = n / V;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  for (int64_t v = tid; v < packs; v += stride) {
    P loaded[N];
#pragma unroll
    for (int k = 0; k < N; ++k) {
      if (in.p[k]) {
        loaded[k] = reinterpret_cast<const P*>(in.p[k])[v];
      } else {
#pragma unroll
        for (int j = 0; j < V; ++j) loaded[k].v[j] = T(0);
      }
    }
    P r;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      T a[N];
#pragma unroll
      for (int k = 0; k < N; ++k) a[k] = loaded[k].v[j];
      r.v[j] = apply(f, a);
    }
    reinterpret_cast<P*>(out)[v] = r;
  }
  // Tail: the last n % V elements (none when V == 1).
  for (int64_t i = packs * V + tid; i < n; i += stride) {
    T a[N];
#pragma unroll
    for (int k = 0; k < N; ++k) a[k] = in.p[k] ? in.p[k][i] : T(0);
    out[i] = apply(f, a);
  }
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// Launches map_kernel over n elements, vectorized when every non-null pointer is aligned.
template <typename T, int N, typename F>
void launch_map(const F& f, Inputs<T, N> in, T* out, int64_t n) {
  if (n == 0) return;
  constexpr int kVec = 16 / int(sizeof(T));
  bool vec = aligned16(out);
  for (int k = 0; k < N; ++k) vec = vec && (in.p[k] == nullptr || aligned16(in.p[k]));
  const cudaStream_t s = current_stream();
  if (vec && n >= kVec) {
    map_kernel<T, kVec, N, F><<<blocks_for(n / kVec), kThreads, 0, s>>>(f, in, out, n);
  } else {
    map_kernel<T, 1, N, F><<<blocks_for(n), kThreads, 0, s>>>(f, in, out, n);
  }
  CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------- the ops

template <typename T>
__device__ __forceinline__ T sigmoid(T x) {
  // Split by sign so exp never overflows (as the CPU kernel).
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

template <typename T>
__device__ __forceinline__ T sign_of(T x) {
  return T((x > T(0)) - (x < T(0)));
}

template <UnaryOp kOp>
using UnaryTag = std::integral_constant<UnaryOp, kOp>;
template <BinaryOp kOp>
using BinaryTag = std::integral_constant<BinaryOp, kOp>;

// Calls f(UnaryTag<op>{}): turns the runtime op into a template argument.
template <typename F>
void visit(UnaryOp op, F&& f) {
  switch (op) {
    case UnaryOp::Neg:
      return f(UnaryTag<UnaryOp::Neg>{});
    case UnaryOp::Exp:
      return f(UnaryTag<UnaryOp::Exp>{});
    case UnaryOp::Log:
      return f(UnaryTag<UnaryOp::Log>{});
    case UnaryOp::Sqrt:
      return f(UnaryTag<UnaryOp::Sqrt>{});
    case UnaryOp::Abs:
      return f(UnaryTag<UnaryOp::Abs>{});
    case UnaryOp::Sign:
      return f(UnaryTag<UnaryOp::Sign>{});
    case UnaryOp::PowScalar:
      return f(UnaryTag<UnaryOp::PowScalar>{});
    case UnaryOp::Clamp:
      return f(UnaryTag<UnaryOp::Clamp>{});
    case UnaryOp::AddScalar:
      return f(UnaryTag<UnaryOp::AddScalar>{});
    case UnaryOp::MulScalar:
      return f(UnaryTag<UnaryOp::MulScalar>{});
    case UnaryOp::RSubScalar:
      return f(UnaryTag<UnaryOp::RSubScalar>{});
    case UnaryOp::RDivScalar:
      return f(UnaryTag<UnaryOp::RDivScalar>{});
    case UnaryOp::Relu:
      return f(UnaryTag<UnaryOp::Relu>{});
    case UnaryOp::LeakyRelu:
      return f(UnaryTag<UnaryOp::LeakyRelu>{});
    case UnaryOp::Sigmoid:
      return f(UnaryTag<UnaryOp::Sigmoid>{});
    case UnaryOp::Tanh:
      return f(UnaryTag<UnaryOp::Tanh>{});
  }
  NABLA_CHECK(false, "cuda unary op: unknown op ", int(op));
}

template <typename F>
void visit(BinaryOp op, F&& f) {
  switch (op) {
    case BinaryOp::Add:
      return f(BinaryTag<BinaryOp::Add>{});
    case BinaryOp::Sub:
      return f(BinaryTag<BinaryOp::Sub>{});
    case BinaryOp::Mul:
      return f(BinaryTag<BinaryOp::Mul>{});
    case BinaryOp::Div:
      return f(BinaryTag<BinaryOp::Div>{});
    case BinaryOp::Pow:
      return f(BinaryTag<BinaryOp::Pow>{});
    case BinaryOp::Minimum:
      return f(BinaryTag<BinaryOp::Minimum>{});
    case BinaryOp::Maximum:
      return f(BinaryTag<BinaryOp::Maximum>{});
  }
  NABLA_CHECK(false, "cuda binary op: unknown op ", int(op));
}

template <typename T, UnaryOp kOp>
struct UnaryForward {
  T a, b;
  __device__ T operator()(T x) const {
    if constexpr (kOp == UnaryOp::Neg)
      return -x;
    else if constexpr (kOp == UnaryOp::Exp)
      return std::exp(x);
    else if constexpr (kOp == UnaryOp::Log)
      return std::log(x);
    else if constexpr (kOp == UnaryOp::Sqrt)
      return std::sqrt(x);
    else if constexpr (kOp == UnaryOp::Abs)
      return std::abs(x);
    else if constexpr (kOp == UnaryOp::Sign)
      return sign_of(x);
    else if constexpr (kOp == UnaryOp::PowScalar)
      return std::pow(x, a);
    // min(max(x, a), b) with the CPU's std::min/std::max semantics: a NaN x stays NaN.
    else if constexpr (kOp == UnaryOp::Clamp) {
      const T lo = x < a ? a : x;
      return b < lo ? b : lo;
    } else if constexpr (kOp == UnaryOp::AddScalar)
      return x + a;
    else if constexpr (kOp == UnaryOp::MulScalar)
      return x * a;
    else if constexpr (kOp == UnaryOp::RSubScalar)
      return a - x;
    else if constexpr (kOp == UnaryOp::RDivScalar)
      return a / x;
    else if constexpr (kOp == UnaryOp::Relu)
      return x > T(0) ? x : T(0);
    else if constexpr (kOp == UnaryOp::LeakyRelu)
      return x > T(0) ? x : a * x;
    else if constexpr (kOp == UnaryOp::Sigmoid)
      return sigmoid(x);
    else if constexpr (kOp == UnaryOp::Tanh)
      return std::tanh(x);
    return T(0);
  }
};

// Which forward tensors the backward rule of an op reads (the others are passed as null).
constexpr bool backward_reads_x(UnaryOp op) {
  return op == UnaryOp::Log || op == UnaryOp::Abs || op == UnaryOp::PowScalar ||
         op == UnaryOp::Clamp || op == UnaryOp::RDivScalar || op == UnaryOp::Relu ||
         op == UnaryOp::LeakyRelu;
}
constexpr bool backward_reads_y(UnaryOp op) {
  return op == UnaryOp::Exp || op == UnaryOp::Sqrt || op == UnaryOp::RDivScalar ||
         op == UnaryOp::Sigmoid || op == UnaryOp::Tanh;
}

// dx = dy * f'(x), in the CPU kernel's order of operations.
template <typename T, UnaryOp kOp>
struct UnaryBackward {
  T a, b;
  __device__ T operator()(T x, T y, T dy) const {
    if constexpr (kOp == UnaryOp::Neg)
      return -dy;
    else if constexpr (kOp == UnaryOp::Exp)
      return dy * y;
    else if constexpr (kOp == UnaryOp::Log)
      return dy / x;
    else if constexpr (kOp == UnaryOp::Sqrt)
      return dy / (T(2) * y);
    else if constexpr (kOp == UnaryOp::Abs)
      return dy * sign_of(x);
    else if constexpr (kOp == UnaryOp::Sign)
      return T(0);
    // a == 0 would give 0 * x^-1 = NaN at x = 0; the derivative of x^0 is 0.
    else if constexpr (kOp == UnaryOp::PowScalar)
      return a == T(0) ? T(0) : dy * a * std::pow(x, a - T(1));
    else if constexpr (kOp == UnaryOp::Clamp)
      return (x >= a && x <= b) ? dy : T(0);
    else if constexpr (kOp == UnaryOp::AddScalar)
      return dy;
    else if constexpr (kOp == UnaryOp::MulScalar)
      return dy * a;
    else if constexpr (kOp == UnaryOp::RSubScalar)
      return -dy;
    else if constexpr (kOp == UnaryOp::RDivScalar)
      return -dy * y / x;
    else if constexpr (kOp == UnaryOp::Relu)
      return x > T(0) ? dy : T(0);
    else if constexpr (kOp == UnaryOp::LeakyRelu)
      return x > T(0) ? dy : a * dy;
    else if constexpr (kOp == UnaryOp::Sigmoid)
      return dy * y * (T(1) - y);
    else if constexpr (kOp == UnaryOp::Tanh)
      return dy * (T(1) - y * y);
    return T(0);
  }
};

template <typename T, BinaryOp kOp>
struct BinaryForward {
  __device__ T operator()(T x1, T x2) const {
    if constexpr (kOp == BinaryOp::Add)
      return x1 + x2;
    else if constexpr (kOp == BinaryOp::Sub)
      return x1 - x2;
    else if constexpr (kOp == BinaryOp::Mul)
      return x1 * x2;
    else if constexpr (kOp == BinaryOp::Div)
      return x1 / x2;
    else if constexpr (kOp == BinaryOp::Pow)
      return std::pow(x1, x2);
    // std::min / std::max semantics (a NaN in x1 passes, a NaN in x2 does not), as the CPU.
    else if constexpr (kOp == BinaryOp::Minimum)
      return x2 < x1 ? x2 : x1;
    else if constexpr (kOp == BinaryOp::Maximum)
      return x1 < x2 ? x2 : x1;
    return T(0);
  }
};

// The gradient with respect to x1 (kFirst) or x2, in the CPU kernel's order of operations.
template <typename T, BinaryOp kOp, bool kFirst>
struct BinaryBackward {
  __device__ T operator()(T x1, T x2, T dy) const {
    if constexpr (kOp == BinaryOp::Add)
      return dy;
    else if constexpr (kOp == BinaryOp::Sub)
      return kFirst ? dy : -dy;
    else if constexpr (kOp == BinaryOp::Mul)
      return kFirst ? dy * x2 : dy * x1;
    else if constexpr (kOp == BinaryOp::Div)
      return kFirst ? dy / x2 : -dy * x1 / (x2 * x2);
    // d/dx1 x1^x2 = x2 x1^(x2-1); d/dx2 = x1^x2 ln x1, taken as 0 where x1 == 0 (PyTorch).
    else if constexpr (kOp == BinaryOp::Pow) {
      if constexpr (kFirst) return x2 == T(0) ? T(0) : dy * x2 * std::pow(x1, x2 - T(1));
      return x1 == T(0) ? T(0) : dy * std::pow(x1, x2) * std::log(x1);
    } else if constexpr (kOp == BinaryOp::Minimum || kOp == BinaryOp::Maximum) {
      // w1: share of the gradient that goes to x1 (1, 0, or 1/2 on a tie).
      T w1;
      if (x1 == x2)
        w1 = T(0.5);
      else
        w1 = (kOp == BinaryOp::Minimum ? x1 < x2 : x1 > x2) ? T(1) : T(0);
      return kFirst ? dy * w1 : dy * (T(1) - w1);
    }
    return T(0);
  }
};

constexpr bool backward_reads_x1(BinaryOp op, bool first) {
  return op == BinaryOp::Pow || op == BinaryOp::Minimum || op == BinaryOp::Maximum ||
         (!first && (op == BinaryOp::Mul || op == BinaryOp::Div));
}
constexpr bool backward_reads_x2(BinaryOp op, bool first) {
  return op == BinaryOp::Pow || op == BinaryOp::Minimum || op == BinaryOp::Maximum ||
         op == BinaryOp::Div || (first && op == BinaryOp::Mul);
}

template <typename T>
struct WhereForward {
  __device__ T operator()(T c, T x1, T x2) const { return c != T(0) ? x1 : x2; }
};

template <typename T, bool kFirst>
struct WhereBackward {
  __device__ T operator()(T c, T dy) const { return (c != T(0)) == kFirst ? dy : T(0); }
};

}  // namespace

template <typename T>
void unary_forward(UnaryOp op, const T* x, T* y, int64_t n, T a, T b) {
  visit(op, [&](auto tag) {
    constexpr UnaryOp kOp = decltype(tag)::value;
    launch_map<T, 1>(UnaryForward<T, kOp>{a, b}, Inputs<T, 1>{{x}}, y, n);
  });
}

template <typename T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* dy, T* dx, int64_t n, T a, T b) {
  visit(op, [&](auto tag) {
    constexpr UnaryOp kOp = decltype(tag)::value;
    const T* xs = backward_reads_x(kOp) ? x : nullptr;
    const T* ys = backward_reads_y(kOp) ? y : nullptr;
    launch_map<T, 3>(UnaryBackward<T, kOp>{a, b}, Inputs<T, 3>{{xs, ys, dy}}, dx, n);
  });
}

template <typename T>
void binary_forward(BinaryOp op, const T* x1, const T* x2, T* y, int64_t n) {
  visit(op, [&](auto tag) {
    constexpr BinaryOp kOp = decltype(tag)::value;
    launch_map<T, 2>(BinaryForward<T, kOp>{}, Inputs<T, 2>{{x1, x2}}, y, n);
  });
}

template <typename T>
void binary_backward(BinaryOp op, const T* x1, const T* x2, const T* dy, T* d1, T* d2, int64_t n) {
  visit(op, [&](auto tag) {
    constexpr BinaryOp kOp = decltype(tag)::value;
    if (d1)
      launch_map<T, 3>(BinaryBackward<T, kOp, true>{},
                       Inputs<T, 3>{{backward_reads_x1(kOp, true) ? x1 : nullptr,
                                     backward_reads_x2(kOp, true) ? x2 : nullptr, dy}},
                       d1, n);
    if (d2)
      launch_map<T, 3>(BinaryBackward<T, kOp, false>{},
                       Inputs<T, 3>{{backward_reads_x1(kOp, false) ? x1 : nullptr,
                                     backward_reads_x2(kOp, false) ? x2 : nullptr, dy}},
                       d2, n);
  });
}

template <typename T>
void where_forward(const T* cond, const T* x1, const T* x2, T* y, int64_t n) {
  launch_map<T, 3>(WhereForward<T>{}, Inputs<T, 3>{{cond, x1, x2}}, y, n);
}

template <typename T>
void where_backward(const T* cond, const T* dy, T* d1, T* d2, int64_t n) {
  if (d1) launch_map<T, 2>(WhereBackward<T, true>{}, Inputs<T, 2>{{cond, dy}}, d1, n);
  if (d2) launch_map<T, 2>(WhereBackward<T, false>{}, Inputs<T, 2>{{cond, dy}}, d2, n);
}

NABLA_ELEMENTWISE_INSTANTIATE(float)
NABLA_ELEMENTWISE_INSTANTIATE(double)

}  // namespace nabla::cuda
