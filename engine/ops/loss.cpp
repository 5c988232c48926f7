// Losses: argument checks, dispatch to kernels/loss.h, the reduction, backward rules.
//
// Every loss runs one forward kernel that writes the unreduced losses, then reduces them with
// sum (and a division for Mean) outside autograd, and records ONE node whose rule runs one
// backward kernel: the reduction's gradient (1, or 1/divisor for Mean) is folded into the
// upstream value the kernel reads, so no broadcast of the scalar gradient is materialised.
#include <nabla/ops/loss.h>

#include <nabla/dispatch.h>
#include <nabla/ops/activation.h>
#include <nabla/ops/common.h>
#include <nabla/ops/elementwise.h>
#include <nabla/ops/reduce.h>

#include "kernels/loss.h"

namespace nabla {

using namespace ops_detail;

const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::None:
      return "none";
    case Reduction::Mean:
      return "mean";
    case Reduction::Sum:
      return "sum";
  }
  return "?";
}

namespace {

void check_floating(const char* op, const char* what, const Tensor& t) {
  NABLA_CHECK(is_floating(t.dtype()), op, ": ", what, " must be float32 or float64, got ", t.str());
}

// The op's output from unreduced losses (no history): the losses themselves, their sum, or
// their sum divided by `divisor` (a 0-dim tensor) or, when that is undefined, by their count.
Tensor reduce_losses(const Tensor& loss, Reduction r, const Tensor& divisor) {
  NoGradGuard ng;
  switch (r) {
    case Reduction::None:
      return loss;
    case Reduction::Sum:
      return sum(loss);
    case Reduction::Mean:
      // An empty mean is 0 * inf = NaN, as in PyTorch.
      return divisor.defined() ? div(sum(loss), divisor)
                               : mul(sum(loss), 1.0 / double(loss.numel()));
  }
  return loss;
}

// The upstream gradient as the backward kernels read it: dy[k * stride]. The reduction's own
// gradient (1 for Sum, 1/divisor for Mean) is folded into the one scalar.
struct Upstream {
  Tensor dy;
  int64_t stride;
};
Upstream upstream(const Tensor& g, Reduction r, int64_t count, const Tensor& divisor) {
  switch (r) {
    case Reduction::None:
      return {g.contiguous(), 1};
    case Reduction::Sum:
      return {g.contiguous(), 0};
    case Reduction::Mean:
      return {(divisor.defined() ? div(g, divisor) : mul(g, 1.0 / double(count))).contiguous(), 0};
  }
  return {g.contiguous(), 1};
}

// "[1, 0, 2]": the multi-index of flat position p in shape s.
std::string index_str(int64_t p, const Shape& s) {
  Shape idx(s.size());
  for (size_t i = s.size(); i-- > 0;) {
    idx[i] = p % s[i];
    p /= s[i];
  }
  return shape_str(idx);
}

// cross_entropy (ce = true) and nll_loss: identical checks, layout and reduction.
Tensor class_index_loss(const char* op, bool ce, const Tensor& x, const Tensor& target,
                        const Tensor& weight, Reduction reduction, int64_t ignore_index) {
  const char* xname = ce ? "logits" : "log_probs";
  check_floating(op, xname, x);
  NABLA_CHECK(x.dim() >= 2, op, ": ", xname, " must be [N, C] or [N, C, d1, ...], got ", x.str());
  NABLA_CHECK(target.dtype() == DType::Int64, op, ": target must hold int64 class indices, got ",
              target.str(), " (", xname, " ", x.str(), ")");
  Shape tshape = x.shape();
  tshape.erase(tshape.begin() + 1);
  NABLA_CHECK(target.shape() == tshape, op, ": ", xname, " ", shape_str(x.shape()), " and target ",
              shape_str(target.shape()), " do not match: target must be ", shape_str(tshape));
  NABLA_CHECK(target.device() == x.device(), op, ": target ", target.str(), " and ", xname, " ",
              x.str(), " are on different devices");
  const int64_t N = x.size(0), C = x.size(1),
                S = shape_numel(Shape(tshape.begin() + 1, tshape.end()));
  NABLA_CHECK(C >= 1, op, ": ", xname, " ", shape_str(x.shape()), " have no classes (C = 0)");
  if (weight.defined()) {
    check_same(op, {&x, &weight});
    NABLA_CHECK(weight.shape() == Shape{C}, op, ": weight must be [", C, "], one per class of ",
                xname, " ", shape_str(x.shape()), ", got ", shape_str(weight.shape()));
  }

  Tensor xs = x.contiguous().detach();
  Tensor ts = target.contiguous().detach();
  Tensor ws = weight.defined() ? weight.contiguous().detach() : Tensor();
  Tensor loss = new_like(xs, tshape);
  // Per-position weights only feed the divisor of a mean; lse only feeds the backward.
  Tensor wt = reduction == Reduction::Mean ? new_like(xs, tshape) : Tensor();
  Tensor lse = ce && any_requires_grad({x}) ? empty(tshape, DType::Float64, x.device()) : Tensor();
  int64_t bad = -1;
  dispatch_floating(xs, op, [&](auto t) {
    using T = decltype(t);
    const T* w = ptr_or_null<T>(ws);
    T* wtp = ptr_or_null<T>(wt);
    if (ce) {
      bad = NABLA_KERNEL(xs.device(), cross_entropy_forward<T>)(
          xs.data<T>(), ts.data<int64_t>(), w, loss.data<T>(), wtp, ptr_or_null<double>(lse), N, C,
          S, ignore_index);
    } else {
      bad = NABLA_KERNEL(xs.device(), nll_loss_forward<T>)(
          xs.data<T>(), ts.data<int64_t>(), w, loss.data<T>(), wtp, N, C, S, ignore_index);
    }
  });
  count_kernel(ce ? "cross_entropy_forward" : "nll_loss_forward");
  if (bad >= 0) {
    const int64_t value = ts.reshape({ts.numel()}).narrow(0, bad, 1).item<int64_t>();
    throw Error(detail::concat(op, ": target value ", value, " at position ",
                               index_str(bad, tshape), " is not a class in [0, ", C, ") (C = ", C,
                               ", ignore_index = ", ignore_index, "); ", xname, " ",
                               shape_str(x.shape()), ", target ", shape_str(tshape)));
  }
  Tensor divisor;
  if (reduction == Reduction::Mean) {
    NoGradGuard ng;
    divisor = sum(wt);
  }
  Tensor y = reduce_losses(loss, reduction, divisor);

  const Shape xshape = x.shape();
  // nll_loss's gradient does not depend on its input, so it does not keep it alive.
  Tensor saved_x = ce ? xs : Tensor();
  record(op, {x}, y,
         [op, ce, saved_x, ts, ws, lse, divisor, reduction, xshape, N, C, S, ignore_index](
             const std::vector<Tensor>& g, const std::vector<bool>&) {
           Upstream up = upstream(g[0], reduction, N * S, divisor);
           Tensor dx = new_like(up.dy, xshape);
           dispatch_floating(dx, op, [&](auto t) {
             using T = decltype(t);
             const T* w = ptr_or_null<T>(ws);
             if (ce) {
               NABLA_KERNEL(dx.device(), cross_entropy_backward<T>)
               (saved_x.data<T>(), ts.data<int64_t>(), w, lse.data<double>(), up.dy.data<T>(),
                up.stride, dx.data<T>(), N, C, S, ignore_index);
             } else {
               NABLA_KERNEL(dx.device(), nll_loss_backward<T>)
               (ts.data<int64_t>(), w, up.dy.data<T>(), up.stride, dx.data<T>(), N, C, S,
                ignore_index);
             }
           });
           count_kernel(ce ? "cross_entropy_backward" : "nll_loss_backward");
           return std::vector<Tensor>{dx};
         });
  return y;
}

enum class Pointwise { BceWithLogits, Mse, L1 };

// The elementwise losses: same-shape input and target, optional pos_weight (BCE only).
Tensor pointwise_loss(const char* op, Pointwise kind, const Tensor& x, const Tensor& target,
                      const Tensor& pos_weight, Reduction reduction) {
  const char* xname = kind == Pointwise::BceWithLogits ? "logits" : "input";
  check_floating(op, xname, x);
  check_same(op, {&x, &target, &pos_weight});
  NABLA_CHECK(x.shape() == target.shape(), op, ": ", xname, " ", shape_str(x.shape()),
              " and target ", shape_str(target.shape()), " must have the same shape");
  Tensor pws;
  if (pos_weight.defined()) {
    NABLA_CHECK(broadcast_shapes(pos_weight.shape(), x.shape(), op) == x.shape(), op,
                ": pos_weight ", shape_str(pos_weight.shape()), " does not broadcast to ", xname,
                " ", shape_str(x.shape()));
    NoGradGuard ng;
    pws = pos_weight.detach().expand(x.shape()).contiguous();
  }
  Tensor xs = x.contiguous().detach(), ts = target.contiguous().detach();
  Tensor loss = new_like(xs, xs.shape());
  const int64_t n = xs.numel();
  dispatch_floating(xs, op, [&](auto t) {
    using T = decltype(t);
    switch (kind) {
      case Pointwise::BceWithLogits:
        NABLA_KERNEL(xs.device(), bce_with_logits_forward<T>)
        (xs.data<T>(), ts.data<T>(), ptr_or_null<T>(pws), loss.data<T>(), n);
        break;
      case Pointwise::Mse:
        NABLA_KERNEL(xs.device(), mse_loss_forward<T>)
        (xs.data<T>(), ts.data<T>(), loss.data<T>(), n);
        break;
      case Pointwise::L1:
        NABLA_KERNEL(xs.device(), l1_loss_forward<T>)
        (xs.data<T>(), ts.data<T>(), loss.data<T>(), n);
        break;
    }
  });
  const char* fwd = kind == Pointwise::BceWithLogits ? "bce_with_logits_forward"
                    : kind == Pointwise::Mse         ? "mse_loss_forward"
                                                     : "l1_loss_forward";
  count_kernel(fwd);
  Tensor y = reduce_losses(loss, reduction, Tensor());

  const Shape pw_shape = pos_weight.defined() ? pos_weight.shape() : Shape{};
  record(op, {x, target, pos_weight}, y,
         [op, kind, xs, ts, pws, pw_shape, reduction, n](const std::vector<Tensor>& g,
                                                         const std::vector<bool>& needs) {
           Upstream up = upstream(g[0], reduction, n, Tensor());
           Tensor dx = needs[0] ? new_like(xs, xs.shape()) : Tensor();
           Tensor dt = needs[1] ? new_like(xs, xs.shape()) : Tensor();
           Tensor dpw = needs[2] && pws.defined() ? new_like(xs, xs.shape()) : Tensor();
           dispatch_floating(xs, op, [&](auto t) {
             using T = decltype(t);
             T* pdx = ptr_or_null<T>(dx);
             T* pdt = ptr_or_null<T>(dt);
             switch (kind) {
               case Pointwise::BceWithLogits:
                 NABLA_KERNEL(xs.device(), bce_with_logits_backward<T>)
                 (xs.data<T>(), ts.data<T>(), ptr_or_null<T>(pws), up.dy.data<T>(), up.stride, pdx,
                  pdt, ptr_or_null<T>(dpw), n);
                 break;
               case Pointwise::Mse:
                 NABLA_KERNEL(xs.device(), mse_loss_backward<T>)
                 (xs.data<T>(), ts.data<T>(), up.dy.data<T>(), up.stride, pdx, pdt, n);
                 break;
               case Pointwise::L1:
                 NABLA_KERNEL(xs.device(), l1_loss_backward<T>)
                 (xs.data<T>(), ts.data<T>(), up.dy.data<T>(), up.stride, pdx, pdt, n);
                 break;
             }
           });
           count_kernel(kind == Pointwise::BceWithLogits ? "bce_with_logits_backward"
                        : kind == Pointwise::Mse         ? "mse_loss_backward"
                                                         : "l1_loss_backward");
           // pos_weight was broadcast for the kernel; its gradient is summed back to its shape.
           return std::vector<Tensor>{dx, dt, dpw.defined() ? sum_to(dpw, pw_shape) : Tensor()};
         });
  return y;
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight,
                     Reduction reduction, int64_t ignore_index) {
  return class_index_loss("cross_entropy", true, logits, target, weight, reduction, ignore_index);
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const Tensor& weight,
                Reduction reduction, int64_t ignore_index) {
  return class_index_loss("nll_loss", false, log_probs, target, weight, reduction, ignore_index);
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        const Tensor& pos_weight, Reduction reduction) {
  return pointwise_loss("binary_cross_entropy_with_logits", Pointwise::BceWithLogits, logits,
                        target, pos_weight, reduction);
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  return pointwise_loss("mse_loss", Pointwise::Mse, input, target, Tensor(), reduction);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  return pointwise_loss("l1_loss", Pointwise::L1, input, target, Tensor(), reduction);
}

Tensor dice_loss(const Tensor& logits, const Tensor& target, double smooth,
                 bool include_background) {
  const char* op = "dice_loss";
  check_floating(op, "logits", logits);
  NABLA_CHECK(logits.dim() >= 2, op, ": logits must have a class dim at 1, got ", logits.str());
  const int64_t C = logits.size(1);
  NABLA_CHECK(C >= (include_background ? 1 : 2), op, ": logits ", shape_str(logits.shape()),
              " have ", C, " classes; without the background at least 2 are needed");
  Shape tshape = logits.shape();
  tshape.erase(tshape.begin() + 1);
  NABLA_CHECK(target.dtype() == DType::Int64 && target.shape() == tshape, op, ": target ",
              target.str(), " must be int64 ", shape_str(tshape), " for logits ",
              shape_str(logits.shape()));
  NABLA_CHECK(smooth >= 0, op, ": smooth must be >= 0, got ", smooth);
  // The one-hot target [N, C, d1, ...], on the host, in the logits' dtype.
  const Tensor t = target.to(Device::cpu()).contiguous();
  const int64_t N = logits.size(0), S = N ? t.numel() / N : 0;
  Tensor onehot = zeros(logits.shape(), DType::Float64);
  const int64_t* pt = t.data<int64_t>();
  double* po = onehot.data<double>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t s = 0; s < S; ++s) {
      const int64_t c = pt[n * S + s];
      NABLA_CHECK(c >= 0 && c < C, op, ": target value ", c, " at flat position ", n * S + s,
                  " of ", shape_str(t.shape()), " is outside [0, ", C, ")");
      po[(n * C + c) * S + s] = 1;
    }
  const Tensor g = onehot.to(logits.dtype()).to(logits.device());
  std::vector<int64_t> dims = {0};
  for (int64_t d = 2; d < logits.dim(); ++d) dims.push_back(d);
  const Tensor p = softmax(logits, 1);
  const Tensor inter = sum(mul(p, g), dims);  // [C]
  const Tensor denom = add(add(sum(p, dims), sum(g, dims)), smooth);
  Tensor dice = div(add(mul(inter, 2.0), smooth), denom);  // [C]
  if (!include_background) dice = dice.narrow(0, 1, C - 1);
  return rsub(1.0, mean(dice));
}

}  // namespace nabla
