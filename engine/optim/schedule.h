// Learning-rate schedules: each a pure function lr_at(t) of the step (or epoch) count t >= 0,
// so a resumed run gets its rate back from t alone. apply() writes it into an optimizer.
//
//   ConstantLR     lr(t) = base_lr
//   StepLR         lr(t) = base_lr * gamma^floor(t / step_size)          (torch StepLR)
//   CosineLR       t < warmup:           lr(t) = base_lr * (t + 1) / warmup
//                  warmup <= t <= total: lr(t) = min_lr + (base_lr - min_lr) * (1 + cos(pi*u)) / 2,
//                                        u = (t - warmup) / (total - warmup)
//                  t > total:            lr(t) = min_lr
//                  (with warmup 0 this is torch's CosineAnnealingLR, T_max = total)
//   LinearDecayLR  lr(t) = base_lr * (1 - max(0, t + 1 - constant_steps) / (decay_steps + 1)),
//                  clamped at 0: the CycleGAN rule (LambdaLR with epoch_count 1). base_lr for
//                  t < constant_steps, then linear, reaching 0 at t = constant_steps + decay_steps.
#pragma once

#include <cstdint>

#include <nabla/optim/optimizer.h>

namespace nabla::optim {

class LRSchedule {
 public:
  virtual ~LRSchedule();
  // requires: t >= 0 (throws nabla::Error otherwise). ensures: the rate at step t, >= 0.
  virtual double lr_at(int64_t t) const = 0;
  // ensures: opt.lr() == lr_at(t); returns it.
  double apply(Optimizer& opt, int64_t t) const;
};

class ConstantLR : public LRSchedule {
 public:
  // requires: lr >= 0.
  explicit ConstantLR(double lr);
  double lr_at(int64_t t) const override;

 private:
  double lr_;
};

class StepLR : public LRSchedule {
 public:
  // requires: base_lr >= 0, step_size >= 1, gamma >= 0.
  StepLR(double base_lr, int64_t step_size, double gamma = 0.1);
  double lr_at(int64_t t) const override;

 private:
  double base_lr_;
  int64_t step_size_;
  double gamma_;
};

class CosineLR : public LRSchedule {
 public:
  // requires: 0 <= min_lr <= base_lr, total >= 1, 0 <= warmup < total.
  CosineLR(double base_lr, int64_t total, double min_lr = 0, int64_t warmup = 0);
  double lr_at(int64_t t) const override;

 private:
  double base_lr_;
  int64_t total_;
  double min_lr_;
  int64_t warmup_;
};

class LinearDecayLR : public LRSchedule {
 public:
  // requires: base_lr >= 0, constant_steps >= 0, decay_steps >= 0.
  LinearDecayLR(double base_lr, int64_t constant_steps, int64_t decay_steps);
  double lr_at(int64_t t) const override;

 private:
  double base_lr_;
  int64_t constant_steps_, decay_steps_;
};

}  // namespace nabla::optim
