// Shape family: concat and split along one dim, and padding (constant, reflect, replicate).
//
//   concat  x_i [outer, len_i] -> y [outer, sum_i len_i]     y[o, off_i + j] = x_i[o, j]
//   split   x [outer, sum_i len_i] -> y_i [outer, len_i]     y_i[o, j] = x[o, off_i + j]
//           (off_i = len_0 + ... + len_{i-1}). A tensor of shape [..., D_i, ...] concatenated
//           along `dim` is viewed as [outer, len_i] with outer = prod(dims before `dim`) and
//           len_i = D_i * prod(dims after `dim`): the trailing dims travel as one run.
//           Each is the other's adjoint, so concat_backward is split and split_backward concat.
//
//   pad_constant  x [s_0, ..., s_{n-1}] -> y [s_d + lo_d + hi_d]
//           y[o] = x[o - lo] when every coordinate o_d - lo_d lies in [0, s_d), else value.
//           lo, hi may be negative (cropping). Backward: dx[i] = dy[i + lo], i.e. the same
//           kernel with the pads negated and value 0 (cropped elements get 0).
//
//   pad_reflect, pad_replicate   planes x [P, H, W] -> y [P, H + top + bottom, W + left + right]
//           y[p, oh, ow] = x[p, r(oh - top, H), r(ow - left, W)]   with pads >= 0, and
//           reflect    r(i, n) = i < 0 ? -i : (i >= n ? 2(n-1) - i : i)  (edge not repeated;
//                      needs every pad < n, so one reflection reaches inside)
//           replicate  r(i, n) = clamp(i, 0, n-1)                        (needs n >= 1)
//           Backward: dx[p, ih, iw] = sum of dy[p, oh, ow] over the outputs with
//           r(oh - top) = ih and r(ow - left) = iw (scatter-add, since several outputs read
//           the same border element).
//
// Every gradient here is an input gradient and is written (=), never accumulated into.
// All arrays are contiguous, row-major.
#pragma once

#include <cstdint>

namespace nabla::cpu {

// requires: xs[i] holds outer * lens[i] elements; y holds outer * sum(lens).
// ensures:  y written (=).
template <typename T>
void concat_forward(int64_t n, const T* const* xs, const int64_t* lens, int64_t outer, T* y);

// requires: dy holds outer * sum(lens); dxs[i] holds outer * lens[i] or is null.
// ensures:  every non-null dxs[i] written (=) with its slice of dy; null ones are skipped.
template <typename T>
void concat_backward(int64_t n, const T* dy, const int64_t* lens, int64_t outer, T* const* dxs);

// requires: x holds outer * sum(lens); ys[i] holds outer * lens[i].
// ensures:  every ys[i] written (=).
template <typename T>
void split_forward(int64_t n, const T* x, const int64_t* lens, int64_t outer, T* const* ys);

// requires: dys[i] holds outer * lens[i] (zeros for outputs that got no gradient); dx holds
//           outer * sum(lens).
// ensures:  dx written (=).
template <typename T>
void split_backward(int64_t n, const T* const* dys, const int64_t* lens, int64_t outer, T* dx);

// requires: 0 <= ndim <= kMaxDims (kernels/copy.h); x has shape in_shape; lo[d], hi[d] may be
//           negative but in_shape[d] + lo[d] + hi[d] >= 0; y holds the padded shape.
// ensures:  y written (=).
template <typename T>
void pad_constant_forward(int ndim, const int64_t* in_shape, const int64_t* lo, const int64_t* hi,
                          const T* x, T* y, T value);

// requires: as pad_constant_forward; dy has the padded shape, dx has in_shape.
// ensures:  dx[i] = dy[i + lo] where that lies inside dy, else 0; written (=).
template <typename T>
void pad_constant_backward(int ndim, const int64_t* in_shape, const int64_t* lo, const int64_t* hi,
                           const T* dy, T* dx);

// requires: 0 <= top, bottom < H and 0 <= left, right < W (H, W >= 1);
//           x [P, H, W]; y [P, H + top + bottom, W + left + right].
// ensures:  y written (=).
template <typename T>
void pad_reflect_forward(const T* x, T* y, int64_t P, int64_t H, int64_t W, int64_t top,
                         int64_t bottom, int64_t left, int64_t right);

// requires: as pad_reflect_forward; dy has y's shape, dx has x's.
// ensures:  dx written (=): zeroed, then every dy element added to the element it read.
template <typename T>
void pad_reflect_backward(const T* dy, T* dx, int64_t P, int64_t H, int64_t W, int64_t top,
                          int64_t bottom, int64_t left, int64_t right);

// requires: H, W >= 1; pads >= 0; x [P, H, W]; y [P, H + top + bottom, W + left + right].
// ensures:  y written (=).
template <typename T>
void pad_replicate_forward(const T* x, T* y, int64_t P, int64_t H, int64_t W, int64_t top,
                           int64_t bottom, int64_t left, int64_t right);

// requires: as pad_replicate_forward; dy has y's shape, dx has x's.
// ensures:  dx written (=): zeroed, then every dy element added to the element it read.
template <typename T>
void pad_replicate_backward(const T* dy, T* dx, int64_t P, int64_t H, int64_t W, int64_t top,
                            int64_t bottom, int64_t left, int64_t right);

}  // namespace nabla::cpu

// CUDA twins (kernels/cuda/shape.cu), same contracts. The element pointers are device memory;
// the pointer arrays (xs, dxs, ys, dys), lens and the shape/pad arrays are host memory.
namespace nabla::cuda {
template <typename T>
void concat_forward(int64_t n, const T* const* xs, const int64_t* lens, int64_t outer, T* y);
template <typename T>
void concat_backward(int64_t n, const T* dy, const int64_t* lens, int64_t outer, T* const* dxs);
template <typename T>
void split_forward(int64_t n, const T* x, const int64_t* lens, int64_t outer, T* const* ys);
template <typename T>
void split_backward(int64_t n, const T* const* dys, const int64_t* lens, int64_t outer, T* dx);
template <typename T>
void pad_constant_forward(int ndim, const int64_t* in_shape, const int64_t* lo, const int64_t* hi,
                          const T* x, T* y, T value);
template <typename T>
void pad_constant_backward(int ndim, const int64_t* in_shape, const int64_t* lo, const int64_t* hi,
                           const T* dy, T* dx);
template <typename T>
void pad_reflect_forward(const T* x, T* y, int64_t P, int64_t H, int64_t W, int64_t top,
                         int64_t bottom, int64_t left, int64_t right);
template <typename T>
void pad_reflect_backward(const T* dy, T* dx, int64_t P, int64_t H, int64_t W, int64_t top,
                          int64_t bottom, int64_t left, int64_t right);
template <typename T>
void pad_replicate_forward(const T* x, T* y, int64_t P, int64_t H, int64_t W, int64_t top,
                           int64_t bottom, int64_t left, int64_t right);
template <typename T>
void pad_replicate_backward(const T* dy, T* dx, int64_t P, int64_t H, int64_t W, int64_t top,
                            int64_t bottom, int64_t left, int64_t right);
}  // namespace nabla::cuda

// The explicit instantiations, one list for both backends: kernels/cpu/shape.cpp and
// kernels/cuda/shape.cu expand it in their namespace for each element type.
#define NABLA_SHAPE_INSTANTIATE(T)                                                                 \
  template void concat_forward<T>(int64_t, const T* const*, const int64_t*, int64_t, T*);          \
  template void concat_backward<T>(int64_t, const T*, const int64_t*, int64_t, T* const*);         \
  template void split_forward<T>(int64_t, const T*, const int64_t*, int64_t, T* const*);           \
  template void split_backward<T>(int64_t, const T* const*, const int64_t*, int64_t, T*);          \
  template void pad_constant_forward<T>(int, const int64_t*, const int64_t*, const int64_t*,       \
                                        const T*, T*, T);                                          \
  template void pad_constant_backward<T>(int, const int64_t*, const int64_t*, const int64_t*,      \
                                         const T*, T*);                                            \
  template void pad_reflect_forward<T>(const T*, T*, int64_t, int64_t, int64_t, int64_t, int64_t,  \
                                       int64_t, int64_t);                                          \
  template void pad_reflect_backward<T>(const T*, T*, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                        int64_t, int64_t);                                         \
  template void pad_replicate_forward<T>(const T*, T*, int64_t, int64_t, int64_t, int64_t,         \
                                         int64_t, int64_t, int64_t);                               \
  template void pad_replicate_backward<T>(const T*, T*, int64_t, int64_t, int64_t, int64_t,        \
                                          int64_t, int64_t, int64_t);
