// CPU conv2d: forward, backward-input, backward-weight by im2col / col2im + GEMM. NCHW, contiguous.
//
//   x [N, C, H, W], w [K, C/g, R, S], y [N, K, P, Q]; per sample n and group g:
//   col   [C/g*R*S, P*Q]   col[(c*R + r)*S + s, p*Q + q] = x[n, g*C/g + c, p*sh - ph + r*dh,
//                                                            q*sw - pw + s*dw]   (0 outside)
//   forward          y_g  = W_g [K/g, C/g*R*S] x col                 (+ bias)
//   backward-input   col  = W_g^T x dy_g,  dx_g = col2im(col)        (dx written =)
//   backward-weight  dW_g += dy_g [K/g, P*Q] x col^T,  db += sum dy  (accumulate)
//
// A 1x1, stride-1, pad-0 conv has col == x_g (P = H, Q = W), so it skips im2col/col2im.
//
// Threading: with at least as many samples as threads, threads split the batch and each
// runs its own single-threaded GEMMs on a private col buffer (GEMM inside a parallel
// region runs on one thread because nested parallelism is off). With fewer samples than
// threads (N = 1 in inference, attacks on one image), samples run in turn and the threads
// go to GEMM and to im2col/col2im instead.
#include "kernels/conv.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "engine/error.h"
#include "engine/memory.h"
#include "kernels/gemm.h"

namespace nabla {

namespace cpu {
namespace {

// A column buffer: uninitialised memory from the host caching allocator. im2col writes every
// element GEMM reads, and GEMM with beta = 0 writes every element col2im reads, so no zero
// fill is needed; and a training loop gets the same cached blocks back every step instead
// of fresh pages from the system (each one a page fault and a kernel zero fill).
template <typename T>
class ColBuffer {
 public:
  explicit ColBuffer(int64_t n)
      : p_(n > 0 ? static_cast<T*>(host_allocator().allocate(static_cast<size_t>(n) * sizeof(T)))
                 : nullptr) {}
  ~ColBuffer() {
    if (p_) host_allocator().deallocate(p_);
  }
  ColBuffer(const ColBuffer&) = delete;
  ColBuffer& operator=(const ColBuffer&) = delete;
  T* data() { return p_; }

 private:
  T* p_;
};

// Below this many col elements, forking threads for im2col/col2im costs more than it saves.
constexpr int64_t kMinParallelCol = 1 << 15;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Output columns q whose input column q*stride + offset lies in [0, size): [lo, hi).
// Computed once per (s, row) so the inner copy loop carries no bounds test.
void valid_range(int64_t offset, int64_t stride, int64_t size, int64_t out, int64_t& lo,
                 int64_t& hi) {
  lo = offset >= 0 ? 0 : ceil_div(-offset, stride);
  hi = offset >= size ? 0 : ceil_div(size - offset, stride);
  hi = std::min(hi, out);
  lo = std::min(lo, hi);
}

bool is_pointwise(const Conv2dParams& p) {
  return p.R == 1 && p.S == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 && p.pad_w == 0;
}

// requires: x [C/g, H, W] (one sample, one group), col [C/g*R*S, P*Q].
// ensures:  col written (=) with zeros where the window reads padding.
template <typename T>
void im2col(const Conv2dParams& p, const T* x, T* col, bool parallel) {
  const int64_t Cg = p.C / p.groups, rows = Cg * p.R * p.S, PQ = p.P * p.Q;
  // One thread per block of col rows (c, r, s): rows are disjoint, so no races.
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t c = row / (p.R * p.S), r = row / p.S % p.R, s = row % p.S;
    const T* xc = x + c * p.H * p.W;
    T* out = col + row * PQ;
    const int64_t w_off = s * p.dil_w - p.pad_w;
    int64_t q_lo, q_hi;
    valid_range(w_off, p.stride_w, p.W, p.Q, q_lo, q_hi);
    for (int64_t pp = 0; pp < p.P; ++pp, out += p.Q) {
      const int64_t h = pp * p.stride_h - p.pad_h + r * p.dil_h;
      if (h < 0 || h >= p.H) {
        std::fill(out, out + p.Q, T(0));
        continue;
      }
      std::fill(out, out + q_lo, T(0));
      if (q_lo < q_hi) {
        // Start at the first valid pixel: w_off may be negative, and a pointer before the
        // start of x would be undefined behaviour even if never dereferenced.
        const T* src = xc + h * p.W + q_lo * p.stride_w + w_off;
        if (p.stride_w == 1)
          std::copy(src, src + (q_hi - q_lo), out + q_lo);
        else
          for (int64_t q = q_lo; q < q_hi; ++q) out[q] = src[(q - q_lo) * p.stride_w];
      }
      std::fill(out + q_hi, out + p.Q, T(0));
    }
  }
}

// requires: col [C/g*R*S, P*Q], dx [C/g, H, W] (one sample, one group).
// ensures:  dx written (=): zeroed, then each col entry added to the pixel it was read from.
//           Overlapping windows (stride < extent) add several entries to one pixel.
template <typename T>
void col2im(const Conv2dParams& p, const T* col, T* dx, bool parallel) {
  const int64_t Cg = p.C / p.groups, RS = p.R * p.S, PQ = p.P * p.Q;
  // One thread per input channel: all rows (c, r, s) of channel c write only plane c of dx,
  // so channels are race-free and the sum order inside a plane is fixed.
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t c = 0; c < Cg; ++c) {
    T* dxc = dx + c * p.H * p.W;
    std::fill(dxc, dxc + p.H * p.W, T(0));
    for (int64_t rs = 0; rs < RS; ++rs) {
      const int64_t r = rs / p.S, s = rs % p.S;
      const T* in = col + (c * RS + rs) * PQ;
      const int64_t w_off = s * p.dil_w - p.pad_w;
      int64_t q_lo, q_hi;
      valid_range(w_off, p.stride_w, p.W, p.Q, q_lo, q_hi);
      for (int64_t pp = 0; pp < p.P; ++pp, in += p.Q) {
        const int64_t h = pp * p.stride_h - p.pad_h + r * p.dil_h;
        if (h < 0 || h >= p.H) continue;
        T* dxrow = dxc + h * p.W;
        if (p.stride_w == 1) {
          // dx and col never overlap, which the compiler cannot prove; omp simd says so, and
          // also vectorizes at -O2, where GCC's cheap cost model skips loops of unknown length.
#pragma omp simd
          for (int64_t q = q_lo; q < q_hi; ++q) dxrow[q + w_off] += in[q];
        } else {
          for (int64_t q = q_lo; q < q_hi; ++q) dxrow[q * p.stride_w + w_off] += in[q];
        }
      }
    }
  }
}

// Sum of d[0..n). A single accumulator is a chain of dependent adds that the compiler may
// not reorder (FP addition is not associative), so it runs at one add per FP-add latency;
// kLanes independent partial sums vectorize. The order is fixed, so the result is too.
template <typename T>
T sum(const T* d, int64_t n) {
  constexpr int kLanes = 16;
  T part[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) part[l] += d[i + l];
  for (; i < n; ++i) part[0] += d[i];
  for (int width = kLanes / 2; width > 0; width /= 2)
    for (int l = 0; l < width; ++l) part[l] += part[l + width];
  return part[0];
}

// True when threads should split the batch; false when they should go to GEMM instead.
bool split_batch(int64_t N) {
  const int threads = omp_get_max_threads();
  return threads > 1 && N >= threads && !omp_in_parallel();
}

// requires: x, w, y as conv2d_forward; col holds C/g*R*S*P*Q elements (unused if pointwise).
// ensures:  y[n] written (=) for every group; runs GEMM and im2col on threads iff `inner`.
template <typename T>
void forward_sample(const Conv2dParams& p, int64_t n, const T* x, const T* w, const T* bias, T* y,
                    T* col, bool inner) {
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, CRS = Cg * p.R * p.S, PQ = p.P * p.Q;
  for (int64_t g = 0; g < p.groups; ++g) {
    const T* xg = x + (n * p.C + g * Cg) * p.H * p.W;
    T* yg = y + (n * p.K + g * Kg) * PQ;
    const T* b = xg;
    if (!is_pointwise(p)) {
      im2col(p, xg, col, inner && CRS * PQ >= kMinParallelCol);
      b = col;
    }
    gemm<T>(false, false, Kg, PQ, CRS, T(1), w + g * Kg * CRS, CRS, b, PQ, T(0), yg, PQ);
    if (bias)
      for (int64_t k = 0; k < Kg; ++k) {
        // Hoisted, since y and bias are both T* and a store to y could change bias[k]; omp simd
        // vectorizes even at -O2, where GCC's cheap cost model skips loops of unknown length.
        const T bk = bias[g * Kg + k];
        T* yk = yg + k * PQ;
#pragma omp simd
        for (int64_t i = 0; i < PQ; ++i) yk[i] += bk;
      }
  }
}

// requires: dy, w, dx as conv2d_backward_input; col as in forward_sample.
// ensures:  dx[n] written (=) for every group.
template <typename T>
void backward_input_sample(const Conv2dParams& p, int64_t n, const T* dy, const T* w, T* dx, T* col,
                           bool inner) {
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, CRS = Cg * p.R * p.S, PQ = p.P * p.Q;
  for (int64_t g = 0; g < p.groups; ++g) {
    const T* dyg = dy + (n * p.K + g * Kg) * PQ;
    T* dxg = dx + (n * p.C + g * Cg) * p.H * p.W;
    // Pointwise: col has the layout of dx_g, so GEMM writes dx directly (beta = 0 writes =).
    T* out = is_pointwise(p) ? dxg : col;
    gemm<T>(true, false, CRS, PQ, Kg, T(1), w + g * Kg * CRS, CRS, dyg, PQ, T(0), out, PQ);
    if (out == col) col2im(p, col, dxg, inner && CRS * PQ >= kMinParallelCol);
  }
}

// requires: x, dy as conv2d_backward_weight; dw [K, C/g*R*S]; col as in forward_sample.
// ensures:  dw += this sample's weight gradient (bias gradient is summed by the caller).
template <typename T>
void backward_weight_sample(const Conv2dParams& p, int64_t n, const T* x, const T* dy, T* dw,
                            T* col, bool inner) {
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, CRS = Cg * p.R * p.S, PQ = p.P * p.Q;
  for (int64_t g = 0; g < p.groups; ++g) {
    const T* xg = x + (n * p.C + g * Cg) * p.H * p.W;
    const T* b = xg;
    if (!is_pointwise(p)) {
      im2col(p, xg, col, inner && CRS * PQ >= kMinParallelCol);
      b = col;
    }
    gemm<T>(false, true, Kg, CRS, PQ, T(1), dy + (n * p.K + g * Kg) * PQ, PQ, b, PQ, T(1),
            dw + g * Kg * CRS, CRS);
  }
}

int64_t col_size(const Conv2dParams& p) {
  return is_pointwise(p) ? 0 : p.C / p.groups * p.R * p.S * p.P * p.Q;
}

}  // namespace

template <typename T>
void conv2d_forward(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  if (split_batch(p.N)) {
    // One thread per block of samples; each owns its col buffer and writes only y[n].
#pragma omp parallel
    {
      ColBuffer<T> col(col_size(p));
#pragma omp for schedule(static)
      for (int64_t n = 0; n < p.N; ++n) forward_sample(p, n, x, w, bias, y, col.data(), false);
    }
  } else {
    ColBuffer<T> col(col_size(p));
    // Samples in turn; threads work inside im2col and GEMM.
    for (int64_t n = 0; n < p.N; ++n) forward_sample(p, n, x, w, bias, y, col.data(), true);
  }
}

template <typename T>
void conv2d_backward_input(const Conv2dParams& p, const T* dy, const T* w, T* dx) {
  if (split_batch(p.N)) {
    // One thread per block of samples; each owns its col buffer and writes only dx[n].
#pragma omp parallel
    {
      ColBuffer<T> col(col_size(p));
#pragma omp for schedule(static)
      for (int64_t n = 0; n < p.N; ++n) backward_input_sample(p, n, dy, w, dx, col.data(), false);
    }
  } else {
    ColBuffer<T> col(col_size(p));
    // Samples in turn; threads work inside GEMM and col2im.
    for (int64_t n = 0; n < p.N; ++n) backward_input_sample(p, n, dy, w, dx, col.data(), true);
  }
}

template <typename T>
void conv2d_backward_weight(const Conv2dParams& p, const T* x, const T* dy, T* dw, T* db) {
  const int64_t wsize = p.K * (p.C / p.groups) * p.R * p.S, PQ = p.P * p.Q;
  if (split_batch(p.N)) {
    // Every thread sums its static block of samples into a private dw/db, then the private
    // buffers are added to dw/db in thread order: no races, no atomics, and the same result
    // on every run with the same thread count.
    const int threads = omp_get_max_threads();
    std::vector<T> part(static_cast<size_t>(threads) * (wsize + p.K), T(0));
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num();
      T* my_dw = part.data() + t * (wsize + p.K);
      T* my_db = my_dw + wsize;
      ColBuffer<T> col(col_size(p));
#pragma omp for schedule(static)
      for (int64_t n = 0; n < p.N; ++n) {
        backward_weight_sample(p, n, x, dy, my_dw, col.data(), false);
        if (db)
          for (int64_t k = 0; k < p.K; ++k) my_db[k] += sum(dy + (n * p.K + k) * PQ, PQ);
      }
      // Reduction: one thread per slice of dw/db elements, each summing buffers 0..threads-1.
#pragma omp for schedule(static)
      for (int64_t i = 0; i < wsize + (db ? p.K : 0); ++i) {
        T acc = 0;
        for (int u = 0; u < threads; ++u) acc += part[u * (wsize + p.K) + i];
        if (i < wsize)
          dw[i] += acc;
        else
          db[i - wsize] += acc;
      }
    }
  } else {
    ColBuffer<T> col(col_size(p));
    // Samples in turn, GEMM accumulating straight into dw (beta = 1); threads work inside
    // im2col and GEMM.
    for (int64_t n = 0; n < p.N; ++n) backward_weight_sample(p, n, x, dy, dw, col.data(), true);
    if (db) {
      // One thread per output channel k: each owns db[k] and sums over n in order.
#pragma omp parallel for schedule(static) if (p.N * p.K * PQ >= kMinParallelCol)
      for (int64_t k = 0; k < p.K; ++k) {
        T acc = 0;
        for (int64_t n = 0; n < p.N; ++n) acc += sum(dy + (n * p.K + k) * PQ, PQ);
        db[k] += acc;
      }
    }
  }
}

NABLA_CONV_INSTANTIATE(float)
NABLA_CONV_INSTANTIATE(double)

}  // namespace cpu
}  // namespace nabla
