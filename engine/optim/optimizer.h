// Optimizers: SGD (momentum, dampening, Nesterov, L2 weight decay), Adam and AdamW, with the
// semantics, defaults and argument checks of torch.optim.
//
//   SGD    g' = g + wd*p;  b = g' (first step) or mu*b + (1 - dampening)*g';
//          p -= lr * (nesterov ? g' + mu*b : b)                 (b only when mu != 0)
//   Adam   g' = g + wd*p;  m = beta1*m + (1 - beta1)*g';  v = beta2*v + (1 - beta2)*g'^2
//          p -= lr/(1 - beta1^t) * m / (sqrt(v)/sqrt(1 - beta2^t) + eps)
//   AdamW  p *= 1 - lr*wd first (decoupled decay), then Adam with g' = g
//
// An optimizer holds handles to its parameters: contiguous float32/float64 leaf tensors. step()
// updates each parameter that has a gradient in place (same storage, no autograd history) and
// skips the others, as PyTorch skips p.grad is None. State (momentum buffers, exp_avg,
// exp_avg_sq, Adam's per-parameter step count t) is allocated lazily, on a parameter's first
// update, with its shape, dtype and device. The arithmetic and its exact floating-point recipe
// live in kernels/optim.h.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nabla/tensor.h>

namespace nabla::optim {

// Named optimizer state: "<parameter index>.<name>", e.g. {"0.momentum_buffer", buf}.
using StateList = std::vector<std::pair<std::string, Tensor>>;

class Optimizer {
 public:
  // requires: params non-empty; each a defined, contiguous, float32/float64 leaf tensor,
  //           none repeated; lr >= 0. `name` prefixes error messages ("SGD", "Adam").
  // ensures:  steps() == 0, no state. Throws nabla::Error naming the offending index.
  explicit Optimizer(std::vector<Tensor> params, double lr, const char* name = "Optimizer");
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // ensures: every parameter with a defined grad() is updated in place; the others are skipped;
  //          steps() grows by one. All parameters and gradients are checked before any is
  //          updated, so a throwing step changes nothing.
  virtual void step() = 0;
  // ensures: every parameter's .grad is dropped (undefined), as p.grad = None in PyTorch.
  void zero_grad();

  double lr() const { return lr_; }
  // requires: lr >= 0. ensures: later steps use lr (schedules call this).
  void set_lr(double lr);
  const std::vector<Tensor>& params() const { return params_; }
  // ensures: the number of step() calls that returned normally.
  int64_t steps() const { return steps_; }

  // ensures: the state of every parameter that has any, in parameter order. Buffers are the live
  //          tensors (not copies); scalar counters are fresh int64 tensors of shape [].
  virtual StateList state() const;
  // requires: entries as state() returns them (any order), each shaped, typed and placed like
  //           its parameter. ensures: the state is replaced by copies of the entries; parameters
  //           not named get no state. Throws nabla::Error on an unknown or malformed entry.
  virtual void load_state(const StateList& entries);

 protected:
  // One parameter that has a gradient: its index and the gradient, contiguous.
  struct Update {
    size_t index;
    Tensor grad;
  };
  // Checks every parameter that has a gradient (a gradient of the same shape, dtype and
  // device) and returns them in order; throws nabla::Error naming `op` and the index.
  std::vector<Update> collect_updates(const char* op) const;
  // Parses "<index>.<name>" against the parameter count; throws naming `op`.
  std::pair<size_t, std::string> parse_state_key(const char* op, const std::string& key) const;
  // Checks that a state tensor matches parameter i (shape, dtype, device); throws naming `op`.
  void check_state_tensor(const char* op, const std::string& key, const Tensor& t, size_t i) const;
  void count_step() { ++steps_; }
  const std::string& name() const { return name_; }

 private:
  std::vector<Tensor> params_;
  double lr_;
  int64_t steps_ = 0;
  std::string name_;
};

// torch.optim.SGD defaults (lr 1e-3, as in current PyTorch).
struct SGDOptions {
  double lr = 1e-3, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  // requires: lr, momentum, weight_decay >= 0; nesterov needs momentum > 0 and dampening == 0.
  explicit SGD(std::vector<Tensor> params, SGDOptions o = {});
  void step() override;
  // State: "<i>.momentum_buffer" for each parameter updated with momentum != 0.
  StateList state() const override;
  void load_state(const StateList& entries) override;
  const SGDOptions& options() const { return opt_; }

 private:
  SGDOptions opt_;
  std::vector<Tensor> momentum_buffer_;  // undefined until the parameter's first update
};

// torch.optim.Adam defaults (betas = (beta1, beta2)).
struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
};

// Adam and AdamW share everything but the weight decay; AdamW derives from it.
class Adam : public Optimizer {
 public:
  // requires: lr >= 0, eps >= 0, 0 <= beta1 < 1, 0 <= beta2 < 1, weight_decay >= 0.
  // Weight decay is an L2 penalty added to the gradient (torch.optim.Adam).
  explicit Adam(std::vector<Tensor> params, AdamOptions o = {});
  void step() override;
  // State: "<i>.step" (int64, shape []), "<i>.exp_avg", "<i>.exp_avg_sq" for each parameter
  // updated at least once.
  StateList state() const override;
  void load_state(const StateList& entries) override;
  const AdamOptions& options() const { return opt_; }

 protected:
  Adam(std::vector<Tensor> params, AdamOptions o, bool decoupled, const char* name);

 private:
  AdamOptions opt_;
  bool decoupled_;
  std::vector<int64_t> step_;  // per parameter, as PyTorch's state["step"]; 0 = no state yet
  std::vector<Tensor> exp_avg_, exp_avg_sq_;
};

// torch.optim.AdamW defaults: Adam's, with weight_decay 0.01.
struct AdamWOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};

class AdamW : public Adam {
 public:
  // requires: as Adam. Weight decay is decoupled: p *= 1 - lr*weight_decay before the Adam
  // update, which then sees the raw gradient (torch.optim.AdamW).
  explicit AdamW(std::vector<Tensor> params, AdamWOptions o = {});
};

}  // namespace nabla::optim
