// Naive reference conv, transposed conv, pooling and upsampling: the executable spec that the
// kernels are checked against. Each loop nest is the op's definition written out, with no
// im2col, no GEMM, no threads and no cleverness, so that it is easy to read and hard to get
// wrong. Single-threaded throughout. NCHW, contiguous; sizes as in kernels/conv.h and
// kernels/pool.h.
//
//   conv2d            y[n,k,p,q] = b[k] + sum_{c',r,s} x[n, g*C/g + c', p*sh - ph + r*dh,
//                                                        q*sw - pw + s*dw] * w[k, c', r, s]
//                     with g = k / (K/g); taps outside the input read 0.
//   conv_transpose2d  x [N, Cin, H, W], w [Cin, Cout/g, R, S] (PyTorch's layout),
//                     y [N, Cout, Ho, Wo], Ho = (H-1)*sh - 2*ph + dh*(R-1) + oph + 1:
//                     y[n, g*Cout/g + co', h*sh - ph + r*dh, w*sw - pw + s*dw]
//                         += x[n, ci, h, w] * w[ci, co', r, s],   g = ci / (Cin/g)
//                     (scatter; taps outside y are dropped), then y += b[co].
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/conv.h"
#include "kernels/pool.h"

namespace nabla::ref {

// requires: p finalized; x [N,C,H,W], w [K,C/g,R,S], bias [K] or nullptr, y [N,K,P,Q].
// ensures:  y written (=).
template <typename T>
void conv2d_forward(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t i = 0; i < p.P; ++i)
        for (int64_t j = 0; j < p.Q; ++j) {
          T acc = bias ? bias[k] : T(0);
          const int64_t g = k / Kg;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < p.R; ++r)
              for (int64_t s = 0; s < p.S; ++s) {
                const int64_t h = i * p.stride_h - p.pad_h + r * p.dil_h;
                const int64_t v = j * p.stride_w - p.pad_w + s * p.dil_w;
                if (h < 0 || h >= p.H || v < 0 || v >= p.W) continue;
                acc += x[((n * p.C + g * Cg + c) * p.H + h) * p.W + v] *
                       w[((k * Cg + c) * p.R + r) * p.S + s];
              }
          y[((n * p.K + k) * p.P + i) * p.Q + j] = acc;
        }
}

// requires: p finalized; dy [N,K,P,Q], w [K,C/g,R,S], dx [N,C,H,W].
// ensures:  dx written (=): every product x*w of the forward sends dy*w back to that x.
template <typename T>
void conv2d_backward_input(const Conv2dParams& p, const T* dy, const T* w, T* dx) {
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  std::fill(dx, dx + p.N * p.C * p.H * p.W, T(0));
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t i = 0; i < p.P; ++i)
        for (int64_t j = 0; j < p.Q; ++j) {
          const T d = dy[((n * p.K + k) * p.P + i) * p.Q + j];
          const int64_t g = k / Kg;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < p.R; ++r)
              for (int64_t s = 0; s < p.S; ++s) {
                const int64_t h = i * p.stride_h - p.pad_h + r * p.dil_h;
                const int64_t v = j * p.stride_w - p.pad_w + s * p.dil_w;
                if (h < 0 || h >= p.H || v < 0 || v >= p.W) continue;
                dx[((n * p.C + g * Cg + c) * p.H + h) * p.W + v] +=
                    d * w[((k * Cg + c) * p.R + r) * p.S + s];
              }
        }
}

// requires: p finalized; x [N,C,H,W], dy [N,K,P,Q], dw [K,C/g,R,S], db [K] or nullptr.
// ensures:  dw += sum_{n,p,q} dy * x (at the tap), db += sum_{n,p,q} dy.
template <typename T>
void conv2d_backward_weight(const Conv2dParams& p, const T* x, const T* dy, T* dw, T* db) {
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  for (int64_t k = 0; k < p.K; ++k) {
    const int64_t g = k / Kg;
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t r = 0; r < p.R; ++r)
        for (int64_t s = 0; s < p.S; ++s) {
          T acc = 0;
          for (int64_t n = 0; n < p.N; ++n)
            for (int64_t i = 0; i < p.P; ++i)
              for (int64_t j = 0; j < p.Q; ++j) {
                const int64_t h = i * p.stride_h - p.pad_h + r * p.dil_h;
                const int64_t v = j * p.stride_w - p.pad_w + s * p.dil_w;
                if (h < 0 || h >= p.H || v < 0 || v >= p.W) continue;
                acc += dy[((n * p.K + k) * p.P + i) * p.Q + j] *
                       x[((n * p.C + g * Cg + c) * p.H + h) * p.W + v];
              }
          dw[((k * Cg + c) * p.R + r) * p.S + s] += acc;
        }
    if (db) {
      T acc = 0;
      for (int64_t n = 0; n < p.N; ++n)
        for (int64_t i = 0; i < p.P * p.Q; ++i) acc += dy[(n * p.K + k) * p.P * p.Q + i];
      db[k] += acc;
    }
  }
}

// Shapes of a transposed convolution, named from its own point of view.
struct ConvTranspose2dShape {
  int64_t N = 0, Cin = 0, H = 0, W = 0;  // input x
  int64_t Cout = 0, R = 0, S = 0;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  int64_t out_pad_h = 0, out_pad_w = 0, groups = 1;

  int64_t Ho() const { return (H - 1) * stride_h - 2 * pad_h + dil_h * (R - 1) + out_pad_h + 1; }
  int64_t Wo() const { return (W - 1) * stride_w - 2 * pad_w + dil_w * (S - 1) + out_pad_w + 1; }
};

// requires: Ho(), Wo() >= 1; x [N,Cin,H,W], w [Cin,Cout/g,R,S], bias [Cout] or nullptr,
//           y [N,Cout,Ho,Wo].
// ensures:  y written (=) by the scatter definition in the file header.
template <typename T>
void conv_transpose2d_forward(const ConvTranspose2dShape& t, const T* x, const T* w, const T* bias,
                              T* y) {
  const int64_t Ho = t.Ho(), Wo = t.Wo(), Cig = t.Cin / t.groups, Cog = t.Cout / t.groups;
  for (int64_t n = 0; n < t.N; ++n)
    for (int64_t co = 0; co < t.Cout; ++co)
      for (int64_t i = 0; i < Ho * Wo; ++i)
        y[(n * t.Cout + co) * Ho * Wo + i] = bias ? bias[co] : T(0);
  for (int64_t n = 0; n < t.N; ++n)
    for (int64_t ci = 0; ci < t.Cin; ++ci)
      for (int64_t h = 0; h < t.H; ++h)
        for (int64_t v = 0; v < t.W; ++v) {
          const T xv = x[((n * t.Cin + ci) * t.H + h) * t.W + v];
          const int64_t g = ci / Cig;
          for (int64_t co = 0; co < Cog; ++co)
            for (int64_t r = 0; r < t.R; ++r)
              for (int64_t s = 0; s < t.S; ++s) {
                const int64_t oh = h * t.stride_h - t.pad_h + r * t.dil_h;
                const int64_t ow = v * t.stride_w - t.pad_w + s * t.dil_w;
                if (oh < 0 || oh >= Ho || ow < 0 || ow >= Wo) continue;
                y[((n * t.Cout + g * Cog + co) * Ho + oh) * Wo + ow] +=
                    xv * w[((ci * Cog + co) * t.R + r) * t.S + s];
              }
        }
}

// requires: p finalized; x [N,C,H,W]; y, argmax [N,C,P,Q].
// ensures:  y = window max over in-bounds pixels (padding never wins), argmax = h*W + w of
//           the first maximum in row-major order; a NaN in the window wins.
template <typename T>
void max_pool2d_forward(const Pool2dParams& p, const T* x, T* y, int64_t* argmax) {
  for (int64_t nc = 0; nc < p.N * p.C; ++nc)
    for (int64_t i = 0; i < p.P; ++i)
      for (int64_t j = 0; j < p.Q; ++j) {
        T best = -std::numeric_limits<T>::infinity();
        int64_t best_idx = -1;
        for (int64_t r = 0; r < p.kh; ++r)
          for (int64_t s = 0; s < p.kw; ++s) {
            const int64_t h = i * p.sh - p.ph + r, v = j * p.sw - p.pw + s;
            if (h < 0 || h >= p.H || v < 0 || v >= p.W) continue;
            const T xv = x[(nc * p.H + h) * p.W + v];
            if (best_idx < 0 || xv > best || std::isnan(xv)) {
              best = xv;
              best_idx = h * p.W + v;
            }
          }
        y[(nc * p.P + i) * p.Q + j] = best;
        argmax[(nc * p.P + i) * p.Q + j] = best_idx;
      }
}

// requires: p finalized; dy, argmax [N,C,P,Q]; dx [N,C,H,W].
// ensures:  dx[h,w] = sum of dy over outputs whose argmax is (h,w), gathered per input pixel.
template <typename T>
void max_pool2d_backward(const Pool2dParams& p, const T* dy, const int64_t* argmax, T* dx) {
  for (int64_t nc = 0; nc < p.N * p.C; ++nc)
    for (int64_t idx = 0; idx < p.H * p.W; ++idx) {
      T acc = 0;
      for (int64_t o = 0; o < p.P * p.Q; ++o)
        if (argmax[nc * p.P * p.Q + o] == idx) acc += dy[nc * p.P * p.Q + o];
      dx[nc * p.H * p.W + idx] = acc;
    }
}

// requires: p finalized; x [N,C,H,W]; y [N,C,P,Q].
// ensures:  y = (sum of the in-bounds window pixels) / (kh*kw): count_include_pad = true.
template <typename T>
void avg_pool2d_forward(const Pool2dParams& p, const T* x, T* y) {
  for (int64_t nc = 0; nc < p.N * p.C; ++nc)
    for (int64_t i = 0; i < p.P; ++i)
      for (int64_t j = 0; j < p.Q; ++j) {
        T acc = 0;
        for (int64_t r = 0; r < p.kh; ++r)
          for (int64_t s = 0; s < p.kw; ++s) {
            const int64_t h = i * p.sh - p.ph + r, v = j * p.sw - p.pw + s;
            if (h < 0 || h >= p.H || v < 0 || v >= p.W) continue;
            acc += x[(nc * p.H + h) * p.W + v];
          }
        y[(nc * p.P + i) * p.Q + j] = acc / static_cast<T>(p.kh * p.kw);
      }
}

// requires: p finalized; dy [N,C,P,Q]; dx [N,C,H,W].
// ensures:  dx[h,w] = sum over windows containing (h,w) of dy / (kh*kw), gathered per pixel.
template <typename T>
void avg_pool2d_backward(const Pool2dParams& p, const T* dy, T* dx) {
  for (int64_t nc = 0; nc < p.N * p.C; ++nc)
    for (int64_t h = 0; h < p.H; ++h)
      for (int64_t v = 0; v < p.W; ++v) {
        T acc = 0;
        for (int64_t i = 0; i < p.P; ++i)
          for (int64_t j = 0; j < p.Q; ++j) {
            const int64_t r = h - (i * p.sh - p.ph), s = v - (j * p.sw - p.pw);
            if (r >= 0 && r < p.kh && s >= 0 && s < p.kw)
              acc += dy[(nc * p.P + i) * p.Q + j] / static_cast<T>(p.kh * p.kw);
          }
        dx[(nc * p.H + h) * p.W + v] = acc;
      }
}

// requires: x [N,C,H,W]; y [N,C].   ensures: y = plane means.
template <typename T>
void global_avg_pool_forward(int64_t N, int64_t C, int64_t H, int64_t W, const T* x, T* y) {
  for (int64_t nc = 0; nc < N * C; ++nc) {
    T acc = 0;
    for (int64_t i = 0; i < H * W; ++i) acc += x[nc * H * W + i];
    y[nc] = acc / static_cast<T>(H * W);
  }
}

// requires: dy [N,C]; dx [N,C,H,W].   ensures: dx[n,c,h,w] = dy[n,c] / (H*W).
template <typename T>
void global_avg_pool_backward(int64_t N, int64_t C, int64_t H, int64_t W, const T* dy, T* dx) {
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t i = 0; i < H * W; ++i) dx[nc * H * W + i] = dy[nc] / static_cast<T>(H * W);
}

// Source index of output index i for PyTorch's mode='nearest': floor(i * in / out).
inline int64_t nearest_src(int64_t i, int64_t in, int64_t out) {
  return static_cast<int64_t>(std::floor(static_cast<double>(i) * in / out));
}

// requires: x [N,C,H,W]; y [N,C,OH,OW].   ensures: y[i,j] = x[nearest_src(i), nearest_src(j)].
template <typename T>
void upsample_nearest2d_forward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                const T* x, T* y) {
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t i = 0; i < OH; ++i)
      for (int64_t j = 0; j < OW; ++j)
        y[(nc * OH + i) * OW + j] = x[(nc * H + nearest_src(i, H, OH)) * W + nearest_src(j, W, OW)];
}

// requires: dy [N,C,OH,OW]; dx [N,C,H,W].
// ensures:  dx[h,w] = sum of dy over outputs that copy (h,w), gathered per input pixel.
template <typename T>
void upsample_nearest2d_backward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* dy, T* dx) {
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t v = 0; v < W; ++v) {
        T acc = 0;
        for (int64_t i = 0; i < OH; ++i)
          for (int64_t j = 0; j < OW; ++j)
            if (nearest_src(i, H, OH) == h && nearest_src(j, W, OW) == v)
              acc += dy[(nc * OH + i) * OW + j];
        dx[(nc * H + h) * W + v] = acc;
      }
}

// Weight that output index i (of `out`) gives input index h (of `in`) under bilinear
// align_corners = false: src = max(0, (i + 0.5) * in/out - 0.5), tent weight 1 - |src - h|
// with the last input absorbing the part of the tent past the edge.
template <typename T>
T bilinear_weight(int64_t i, int64_t h, int64_t in, int64_t out) {
  const T scale = static_cast<T>(in) / static_cast<T>(out);
  const T src = std::max(scale * (static_cast<T>(i) + T(0.5)) - T(0.5), T(0));
  const int64_t h0 = std::min(static_cast<int64_t>(src), in - 1);
  const int64_t h1 = std::min(h0 + 1, in - 1);
  const T l1 = src - static_cast<T>(h0);
  return (h == h0 ? T(1) - l1 : T(0)) + (h == h1 ? l1 : T(0));
}

// requires: x [N,C,H,W]; y [N,C,OH,OW].
// ensures:  y[i,j] = sum_{h,w} wh(i,h) * ww(j,w) * x[h,w] (separable tent weights).
template <typename T>
void upsample_bilinear2d_forward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* x, T* y) {
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t i = 0; i < OH; ++i)
      for (int64_t j = 0; j < OW; ++j) {
        T acc = 0;
        for (int64_t h = 0; h < H; ++h)
          for (int64_t v = 0; v < W; ++v)
            acc += bilinear_weight<T>(i, h, H, OH) * bilinear_weight<T>(j, v, W, OW) *
                   x[(nc * H + h) * W + v];
        y[(nc * OH + i) * OW + j] = acc;
      }
}

// requires: dy [N,C,OH,OW]; dx [N,C,H,W].
// ensures:  dx[h,w] = sum_{i,j} wh(i,h) * ww(j,w) * dy[i,j] (the transpose of the forward).
template <typename T>
void upsample_bilinear2d_backward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                                  int64_t OW, const T* dy, T* dx) {
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t v = 0; v < W; ++v) {
        T acc = 0;
        for (int64_t i = 0; i < OH; ++i)
          for (int64_t j = 0; j < OW; ++j)
            acc += bilinear_weight<T>(i, h, H, OH) * bilinear_weight<T>(j, v, W, OW) *
                   dy[(nc * OH + i) * OW + j];
        dx[(nc * H + h) * W + v] = acc;
      }
}

}  // namespace nabla::ref
