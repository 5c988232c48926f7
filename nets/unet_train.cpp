// The U-Net training recipe and the segmentation data (see unet_train.h).
#include <nets/unet_train.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

#include <nabla/autograd.h>
#include <nabla/data/histology.h>
#include <nabla/data/image_folder.h>
#include <nabla/data/loader.h>
#include <nabla/error.h>
#include <nabla/io/safetensors.h>
#include <nabla/io/segmentation.h>
#include <nabla/metrics/classification.h>
#include <nabla/metrics/segmentation.h>
#include <nabla/ops.h>
#include <nabla/optim/factory.h>
#include <nabla/train/evaluate.h>
#include <nabla/train/trainer.h>
#include <nets/unet.h>

namespace nabla::nets {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// The rows idx of every field of a TensorSource, as a new one.
std::shared_ptr<data::TensorSource> subset(const data::TensorSource& src,
                                           const std::vector<int64_t>& idx) {
  data::Example out;
  std::vector<std::string> names;
  for (const auto& [name, t] : src.tensors().fields()) {
    Shape s = t.shape();
    s[0] = int64_t(idx.size());
    Tensor dst = empty(s, t.dtype());
    const size_t row = size_t(t.numel() / std::max<int64_t>(t.size(0), 1)) * dtype_size(t.dtype());
    for (size_t r = 0; r < idx.size(); ++r)
      std::memcpy(static_cast<char*>(dst.raw_data()) + r * row,
                  static_cast<const char*>(t.raw_data()) + size_t(idx[r]) * row, row);
    out.set(name, dst);
  }
  for (int64_t i : idx)
    names.push_back(src.item_names().empty() ? src.describe(i) : src.item_names()[size_t(i)]);
  return std::make_shared<data::TensorSource>(std::move(out), std::move(names));
}

// The first n items (all when n <= 0 or n >= size).
std::shared_ptr<data::TensorSource> first(std::shared_ptr<data::TensorSource> src, int64_t n) {
  if (n <= 0 || n >= src->size()) return src;
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[size_t(i)] = i;
  return subset(*src, idx);
}

std::vector<std::string> class_names_for(int64_t k) {
  if (k == data::kHistologyClasses) return data::histology_class_names();
  std::vector<std::string> names;
  for (int64_t c = 0; c < k; ++c) names.push_back(std::to_string(c));
  return names;
}

// Images, their masks, the predictions, and the predictions over the images, for the first n
// items of src, with the legend of the classes.
void save_prediction_panel(const std::string& path, const std::string& title, nn::Module& net,
                           const data::Source& src, const std::vector<std::string>& names,
                           int64_t n, Device dev) {
  n = std::min(n, src.size());
  const bool was_training = net.is_training();
  net.eval();
  NoGradGuard ng;
  const auto palette = io::segmentation_palette(int64_t(names.size()));
  std::vector<io::PanelRow> rows;
  for (int64_t i = 0; i < n; ++i) {
    const data::Example item = src.get(i);
    const Tensor x = item["image"].unsqueeze(0);
    const Tensor pred = argmax(net(x.to(dev)), 1).to(Device::cpu());
    const Tensor mask = item["mask"].unsqueeze(0);
    const Tensor& truth = item["mask"];
    const Tensor pred1 = pred.squeeze(0);
    const double acc = metrics::accuracy(pred, mask);
    std::ostringstream label;
    const std::string what = src.describe(i);  // "histology val tile 3 (seed 0, 64x64)"
    label << what.substr(0, std::min(what.find(" ("), size_t(22))) << "\npixel acc "
          << int(acc * 1000) / 10.0 << "%";
    rows.push_back(
        {label.str(),
         {item["image"], io::colorize_mask(truth, palette), io::colorize_mask(pred1, palette),
          io::overlay_mask(item["image"], pred1, palette)}});
  }
  const int scale = src.get(0)["image"].size(-1) <= 64 ? 2 : 1;
  io::save_segmentation_panel(path, title, {"image", "true mask", "prediction", "over image"}, rows,
                              names, palette, scale);
  net.train(was_training);
}

}  // namespace

SegmentationDataOptions checkpoint_data_options(const std::string& checkpoint) {
  const auto meta = io::load_safetensors(checkpoint).metadata;
  SegmentationDataOptions o;
  auto get = [&](const char* key, int64_t& v) {
    const auto it = meta.find(key);
    if (it == meta.end()) return;
    try {
      v = std::stoll(it->second);
    } catch (const std::exception&) {
      NABLA_CHECK(false, "checkpoint ", checkpoint, ": metadata '", key, "' is not an integer: '",
                  it->second, "'");
    }
  };
  get("classes", o.classes);
  get("tile", o.tile);
  get("n_val", o.n_val);
  get("n_test", o.n_test);
  int64_t seed = 0;
  get("seed", seed);
  o.seed = uint64_t(seed);
  const auto d = meta.find("data");
  if (d != meta.end() && d->second != "histology") o.data = d->second;
  return o;
}

namespace {

// The training split of o.train_npy, checked against the val split's tiles.
std::shared_ptr<data::TensorSource> load_train_npy(const SegmentationDataOptions& o,
                                                   const data::Source& val) {
  const fs::path dir(o.train_npy);
  const std::string ip = (dir / "images.npy").string(), mp = (dir / "masks.npy").string();
  const Tensor images = load_npy(ip), masks = load_npy(mp);
  const data::Example v = val.get(0);
  NABLA_CHECK(images.dim() == 4 && is_floating(images.dtype()) && masks.dim() == 3 &&
                  masks.dtype() == DType::Int64 && images.size(0) == masks.size(0) &&
                  images.size(0) >= 1 && images.size(1) == v["image"].size(0) &&
                  images.size(2) == masks.size(1) && images.size(3) == masks.size(2) &&
                  images.size(2) == v["image"].size(1) && images.size(3) == v["image"].size(2),
              "segment: ", ip, " ", images.str(), " and ", mp, " ", masks.str(),
              " must be float [N, C, H, W] and int64 [N, H, W] with the val split's image shape ",
              shape_str(v["image"].shape()));
  for (int64_t m : masks.to_vector<int64_t>())
    NABLA_CHECK(m >= 0 && m < o.classes, "segment: ", mp, " holds class ", m, ", outside [0, ",
                o.classes, ")");
  const Tensor im = images.to(DType::Float32);
  const int64_t n = o.train_limit > 0 ? std::min(o.train_limit, im.size(0)) : im.size(0);
  return std::make_shared<data::TensorSource>(data::Example{
      {"image", im.slice(0, n).contiguous()}, {"mask", masks.slice(0, n).contiguous()}});
}

SegmentationData load_segmentation_data_base(const SegmentationDataOptions& o, bool with_train);

}  // namespace

SegmentationData load_segmentation_data(const SegmentationDataOptions& o, bool with_train) {
  SegmentationData d = load_segmentation_data_base(o, with_train && o.train_npy.empty());
  if (with_train && !o.train_npy.empty()) {
    d.train = load_train_npy(o, *d.val);
    d.description += ", training split from " + o.train_npy;
  }
  return d;
}

namespace {

SegmentationData load_segmentation_data_base(const SegmentationDataOptions& o, bool with_train) {
  NABLA_CHECK(o.classes >= 2, "segment: --classes must be >= 2, got ", o.classes);
  SegmentationData d;
  d.class_names = class_names_for(o.classes);
  if (o.data.empty()) {
    NABLA_CHECK(o.classes == data::kHistologyClasses, "segment: the histology generator has ",
                data::kHistologyClasses, " classes, not --classes ", o.classes);
    NABLA_CHECK(o.n_train >= 1 && o.n_val >= 1 && o.n_test >= 1,
                "segment: --n-train, --n-val and --n-test must be >= 1");
    auto make = [&](data::HistologySplit s, int64_t n, int64_t limit) {
      if (limit > 0) n = std::min(n, limit);
      return data::materialize(std::make_shared<data::HistologySource>(s, n, o.tile, o.seed),
                               {"image", "mask"});
    };
    if (with_train) d.train = make(data::HistologySplit::Train, o.n_train, o.train_limit);
    d.val = make(data::HistologySplit::Val, o.n_val, 0);
    d.test = make(data::HistologySplit::Test, o.n_test, o.test_limit);
    d.description = "histology generator (seed " + std::to_string(o.seed) + ", " +
                    std::to_string(o.tile) + "x" + std::to_string(o.tile) + " tiles)";
    return d;
  }
  const fs::path root(o.data);
  NABLA_CHECK(fs::is_directory(root), "segment: --data ", o.data, " is not a folder");
  std::shared_ptr<data::TensorSource> tr, va, te;
  auto load = [&](const fs::path& p) {
    return data::load_image_mask_folder(p.string(), 3, o.classes);
  };
  if (fs::is_directory(root / "train") || fs::is_directory(root / "test")) {
    for (const char* split : {"train", "test"})
      NABLA_CHECK(fs::is_directory(root / split), "segment: ", (root / split).string(),
                  " is missing (a --data folder with train/ or test/ needs both)");
    const bool has_val = fs::is_directory(root / "val");
    if (with_train || !has_val) {
      auto train = load(root / "train");
      if (has_val) {
        tr = train;
      } else {  // every 10th training item validates
        std::vector<int64_t> t, v;
        for (int64_t i = 0; i < train->size(); ++i) (i % 10 == 9 ? v : t).push_back(i);
        NABLA_CHECK(!t.empty() && !v.empty(), "segment: ", (root / "train").string(), " holds ",
                    train->size(), " items: too few to set 1 in 10 aside for val");
        tr = subset(*train, t);
        va = subset(*train, v);
      }
    }
    if (has_val) va = load(root / "val");
    te = load(root / "test");
  } else {
    auto all = load(root);
    std::vector<int64_t> t, v, e;
    for (int64_t i = 0; i < all->size(); ++i) (i % 10 == 9 ? e : i % 10 == 8 ? v : t).push_back(i);
    NABLA_CHECK(!t.empty() && !v.empty() && !e.empty(), "segment: ", o.data, " holds ", all->size(),
                " items: at least 10 are needed for the 8/1/1 split");
    tr = subset(*all, t);
    va = subset(*all, v);
    te = subset(*all, e);
  }
  if (with_train) d.train = first(tr, o.train_limit);
  d.val = va;
  d.test = first(te, o.test_limit);
  d.description = o.data;
  return d;
}

}  // namespace

void to_json(json& j, const SegmentationTraining& c) {
  j = {{"base", c.base},
       {"bilinear", c.bilinear},
       {"loss", c.loss},
       {"class_weights", c.class_weights},
       {"optimizer", c.optimizer},
       {"schedule", c.schedule},
       {"epochs", c.epochs},
       {"batch", c.batch},
       {"lr", c.lr},
       {"weight_decay", c.weight_decay},
       {"seed", c.seed},
       {"data", c.data.data},
       {"classes", c.data.classes},
       {"tile", c.data.tile},
       {"n_train", c.data.n_train},
       {"n_val", c.data.n_val},
       {"n_test", c.data.n_test},
       {"train_limit", c.data.train_limit},
       {"test_limit", c.data.test_limit},
       {"train_npy", c.data.train_npy},
       {"out", c.out},
       {"checkpoint_every", c.checkpoint_every},
       {"device", c.device},
       {"threads", c.threads}};
}

void from_json(const json& j, SegmentationTraining& c) {
  auto get = [&](const char* key, auto& field) {
    train::read_option(j, "segmentation options", key, field);
  };
  get("base", c.base);
  get("bilinear", c.bilinear);
  get("loss", c.loss);
  get("class_weights", c.class_weights);
  get("optimizer", c.optimizer);
  get("schedule", c.schedule);
  get("epochs", c.epochs);
  get("batch", c.batch);
  get("lr", c.lr);
  get("weight_decay", c.weight_decay);
  get("seed", c.seed);
  get("data", c.data.data);
  get("classes", c.data.classes);
  get("tile", c.data.tile);
  get("n_train", c.data.n_train);
  get("n_val", c.data.n_val);
  get("n_test", c.data.n_test);
  get("train_limit", c.data.train_limit);
  get("test_limit", c.data.test_limit);
  get("train_npy", c.data.train_npy);
  get("out", c.out);
  get("checkpoint_every", c.checkpoint_every);
  get("device", c.device);
  get("threads", c.threads);
  c.data.seed = c.seed;
}

Tensor parse_class_weights(const std::string& text, int64_t classes) {
  if (text.empty()) return Tensor();
  std::vector<double> w;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    double v = -1;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    NABLA_CHECK(used == item.size() && v >= 0, "--class-weights ", text, ": '", item,
                "' is not a non-negative number");
    w.push_back(v);
  }
  NABLA_CHECK(int64_t(w.size()) == classes, "--class-weights ", text, ": ", w.size(),
              " weights for ", classes, " classes");
  double total = 0;
  for (double v : w) total += v;
  NABLA_CHECK(total > 0, "--class-weights ", text, ": the weights are all 0");
  return from_vector<float>(std::vector<float>(w.begin(), w.end()), {classes});
}

json train_segmenter(const SegmentationTraining& c, Device dev, bool resume, bool show) {
  NABLA_CHECK(c.epochs >= 1 && c.batch >= 1, "segment train: --epochs and --batch must be >= 1");
  NABLA_CHECK(c.loss == "ce" || c.loss == "dice" || c.loss == "ce+dice", "--loss ", c.loss,
              ": expected ce, dice or ce+dice");
  const double lr = c.effective_lr();
  SegmentationDataOptions dopt = c.data;
  dopt.seed = c.seed;
  const SegmentationData d = load_segmentation_data(dopt);
  const int64_t K = int64_t(d.class_names.size());
  const Tensor weights = parse_class_weights(c.class_weights, K);
  const Tensor w_dev = weights.defined() ? weights.to(dev) : Tensor();
  const Shape img = d.train->get(0)["image"].shape();
  if (show)
    std::fprintf(stderr, "data: %lld train / %lld val / %lld test images %s from %s; device %s\n",
                 (long long)d.train->size(), (long long)d.val->size(), (long long)d.test->size(),
                 shape_str(img).c_str(), d.description.c_str(), dev.str().c_str());

  Generator gen(c.seed);
  UNet net({.in_channels = img[0], .classes = K, .base = c.base, .bilinear = c.bilinear}, &gen);
  net.to(dev);
  data::DataLoader loader(d.train, c.batch, /*shuffle=*/true, c.seed);
  loader.set_pin_memory(dev.is_cuda());
  const int64_t steps_per_epoch = loader.num_batches();
  auto opt = optim::make_optimizer(
      c.optimizer, net.parameters(),
      {.lr = lr, .momentum = c.optimizer == "sgd" ? 0.9 : 0, .weight_decay = c.weight_decay});
  auto schedule = optim::make_schedule(
      c.schedule,
      {.lr = lr, .total_steps = steps_per_epoch * c.epochs, .steps_per_epoch = steps_per_epoch});

  std::vector<std::string> columns = {"epoch",     "lr",          "train_loss",
                                      "train_acc", "val_loss",    "val_pixel_acc",
                                      "val_miou",  "val_miou_all"};
  std::vector<train::Curve> iou_curves;
  const auto palette = io::segmentation_palette(K);
  for (int64_t k = 0; k < K; ++k) {
    columns.push_back("val_iou_" + d.class_names[size_t(k)]);
    iou_curves.push_back({columns.back(), d.class_names[size_t(k)], palette[size_t(k)]});
  }
  columns.push_back("epoch_seconds");
  columns.push_back("train_images_per_s");
  train::Trainer trainer({.name = "segment train",
                          .out = c.out,
                          .epochs = c.epochs,
                          .steps_per_epoch = steps_per_epoch,
                          .checkpoint_every = c.checkpoint_every,
                          .resume = resume,
                          .show = show},
                         columns,
                         {{"loss",
                           "epoch",
                           c.loss,
                           {{"loss:running", "train (running)", io::Rgb{150, 180, 230}},
                            {"train_loss", "train", io::Rgb{30, 90, 200}},
                            {"val_loss", "val (cross-entropy)", io::Rgb{220, 90, 30}}}},
                          {"mean IoU (val)",
                           "epoch",
                           "IoU",
                           {{"val_miou", "nuclei (classes 1..K-1)", io::Rgb{220, 90, 30}},
                            {"val_miou_all", "all classes", io::Rgb{30, 90, 200}},
                            {"val_pixel_acc", "pixel accuracy", io::kGray}}},
                          {"IoU per class (val)", "epoch", "IoU", iou_curves}});
  trainer.add_module("model", net);
  trainer.add_optimizer("optimizer", *opt, schedule.get());
  trainer.set_options(c);
  trainer.set_metadata([&]() -> std::map<std::string, std::map<std::string, std::string>> {
    const json records = trainer.log().records();
    std::map<std::string, std::string> meta = {
        {"model", "UNet"},
        {"base", std::to_string(c.base)},
        {"bilinear", c.bilinear ? "true" : "false"},
        {"classes", std::to_string(K)},
        {"epoch", std::to_string(records.size())},
        {"seed", std::to_string(c.seed)},
        {"data", c.data.data.empty() ? "histology" : c.data.data},
        {"tile", std::to_string(c.data.tile)},
        {"n_val", std::to_string(c.data.n_val)},
        {"n_test", std::to_string(c.data.n_test)}};
    if (!records.empty() && records.back()["val_miou"].is_number())
      meta["val_miou"] = std::to_string(records.back()["val_miou"].get<double>());
    return {{"model", meta}};
  });

  const std::string panel = (fs::path(c.out) / "val_predictions.png").string();
  json summary = trainer.fit(
      [&](int64_t epoch) {
        net.train();
        loader.set_epoch(epoch - 1);
      },
      [&](const train::StepInfo& s) {
        data::Batch b = loader.batch(s.batch);
        Tensor x = b["image"].to(dev), y = b["mask"].to(dev);
        Tensor logits = net(x);
        Tensor loss;
        if (c.loss != "dice") loss = cross_entropy(logits, y, w_dev);
        if (c.loss != "ce") {
          Tensor dl = dice_loss(logits, y);
          loss = loss.defined() ? add(loss, dl) : dl;
        }
        opt->zero_grad();
        loss.backward();
        opt->step();
        return train::StepResult{
            {{"loss", loss.item<double>()}, {"acc", metrics::accuracy(logits, b["mask"])}},
            y.size(0)};
      },
      [&](const train::EpochStats& st) {
        const train::SegmentationEvaluation v =
            train::evaluate_segmenter(net, d.val, d.class_names, 64, dev);
        save_prediction_panel(panel,
                              "validation predictions after epoch " + std::to_string(st.epoch) +
                                  " (val mIoU over nuclei " +
                                  std::to_string(v.metrics.miou()).substr(0, 5) + ")",
                              net, *d.val, d.class_names, 8, dev);
        train::Record r{{"epoch", double(st.epoch)},
                        {"lr", opt->lr()},
                        {"train_loss", st.mean.at("loss")},
                        {"train_acc", st.mean.at("acc")},
                        {"val_loss", v.loss},
                        {"val_pixel_acc", v.metrics.pixel_accuracy()},
                        {"val_miou", v.metrics.miou()},
                        {"val_miou_all", v.metrics.miou_all()},
                        {"epoch_seconds", st.seconds},
                        {"train_images_per_s", double(st.samples) / st.seconds}};
        const std::vector<double> iou = v.metrics.iou();
        for (int64_t k = 0; k < K; ++k) r["val_iou_" + d.class_names[size_t(k)]] = iou[size_t(k)];
        return r;
      });
  if (!fs::exists(panel))  // a resumed run that had already finished
    save_prediction_panel(panel, "validation predictions", net, *d.val, d.class_names, 8, dev);

  const train::SegmentationEvaluation t =
      train::evaluate_segmenter(net, d.test, d.class_names, 64, dev);
  const json tj = t.to_json();
  summary.update({{"model", "UNet"},
                  {"base", c.base},
                  {"bilinear", c.bilinear},
                  {"parameters", net.num_parameters()},
                  {"device", dev.str()},
                  {"loss", c.loss},
                  {"optimizer", c.optimizer},
                  {"lr", lr},
                  {"schedule", c.schedule},
                  {"batch", c.batch},
                  {"seed", c.seed},
                  {"data", d.description},
                  {"n_train", d.train->size()},
                  {"n_val", d.val->size()},
                  {"n_test", d.test->size()},
                  {"class_names", d.class_names},
                  {"test_loss", t.loss},
                  {"test_pixel_accuracy", t.metrics.pixel_accuracy()},
                  {"test_miou", tj["miou"]},
                  {"test_miou_all", tj["miou_all"]},
                  {"test_mean_dice", tj["mean_dice"]},
                  {"test_per_class_iou", tj["per_class_iou"]},
                  {"test_per_class_dice", tj["per_class_dice"]},
                  {"miou_over", tj["miou_over"]},
                  {"images_per_second", summary["samples_per_second"]},
                  {"checkpoint", trainer.checkpoint().module_path("model")},
                  {"metrics", trainer.log().csv_path()},
                  {"curves", trainer.log().curves_path()},
                  {"panel", panel},
                  {"summary", trainer.log().summary_path()}});
  trainer.log().write_summary(summary);
  return summary;
}

}  // namespace nabla::nets
