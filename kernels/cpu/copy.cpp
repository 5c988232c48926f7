// CPU copy kernels: strided gather/scatter, dtype conversion, fill. See kernels/copy.h.
#include "kernels/copy.h"

#include <algorithm>

namespace nabla::cpu {

namespace {
// Walks the row-major index of `shape` and calls f(linear index, strided offset) for a run of
// the innermost dimension at a time, so the inner loop is a plain strided loop.
template <typename F>
void for_each_row(int ndim, const int64_t* shape, const int64_t* strides, F&& f) {
  if (ndim == 0) {
    f(0, 0, 1, 0);
    return;
  }
  int64_t inner = shape[ndim - 1], inner_stride = strides[ndim - 1];
  int64_t rows = 1;
  for (int d = 0; d < ndim - 1; ++d) rows *= shape[d];
  if (inner == 0 || rows == 0) return;
    // Rows are independent: one thread per block of rows.
#pragma omp parallel for schedule(static) if (rows * inner > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    int64_t off = 0, rem = r;
    for (int d = ndim - 2; d >= 0; --d) {
      off += (rem % shape[d]) * strides[d];
      rem /= shape[d];
    }
    f(r * inner, off, inner, inner_stride);
  }
}
}  // namespace

template <typename T>
void strided_copy(int ndim, const int64_t* shape, const T* src, const int64_t* src_strides,
                  T* dst) {
  for_each_row(ndim, shape, src_strides, [&](int64_t lin, int64_t off, int64_t n, int64_t st) {
    const T* s = src + off;
    T* d = dst + lin;
    if (st == 1)
      std::copy(s, s + n, d);
    else
      for (int64_t i = 0; i < n; ++i) d[i] = s[i * st];
  });
}

template <typename T>
void strided_scatter(int ndim, const int64_t* shape, const T* src, T* dst,
                     const int64_t* dst_strides) {
  for_each_row(ndim, shape, dst_strides, [&](int64_t lin, int64_t off, int64_t n, int64_t st) {
    const T* s = src + lin;
    T* d = dst + off;
    for (int64_t i = 0; i < n; ++i) d[i * st] = s[i];
  });
}

template <typename S, typename D>
void convert(const S* src, D* dst, int64_t n) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<D>(src[i]);
}

template <typename T>
void fill(T* dst, int64_t n, T value) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) dst[i] = value;
}

NABLA_COPY_INSTANTIATE(float)
NABLA_COPY_INSTANTIATE(double)
NABLA_COPY_INSTANTIATE(int64_t)

}  // namespace nabla::cpu
