// Classifier evaluation (see evaluate.h).
#include <nabla/train/evaluate.h>

#include <algorithm>

#include <nabla/autograd.h>
#include <nabla/error.h>
#include <nabla/io/progress.h>
#include <nabla/ops.h>

namespace nabla::train {

nlohmann::json Evaluation::to_json() const {
  nlohmann::json per_class = nlohmann::json::array();
  const std::vector<int64_t> totals = confusion.per_class_total();
  const std::vector<double> acc = confusion.per_class_accuracy();
  for (int64_t c = 0; c < confusion.classes(); ++c)
    per_class.push_back(
        {{"class", confusion.name(c)}, {"n", totals[size_t(c)]}, {"accuracy", acc[size_t(c)]}});
  return {{"accuracy", accuracy()},          {"n", n},
          {"correct", confusion.correct()},  {"loss", loss},
          {"per_class", per_class},          {"confusion", confusion.counts()},
          {"class_names", confusion.names()}};
}

Evaluation evaluate_classifier(nn::Module& net, const data::Dataset& ds, int64_t batch, Device dev,
                               bool progress) {
  NABLA_CHECK(ds.size() > 0, "evaluate_classifier: the data set is empty");
  NABLA_CHECK(batch >= 1, "evaluate_classifier: batch must be >= 1, got ", batch);
  NABLA_CHECK(ds.labels.dtype() == DType::Int64 && ds.labels.dim() == 1,
              "evaluate_classifier: labels must be int64 [N], got ", ds.labels.str());
  const bool was_training = net.is_training();
  net.eval();
  NoGradGuard ng;
  Evaluation r;
  const int64_t nb = (ds.size() + batch - 1) / batch;
  io::ProgressBar bar("eval", nb, progress);
  double loss_sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t lo = i * batch, hi = std::min(ds.size(), lo + batch);
    Tensor x = ds.images.slice(lo, hi).to(dev);
    Tensor y = ds.labels.slice(lo, hi).contiguous();
    Tensor logits = net(x);
    NABLA_CHECK(logits.dim() == 2 && logits.size(0) == hi - lo &&
                    (ds.class_names.empty() || size_t(logits.size(1)) == ds.class_names.size()),
                "evaluate_classifier: the net gives ", shape_str(logits.shape()), " logits for ",
                hi - lo, " images of ", ds.class_names.size(), " classes");
    if (i == 0)
      r.confusion =
          metrics::ConfusionMatrix(logits.size(1), int64_t(ds.class_names.size()) == logits.size(1)
                                                       ? ds.class_names
                                                       : std::vector<std::string>{});
    loss_sum += cross_entropy(logits, y.to(dev), Tensor(), Reduction::Sum).item<double>();
    r.confusion.add(logits, y);
    r.n += hi - lo;
    bar.update(i + 1);
  }
  bar.finish();
  r.loss = loss_sum / double(r.n);
  net.train(was_training);
  return r;
}

}  // namespace nabla::train
