// Normalization ops: argument checks, dispatch to kernels/norm.h, backward rules.
// batch_norm2d and instance_norm2d share one implementation: they differ only in how x is cut
// into groups of shared statistics (NormGroups) and in whether running statistics exist.
#include <nabla/ops/norm.h>

#include <string>

#include <nabla/dispatch.h>
#include <nabla/ops/common.h>

#include "kernels/norm.h"

namespace nabla {

using namespace ops_detail;

namespace {

// weight, bias and running statistics are [C] when given.
void check_channel_vector(const char* op, const char* what, const Tensor& t, const Tensor& x) {
  if (!t.defined()) return;
  NABLA_CHECK(t.dim() == 1 && t.size(0) == x.size(1), op, ": ", what, " must have shape [",
              x.size(1), "] (the channels of input ", x.str(), "), got ", t.str());
}

void check_common(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias,
                  double eps) {
  check_dim(op, "input", x, 4);
  check_same(op, {&x, &weight, &bias});
  check_channel_vector(op, "weight", weight, x);
  check_channel_vector(op, "bias", bias, x);
  NABLA_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps, " for input ", x.str());
}

// The shared forward and backward. running_mean/running_var: updated in place when training,
// read when not (both given, or both undefined).
Tensor norm2d(const char* op, const NormGroups& s, const Tensor& x, const Tensor& weight,
              const Tensor& bias, const Tensor& running_mean, const Tensor& running_var,
              bool training, double momentum, double eps) {
  const std::string name(op);
  Tensor xc = x.detach().contiguous();
  Tensor wc = weight.defined() ? weight.detach().contiguous() : Tensor();
  Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = new_like(xc, xc.shape());
  Tensor invstd = new_like(xc, {s.groups});
  // In eval mode the backward needs the running mean as it is now: the caller may update the
  // running statistics in place before the backward runs, so keep a copy.
  Tensor mean = training ? new_like(xc, {s.groups}) : running_mean.detach().clone();
  dispatch_floating(xc, op, [&](auto t) {
    using T = decltype(t);
    if (training) {
      const auto forward = NABLA_KERNEL(xc.device(), norm_forward_train<T>);
      forward(s, xc.data<T>(), ptr_or_null<T>(wc), ptr_or_null<T>(bc), eps, momentum, y.data<T>(),
              mean.data<T>(), invstd.data<T>(), ptr_or_null<T>(running_mean),
              ptr_or_null<T>(running_var));
    } else {
      Tensor vc = running_var.detach().contiguous();
      const auto forward = NABLA_KERNEL(xc.device(), norm_forward_eval<T>);
      forward(s, xc.data<T>(), mean.data<T>(), vc.data<T>(), ptr_or_null<T>(wc), ptr_or_null<T>(bc),
              eps, y.data<T>(), invstd.data<T>());
    }
  });
  count_kernel((name + (training ? "_forward" : "_forward_eval")).c_str());

  record(op, {x, weight, bias}, y,
         [name, s, training, xc, wc, mean, invstd](const std::vector<Tensor>& g,
                                                   const std::vector<bool>& needs) {
           const bool need_x = needs[0], need_w = needs[1], need_b = needs[2];
           Tensor dy = g[0].contiguous();
           Tensor dx = need_x ? new_like(xc, xc.shape()) : Tensor();
           Tensor dw = need_w ? new_like(xc, {s.channels}) : Tensor();
           Tensor db = need_b ? new_like(xc, {s.channels}) : Tensor();
           // The training dx needs both group sums; the parameter gradients need the sums of
           // what they ask for; the eval dx needs none.
           const bool want_sdyx = (training && need_x) || need_w;
           const bool reduce = want_sdyx || need_b;
           Tensor sdy = reduce ? empty({s.groups}, DType::Float64, xc.device()) : Tensor();
           Tensor sdyx = want_sdyx ? empty({s.groups}, DType::Float64, xc.device()) : Tensor();
           dispatch_floating(xc, name.c_str(), [&](auto t) {
             using T = decltype(t);
             if (reduce) {
               const auto backward_reduce = NABLA_KERNEL(xc.device(), norm_backward_reduce<T>);
               backward_reduce(s, xc.data<T>(), mean.data<T>(), invstd.data<T>(), dy.data<T>(),
                               sdy.data<double>(), ptr_or_null<double>(sdyx));
               count_kernel((name + "_backward_reduce").c_str());
             }
             if (need_x) {
               const auto backward_input = NABLA_KERNEL(xc.device(), norm_backward_input<T>);
               backward_input(s, xc.data<T>(), mean.data<T>(), invstd.data<T>(), ptr_or_null<T>(wc),
                              dy.data<T>(), training ? sdy.data<double>() : nullptr,
                              training ? sdyx.data<double>() : nullptr, dx.data<T>());
               count_kernel((name + "_backward_input").c_str());
             }
             if (need_w || need_b) {
               const auto backward_weight = NABLA_KERNEL(xc.device(), norm_backward_weight<T>);
               backward_weight(s, sdy.data<double>(), ptr_or_null<double>(sdyx), ptr_or_null<T>(dw),
                               ptr_or_null<T>(db));
               count_kernel((name + "_backward_weight").c_str());
             }
           });
           return std::vector<Tensor>{dx, dw, db};
         });
  return y;
}

}  // namespace

Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const Tensor& running_mean, const Tensor& running_var, bool training,
                    double momentum, double eps) {
  const char* op = "batch_norm2d";
  check_common(op, x, weight, bias, eps);
  check_same(op, {&x, &running_mean, &running_var});
  check_channel_vector(op, "running_mean", running_mean, x);
  check_channel_vector(op, "running_var", running_var, x);
  NABLA_CHECK(running_mean.defined() == running_var.defined(), op,
              ": running_mean and running_var must be given together, got ", running_mean.str(),
              " and ", running_var.str(), " for input ", x.str());
  NABLA_CHECK(momentum >= 0 && momentum <= 1, op, ": momentum must be in [0, 1], got ", momentum,
              " for input ", x.str());
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  if (training) {
    NABLA_CHECK(N * HW > 1, op,
                ": expected more than 1 value per channel when training, got input ", x.str());
    // The kernel writes the running statistics through raw pointers.
    NABLA_CHECK(
        !running_mean.defined() || (running_mean.is_contiguous() && running_var.is_contiguous()),
        op, ": running_mean and running_var must be contiguous (updated in place), got ",
        running_mean.str(), " and ", running_var.str());
  } else {
    NABLA_CHECK(running_mean.defined(), op,
                ": eval mode (training = false) needs running_mean and running_var, input ",
                x.str());
  }
  NormGroups s{N, C, HW, C};
  return norm2d(op, s, x, weight, bias, running_mean, running_var, training, momentum, eps);
}

Tensor instance_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "instance_norm2d";
  check_common(op, x, weight, bias, eps);
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  NABLA_CHECK(HW > 1, op, ": expected more than 1 spatial element per plane, got input ", x.str());
  NormGroups s{1, N * C, HW, C};
  return norm2d(op, s, x, weight, bias, Tensor(), Tensor(), true, 0.0, eps);
}

}  // namespace nabla
