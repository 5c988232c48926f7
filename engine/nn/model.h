// Model: the one model type that attacks (engine/attack) and explain methods (engine/explain)
// take. A model maps a batch x [N, ...] to an output through engine ops, so that autograd can
// differentiate the output with respect to x. It is one of
//
//   a Module           Model(net): the module's operator(), forward hooks included; its layers
//                      can be looked into (Grad-CAM's layer, CAM's fc, activation ascent)
//   a callable         Model([&](const Tensor& x) { return net(normalize(x)); }): any
//                      Tensor(const Tensor&) that is not a Module, such as a composite model
//                      (preprocessing, an ensemble, a generator followed by a classifier)
//   both               Model(fn, &net): runs fn, and exposes net for the methods that need a
//                      module's layers (fn must call net for its forward hooks to fire)
//
// The constructors from a Module and from a callable are implicit, so attack::fgsm(net, ...)
// and explain::saliency(net, ...) accept a network or a lambda as they are.
// A Model refers to its module, it does not own it: the module must outlive the Model. Copying
// a Model copies the callable and the pointer.
#pragma once

#include <functional>
#include <type_traits>
#include <utility>

#include <nabla/nn/module.h>
#include <nabla/tensor.h>

namespace nabla::nn {

class Model {
 public:
  using Function = std::function<Tensor(const Tensor&)>;

  // ensures: an empty model (operator bool is false; calling it throws nabla::Error).
  Model() = default;

  // ensures: a model that calls m(x) and exposes m as module().
  Model(Module& m) : fn_([p = &m](const Tensor& x) { return (*p)(x); }), module_(&m) {}

  // requires: f callable as Tensor(const Tensor&), and not a Module (a Module converts through
  //           the constructor above, so that its layers stay reachable).
  // ensures:  a model that calls f(x); module() is null.
  template <class F>
  requires(!std::is_base_of_v<Module, std::remove_cvref_t<F>> &&
           !std::is_same_v<std::remove_cvref_t<F>, Model> &&
           std::is_invocable_r_v<Tensor, std::remove_cvref_t<F>&, const Tensor&>) Model(F&& f)
      : fn_(std::forward<F>(f)) {}

  // requires: f non-empty, or module non-null (then the module itself is the forward).
  // ensures:  a composite model: calls f(x), and module() is `module` (may be null).
  Model(Function f, Module* module);

  // requires: a non-empty model. ensures: the model's output for x (recorded by autograd).
  Tensor operator()(const Tensor& x) const;

  // ensures: the module to look into, or null for a plain callable.
  Module* module() const { return module_; }

  // ensures: *module(); otherwise nabla::Error naming `who` and saying that it needs a module
  //          (pass the network itself, or Model(fn, &net) for a composite model).
  Module& require_module(const char* who) const;

  explicit operator bool() const { return bool(fn_); }

 private:
  Function fn_;
  Module* module_ = nullptr;
};

}  // namespace nabla::nn
