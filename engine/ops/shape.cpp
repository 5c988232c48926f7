// Shape ops: argument checks, dispatch to kernels/shape.h, backward rules.
#include <nabla/ops/shape.h>

#include <algorithm>
#include <sstream>
#include <string>

#include <nabla/dispatch.h>
#include <nabla/ops/common.h>

#include "kernels/copy.h"
#include "kernels/shape.h"

namespace nabla {

using namespace ops_detail;

namespace {

// "float32[2, 3] cpu, float32[2, 4] cpu": every input, for error messages.
std::string list_str(const std::vector<Tensor>& xs) {
  std::ostringstream os;
  for (size_t i = 0; i < xs.size(); ++i) os << (i ? ", " : "") << xs[i].str();
  return os.str();
}

}  // namespace

const char* pad_mode_name(PadMode mode) {
  switch (mode) {
    case PadMode::Constant:
      return "constant";
    case PadMode::Reflect:
      return "reflect";
    case PadMode::Replicate:
      return "replicate";
  }
  return "?";
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  return x.flatten(start_dim, end_dim);
}

// ---------------------------------------------------------------- concat
Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  NABLA_CHECK(!xs.empty(), "concat: needs at least one tensor");
  for (size_t i = 0; i < xs.size(); ++i)
    NABLA_CHECK(xs[i].defined(), "concat: tensor ", i, " is undefined (", list_str(xs), ")");
  const Tensor& x0 = xs[0];
  for (const Tensor& x : xs) {
    NABLA_CHECK(x.dtype() == x0.dtype() && x.device() == x0.device(),
                "concat: dtype or device mismatch between ", list_str(xs));
  }
  NABLA_CHECK(x0.dim() >= 1, "concat: cannot concatenate 0-dim tensors (", list_str(xs), ")");
  dim = wrap_dim(dim, x0.dim(), "concat");
  for (const Tensor& x : xs) {
    bool ok = x.dim() == x0.dim();
    for (int64_t d = 0; ok && d < x0.dim(); ++d)
      ok = d == dim || x.shape()[size_t(d)] == x0.shape()[size_t(d)];
    NABLA_CHECK(ok, "concat: shapes must match except in dim ", dim, ", got ", list_str(xs));
  }
  const int64_t n = int64_t(xs.size());
  Axis ar = axis_of(x0.shape(), dim);
  std::vector<Tensor> xc;
  std::vector<int64_t> lens;
  std::vector<Shape> in_shapes;
  Shape out = x0.shape();
  out[size_t(dim)] = 0;
  for (const Tensor& x : xs) {
    xc.push_back(x.detach().contiguous());
    lens.push_back(x.size(dim) * ar.inner);
    in_shapes.push_back(x.shape());
    out[size_t(dim)] += x.size(dim);
  }
  Tensor y = new_like(x0, out);
  dispatch_floating(x0, "concat", [&](auto t) {
    using T = decltype(t);
    std::vector<const T*> ptrs;
    for (const Tensor& x : xc) ptrs.push_back(x.data<T>());
    const auto forward = NABLA_KERNEL(x0.device(), concat_forward<T>);
    forward(n, ptrs.data(), lens.data(), ar.outer, y.data<T>());
  });
  count_kernel("concat_forward");
  const int64_t outer = ar.outer;
  auto rule = [n, lens, outer, in_shapes](const std::vector<Tensor>& g,
                                          const std::vector<bool>& needs) {
    Tensor dy = g[0].contiguous();
    std::vector<Tensor> dxs(static_cast<size_t>(n));
    for (size_t i = 0; i < size_t(n); ++i)
      if (needs[i]) dxs[i] = new_like(dy, in_shapes[i]);
    dispatch_floating(dy, "concat", [&](auto t) {
      using T = decltype(t);
      std::vector<T*> ptrs;
      for (const Tensor& dx : dxs) ptrs.push_back(ptr_or_null<T>(dx));
      const auto backward = NABLA_KERNEL(dy.device(), concat_backward<T>);
      backward(n, dy.data<T>(), lens.data(), outer, ptrs.data());
    });
    count_kernel("concat_backward");
    return dxs;
  };
  record("concat", xs, y, rule);
  return y;
}

// ---------------------------------------------------------------- split
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  NABLA_CHECK(x.defined(), "split: undefined tensor");
  NABLA_CHECK(x.dim() >= 1, "split: cannot split the 0-dim tensor ", x.str());
  dim = wrap_dim(dim, x.dim(), "split");
  NABLA_CHECK(!sizes.empty(), "split: no sizes given for ", x.str());
  int64_t total = 0;
  for (int64_t s : sizes) {
    NABLA_CHECK(s >= 0, "split: negative size in ", shape_str(sizes), " for ", x.str());
    total += s;
  }
  NABLA_CHECK(total == x.size(dim), "split: sizes ", shape_str(sizes), " sum to ", total,
              " but dim ", dim, " of ", x.str(), " has ", x.size(dim));
  const int64_t n = int64_t(sizes.size());
  Axis ar = axis_of(x.shape(), dim);
  Tensor xc = x.detach().contiguous();
  std::vector<int64_t> lens;
  std::vector<Tensor> ys;
  std::vector<Shape> out_shapes;
  for (int64_t s : sizes) {
    Shape sh = x.shape();
    sh[size_t(dim)] = s;
    lens.push_back(s * ar.inner);
    ys.push_back(new_like(xc, sh));
    out_shapes.push_back(sh);
  }
  dispatch_floating(xc, "split", [&](auto t) {
    using T = decltype(t);
    std::vector<T*> ptrs;
    for (const Tensor& y : ys) ptrs.push_back(y.data<T>());
    const auto forward = NABLA_KERNEL(xc.device(), split_forward<T>);
    forward(n, xc.data<T>(), lens.data(), ar.outer, ptrs.data());
  });
  count_kernel("split_forward");
  std::vector<Tensor*> outs;
  for (Tensor& y : ys) outs.push_back(&y);
  const int64_t outer = ar.outer;
  Shape in = x.shape();
  const DType dt = x.dtype();
  const Device dev = x.device();
  auto rule = [n, lens, outer, in, out_shapes, dt, dev](const std::vector<Tensor>& g,
                                                        const std::vector<bool>&) {
    // The engine hands zeros for pieces that got no gradient; an undefined one is treated the
    // same way so the rule never depends on that.
    std::vector<Tensor> dys(static_cast<size_t>(n));
    for (size_t i = 0; i < dys.size(); ++i)
      dys[i] = g[i].defined() ? g[i].contiguous() : zeros(out_shapes[i], dt, dev);
    Tensor dx = empty(in, dt, dev);
    dispatch_floating(dx, "split", [&](auto t) {
      using T = decltype(t);
      // Empty pieces (len 0) are never read.
      std::vector<const T*> ptrs;
      for (const Tensor& dy : dys) ptrs.push_back(dy.data<T>());
      const auto backward = NABLA_KERNEL(dx.device(), split_backward<T>);
      backward(n, ptrs.data(), lens.data(), outer, dx.data<T>());
    });
    count_kernel("split_backward");
    return std::vector<Tensor>{dx};
  };
  record("split", {x}, outs, rule);
  return ys;
}

std::vector<Tensor> split(const Tensor& x, int64_t chunk, int64_t dim) {
  NABLA_CHECK(x.defined(), "split: undefined tensor");
  NABLA_CHECK(chunk >= 1, "split: chunk size ", chunk, " must be >= 1 for ", x.str());
  NABLA_CHECK(x.dim() >= 1, "split: cannot split the 0-dim tensor ", x.str());
  int64_t left = x.size(wrap_dim(dim, x.dim(), "split"));
  std::vector<int64_t> sizes;
  for (; left > 0; left -= chunk) sizes.push_back(std::min(chunk, left));
  if (sizes.empty()) sizes.push_back(0);
  return split(x, sizes, dim);
}

// ---------------------------------------------------------------- pad
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode, double value) {
  NABLA_CHECK(x.defined(), "pad: undefined tensor");
  const char* mname = pad_mode_name(mode);
  const int64_t k = int64_t(pads.size()) / 2, nd = x.dim();
  NABLA_CHECK(pads.size() % 2 == 0 && k <= nd, "pad: pads ", shape_str(pads),
              " must be (left, right) pairs for at most ", nd, " dims of ", x.str());
  NABLA_CHECK(nd <= kMaxDims, "pad: at most ", kMaxDims, " dims, got ", x.str());
  // lo/hi per dim, the pairs counted from the last dim backwards.
  Shape lo(size_t(nd), 0), hi(size_t(nd), 0), out = x.shape();
  for (int64_t j = 0; j < k; ++j) {
    const size_t d = size_t(nd - 1 - j);
    lo[d] = pads[size_t(2 * j)];
    hi[d] = pads[size_t(2 * j + 1)];
    out[d] += lo[d] + hi[d];
    NABLA_CHECK(out[d] >= 0, "pad: pads ", shape_str(pads), " crop dim ", d, " of ", x.str(),
                " below zero");
  }
  Tensor xc = x.detach().contiguous();
  Tensor y = new_like(xc, out);
  Shape in = x.shape();

  if (mode == PadMode::Constant) {
    dispatch_floating(xc, "pad", [&](auto t) {
      using T = decltype(t);
      const auto forward = NABLA_KERNEL(xc.device(), pad_constant_forward<T>);
      forward(int(nd), in.data(), lo.data(), hi.data(), xc.data<T>(), y.data<T>(), T(value));
    });
    count_kernel("pad_constant_forward");
    record("pad", {x}, y, [in, lo, hi](const std::vector<Tensor>& g, const std::vector<bool>&) {
      Tensor dy = g[0].contiguous();
      Tensor dx = new_like(dy, in);
      dispatch_floating(dy, "pad", [&](auto t) {
        using T = decltype(t);
        const auto backward = NABLA_KERNEL(dy.device(), pad_constant_backward<T>);
        backward(int(in.size()), in.data(), lo.data(), hi.data(), dy.data<T>(), dx.data<T>());
      });
      count_kernel("pad_constant_backward");
      return std::vector<Tensor>{dx};
    });
    return y;
  }

  NABLA_CHECK(k == 1 || k == 2, "pad: ", mname, " mode pads the last 1 or 2 dims, got pads ",
              shape_str(pads), " for ", x.str());
  NABLA_CHECK(value == 0, "pad: ", mname, " mode takes no fill value (got ", value, ") for ",
              x.str());
  for (int64_t j = 0; j < k; ++j) {
    const int64_t d = nd - 1 - j, n = x.shape()[size_t(d)];
    const int64_t a = pads[size_t(2 * j)], b = pads[size_t(2 * j + 1)];
    NABLA_CHECK(a >= 0 && b >= 0, "pad: ", mname, " mode needs pads >= 0, got ", shape_str(pads),
                " for ", x.str());
    if (mode == PadMode::Reflect)
      NABLA_CHECK(a < n && b < n, "pad: reflect pads ", shape_str(pads),
                  " must be smaller than the padded dim ", d, " of ", x.str());
    else
      NABLA_CHECK(n >= 1, "pad: replicate cannot pad the empty dim ", d, " of ", x.str());
  }
  // Planes [P, H, W]; with one padded dim H is 1 and top = bottom = 0.
  const int64_t W = x.size(-1), H = k == 2 ? x.size(-2) : 1;
  const int64_t left = pads[0], right = pads[1];
  const int64_t top = k == 2 ? pads[2] : 0, bottom = k == 2 ? pads[3] : 0;
  int64_t P = 1;
  for (int64_t d = 0; d < nd - k; ++d) P *= x.shape()[size_t(d)];
  const bool reflect = mode == PadMode::Reflect;
  dispatch_floating(xc, "pad", [&](auto t) {
    using T = decltype(t);
    const auto forward = reflect ? NABLA_KERNEL(xc.device(), pad_reflect_forward<T>)
                                 : NABLA_KERNEL(xc.device(), pad_replicate_forward<T>);
    forward(xc.data<T>(), y.data<T>(), P, H, W, top, bottom, left, right);
  });
  count_kernel(reflect ? "pad_reflect_forward" : "pad_replicate_forward");
  auto rule = [in, reflect, P, H, W, top, bottom, left, right](const std::vector<Tensor>& g,
                                                               const std::vector<bool>&) {
    Tensor dy = g[0].contiguous();
    Tensor dx = new_like(dy, in);
    dispatch_floating(dy, "pad", [&](auto t) {
      using T = decltype(t);
      const auto backward = reflect ? NABLA_KERNEL(dy.device(), pad_reflect_backward<T>)
                                    : NABLA_KERNEL(dy.device(), pad_replicate_backward<T>);
      backward(dy.data<T>(), dx.data<T>(), P, H, W, top, bottom, left, right);
    });
    count_kernel(reflect ? "pad_reflect_backward" : "pad_replicate_backward");
    return std::vector<Tensor>{dx};
  };
  record("pad", {x}, y, rule);
  return y;
}

}  // namespace nabla
