// The shared command-line parts (see common.h).
#include "common.h"

#include <omp.h>

#include <cstdio>
#include <iostream>
#include <sstream>

#include <nabla/error.h>
#include <nabla/train/trainer.h>

namespace nabla::cli {

namespace {

// The JSON key of a flag: "--checkpoint-every" -> "checkpoint_every".
std::string key_of(const std::string& flag) {
  std::string k = flag.substr(flag.find_first_not_of('-'));
  for (char& ch : k)
    if (ch == '-') ch = '_';
  return k;
}

}  // namespace

void add_common_flags(CLI::App* app, Common& c, unsigned flags,
                      const std::map<std::string, std::string>& help) {
  auto text = [&](const std::string& flag, const std::string& fallback) {
    auto it = help.find(flag);
    return it == help.end() ? fallback : it->second;
  };
  if (flags & kDevice)
    app->add_option("--device", c.device,
                    text("--device",
                         "auto (a CUDA GPU when there is one, else the CPU), cpu, "
                         "cuda or cuda:N"))
        ->capture_default_str();
  if (flags & kData)
    app->add_option("--data", c.data,
                    text("--data",
                         "folder with MNIST-format IDX files (train-images-idx3-ubyte"
                         "[.gz], ...); default: Fashion-MNIST from the Debian package "
                         "dataset-fashion-mnist"));
  if (flags & kOut)
    app->add_option("--out", c.out, text("--out", "output folder"))->capture_default_str();
  if (flags & kJson)
    app->add_flag("--json", c.json,
                  text("--json",
                       "print one JSON object with the results on stdout, no progress "
                       "bars"));
  if (flags & kQuiet) app->add_flag("--quiet", c.quiet, text("--quiet", "no progress bars"));
  if (flags & kSeed)
    app->add_option("--seed", c.seed,
                    text("--seed", "seed of the weights, the shuffling and all randomness"))
        ->capture_default_str();
  if (flags & kBatch)
    app->add_option("--batch", c.batch, text("--batch", "mini-batch size"))
        ->capture_default_str()
        ->check(CLI::Range(int64_t(1), int64_t(65536)));
  if (flags & kEpochs)
    app->add_option("--epochs", c.epochs, text("--epochs", "passes over the training set"))
        ->capture_default_str()
        ->check(CLI::Range(int64_t(1), int64_t(100000)));
  if (flags & kLr) app->add_option("--lr", c.lr, text("--lr", "learning rate"))->check(positive());
  if (flags & kResume)
    app->add_option("--resume", c.resume,
                    text("--resume",
                         "continue the run checkpointed in DIR (its options, weights, "
                         "optimizer and random state) from its last checkpoint; with "
                         "the same --threads the result is bit for bit the "
                         "uninterrupted run's. --epochs may be raised to train longer"))
        ->check(CLI::ExistingDirectory);
  if (flags & kCheckpointEvery)
    app->add_option("--checkpoint-every", c.checkpoint_every,
                    text("--checkpoint-every",
                         "also checkpoint every N steps (0: only at the end "
                         "of each epoch)"))
        ->capture_default_str()
        ->check(non_negative());
  if (flags & kTrainLimit)
    app->add_option("--train-limit", c.train_limit,
                    text("--train-limit", "use only the first N training images (0: all)"))
        ->check(non_negative());
  if (flags & kTestLimit)
    app->add_option("--test-limit", c.test_limit,
                    text("--test-limit", "use only the first N test images (0: all)"))
        ->check(non_negative());
  if (flags & kThreads)
    app->add_option("--threads", c.threads,
                    text("--threads", "CPU threads (0: OpenMP's default, OMP_NUM_THREADS)"))
        ->capture_default_str()
        ->check(CLI::Range(0, 4096));
}

Device resolve_device(const std::string& name) {
  if (name == "auto") return cuda_available() ? Device::cuda(0) : Device::cpu();
  Device d = Device::parse(name);
  if (d.is_cuda()) {
#ifndef NABLA_HAVE_CUDA
    throw Error("--device " + name +
                ": this build has no CUDA backend (configure on a machine with nvcc at "
                "/usr/local/cuda, or use --device cpu)");
#endif
    NABLA_CHECK(cuda_available(), "--device ", name, ": no CUDA GPU is available here");
  }
  return d;
}

void apply_threads(const Common& c) {
  if (c.threads > 0) omp_set_num_threads(c.threads);
}

nlohmann::json resume_options(const CLI::App& app, const Common& c, const nlohmann::json& current) {
  if (c.resume.empty()) return current;
  static const char* kMayChange[] = {"device", "threads", "checkpoint_every", "epochs", "json",
                                     "quiet",  "resume"};
  nlohmann::json saved = train::saved_options(c.resume);
  NABLA_CHECK(saved.is_object(), c.resume, ": the saved options are not a JSON object");
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->count() == 0 || opt->get_name().rfind("--", 0) != 0) continue;
    const std::string key = key_of(opt->get_name());
    bool may_change = false;
    for (const char* k : kMayChange) may_change = may_change || key == k;
    if (may_change) {
      if (current.contains(key)) saved[key] = current[key];
      continue;
    }
    if (key == "out") {
      NABLA_CHECK(current[key] == nlohmann::json(c.resume), "--out ",
                  current[key].get<std::string>(), " and --resume ", c.resume,
                  " differ: a resumed run writes into the folder it resumes");
      continue;
    }
    if (current.contains(key) && saved.contains(key) && current[key] != saved[key])
      throw Error(opt->get_name() + " " + current[key].dump() + ": the run in " + c.resume +
                  " was started with " + saved[key].dump() +
                  "; a resumed run keeps its options (it may change --epochs, --device, "
                  "--threads and --checkpoint-every). Start a new run with another --out instead.");
  }
  for (const char* k : kMayChange)
    if (current.contains(k) && !saved.contains(k)) saved[k] = current[k];
  saved["out"] = c.resume;
  return saved;
}

namespace {

// Each run option with its flag and its field, for the two directions below.
template <typename F>
void each_run_option(Common& c, unsigned flags, F&& f) {
  if (flags & kDevice) f("device", c.device);
  if (flags & kData) f("data", c.data);
  if (flags & kOut) f("out", c.out);
  if (flags & kSeed) f("seed", c.seed);
  if (flags & kBatch) f("batch", c.batch);
  if (flags & kEpochs) f("epochs", c.epochs);
  if (flags & kLr) f("lr", c.lr);
  if (flags & kCheckpointEvery) f("checkpoint_every", c.checkpoint_every);
  if (flags & kTrainLimit) f("train_limit", c.train_limit);
  if (flags & kTestLimit) f("test_limit", c.test_limit);
  if (flags & kThreads) f("threads", c.threads);
}

}  // namespace

nlohmann::json run_options(const Common& c, unsigned flags) {
  nlohmann::json j = nlohmann::json::object();
  Common copy = c;
  each_run_option(copy, flags, [&](const char* key, const auto& v) { j[key] = v; });
  return j;
}

void read_run_options(const nlohmann::json& j, Common& c, unsigned flags) {
  each_run_option(c, flags, [&](const char* key, auto& v) {
    try {
      j.at(key).get_to(v);
    } catch (const nlohmann::json::exception& e) {
      throw Error(std::string("run options: '") + key + "': " + e.what());
    }
  });
}

void print_report(const Common& c, const nlohmann::json& j,
                  const std::function<void(const nlohmann::json&)>& text) {
  if (c.json)
    std::cout << j.dump() << "\n";
  else
    text(j);
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

namespace {
CLI::Validator number_check(bool strict, const char* name) {
  return CLI::Validator(
      [strict](std::string& in) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(in, v)) return "'" + in + "' is not a number";
        if (strict ? !(v > 0) : !(v >= 0))
          return std::string(strict ? "must be greater than 0" : "must be 0 or more") + ", got " +
                 in;
        return {};
      },
      name);
}
}  // namespace

CLI::Validator non_negative() {
  return number_check(false, "NONNEGATIVE");
}
CLI::Validator positive() {
  return number_check(true, "POSITIVE");
}

}  // namespace nabla::cli
