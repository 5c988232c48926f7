// nabla segment train: a U-Net (milesial/Pytorch-UNet's module and parameter names) on the
// procedural histology set or an image+mask folder. The recipe is nets/unet_train.h; this file
// maps the flags onto it and prints the result.
#include <cmath>
#include <cstdio>

#include <nabla/data/histology.h>
#include <nabla/optim/factory.h>
#include <nets/unet_train.h>

#include "common.h"

namespace nabla::cli {

namespace {

struct SegmentTrainFlags {
  Common c;
  nets::SegmentationTraining t;
};

void print_text(const nlohmann::json& s) {
  std::printf(
      "test mIoU %.4f over the nucleus classes (background excluded), %.4f over all %zu "
      "classes; pixel accuracy %.4f, loss %.4f (%lld images)\n",
      s["test_miou"].is_number() ? s["test_miou"].get<double>() : NAN,
      s["test_miou_all"].is_number() ? s["test_miou_all"].get<double>() : NAN,
      s["class_names"].size(), s["test_pixel_accuracy"].get<double>(), s["test_loss"].get<double>(),
      (long long)s["n_test"].get<int64_t>());
  std::printf("IoU per class:");
  for (size_t k = 0; k < s["class_names"].size(); ++k)
    std::printf(
        " %s %.3f", s["class_names"][k].get<std::string>().c_str(),
        s["test_per_class_iou"][k].is_number() ? s["test_per_class_iou"][k].get<double>() : NAN);
  std::printf("\ntrained %lld epochs in %.1f s (%.0f img/s on %s)\n",
              (long long)s["epochs"].get<int64_t>(), s["train_seconds"].get<double>(),
              s["images_per_second"].get<double>(), s["device"].get<std::string>().c_str());
  std::printf("wrote %s, %s, %s, %s\n", s["checkpoint"].get<std::string>().c_str(),
              s["metrics"].get<std::string>().c_str(), s["curves"].get<std::string>().c_str(),
              s["panel"].get<std::string>().c_str());
}

}  // namespace

void register_segment(CLI::App& app) {
  CLI::App* segment = app.add_subcommand("segment",
                                         "Semantic segmentation with U-Net: train a model, "
                                         "evaluate, attack and explain a checkpoint.");
  segment->require_subcommand(1);

  auto f = std::make_shared<SegmentTrainFlags>();
  f->c.epochs = f->t.epochs;
  f->c.batch = f->t.batch;
  f->c.out = f->t.out;
  CLI::App* train = segment->add_subcommand(
      "train",
      "Train a U-Net (milesial/Pytorch-UNet's UNet, widths base*(1,2,4,8,16)) on the procedural\n"
      "histology tiles (six classes: background and five nucleus types) or on --data DIR.\n"
      "Writes DIR/metrics.csv (per epoch: val loss, pixel accuracy, mIoU and the IoU of every\n"
      "class), DIR/curves.png, DIR/val_predictions.png, DIR/summary.json and\n"
      "DIR/model.safetensors (PyTorch's names), and checkpoints the run for --resume DIR.");
  add_common_flags(
      train, f->c, kTrainingFlags,
      {{"--lr", "peak learning rate (default: 0.002 for adam/adamw, 0.05 for sgd)"},
       {"--data",
        "folder of PNG images with class-index masks: DIR/images + DIR/masks (split 8/1/1 by "
        "file order), or DIR/train, DIR/test (and DIR/val) each holding images/ and masks/; "
        "default: the procedural histology generator"},
       {"--seed", "seed of the weights, the shuffling and the generated tiles"},
       {"--train-limit", "use only the first N training images (0: all)"},
       {"--test-limit", "use only the first N test images (0: all)"}});
  nets::SegmentationTraining& t = f->t;
  train->add_option("--base", t.base, "U-Net width of the first level (the original's is 64)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(2), int64_t(256)));
  train->add_flag("--bilinear", t.bilinear,
                  "bilinear upsampling (align_corners) in the decoder, with halved widths, instead "
                  "of transposed convolutions");
  train->add_option("--loss", t.loss, "ce (per-pixel cross-entropy), dice (soft Dice) or ce+dice")
      ->capture_default_str()
      ->check(CLI::IsMember({"ce", "dice", "ce+dice"}));
  train->add_option("--class-weights", t.class_weights,
                    "cross-entropy class weights w0,w1,... (one per class; default all 1)");
  train->add_option("--optimizer", t.optimizer, "sgd (momentum 0.9), adam or adamw")
      ->capture_default_str()
      ->check(CLI::IsMember(optim::optimizer_names()));
  train->add_option("--schedule", t.schedule, "learning-rate schedule over all steps")
      ->capture_default_str()
      ->check(CLI::IsMember(optim::schedule_names()));
  train->add_option("--weight-decay", t.weight_decay, "L2 weight decay")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  train->add_option("--tile", t.data.tile, "generated tile size in pixels")
      ->capture_default_str()
      ->check(CLI::Range(data::kHistologyMinSize, data::kHistologyMaxSize));
  train->add_option("--n-train", t.data.n_train, "generated training tiles")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  train->add_option("--n-val", t.data.n_val, "generated validation tiles")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  train->add_option("--n-test", t.data.n_test, "generated test tiles")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  train->add_option("--classes", t.data.classes, "classes of --data's masks (background = 0)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(2), int64_t(256)));
  train->callback([f, train] {
    const Common& c = f->c;
    nets::SegmentationTraining t = f->t;
    t.epochs = c.epochs;
    t.batch = c.batch;
    t.lr = c.lr;
    t.seed = c.seed;
    t.data.data = c.data;
    t.data.seed = c.seed;
    t.data.train_limit = c.train_limit;
    t.data.test_limit = c.test_limit;
    t.out = c.out;
    t.checkpoint_every = c.checkpoint_every;
    t.device = c.device;
    t.threads = c.threads;
    t = resume_options(*train, c, t).get<nets::SegmentationTraining>();
    Common run = c;
    run.threads = t.threads;
    apply_threads(run);
    const nlohmann::json s =
        nets::train_segmenter(t, resolve_device(t.device), !c.resume.empty(), c.show_progress());
    print_report(c, s, print_text);
  });
  register_segment_eval(*segment);
  register_segment_attack(*segment);
  register_segment_saliency(*segment);
  register_segment_study(*segment);
}

}  // namespace nabla::cli
