// Inputs a careless user or a hostile file can give: shapes whose element count overflows,
// .npy/safetensors/PNG headers that claim more than the file holds, JSON nested without limit,
// two threads saving to one path, output folders that cannot be created. Each case failed (crash,
// huge allocation, std:: exception or a clash) before its fix; tests/fuzz/regressions holds the
// files that libFuzzer and misuse found, replayed by nabla_fuzz_replay.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nabla/data/image_folder.h>
#include <nabla/io/files.h>
#include <nabla/io/image.h>
#include <nabla/io/safetensors.h>

#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;
namespace fs = std::filesystem;

namespace {
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}
constexpr int64_t k2to62 = int64_t(1) << 62;
}  // namespace

TEST_CASE("shapes: every partial product of the element count and the strides is checked") {
  CHECK(shape_numel({2, 3, 4}) == 24);
  CHECK(shape_numel({k2to62, 0}) == 0);
  CHECK(contiguous_strides({k2to62, 1}) == Shape{1, 1});
  check_error([] { shape_numel({k2to62, 4}); }, {"[4611686018427387904, 4]", "overflows 64 bits"});
  // The count is 0, but the partial products still overflow: the strides could not be formed.
  check_error([] { shape_numel({k2to62, k2to62, 0}); }, {"overflows 64 bits"});
  check_error([] { contiguous_strides({k2to62, k2to62, 0}); }, {"strides overflow 64 bits"});
  check_error([] { shape_numel({3, -1}); }, {"negative dimension -1"});
  // numel fits, numel * 8 bytes does not
  check_error([] { empty({int64_t(1) << 61, 2}, DType::Float64); }, {"needs more than 2^63 bytes"});
  check_error([] { empty({k2to62, 4}); }, {"overflows 64 bits"});
  Tensor t = zeros({0});
  check_error([&] { t.reshape({k2to62, 4, 0, -1}); }, {"overflow 64 bits"});
}

TEST_CASE(".npy: oversized and overflowing headers fail before allocating, as nabla::Error") {
  TempDir tmp;
  const std::string path = tmp / "x.npy";
  auto npy = [](const std::string& dict, const std::string& data = "") {
    std::string h = dict;
    const size_t total = 10 + h.size() + 1;
    h += std::string((64 - total % 64) % 64, ' ') + "\n";
    std::string out = std::string("\x93NUMPY\x01\x00", 8);
    out += char(h.size() & 0xff);
    out += char(h.size() >> 8);
    return out + h + data;
  };
  auto dict = [](const std::string& shape) {
    return "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  };
  write_bytes(path, npy(dict("(4611686018427387904, 4)")));
  check_error([&] { load_npy(path); }, {path, "overflows 64 bits"});
  // 2^60 floats declared, 3 bytes present: refused by size, not by a failed allocation
  write_bytes(path, npy(dict("(1152921504606846976,)"), "abc"));
  check_error([&] { load_npy(path); },
              {path, "truncated data", "4611686018427387904 bytes", "has 3"});
  write_bytes(path, npy(dict("(" + std::string(30, '9') + ",)")));
  check_error([&] { load_npy(path); }, {path, "does not fit in 64 bits"});
  // a small valid file still loads
  save_npy(path, tensor({1, 2, 3}, {3}));
  CHECK(load_npy(path).to_vector<double>() == std::vector<double>{1, 2, 3});
}

TEST_CASE("safetensors: zero-dim shapes whose partial products overflow, JSON nested too deep") {
  TempDir tmp;
  const std::string path = tmp / "x.safetensors";
  auto st = [&](const std::string& json) {
    std::string len(8, '\0');
    for (int i = 0; i < 8; ++i) len[size_t(i)] = char((json.size() >> (8 * i)) & 0xff);
    write_bytes(path, len + json);
  };
  st(R"({"a": {"dtype": "F32", "shape": [4611686018427387904, 4611686018427387904, 0],)"
     R"( "data_offsets": [0, 0]}})");
  check_error([&] { io::load_safetensors(path); }, {path, "'a'", "overflows"});
  st(R"({"a": {"dtype": "F32", "shape": [0, 4611686018427387904, 2], "data_offsets": [0, 0]}})");
  check_error([&] { io::load_safetensors(path); }, {path, "overflows"});
  // 65 levels are refused before parsing; 64 are parsed (and fail as a malformed value, described
  // by type and size, not dumped)
  st("{\"a\":" + std::string(65, '[') + std::string(65, ']') + "}");
  check_error([&] { io::load_safetensors(path); }, {path, "nests deeper than 64 levels"});
  st("{\"a\":" + std::string(63, '[') + std::string(63, ']') + "}");
  check_error([&] { io::load_safetensors(path); }, {path, "found a JSON array of 1 element(s)"});
  // brackets inside strings do not count
  st(R"({"__metadata__": {"k": ")" + std::string(100, '[') + R"("}})");
  CHECK(io::load_safetensors(path).metadata.at("k") == std::string(100, '['));
  // a long malformed string is clipped in the message
  st(R"({"a": {"dtype": ")" + std::string(5000, 'x') +
     R"(", "shape": [1], "data_offsets": [0, 4]}})");
  try {
    io::load_safetensors(path);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).size() < 600);
    CHECK(std::string(e.what()).find("(5000 bytes)") != std::string::npos);
  }
}

TEST_CASE("PNG: size capped before decoding (NABLA_PNG_MAX_BYTES), chunk layout checked first") {
  TempDir tmp;
  const std::string path = tmp / "a.png";
  io::save_png(path, full({3, 32, 32}, 0.5));
  CHECK(data::load_png(path, 3).shape() == Shape{3, 32, 32});
  ::setenv("NABLA_PNG_MAX_BYTES", "3000", 1);
  // 32 x 32 x 3 = 3072 bytes decoded > 3000
  check_error([&] { data::load_png(path, 3); },
              {path, "32x32 pixels", "3072 bytes", "3000-byte PNG limit", "NABLA_PNG_MAX_BYTES"});
  ::setenv("NABLA_PNG_MAX_BYTES", "4000", 1);
  CHECK(data::load_png(path, 3).shape() == Shape{3, 32, 32});
  ::unsetenv("NABLA_PNG_MAX_BYTES");
  // a truncated file: the last chunk does not fit; the reason is never empty
  const std::string bytes = read_file(path);
  write_bytes(path, bytes.substr(0, bytes.size() - 20));
  check_error([&] { data::load_png(path, 3); }, {path, "declares"});
  write_bytes(path, bytes.substr(0, 17));
  check_error([&] { data::load_png(path, 3); }, {path, "truncated chunk header"});
  write_bytes(path, "not a png at all");
  check_error([&] { data::load_png(path, 3); }, {path, "no PNG signature"});
}

TEST_CASE("temporary names: unique per thread and call, concurrent saves to one path all succeed") {
  std::set<std::string> names;
  std::vector<std::vector<std::string>> per(4);
  std::vector<std::thread> ts;
  for (size_t k = 0; k < per.size(); ++k)
    ts.emplace_back([&, k] {
      for (int i = 0; i < 50; ++i) per[k].push_back(io::temp_path_for("/x/model.safetensors"));
    });
  for (auto& t : ts) t.join();
  for (const auto& v : per) names.insert(v.begin(), v.end());
  CHECK(names.size() == 200);
  CHECK(names.begin()->rfind("/x/model.safetensors.tmp.", 0) == 0);

  // Two threads of one process checkpointing to one path: with a per-process temp name they
  // truncated each other's temp file and one rename failed.
  TempDir tmp;
  const std::string st = tmp / "m.safetensors", np = tmp / "m.npy";
  std::vector<std::string> errors(4);
  ts.clear();
  for (size_t k = 0; k < errors.size(); ++k)
    ts.emplace_back([&, k] {
      try {
        for (int i = 0; i < 30; ++i) {
          io::save_safetensors(st, {{"w", full({64}, double(k))}});
          save_npy(np, full({64}, double(k)));
        }
      } catch (const std::exception& e) {
        errors[k] = e.what();
      }
    });
  for (auto& t : ts) t.join();
  for (const std::string& e : errors) CHECK_MESSAGE(e.empty(), e);
  const std::vector<double> w = io::load_safetensors(st).tensors.at("w").to_vector<double>();
  CHECK(std::set<double>(w.begin(), w.end()).size() == 1);  // one writer's file, whole
  CHECK(tmp.names() == std::set<std::string>{"m.safetensors", "m.npy"});
}

TEST_CASE("create_dirs: errors name the purpose and the path, never a filesystem_error") {
  TempDir tmp;
  const std::string file = tmp / "file";
  write_bytes(file, "x");
  check_error([&] { io::create_dirs(file, "the output folder (--out)"); },
              {"cannot create the output folder (--out)", file, "not a folder"});
  check_error([&] { io::create_dirs(file + "/sub", "the output folder (--out)"); },
              {"cannot create the output folder (--out)", file + "/sub"});
  if (fs::is_directory("/proc/self"))
    check_error([] { io::create_dirs("/proc/nabla_x", "the output folder (--out)"); },
                {"/proc/nabla_x"});
  io::create_dirs(tmp / "a/b/c", "x");
  CHECK(fs::is_directory(tmp.path / "a/b/c"));
  io::create_dirs(tmp / "a/b/c", "x");  // existing: fine
}
