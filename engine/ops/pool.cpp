// Pooling and upsampling ops: checks, dispatch to kernels/pool.h, backward rules.
#include <nabla/ops/pool.h>

#include <nabla/dispatch.h>
#include <nabla/ops/common.h>

#include "kernels/pool.h"
#include "kernels/resize.h"

namespace nabla {

using namespace ops_detail;

namespace {

Pool2dParams pool_params(const char* op, const Tensor& x, int64_t k, int64_t s, int64_t pad) {
  NABLA_CHECK(x.dim() == 4, op, ": input must be 4-D NCHW, got ", x.str());
  Pool2dParams p;
  p.N = x.size(0), p.C = x.size(1), p.H = x.size(2), p.W = x.size(3);
  p.kh = p.kw = k;
  p.sh = p.sw = s == 0 ? k : s;
  p.ph = p.pw = pad;
  try {
    p.finalize(op);
  } catch (const Error& e) {
    throw Error(detail::concat(e.what(), " (input ", shape_str(x.shape()), ")"));
  }
  return p;
}

void check_upsample(const char* op, const Tensor& x, int64_t oh, int64_t ow) {
  NABLA_CHECK(x.dim() == 4, op, ": input must be 4-D NCHW, got ", x.str());
  NABLA_CHECK(oh >= 1 && ow >= 1 && x.size(2) >= 1 && x.size(3) >= 1, op, ": cannot resize ",
              shape_str(x.shape()), " to ", oh, "x", ow);
}

}  // namespace

Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  const char* op = "max_pool2d";
  Pool2dParams p = pool_params(op, x, kernel, stride, padding);
  Tensor xc = x.contiguous();
  Tensor y = new_like(xc, {p.N, p.C, p.P, p.Q});
  Tensor idx = empty({p.N, p.C, p.P, p.Q}, DType::Int64, x.device());
  dispatch_floating(xc, op, [&](auto t) {
    using T = decltype(t);
    const auto forward = NABLA_KERNEL(xc.device(), max_pool2d_forward<T>);
    forward(p, xc.data<T>(), y.data<T>(), idx.data<int64_t>());
  });
  count_kernel("max_pool2d_forward");
  record(op, {x}, y, [p, idx](const std::vector<Tensor>& g, const std::vector<bool>&) {
    Tensor dy = g[0].contiguous();
    Tensor dx = new_like(dy, {p.N, p.C, p.H, p.W});
    dispatch_floating(dy, "max_pool2d", [&](auto t) {
      using T = decltype(t);
      const auto backward = NABLA_KERNEL(dy.device(), max_pool2d_backward<T>);
      backward(p, dy.data<T>(), idx.data<int64_t>(), dx.data<T>());
    });
    count_kernel("max_pool2d_backward");
    return std::vector<Tensor>{dx};
  });
  return y;
}

Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  const char* op = "avg_pool2d";
  Pool2dParams p = pool_params(op, x, kernel, stride, padding);
  Tensor xc = x.contiguous();
  Tensor y = new_like(xc, {p.N, p.C, p.P, p.Q});
  dispatch_floating(xc, op, [&](auto t) {
    using T = decltype(t);
    const auto forward = NABLA_KERNEL(xc.device(), avg_pool2d_forward<T>);
    forward(p, xc.data<T>(), y.data<T>());
  });
  count_kernel("avg_pool2d_forward");
  record(op, {x}, y, [p](const std::vector<Tensor>& g, const std::vector<bool>&) {
    Tensor dy = g[0].contiguous();
    Tensor dx = new_like(dy, {p.N, p.C, p.H, p.W});
    dispatch_floating(dy, "avg_pool2d", [&](auto t) {
      using T = decltype(t);
      const auto backward = NABLA_KERNEL(dy.device(), avg_pool2d_backward<T>);
      backward(p, dy.data<T>(), dx.data<T>());
    });
    count_kernel("avg_pool2d_backward");
    return std::vector<Tensor>{dx};
  });
  return y;
}

Tensor global_avg_pool2d(const Tensor& x) {
  const char* op = "global_avg_pool2d";
  NABLA_CHECK(x.dim() == 4 && x.size(2) >= 1 && x.size(3) >= 1, op,
              ": input must be 4-D NCHW with non-empty planes, got ", x.str());
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  Tensor xc = x.contiguous();
  Tensor y = new_like(xc, {N, C});
  dispatch_floating(xc, op, [&](auto t) {
    using T = decltype(t);
    const auto forward = NABLA_KERNEL(xc.device(), global_avg_pool_forward<T>);
    forward(N, C, H, W, xc.data<T>(), y.data<T>());
  });
  count_kernel("global_avg_pool_forward");
  record(op, {x}, y, [N, C, H, W](const std::vector<Tensor>& g, const std::vector<bool>&) {
    Tensor dy = g[0].contiguous();
    Tensor dx = new_like(dy, {N, C, H, W});
    dispatch_floating(dy, "global_avg_pool2d", [&](auto t) {
      using T = decltype(t);
      const auto backward = NABLA_KERNEL(dy.device(), global_avg_pool_backward<T>);
      backward(N, C, H, W, dy.data<T>(), dx.data<T>());
    });
    count_kernel("global_avg_pool_backward");
    return std::vector<Tensor>{dx};
  });
  return y;
}

namespace {
enum class Resize { Nearest, Bilinear, BilinearAligned };

Tensor upsample_impl(const Tensor& x, int64_t OH, int64_t OW, Resize mode) {
  const char* op = mode == Resize::Nearest ? "upsample_nearest2d" : "upsample_bilinear2d";
  const char* fwd_name = mode == Resize::Nearest    ? "upsample_nearest2d_forward"
                         : mode == Resize::Bilinear ? "upsample_bilinear2d_forward"
                                                    : "upsample_bilinear2d_aligned_forward";
  const char* bwd_name = mode == Resize::Nearest    ? "upsample_nearest2d_backward"
                         : mode == Resize::Bilinear ? "upsample_bilinear2d_backward"
                                                    : "upsample_bilinear2d_aligned_backward";
  check_upsample(op, x, OH, OW);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  Tensor xc = x.contiguous();
  Tensor y = new_like(xc, {N, C, OH, OW});
  dispatch_floating(xc, op, [&](auto t) {
    using T = decltype(t);
    const auto forward = mode == Resize::Nearest
                             ? NABLA_KERNEL(xc.device(), upsample_nearest2d_forward<T>)
                         : mode == Resize::Bilinear
                             ? NABLA_KERNEL(xc.device(), upsample_bilinear2d_forward<T>)
                             : NABLA_KERNEL(xc.device(), upsample_bilinear2d_aligned_forward<T>);
    forward(N, C, H, W, OH, OW, xc.data<T>(), y.data<T>());
  });
  count_kernel(fwd_name);
  record(op, {x}, y, [=](const std::vector<Tensor>& g, const std::vector<bool>&) {
    Tensor dy = g[0].contiguous();
    Tensor dx = new_like(dy, {N, C, H, W});
    dispatch_floating(dy, op, [&](auto t) {
      using T = decltype(t);
      const auto backward =
          mode == Resize::Nearest ? NABLA_KERNEL(dy.device(), upsample_nearest2d_backward<T>)
          : mode == Resize::Bilinear
              ? NABLA_KERNEL(dy.device(), upsample_bilinear2d_backward<T>)
              : NABLA_KERNEL(dy.device(), upsample_bilinear2d_aligned_backward<T>);
      backward(N, C, H, W, OH, OW, dy.data<T>(), dx.data<T>());
    });
    count_kernel(bwd_name);
    return std::vector<Tensor>{dx};
  });
  return y;
}
}  // namespace

Tensor upsample_nearest2d(const Tensor& x, int64_t oh, int64_t ow) {
  return upsample_impl(x, oh, ow, Resize::Nearest);
}
Tensor upsample_bilinear2d(const Tensor& x, int64_t oh, int64_t ow, bool align_corners) {
  return upsample_impl(x, oh, ow, align_corners ? Resize::BilinearAligned : Resize::Bilinear);
}

Tensor upsample(const Tensor& x, int64_t scale, UpsampleMode mode, bool align_corners) {
  NABLA_CHECK(scale >= 1, "upsample: scale must be >= 1, got ", scale);
  NABLA_CHECK(x.dim() == 4, "upsample: input must be 4-D NCHW, got ", x.str());
  NABLA_CHECK(!(align_corners && mode == UpsampleMode::Nearest),
              "upsample: align_corners applies to bilinear mode only, not nearest");
  return mode == UpsampleMode::Nearest
             ? upsample_nearest2d(x, x.size(2) * scale, x.size(3) * scale)
             : upsample_bilinear2d(x, x.size(2) * scale, x.size(3) * scale, align_corners);
}

}  // namespace nabla
