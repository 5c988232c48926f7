// Model: a Module, a callable, or both (see model.h).
#include <nabla/nn/model.h>

#include <nabla/error.h>

namespace nabla::nn {

Model::Model(Function f, Module* module) : fn_(std::move(f)), module_(module) {
  if (!fn_ && module_) fn_ = [p = module_](const Tensor& x) { return (*p)(x); };
}

Tensor Model::operator()(const Tensor& x) const {
  NABLA_CHECK(bool(fn_), "nn::Model: an empty model was called on x ",
              x.defined() ? x.str() : std::string("(undefined)"));
  return fn_(x);
}

Module& Model::require_module(const char* who) const {
  NABLA_CHECK(module_ != nullptr, who,
              ": needs a module to look into (its layers, forward hooks), but the model is a "
              "plain callable; pass the network itself, or nn::Model(fn, &net) for a composite "
              "model whose forward calls net");
  return *module_;
}

}  // namespace nabla::nn
