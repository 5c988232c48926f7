// Examples, sources and the in-memory TensorSource (see source.h).
#include <nabla/data/source.h>

#include <nabla/error.h>

namespace nabla::data {

Example::Example(std::initializer_list<std::pair<std::string, Tensor>> fields) {
  for (const auto& [n, t] : fields) set(n, t);
}

Example& Example::set(const std::string& name, Tensor t) {
  for (auto& [n, v] : fields_)
    if (n == name) {
      v = std::move(t);
      return *this;
    }
  fields_.emplace_back(name, std::move(t));
  return *this;
}

bool Example::has(const std::string& name) const {
  for (const auto& [n, _] : fields_)
    if (n == name) return true;
  return false;
}

std::vector<std::string> Example::names() const {
  std::vector<std::string> out;
  for (const auto& [n, _] : fields_) out.push_back(n);
  return out;
}

const Tensor& Example::operator[](const std::string& name) const {
  for (const auto& [n, v] : fields_)
    if (n == name) return v;
  std::string there;
  for (const auto& [n, _] : fields_) there += (there.empty() ? "" : ", ") + n;
  throw Error("no field '" + name + "' (the fields are: " + (there.empty() ? "none" : there) + ")");
}

Tensor& Example::operator[](const std::string& name) {
  return const_cast<Tensor&>(static_cast<const Example&>(*this)[name]);
}

Source::~Source() = default;

std::string Source::describe(int64_t i) const {
  return "item " + std::to_string(i);
}

TensorSource::TensorSource(Example fields, std::vector<std::string> item_names)
    : item_names_(std::move(item_names)) {
  NABLA_CHECK(fields.size() > 0, "TensorSource: needs at least one field");
  std::string shapes;
  for (const auto& [n, t] : fields.fields())
    shapes += (shapes.empty() ? "" : ", ") + n + " " + (t.defined() ? t.str() : "undefined");
  bool first = true;
  for (const auto& [n, t] : fields.fields()) {
    NABLA_CHECK(t.defined() && t.dim() >= 1 && t.device().is_cpu(), "TensorSource: field '", n,
                "' must be a CPU tensor [N, ...] (fields: ", shapes, ")");
    if (first) n_ = t.size(0);
    first = false;
    NABLA_CHECK(t.size(0) == n_, "TensorSource: every field needs the same number of items (",
                shapes, ")");
    tensors_.set(n, t.contiguous());
  }
  NABLA_CHECK(item_names_.empty() || int64_t(item_names_.size()) == n_,
              "TensorSource: ", item_names_.size(), " item names for ", n_, " items");
}

std::shared_ptr<TensorSource> TensorSource::from(const Dataset& ds) {
  NABLA_CHECK(ds.images.defined() && ds.labels.defined(),
              "TensorSource: the data set has no images or no labels");
  return std::make_shared<TensorSource>(Example{{"image", ds.images}, {"label", ds.labels}});
}

Example TensorSource::get(int64_t i) const {
  NABLA_CHECK(i >= 0 && i < n_, "TensorSource::get: index ", i, " out of range [0, ", n_, ")");
  Example e;
  for (const auto& [n, t] : tensors_.fields()) e.set(n, t.slice(i, i + 1).squeeze(0));
  return e;
}

std::string TensorSource::describe(int64_t i) const {
  if (i >= 0 && i < int64_t(item_names_.size())) return item_names_[size_t(i)];
  return Source::describe(i);
}

}  // namespace nabla::data
