// conv2d and conv_transpose2d: argument checks, dispatch to kernels/conv.h (CPU or CUDA, by the
// device of the input), backward rules.
#include <nabla/ops/conv.h>

#include <nabla/dispatch.h>
#include <nabla/ops/common.h>
#include <nabla/ops/elementwise.h>
#include <nabla/ops/reduce.h>

#include "kernels/conv.h"

namespace nabla {

using namespace ops_detail;

namespace {

std::string args_str(const Conv2dArgs& a) {
  return detail::concat("stride (", a.stride[0], ", ", a.stride[1], "), padding (", a.padding[0],
                        ", ", a.padding[1], "), dilation (", a.dilation[0], ", ", a.dilation[1],
                        "), groups ", a.groups);
}

void check_args(const char* op, const Conv2dArgs& a) {
  for (int i = 0; i < 2; ++i) {
    NABLA_CHECK(
        a.stride[i] >= 1 && a.dilation[i] >= 1 && a.padding[i] >= 0 && a.output_padding[i] >= 0, op,
        ": invalid ", args_str(a), ", output_padding (", a.output_padding[0], ", ",
        a.output_padding[1], ")");
  }
  NABLA_CHECK(a.groups >= 1, op, ": groups must be >= 1, got ", a.groups);
}

// Runs a Conv2dParams::finalize, re-throwing with the op name and tensor shapes.
void finalize(Conv2dParams& p, const char* op, const Tensor& x, const Tensor& w) {
  try {
    p.finalize();
  } catch (const Error& e) {
    throw Error(detail::concat(op, ": input ", shape_str(x.shape()), ", weight ",
                               shape_str(w.shape()), ": ", e.what()));
  }
}

// The bias gradient: sum of dy over N, H, W.
Tensor bias_grad(const Tensor& dy) {
  return sum(dy, {0, 2, 3});
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dArgs& a) {
  const char* op = "conv2d";
  check_same(op, {&x, &w, &b});
  check_args(op, a);
  NABLA_CHECK(x.dim() == 4 && w.dim() == 4, op, ": input ", x.str(), " and weight ", w.str(),
              " must both be 4-D (NCHW and [K, C/groups, R, S])");
  NABLA_CHECK(x.size(1) == w.size(1) * a.groups, op, ": input ", shape_str(x.shape()), " has ",
              x.size(1), " channels but weight ", shape_str(w.shape()), " with groups ", a.groups,
              " expects ", w.size(1) * a.groups);
  NABLA_CHECK(w.size(0) % a.groups == 0, op, ": weight ", shape_str(w.shape()), " has ", w.size(0),
              " output channels, not divisible by groups ", a.groups);
  NABLA_CHECK(!b.defined() || b.shape() == Shape{w.size(0)}, op, ": bias ", b.str(), " must be [",
              w.size(0), "] for weight ", shape_str(w.shape()));
  Conv2dParams p;
  p.N = x.size(0), p.C = x.size(1), p.H = x.size(2), p.W = x.size(3);
  p.K = w.size(0), p.R = w.size(2), p.S = w.size(3);
  p.stride_h = a.stride[0], p.stride_w = a.stride[1], p.pad_h = a.padding[0];
  p.pad_w = a.padding[1], p.dil_h = a.dilation[0], p.dil_w = a.dilation[1], p.groups = a.groups;
  finalize(p, op, x, w);

  Tensor xc = x.contiguous().detach(), wc = w.contiguous().detach();
  Tensor bc = b.defined() ? b.contiguous().detach() : Tensor();
  Tensor y = new_like(xc, {p.N, p.K, p.P, p.Q});
  dispatch_floating(xc, op, [&](auto t) {
    using T = decltype(t);
    const auto forward = NABLA_KERNEL(xc.device(), conv2d_forward<T>);
    forward(p, xc.data<T>(), wc.data<T>(), ptr_or_null<T>(bc), y.data<T>());
  });
  count_kernel("conv2d_forward");
  record(op, {x, w, b}, y,
         [p, xc, wc](const std::vector<Tensor>& g, const std::vector<bool>& needs) {
           Tensor dy = g[0].contiguous();
           Tensor dx, dw, db;
           dispatch_floating(dy, "conv2d", [&](auto t) {
             using T = decltype(t);
             if (needs[0]) {
               dx = new_like(dy, xc.shape());
               const auto backward_input = NABLA_KERNEL(dy.device(), conv2d_backward_input<T>);
               backward_input(p, dy.data<T>(), wc.data<T>(), dx.data<T>());
               count_kernel("conv2d_backward_input");
             }
             if (needs[1]) {
               // The kernel accumulates (+=) into dw and db, so they start at zero.
               dw = zeros_like(wc);
               if (needs[2]) db = zeros({p.K}, dy.dtype(), dy.device());
               const auto backward_weight = NABLA_KERNEL(dy.device(), conv2d_backward_weight<T>);
               backward_weight(p, xc.data<T>(), dy.data<T>(), dw.data<T>(), ptr_or_null<T>(db));
               count_kernel("conv2d_backward_weight");
             }
           });
           if (needs[2] && !db.defined()) db = bias_grad(dy);
           return std::vector<Tensor>{dx, dw, db};
         });
  return y;
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t padding,
              int64_t dilation, int64_t groups) {
  Conv2dArgs a;
  a.stride = {stride, stride};
  a.padding = {padding, padding};
  a.dilation = {dilation, dilation};
  a.groups = groups;
  return conv2d(x, w, b, a);
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dArgs& a) {
  const char* op = "conv_transpose2d";
  check_same(op, {&x, &w, &b});
  check_args(op, a);
  NABLA_CHECK(x.dim() == 4 && w.dim() == 4, op, ": input ", x.str(), " and weight ", w.str(),
              " must both be 4-D (NCHW and [C, K/groups, R, S])");
  NABLA_CHECK(x.size(1) == w.size(0), op, ": input ", shape_str(x.shape()), " has ", x.size(1),
              " channels but weight ", shape_str(w.shape()), " expects ", w.size(0));
  NABLA_CHECK(w.size(0) % a.groups == 0, op, ": weight ", shape_str(w.shape()), " has ", w.size(0),
              " input channels, not divisible by groups ", a.groups);
  const int64_t K = w.size(1) * a.groups;
  NABLA_CHECK(!b.defined() || b.shape() == Shape{K}, op, ": bias ", b.str(), " must be [", K,
              "] for weight ", shape_str(w.shape()), " with groups ", a.groups);
  for (int i = 0; i < 2; ++i)
    NABLA_CHECK(a.output_padding[i] < std::max(a.stride[i], a.dilation[i]), op,
                ": output_padding (", a.output_padding[0], ", ", a.output_padding[1],
                ") must be smaller than stride or dilation; ", args_str(a));
  // The conv2d whose backward-input this is: its input side is our output.
  Conv2dParams p;
  p.N = x.size(0), p.K = x.size(1), p.C = K, p.R = w.size(2), p.S = w.size(3);
  p.H = (x.size(2) - 1) * a.stride[0] - 2 * a.padding[0] + a.dilation[0] * (p.R - 1) +
        a.output_padding[0] + 1;
  p.W = (x.size(3) - 1) * a.stride[1] - 2 * a.padding[1] + a.dilation[1] * (p.S - 1) +
        a.output_padding[1] + 1;
  NABLA_CHECK(p.H >= 1 && p.W >= 1, op, ": input ", shape_str(x.shape()), ", weight ",
              shape_str(w.shape()), ", ", args_str(a), " give an empty output ", p.H, "x", p.W);
  p.stride_h = a.stride[0], p.stride_w = a.stride[1], p.pad_h = a.padding[0];
  p.pad_w = a.padding[1], p.dil_h = a.dilation[0], p.dil_w = a.dilation[1], p.groups = a.groups;
  finalize(p, op, x, w);
  // output_padding rows lie past the last full window: P computed by floor may exceed H when
  // output_padding >= stride (allowed when dilation is larger); the input fixes P and Q.
  p.P = x.size(2), p.Q = x.size(3);

  Tensor xc = x.contiguous().detach(), wc = w.contiguous().detach();
  Tensor y = new_like(xc, {p.N, p.C, p.H, p.W});
  dispatch_floating(xc, op, [&](auto t) {
    using T = decltype(t);
    const auto backward_input = NABLA_KERNEL(xc.device(), conv2d_backward_input<T>);
    backward_input(p, xc.data<T>(), wc.data<T>(), y.data<T>());
  });
  count_kernel("conv2d_backward_input");
  record(op, {x, w}, y, [p, xc, wc](const std::vector<Tensor>& g, const std::vector<bool>& needs) {
    Tensor dy = g[0].contiguous();
    Tensor dx, dw;
    dispatch_floating(dy, "conv_transpose2d", [&](auto t) {
      using T = decltype(t);
      if (needs[0]) {
        dx = new_like(dy, xc.shape());
        const auto forward = NABLA_KERNEL(dy.device(), conv2d_forward<T>);
        forward(p, dy.data<T>(), wc.data<T>(), nullptr, dx.data<T>());
        count_kernel("conv2d_forward");
      }
      if (needs[1]) {
        // Roles swap: our output gradient is the conv's input, our input is its output grad.
        dw = zeros_like(wc);
        const auto backward_weight = NABLA_KERNEL(dy.device(), conv2d_backward_weight<T>);
        backward_weight(p, dy.data<T>(), xc.data<T>(), dw.data<T>(), nullptr);
        count_kernel("conv2d_backward_weight");
      }
    });
    return std::vector<Tensor>{dx, dw};
  });
  if (b.defined()) y = add(y, b.reshape({1, K, 1, 1}));
  return y;
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride,
                        int64_t padding, int64_t output_padding, int64_t groups, int64_t dilation) {
  Conv2dArgs a;
  a.stride = {stride, stride};
  a.padding = {padding, padding};
  a.output_padding = {output_padding, output_padding};
  a.dilation = {dilation, dilation};
  a.groups = groups;
  return conv_transpose2d(x, w, b, a);
}

}  // namespace nabla
