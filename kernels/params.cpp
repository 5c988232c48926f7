// The shape arithmetic of the conv and pooling parameter structs, shared by the CPU and CUDA
// backends: finalize() checks the sizes and derives the output height and width.
#include "engine/error.h"
#include "kernels/conv.h"
#include "kernels/pool.h"

namespace nabla {

void Conv2dParams::finalize() {
  const auto describe = [&] {
    return detail::concat("conv2d: x [N,C,H,W] = [", N, ",", C, ",", H, ",", W,
                          "], w [K,C/groups,R,S] = [", K, ",", C, "/", groups, ",", R, ",", S,
                          "], stride (", stride_h, ",", stride_w, "), pad (", pad_h, ",", pad_w,
                          "), dilation (", dil_h, ",", dil_w, "), groups ", groups);
  };
  NABLA_CHECK(N >= 0 && C >= 1 && H >= 1 && W >= 1 && K >= 1 && R >= 1 && S >= 1, describe(),
              ": sizes must be positive");
  NABLA_CHECK(
      stride_h >= 1 && stride_w >= 1 && dil_h >= 1 && dil_w >= 1 && pad_h >= 0 && pad_w >= 0,
      describe(), ": stride and dilation must be >= 1 and padding >= 0");
  NABLA_CHECK(groups >= 1 && C % groups == 0 && K % groups == 0, describe(),
              ": C and K must be divisible by groups");
  // Checked before dividing: C++ division truncates toward zero, so a negative numerator
  // would silently give P = 1 instead of an error.
  const int64_t extent_h = dil_h * (R - 1) + 1, extent_w = dil_w * (S - 1) + 1;
  NABLA_CHECK(H + 2 * pad_h >= extent_h && W + 2 * pad_w >= extent_w, describe(),
              ": dilated kernel ", extent_h, "x", extent_w, " is larger than padded input ",
              H + 2 * pad_h, "x", W + 2 * pad_w);
  P = (H + 2 * pad_h - extent_h) / stride_h + 1;
  Q = (W + 2 * pad_w - extent_w) / stride_w + 1;
}

void Pool2dParams::finalize(const char* op) {
  const auto describe = [&] {
    return detail::concat(op, ": x [N,C,H,W] = [", N, ",", C, ",", H, ",", W, "], kernel (", kh,
                          ",", kw, "), stride (", sh, ",", sw, "), pad (", ph, ",", pw, ")");
  };
  NABLA_CHECK(N >= 0 && C >= 0 && H >= 1 && W >= 1 && kh >= 1 && kw >= 1, describe(),
              ": sizes must be positive");
  NABLA_CHECK(sh >= 1 && sw >= 1, describe(), ": stride must be >= 1");
  // A window made of padding alone would have no maximum; PyTorch rules it out the same way.
  NABLA_CHECK(ph >= 0 && pw >= 0 && ph <= kh / 2 && pw <= kw / 2, describe(),
              ": padding must be >= 0 and at most half the kernel");
  // Checked before dividing: C++ division truncates toward zero.
  NABLA_CHECK(H + 2 * ph >= kh && W + 2 * pw >= kw, describe(), ": kernel ", kh, "x", kw,
              " is larger than padded input ", H + 2 * ph, "x", W + 2 * pw);
  P = (H + 2 * ph - kh) / sh + 1;
  Q = (W + 2 * pw - kw) / sw + 1;
}

}  // namespace nabla
