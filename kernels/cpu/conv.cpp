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
// Small maps (P*Q < kChunkColumns) batch samples: col holds nb samples side by side,
// [C/g*R*S, nb*P*Q], and y_g / dy_g are copied to and from channel-major [K/g, nb*P*Q], so
// each direction is one GEMM per chunk of nb samples rather than nb thin GEMMs.
//
// Threading: with per-sample GEMMs and at least as many samples as threads, threads split
// the batch and each runs its own single-threaded GEMMs on a private col buffer (GEMM inside
// a parallel region runs on one thread because nested parallelism is off). Otherwise (one
// sample, as in inference or attacks on one image, or batched chunks) chunks run in turn and
// the threads go to GEMM, im2col/col2im and the copies instead.
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

// One row (c, r, s) of the column matrix of one sample and group.
// requires: x [C/g, H, W] (one sample, one group), out [P*Q].
// ensures:  out written (=) with zeros where the window reads padding.
template <typename T>
void im2col_row(const Conv2dParams& p, const T* x, int64_t row, T* out) {
  const int64_t c = row / (p.R * p.S), r = row / p.S % p.R, s = row % p.S;
  const T* xc = x + c * p.H * p.W;
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

// requires: x [nb samples of C/g, H, W] at sample stride x_stride (one group), col with
//           C/g*R*S rows of row stride ld >= nb*P*Q.
// ensures:  col[row, j*P*Q + pq] = column entry (row, pq) of sample j, written (=).
template <typename T>
void im2col(const Conv2dParams& p, const T* x, int64_t x_stride, int64_t nb, T* col, int64_t ld,
            bool parallel) {
  const int64_t rows = p.C / p.groups * p.R * p.S, PQ = p.P * p.Q;
  // One thread per (sample, row) pair: each writes its own PQ entries, so no races.
#pragma omp parallel for collapse(2) schedule(static) if (parallel)
  for (int64_t j = 0; j < nb; ++j)
    for (int64_t row = 0; row < rows; ++row)
      im2col_row(p, x + j * x_stride, row, col + row * ld + j * PQ);
}

// requires: col with C/g*R*S rows of row stride ld (one sample's P*Q entries per row),
//           dx [C/g, H, W] (one sample, one group).
// ensures:  dx written (=): zeroed, then each col entry added to the pixel it was read from.
//           Overlapping windows (stride < extent) add several entries to one pixel.
template <typename T>
void col2im_channel(const Conv2dParams& p, const T* col, int64_t ld, int64_t c, T* dx) {
  const int64_t RS = p.R * p.S;
  T* dxc = dx + c * p.H * p.W;
  std::fill(dxc, dxc + p.H * p.W, T(0));
  for (int64_t rs = 0; rs < RS; ++rs) {
    const int64_t r = rs / p.S, s = rs % p.S;
    const T* in = col + (c * RS + rs) * ld;
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

// requires: col as im2col writes it for nb samples (row stride ld); dx [nb samples of C/g, H, W]
//           at sample stride dx_stride (one group).
// ensures:  every sample's dx written (=) by col2im_channel.
template <typename T>
void col2im(const Conv2dParams& p, const T* col, int64_t ld, int64_t nb, T* dx, int64_t dx_stride,
            bool parallel) {
  const int64_t Cg = p.C / p.groups, PQ = p.P * p.Q;
  // One thread per (sample, input channel): all rows (c, r, s) of channel c write only plane
  // c of that sample's dx, so the pairs are race-free and the sum order inside a plane is fixed.
#pragma omp parallel for collapse(2) schedule(static) if (parallel)
  for (int64_t j = 0; j < nb; ++j)
    for (int64_t c = 0; c < Cg; ++c) col2im_channel(p, col + j * PQ, ld, c, dx + j * dx_stride);
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

// Below this many output pixels per sample, samples are batched so that a chunk's GEMM has
// about this many columns: the columns of nb samples sit side by side in one col
// [C/g*R*S, nb*P*Q]. A 4x4 map gives a GEMM only 16 columns wide, a third of one 8x48 register
// tile, and a 1x1 map (DCGAN's last D layer, G's first) a matrix-vector product; and each of
// the nb GEMMs packs the whole weight matrix again. Measured on DCGAN at 32x32 (batch 64, one
// thread, bench_train_step BM_dcgan_step): 490 -> 370 ms of CPU per step; on the U-Net train
// step 3%. Larger maps keep per-sample GEMMs, whose col stays in L2.
constexpr int64_t kChunkColumns = 256;
// At most this many col elements per chunk (1 MiB of floats, about one core's L2): batching
// 8x8 maps into chunks of 16 MiB made both workloads slower than per-sample GEMMs.
constexpr int64_t kMaxChunkCol = int64_t(1) << 18;

// Samples per chunk: 1 (per-sample GEMMs, the layout of y and dx) for large maps.
int64_t chunk_samples(const Conv2dParams& p) {
  const int64_t PQ = p.P * p.Q, CRS = p.C / p.groups * p.R * p.S;
  if (PQ >= kChunkColumns || p.N == 1) return 1;
  const int64_t want = (kChunkColumns + PQ - 1) / PQ,
                fit = kMaxChunkCol / std::max<int64_t>(CRS * PQ, 1);
  return std::clamp<int64_t>(std::min(want, fit), 1, p.N);
}

// Scratch for one chunk of nb samples: col [C/g*R*S, nb*P*Q] (none for a pointwise conv with
// nb = 1), and for nb > 1 tmp [K/g, nb*P*Q], the GEMM's side of y or dy in channel-major order.
template <typename T>
struct Scratch {
  Scratch(const Conv2dParams& p, int64_t nb)
      : col(nb == 1 && is_pointwise(p) ? 0 : p.C / p.groups * p.R * p.S * nb * p.P * p.Q),
        tmp(nb == 1 ? 0 : p.K / p.groups * nb * p.P * p.Q) {}
  ColBuffer<T> col, tmp;
};

// One group's Kg channels of nb samples in NCHW order (y at the group's first channel of the
// first sample; sample stride K*P*Q) against the same values in channel-major order,
// tmp [Kg, nb*P*Q]: the layout of a chunk's GEMM operand. Both copies run one thread per
// (sample, channel) plane when `parallel`.
template <typename T>
void to_channel_major(const Conv2dParams& p, int64_t nb, const T* y, T* tmp, bool parallel) {
  const int64_t Kg = p.K / p.groups, PQ = p.P * p.Q, ld = nb * PQ;
#pragma omp parallel for collapse(2) schedule(static) if (parallel)
  for (int64_t j = 0; j < nb; ++j)
    for (int64_t k = 0; k < Kg; ++k) {
      const T* yk = y + (j * p.K + k) * PQ;
      std::copy(yk, yk + PQ, tmp + k * ld + j * PQ);
    }
}

// The inverse copy, adding bias[k] (the group's own Kg biases) to channel k when bias is given.
template <typename T>
void from_channel_major(const Conv2dParams& p, int64_t nb, const T* tmp, const T* bias, T* y,
                        bool parallel) {
  const int64_t Kg = p.K / p.groups, PQ = p.P * p.Q, ld = nb * PQ;
#pragma omp parallel for collapse(2) schedule(static) if (parallel)
  for (int64_t j = 0; j < nb; ++j)
    for (int64_t k = 0; k < Kg; ++k) {
      const T* tk = tmp + k * ld + j * PQ;
      T* yk = y + (j * p.K + k) * PQ;
      const T bk = bias ? bias[k] : T(0);
#pragma omp simd
      for (int64_t i = 0; i < PQ; ++i) yk[i] = tk[i] + bk;
    }
}

// requires: x, w, y as conv2d_forward; samples n0 .. n0+nb-1; s sized for nb.
// ensures:  those samples of y written (=) for every group; im2col, the copies and GEMM run
//           on threads iff `inner` (GEMM also needs a large enough problem).
template <typename T>
void forward_chunk(const Conv2dParams& p, int64_t n0, int64_t nb, const T* x, const T* w,
                   const T* bias, T* y, Scratch<T>& s, bool inner) {
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, CRS = Cg * p.R * p.S, PQ = p.P * p.Q;
  const int64_t ld = nb * PQ;
  for (int64_t g = 0; g < p.groups; ++g) {
    const T* xg = x + (n0 * p.C + g * Cg) * p.H * p.W;
    T* yg = y + (n0 * p.K + g * Kg) * PQ;
    const T* b = xg;
    if (!(s.col.data() == nullptr)) {
      im2col(p, xg, p.C * p.H * p.W, nb, s.col.data(), ld, inner && CRS * ld >= kMinParallelCol);
      b = s.col.data();
    }
    if (nb > 1) {
      gemm<T>(false, false, Kg, ld, CRS, T(1), w + g * Kg * CRS, CRS, b, ld, T(0), s.tmp.data(),
              ld);
      from_channel_major(p, nb, s.tmp.data(), bias ? bias + g * Kg : nullptr, yg,
                         inner && Kg * ld >= kMinParallelCol);
      continue;
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

// requires: dy, w, dx as conv2d_backward_input; samples n0 .. n0+nb-1; s sized for nb.
// ensures:  those samples of dx written (=) for every group.
template <typename T>
void backward_input_chunk(const Conv2dParams& p, int64_t n0, int64_t nb, const T* dy, const T* w,
                          T* dx, Scratch<T>& s, bool inner) {
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, CRS = Cg * p.R * p.S, PQ = p.P * p.Q;
  const int64_t ld = nb * PQ;
  for (int64_t g = 0; g < p.groups; ++g) {
    const T* b = dy + (n0 * p.K + g * Kg) * PQ;
    T* dxg = dx + (n0 * p.C + g * Cg) * p.H * p.W;
    if (nb > 1) {
      to_channel_major(p, nb, b, s.tmp.data(), inner && Kg * ld >= kMinParallelCol);
      b = s.tmp.data();
    }
    // Pointwise with one sample: col has the layout of dx_g, so GEMM writes dx directly
    // (beta = 0 writes =).
    T* out = (s.col.data() == nullptr) ? dxg : s.col.data();
    gemm<T>(true, false, CRS, ld, Kg, T(1), w + g * Kg * CRS, CRS, b, ld, T(0), out, ld);
    if (out != dxg)
      col2im(p, out, ld, nb, dxg, p.C * p.H * p.W, inner && CRS * ld >= kMinParallelCol);
  }
}

// requires: x, dy as conv2d_backward_weight; dw [K, C/g*R*S]; samples n0 .. n0+nb-1.
// ensures:  dw += those samples' weight gradient (the bias gradient is summed by the caller).
template <typename T>
void backward_weight_chunk(const Conv2dParams& p, int64_t n0, int64_t nb, const T* x, const T* dy,
                           T* dw, Scratch<T>& s, bool inner) {
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, CRS = Cg * p.R * p.S, PQ = p.P * p.Q;
  const int64_t ld = nb * PQ;
  for (int64_t g = 0; g < p.groups; ++g) {
    const T* xg = x + (n0 * p.C + g * Cg) * p.H * p.W;
    const T* b = xg;
    if (!(s.col.data() == nullptr)) {
      im2col(p, xg, p.C * p.H * p.W, nb, s.col.data(), ld, inner && CRS * ld >= kMinParallelCol);
      b = s.col.data();
    }
    const T* a = dy + (n0 * p.K + g * Kg) * PQ;
    if (nb > 1) {
      to_channel_major(p, nb, a, s.tmp.data(), inner && Kg * ld >= kMinParallelCol);
      a = s.tmp.data();
    }
    gemm<T>(false, true, Kg, CRS, ld, T(1), a, ld, b, ld, T(1), dw + g * Kg * CRS, CRS);
  }
}

}  // namespace

// Threading, in both directions: with per-sample GEMMs (large maps) and at least as many
// samples as threads, threads split the batch, each with its own scratch; otherwise chunks
// run in turn and the threads work inside im2col/col2im, the copies and GEMM.
template <typename T>
void conv2d_forward(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  const int64_t nb = chunk_samples(p);
  if (nb == 1 && split_batch(p.N)) {
    // One thread per block of samples; each owns its scratch and writes only y[n].
#pragma omp parallel
    {
      Scratch<T> s(p, 1);
#pragma omp for schedule(static)
      for (int64_t n = 0; n < p.N; ++n) forward_chunk(p, n, 1, x, w, bias, y, s, false);
    }
  } else {
    Scratch<T> s(p, nb);
    for (int64_t n0 = 0; n0 < p.N; n0 += nb) {
      const int64_t m = std::min(nb, p.N - n0);
      forward_chunk(p, n0, m, x, w, bias, y, s, true);
    }
  }
}

template <typename T>
void conv2d_backward_input(const Conv2dParams& p, const T* dy, const T* w, T* dx) {
  const int64_t nb = chunk_samples(p);
  if (nb == 1 && split_batch(p.N)) {
    // One thread per block of samples; each owns its scratch and writes only dx[n].
#pragma omp parallel
    {
      Scratch<T> s(p, 1);
#pragma omp for schedule(static)
      for (int64_t n = 0; n < p.N; ++n) backward_input_chunk(p, n, 1, dy, w, dx, s, false);
    }
  } else {
    Scratch<T> s(p, nb);
    for (int64_t n0 = 0; n0 < p.N; n0 += nb) {
      const int64_t m = std::min(nb, p.N - n0);
      backward_input_chunk(p, n0, m, dy, w, dx, s, true);
    }
  }
}

template <typename T>
void conv2d_backward_weight(const Conv2dParams& p, const T* x, const T* dy, T* dw, T* db) {
  const int64_t wsize = p.K * (p.C / p.groups) * p.R * p.S, PQ = p.P * p.Q;
  const int64_t nb = chunk_samples(p);
  if (nb == 1 && split_batch(p.N)) {
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
      Scratch<T> s(p, 1);
#pragma omp for schedule(static)
      for (int64_t n = 0; n < p.N; ++n) {
        backward_weight_chunk(p, n, 1, x, dy, my_dw, s, false);
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
    // Chunks in turn, GEMM accumulating straight into dw (beta = 1); threads work inside
    // im2col, the copies and GEMM.
    Scratch<T> s(p, nb);
    for (int64_t n0 = 0; n0 < p.N; n0 += nb) {
      const int64_t m = std::min(nb, p.N - n0);
      backward_weight_chunk(p, n0, m, x, dy, dw, s, true);
    }
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
