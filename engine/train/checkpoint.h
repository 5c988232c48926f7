// Run checkpoints: everything a training run needs to continue exactly where it stopped.
//
//   <dir>/<module>.safetensors   one per named module: its state_dict under PyTorch's names, a
//                                plain file that torch's load_state_dict reads (plus metadata)
//   <dir>/run_state.safetensors  the rest: every optimizer's state tensors (momentum buffers,
//                                Adam's moments and step counts) under "<optimizer>.<key>", and
//                                in its metadata "nabla_run", a JSON object with the position
//                                (epoch, batch, step), each generator's (seed, offset), each
//                                optimizer's rate, and what the caller adds (options, logs)
//
// A save is a small journal, so that a process killed at any instant (SIGKILL, power loss after
// the page cache is written) leaves a checkpoint that loads to one consistent step:
//   1. each module goes to <module>.safetensors.next, atomically (temporary file, fsync, rename),
//      tagged with the step in its metadata ("nabla_run_step");
//   2. run_state.safetensors is replaced atomically: the commit point;
//   3. each .next file is renamed over <module>.safetensors.
// Loading first finishes an interrupted save: a .next file tagged with the committed step is
// renamed into place (the crash came after step 2), any other .next file is deleted (the crash
// came before it). Every module file must then carry the committed step.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include <nabla/nn/module.h>
#include <nabla/optim/optimizer.h>
#include <nabla/random.h>

namespace nabla::train {

// Where a run stands: the step it will run next.
struct Position {
  int64_t epoch = 1;  // the epoch (1-based) that the next step belongs to
  int64_t batch = 0;  // the index of the next batch within that epoch
  int64_t step = 0;   // optimizer steps completed over the whole run
};

class Checkpoint {
 public:
  // ensures: a checkpoint of nothing yet, saving into dir (created on the first save). The
  //   process-wide default generator is always part of it, as "default".
  explicit Checkpoint(std::string dir);

  // requires: names non-empty, made of letters, digits, '_' and '-', unique within their kind;
  //   the objects outlive the checkpoint. Optimizers must be registered after their modules were
  //   moved to their device (they hold the parameters).
  void add_module(const std::string& name, nn::Module& m);
  void add_optimizer(const std::string& name, optim::Optimizer& opt);
  void add_generator(const std::string& name, Generator& gen);

  const std::string& dir() const { return dir_; }
  // ensures: the path of a module's weights file.
  std::string module_path(const std::string& name) const;

  // ensures: the journal above, with `metadata[module]` added to that module's file and `state`
  //   stored as "state" in the run JSON. Errors name the file.
  void save(const Position& pos, const nlohmann::json& state,
            const std::map<std::string, std::map<std::string, std::string>>& metadata = {});

  // ensures: "<module>.<tensor>" of the first floating parameter or buffer holding a NaN or an
  //   infinity, or "" when every value is finite (a diverged run must not overwrite its last
  //   good checkpoint).
  std::string first_non_finite() const;

  // ensures: whether dir holds a run state.
  static bool exists(const std::string& dir);
  // requires: exists(dir). ensures: the caller's "state" JSON of the last save, read without
  //   touching anything (a command reads its options from it before it builds its modules).
  static nlohmann::json read_state(const std::string& dir);

  // requires: exists(dir()); the same names registered as when it was saved, modules of the same
  //   architecture.
  // ensures: an interrupted save finished or rolled back; every module, optimizer and generator
  //   restored; returns the position and the caller's state JSON. Throws nabla::Error naming the
  //   file when something is missing, foreign or inconsistent.
  std::pair<Position, nlohmann::json> load();

 private:
  std::string dir_;
  std::vector<std::pair<std::string, nn::Module*>> modules_;
  std::vector<std::pair<std::string, optim::Optimizer*>> optimizers_;
  std::vector<std::pair<std::string, Generator*>> generators_;
};

// requires: path a safetensors file holding m's state dict (ours or PyTorch's names).
// ensures: m's parameters and buffers hold the file's values; otherwise nabla::Error naming the
//   path and every missing, unexpected or mis-shaped key, and m is unchanged.
void load_weights(nn::Module& m, const std::string& path);

}  // namespace nabla::train
