// The autograd engine. See autograd.h for the model.
#include <nabla/autograd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <queue>
#include <unordered_set>

#include <nabla/ops/elementwise.h>

namespace nabla {

// ---------------------------------------------------------------- grad mode and counters
namespace {
thread_local bool g_grad_enabled = true;
std::atomic<uint64_t> g_next_seq{0};
std::unordered_map<std::string, int64_t> g_kernel_counts;
}  // namespace

bool grad_enabled() {
  return g_grad_enabled;
}
NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) {
  g_grad_enabled = false;
}
NoGradGuard::~NoGradGuard() {
  g_grad_enabled = prev_;
}

void count_kernel(const char* name) {
  ++g_kernel_counts[name];
}
int64_t kernel_count(const std::string& name) {
  auto it = g_kernel_counts.find(name);
  return it == g_kernel_counts.end() ? 0 : it->second;
}
void reset_kernel_counts() {
  g_kernel_counts.clear();
}
const std::unordered_map<std::string, int64_t>& kernel_counts() {
  return g_kernel_counts;
}

// ---------------------------------------------------------------- Node
Node::Node(std::string name, std::vector<Edge> next, std::vector<TensorMeta> inputs,
           std::vector<TensorMeta> outputs, BackwardRule rule)
    : name_(std::move(name)),
      next_(std::move(next)),
      inputs_(std::move(inputs)),
      outputs_(std::move(outputs)),
      rule_(std::move(rule)),
      output_hooks_(outputs_.size()),
      seq_(g_next_seq++) {}

void Node::clear_hooks() {
  override_ = nullptr;
  post_hooks_.clear();
}

void Node::add_output_hook(int nr, TensorHook h) {
  output_hooks_.at(size_t(nr)).push_back(std::move(h));
}

std::vector<Tensor> Node::run_output_hooks(int nr, Tensor grad) const {
  for (const auto& h : output_hooks_[size_t(nr)]) {
    std::optional<Tensor> r = h(grad);
    if (r) grad = *r;
  }
  return {grad};
}

void Node::release() {
  rule_ = nullptr;
  released_ = true;
}

std::vector<Tensor> Node::apply(const std::vector<Tensor>& grad_outputs,
                                const std::vector<bool>& needs) {
  NABLA_CHECK(!released_, "backward: trying to backward through the graph a second time (node '",
              name_,
              "'); its saved tensors were freed after the first backward. Pass "
              "retain_graph=true to the first backward if you need to go through it twice.");
  std::vector<Tensor> gi =
      override_ ? override_(*this, grad_outputs, needs) : rule_(grad_outputs, needs);
  NABLA_CHECK(gi.size() == next_.size(), "backward: rule of '", name_, "' returned ", gi.size(),
              " gradients for ", next_.size(), " inputs");
  for (const auto& h : post_hooks_) h(*this, gi, grad_outputs);
  for (size_t i = 0; i < gi.size(); ++i) {
    if (!needs[i] || !gi[i].defined()) continue;
    NABLA_CHECK(gi[i].shape() == inputs_[i].shape, "backward: '", name_,
                "' produced a gradient of ", "shape ", shape_str(gi[i].shape()), " for input ", i,
                " of shape ", shape_str(inputs_[i].shape));
  }
  return gi;
}

// ---------------------------------------------------------------- recording
bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const char* name, const std::vector<Tensor>& inputs, std::vector<Tensor*> outputs,
            BackwardRule rule) {
  if (!any_requires_grad(inputs)) return;
  std::vector<Edge> edges;
  std::vector<TensorMeta> in_meta;
  for (const auto& t : inputs) {
    Edge e;
    if (t.defined() && t.requires_grad()) {
      if (t.impl()->grad_fn) {
        e.node = t.impl()->grad_fn;
        e.output_nr = t.impl()->output_nr;
      } else {
        e.leaf = t.impl_ptr();
      }
    }
    edges.push_back(e);
    in_meta.push_back(t.defined() ? TensorMeta{t.shape(), t.dtype(), t.device()} : TensorMeta{});
  }
  std::vector<TensorMeta> out_meta;
  for (Tensor* o : outputs) out_meta.push_back({o->shape(), o->dtype(), o->device()});
  auto node = std::make_shared<Node>(name, std::move(edges), std::move(in_meta),
                                     std::move(out_meta), std::move(rule));
  for (size_t i = 0; i < outputs.size(); ++i) {
    TensorImpl* impl = outputs[i]->impl();
    impl->grad_fn = node;
    impl->output_nr = int(i);
    impl->requires_grad = true;
  }
}

// ---------------------------------------------------------------- Tensor autograd methods
bool Tensor::requires_grad() const {
  return checked().requires_grad;
}
bool Tensor::is_leaf() const {
  return checked().grad_fn == nullptr;
}
std::shared_ptr<Node> Tensor::grad_fn() const {
  return checked().grad_fn;
}

Tensor& Tensor::set_requires_grad(bool r) {
  NABLA_CHECK(is_leaf(), "set_requires_grad: only leaf tensors can change requires_grad (", str(),
              " was produced by '", grad_fn()->name(), "'); use detach() first");
  NABLA_CHECK(!r || is_floating(dtype()), "set_requires_grad: ", str(),
              " is an integer tensor; only float tensors can require gradients");
  impl_->requires_grad = r;
  return *this;
}

Tensor Tensor::grad() const {
  const auto& g = checked().grad;
  return g ? Tensor(g) : Tensor();
}

void Tensor::zero_grad() {
  checked(), impl_->grad.reset();
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  const auto& s = checked();
  impl->storage = s.storage;
  impl->shape = s.shape;
  impl->strides = s.strides;
  impl->offset = s.offset;
  impl->dtype = s.dtype;
  impl->device = s.device;
  return Tensor(impl);
}

Tensor& Tensor::retain_grad() {
  NABLA_CHECK(requires_grad(), "retain_grad: ", str(), " does not require grad");
  if (is_leaf() || impl_->retains_grad) return *this;
  impl_->retains_grad = true;
  std::weak_ptr<TensorImpl> weak = impl_;
  impl_->grad_fn->add_output_hook(
      impl_->output_nr, [weak](const Tensor& g) -> std::optional<Tensor> {
        if (auto self = weak.lock()) {
          NoGradGuard ng;
          self->grad = self->grad ? add(Tensor(self->grad), g).impl_ptr() : g.clone().impl_ptr();
        }
        return std::nullopt;
      });
  return *this;
}

void Tensor::register_hook(TensorHook hook) const {
  NABLA_CHECK(requires_grad(), "register_hook: ", str(), " does not require grad");
  if (is_leaf())
    impl_->leaf_hooks.push_back(std::move(hook));
  else
    impl_->grad_fn->add_output_hook(impl_->output_nr, std::move(hook));
}

void Tensor::backward(const Tensor& seed, bool retain_graph) const {
  nabla::backward({*this}, seed.defined() ? std::vector<Tensor>{seed} : std::vector<Tensor>{},
                  retain_graph);
}

// ---------------------------------------------------------------- the engine
namespace {

struct NodeState {
  std::vector<Tensor> grads;  // accumulated gradient of each output
  int pending = 0;            // edges from needed nodes not yet processed
  bool needed = false;
  std::vector<bool> needs_input;
};

void accumulate(Tensor& slot, const Tensor& g) {
  slot = slot.defined() ? add(slot, g) : g;
}

std::vector<Tensor> seeds_for(const std::vector<Tensor>& outputs,
                              const std::vector<Tensor>& grad_outputs, const char* who) {
  NABLA_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(), who, ": ",
              grad_outputs.size(), " seed gradients for ", outputs.size(), " outputs");
  std::vector<Tensor> seeds;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& o = outputs[i];
    NABLA_CHECK(o.defined(), who, ": output ", i, " is undefined");
    NABLA_CHECK(o.requires_grad(), who, ": output ", i, " (", o.str(),
                ") does not require grad: nothing on its graph requires grad");
    if (!grad_outputs.empty() && grad_outputs[i].defined()) {
      const Tensor& s = grad_outputs[i];
      NABLA_CHECK(s.shape() == o.shape(), who, ": seed gradient ", s.str(),
                  " does not match output ", o.str());
      NABLA_CHECK(s.dtype() == o.dtype() && s.device() == o.device(), who, ": seed gradient ",
                  s.str(), " differs in dtype or device from output ", o.str());
      seeds.push_back(s);
    } else {
      NABLA_CHECK(o.numel() == 1, who, ": output ", o.str(),
                  " is not a scalar; pass a seed gradient of the same shape");
      seeds.push_back(ones_like(o));
    }
  }
  return seeds;
}

// Runs the backward pass. With `targets` (grad mode), only nodes on a path to a target are
// run, and the gradients of the targets are returned instead of touching .grad.
std::vector<Tensor> run_backward(const std::vector<Tensor>& outputs,
                                 const std::vector<Tensor>& seeds,
                                 const std::vector<Tensor>* targets, bool retain_graph) {
  NoGradGuard no_grad;
  // Targets: leaves by impl, non-leaves by (node, output_nr).
  std::unordered_map<const TensorImpl*, size_t> leaf_target;
  std::map<std::pair<const Node*, int>, size_t> node_target;
  std::vector<Tensor> result;
  if (targets) {
    result.resize(targets->size());
    for (size_t i = 0; i < targets->size(); ++i) {
      const Tensor& t = (*targets)[i];
      NABLA_CHECK(t.defined() && t.requires_grad(), "grad: input ", i, " (", t.str(),
                  ") does not require grad");
      if (t.is_leaf())
        leaf_target[t.impl()] = i;
      else
        node_target[{t.impl()->grad_fn.get(), t.impl()->output_nr}] = i;
    }
  }

  // Discover the graph (iterative DFS) and decide which nodes are needed.
  std::unordered_map<Node*, NodeState> state;
  std::vector<Node*> order;  // post-order: children before parents
  {
    std::vector<std::pair<Node*, size_t>> stack;
    for (const auto& o : outputs) {
      Node* root = o.impl()->grad_fn.get();
      if (!root || state.count(root)) continue;
      state[root];
      stack.push_back({root, 0});
      while (!stack.empty()) {
        auto& [n, i] = stack.back();
        if (i < n->next_edges().size()) {
          Node* c = n->next_edges()[i++].node.get();
          if (c && !state.count(c)) {
            state[c];
            stack.push_back({c, 0});
          }
        } else {
          order.push_back(n);
          stack.pop_back();
        }
      }
    }
  }
  for (Node* n : order) {  // children first, so needed flags of children are final
    NodeState& s = state[n];
    s.needs_input.assign(n->next_edges().size(), false);
    for (size_t i = 0; i < n->next_edges().size(); ++i) {
      const Edge& e = n->next_edges()[i];
      bool need;
      if (e.leaf)
        need = targets ? leaf_target.count(e.leaf.get()) > 0 : true;
      else if (e.node)
        need = state[e.node.get()].needed ||
               (targets && node_target.count({e.node.get(), e.output_nr}));
      else
        need = false;
      s.needs_input[i] = need;
      s.needed = s.needed || need;
    }
    // In backward() mode a node still runs to feed hooks/retain_grad of its outputs.
    if (!targets) s.needed = true;
  }
  for (Node* n : order) {
    NodeState& s = state[n];
    if (!s.needed) continue;
    s.grads.resize(size_t(n->num_outputs()));
    for (size_t i = 0; i < n->next_edges().size(); ++i)
      if (s.needs_input[i] && n->next_edges()[i].node)
        ++state[n->next_edges()[i].node.get()].pending;
  }
  // A target's own node counts as needed for capturing its gradient even if nothing below is.
  for (auto& [key, idx] : node_target) {
    Node* n = const_cast<Node*>(key.first);
    auto it = state.find(n);
    if (it != state.end() && !it->second.needed) {
      it->second.grads.resize(size_t(n->num_outputs()));
    }
  }

  // Seed the roots.
  for (size_t i = 0; i < outputs.size(); ++i) {
    const TensorImpl* impl = outputs[i].impl();
    if (impl->grad_fn) {
      auto& g = state[impl->grad_fn.get()];
      if (g.grads.empty()) g.grads.resize(size_t(impl->grad_fn->num_outputs()));
      accumulate(g.grads[size_t(impl->output_nr)], seeds[i]);
    } else if (targets) {
      auto it = leaf_target.find(impl);
      if (it != leaf_target.end()) accumulate(result[it->second], seeds[i]);
    } else if (impl->requires_grad) {
      NoGradGuard ng;
      Tensor g = seeds[i];
      auto* mut = const_cast<TensorImpl*>(impl);
      mut->grad = mut->grad ? add(Tensor(mut->grad), g).impl_ptr() : g.clone().impl_ptr();
    }
  }

  // Ready queue: highest sequence number first, i.e. reverse creation order.
  auto cmp = [](Node* a, Node* b) { return a->sequence_nr() < b->sequence_nr(); };
  std::priority_queue<Node*, std::vector<Node*>, decltype(cmp)> ready(cmp);
  std::unordered_set<Node*> queued;
  for (const auto& o : outputs) {
    Node* n = o.impl()->grad_fn.get();
    if (n && state[n].pending == 0 && !queued.count(n)) {
      ready.push(n);
      queued.insert(n);
    }
  }

  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    NodeState& s = state[n];
    // Output hooks (register_hook, retain_grad) see the total gradient of each output.
    std::vector<Tensor> gout(size_t(n->num_outputs()));
    for (int k = 0; k < n->num_outputs(); ++k) {
      Tensor g = s.grads.empty() ? Tensor() : s.grads[size_t(k)];
      if (!g.defined()) continue;
      g = n->run_output_hooks(k, g)[0];
      gout[size_t(k)] = g;
      if (targets) {
        auto it = node_target.find({n, k});
        if (it != node_target.end()) result[it->second] = g;
      }
    }
    if (!s.needed) continue;
    bool any = false;
    for (auto& g : gout) any = any || g.defined();
    if (any) {
      // Outputs that received no gradient get zeros, so rules never see undefined tensors.
      for (int k = 0; k < n->num_outputs(); ++k)
        if (!gout[size_t(k)].defined()) {
          const TensorMeta& m = n->output_meta()[size_t(k)];
          gout[size_t(k)] = zeros(m.shape, m.dtype, m.device);
        }
      std::vector<Tensor> gin = n->apply(gout, s.needs_input);
      for (size_t i = 0; i < gin.size(); ++i) {
        if (!s.needs_input[i] || !gin[i].defined()) continue;
        const Edge& e = n->next_edges()[i];
        if (e.node) {
          auto& cs = state[e.node.get()];
          accumulate(cs.grads[size_t(e.output_nr)], gin[i]);
        } else if (e.leaf) {
          Tensor g = gin[i];
          if (targets) {
            accumulate(result[leaf_target.at(e.leaf.get())], g);
          } else {
            for (const auto& h : e.leaf->leaf_hooks) {
              std::optional<Tensor> r = h(g);
              if (r) g = *r;
            }
            e.leaf->grad = e.leaf->grad ? add(Tensor(e.leaf->grad), g).impl_ptr()
                                        : g.contiguous().clone().impl_ptr();
          }
        }
      }
    }
    if (!retain_graph) n->release();
    s.grads.clear();
    for (size_t i = 0; i < n->next_edges().size(); ++i) {
      const Edge& e = n->next_edges()[i];
      if (!s.needs_input[i] || !e.node) continue;
      Node* c = e.node.get();
      if (--state[c].pending == 0 && !queued.count(c)) {
        ready.push(c);
        queued.insert(c);
      }
    }
  }
  return result;
}

}  // namespace

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph) {
  std::vector<Tensor> seeds = seeds_for(outputs, grad_outputs, "grad");
  std::vector<Tensor> r = run_backward(outputs, seeds, &inputs, retain_graph);
  NoGradGuard ng;
  for (size_t i = 0; i < r.size(); ++i)
    if (!r[i].defined()) r[i] = zeros_like(inputs[i]);
  return r;
}

void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
              bool retain_graph) {
  std::vector<Tensor> seeds = seeds_for(outputs, grad_outputs, "backward");
  run_backward(outputs, seeds, nullptr, retain_graph);
}

void visit_graph(const Tensor& t, const std::function<void(Node&)>& f) {
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack;
  if (t.defined() && t.grad_fn()) stack.push_back(t.grad_fn().get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (!seen.insert(n).second) continue;
    f(*n);
    for (const auto& e : n->next_edges())
      if (e.node) stack.push_back(e.node.get());
  }
}

}  // namespace nabla
