// Learning-rate schedules: argument checks and the closed forms of engine/optim/schedule.h, with
// the operations in torch's order where a torch scheduler has the same rule.
#include <nabla/optim/schedule.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include <nabla/error.h>

namespace nabla::optim {

namespace {

void check_t(const char* op, int64_t t) {
  NABLA_CHECK(t >= 0, op, ".lr_at: the step must be >= 0, got ", t);
}

// v >= 0 is false for NaN, so NaN is refused too.
void check_rate(const char* op, const char* what, double v) {
  NABLA_CHECK(v >= 0 && std::isfinite(v), op, ": ", what, " must be finite and >= 0, got ", v);
}

}  // namespace

LRSchedule::~LRSchedule() = default;

double LRSchedule::apply(Optimizer& opt, int64_t t) const {
  const double lr = lr_at(t);
  opt.set_lr(lr);
  return lr;
}

ConstantLR::ConstantLR(double lr) : lr_(lr) {
  check_rate("ConstantLR", "lr", lr);
}

double ConstantLR::lr_at(int64_t t) const {
  check_t("ConstantLR", t);
  return lr_;
}

StepLR::StepLR(double base_lr, int64_t step_size, double gamma)
    : base_lr_(base_lr), step_size_(step_size), gamma_(gamma) {
  check_rate("StepLR", "base_lr", base_lr);
  NABLA_CHECK(step_size >= 1, "StepLR: step_size must be >= 1, got ", step_size);
  check_rate("StepLR", "gamma", gamma);
}

double StepLR::lr_at(int64_t t) const {
  check_t("StepLR", t);
  // torch's closed form: base_lr * gamma ** (last_epoch // step_size).
  return base_lr_ * std::pow(gamma_, double(t / step_size_));
}

CosineLR::CosineLR(double base_lr, int64_t total, double min_lr, int64_t warmup)
    : base_lr_(base_lr), total_(total), min_lr_(min_lr), warmup_(warmup) {
  check_rate("CosineLR", "base_lr", base_lr);
  check_rate("CosineLR", "min_lr", min_lr);
  NABLA_CHECK(min_lr <= base_lr, "CosineLR: min_lr ", min_lr, " must be <= base_lr ", base_lr);
  NABLA_CHECK(total >= 1, "CosineLR: total must be >= 1, got ", total);
  NABLA_CHECK(warmup >= 0 && warmup < total, "CosineLR: warmup must be in [0, total = ", total,
              "), got ", warmup);
}

double CosineLR::lr_at(int64_t t) const {
  check_t("CosineLR", t);
  // (t + 1) / warmup: the first step already moves, and the ramp ends at base_lr.
  if (t < warmup_) return base_lr_ * double(t + 1) / double(warmup_);
  if (t >= total_) return min_lr_;
  // CosineAnnealingLR's closed form, with the cosine started after the warmup.
  return min_lr_ +
         (base_lr_ - min_lr_) *
             (1 + std::cos(std::numbers::pi * double(t - warmup_) / double(total_ - warmup_))) / 2;
}

LinearDecayLR::LinearDecayLR(double base_lr, int64_t constant_steps, int64_t decay_steps)
    : base_lr_(base_lr), constant_steps_(constant_steps), decay_steps_(decay_steps) {
  check_rate("LinearDecayLR", "base_lr", base_lr);
  NABLA_CHECK(constant_steps >= 0, "LinearDecayLR: constant_steps must be >= 0, got ",
              constant_steps);
  NABLA_CHECK(decay_steps >= 0, "LinearDecayLR: decay_steps must be >= 0, got ", decay_steps);
}

double LinearDecayLR::lr_at(int64_t t) const {
  check_t("LinearDecayLR", t);
  // CycleGAN's lambda_rule: 1 - max(0, epoch + epoch_count - n_epochs) / (n_epochs_decay + 1).
  // In double, so that t + 1 cannot overflow; whole numbers below 2^53 are exact.
  const double past = std::max(0.0, double(t) + 1 - double(constant_steps_));
  const double factor = 1.0 - past / (double(decay_steps_) + 1);
  return base_lr_ * std::max(0.0, factor);
}

}  // namespace nabla::optim
