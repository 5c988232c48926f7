// Softmax, log_softmax and dropout: argument checks, dispatch to kernels/softmax.h, backward
// rules.
#include <nabla/ops/activation.h>

#include <nabla/dispatch.h>
#include <nabla/ops/common.h>

#include "kernels/random.h"
#include "kernels/softmax.h"

namespace nabla {

using namespace ops_detail;

namespace {

Tensor softmax_impl(const Tensor& x, int64_t dim_in, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  NABLA_CHECK(is_floating(x.dtype()), name, ": expects a float32 or float64 tensor, got ", x.str());
  const int64_t dim = wrap_dim(dim_in, x.dim(), name);
  const Axis a = axis_of(x.shape(), dim);
  Tensor xc = x.contiguous();
  Tensor y = new_like(xc, xc.shape());
  dispatch_floating(xc, name, [&](auto t) {
    using T = decltype(t);
    if (log) {
      NABLA_KERNEL(xc.device(), log_softmax_forward<T>)
      (xc.data<T>(), y.data<T>(), a.outer, a.D, a.inner);
    } else {
      NABLA_KERNEL(xc.device(), softmax_forward<T>)
      (xc.data<T>(), y.data<T>(), a.outer, a.D, a.inner);
    }
  });
  count_kernel(log ? "log_softmax_forward" : "softmax_forward");
  // Both backwards need only the output, so the input is not kept alive.
  Tensor ys = y.detach();
  record(name, {x}, y, [ys, a, log, name](const std::vector<Tensor>& g, const std::vector<bool>&) {
    Tensor dy = g[0].contiguous();
    Tensor dx = new_like(ys, ys.shape());
    dispatch_floating(ys, name, [&](auto t) {
      using T = decltype(t);
      if (log) {
        NABLA_KERNEL(ys.device(), log_softmax_backward<T>)
        (ys.data<T>(), dy.data<T>(), dx.data<T>(), a.outer, a.D, a.inner);
      } else {
        NABLA_KERNEL(ys.device(), softmax_backward<T>)
        (ys.data<T>(), dy.data<T>(), dx.data<T>(), a.outer, a.D, a.inner);
      }
    });
    count_kernel(log ? "log_softmax_backward" : "softmax_backward");
    return std::vector<Tensor>{dx};
  });
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
  return softmax_impl(x, dim, false);
}
Tensor log_softmax(const Tensor& x, int64_t dim) {
  return softmax_impl(x, dim, true);
}

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  // Written so that a NaN p fails too.
  NABLA_CHECK(p >= 0 && p <= 1, "dropout: p must be in [0, 1], got ", p, " for ", x.str());
  NABLA_CHECK(is_floating(x.dtype()), "dropout: expects a float32 or float64 tensor, got ",
              x.str());
  if (!training || p == 0) return x;
  Generator& g = gen ? *gen : default_generator();
  Tensor xc = x.contiguous();
  Tensor mask = new_like(xc, xc.shape());
  Tensor y = new_like(xc, xc.shape());
  const int64_t n = xc.numel();
  dispatch_floating(xc, "dropout", [&](auto t) {
    using T = decltype(t);
    // The draw reserves as many counters as cpu::uniform<T> of n elements, so a later draw
    // from the generator never reuses the mask's numbers.
    const uint64_t blocks =
        sizeof(T) == 4 ? cpu::philox_blocks_float(n) : cpu::philox_blocks_double(n);
    const uint64_t offset = g.advance(blocks);
    NABLA_KERNEL(xc.device(), dropout_forward<T>)
    (g.seed(), offset, xc.data<T>(), mask.data<T>(), y.data<T>(), n, T(p));
  });
  count_kernel("dropout_forward");
  record("dropout", {x}, y, [mask](const std::vector<Tensor>& g, const std::vector<bool>&) {
    Tensor dy = g[0].contiguous();
    Tensor dx = new_like(mask, mask.shape());
    dispatch_floating(mask, "dropout", [&](auto t) {
      using T = decltype(t);
      NABLA_KERNEL(mask.device(), dropout_backward<T>)
      (mask.data<T>(), dy.data<T>(), dx.data<T>(), dx.numel());
    });
    count_kernel("dropout_backward");
    return std::vector<Tensor>{dx};
  });
  return y;
}

}  // namespace nabla
