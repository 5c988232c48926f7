// The fuzzed loaders behind byte-level entry points, and their seeds (see targets.h).
#include "targets.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include <nabla/data/idx.h>
#include <nabla/data/image_folder.h>
#include <nabla/io/image.h>
#include <nabla/io/safetensors.h>
#include <nabla/nabla.h>
#include <nabla/nn/layers.h>
#include <nabla/optim/optimizer.h>
#include <nabla/train/checkpoint.h>

namespace nabla::fuzz {

namespace fs = std::filesystem;

namespace {

struct Scratch {
  std::string dir;
  Scratch() {
    // tmpfs when there is one: the fuzzer writes a file per input.
    const fs::path base =
        fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    dir = (base / ("nabla_fuzz_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

std::string in_scratch(const std::string& name) {
  return (fs::path(scratch_dir()) / name).string();
}

void write_bytes(const std::string& path, const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

bool g_abort_on_finding = true;

std::string finding(const char* target, const std::string& what) {
  std::fprintf(stderr, "fuzz %s: FINDING: %s\n", target, what.c_str());
  if (g_abort_on_finding) std::abort();
  return kFinding + what;
}

// The contract: success or nabla::Error. Anything else is a finding and aborts, so that libFuzzer
// saves the input and the replay fails loudly.
template <typename F>
std::string guarded(const char* target, F&& load) {
  try {
    load();
    return "";
  } catch (const Error& e) {
    const std::string m = e.what();
    return m.empty() ? std::string("(nabla::Error with an empty message)") : m;
  } catch (const std::exception& e) {
    return finding(target, std::string("an exception that is not nabla::Error: ") + e.what());
  } catch (...) {
    return finding(target, "a non-standard exception");
  }
}

// ---- safetensors
std::string run_safetensors(const uint8_t* d, size_t n) {
  const std::string p = in_scratch("in.safetensors");
  write_bytes(p, d, n);
  return guarded("safetensors", [&] { io::load_safetensors(p); });
}
std::vector<std::string> seeds_safetensors() {
  const std::string p = in_scratch("seed.safetensors");
  std::vector<std::string> out;
  io::save_safetensors(p, {{"w", arange(6).reshape({2, 3})}});
  out.push_back(read_bytes(p));
  io::save_safetensors(p,
                       {{"conv1.weight", full({2, 1, 3, 3}, 0.5)},
                        {"conv1.bias", zeros({2}, DType::Float64)},
                        {"steps", full({1}, 7, DType::Int64)},
                        {"empty", zeros({0, 4})}},
                       {{"format", "pt"}, {"model", "FashionCNN"}});
  out.push_back(read_bytes(p));
  return out;
}

// ---- .npy
std::string run_npy(const uint8_t* d, size_t n) {
  const std::string p = in_scratch("in.npy");
  write_bytes(p, d, n);
  return guarded("npy", [&] { load_npy(p); });
}
std::vector<std::string> seeds_npy() {
  const std::string p = in_scratch("seed.npy");
  std::vector<std::string> out;
  for (const Tensor& t : {arange(6).reshape({2, 3}), full({5}, 1.5, DType::Float64),
                          full({}, 3, DType::Int64), zeros({2, 0, 3})}) {
    save_npy(p, t);
    out.push_back(read_bytes(p));
  }
  return out;
}

// ---- IDX, plain and gzip: the same reader (zlib's gzread reads both); the seeds differ
std::string run_idx(const uint8_t* d, size_t n) {
  const std::string p = in_scratch("in.idx");
  write_bytes(p, d, n);
  return guarded("idx", [&] { data::read_idx(p); });
}
std::vector<std::string> seeds_idx_as(const std::string& name) {
  const std::string p = in_scratch(name);
  std::vector<std::string> out;
  data::IdxArray a{{3, 2, 2}, std::vector<uint8_t>(12)};
  for (size_t i = 0; i < a.data.size(); ++i) a.data[i] = uint8_t(i * 21);
  data::write_idx(p, a);
  out.push_back(read_bytes(p));
  data::write_idx(p, data::IdxArray{{4}, {0, 1, 2, 9}});
  out.push_back(read_bytes(p));
  return out;
}
std::vector<std::string> seeds_idx() {
  return seeds_idx_as("seed.idx");
}
std::vector<std::string> seeds_idx_gz() {
  return seeds_idx_as("seed.idx.gz");
}

// ---- PNG
std::string run_png(const uint8_t* d, size_t n) {
  const std::string p = in_scratch("in.png");
  write_bytes(p, d, n);
  return guarded("png", [&] { data::load_png(p, 3); });
}
std::vector<std::string> seeds_png() {
  const std::string p = in_scratch("seed.png");
  std::vector<std::string> out;
  for (const Tensor& t :
       {div(arange(20).reshape({4, 5}), 20.0), div(arange(3 * 6 * 7).reshape({3, 6, 7}), 126.0)}) {
    io::save_png(p, t);
    out.push_back(read_bytes(p));
  }
  return out;
}

// ---- image+mask folder pair: [u32 little-endian image length L][L bytes image PNG][mask PNG]
std::string run_image_mask(const uint8_t* d, size_t n) {
  const std::string root = in_scratch("pair");
  fs::create_directories(root + "/images");
  fs::create_directories(root + "/masks");
  size_t len = 0;
  if (n >= 4) len = size_t(d[0]) | size_t(d[1]) << 8 | size_t(d[2]) << 16 | size_t(d[3]) << 24;
  const size_t head = std::min<size_t>(n, 4);
  len = std::min(len, n - head);
  write_bytes(root + "/images/a.png", d + head, len);
  write_bytes(root + "/masks/a.png", d + head + len, n - head - len);
  return guarded("image_mask", [&] { data::load_image_mask_folder(root, 3, 4); });
}
std::vector<std::string> seeds_image_mask() {
  const std::string img = in_scratch("seed_img.png"), mask = in_scratch("seed_mask.png");
  io::save_png(img, div(arange(3 * 4 * 5).reshape({3, 4, 5}), 60.0));
  // save_png maps v in [0, 1] to round(255 v): class k is k / 255
  std::vector<float> k(20);
  for (size_t i = 0; i < k.size(); ++i) k[i] = float(i % 4) / 255.0f;
  Tensor classes = from_vector(k, {4, 5});
  io::save_png(mask, classes);
  const std::string a = read_bytes(img), b = read_bytes(mask);
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[size_t(i)] = char((a.size() >> (8 * i)) & 0xff);
  return {s + a + b};
}

// ---- the run-state file of engine/train: a folder with one Linear module and SGD, saved at step
// 3; each input replaces run_state.safetensors and Checkpoint::load reads the folder.
struct Run {
  std::string dir;
  nn::Linear model{2, 2};
  optim::SGD opt{model.parameters(), optim::SGDOptions{}};
  Run() : dir(in_scratch("run")) {
    train::Checkpoint c(dir);
    c.add_module("model", model);
    c.add_optimizer("opt", opt);
    c.save(train::Position{1, 2, 3}, nlohmann::json{{"best", 0.5}});
  }
};
Run& run_folder() {
  static Run r;
  return r;
}
std::string run_run_state(const uint8_t* d, size_t n) {
  Run& r = run_folder();
  write_bytes((fs::path(r.dir) / "run_state.safetensors").string(), d, n);
  return guarded("run_state", [&] {
    train::Checkpoint c(r.dir);
    c.add_module("model", r.model);
    c.add_optimizer("opt", r.opt);
    c.load();
  });
}
std::vector<std::string> seeds_run_state() {
  return {read_bytes((fs::path(run_folder().dir) / "run_state.safetensors").string())};
}

}  // namespace

void set_abort_on_finding(bool on) {
  g_abort_on_finding = on;
}

const std::string& scratch_dir() {
  static Scratch s;
  return s.dir;
}

const std::vector<Target>& targets() {
  static const std::vector<Target> t = {
      {"safetensors", run_safetensors, seeds_safetensors},
      {"npy", run_npy, seeds_npy},
      {"idx", run_idx, seeds_idx},
      {"idx_gz", run_idx, seeds_idx_gz},
      {"png", run_png, seeds_png},
      {"image_mask", run_image_mask, seeds_image_mask},
      {"run_state", run_run_state, seeds_run_state},
  };
  return t;
}

const Target& target(const std::string& name) {
  for (const Target& t : targets())
    if (name == t.name) return t;
  throw std::invalid_argument("no fuzz target named '" + name + "'");
}

}  // namespace nabla::fuzz
