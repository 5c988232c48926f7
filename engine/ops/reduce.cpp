// Reductions over [outer, D, inner] views; multi-dim sums are a sequence of single-dim ones.
#include <nabla/ops/reduce.h>

#include <algorithm>

#include <nabla/dispatch.h>
#include <nabla/ops/common.h>
#include <nabla/ops/elementwise.h>

#include "kernels/reduce.h"

namespace nabla {

using namespace ops_detail;

namespace {

std::vector<int64_t> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op,
                                    const Tensor& x) {
  std::vector<int64_t> out;
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, ndim, op);
    NABLA_CHECK(std::find(out.begin(), out.end(), w) == out.end(), op, ": dim ", d,
                " repeated for ", x.str());
    out.push_back(w);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Shape reduced_shape(const Shape& s, const std::vector<int64_t>& dims, bool keepdim) {
  Shape out;
  for (int64_t i = 0; i < int64_t(s.size()); ++i) {
    bool r = std::find(dims.begin(), dims.end(), i) != dims.end();
    if (!r)
      out.push_back(s[size_t(i)]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

// Forward only: sum of contiguous x along one dim, keepdim shape.
Tensor sum_one_dim(const Tensor& x, int64_t dim) {
  Axis a = axis_of(x.shape(), dim);
  Shape s = x.shape();
  s[size_t(dim)] = 1;
  Tensor y = new_like(x, s);
  dispatch_floating(x, "sum", [&](auto t) {
    using T = decltype(t);
    NABLA_KERNEL(x.device(), sum_dim<T>)(x.data<T>(), y.data<T>(), a.outer, a.D, a.inner);
  });
  count_kernel("sum");
  return y;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  std::vector<int64_t> dims = normalize_dims(dims_in, x.dim(), "sum", x);
  Tensor y = x.contiguous().detach();
  for (int64_t d : dims) y = sum_one_dim(y, d);
  if (dims.empty()) y = y.clone();  // never alias the input
  Shape keep = reduced_shape(x.shape(), dims, true);
  Shape out = reduced_shape(x.shape(), dims, keepdim);
  y = y.reshape(out);
  Shape in = x.shape();
  record("sum", {x}, y, [in, keep](const std::vector<Tensor>& g, const std::vector<bool>&) {
    return std::vector<Tensor>{g[0].reshape(keep).expand(in).contiguous()};
  });
  return y;
}

Tensor sum(const Tensor& x) {
  std::vector<int64_t> all(static_cast<size_t>(x.dim()));
  for (int64_t i = 0; i < x.dim(); ++i) all[size_t(i)] = i;
  return sum(x, all, false);
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  std::vector<int64_t> dims = normalize_dims(dims_in, x.dim(), "mean", x);
  int64_t count = 1;
  for (int64_t d : dims) count *= x.shape()[size_t(d)];
  NABLA_CHECK(count > 0, "mean: reducing over zero elements of ", x.str());
  return mul(sum(x, dims, keepdim), 1.0 / double(count));
}

Tensor mean(const Tensor& x) {
  NABLA_CHECK(x.numel() > 0, "mean: empty tensor ", x.str());
  return mul(sum(x), 1.0 / double(x.numel()));
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims_in, int64_t correction, bool keepdim) {
  std::vector<int64_t> dims = normalize_dims(dims_in, x.dim(), "var", x);
  NABLA_CHECK(!dims.empty(), "var: no dims given for ", x.str());
  // Bring the reduced dims to the end so they form one contiguous axis D.
  std::vector<int64_t> perm;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (std::find(dims.begin(), dims.end(), i) == dims.end()) perm.push_back(i);
  int64_t D = 1;
  for (int64_t d : dims) {
    perm.push_back(d);
    D *= x.shape()[size_t(d)];
  }
  NABLA_CHECK(D - correction > 0, "var: ", D, " elements with correction ", correction, " for ",
              x.str());
  int64_t outer = x.numel() / std::max<int64_t>(D, 1);
  Tensor xp = x.permute(perm).contiguous().reshape({outer, D});
  Tensor y = new_like(xp, {outer});
  Tensor m = new_like(xp, {outer});
  Tensor xs = xp.detach();
  dispatch_floating(xs, "var", [&](auto t) {
    using T = decltype(t);
    NABLA_KERNEL(xs.device(), var_dim<T>)
    (xs.data<T>(), y.data<T>(), m.data<T>(), outer, D, 1, correction);
  });
  count_kernel("var");
  record("var", {xp}, y,
         [xs, m, outer, D, correction](const std::vector<Tensor>& g, const std::vector<bool>&) {
           Tensor dy = g[0].contiguous();
           Tensor dx = new_like(xs, xs.shape());
           dispatch_floating(xs, "var", [&](auto t) {
             using T = decltype(t);
             NABLA_KERNEL(xs.device(), var_dim_backward<T>)
             (xs.data<T>(), m.data<T>(), dy.data<T>(), dx.data<T>(), outer, D, 1, correction);
           });
           count_kernel("var_backward");
           return std::vector<Tensor>{dx};
         });
  return y.reshape(reduced_shape(x.shape(), dims, keepdim));
}

Tensor var(const Tensor& x) {
  std::vector<int64_t> all(static_cast<size_t>(x.dim()));
  for (int64_t i = 0; i < x.dim(); ++i) all[size_t(i)] = i;
  if (x.dim() == 0) return var(x.reshape({1}), {0}, 1, false);
  return var(x, all, 1, false);
}

std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) {
  Tensor xc = x.contiguous().detach();
  if (xc.dim() == 0) xc = xc.reshape({1});
  dim = wrap_dim(dim, xc.dim(), "max");
  Axis a = axis_of(xc.shape(), dim);
  NABLA_CHECK(a.D > 0, "max: dim ", dim, " of ", x.str(), " is empty");
  Shape keep = xc.shape();
  keep[size_t(dim)] = 1;
  Tensor y = new_like(xc, keep);
  Tensor idx = empty(keep, DType::Int64, x.device());
  dispatch_floating(xc, "max", [&](auto t) {
    using T = decltype(t);
    NABLA_KERNEL(xc.device(), max_dim<T>)
    (xc.data<T>(), y.data<T>(), idx.data<int64_t>(), a.outer, a.D, a.inner);
  });
  count_kernel("max");
  Shape out = reduced_shape(xc.shape(), {dim}, keepdim);
  if (x.dim() == 0) out = {};
  y = y.reshape(out);
  Shape in = x.shape();
  record("max", {x}, y, [idx, a, in, keep](const std::vector<Tensor>& g, const std::vector<bool>&) {
    Tensor dy = g[0].contiguous();
    Tensor dx = new_like(dy, in);
    dispatch_floating(dy, "max", [&](auto t) {
      using T = decltype(t);
      NABLA_KERNEL(dy.device(), max_dim_backward<T>)
      (dy.data<T>(), idx.data<int64_t>(), dx.data<T>(), a.outer, a.D, a.inner);
    });
    count_kernel("max_backward");
    return std::vector<Tensor>{dx};
  });
  return {y, idx.reshape(out)};
}

Tensor max(const Tensor& x) {
  NABLA_CHECK(x.numel() > 0, "max: empty tensor ", x.str());
  return max(x.reshape({x.numel()}), 0, false).first;
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  NoGradGuard ng;
  return max(x.detach(), dim, keepdim).second;
}

Tensor argmax(const Tensor& x) {
  NABLA_CHECK(x.numel() > 0, "argmax: empty tensor ", x.str());
  return argmax(x.reshape({x.numel()}), 0, false);
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  NABLA_CHECK(g.dim() >= int64_t(shape.size()), "sum_to: cannot reduce ", g.str(), " to ",
              shape_str(shape));
  size_t lead = size_t(g.dim()) - shape.size();
  std::vector<int64_t> dims;
  for (size_t i = 0; i < size_t(g.dim()); ++i) {
    if (i < lead) {
      dims.push_back(int64_t(i));
      continue;
    }
    int64_t want = shape[i - lead];
    NABLA_CHECK(want == g.shape()[i] || want == 1, "sum_to: cannot reduce ", g.str(), " to ",
                shape_str(shape));
    if (want == 1 && g.shape()[i] != 1) dims.push_back(int64_t(i));
  }
  return sum(g, dims, true).reshape(shape);
}

}  // namespace nabla
