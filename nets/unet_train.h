// Training a U-Net for semantic segmentation end to end on engine/train: the recipe behind
// `nabla segment train`, and the data both `segment train` and `segment eval` read.
//
//   data     the procedural histology set (engine/data/histology.h): n_train, n_val and n_test
//            tiles of tile x tile pixels from its fixed train, val and test splits, generated once
//            per run (materialize); or --data DIR, PNG images with class-index masks
//            (load_image_mask_folder): DIR/{train,val,test}/{images,masks} when DIR/train
//            exists (val optional), else DIR/{images,masks} split by file order, item i going to
//            test when i % 10 == 9, to val when i % 10 == 8, to train otherwise
//   per step batch (x, y) from the seeded loader; logits = UNet(x);
//            loss = CE(logits, y; class weights w) + dice_loss(logits, y)   ("ce+dice", the
//                   default, as milesial/Pytorch-UNet trains), or either term alone ("ce",
//                   "dice"); w = 1 for every class unless --class-weights gives them
//   optimizer and schedule by name (engine/optim/factory.h), the rate set per step
//   per epoch: the val split's loss, pixel accuracy, mIoU over the nucleus classes and over all
//            classes, and the IoU of every class: one row of metrics.csv; a panel of validation
//            predictions (val_predictions.png)
//   at the end: the same on the test split (summary.json, --json)
//
// Writes into `out`: model.safetensors (milesial/Pytorch-UNet's parameter names), metrics.csv,
// curves.png, val_predictions.png, summary.json and the run state that --resume continues from.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <nabla/data/source.h>
#include <nabla/device.h>

namespace nabla::nets {

// Where the images and masks come from.
struct SegmentationDataOptions {
  std::string data;  // an image+mask folder; empty: the histology generator
  int64_t classes = 6;
  int64_t tile = 64;  // generator: tile size
  int64_t n_train = 1024, n_val = 128, n_test = 256;
  uint64_t seed = 0;                        // generator: the data seed
  int64_t train_limit = 0, test_limit = 0;  // > 0: the first N items of train / test only
  // A folder with images.npy (float [N, 3, H, W] in [0, 1]) and masks.npy (int64 [N, H, W]) that
  // replaces the training split (val and test still come from `data` or the generator): how
  // training sets made of perturbed images (segment study) are trained on.
  std::string train_npy;
};

struct SegmentationData {
  std::shared_ptr<const data::Source> train, val, test;  // fields "image", "mask"
  std::vector<std::string> class_names;
  std::string description;  // where the data came from, for messages
};

// requires: o.classes >= 2; generator sizes as HistologySource takes them, n_* >= 1; a folder
//   as described above; o.train_npy empty or a folder as described there, with tiles of the
//   val split's size and masks in [0, classes). with_train false skips the train split (eval).
// ensures: the three splits, each materialized in memory, and the class names (the histology
//   names for the generator and for folders of 6 classes, "0".."K-1" otherwise). Errors name the
//   folder or file (load_image_mask_folder's), or the empty split.
SegmentationData load_segmentation_data(const SegmentationDataOptions& o, bool with_train = true);

// ensures: the data options a checkpoint written by train_segmenter was trained with, read from
//   its metadata (classes, tile, n_val, n_test, seed; "data" when it names a folder); a key the
//   file lacks (a PyTorch state_dict) keeps the default of SegmentationDataOptions. Errors name
//   the file.
SegmentationDataOptions checkpoint_data_options(const std::string& checkpoint);

struct SegmentationTraining {
  int64_t base = 16;             // UNet width of the first level
  bool bilinear = false;         // decoder: transposed convolutions (false) or bilinear upsampling
  std::string loss = "ce+dice";  // ce, dice or ce+dice
  std::string class_weights;     // "" (all 1) or K comma-separated weights for CE
  std::string optimizer = "adam";   // sgd (momentum 0.9), adam, adamw
  std::string schedule = "cosine";  // over all steps
  int64_t epochs = 8, batch = 16;
  double lr = 0;  // 0: 2e-3 for adam and adamw, 0.05 for sgd
  double weight_decay = 0;
  uint64_t seed = 0;  // weights, shuffling and the generator's data
  SegmentationDataOptions data;
  std::string out = "runs/segment";
  int64_t checkpoint_every = 0;
  std::string device = "auto";  // saved with the run for --resume
  int threads = 0;

  double effective_lr() const { return lr > 0 ? lr : (optimizer == "sgd" ? 0.05 : 2e-3); }
};

// The options as JSON, keyed like the command line's flags ("n_train" for --n-train).
void to_json(nlohmann::json& j, const SegmentationTraining& c);
// Keys that are missing keep their defaults; a wrongly typed value is a nabla::Error naming it.
void from_json(const nlohmann::json& j, SegmentationTraining& c);

// ensures: the CE class weights parsed from "w0,w1,..." (K non-negative numbers, not all 0), or
//   an undefined tensor for "". Errors name the text and K.
Tensor parse_class_weights(const std::string& text, int64_t classes);

// requires: the data loadable; resume: `c.out` holds a checkpoint of a run with these options.
// ensures: the trained model in c.out (see above); returns the summary: the test split's
//   metrics (test_miou, test_miou_all, test_pixel_accuracy, test_loss, test_per_class_iou, ...),
//   per-epoch records, timings, paths. A diverged loss stops with a nabla::Error naming the step.
nlohmann::json train_segmenter(const SegmentationTraining& c, Device dev, bool resume, bool show);

}  // namespace nabla::nets
