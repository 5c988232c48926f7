// Run checkpoints and their journal (see checkpoint.h).
#include <nabla/train/checkpoint.h>

#include <cmath>
#include <filesystem>

#include <nabla/autograd.h>
#include <nabla/error.h>
#include <nabla/io/safetensors.h>
#include <nabla/ops.h>

namespace nabla::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kStateFile = "run_state.safetensors";
constexpr const char* kRunKey = "nabla_run";
constexpr const char* kStepKey = "nabla_run_step";
constexpr int kFormatVersion = 1;
constexpr const char* kNoStateHint =
    ": the run stopped before its first checkpoint, or this is not a run folder; start the run "
    "again";

void check_name(const char* kind, const std::string& name, const std::vector<std::string>& taken) {
  NABLA_CHECK(!name.empty() && name.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                                                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
                                   std::string::npos,
              "Checkpoint: ", kind, " name '", name,
              "' must be non-empty letters, digits, '_' or '-'");
  for (const auto& t : taken)
    NABLA_CHECK(t != name, "Checkpoint: two ", kind, "s named '", name, "'");
}

template <typename T>
std::vector<std::string> names_of(const std::vector<std::pair<std::string, T>>& v) {
  std::vector<std::string> out;
  for (const auto& [n, _] : v) out.push_back(n);
  return out;
}

std::string state_path(const std::string& dir) {
  return (fs::path(dir) / kStateFile).string();
}

json parse_run(const io::SafetensorsFile& f, const std::string& path) {
  auto it = f.metadata.find(kRunKey);
  NABLA_CHECK(it != f.metadata.end(), path, " is not a nabla run state (no '", kRunKey,
              "' metadata)");
  io::check_json_depth(path + ": '" + kRunKey + "' metadata", it->second, 64);
  json j = json::parse(it->second, nullptr, false);
  NABLA_CHECK(!j.is_discarded() && j.is_object() && j.contains("version") &&
                  j.contains("position") && j.contains("state"),
              path, ": the '", kRunKey, "' metadata is not a run-state object");
  NABLA_CHECK(j["version"] == kFormatVersion, path, ": run-state format ",
              j["version"].is_primitive() ? j["version"].dump().substr(0, 40) : "(not a number)",
              ", this build reads ", kFormatVersion);
  return j;
}

int64_t step_tag(const io::SafetensorsFile& f, const std::string& path) {
  auto it = f.metadata.find(kStepKey);
  NABLA_CHECK(it != f.metadata.end(), path, " has no '", kStepKey,
              "' metadata: it was not written by a run checkpoint");
  try {
    return std::stoll(it->second);
  } catch (const std::exception&) {
    throw Error(path + ": '" + kStepKey + "' is '" + it->second + "', not a step count");
  }
}

}  // namespace

Checkpoint::Checkpoint(std::string dir) : dir_(std::move(dir)) {
  generators_.emplace_back("default", &default_generator());
}

void Checkpoint::add_module(const std::string& name, nn::Module& m) {
  check_name("module", name, names_of(modules_));
  modules_.emplace_back(name, &m);
}

void Checkpoint::add_optimizer(const std::string& name, optim::Optimizer& opt) {
  check_name("optimizer", name, names_of(optimizers_));
  optimizers_.emplace_back(name, &opt);
}

void Checkpoint::add_generator(const std::string& name, Generator& gen) {
  check_name("generator", name, names_of(generators_));
  generators_.emplace_back(name, &gen);
}

std::string Checkpoint::module_path(const std::string& name) const {
  return (fs::path(dir_) / (name + ".safetensors")).string();
}

void Checkpoint::save(const Position& pos, const json& state,
                      const std::map<std::string, std::map<std::string, std::string>>& metadata) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  NABLA_CHECK(!ec, "Checkpoint: cannot create ", dir_, ": ", ec.message());
  // 1. every module beside its final file, tagged with the step
  for (const auto& [name, m] : modules_) {
    std::map<std::string, std::string> meta = {{"format", "pt"}, {"model", m->type_name()}};
    if (auto it = metadata.find(name); it != metadata.end())
      for (const auto& [k, v] : it->second) meta[k] = v;
    meta[kStepKey] = std::to_string(pos.step);
    io::save_safetensors(module_path(name) + ".next", m->state_dict(), meta);
  }
  // 2. the commit point
  io::TensorMap tensors;
  json run = {{"version", kFormatVersion},
              {"position", {{"epoch", pos.epoch}, {"batch", pos.batch}, {"step", pos.step}}},
              {"modules", names_of(modules_)},
              {"state", state}};
  for (const auto& [name, g] : generators_) run["generators"][name] = {g->seed(), g->offset()};
  for (const auto& [name, opt] : optimizers_) {
    run["optimizers"][name] = {{"lr", opt->lr()}, {"steps", opt->steps()}};
    for (const auto& [key, t] : opt->state()) tensors[name + "." + key] = t;
  }
  io::save_safetensors(state_path(dir_), tensors, {{kRunKey, run.dump()}});
  // 3. the modules into place
  for (const auto& [name, _] : modules_) {
    fs::rename(module_path(name) + ".next", module_path(name), ec);
    NABLA_CHECK(!ec, "Checkpoint: cannot rename ", module_path(name), ".next: ", ec.message());
  }
}

std::string Checkpoint::first_non_finite() const {
  for (const auto& [name, m] : modules_)
    for (const auto& [key, t] : m->state_dict()) {
      if (!is_floating(t.dtype())) continue;
      NoGradGuard ng;
      // sum(x * 0) is 0 for finite x and NaN as soon as one element is NaN or infinite.
      if (!std::isfinite(sum(mul(t.detach(), 0.0)).item<double>())) return name + "." + key;
    }
  return "";
}

bool Checkpoint::exists(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(state_path(dir), ec);
}

json Checkpoint::read_state(const std::string& dir) {
  const std::string path = state_path(dir);
  NABLA_CHECK(exists(dir), dir, " holds no run to resume (no ", kStateFile, kNoStateHint, ")");
  return parse_run(io::load_safetensors(path), path)["state"];
}

// Every json accessor below throws json::exception on a value of the wrong type; the handler at
// the end turns those into nabla::Error naming the file.
std::pair<Position, json> Checkpoint::load() try {
  const std::string path = state_path(dir_);
  NABLA_CHECK(exists(dir_), dir_, " holds no run to resume (no ", kStateFile, kNoStateHint, ")");
  io::SafetensorsFile file = io::load_safetensors(path);
  const json run = parse_run(file, path);
  Position pos;
  try {
    pos.epoch = run["position"].at("epoch").get<int64_t>();
    pos.batch = run["position"].at("batch").get<int64_t>();
    pos.step = run["position"].at("step").get<int64_t>();
  } catch (const json::exception& e) {
    throw Error(path + ": malformed position: " + e.what());
  }
  const std::vector<std::string> saved_modules = run.value("modules", std::vector<std::string>{});
  NABLA_CHECK(saved_modules == names_of(modules_), path, " holds modules ",
              json(saved_modules).dump(), ", this run has ", json(names_of(modules_)).dump());

  // Finish or roll back an interrupted save, then check and load every module. Nothing is copied
  // into a module before every file has been checked, so a refused load changes nothing.
  std::vector<io::SafetensorsFile> weights;
  for (const auto& [name, m] : modules_) {
    const std::string final_path = module_path(name), next = final_path + ".next";
    std::error_code ec;
    if (fs::exists(next, ec)) {
      if (step_tag(io::load_safetensors(next), next) == pos.step)
        fs::rename(next, final_path, ec);
      else
        fs::remove(next, ec);
      NABLA_CHECK(!ec, "Checkpoint: cannot finish the interrupted save of ", next, ": ",
                  ec.message());
    }
    io::SafetensorsFile w = io::load_safetensors(final_path);
    const int64_t tag = step_tag(w, final_path);
    NABLA_CHECK(tag == pos.step, final_path, " holds step ", tag, " but ", path, " holds step ",
                pos.step, ": the checkpoint folder mixes two runs");
    weights.push_back(std::move(w));
  }
  for (size_t i = 0; i < modules_.size(); ++i) {
    try {
      modules_[i].second->load_state_dict(weights[i].tensors);
    } catch (const Error& e) {
      throw Error(module_path(modules_[i].first) + " does not fit this run's " +
                  modules_[i].second->type_name() + ": " + e.what());
    }
  }
  for (const auto& [name, opt] : optimizers_) {
    NABLA_CHECK(run.contains("optimizers") && run["optimizers"].contains(name), path,
                " has no optimizer '", name, "'");
    optim::StateList entries;
    const std::string prefix = name + ".";
    for (const auto& [key, t] : file.tensors) {
      if (key.rfind(prefix, 0) != 0) continue;
      const std::string k = key.substr(prefix.size());
      // State buffers live where their parameter lives ("<index>.<name>"); the file is read
      // to the CPU.
      Tensor v = t;
      const size_t dot = k.find('.');
      if (dot != std::string::npos && dot > 0 && dot < 10 && is_floating(t.dtype()) &&
          k.find_first_not_of("0123456789") == dot) {
        const size_t i = std::stoul(k.substr(0, dot));
        if (i < opt->params().size()) v = t.to(opt->params()[i].device());
      }
      entries.emplace_back(k, v);
    }
    opt->load_state(entries);
    opt->set_lr(run["optimizers"][name].at("lr").get<double>());
  }
  for (const auto& [name, g] : generators_) {
    NABLA_CHECK(run.contains("generators") && run["generators"].contains(name), path,
                " has no generator '", name, "'");
    const json& s = run["generators"][name];
    g->set_state(s.at(0).get<uint64_t>(), s.at(1).get<uint64_t>());
  }
  return {pos, run["state"]};
} catch (const json::exception& e) {
  throw Error(state_path(dir_) + ": malformed run state: " + e.what());
}

void load_weights(nn::Module& m, const std::string& path) {
  io::SafetensorsFile file = io::load_safetensors(path);
  try {
    m.load_state_dict(file.tensors);
  } catch (const Error& e) {
    throw Error(path + " does not hold a " + m.type_name() + " state dict: " + e.what());
  }
}

}  // namespace nabla::train
