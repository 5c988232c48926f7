// Optimizers and schedules by name (see factory.h).
#include <nabla/optim/factory.h>

#include <nabla/error.h>

namespace nabla::optim {

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

const std::vector<std::string>& optimizer_names() {
  static const std::vector<std::string> names = {"sgd", "adam", "adamw"};
  return names;
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<Tensor> params,
                                          const OptimizerOptions& o) {
  if (name == "sgd")
    return std::make_unique<SGD>(std::move(params), SGDOptions{.lr = o.lr,
                                                               .momentum = o.momentum,
                                                               .dampening = o.dampening,
                                                               .weight_decay = o.weight_decay,
                                                               .nesterov = o.nesterov});
  if (name == "adam")
    return std::make_unique<Adam>(std::move(params), AdamOptions{.lr = o.lr,
                                                                 .beta1 = o.beta1,
                                                                 .beta2 = o.beta2,
                                                                 .eps = o.eps,
                                                                 .weight_decay = o.weight_decay});
  if (name == "adamw")
    return std::make_unique<AdamW>(std::move(params), AdamWOptions{.lr = o.lr,
                                                                   .beta1 = o.beta1,
                                                                   .beta2 = o.beta2,
                                                                   .eps = o.eps,
                                                                   .weight_decay = o.weight_decay});
  throw Error("make_optimizer: unknown optimizer '" + name +
              "' (known: " + join(optimizer_names()) + ")");
}

const std::vector<std::string>& schedule_names() {
  static const std::vector<std::string> names = {"constant", "step", "cosine", "linear-decay"};
  return names;
}

std::unique_ptr<LRSchedule> make_schedule(const std::string& name, const ScheduleOptions& o) {
  NABLA_CHECK(o.total_steps >= 1 && o.steps_per_epoch >= 1, "make_schedule(", name,
              "): total_steps and steps_per_epoch must be >= 1, got ", o.total_steps, " and ",
              o.steps_per_epoch);
  if (name == "constant") return std::make_unique<ConstantLR>(o.lr);
  if (name == "step")
    return std::make_unique<StepLR>(o.lr, o.step_size > 0 ? o.step_size : o.steps_per_epoch,
                                    o.gamma);
  if (name == "cosine") return std::make_unique<CosineLR>(o.lr, o.total_steps, o.min_lr, o.warmup);
  if (name == "linear-decay") {
    const int64_t constant = o.constant_steps >= 0 ? o.constant_steps : o.total_steps / 2;
    const int64_t decay = o.decay_steps >= 0 ? o.decay_steps : o.total_steps - constant;
    return std::make_unique<LinearDecayLR>(o.lr, constant, decay);
  }
  throw Error("make_schedule: unknown schedule '" + name + "' (known: " + join(schedule_names()) +
              ")");
}

}  // namespace nabla::optim
