// `nabla inspect` on good files (numbers checked against what was written) and on the whole fuzz
// regression corpus (exit 1, one line naming the file, never a signal); the CLI's answers to
// misuse: --out that cannot be a folder, a negative --limit.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nabla/data/idx.h>
#include <nabla/io/image.h>
#include <nabla/io/safetensors.h>
#include <nabla/nabla.h>
#include <nets/classifier.h>

#include "gradcheck.h"

using namespace nabla;
using nabla::test::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Run {
  int exit = -1;  // the exit code, or -1 when a signal ended it
  int signal = 0;
  std::string out;  // stdout and stderr
};

Run run(const std::string& args) {
  Run r;
  const std::string cmd = std::string(NABLA_BIN_DIR) + "/nabla " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = pclose(p);
  if (WIFEXITED(st)) r.exit = WEXITSTATUS(st);
  if (WIFSIGNALED(st)) r.signal = WTERMSIG(st);
  return r;
}

std::string q(const std::string& s) {
  return "'" + s + "'";
}

}  // namespace

TEST_CASE("nabla inspect: safetensors stats, byte ranges, metadata and the net the keys match") {
  TempDir tmp;
  const std::string path = tmp / "m.safetensors";
  Generator g(1);
  nets::FashionCNN net(&g);
  io::TensorMap sd = net.state_dict();
  sd["conv1.bias"] = tensor({1, -2, std::nan(""), 4}, {4}).reshape({4});
  // FashionCNN's conv1.bias has its own width; a [4] tensor keeps the keys, not the shapes
  io::save_safetensors(path, sd, {{"model", "FashionCNN"}});
  Run r = run("inspect --json " + q(path));
  REQUIRE_MESSAGE(r.exit == 0, r.out);
  const json j = json::parse(r.out);
  CHECK(j["format"] == "safetensors");
  CHECK(j["metadata"]["model"] == "FashionCNN");
  CHECK(j["match"]["net"].get<std::string>().rfind("FashionCNN", 0) == 0);
  CHECK(j["match"]["default_shapes"] == false);
  CHECK(j["tensors"].size() == sd.size());
  uint64_t covered = 0, header_end = 0;
  for (const json& t : j["tensors"]) {
    covered += t["bytes"][1].get<uint64_t>() - t["bytes"][0].get<uint64_t>();
    if (t["name"] == "conv1.bias") {
      CHECK(t["min"] == -2.0);
      CHECK(t["max"] == 4.0);
      CHECK(t["mean"] == doctest::Approx(1.0));
      CHECK(t["nan"] == 1);
      CHECK(t["shape"] == json::array({4}));
      CHECK(t["dtype"] == "F32");
    }
    header_end = std::max(header_end, t["bytes"][1].get<uint64_t>());
  }
  // the byte ranges tile the data region, which ends at the end of the file
  CHECK(header_end == fs::file_size(path));
  uint64_t numel = 0;
  for (const auto& [k, t] : sd) numel += uint64_t(t.numel());
  CHECK(covered == numel * 4);

  r = run("inspect --json --tensor conv1.bias " + q(path));
  REQUIRE(r.exit == 0);
  const json v = json::parse(r.out)["values"];
  CHECK(v[0] == 1.0);
  CHECK(v[1] == -2.0);
  CHECK(v[2].is_null());  // NaN
  r = run("inspect " + q(path));
  CHECK(r.exit == 0);
  CHECK(r.out.find("the keys are those of FashionCNN") != std::string::npos);
  r = run("inspect --tensor nope " + q(path));
  CHECK(r.exit == 1);
  CHECK(r.out.find("holds no tensor 'nope'") != std::string::npos);
}

TEST_CASE("nabla inspect: .npy, PNG and IDX headers and statistics") {
  TempDir tmp;
  save_npy(tmp / "a.npy", tensor({1, 2, 3, 6}, {2, 2}, DType::Float64));
  Run r = run("inspect --json " + q(tmp / "a.npy"));
  REQUIRE_MESSAGE(r.exit == 0, r.out);
  json j = json::parse(r.out);
  CHECK(j["dtype"] == "float64");
  CHECK(j["shape"] == json::array({2, 2}));
  CHECK(j["order"] == "C");
  CHECK(j["mean"] == 3.0);
  CHECK(j["max"] == 6.0);

  io::save_png(tmp / "a.png", full({3, 5, 7}, 0.5));
  r = run("inspect --json " + q(tmp / "a.png"));
  REQUIRE_MESSAGE(r.exit == 0, r.out);
  j = json::parse(r.out);
  CHECK(j["width"] == 7);
  CHECK(j["height"] == 5);
  CHECK(j["channels"] == 3);
  CHECK(j["bit_depth"] == 8);

  data::write_idx(tmp / "a.idx.gz", data::IdxArray{{2, 3}, {1, 2, 3, 4, 5, 6}});
  r = run("inspect --json " + q(tmp / "a.idx.gz"));
  REQUIRE_MESSAGE(r.exit == 0, r.out);
  j = json::parse(r.out);
  CHECK(j["dims"] == json::array({2, 3}));
  CHECK(j["gzip"] == true);
}

TEST_CASE("nabla inspect: every fuzz regression file exits 1 with a line naming it, no signal") {
  std::vector<fs::path> files;
  // run_state/ holds well-formed safetensors files whose run-state JSON is malformed: inspect
  // shows them (the metadata is a string to it); Checkpoint::load is what refuses them.
  for (const auto& e : fs::recursive_directory_iterator(NABLA_FUZZ_REGRESSIONS))
    if (e.is_regular_file() && e.path().filename() != "expected.tsv" &&
        e.path().parent_path().filename() != "run_state")
      files.push_back(e.path());
  CHECK(files.size() >= 10);
  // and the 10^6-deep JSON header (2 MB) that overflowed the stack in an error message
  TempDir tmp;
  const std::string deep = tmp / "deep.safetensors";
  {
    const std::string json =
        "{\"a\":" + std::string(1000000, '[') + std::string(1000000, ']') + "}";
    std::string len(8, '\0');
    for (int i = 0; i < 8; ++i) len[size_t(i)] = char((json.size() >> (8 * i)) & 0xff);
    std::ofstream(deep, std::ios::binary) << len << json;
  }
  files.push_back(deep);
  for (const fs::path& p : files) {
    const Run r = run("inspect " + q(p.string()));
    INFO(p.string() << ": " << r.out);
    CHECK(r.signal == 0);
    CHECK(r.exit == 1);
    CHECK(r.out.rfind("nabla: error: ", 0) == 0);
    CHECK(r.out.find(p.string()) != std::string::npos);
    CHECK(r.out.find("stb_image: )") == std::string::npos);  // a reason is always given
  }
}

TEST_CASE("CLI misuse: --out that cannot be a folder, a negative --limit: one readable line") {
  TempDir tmp;
  const std::string file = tmp / "a_file";
  std::ofstream(file) << "x";
  for (const std::string& out : {file, std::string("/proc/nabla_x")}) {
    const Run r = run("data histology --n 1 --size 64 --out " + q(out));
    INFO(r.out);
    CHECK(r.exit == 1);
    CHECK(r.out.find("nabla: error: cannot create the output folder (--out) " + out) !=
          std::string::npos);
    CHECK(r.out.find("unexpected") == std::string::npos);
  }
  const std::string ckpt = tmp / "c.safetensors";
  io::save_safetensors(ckpt, {{"w", zeros({1})}});
  const Run r = run("classify eval --checkpoint " + q(ckpt) + " --limit -5");
  INFO(r.out);
  CHECK(r.exit != 0);
  CHECK(r.out.find("--limit: must be 0 or more, got -5") != std::string::npos);
  CHECK(r.out.size() < 400);  // no 309-digit DBL_MAX
}
