// The robust-segmentation study (see unet_study.h). The math of the two methods is in
// engine/attack/segmentation.h; this file chains the stages and caches each one under o.out.
#include <nets/unet_study.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include <nabla/attack/segmentation.h>
#include <nabla/error.h>
#include <nabla/io/files.h>
#include <nabla/io/plot.h>
#include <nabla/io/progress.h>
#include <nabla/io/segmentation.h>
#include <nabla/ops.h>
#include <nabla/train/evaluate.h>
#include <nets/unet.h>
#include <nets/unet_train.h>

namespace nabla::nets {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// The paper's Tables 1 and 2 (561 test images; loss and pixel accuracy, no mIoU).
const double kPaperClean[4][2] = {
    {0.4959, 0.8748}, {0.5029, 0.8655}, {0.8410, 0.8769}, {0.7059, 0.8738}};
const double kPaperAttacked[4][2] = {
    {2.3628, 0.8087}, {0.5068, 0.8662}, {1.4774, 0.8386}, {0.7205, 0.8726}};
const char* const kModelNames[4] = {"model1_clean", "model2_method1", "model3_method2",
                                    "model4_union"};
const char* const kModelLabels[4] = {"1 clean", "2 method 1", "3 method 2", "4 union"};

json read_json(const fs::path& p) {
  std::ifstream f(p);
  NABLA_CHECK(f.good(), "segment study: cannot read ", p.string());
  try {
    return json::parse(f);
  } catch (const json::exception& e) {
    NABLA_CHECK(false, "segment study: ", p.string(), " is not valid JSON: ", e.what());
  }
  return {};
}

void write_json(const fs::path& p, const json& j) {
  const fs::path tmp = io::temp_path_for(p.string());
  {
    std::ofstream f(tmp);
    NABLA_CHECK(f.good(), "segment study: cannot write ", tmp.string());
    f << j.dump(1) << "\n";
  }
  std::error_code ec;
  fs::rename(tmp, p, ec);
  NABLA_CHECK(!ec, "segment study: cannot rename ", tmp.string(), " to ", p.string(), ": ",
              ec.message());
}

// int64 tensors stacked along dim 0 (concat takes floating tensors only).
Tensor cat_int64(const std::vector<Tensor>& ts) {
  Shape s = ts.at(0).shape();
  s[0] = 0;
  for (const Tensor& t : ts) s[0] += t.size(0);
  Tensor out = empty(s, DType::Int64);
  int64_t* dst = out.data<int64_t>();
  for (const Tensor& t : ts) {
    const Tensor c = t.contiguous();
    dst = std::copy_n(c.data<int64_t>(), c.numel(), dst);
  }
  return out;
}

bool has_npy(const fs::path& dir) {
  return fs::exists(dir / "images.npy") && fs::exists(dir / "masks.npy");
}

void save_set(const fs::path& dir, const Tensor& images, const Tensor& masks) {
  nabla::io::create_dirs(dir, "the study folder");
  // masks first: images.npy is what marks the set as complete (has_npy needs both).
  save_npy((dir / "masks.npy").string(), masks);
  save_npy((dir / "images.npy").string(), images.to(DType::Float32));
}

struct Study {
  const StudyOptions& o;
  Device dev;
  bool show;
  fs::path root;

  SegmentationDataOptions data_options() const {
    SegmentationDataOptions d;
    d.tile = o.tile;
    d.n_train = o.n_train;
    d.n_val = o.n_val;
    d.n_test = o.n_test;
    d.seed = o.seed;
    return d;
  }

  // Trains (or resumes, or reads) one model; returns its summary.
  json train(int m, const std::string& train_npy, int64_t epochs) const {
    const fs::path dir = root / kModelNames[m];
    if (fs::exists(dir / "summary.json") && fs::exists(dir / "model.safetensors"))
      return read_json(dir / "summary.json");
    SegmentationTraining t;
    t.base = o.base;
    t.epochs = epochs;
    t.batch = o.batch;
    t.lr = o.lr;
    t.seed = o.seed;
    t.data = data_options();
    t.data.train_npy = train_npy;
    t.out = dir.string();
    t.device = o.device;
    t.threads = o.threads;
    t.checkpoint_every = 0;
    if (show)
      std::fprintf(stderr, "segment study: training %s (%lld epochs)\n", kModelNames[m],
                   (long long)epochs);
    const bool resume = fs::exists(dir / "run_state.safetensors");
    json s = train_segmenter(t, dev, resume, show);
    write_json(dir / "summary.json", s);
    return s;
  }
};

json metrics_json(const train::SegmentationEvaluation& e) {
  return {{"loss", e.loss},
          {"pixel_accuracy", e.metrics.pixel_accuracy()},
          {"miou", e.metrics.miou()},
          {"miou_all", e.metrics.miou_all()},
          {"per_class_iou", e.to_json()["per_class_iou"]}};
}

// The choice histogram: per class the share of tiles that chose -1, 0 and +1, and the counts of
// the most frequent choice vectors.
void save_choice_histogram(const std::string& path, const json& choices,
                           const std::vector<std::string>& names) {
  const size_t K = names.size();
  std::vector<double> share[3];
  for (auto& v : share) v.assign(K, 0.0);
  std::map<int64_t, int64_t> codes;
  for (const auto& s : choices) {
    std::vector<int> c = s.get<std::vector<int>>();
    for (size_t k = 0; k < K; ++k) share[c[k] + 1][k] += 1.0 / double(choices.size());
    ++codes[attack::choice_code(c)];
  }
  std::vector<double> xs(K);
  for (size_t k = 0; k < K; ++k) xs[k] = double(k);
  io::PlotPanel per_class{
      "sign chosen per class", "class c (0 = background)", "share of tiles", {}};
  const char* label[3] = {"-1 (toward c)", "0 (left out)", "+1 (away from c)"};
  const io::Rgb color[3] = {io::Rgb{30, 90, 200}, io::kGray, io::Rgb{220, 90, 30}};
  for (int v = 0; v < 3; ++v) per_class.series.push_back({label[v], xs, share[v], color[v]});
  std::vector<int64_t> counts;
  for (const auto& [code, n] : codes) counts.push_back(n);
  std::sort(counts.rbegin(), counts.rend());
  std::vector<double> rx, ry;
  for (size_t i = 0; i < counts.size() && i < 40; ++i) {
    rx.push_back(double(i + 1));
    ry.push_back(double(counts[i]));
  }
  io::PlotPanel ranked{"s* by frequency (" + std::to_string(codes.size()) + " distinct)",
                       "rank",
                       "tiles",
                       {{"tiles choosing it", rx, ry, io::kBlue}}};
  io::save_plot(path, {per_class, ranked}, 560, 360);
}

}  // namespace

StudyOptions study_preset(const std::string& scale) {
  StudyOptions o;
  o.scale = scale;
  if (scale == "small") return o;
  NABLA_CHECK(scale == "paper", "segment study: --scale must be small or paper, got '", scale, "'");
  o.tile = 256;
  o.base = 64;
  o.n_train = 2656;
  o.n_val = 256;
  o.n_test = 561;
  o.epochs = 30;
  o.batch = 8;
  o.lr = 0.002;
  o.layered_steps = 100;
  o.greedy_tiles = 256;
  o.attack_batch = 8;
  return o;
}

json run_segmentation_study(const StudyOptions& o, Device dev, bool show) {
  NABLA_CHECK(o.n_train >= 1 && o.n_test >= 1 && o.epochs >= 1 && o.layered_steps >= 1 &&
                  o.eval_steps >= 1 && o.eps >= 0,
              "segment study: sizes, epochs and steps must be >= 1 and eps >= 0");
  Study st{o, dev, show, fs::path(o.out)};
  nabla::io::create_dirs(st.root, "the study folder");
  const SegmentationData d = load_segmentation_data(st.data_options());
  const auto* tr = dynamic_cast<const data::TensorSource*>(d.train.get());
  const auto* te = dynamic_cast<const data::TensorSource*>(d.test.get());
  NABLA_CHECK(tr && te, "segment study: the splits are not in memory");
  const Tensor xtr = tr->tensors()["image"], ytr = tr->tensors()["mask"];
  const Tensor xte = te->tensors()["image"], yte = te->tensors()["mask"];
  const int64_t K = int64_t(d.class_names.size()), H = xte.size(2), W = xte.size(3);
  json out;
  out["options"] = {{"scale", o.scale},
                    {"tile", o.tile},
                    {"base", o.base},
                    {"n_train", o.n_train},
                    {"n_val", o.n_val},
                    {"n_test", o.n_test},
                    {"epochs", o.epochs},
                    {"batch", o.batch},
                    {"lr", o.lr},
                    {"eps", o.eps},
                    {"layered_steps", o.layered_steps},
                    {"eval_steps", o.eval_steps},
                    {"seed", o.seed},
                    {"device", dev.str()}};
  out["class_names"] = d.class_names;
  // The cached stages are only valid for the options that made them: a folder started with other
  // options is refused (the device may change, the numbers do not depend on it).
  {
    json key = out["options"];
    key.erase("device");
    const fs::path f = st.root / "options.json";
    if (fs::exists(f)) {
      const json saved = read_json(f);
      for (const auto& [name, value] : key.items())
        NABLA_CHECK(saved.contains(name) && saved[name] == value,
                    "segment study: ", st.root.string(), " holds a study run with ", name, " = ",
                    saved.contains(name) ? saved[name].dump() : std::string("(none)"), ", not ",
                    value.dump(), "; use another --out or the same options");
    } else {
      write_json(f, key);
    }
  }
  json summaries = json::array();

  // 1. model 1
  summaries.push_back(st.train(0, "", o.epochs));
  std::shared_ptr<UNet> m1 = load_unet((st.root / kModelNames[0] / "model.safetensors").string());
  m1->to(dev);
  m1->eval();

  // 2. method 1: layered PGD
  const fs::path d1 = st.root / "data" / "method1", d2 = st.root / "data" / "method2",
                 du = st.root / "data" / "union";
  if (!has_npy(d1)) {
    attack::Options a;
    a.eps = o.eps;
    a.steps = int(o.layered_steps);
    a.alpha = 2.5 * o.eps / double(o.layered_steps);
    io::ProgressBar bar("method 1 (layered PGD)", xtr.size(0), show);
    const attack::SetResult r = attack::layered_pgd(*m1, xtr, ytr, K, a, o.attack_batch, dev,
                                                    [&](int64_t k, int64_t) { bar.update(k); });
    bar.finish();
    nabla::io::create_dirs(d1, "the study folder");
    write_json(d1 / "info.json", {{"seconds", r.seconds},
                                  {"mean_linf", r.mean_linf},
                                  {"max_linf", r.max_linf},
                                  {"mean_l2", r.mean_l2},
                                  {"alpha", a.alpha},
                                  {"steps_per_class", a.steps}});
    save_set(d1, r.x_adv, ytr);
  }
  out["method1"] = read_json(d1 / "info.json");

  // 3. method 2: sign choice, exhaustive on every tile, greedy on the first greedy_tiles
  if (!has_npy(d2)) {
    attack::SignChoiceOptions so;
    so.eps = o.eps;
    so.max_batch = o.max_batch;
    io::ProgressBar bar("method 2 (3^K sign choices)", xtr.size(0), show);
    const attack::SignChoiceResult ex =
        attack::sign_choice(*m1, xtr, ytr, K, so, dev, [&](int64_t k, int64_t) { bar.update(k); });
    bar.finish();
    const int64_t G = std::min(o.greedy_tiles, xtr.size(0));
    so.greedy = true;
    const attack::SignChoiceResult gr =
        attack::sign_choice(*m1, xtr.slice(0, G), ytr.slice(0, G), K, so, dev);
    double ex_loss = 0, gr_loss = 0, clean_loss = 0;
    int64_t same = 0;
    for (int64_t i = 0; i < G; ++i) {
      ex_loss += ex.loss_best[size_t(i)] / double(G);
      gr_loss += gr.loss_best[size_t(i)] / double(G);
      clean_loss += ex.loss_clean[size_t(i)] / double(G);
      same += gr.choice[size_t(i)] == ex.choice[size_t(i)];
    }
    double mean_clean = 0, mean_best = 0;
    for (size_t i = 0; i < ex.loss_best.size(); ++i) {
      mean_clean += ex.loss_clean[i] / double(ex.loss_best.size());
      mean_best += ex.loss_best[i] / double(ex.loss_best.size());
    }
    nabla::io::create_dirs(d2, "the study folder");
    write_json(d2 / "info.json",
               {{"seconds", ex.seconds},
                {"evaluations", ex.evaluations},
                {"candidates_per_tile", ex.evaluations / xtr.size(0)},
                {"mean_loss_clean", mean_clean},
                {"mean_loss_best", mean_best},
                {"choices", ex.choice},
                {"greedy",
                 {{"tiles", G},
                  {"mean_loss_clean", clean_loss},
                  {"mean_loss_exhaustive", ex_loss},
                  {"mean_loss_greedy", gr_loss},
                  {"same_choice", double(same) / double(G)},
                  {"evaluations_per_tile_exhaustive", double(ex.evaluations) / double(xtr.size(0))},
                  {"evaluations_per_tile_greedy", double(gr.evaluations) / double(G)},
                  {"seconds_per_tile_exhaustive", ex.seconds / double(xtr.size(0))},
                  {"seconds_per_tile_greedy", gr.seconds / double(G)}}}});
    save_set(d2, ex.x_imp, ytr);
  }
  {
    json info = read_json(d2 / "info.json");
    save_choice_histogram((st.root / "choices.png").string(), info["choices"], d.class_names);
    out["method2"] = info;
    out["method2"].erase("choices");
    std::map<std::string, int64_t> hist;
    for (const auto& c : info["choices"]) {
      std::string key;
      for (int v : c.get<std::vector<int>>()) key += v < 0 ? "-" : (v > 0 ? "+" : "0");
      ++hist[key];
    }
    out["method2"]["choice_histogram"] = hist;  // s*_0..s*_{K-1} as "-", "0", "+"
  }

  // 4. models 2, 3, 4
  if (!has_npy(du)) {
    const Tensor i1 = load_npy((d1 / "images.npy").string()),
                 i2 = load_npy((d2 / "images.npy").string());
    save_set(du, concat({xtr.to(DType::Float32), i1, i2}, 0), cat_int64({ytr, ytr, ytr}));
  }
  summaries.push_back(st.train(1, d1.string(), o.epochs));
  summaries.push_back(st.train(2, d2.string(), o.epochs));
  summaries.push_back(st.train(3, du.string(), std::max<int64_t>(1, o.epochs / 3)));

  // 5. Tables 1 and 2
  const fs::path de = st.root / "evaluation";
  nabla::io::create_dirs(de, "the study folder");
  attack::Options a;
  a.eps = o.eps;
  a.steps = int(o.eval_steps);
  a.alpha = 2.5 * o.eps / double(o.eval_steps);
  a.early_stop = false;
  a.objective =
      attack::Objective::segmentation_targeted(attack::full_mask(1, H, W, 0).squeeze(0), 1.0);
  const int64_t R = std::min(o.figure_rows, xte.size(0));
  json table1 = json::array(), table2 = json::array();
  std::vector<Tensor> pred_clean(4), pred_adv(4);
  for (int m = 0; m < 4; ++m) {
    const fs::path f = de / (std::string(kModelNames[m]) + ".json");
    if (!fs::exists(f) || !fs::exists(de / (std::string(kModelNames[m]) + "_pred.npy"))) {
      std::shared_ptr<UNet> net =
          load_unet((st.root / kModelNames[m] / "model.safetensors").string());
      net->to(dev);
      net->eval();
      const train::SegmentationEvaluation c =
          train::evaluate_segmenter(*net, d.test, d.class_names, 64, dev, true);
      io::ProgressBar bar(
          std::string("PGD-") + std::to_string(o.eval_steps) + " vs " + kModelNames[m], xte.size(0),
          show);
      const attack::SetResult r = attack::attack_set("pgd", *net, xte, yte, a, o.attack_batch, dev,
                                                     [&](int64_t k, int64_t) { bar.update(k); });
      bar.finish();
      auto adv =
          std::make_shared<data::TensorSource>(data::Example{{"image", r.x_adv}, {"mask", yte}});
      const train::SegmentationEvaluation e =
          train::evaluate_segmenter(*net, adv, d.class_names, 64, dev, true);
      int64_t bg = 0;
      for (int64_t v : e.pred.to_vector<int64_t>()) bg += v == 0;
      json j = {{"clean", metrics_json(c)},
                {"attacked", metrics_json(e)},
                {"attacked_background_fraction", double(bg) / double(e.pred.numel())},
                {"attack_seconds", r.seconds},
                {"max_linf", r.max_linf}};
      save_npy((de / (std::string(kModelNames[m]) + "_pred_clean.npy")).string(),
               c.pred.slice(0, R).contiguous());
      save_npy((de / (std::string(kModelNames[m]) + "_adv.npy")).string(),
               r.x_adv.slice(0, R).contiguous());
      save_npy((de / (std::string(kModelNames[m]) + "_pred.npy")).string(),
               e.pred.slice(0, R).contiguous());
      write_json(f, j);
    }
    const json j = read_json(f);
    pred_clean[size_t(m)] =
        load_npy((de / (std::string(kModelNames[m]) + "_pred_clean.npy")).string());
    pred_adv[size_t(m)] = load_npy((de / (std::string(kModelNames[m]) + "_pred.npy")).string());
    json row1 = j["clean"], row2 = j["attacked"];
    row1["model"] = row2["model"] = m + 1;
    row1["paper_loss"] = kPaperClean[m][0];
    row1["paper_accuracy"] = kPaperClean[m][1];
    row2["paper_loss"] = kPaperAttacked[m][0];
    row2["paper_accuracy"] = kPaperAttacked[m][1];
    row2["background_fraction"] = j["attacked_background_fraction"];
    row2["attack_seconds"] = j["attack_seconds"];
    row2["max_linf"] = j["max_linf"];
    table1.push_back(row1);
    table2.push_back(row2);
  }
  out["table1_clean"] = table1;
  out["table2_pgd_background"] = table2;
  out["table2_attack"] = {{"method", "pgd (targeted, full-area background)"},
                          {"eps", a.eps},
                          {"alpha", a.alpha},
                          {"steps", a.steps}};

  // 6. figures
  {
    const auto palette = io::segmentation_palette(K);
    std::vector<io::PanelRow> rows;
    for (int64_t i = 0; i < R; ++i) {
      io::PanelRow row;
      row.label = "test #" + std::to_string(i);
      row.cells.push_back(xte.slice(i, i + 1).squeeze(0).to(DType::Float32));
      row.cells.push_back(io::colorize_mask(yte.slice(i, i + 1).squeeze(0), palette));
      row.cells.push_back(io::colorize_mask(pred_clean[0].slice(i, i + 1).squeeze(0), palette));
      for (int m = 0; m < 4; ++m)
        row.cells.push_back(
            io::colorize_mask(pred_adv[size_t(m)].slice(i, i + 1).squeeze(0), palette));
      rows.push_back(row);
    }
    io::save_segmentation_panel((st.root / "predictions_under_attack.png").string(),
                                "predictions under PGD-" + std::to_string(o.eval_steps) +
                                    " toward the background, eps " +
                                    std::to_string(o.eps).substr(0, 5),
                                {"image", "true mask", "m1 clean", "m1 attacked", "m2 attacked",
                                 "m3 attacked", "m4 attacked"},
                                rows, d.class_names, palette, o.tile <= 32 ? 3 : 2);
  }
  {
    io::PlotPanel p{"validation loss (cross-entropy) of the four models",
                    "training images seen / clean training set size",
                    "val loss",
                    {}};
    for (int m = 0; m < 4; ++m) {
      const json& s = summaries[size_t(m)];
      const double per_epoch = m == 3 ? 3.0 : 1.0;  // the union holds three copies of the set
      io::Series se{kModelLabels[m], {}, {}, io::palette_color(size_t(m))};
      for (const auto& r : s["per_epoch"]) {
        se.x.push_back(r["epoch"].get<double>() * per_epoch);
        se.y.push_back(r["val_loss"].is_number() ? r["val_loss"].get<double>() : NAN);
      }
      p.series.push_back(se);
    }
    io::save_plot((st.root / "val_loss.png").string(), {p}, 640, 400);
  }
  json curves = json::array();
  for (int m = 0; m < 4; ++m) {
    json c = json::array();
    for (const auto& r : summaries[size_t(m)]["per_epoch"]) c.push_back(r["val_loss"]);
    curves.push_back({{"model", m + 1},
                      {"epochs", summaries[size_t(m)]["per_epoch"].size()},
                      {"train_seconds", summaries[size_t(m)]["train_seconds"]},
                      {"val_loss", c}});
  }
  out["training"] = curves;
  out["figures"] = {(st.root / "predictions_under_attack.png").string(),
                    (st.root / "val_loss.png").string(), (st.root / "choices.png").string()};
  write_json(st.root / "study.json", out);
  out["json"] = (st.root / "study.json").string();
  return out;
}

}  // namespace nabla::nets
