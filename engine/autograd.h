// Reverse-mode autograd: a define-by-run tape of Nodes.
//
// Every differentiable op that sees an input with requires_grad creates one Node that
// holds the op's backward rule and one Edge per tensor input. backward()/grad() walk the
// graph from the outputs in reverse creation order:
//
//   grad_inputs = rule(grad_outputs, needs_input_grad)
//
// needs_input_grad[i] is false when no requested gradient lies behind input i; the rule
// then skips that input entirely, so grad(loss, {x}) never launches a weight-gradient
// kernel (the attacks rely on this). Leaf gradients accumulate (+=) into .grad.
//
// After a backward the rules (and the tensors they saved) are released unless
// retain_graph is set; a second backward through them throws a clear error.
//
// Higher-order gradients are not supported: rules run under NoGradGuard.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nabla/tensor.h>

namespace nabla {

// An input slot of a Node: either another Node's output or a leaf tensor.
struct Edge {
  std::shared_ptr<Node> node;        // producer of that input (non-leaf), or null
  int output_nr = 0;                 // which output of `node`
  std::shared_ptr<TensorImpl> leaf;  // the leaf tensor, when node is null and it requires grad
  bool valid() const { return node != nullptr || leaf != nullptr; }
};

// rule(grad_outputs, needs_input_grad) -> one gradient per input (undefined where not needed).
using BackwardRule = std::function<std::vector<Tensor>(const std::vector<Tensor>& grad_outputs,
                                                       const std::vector<bool>& needs_input_grad)>;
// Replaces a node's rule (guided backprop, deconvnet): gets the node and its grad_outputs.
using BackwardOverride = std::function<std::vector<Tensor>(
    const Node& node, const std::vector<Tensor>& grad_outputs, const std::vector<bool>& needs)>;
// Runs after the rule; may edit grad_inputs in place (read them for Grad-CAM, clamp them...).
using BackwardPostHook = std::function<void(const Node& node, std::vector<Tensor>& grad_inputs,
                                            const std::vector<Tensor>& grad_outputs)>;

struct TensorMeta {
  Shape shape;
  DType dtype = DType::Float32;
  Device device;
};

class Node {
 public:
  Node(std::string name, std::vector<Edge> next, std::vector<TensorMeta> inputs,
       std::vector<TensorMeta> outputs, BackwardRule rule);

  const std::string& name() const { return name_; }
  const std::vector<Edge>& next_edges() const { return next_; }
  const std::vector<TensorMeta>& input_meta() const { return inputs_; }
  const std::vector<TensorMeta>& output_meta() const { return outputs_; }
  int num_outputs() const { return static_cast<int>(outputs_.size()); }
  uint64_t sequence_nr() const { return seq_; }
  bool released() const { return released_; }

  // Hooks. set_override replaces the rule until cleared (pass nullptr).
  void set_override(BackwardOverride f) { override_ = std::move(f); }
  void add_post_hook(BackwardPostHook f) { post_hooks_.push_back(std::move(f)); }
  void clear_hooks();
  // Tensor hooks on output `nr` (Tensor::register_hook and retain_grad of non-leaves).
  void add_output_hook(int nr, TensorHook h);

  // Runs the rule (or the override) and the hooks. Throws if the rule was released.
  std::vector<Tensor> apply(const std::vector<Tensor>& grad_outputs,
                            const std::vector<bool>& needs_input_grad);
  void release();  // drop the rule and everything it captured
  std::vector<Tensor> run_output_hooks(int nr, Tensor grad) const;

 private:
  std::string name_;
  std::vector<Edge> next_;
  std::vector<TensorMeta> inputs_, outputs_;
  BackwardRule rule_;
  BackwardOverride override_;
  std::vector<BackwardPostHook> post_hooks_;
  std::vector<std::vector<TensorHook>> output_hooks_;
  uint64_t seq_;
  bool released_ = false;
};

// ---------------------------------------------------------------- grad mode
bool grad_enabled();
// Disables graph recording in its scope (evaluation, attack updates, optimizer steps).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// ---------------------------------------------------------------- entry points
// Gradients of sum_i <outputs[i], grad_outputs[i]> with respect to `inputs` only, returned in
// order (zeros where an input does not influence the outputs). Leaves' .grad is untouched.
// grad_outputs may be empty when every output has one element.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool retain_graph = false);
// Accumulates into .grad of every leaf that requires grad (and retain_grad non-leaves).
void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs = {},
              bool retain_graph = false);

// Visits every node reachable from t's grad_fn once (for installing hooks).
void visit_graph(const Tensor& t, const std::function<void(Node&)>& f);

// ---------------------------------------------------------------- recording helper
// Used by ops: when grad mode is on and some input requires grad, creates the Node and
// attaches it to the outputs. `inputs` are the op's differentiable tensor inputs in the order
// the rule returns their gradients. Undefined inputs (e.g. a missing bias) are allowed.
void record(const char* name, const std::vector<Tensor>& inputs, std::vector<Tensor*> outputs,
            BackwardRule rule);
inline void record(const char* name, const std::vector<Tensor>& inputs, Tensor& output,
                   BackwardRule rule) {
  record(name, inputs, std::vector<Tensor*>{&output}, std::move(rule));
}
// True when grad mode is on and any defined input requires grad.
bool any_requires_grad(const std::vector<Tensor>& inputs);

// ---------------------------------------------------------------- kernel accounting
// Every kernel call made by engine/ops is counted by name ("conv2d_backward_weight", ...),
// so tests can check that grad(loss, {x}) launches no weight-gradient kernel.
void count_kernel(const char* name);
int64_t kernel_count(const std::string& name);
void reset_kernel_counts();
const std::unordered_map<std::string, int64_t>& kernel_counts();

}  // namespace nabla
