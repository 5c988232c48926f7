// matmul and linear: shape rules, GEMM calls (kernels/gemm.h) and backward rules.
//
// Every product is one call of gemm, or of gemm_batched per run of batch dims that all
// operands step through uniformly, on the device of the operands (cpu:: or cuda::, through
// NABLA_KERNEL). A matmul whose right operand has no real batch ([B, M, K] x [K, N], the layer
// case) folds the batch into M and is a single GEMM in the forward and in both gradients.
#include <nabla/ops/linalg.h>

#include <algorithm>

#include <nabla/dispatch.h>
#include <nabla/ops/common.h>
#include <nabla/ops/reduce.h>

#include "kernels/copy.h"
#include "kernels/gemm.h"
#include "kernels/reduce.h"

namespace nabla {

using namespace ops_detail;

namespace {

// Element strides of a contiguous operand [*ob, r, c] along the broadcast batch dims `batch`
// (ob right-aligned against batch); 0 along dims the operand is broadcast over.
std::vector<int64_t> batch_strides(const Shape& op, const Shape& batch) {
  const size_t nb = op.size() - 2, lead = batch.size() - nb;
  std::vector<int64_t> st(batch.size(), 0);
  int64_t step = op[nb] * op[nb + 1];
  for (size_t i = nb; i-- > 0;) {
    if (op[i] != 1) st[lead + i] = step;
    step *= op[i];
  }
  return st;
}

// A batch of GEMMs over broadcast batch dims, merged into as few dims as possible: two
// neighbouring dims merge when every operand steps through them uniformly (the outer stride
// is the inner stride times the inner size, which includes both being broadcast).
struct BatchPlan {
  std::vector<int64_t> size, sa, sb, sc;  // outermost first
};

BatchPlan plan_batch(const Shape& batch, const std::vector<int64_t>& sa,
                     const std::vector<int64_t>& sb, const std::vector<int64_t>& sc) {
  BatchPlan p;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i] == 1) continue;  // adds no offset
    const size_t j = p.size.size();
    if (j > 0 && p.sa[j - 1] == sa[i] * batch[i] && p.sb[j - 1] == sb[i] * batch[i] &&
        p.sc[j - 1] == sc[i] * batch[i]) {
      p.size[j - 1] *= batch[i];
      p.sa[j - 1] = sa[i];
      p.sb[j - 1] = sb[i];
      p.sc[j - 1] = sc[i];
      continue;
    }
    p.size.push_back(batch[i]);
    p.sa.push_back(sa[i]);
    p.sb.push_back(sb[i]);
    p.sc.push_back(sc[i]);
  }
  return p;
}

// C = op(A) op(B) (=) for every batch index of the plan: one gemm_batched per index of the
// outer merged dims, each counted under `kernel`. The pointers live on `dev`.
template <typename T>
void gemm_plan(Device dev, const BatchPlan& p, const char* kernel, bool ta, bool tb, int64_t M,
               int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C,
               int64_t ldc) {
  if (p.size.empty()) {
    NABLA_KERNEL(dev, gemm<T>)(ta, tb, M, N, K, T(1), A, lda, B, ldb, T(0), C, ldc);
    count_kernel(kernel);
    return;
  }
  const size_t last = p.size.size() - 1;
  int64_t outer = 1;
  for (size_t j = 0; j < last; ++j) outer *= p.size[j];
  for (int64_t o = 0; o < outer; ++o) {
    int64_t oa = 0, ob = 0, oc = 0, rem = o;
    for (size_t j = last; j-- > 0;) {
      const int64_t idx = rem % p.size[j];
      rem /= p.size[j];
      oa += idx * p.sa[j];
      ob += idx * p.sb[j];
      oc += idx * p.sc[j];
    }
    NABLA_KERNEL(dev, gemm_batched<T>)
    (ta, tb, p.size[last], M, N, K, T(1), A + oa, lda, p.sa[last], B + ob, ldb, p.sb[last], T(0),
     C + oc, ldc, p.sc[last]);
    count_kernel(kernel);
  }
}

Shape batch_of(const Shape& s) {
  return Shape(s.begin(), s.end() - 2);
}

Shape with_matrix(Shape batch, int64_t rows, int64_t cols) {
  batch.push_back(rows);
  batch.push_back(cols);
  return batch;
}

// matmul of a [*ba, M, K] and b [*bb, K, N], both >= 2-D, shapes already checked.
Tensor matmul_nd(const Tensor& a, const Tensor& b) {
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  const Shape batch = broadcast_shapes(batch_of(a.shape()), batch_of(b.shape()), "matmul");
  const Shape out = with_matrix(batch, M, N);
  // b without a real batch: a's rows (batch included) form one [rows, K] matrix.
  const bool fold = shape_numel(batch_of(b.shape())) == 1;
  const int64_t rows = shape_numel(batch) * M;
  Tensor ac = a.detach().contiguous(), bc = b.detach().contiguous();
  Tensor c = new_like(ac, out);
  const Device dev = ac.device();
  dispatch_floating(ac, "matmul", [&](auto t) {
    using T = decltype(t);
    if (fold) {
      NABLA_KERNEL(dev, gemm<T>)
      (false, false, rows, N, K, T(1), ac.data<T>(), K, bc.data<T>(), N, T(0), c.data<T>(), N);
      count_kernel("gemm");
      return;
    }
    BatchPlan p = plan_batch(batch, batch_strides(ac.shape(), batch),
                             batch_strides(bc.shape(), batch), batch_strides(out, batch));
    gemm_plan<T>(dev, p, "gemm", false, false, M, N, K, ac.data<T>(), K, bc.data<T>(), N,
                 c.data<T>(), N);
  });
  auto rule = [ac, bc, batch, fold, rows, M, K, N](const std::vector<Tensor>& g,
                                                   const std::vector<bool>& needs) {
    Tensor dc = g[0].contiguous();
    Tensor da, db;
    const Device dev = dc.device();
    dispatch_floating(dc, "matmul", [&](auto t) {
      using T = decltype(t);
      const T *A = ac.data<T>(), *B = bc.data<T>(), *dC = dc.data<T>();
      if (fold) {
        // dA [rows, K] = dC [rows, N] B^T;  dB [K, N] = A^T dC, the sum over all rows.
        if (needs[0]) {
          da = new_like(dc, ac.shape());
          NABLA_KERNEL(dev, gemm<T>)
          (false, true, rows, K, N, T(1), dC, N, B, N, T(0), da.data<T>(), K);
          count_kernel("matmul_backward_a");
        }
        if (needs[1]) {
          db = new_like(dc, bc.shape());
          NABLA_KERNEL(dev, gemm<T>)
          (true, false, K, N, rows, T(1), A, K, dC, N, T(0), db.data<T>(), N);
          count_kernel("matmul_backward_b");
        }
        return;
      }
      // One product per batch index, then summed over the dims the operand was broadcast
      // along (sum_to).
      const std::vector<int64_t> sc = batch_strides(with_matrix(batch, M, N), batch);
      if (needs[0]) {
        Shape full = with_matrix(batch, M, K);
        Tensor da_full = new_like(dc, full);
        BatchPlan p =
            plan_batch(batch, sc, batch_strides(bc.shape(), batch), batch_strides(full, batch));
        gemm_plan<T>(dev, p, "matmul_backward_a", false, true, M, K, N, dC, N, B, N,
                     da_full.data<T>(), K);
        da = sum_to(da_full, ac.shape());
      }
      if (needs[1]) {
        Shape full = with_matrix(batch, K, N);
        Tensor db_full = new_like(dc, full);
        BatchPlan p =
            plan_batch(batch, batch_strides(ac.shape(), batch), sc, batch_strides(full, batch));
        gemm_plan<T>(dev, p, "matmul_backward_b", true, false, K, N, M, A, K, dC, N,
                     db_full.data<T>(), N);
        db = sum_to(db_full, bc.shape());
      }
    });
    return std::vector<Tensor>{da, db};
  };
  record("matmul", {a, b}, c, rule);
  return c;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  NABLA_CHECK(a.defined() && b.defined(), "matmul: undefined argument (", a.str(), " and ", b.str(),
              ")");
  check_same("matmul", {&a, &b});
  NABLA_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both arguments need at least 1 dim, got ",
              shape_str(a.shape()), " and ", shape_str(b.shape()));
  // A 1-D operand is a row [1, K] on the left and a column [K, 1] on the right; the added
  // dim is removed from the result again, as torch.matmul does.
  Tensor a2 = a.dim() == 1 ? a.unsqueeze(0) : a;
  Tensor b2 = b.dim() == 1 ? b.unsqueeze(1) : b;
  NABLA_CHECK(a2.size(-1) == b2.size(-2), "matmul: inner dimensions differ: ", shape_str(a.shape()),
              " x ", shape_str(b.shape()), " (", a2.size(-1), " vs ", b2.size(-2), ")");
  const Shape ba = batch_of(a2.shape()), bb = batch_of(b2.shape());
  for (size_t i = 1; i <= std::min(ba.size(), bb.size()); ++i) {
    const int64_t da = ba[ba.size() - i], db = bb[bb.size() - i];
    NABLA_CHECK(da == db || da == 1 || db == 1, "matmul: batch dims of ", shape_str(a.shape()),
                " and ", shape_str(b.shape()), " cannot be broadcast together");
  }
  Tensor c = matmul_nd(a2, b2);
  if (a.dim() == 1 && b.dim() == 1) return c.reshape({});
  if (a.dim() == 1) return c.squeeze(-2);
  if (b.dim() == 1) return c.squeeze(-1);
  return c;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  auto shapes = [&] {
    return "x " + (x.defined() ? shape_str(x.shape()) : std::string("undefined")) + ", weight " +
           (weight.defined() ? shape_str(weight.shape()) : std::string("undefined")) + ", bias " +
           (bias.defined() ? shape_str(bias.shape()) : std::string("none"));
  };
  NABLA_CHECK(x.defined() && weight.defined(), "linear: x and weight must be defined (", shapes(),
              ")");
  check_same("linear", {&x, &weight, &bias});
  NABLA_CHECK(weight.dim() == 2, "linear: weight must be [out, in] (", shapes(), ")");
  NABLA_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1),
              "linear: the last dim of x must equal in_features = weight.size(1) (", shapes(), ")");
  NABLA_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)),
              "linear: bias must be [out] = [", weight.size(0), "] (", shapes(), ")");
  const int64_t in = weight.size(1), out = weight.size(0);
  const int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  Shape yshape = x.shape();
  yshape.back() = out;
  Tensor xc = x.detach().contiguous(), wc = weight.detach().contiguous();
  Tensor y = new_like(xc, yshape);
  const bool has_bias = bias.defined();
  const Device dev = xc.device();
  dispatch_floating(xc, "linear", [&](auto t) {
    using T = decltype(t);
    if (has_bias) {
      // Seed every row of y with b (a stride-0 gather), then let the GEMM accumulate onto it.
      Tensor bc = bias.detach().contiguous();
      const int64_t shape[2] = {rows, out}, strides[2] = {0, 1};
      NABLA_KERNEL(dev, strided_copy<T>)(2, shape, bc.data<T>(), strides, y.data<T>());
      count_kernel("strided_copy");
    }
    NABLA_KERNEL(dev, gemm<T>)
    (false, true, rows, out, in, T(1), xc.data<T>(), in, wc.data<T>(), in, has_bias ? T(1) : T(0),
     y.data<T>(), out);
    count_kernel("gemm");
  });
  auto rule = [xc, wc, rows, in, out](const std::vector<Tensor>& g,
                                      const std::vector<bool>& needs) {
    Tensor dy = g[0].contiguous();
    Tensor dx, dw, db;
    const Device dev = dy.device();
    // Each gradient is a fresh tensor written (=); the engine accumulates it into .grad.
    dispatch_floating(dy, "linear", [&](auto t) {
      using T = decltype(t);
      if (needs[0]) {  // dx [rows, in] = dy [rows, out] W [out, in]
        dx = new_like(dy, xc.shape());
        NABLA_KERNEL(dev, gemm<T>)
        (false, false, rows, in, out, T(1), dy.data<T>(), out, wc.data<T>(), in, T(0), dx.data<T>(),
         in);
        count_kernel("linear_backward_input");
      }
      if (needs[1]) {  // dW [out, in] = dy^T [out, rows] x [rows, in]
        dw = new_like(dy, wc.shape());
        NABLA_KERNEL(dev, gemm<T>)
        (true, false, out, in, rows, T(1), dy.data<T>(), out, xc.data<T>(), in, T(0), dw.data<T>(),
         in);
        count_kernel("linear_backward_weight");
      }
      if (needs[2]) {  // db [out] = sum over rows of dy
        db = new_like(dy, {out});
        NABLA_KERNEL(dev, sum_dim<T>)(dy.data<T>(), db.data<T>(), 1, rows, out);
        count_kernel("linear_backward_bias");
      }
    });
    return std::vector<Tensor>{dx, dw, db};
  };
  record("linear", {x, weight, bias}, y, rule);
  return y;
}

}  // namespace nabla
