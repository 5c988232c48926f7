// Optimizers and learning-rate schedules by name, as the command line and run configurations
// spell them. Every training command builds its optimizers and schedules here, so a name means
// the same rule everywhere.
//
//   make_optimizer  "sgd" (SGD with momentum, dampening, Nesterov, L2 decay), "adam", "adamw"
//   make_schedule   "constant"      lr(t) = lr
//                   "step"          lr(t) = lr gamma^floor(t / step_size)   (step_size: one epoch)
//                   "cosine"        lr(t) = min_lr + (lr - min_lr)(1 + cos(pi t / T)) / 2, T the
//                                   run's total steps (after an optional linear warmup)
//                   "linear-decay"  lr for constant_steps, then linearly to 0 over decay_steps
//                                   (the CycleGAN rule; by default half of the run each)
// The formulas are in schedule.h and optimizer.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nabla/optim/optimizer.h>
#include <nabla/optim/schedule.h>

namespace nabla::optim {

struct OptimizerOptions {
  double lr = 1e-3;
  double momentum = 0, dampening = 0;             // sgd
  bool nesterov = false;                          // sgd
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adam, adamw
  double weight_decay = 0;  // sgd and adam: L2 added to the gradient; adamw: decoupled
};

// ensures: "sgd", "adam", "adamw".
const std::vector<std::string>& optimizer_names();
// requires: name one of optimizer_names(); params and options as the optimizer's constructor
//   requires.
// ensures: the optimizer over params; otherwise nabla::Error naming the unknown name and
//   listing the known ones.
std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<Tensor> params,
                                          const OptimizerOptions& o);

struct ScheduleOptions {
  double lr = 1e-3;             // the base (peak) rate
  int64_t total_steps = 1;      // the run's length in steps (cosine's T, linear-decay's split)
  int64_t steps_per_epoch = 1;  // step's default step_size
  int64_t step_size = 0;        // step: 0 means one epoch
  double gamma = 0.5;           // step: the factor per step_size
  double min_lr = 0;            // cosine: the floor
  int64_t warmup = 0;           // cosine: linear warmup steps
  int64_t constant_steps = -1;  // linear-decay: -1 means total_steps / 2
  int64_t decay_steps = -1;     // linear-decay: -1 means total_steps - constant_steps
};

// ensures: "constant", "step", "cosine", "linear-decay".
const std::vector<std::string>& schedule_names();
// requires: name one of schedule_names(); total_steps >= 1, steps_per_epoch >= 1.
// ensures: the schedule; otherwise nabla::Error naming the unknown name and the known ones.
std::unique_ptr<LRSchedule> make_schedule(const std::string& name, const ScheduleOptions& o);

}  // namespace nabla::optim
