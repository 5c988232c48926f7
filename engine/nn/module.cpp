// Module bookkeeping: registration, recursive traversal, state dicts, modes and moves.
#include <nabla/nn/module.h>

#include <set>
#include <sstream>

#include <nabla/autograd.h>
#include <nabla/error.h>

namespace nabla::nn {

Tensor Module::forward(const Tensor& x) {
  throw Error(type_name_ + ": this module has no single-tensor forward (called with " + x.str() +
              ")");
}

Tensor Module::operator()(const Tensor& x) {
  Tensor y = forward(x);
  for (const auto& [_, h] : forward_hooks_)
    if (std::optional<Tensor> r = h(*this, x, y)) y = *r;
  return y;
}

int64_t Module::add_forward_hook(ForwardHook h) {
  NABLA_CHECK(h != nullptr, type_name_, ": add_forward_hook: the hook is empty");
  forward_hooks_.emplace_back(next_hook_id_, std::move(h));
  return next_hook_id_++;
}

void Module::remove_forward_hook(int64_t id) {
  std::erase_if(forward_hooks_, [id](const auto& p) { return p.first == id; });
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules() const {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  for (const auto& [n, child] : children_) {
    out.emplace_back(n, child);
    for (auto& [sub, m] : child->named_modules()) out.emplace_back(n + "." + sub, m);
  }
  return out;
}

Module& Module::submodule(const std::string& name) {
  if (name.empty()) return *this;
  std::string names;
  for (const auto& [n, m] : named_modules()) {
    if (n == name) return *m;
    names += (names.empty() ? "" : ", ") + n + " (" + m->type_name() + ")";
  }
  throw Error(type_name_ + ": no module named '" + name +
              "'; it has: " + (names.empty() ? std::string("no submodules") : names));
}

void Module::check_new_name(const std::string& name) const {
  NABLA_CHECK(!name.empty() && name.find('.') == std::string::npos, type_name_, ": invalid name '",
              name, "' (non-empty, no '.')");
  auto taken = [&](const auto& v) {
    for (const auto& [n, _] : v)
      if (n == name) return true;
    return false;
  };
  NABLA_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), type_name_, ": name '",
              name, "' is already registered");
}

void Module::register_parameter(const std::string& name, Tensor* slot) {
  check_new_name(name);
  NABLA_CHECK(slot && slot->defined(), type_name_, ": parameter '", name, "' is undefined");
  NABLA_CHECK(slot->dtype() != DType::Int64, type_name_, ": parameter '", name,
              "' must be floating, got ", slot->str());
  if (!slot->is_leaf()) *slot = slot->detach();
  slot->set_requires_grad(true);
  params_.emplace_back(name, slot);
}

void Module::register_buffer(const std::string& name, Tensor* slot) {
  check_new_name(name);
  NABLA_CHECK(slot && slot->defined(), type_name_, ": buffer '", name, "' is undefined");
  buffers_.emplace_back(name, slot);
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  check_new_name(name);
  NABLA_CHECK(m != nullptr, type_name_, ": child module '", name, "' is null");
  children_.emplace_back(name, std::move(m));
}

void Module::collect(const std::string& prefix, bool params, bool buffers,
                     std::vector<std::pair<std::string, Tensor*>>& out) const {
  if (params)
    for (const auto& [n, slot] : params_) out.emplace_back(prefix + n, slot);
  if (buffers)
    for (const auto& [n, slot] : buffers_) out.emplace_back(prefix + n, slot);
  for (const auto& [n, child] : children_) child->collect(prefix + n + ".", params, buffers, out);
}

std::vector<Tensor> Module::parameters() const {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, false, slots);
  std::vector<Tensor> out;
  for (auto& [_, slot] : slots) out.push_back(*slot);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, false, slots);
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [n, slot] : slots) out.emplace_back(n, *slot);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", false, true, slots);
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [n, slot] : slots) out.emplace_back(n, *slot);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Tensor& p : parameters()) n += p.numel();
  return n;
}

StateDict Module::state_dict() const {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, true, slots);
  StateDict sd;
  for (auto& [n, slot] : slots) sd.emplace(n, slot->detach());
  return sd;
}

void Module::load_state_dict(const StateDict& sd, bool strict) {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, true, slots);
  std::vector<std::string> missing, mismatched, unexpected;
  std::set<std::string> known;
  for (auto& [n, slot] : slots) {
    known.insert(n);
    auto it = sd.find(n);
    if (it == sd.end()) {
      missing.push_back(n);
    } else if (!it->second.defined() || it->second.shape() != slot->shape()) {
      mismatched.push_back(n + ": expected " + shape_str(slot->shape()) + ", got " +
                           (it->second.defined() ? shape_str(it->second.shape()) : "undefined"));
    }
  }
  for (const auto& [n, _] : sd)
    if (!known.count(n)) unexpected.push_back(n);
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  std::string problems;
  if (!mismatched.empty()) problems += "\n  shape mismatch: " + join(mismatched);
  if (strict && !missing.empty()) problems += "\n  missing keys: " + join(missing);
  if (strict && !unexpected.empty()) problems += "\n  unexpected keys: " + join(unexpected);
  NABLA_CHECK(problems.empty(), type_name_, ".load_state_dict: the state dict does not fit",
              problems);
  NoGradGuard ng;
  for (auto& [n, slot] : slots) {
    auto it = sd.find(n);
    if (it == sd.end()) continue;
    copy_(*slot, it->second.detach());  // converts dtype and crosses devices as needed
  }
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [_, child] : children_) child->train(on);
}

void Module::retarget(const std::function<Tensor(const Tensor&)>& move, bool int64_buffers) {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, false, slots);
  for (auto& [_, slot] : slots) {
    const Tensor detached = slot->detach();
    Tensor moved = move(detached);
    if (moved.impl() == detached.impl()) continue;  // already there: keep the same leaf
    const bool trainable = slot->requires_grad();
    *slot = moved;
    slot->set_requires_grad(trainable);
  }
  slots.clear();
  collect("", false, true, slots);
  for (auto& [_, slot] : slots)
    if (int64_buffers || slot->dtype() != DType::Int64) *slot = move(*slot);
}

void Module::to(Device d) {
  retarget([d](const Tensor& t) { return t.to(d); }, true);
}

void Module::to(DType dt) {
  NABLA_CHECK(dt != DType::Int64, type_name_, ".to: parameters must stay floating (asked for ",
              dtype_name(dt), ")");
  // Integer buffers (num_batches_tracked) keep their dtype.
  retarget([dt](const Tensor& t) { return t.to(dt); }, false);
}

void Module::zero_grad() {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, false, slots);
  for (auto& [_, slot] : slots) slot->zero_grad();
}

std::string Module::repr(int indent) const {
  std::ostringstream os;
  os << type_name_ << "(" << extra_repr();
  if (!children_.empty()) {
    os << "\n";
    const std::string pad(size_t(indent + 2), ' ');
    for (const auto& [n, child] : children_)
      os << pad << "(" << n << "): " << child->repr(indent + 2) << "\n";
    os << std::string(size_t(indent), ' ');
  }
  os << ")";
  return os.str();
}

void set_requires_grad(Module& m, bool on) {
  for (Tensor p : m.parameters()) p.set_requires_grad(on);
}

FreezeGuard::FreezeGuard(Module& m) : m_(m) {
  for (Tensor p : m.parameters()) {
    saved_.push_back(p.requires_grad());
    p.set_requires_grad(false);
  }
}

FreezeGuard::~FreezeGuard() {
  std::vector<Tensor> params = m_.parameters();
  for (size_t i = 0; i < params.size() && i < saved_.size(); ++i)
    params[i].set_requires_grad(saved_[i]);
}

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) : Module("Sequential") {
  for (auto& m : modules) add(std::move(m));
}

Sequential& Sequential::add(std::shared_ptr<Module> m) {
  register_module(std::to_string(children().size()), std::move(m));
  return *this;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (const auto& [_, child] : children()) h = (*child)(h);
  return h;
}

}  // namespace nabla::nn
