// The robust-segmentation study of Avramidis, Kieseberg and Holzinger, "Robustness in Medical AI:
// a training scheme for more robust semantic segmentation" (draft), on the histology generator:
// the recipe behind `nabla segment study`.
//
//   1. model 1: a U-Net trained on the clean training split (train_segmenter)
//   2. method-1 data: attack::layered_pgd (Formula 2) of every training tile against model 1
//   3. method-2 data: attack::sign_choice (Formulas 3-5), all 3^K candidates, against model 1;
//      the winning s* of every tile is recorded (choices.json, a histogram figure); the greedy
//      coordinate search runs on the first `greedy_tiles` tiles and is compared with the
//      exhaustive search there (loss reached, candidates evaluated, time per tile)
//   4. models 2 and 3: the same recipe on the method-1 and method-2 images (the true masks), and
//      model 4 on the union of the clean, method-1 and method-2 images with the epochs cut by two
//      thirds (epochs / 3, at least 1), as the paper does
//   5. Table 1: every model on the clean test split; Table 2: on the test split attacked by PGD
//      with eval_steps steps toward the full-area background mask, eps = 0.01 (the paper's
//      evaluation), each model attacked through its own gradient. Loss (mean per-pixel CE),
//      pixel accuracy, mIoU over the nuclei and over all classes.
//   6. figures: each model's prediction under the attack (the paper's Figures 5-8), the
//      validation loss of the four models (its Figure 4), the choice histogram; study.json with
//      every number and the paper's values beside ours.
//
// Every stage writes its result under `out` and is skipped when the result is there, so a killed
// study continues where it stopped when run again (a model's training resumes from its last
// checkpoint through engine/train). out/options.json records the options; a rerun with other
// options in the same folder is an error naming the first one that differs.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include <nabla/device.h>

namespace nabla::nets {

struct StudyOptions {
  std::string scale = "small";
  int64_t tile = 32, base = 8, n_train = 160, n_val = 32, n_test = 48;
  int64_t epochs = 12, batch = 16;
  double lr = 0.01;
  double eps = 0.01;           // methods 1 and 2, and Table 2's attack
  int64_t layered_steps = 10;  // method 1: PGD steps per class (the paper: 100)
  int64_t eval_steps = 100;    // Table 2: PGD steps toward the background
  int64_t greedy_tiles = 32;   // tiles of the greedy-vs-exhaustive comparison
  int64_t max_batch = 243;     // candidates per forward pass (method 2)
  int64_t attack_batch = 32;   // tiles attacked at a time
  int64_t figure_rows = 4;
  uint64_t seed = 0;
  std::string out = "runs/segment_study";
  std::string device = "auto";
  int threads = 0;
};

// requires: scale "small" (2 CPU cores, at most 45 minutes) or "paper" (the paper's sizes, for a
//   GPU: 256 x 256 tiles, base 64, 561 test tiles, 100 PGD steps per layer).
// ensures: the preset; nabla::Error naming the scale otherwise.
StudyOptions study_preset(const std::string& scale);

// requires: o as a preset makes it (sizes >= 1); dev the device to run on.
// ensures: the study above in o.out; returns study.json's object (also written there).
nlohmann::json run_segmentation_study(const StudyOptions& o, Device dev, bool show);

}  // namespace nabla::nets
