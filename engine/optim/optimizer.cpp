// Optimizers: argument checks, lazy state and dispatch to kernels/optim.h. The update itself
// never touches autograd: it runs under NoGradGuard and writes into the parameters' storage.
// The state (momentum buffers, exp_avg, exp_avg_sq) lives on the parameter's device, and the
// step runs there (the CPU kernel or its CUDA twin, which gives the same bits).
#include <nabla/optim/optimizer.h>

#include <cctype>
#include <cmath>
#include <string>

#include <nabla/autograd.h>
#include <nabla/dispatch.h>
#include <nabla/ops/common.h>

#include "kernels/optim.h"

namespace nabla::optim {

using namespace ops_detail;

namespace {

std::string key_of(size_t i, const char* field) {
  return std::to_string(i) + "." + field;
}

// A fresh copy of a state entry, contiguous and outside autograd.
Tensor copy_of(const Tensor& t) {
  return t.detach().clone();
}

}  // namespace

// ---------------------------------------------------------------- Optimizer

Optimizer::Optimizer(std::vector<Tensor> params, double lr, const char* name)
    : params_(std::move(params)), lr_(lr), name_(name) {
  NABLA_CHECK(!params_.empty(), name_, ": got an empty parameter list");
  // v >= 0 is false for NaN, so NaN is refused too.
  NABLA_CHECK(lr >= 0, name_, ": invalid learning rate ", lr, " (must be >= 0)");
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    NABLA_CHECK(p.defined(), name_, ": parameter ", i, " is an undefined tensor");
    NABLA_CHECK(p.is_leaf(), name_, ": parameter ", i, " (", p.str(),
                ") is not a leaf tensor: it was produced by '", p.grad_fn()->name(),
                "'; optimize the leaf it came from");
    NABLA_CHECK(is_floating(p.dtype()), name_, ": parameter ", i,
                " must be a float32 or float64 tensor, got ", p.str());
    // The kernels update the storage as one flat array.
    NABLA_CHECK(p.is_contiguous(), name_, ": parameter ", i, " must be contiguous, got ", p.str(),
                " with strides ", shape_str(p.strides()));
    for (size_t j = 0; j < i; ++j) {
      const bool same =
          p.impl() == params_[j].impl() || (p.numel() > 0 && p.raw_data() == params_[j].raw_data());
      // Updating one storage twice per step would silently double the step.
      NABLA_CHECK(!same, name_, ": parameter ", i, " (", p.str(),
                  ") is the same tensor as parameter ", j);
    }
  }
}

Optimizer::~Optimizer() = default;

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

void Optimizer::set_lr(double lr) {
  NABLA_CHECK(lr >= 0, name_, ".set_lr: invalid learning rate ", lr, " (must be >= 0)");
  lr_ = lr;
}

StateList Optimizer::state() const {
  return {};
}

void Optimizer::load_state(const StateList& entries) {
  NABLA_CHECK(entries.empty(), name_, ".load_state: this optimizer keeps no state, got entry '",
              entries.front().first, "'");
}

std::vector<Optimizer::Update> Optimizer::collect_updates(const char* op) const {
  std::vector<Update> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;  // as PyTorch skips p.grad is None
    NABLA_CHECK(g.shape() == p.shape(), op, ": the gradient of parameter ", i, " has shape ",
                shape_str(g.shape()), " but the parameter has shape ", shape_str(p.shape()));
    NABLA_CHECK(g.dtype() == p.dtype() && g.device() == p.device(), op,
                ": the gradient of parameter ", i, " is ", g.str(), " but the parameter is ",
                p.str());
    out.push_back({i, g.contiguous()});
  }
  return out;
}

std::pair<size_t, std::string> Optimizer::parse_state_key(const char* op,
                                                          const std::string& key) const {
  const size_t dot = key.find('.');
  bool ok = dot != std::string::npos && dot > 0 && dot < 10;
  for (size_t k = 0; ok && k < dot; ++k) ok = std::isdigit(static_cast<unsigned char>(key[k]));
  NABLA_CHECK(ok, op, ": state entry '", key, "' is not of the form '<parameter index>.<name>'");
  const size_t i = std::stoul(key.substr(0, dot));
  NABLA_CHECK(i < params_.size(), op, ": state entry '", key, "' names parameter ", i, ", but ",
              name_, " has ", params_.size(), " parameters");
  return {i, key.substr(dot + 1)};
}

void Optimizer::check_state_tensor(const char* op, const std::string& key, const Tensor& t,
                                   size_t i) const {
  const Tensor& p = params_[i];
  NABLA_CHECK(t.defined(), op, ": state entry '", key, "' is an undefined tensor");
  NABLA_CHECK(t.shape() == p.shape() && t.dtype() == p.dtype() && t.device() == p.device(), op,
              ": state entry '", key, "' is ", t.str(), " but parameter ", i, " is ", p.str());
}

// ---------------------------------------------------------------- SGD

SGD::SGD(std::vector<Tensor> params, SGDOptions o)
    : Optimizer(std::move(params), o.lr, "SGD"), opt_(o) {
  NABLA_CHECK(o.momentum >= 0, "SGD: invalid momentum value ", o.momentum, " (must be >= 0)");
  NABLA_CHECK(o.weight_decay >= 0, "SGD: invalid weight_decay value ", o.weight_decay,
              " (must be >= 0)");
  NABLA_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
              "SGD: Nesterov momentum requires a momentum and zero dampening, got momentum ",
              o.momentum, " and dampening ", o.dampening);
  momentum_buffer_.resize(this->params().size());
}

void SGD::step() {
  const char* op = "SGD.step";
  NoGradGuard no_grad;
  const std::vector<Update> updates = collect_updates(op);
  for (const Update& u : updates) {
    const Tensor& p = params()[u.index];
    Tensor& buf = momentum_buffer_[u.index];
    SgdStepArgs a{lr(), opt_.momentum, opt_.dampening, opt_.weight_decay, opt_.nesterov, false};
    if (opt_.momentum != 0 && !buf.defined()) {
      buf = empty_like(p);  // the kernel sets it to the gradient
      a.first = true;
    }
    dispatch_floating(p, op, [&](auto t) {
      using T = decltype(t);
      NABLA_KERNEL(p.device(), sgd_step<T>)
      (p.data<T>(), u.grad.data<T>(), ptr_or_null<T>(buf), p.numel(), a);
    });
    count_kernel("sgd_step");
  }
  count_step();
}

StateList SGD::state() const {
  StateList out;
  for (size_t i = 0; i < momentum_buffer_.size(); ++i)
    if (momentum_buffer_[i].defined())
      out.emplace_back(key_of(i, "momentum_buffer"), momentum_buffer_[i]);
  return out;
}

void SGD::load_state(const StateList& entries) {
  const char* op = "SGD.load_state";
  NoGradGuard no_grad;
  std::vector<Tensor> bufs(params().size());
  for (const auto& [key, t] : entries) {
    const auto [i, field] = parse_state_key(op, key);
    NABLA_CHECK(field == "momentum_buffer", op, ": unknown state entry '", key,
                "' (SGD keeps only '<i>.momentum_buffer')");
    NABLA_CHECK(opt_.momentum != 0, op, ": state entry '", key,
                "' given, but this SGD has momentum 0 and keeps no buffer");
    NABLA_CHECK(!bufs[i].defined(), op, ": state entry '", key, "' appears twice");
    check_state_tensor(op, key, t, i);
    bufs[i] = copy_of(t);
  }
  momentum_buffer_ = std::move(bufs);
}

// ---------------------------------------------------------------- Adam, AdamW

Adam::Adam(std::vector<Tensor> params, AdamOptions o) : Adam(std::move(params), o, false, "Adam") {}

Adam::Adam(std::vector<Tensor> params, AdamOptions o, bool decoupled, const char* name)
    : Optimizer(std::move(params), o.lr, name), opt_(o), decoupled_(decoupled) {
  NABLA_CHECK(o.eps >= 0, name, ": invalid epsilon value ", o.eps, " (must be >= 0)");
  NABLA_CHECK(o.beta1 >= 0 && o.beta1 < 1, name, ": invalid beta parameter at index 0: ", o.beta1,
              " (must be in [0, 1))");
  NABLA_CHECK(o.beta2 >= 0 && o.beta2 < 1, name, ": invalid beta parameter at index 1: ", o.beta2,
              " (must be in [0, 1))");
  NABLA_CHECK(o.weight_decay >= 0, name, ": invalid weight_decay value ", o.weight_decay,
              " (must be >= 0)");
  const size_t n = this->params().size();
  step_.assign(n, 0);
  exp_avg_.resize(n);
  exp_avg_sq_.resize(n);
}

void Adam::step() {
  const std::string op = name() + ".step";
  NoGradGuard no_grad;
  const std::vector<Update> updates = collect_updates(op.c_str());
  for (const Update& u : updates) {
    const size_t i = u.index;
    const Tensor& p = params()[i];
    if (step_[i] == 0) {
      exp_avg_[i] = zeros_like(p);
      exp_avg_sq_[i] = zeros_like(p);
    }
    ++step_[i];
    const AdamStepArgs a{lr(),       opt_.beta1, opt_.beta2, opt_.eps, opt_.weight_decay,
                         decoupled_, step_[i]};
    dispatch_floating(p, op.c_str(), [&](auto t) {
      using T = decltype(t);
      NABLA_KERNEL(p.device(), adam_step<T>)
      (p.data<T>(), u.grad.data<T>(), exp_avg_[i].data<T>(), exp_avg_sq_[i].data<T>(), p.numel(),
       a);
    });
    count_kernel("adam_step");
  }
  count_step();
}

StateList Adam::state() const {
  StateList out;
  for (size_t i = 0; i < step_.size(); ++i) {
    if (step_[i] == 0) continue;
    out.emplace_back(key_of(i, "step"), full({}, double(step_[i]), DType::Int64));
    out.emplace_back(key_of(i, "exp_avg"), exp_avg_[i]);
    out.emplace_back(key_of(i, "exp_avg_sq"), exp_avg_sq_[i]);
  }
  return out;
}

void Adam::load_state(const StateList& entries) {
  const std::string op_name = name() + ".load_state";
  const char* op = op_name.c_str();
  NoGradGuard no_grad;
  const size_t n = params().size();
  std::vector<int64_t> steps(n, 0);
  std::vector<Tensor> m(n), v(n);
  for (const auto& [key, t] : entries) {
    const auto [i, field] = parse_state_key(op, key);
    if (field == "step") {
      NABLA_CHECK(steps[i] == 0, op, ": state entry '", key, "' appears twice");
      NABLA_CHECK(t.defined() && t.numel() == 1, op, ": state entry '", key,
                  "' must hold one number, got ", t.defined() ? t.str() : "an undefined tensor");
      const double s = t.item<double>();
      NABLA_CHECK(s >= 1 && s == std::floor(s) && s < 9.0e15, op, ": state entry '", key,
                  "' must be a whole step count >= 1, got ", s);
      steps[i] = int64_t(s);
    } else if (field == "exp_avg" || field == "exp_avg_sq") {
      Tensor& dst = field == "exp_avg" ? m[i] : v[i];
      NABLA_CHECK(!dst.defined(), op, ": state entry '", key, "' appears twice");
      check_state_tensor(op, key, t, i);
      dst = copy_of(t);
    } else {
      throw Error(detail::concat(op, ": unknown state entry '", key,
                                 "' (expected <i>.step, <i>.exp_avg or <i>.exp_avg_sq)"));
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const int have = (steps[i] != 0) + m[i].defined() + v[i].defined();
    NABLA_CHECK(have == 0 || have == 3, op, ": parameter ", i, " needs '", key_of(i, "step"),
                "', '", key_of(i, "exp_avg"), "' and '", key_of(i, "exp_avg_sq"),
                "' together, got ", have, " of them");
  }
  step_ = std::move(steps);
  exp_avg_ = std::move(m);
  exp_avg_sq_ = std::move(v);
}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions o)
    : Adam(std::move(params), AdamOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay}, true,
           "AdamW") {}

}  // namespace nabla::optim
