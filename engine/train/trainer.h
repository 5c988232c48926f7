// The training loop every command shares: epochs of steps, learning-rate schedules, a progress
// bar, the run log, checkpoints, --resume, and a stop on a diverged loss.
//
//   for epoch e = 1..epochs:
//     begin_epoch(e)
//     for batch i = 0..steps_per_epoch-1:
//       lr_k = schedule_k(step) for every optimizer k with a schedule
//       r = step({e, i, step})             the command's work: forward, backward, optimizer steps
//       every metric of r must be finite   (else: nabla::Error naming the step; nothing is saved,
//                                           and neither is a state with non-finite weights)
//       running means, weighted by r.n     (progress bar; curve "<metric>:running" gets
//                                           curve_points_per_epoch points per epoch)
//       every checkpoint_every steps:      checkpoint (position e, i + 1)
//     record = end_epoch({e, means, samples, seconds})
//     log the record (metrics.csv, curves.png), print it, checkpoint (position e + 1, 0)
//
// What a checkpoint holds is in checkpoint.h. Resuming (Options::resume) loads it before the first
// step: modules, optimizers, generators, the log, and the running sums of the epoch it stopped in.
// The command must build the same modules from the same options first (saved_options() gives
// them back). The data order must depend on (seed, epoch) only, as DataLoader's does, and every
// other random draw must come from a registered generator; then, with the same thread count, a
// resumed run computes bit for bit what the uninterrupted run computes.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include <nabla/error.h>
#include <nabla/optim/schedule.h>
#include <nabla/train/checkpoint.h>
#include <nabla/train/log.h>

namespace nabla::train {

struct Options {
  std::string name = "train";  // the command, named in messages ("classify train")
  std::string out;             // the run folder: log files and checkpoint
  int64_t epochs = 1;
  int64_t steps_per_epoch = 1;
  int64_t checkpoint_every = 0;  // also checkpoint every N steps (0: at epoch ends only)
  bool resume = false;           // continue the run checkpointed in `out`
  bool show = true;              // progress bar and a line per epoch on stderr
  int64_t curve_points_per_epoch = 20;
  std::string unit = "img";  // what StepResult::n counts, for the rate on the progress bar
};

// The step about to run.
struct StepInfo {
  int64_t epoch = 1;  // 1-based
  int64_t batch = 0;  // index within the epoch
  int64_t step = 0;   // optimizer steps completed before this one
};

struct StepResult {
  std::vector<std::pair<std::string, double>> metrics;  // shown in this order ("loss", "acc")
  int64_t n = 1;  // samples in the step: the weight of its metrics in the epoch means
};

struct EpochStats {
  int64_t epoch = 1;
  std::map<std::string, double> mean;  // per metric, the sample-weighted mean over the epoch
  int64_t samples = 0;
  double seconds = 0;  // spent in this epoch's steps (summed over resumes)
};

// requires: dir holds a checkpoint (Checkpoint::exists).
// ensures: the options JSON the run was started with (Trainer::set_options).
nlohmann::json saved_options(const std::string& dir);

// Reads options[key] into field when the key is present (options saved before a field existed
// lack it, and the field keeps its default). A value of the wrong type is a nabla::Error naming
// what ("gan options"), the key and the value.
template <typename T>
void read_option(const nlohmann::json& options, const char* what, const char* key, T& field) {
  if (!options.contains(key)) return;
  try {
    options.at(key).get_to(field);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string(what) + ": '" + key + "' = " + options.at(key).dump() + ": " +
                e.what());
  }
}

class Trainer {
 public:
  // requires: o.epochs >= 1, o.steps_per_epoch >= 1, o.checkpoint_every >= 0; columns and panels
  //   as RunLog takes them (the log is created in o.out).
  Trainer(Options o, std::vector<std::string> columns, std::vector<CurvePanel> panels);

  // What is checkpointed, as Checkpoint takes it; a schedule sets its optimizer's rate before
  // every step (it must outlive the trainer).
  void add_module(const std::string& name, nn::Module& m);
  void add_optimizer(const std::string& name, optim::Optimizer& opt,
                     const optim::LRSchedule* schedule = nullptr);
  void add_generator(const std::string& name, Generator& gen);
  // The run's options, saved with every checkpoint (saved_options reads them back).
  void set_options(nlohmann::json options) { options_ = std::move(options); }
  // Metadata written into each module's file at every checkpoint (module name -> key -> value).
  void set_metadata(std::function<std::map<std::string, std::map<std::string, std::string>>()> f) {
    metadata_ = std::move(f);
  }

  // ensures: the loop above from the start (or from the checkpoint, with Options::resume) to the
  //   end of the last epoch. Returns {"per_epoch": the records, "epochs", "steps",
  //   "samples", "train_seconds", "samples_per_second", "resumed_from_step" (null when not
  //   resumed)}. A non-finite metric throws nabla::Error naming the metric, epoch, batch and step
  //   and the last checkpoint, which stays as it was.
  nlohmann::json fit(const std::function<void(int64_t epoch)>& begin_epoch,
                     const std::function<StepResult(const StepInfo&)>& step,
                     const std::function<Record(const EpochStats&)>& end_epoch);

  RunLog& log() { return log_; }
  const Checkpoint& checkpoint() const { return ckpt_; }

 private:
  struct Running {  // the sums of the current epoch, checkpointed with it
    std::map<std::string, double> sum, window_sum;
    int64_t samples = 0, window_steps = 0;
    double seconds = 0;
  };
  void save(const Position& pos, const Running& r, double total_seconds, int64_t total_samples);
  std::string stop_message(const std::string& what, int64_t epoch, int64_t batch,
                           int64_t step) const;

  Options o_;
  RunLog log_;
  Checkpoint ckpt_;
  std::vector<std::pair<optim::Optimizer*, const optim::LRSchedule*>> schedules_;
  nlohmann::json options_ = nlohmann::json::object();
  std::function<std::map<std::string, std::map<std::string, std::string>>()> metadata_;
  int64_t last_saved_step_ = -1;
};

}  // namespace nabla::train
