// Classification metrics: accuracy, per-sample accuracy and the confusion matrix, for class
// predictions of any shape (one class per image, or one per pixel for segmentation).
//
//   predictions  int64 class indices shaped like the labels, or scores with one more dim at
//                position 1 ([N, K] logits for labels [N]; [N, K, H, W] for masks [N, H, W]),
//                which are reduced by argmax over that dim
//   accuracy     (1/M) sum_i [pred_i == y_i] over all M labelled elements
//   per sample   acc_n = (1/|S_n|) sum_{i in S_n} [pred_i == y_i], S_n the elements of sample n
//                (the pixel accuracy of image n; 0 or 1 for one label per sample)
//   confusion    C[t][p] = #{i : y_i = t, pred_i = p}; the recall of class t is C[t][t] / sum_p
//   C[t][p]
//
// Inputs may live on any device; the counting happens on the host.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nabla/tensor.h>

namespace nabla::metrics {

// requires: pred int64 shaped like labels, or floating with one more dim at position 1 (scores;
//   argmax over dim 1). labels int64 with dim >= 1.
// ensures: int64 class indices shaped like labels on the CPU. Throws nabla::Error naming both
//   shapes otherwise.
Tensor predicted_classes(const Tensor& pred, const Tensor& labels);

// ensures: the number of elements of labels whose predicted class equals the label.
int64_t count_correct(const Tensor& pred, const Tensor& labels);
// ensures: count_correct / labels.numel(); 0 for no labels.
double accuracy(const Tensor& pred, const Tensor& labels);
// ensures: one accuracy per sample (dim 0 of labels): the fraction of its elements predicted
//   right (0 or 1 when each sample has one label).
std::vector<double> per_sample_accuracy(const Tensor& pred, const Tensor& labels);

// A confusion matrix accumulated over batches.
class ConfusionMatrix {
 public:
  // requires: classes >= 1; names empty or one per class.
  explicit ConfusionMatrix(int64_t classes, std::vector<std::string> names = {});

  // requires: pred and labels as for predicted_classes; every label and prediction in
  //   [0, classes) (nabla::Error naming the value and its position otherwise).
  // ensures: every labelled element counted in C[label][prediction].
  void add(const Tensor& pred, const Tensor& labels);

  int64_t classes() const { return k_; }
  const std::vector<std::string>& names() const { return names_; }
  // ensures: the class's name, or its index as text when there are no names.
  std::string name(int64_t c) const;
  const std::vector<std::vector<int64_t>>& counts() const { return counts_; }
  int64_t total() const;
  int64_t correct() const;  // the trace
  double accuracy() const;  // correct / total, 0 when empty
  // ensures: per class t, C[t][t] / (elements labelled t), 0 when there are none.
  std::vector<double> per_class_accuracy() const;
  std::vector<int64_t> per_class_total() const;

 private:
  int64_t k_;
  std::vector<std::string> names_;
  std::vector<std::vector<int64_t>> counts_;
};

}  // namespace nabla::metrics
