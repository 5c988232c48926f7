// Classifier evaluation (see evaluate.h).
#include <nabla/train/evaluate.h>

#include <algorithm>

#include <cstring>

#include <nabla/autograd.h>
#include <nabla/data/loader.h>
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

nlohmann::json SegmentationEvaluation::to_json() const {
  nlohmann::json j = metrics.to_json();
  j["n"] = n;
  j["loss"] = loss;
  return j;
}

SegmentationEvaluation evaluate_segmenter(nn::Module& net,
                                          const std::shared_ptr<const data::Source>& src,
                                          const std::vector<std::string>& class_names,
                                          int64_t batch, Device dev, bool keep_predictions,
                                          bool progress) {
  NABLA_CHECK(src != nullptr && src->size() > 0, "evaluate_segmenter: the data set is empty");
  NABLA_CHECK(batch >= 1, "evaluate_segmenter: batch must be >= 1, got ", batch);
  const int64_t K = int64_t(class_names.size());
  NABLA_CHECK(K >= 2, "evaluate_segmenter: needs at least 2 class names, got ", K);
  const bool was_training = net.is_training();
  net.eval();
  NoGradGuard ng;
  SegmentationEvaluation r;
  r.metrics = metrics::SegmentationMetrics(K, class_names);
  data::DataLoader loader(src, batch, /*shuffle=*/false, 0);
  io::ProgressBar bar("eval", loader.num_batches(), progress);
  double loss_sum = 0;
  int64_t pixels = 0;
  for (int64_t i = 0; i < loader.num_batches(); ++i) {
    const data::Batch b = loader.batch(i);
    const Tensor& x = b["image"];
    const Tensor& y = b["mask"];
    NABLA_CHECK(y.dtype() == DType::Int64 && y.dim() == 3 && x.dim() == 4 &&
                    x.size(2) == y.size(1) && x.size(3) == y.size(2),
                "evaluate_segmenter: images ", x.str(), " and masks ", y.str(),
                " do not match (images [b, C, H, W], masks int64 [b, H, W])");
    Tensor logits = net(x.to(dev));
    Shape want = y.shape();
    want.insert(want.begin() + 1, K);
    NABLA_CHECK(logits.shape() == want, "evaluate_segmenter: the net gives ",
                shape_str(logits.shape()), " logits for masks ", shape_str(y.shape()), " of ", K,
                " classes");
    loss_sum += cross_entropy(logits, y.to(dev), Tensor(), Reduction::Sum).item<double>();
    pixels += y.numel();
    const Tensor p = metrics::predicted_classes(logits, y);
    r.metrics.add(p, y);
    if (keep_predictions) {
      if (i == 0) r.pred = empty({src->size(), y.size(1), y.size(2)}, DType::Int64);
      std::memcpy(r.pred.data<int64_t>() + r.n * y.size(1) * y.size(2), p.data<int64_t>(),
                  size_t(p.numel()) * sizeof(int64_t));
    }
    r.n += x.size(0);
    bar.update(i + 1);
  }
  bar.finish();
  r.loss = loss_sum / double(pixels);
  net.train(was_training);
  return r;
}

}  // namespace nabla::train
