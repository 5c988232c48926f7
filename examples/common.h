// What the `nabla` subcommands share: the common flags (one spelling, one meaning, on every
// command that has them), device resolution, --threads, --resume handling and the report
// printer. Nothing here belongs to one command; library code lives in engine/ and nets/.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include <nabla/device.h>

namespace nabla::cli {

// The common flags' values. A command sets its defaults here before add_common_flags.
struct Common {
  std::string device = "auto";   // --device
  std::string data;              // --data (empty: the command's default data set)
  std::string out;               // --out
  bool json = false;             // --json
  bool quiet = false;            // --quiet
  uint64_t seed = 0;             // --seed
  int64_t batch = 64;            // --batch
  int64_t epochs = 1;            // --epochs
  double lr = 0;                 // --lr (0: the command's default)
  std::string resume;            // --resume DIR
  int64_t checkpoint_every = 0;  // --checkpoint-every N (steps)
  int64_t train_limit = 0;       // --train-limit N (0: all)
  int64_t test_limit = 0;        // --test-limit N (0: all)
  int threads = 0;               // --threads N (0: OpenMP's default)

  bool show_progress() const { return !json && !quiet; }
};

// Which common flags a command has.
enum CommonFlag : unsigned {
  kDevice = 1u << 0,
  kData = 1u << 1,
  kOut = 1u << 2,
  kJson = 1u << 3,
  kQuiet = 1u << 4,
  kSeed = 1u << 5,
  kBatch = 1u << 6,
  kEpochs = 1u << 7,
  kLr = 1u << 8,
  kResume = 1u << 9,
  kCheckpointEvery = 1u << 10,
  kTrainLimit = 1u << 11,
  kTestLimit = 1u << 12,
  kThreads = 1u << 13,
};
// The flags of every command that trains.
constexpr unsigned kTrainingFlags = kDevice | kData | kOut | kJson | kQuiet | kSeed | kBatch |
                                    kEpochs | kLr | kResume | kCheckpointEvery | kTrainLimit |
                                    kTestLimit | kThreads;

// Adds the chosen flags to `app`, bound to c, with their shared help text; `help` replaces the
// text of a flag for this command ({"--lr", "..."}). Defaults are c's current values.
void add_common_flags(CLI::App* app, Common& c, unsigned flags,
                      const std::map<std::string, std::string>& help = {});

// "auto" (CUDA when this build has it and a GPU is present, else the CPU), "cpu", "cuda",
// "cuda:N". Errors name what is missing (no CUDA backend in this build, no GPU found).
Device resolve_device(const std::string& name);

// Applies --threads (OpenMP's thread count for this process) when it is > 0.
void apply_threads(const Common& c);

// The options of a training run, for --resume. `current` is the command's options as JSON (keys
// are the flag names without dashes, '-' as '_'). Without --resume, returns current. With it,
// returns the options the run in DIR was started with, where the flags that may change on a
// resumed run (--device, --threads, --checkpoint-every, --epochs, --json, --quiet) take this
// command line's value, and "out" becomes DIR. Any other flag given on this command line with a
// value other than the saved one is an error naming it, both values and DIR.
nlohmann::json resume_options(const CLI::App& app, const Common& c, const nlohmann::json& current);

// The common flags that describe a run (not --json, --quiet or --resume) among `flags`, as JSON
// keyed like the flags; and back. A command adds its own keys to the object.
nlohmann::json run_options(const Common& c, unsigned flags);
// requires: j holds every key that run_options(c, flags) writes (nabla::Error naming the first
//   missing or mistyped one otherwise).
void read_run_options(const nlohmann::json& j, Common& c, unsigned flags);

// --json: prints j on stdout as one line; otherwise calls text(j).
void print_report(const Common& c, const nlohmann::json& j,
                  const std::function<void(const nlohmann::json&)>& text);

// "a,b,,c" -> {"a", "b", "c"}.
std::vector<std::string> split_list(const std::string& s);

void register_classify(CLI::App& app);
void register_classify_eval(CLI::App& classify);  // under `classify`
void register_attack(CLI::App& app);
void register_robustness(CLI::App& app);
void register_robustness_check(CLI::App& robustness);  // `robustness check`
void register_demo(CLI::App& app);
void register_explain(CLI::App& app);
void register_explain_detector(CLI::App& explain);  // `explain detector`
void register_squares(CLI::App& app);
void register_data(CLI::App& app);
void register_segment(CLI::App& app);
void register_segment_eval(CLI::App& segment);      // under `segment`
void register_segment_attack(CLI::App& segment);    // under `segment`
void register_segment_saliency(CLI::App& segment);  // under `segment`
void register_segment_study(CLI::App& segment);     // under `segment`
void register_gan(CLI::App& app);
void register_aae(CLI::App& app);
void register_vae(CLI::App& app);
void register_inspect(CLI::App& app);

// Number checks with readable messages ("must be 0 or more, got -5"). CLI11's NonNegativeNumber
// and PositiveNumber are ranges up to DBL_MAX and print its 309 digits.
CLI::Validator non_negative();
CLI::Validator positive();
void register_image2image(CLI::App& app);  // `cyclegan` and `pix2pix`

}  // namespace nabla::cli
