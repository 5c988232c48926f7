// Helpers shared by the op families: dtype/device dispatch and argument checks.
// Internal to engine/ops; users include the family headers instead.
#pragma once

#include <nabla/autograd.h>
#include <nabla/tensor.h>

namespace nabla::ops_detail {

// Calls f(T{}) with T = float or double; throws for int64 (names the op and tensor).
template <typename F>
void dispatch_floating(const Tensor& t, const char* op, F&& f) {
  switch (t.dtype()) {
    case DType::Float32:
      f(float{});
      return;
    case DType::Float64:
      f(double{});
      return;
    case DType::Int64:
      break;
  }
  throw Error(std::string(op) + ": expects a float32 or float64 tensor, got " + t.str());
}

// Same dtype and device for every defined tensor; the message names the op and all tensors.
void check_same(const char* op, std::initializer_list<const Tensor*> ts);

// Checks that t has exactly `ndim` dims; `what` names the argument ("input", "weight").
void check_dim(const char* op, const char* what, const Tensor& t, int64_t ndim);

// A contiguous tensor seen as [outer, D, inner] around one dim: how reductions, softmax and
// concat/split address an axis without permuting it (a 0-dim tensor is [1, 1, 1]).
struct Axis {
  int64_t outer = 1, D = 1, inner = 1;
};
Axis axis_of(const Shape& s, int64_t dim);

// The element pointer of an optional tensor (bias, a gradient nobody asked for), or nullptr.
template <typename T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// Output allocation on the device and dtype of a reference tensor.
inline Tensor new_like(const Tensor& ref, const Shape& s) {
  return empty(s, ref.dtype(), ref.device());
}

}  // namespace nabla::ops_detail
