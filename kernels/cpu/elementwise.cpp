// CPU elementwise kernels; see kernels/elementwise.h for the math and kink conventions.
// Every loop is one element per iteration, split across OpenMP threads in static chunks;
// the switch on the op sits outside the loop so each loop body vectorizes.
#include "kernels/elementwise.h"

#include <algorithm>
#include <cmath>

namespace nabla {

const char* unary_op_name(UnaryOp op) {
  static const char* names[] = {"neg",        "exp",        "log",         "sqrt",
                                "abs",        "sign",       "pow",         "clamp",
                                "add_scalar", "mul_scalar", "rsub_scalar", "rdiv_scalar",
                                "relu",       "leaky_relu", "sigmoid",     "tanh"};
  return names[int(op)];
}

const char* binary_op_name(BinaryOp op) {
  static const char* names[] = {"add", "sub", "mul", "div", "pow", "minimum", "maximum"};
  return names[int(op)];
}

}  // namespace nabla

// `omp simd` is a request. Loops that call std::exp, std::log, std::tanh... have no vector form
// in clang 14 without a vector math library (GCC uses glibc's libmvec), so clang reports each
// such instantiation as a failed transformation; the scalar loop it keeps is correct.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

namespace nabla::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // below this, threads cost more than they save

// f is called once per index. Lambdas capture their pointers BY VALUE and each thread runs a
// private copy of f: the pointers are then loop invariants that the vectorizer hoists. With
// captures by reference inside the outlined OpenMP region, GCC reloaded them for every element
// and vectorized with gathers/scatters, 5-10x slower than plain vector loads.
template <typename F>
void map(int64_t n, const F& f) {
  if (n <= kParallelMin) {
    F g = f;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) g(i);
    return;
  }
#pragma omp parallel
  {
    F g = f;
#pragma omp for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) g(i);
  }
}

template <typename T>
T sigmoid(T x) {
  // Split by sign so exp never overflows.
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  T e = std::exp(x);
  return e / (T(1) + e);
}

template <typename T>
T sign(T x) {
  return T((x > 0) - (x < 0));
}
}  // namespace

template <typename T>
void unary_forward(UnaryOp op, const T* x, T* y, int64_t n, T a, T b) {
  switch (op) {
    case UnaryOp::Neg:
      map(n, [=](int64_t i) { y[i] = -x[i]; });
      break;
    case UnaryOp::Exp:
      map(n, [=](int64_t i) { y[i] = std::exp(x[i]); });
      break;
    case UnaryOp::Log:
      map(n, [=](int64_t i) { y[i] = std::log(x[i]); });
      break;
    case UnaryOp::Sqrt:
      map(n, [=](int64_t i) { y[i] = std::sqrt(x[i]); });
      break;
    case UnaryOp::Abs:
      map(n, [=](int64_t i) { y[i] = std::abs(x[i]); });
      break;
    case UnaryOp::Sign:
      map(n, [=](int64_t i) { y[i] = sign(x[i]); });
      break;
    case UnaryOp::PowScalar:
      map(n, [=](int64_t i) { y[i] = std::pow(x[i], a); });
      break;
    case UnaryOp::Clamp:
      map(n, [=](int64_t i) { y[i] = std::min(std::max(x[i], a), b); });
      break;
    case UnaryOp::AddScalar:
      map(n, [=](int64_t i) { y[i] = x[i] + a; });
      break;
    case UnaryOp::MulScalar:
      map(n, [=](int64_t i) { y[i] = x[i] * a; });
      break;
    case UnaryOp::RSubScalar:
      map(n, [=](int64_t i) { y[i] = a - x[i]; });
      break;
    case UnaryOp::RDivScalar:
      map(n, [=](int64_t i) { y[i] = a / x[i]; });
      break;
    case UnaryOp::Relu:
      map(n, [=](int64_t i) { y[i] = x[i] > 0 ? x[i] : T(0); });
      break;
    case UnaryOp::LeakyRelu:
      map(n, [=](int64_t i) { y[i] = x[i] > 0 ? x[i] : a * x[i]; });
      break;
    case UnaryOp::Sigmoid:
      map(n, [=](int64_t i) { y[i] = sigmoid(x[i]); });
      break;
    case UnaryOp::Tanh:
      map(n, [=](int64_t i) { y[i] = std::tanh(x[i]); });
      break;
  }
}

template <typename T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* dy, T* dx, int64_t n, T a, T b) {
  switch (op) {
    case UnaryOp::Neg:
      map(n, [=](int64_t i) { dx[i] = -dy[i]; });
      break;
    case UnaryOp::Exp:
      map(n, [=](int64_t i) { dx[i] = dy[i] * y[i]; });
      break;
    case UnaryOp::Log:
      map(n, [=](int64_t i) { dx[i] = dy[i] / x[i]; });
      break;
    case UnaryOp::Sqrt:
      map(n, [=](int64_t i) { dx[i] = dy[i] / (T(2) * y[i]); });
      break;
    case UnaryOp::Abs:
      map(n, [=](int64_t i) { dx[i] = dy[i] * sign(x[i]); });
      break;
    case UnaryOp::Sign:
      map(n, [=](int64_t i) { dx[i] = T(0); });
      break;
    case UnaryOp::PowScalar:
      // a == 0 would give 0 * x^-1 = NaN at x = 0; the derivative of x^0 is 0.
      map(n, [=](int64_t i) { dx[i] = a == 0 ? T(0) : dy[i] * a * std::pow(x[i], a - T(1)); });
      break;
    case UnaryOp::Clamp:
      map(n, [=](int64_t i) { dx[i] = (x[i] >= a && x[i] <= b) ? dy[i] : T(0); });
      break;
    case UnaryOp::AddScalar:
      map(n, [=](int64_t i) { dx[i] = dy[i]; });
      break;
    case UnaryOp::MulScalar:
      map(n, [=](int64_t i) { dx[i] = dy[i] * a; });
      break;
    case UnaryOp::RSubScalar:
      map(n, [=](int64_t i) { dx[i] = -dy[i]; });
      break;
    case UnaryOp::RDivScalar:
      map(n, [=](int64_t i) { dx[i] = -dy[i] * y[i] / x[i]; });
      break;
    case UnaryOp::Relu:
      map(n, [=](int64_t i) { dx[i] = x[i] > 0 ? dy[i] : T(0); });
      break;
    case UnaryOp::LeakyRelu:
      map(n, [=](int64_t i) { dx[i] = x[i] > 0 ? dy[i] : a * dy[i]; });
      break;
    case UnaryOp::Sigmoid:
      map(n, [=](int64_t i) { dx[i] = dy[i] * y[i] * (T(1) - y[i]); });
      break;
    case UnaryOp::Tanh:
      map(n, [=](int64_t i) { dx[i] = dy[i] * (T(1) - y[i] * y[i]); });
      break;
  }
}

template <typename T>
void binary_forward(BinaryOp op, const T* x1, const T* x2, T* y, int64_t n) {
  switch (op) {
    case BinaryOp::Add:
      map(n, [=](int64_t i) { y[i] = x1[i] + x2[i]; });
      break;
    case BinaryOp::Sub:
      map(n, [=](int64_t i) { y[i] = x1[i] - x2[i]; });
      break;
    case BinaryOp::Mul:
      map(n, [=](int64_t i) { y[i] = x1[i] * x2[i]; });
      break;
    case BinaryOp::Div:
      map(n, [=](int64_t i) { y[i] = x1[i] / x2[i]; });
      break;
    case BinaryOp::Pow:
      map(n, [=](int64_t i) { y[i] = std::pow(x1[i], x2[i]); });
      break;
    case BinaryOp::Minimum:
      map(n, [=](int64_t i) { y[i] = std::min(x1[i], x2[i]); });
      break;
    case BinaryOp::Maximum:
      map(n, [=](int64_t i) { y[i] = std::max(x1[i], x2[i]); });
      break;
  }
}

template <typename T>
void binary_backward(BinaryOp op, const T* x1, const T* x2, const T* dy, T* d1, T* d2, int64_t n) {
  switch (op) {
    case BinaryOp::Add:
      if (d1) map(n, [=](int64_t i) { d1[i] = dy[i]; });
      if (d2) map(n, [=](int64_t i) { d2[i] = dy[i]; });
      break;
    case BinaryOp::Sub:
      if (d1) map(n, [=](int64_t i) { d1[i] = dy[i]; });
      if (d2) map(n, [=](int64_t i) { d2[i] = -dy[i]; });
      break;
    case BinaryOp::Mul:
      if (d1) map(n, [=](int64_t i) { d1[i] = dy[i] * x2[i]; });
      if (d2) map(n, [=](int64_t i) { d2[i] = dy[i] * x1[i]; });
      break;
    case BinaryOp::Div:
      if (d1) map(n, [=](int64_t i) { d1[i] = dy[i] / x2[i]; });
      if (d2) map(n, [=](int64_t i) { d2[i] = -dy[i] * x1[i] / (x2[i] * x2[i]); });
      break;
    case BinaryOp::Pow:
      // d/dx1 x1^x2 = x2 x1^(x2-1); d/dx2 = x1^x2 ln x1, taken as 0 where x1 == 0 (PyTorch).
      if (d1)
        map(n, [=](int64_t i) {
          d1[i] = x2[i] == 0 ? T(0) : dy[i] * x2[i] * std::pow(x1[i], x2[i] - T(1));
        });
      if (d2)
        map(n, [=](int64_t i) {
          d2[i] = x1[i] == 0 ? T(0) : dy[i] * std::pow(x1[i], x2[i]) * std::log(x1[i]);
        });
      break;
    case BinaryOp::Minimum:
    case BinaryOp::Maximum: {
      const bool is_min = op == BinaryOp::Minimum;
      // w1: share of the gradient that goes to x1 (1, 0, or 1/2 on a tie).
      auto w1 = [&](int64_t i) -> T {
        if (x1[i] == x2[i]) return T(0.5);
        return (is_min ? x1[i] < x2[i] : x1[i] > x2[i]) ? T(1) : T(0);
      };
      if (d1) map(n, [=](int64_t i) { d1[i] = dy[i] * w1(i); });
      if (d2) map(n, [=](int64_t i) { d2[i] = dy[i] * (T(1) - w1(i)); });
      break;
    }
  }
}

template <typename T>
void where_forward(const T* cond, const T* x1, const T* x2, T* y, int64_t n) {
  map(n, [=](int64_t i) { y[i] = cond[i] != T(0) ? x1[i] : x2[i]; });
}

template <typename T>
void where_backward(const T* cond, const T* dy, T* d1, T* d2, int64_t n) {
  if (d1) map(n, [=](int64_t i) { d1[i] = cond[i] != T(0) ? dy[i] : T(0); });
  if (d2) map(n, [=](int64_t i) { d2[i] = cond[i] != T(0) ? T(0) : dy[i]; });
}

NABLA_ELEMENTWISE_INSTANTIATE(float)
NABLA_ELEMENTWISE_INSTANTIATE(double)

}  // namespace nabla::cpu
