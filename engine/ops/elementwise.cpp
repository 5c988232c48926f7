// Elementwise ops: broadcasting, dispatch to kernels/elementwise.h, backward rules.
#include <nabla/ops/elementwise.h>

#include <nabla/dispatch.h>
#include <nabla/ops/common.h>
#include <nabla/ops/reduce.h>

#include "kernels/elementwise.h"

namespace nabla {

using namespace ops_detail;

namespace {

// Contiguous copy of t broadcast to `shape`, outside autograd (rules reduce with sum_to).
Tensor broadcast_to(const Tensor& t, const Shape& shape) {
  Tensor d = t.detach();
  if (d.shape() == shape && d.is_contiguous()) return d;
  NoGradGuard ng;
  return d.expand(shape).contiguous();
}

Tensor unary(UnaryOp op, const Tensor& x, double a = 0, double b = 0) {
  const char* name = unary_op_name(op);
  Tensor xc = x.contiguous();
  Tensor y = new_like(xc, xc.shape());
  dispatch_floating(xc, name, [&](auto t) {
    using T = decltype(t);
    NABLA_KERNEL(xc.device(), unary_forward<T>)
    (op, xc.data<T>(), y.data<T>(), xc.numel(), T(a), T(b));
  });
  count_kernel(name);
  Tensor xs = xc.detach(), ys = y.detach();
  record(name, {x}, y,
         [op, xs, ys, a, b, name](const std::vector<Tensor>& g, const std::vector<bool>&) {
           Tensor dy = g[0].contiguous();
           Tensor dx = new_like(xs, xs.shape());
           dispatch_floating(xs, name, [&](auto t) {
             using T = decltype(t);
             NABLA_KERNEL(xs.device(), unary_backward<T>)
             (op, xs.data<T>(), ys.data<T>(), dy.data<T>(), dx.data<T>(), xs.numel(), T(a), T(b));
           });
           count_kernel((std::string(name) + "_backward").c_str());
           return std::vector<Tensor>{dx};
         });
  return y;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_op_name(op);
  check_same(name, {&a, &b});
  Shape out = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor ac = broadcast_to(a, out), bc = broadcast_to(b, out);
  Tensor y = new_like(ac, out);
  dispatch_floating(ac, name, [&](auto t) {
    using T = decltype(t);
    NABLA_KERNEL(ac.device(), binary_forward<T>)
    (op, ac.data<T>(), bc.data<T>(), y.data<T>(), y.numel());
  });
  count_kernel(name);
  Shape sa = a.shape(), sb = b.shape();
  record(name, {a, b}, y,
         [op, ac, bc, sa, sb, name](const std::vector<Tensor>& g, const std::vector<bool>& needs) {
           Tensor dy = g[0].contiguous();
           Tensor da = needs[0] ? new_like(ac, ac.shape()) : Tensor();
           Tensor db = needs[1] ? new_like(bc, bc.shape()) : Tensor();
           dispatch_floating(ac, name, [&](auto t) {
             using T = decltype(t);
             NABLA_KERNEL(ac.device(), binary_backward<T>)
             (op, ac.data<T>(), bc.data<T>(), dy.data<T>(), ptr_or_null<T>(da), ptr_or_null<T>(db),
              dy.numel());
           });
           count_kernel((std::string(name) + "_backward").c_str());
           return std::vector<Tensor>{da.defined() ? sum_to(da, sa) : Tensor(),
                                      db.defined() ? sum_to(db, sb) : Tensor()};
         });
  return y;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Add, a, b);
}
Tensor sub(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Sub, a, b);
}
Tensor mul(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Mul, a, b);
}
Tensor div(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Div, a, b);
}
Tensor pow(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Pow, a, b);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Minimum, a, b);
}
Tensor maximum(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Maximum, a, b);
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_same("where", {&cond, &a, &b});
  Shape out =
      broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor cc = broadcast_to(cond, out), ac = broadcast_to(a, out), bc = broadcast_to(b, out);
  Tensor y = new_like(ac, out);
  dispatch_floating(ac, "where", [&](auto t) {
    using T = decltype(t);
    NABLA_KERNEL(ac.device(), where_forward<T>)
    (cc.data<T>(), ac.data<T>(), bc.data<T>(), y.data<T>(), y.numel());
  });
  count_kernel("where");
  Shape sa = a.shape(), sb = b.shape();
  record("where", {a, b}, y,
         [cc, sa, sb](const std::vector<Tensor>& g, const std::vector<bool>& needs) {
           Tensor dy = g[0].contiguous();
           Tensor da = needs[0] ? new_like(dy, dy.shape()) : Tensor();
           Tensor db = needs[1] ? new_like(dy, dy.shape()) : Tensor();
           dispatch_floating(dy, "where", [&](auto t) {
             using T = decltype(t);
             NABLA_KERNEL(dy.device(), where_backward<T>)
             (cc.data<T>(), dy.data<T>(), ptr_or_null<T>(da), ptr_or_null<T>(db), dy.numel());
           });
           count_kernel("where_backward");
           return std::vector<Tensor>{da.defined() ? sum_to(da, sa) : Tensor(),
                                      db.defined() ? sum_to(db, sb) : Tensor()};
         });
  return y;
}

Tensor add(const Tensor& a, double s) {
  return unary(UnaryOp::AddScalar, a, s);
}
Tensor sub(const Tensor& a, double s) {
  return unary(UnaryOp::AddScalar, a, -s);
}
Tensor rsub(double s, const Tensor& a) {
  return unary(UnaryOp::RSubScalar, a, s);
}
Tensor mul(const Tensor& a, double s) {
  return unary(UnaryOp::MulScalar, a, s);
}
Tensor div(const Tensor& a, double s) {
  NABLA_CHECK(s != 0, "div: division of ", a.str(), " by the scalar 0");
  return unary(UnaryOp::MulScalar, a, 1.0 / s);
}
Tensor rdiv(double s, const Tensor& a) {
  return unary(UnaryOp::RDivScalar, a, s);
}
Tensor pow(const Tensor& a, double e) {
  return unary(UnaryOp::PowScalar, a, e);
}

Tensor neg(const Tensor& x) {
  return unary(UnaryOp::Neg, x);
}
Tensor exp(const Tensor& x) {
  return unary(UnaryOp::Exp, x);
}
Tensor log(const Tensor& x) {
  return unary(UnaryOp::Log, x);
}
Tensor sqrt(const Tensor& x) {
  return unary(UnaryOp::Sqrt, x);
}
Tensor abs(const Tensor& x) {
  return unary(UnaryOp::Abs, x);
}
Tensor sign(const Tensor& x) {
  return unary(UnaryOp::Sign, x);
}
Tensor clamp(const Tensor& x, double lo, double hi) {
  NABLA_CHECK(lo <= hi, "clamp: lo ", lo, " > hi ", hi, " for ", x.str());
  return unary(UnaryOp::Clamp, x, lo, hi);
}
Tensor relu(const Tensor& x) {
  return unary(UnaryOp::Relu, x);
}
Tensor leaky_relu(const Tensor& x, double slope) {
  return unary(UnaryOp::LeakyRelu, x, slope);
}
Tensor sigmoid(const Tensor& x) {
  return unary(UnaryOp::Sigmoid, x);
}
Tensor tanh(const Tensor& x) {
  return unary(UnaryOp::Tanh, x);
}

Tensor gt(const Tensor& a, double s) {
  NoGradGuard ng;
  // sign(a - s) is 1, 0 or -1; relu of it is the mask a > s.
  return relu(sign(sub(a.detach(), s)));
}
Tensor lt(const Tensor& a, double s) {
  NoGradGuard ng;
  return relu(sign(rsub(s, a.detach())));
}

}  // namespace nabla
