// Module: the building block of networks, as torch.nn.Module.
//
// A module owns named parameters (leaf tensors with requires_grad, which optimizers update),
// named buffers (state that is saved but not trained: BatchNorm's running statistics) and named
// child modules. Names nest with '.', exactly as PyTorch spells them ("conv1.weight",
// "features.0.bias", "bn.running_mean"), so that state_dict() and a PyTorch state_dict of a
// module with the same attribute names hold the same keys, shapes and layouts.
//
// Registration stores a POINTER to the layer's member tensor: layers read their own members
// (weight, bias) and to(device) / load_state_dict replace what the member holds. A Module is
// therefore neither copyable nor movable; networks hold children through shared_ptr.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nabla/tensor.h>

namespace nabla::nn {

// Name -> tensor, sorted by name: what checkpoints store (io::TensorMap is the same type).
using StateDict = std::map<std::string, Tensor>;

class Module {
 public:
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // requires: a module with a single-tensor forward (layers, Sequential, the nets).
  // ensures:  the module applied to x; recorded by autograd like any op.
  virtual Tensor forward(const Tensor& x);
  // ensures: forward(x), then each forward hook in registration order (PyTorch's __call__).
  //          Networks call their children through operator(), so hooks see every layer.
  Tensor operator()(const Tensor& x);

  // Forward hooks (torch's register_forward_hook): h(module, input, output) runs after
  // forward; returning a tensor replaces the output. Grad-CAM and CAM use them to capture a
  // layer's activation. add_forward_hook returns an id for remove_forward_hook (unknown ids are
  // ignored); ForwardHookGuard removes its hook when it goes out of scope.
  using ForwardHook =
      std::function<std::optional<Tensor>(Module& m, const Tensor& input, const Tensor& output)>;
  int64_t add_forward_hook(ForwardHook h);
  void remove_forward_hook(int64_t id);

  // The type name ("Conv2d") and a one-line description of the configuration
  // ("Conv2d(1, 32, kernel_size=3, padding=1)"); print() shows the tree.
  const std::string& type_name() const { return type_name_; }
  virtual std::string extra_repr() const { return ""; }
  std::string repr(int indent = 0) const;

  // Recursive, in registration order, children after the module's own tensors.
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }
  int64_t num_parameters() const;  // total element count
  // Every module below this one with its dotted name ("conv2", "features.6"), depth first in
  // registration order; the module itself is not included.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules() const;
  // requires: name is "" (this module) or the dotted name of a module below it.
  // ensures:  that module; otherwise nabla::Error listing the names that exist.
  Module& submodule(const std::string& name);

  // Parameters and buffers by their dotted names (values share storage with the module: clone
  // before mutating a copy).
  StateDict state_dict() const;
  // requires: with strict, sd holds exactly the module's keys; shapes must match in any case.
  // ensures:  values copied into the existing tensors (dtype converted, device kept), so
  //           optimizers holding the parameters see the new values. Errors list every missing
  //           key, unexpected key and shape mismatch ("fc1.weight: expected [128, 3136], got
  //           [64, 3136]") before anything is copied: a failed load changes nothing.
  void load_state_dict(const StateDict& sd, bool strict = true);

  // Training mode for dropout and batch norm, recursively (PyTorch's train()/eval()).
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Moves (or converts) every parameter and buffer; parameters stay leaves and keep their
  // requires_grad (a frozen module stays frozen).
  // Optimizers must be created after the move (they hold the tensors they update).
  void to(Device d);
  void to(DType dt);  // floating tensors only; int64 buffers (num_batches_tracked) stay int64

  void zero_grad();  // drops every parameter's .grad

 protected:
  // requires: name unique within this module and without '.'; slot points to a member of the
  //           derived class (it must outlive the module's registration, i.e. be a member).
  // ensures:  *slot becomes a leaf with requires_grad (a parameter) or is stored as is (buffer).
  void register_parameter(const std::string& name, Tensor* slot);
  void register_buffer(const std::string& name, Tensor* slot);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void check_new_name(const std::string& name) const;
  // Replaces every parameter and buffer by move(it); parameters stay leaves with requires_grad.
  // int64 buffers are skipped unless int64_buffers.
  void retarget(const std::function<Tensor(const Tensor&)>& move, bool int64_buffers);
  // (dotted name, slot) for every parameter or buffer below this module.
  void collect(const std::string& prefix, bool params, bool buffers,
               std::vector<std::pair<std::string, Tensor*>>& out) const;

  std::string type_name_;
  bool training_ = true;
  std::vector<std::pair<std::string, Tensor*>> params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::vector<std::pair<int64_t, ForwardHook>> forward_hooks_;
  int64_t next_hook_id_ = 0;
};

// Removes a forward hook when it goes out of scope (also on exceptions).
class ForwardHookGuard {
 public:
  ForwardHookGuard(Module& m, Module::ForwardHook h)
      : m_(m), id_(m.add_forward_hook(std::move(h))) {}
  ~ForwardHookGuard() { m_.remove_forward_hook(id_); }
  ForwardHookGuard(const ForwardHookGuard&) = delete;
  ForwardHookGuard& operator=(const ForwardHookGuard&) = delete;

 private:
  Module& m_;
  int64_t id_;
};

// Freezing. A parameter with requires_grad false is a constant to autograd: a backward pass
// through its module still carries the gradient to the module's input (what a GAN generator
// step needs from a frozen discriminator), but no op records an edge to the parameter, so no
// weight-gradient kernel runs for it and its .grad stays as it was.
// ensures: every parameter of m (recursively) has requires_grad == on.
void set_requires_grad(Module& m, bool on);

// Freezes a module for a scope and restores each parameter's previous flag when it ends (also on
// exceptions): { nn::FreezeGuard frozen(discriminator); ... generator step ... }. Flags are
// restored on the module's parameters at that time, so a move (to) inside the scope is fine.
class FreezeGuard {
 public:
  explicit FreezeGuard(Module& m);
  ~FreezeGuard();
  FreezeGuard(const FreezeGuard&) = delete;
  FreezeGuard& operator=(const FreezeGuard&) = delete;

 private:
  Module& m_;
  std::vector<bool> saved_;
};

// Applies its children in order; children are named "0", "1", ... as in torch.nn.Sequential.
class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);
  // Appends m under the next index; returns *this for chaining.
  Sequential& add(std::shared_ptr<Module> m);
  Tensor forward(const Tensor& x) override;
  size_t size() const { return children().size(); }
};

}  // namespace nabla::nn
