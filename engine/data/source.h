// Data sources: samples with any number of named fields of any shape, for the DataLoader.
//
//   an item      named tensors, e.g. {"image": [C, H, W], "label": int64 []} for classification,
//                {"image": [3, H, W], "mask": int64 [H, W]} for segmentation, {"A": [C, H, W],
//                "B": [C, H, W]} for image pairs, {"image": ..., "target": float [k]}
//   a batch      the same fields stacked along a new dim 0: [b, ...field shape]
//
// A Source is read by index (torch.utils.data.Dataset's map style): get(i) must depend on i
// alone, so that the loader may fetch items in any order and on any thread. TensorSource keeps
// every field in memory as one [N, ...] tensor (what the file loaders return); other sources
// (generators, lazy folders) implement get().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nabla/data/mnist.h>
#include <nabla/tensor.h>

namespace nabla::data {

// Named tensors in a fixed order: one item's fields, or a batch's.
class Example {
 public:
  Example() = default;
  Example(std::initializer_list<std::pair<std::string, Tensor>> fields);

  // ensures: the field is replaced, or appended after the others when new.
  Example& set(const std::string& name, Tensor t);
  bool has(const std::string& name) const;
  // requires: a field of that name (nabla::Error naming it and the fields there are otherwise).
  const Tensor& operator[](const std::string& name) const;
  Tensor& operator[](const std::string& name);

  const std::vector<std::pair<std::string, Tensor>>& fields() const { return fields_; }
  std::vector<std::string> names() const;
  size_t size() const { return fields_.size(); }

 private:
  std::vector<std::pair<std::string, Tensor>> fields_;
};

class Source {
 public:
  virtual ~Source();
  // ensures: the number of items (>= 0).
  virtual int64_t size() const = 0;
  // ensures: the field names every item has, in order.
  virtual std::vector<std::string> fields() const = 0;
  // requires: 0 <= i < size(). ensures: item i, its tensors on the CPU; the same for the same i,
  //   whatever was asked before, from any thread.
  virtual Example get(int64_t i) const = 0;
  // ensures: how errors name item i ("item 12", or its file name).
  virtual std::string describe(int64_t i) const;
};

// Every field in memory as one tensor [N, ...] on the CPU.
class TensorSource : public Source {
 public:
  // requires: at least one field; every field defined, on the CPU, with the same N = size(0);
  //   item_names empty or N names (file names, for errors and outputs).
  // ensures: a source over contiguous copies of the fields (no copy when already contiguous).
  //   Throws nabla::Error naming the fields and their shapes otherwise.
  explicit TensorSource(Example fields, std::vector<std::string> item_names = {});
  // ensures: {"image": ds.images, "label": ds.labels}.
  static std::shared_ptr<TensorSource> from(const Dataset& ds);

  int64_t size() const override { return n_; }
  std::vector<std::string> fields() const override { return tensors_.names(); }
  // ensures: row i of every field (views into the stored tensors).
  Example get(int64_t i) const override;
  std::string describe(int64_t i) const override;

  // The stacked fields [N, ...].
  const Example& tensors() const { return tensors_; }
  const std::vector<std::string>& item_names() const { return item_names_; }

 private:
  Example tensors_;
  std::vector<std::string> item_names_;
  int64_t n_ = 0;
};

}  // namespace nabla::data
