// nabla inspect FILE: what a file holds, read with the engine's own loaders.
//
//   .safetensors  every tensor: name, dtype (as stored), shape, byte range in the file, min, max,
//                 mean and NaN count; the metadata; which nabla net's parameter names the keys are
//   .npy          dtype, shape, order and the same statistics
//   PNG           width, height, channels and bit depth
//   IDX (.gz)     dims and element type
//
// The format comes from the first bytes (the extension only breaks ties). Every loader checks
// the file before it allocates, so a malformed or hostile file ends with exit 1 and one line
// naming the file and the problem, never a signal. --tensor NAME prints one tensor's values.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <nabla/data/idx.h>
#include <nabla/data/image_folder.h>
#include <nabla/io/safetensors.h>
#include <nabla/nabla.h>
#include <nets/classifier.h>
#include <nets/dcgan.h>
#include <nets/detector.h>
#include <nets/unet.h>

#include "common.h"

namespace nabla::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct InspectFlags {
  Common c;
  std::string file;
  std::string tensor;  // --tensor NAME
};

enum class Format { Safetensors, Npy, Png, Idx, Unknown };

std::string first_bytes(const std::string& path, size_t n) {
  std::ifstream f(path, std::ios::binary);
  std::string s(n, '\0');
  f.read(s.data(), std::streamsize(n));
  s.resize(size_t(f.gcount()));
  return s;
}

Format detect(const std::string& path) {
  std::error_code ec;
  NABLA_CHECK(fs::exists(path, ec), "inspect: ", path, ": no such file");
  NABLA_CHECK(fs::is_regular_file(path, ec), "inspect: ", path, ": not a regular file");
  const std::string b = first_bytes(path, 9);
  if (b.rfind("\x93NUMPY", 0) == 0) return Format::Npy;
  if (b.rfind("\x89PNG", 0) == 0) return Format::Png;
  // IDX: 0x00 0x00 type ndims; gzip: 0x1f 0x8b (an IDX file is the only gzip format we read)
  if (b.size() >= 4 && b[0] == 0 && b[1] == 0 && b[3] >= 1 && b[3] <= 4) return Format::Idx;
  if (b.size() >= 2 && uint8_t(b[0]) == 0x1f && uint8_t(b[1]) == 0x8b) return Format::Idx;
  // safetensors: a little-endian u64 header length, then '{'
  if (b.size() == 9 && b[8] == '{') return Format::Safetensors;
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".safetensors") return Format::Safetensors;
  if (ext == ".npy") return Format::Npy;
  if (ext == ".png") return Format::Png;
  return Format::Unknown;
}

// min, max and mean over the finite and infinite values, and the NaN count.
json stats(const Tensor& t) {
  const std::vector<double> v = t.to_vector<double>();
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
  int64_t nan = 0, n = 0;
  for (double x : v) {
    if (std::isnan(x)) {
      ++nan;
      continue;
    }
    lo = std::min(lo, x), hi = std::max(hi, x), sum += x, ++n;
  }
  json j = {{"nan", nan}};
  if (n > 0) {
    j["min"] = lo, j["max"] = hi, j["mean"] = sum / double(n);
  } else {
    j["min"] = nullptr, j["max"] = nullptr, j["mean"] = nullptr;
  }
  return j;
}

// The nets of nets/ with their parameter names at their default configuration. A file matches a
// net when it holds exactly that net's keys (shapes may differ with the widths).
struct NetKeys {
  std::string name;
  nn::StateDict sd;
};
std::vector<NetKeys> known_nets() {
  Generator g(0);
  std::vector<NetKeys> out;
  out.push_back({"FashionCNN (nets/classifier.h)", nets::FashionCNN(&g).state_dict()});
  out.push_back({"FashionGAP (nets/classifier.h)", nets::FashionGAP(&g).state_dict()});
  out.push_back({"SaliencyDetector (nets/detector.h)", nets::SaliencyDetector(2, &g).state_dict()});
  for (bool bilinear : {false, true}) {
    nets::UNetConfig c;
    c.bilinear = bilinear;
    out.push_back(
        {std::string("UNet (nets/unet.h, bilinear=") + (bilinear ? "true" : "false") + ")",
         nets::UNet(c, &g).state_dict()});
  }
  out.push_back(
      {"DCGANGenerator (nets/dcgan.h)", nets::DCGANGenerator(100, 8, 1, &g).state_dict()});
  out.push_back(
      {"DCGANDiscriminator (nets/dcgan.h)", nets::DCGANDiscriminator(1, 8, &g).state_dict()});
  return out;
}

json match_net(const io::TensorMap& tensors) {
  for (const NetKeys& n : known_nets()) {
    if (n.sd.size() != tensors.size()) continue;
    bool same_keys = true, same_shapes = true;
    for (const auto& [k, t] : n.sd) {
      auto it = tensors.find(k);
      if (it == tensors.end()) {
        same_keys = false;
        break;
      }
      same_shapes = same_shapes && it->second.shape() == t.shape();
    }
    if (same_keys) return {{"net", n.name}, {"default_shapes", same_shapes}};
  }
  return nullptr;
}

// The header's entries as stored (dtype before widening, absolute byte ranges). Called after
// load_safetensors accepted the file, so the header is known to be well-formed.
json header_entries(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  unsigned char len[8];
  f.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  std::string text(n, '\0');
  f.read(text.data(), std::streamsize(n));
  json h = json::parse(text);
  h.erase("__metadata__");
  for (auto& [k, v] : h.items()) {
    v["data_offsets"][0] = v["data_offsets"][0].get<uint64_t>() + 8 + n;
    v["data_offsets"][1] = v["data_offsets"][1].get<uint64_t>() + 8 + n;
  }
  return h;
}

json inspect_safetensors(const InspectFlags& f) {
  const io::SafetensorsFile file = io::load_safetensors(f.file);
  const json entries = header_entries(f.file);
  json tensors = json::array();
  for (const auto& [name, t] : file.tensors) {
    const json& e = entries.at(name);
    json j = {{"name", name},
              {"dtype", e.at("dtype")},
              {"shape", t.shape()},
              {"bytes", e.at("data_offsets")}};
    j.update(stats(t));
    tensors.push_back(j);
  }
  json out = {{"file", f.file},
              {"format", "safetensors"},
              {"tensors", tensors},
              {"metadata", file.metadata},
              {"match", match_net(file.tensors)}};
  if (!f.tensor.empty()) {
    auto it = file.tensors.find(f.tensor);
    NABLA_CHECK(it != file.tensors.end(), "inspect: ", f.file, " holds no tensor '", f.tensor,
                "' (", file.tensors.size(), " tensors; run without --tensor to list them)");
    out["values"] = it->second.to_vector<double>();
  }
  return out;
}

json inspect_npy(const InspectFlags& f) {
  const Tensor t = load_npy(f.file);
  json out = {{"file", f.file},
              {"format", "npy"},
              {"dtype", dtype_name(t.dtype())},
              {"shape", t.shape()},
              {"order", "C"}};
  out.update(stats(t));
  if (!f.tensor.empty()) out["values"] = t.to_vector<double>();
  return out;
}

json inspect_png(const InspectFlags& f) {
  const data::PngInfo info = data::png_info(f.file);
  // Decode it too: a file whose header is fine but whose data is not must fail here as well.
  const Tensor px = data::load_png(f.file, info.channels == 1 || info.channels == 2 ? 1 : 3);
  json out = {{"file", f.file},        {"format", "png"},           {"width", info.width},
              {"height", info.height}, {"channels", info.channels}, {"bit_depth", info.bit_depth}};
  json s = stats(px);
  out["mean_8bit"] = s["mean"].is_null() ? json(nullptr) : json(s["mean"].get<double>() * 255);
  return out;
}

json inspect_idx(const InspectFlags& f) {
  const data::IdxArray a = data::read_idx(f.file);
  return {{"file", f.file},          {"format", "idx"}, {"gzip", first_bytes(f.file, 1) == "\x1f"},
          {"type", "unsigned byte"}, {"dims", a.dims},  {"bytes", a.data.size()}};
}

std::string num(const json& v) {
  if (v.is_null()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v.get<double>());
  return buf;
}

void print_text(const json& j) {
  const std::string fmt = j["format"];
  std::printf("%s: %s\n", j["file"].get<std::string>().c_str(), fmt.c_str());
  if (fmt == "safetensors") {
    std::printf("%-36s %-5s %-18s %-24s %11s %11s %11s %6s\n", "name", "dtype", "shape", "bytes",
                "min", "max", "mean", "NaN");
    for (const json& t : j["tensors"])
      std::printf("%-36s %-5s %-18s %-24s %11s %11s %11s %6lld\n",
                  t["name"].get<std::string>().c_str(), t["dtype"].get<std::string>().c_str(),
                  t["shape"].dump().c_str(),
                  ("[" + t["bytes"][0].dump() + ", " + t["bytes"][1].dump() + ")").c_str(),
                  num(t["min"]).c_str(), num(t["max"]).c_str(), num(t["mean"]).c_str(),
                  (long long)t["nan"].get<int64_t>());
    std::printf("metadata: %s\n", j["metadata"].empty() ? "(none)" : j["metadata"].dump().c_str());
    if (j["match"].is_null())
      std::printf("net: the keys match no net of nets/\n");
    else
      std::printf("net: the keys are those of %s%s\n", j["match"]["net"].get<std::string>().c_str(),
                  j["match"]["default_shapes"].get<bool>() ? ", at its default widths"
                                                           : " (other widths than the default)");
  } else if (fmt == "npy") {
    std::printf("dtype %s, shape %s, %s order, min %s, max %s, mean %s, NaN %lld\n",
                j["dtype"].get<std::string>().c_str(), j["shape"].dump().c_str(),
                j["order"].get<std::string>().c_str(), num(j["min"]).c_str(), num(j["max"]).c_str(),
                num(j["mean"]).c_str(), (long long)j["nan"].get<int64_t>());
  } else if (fmt == "png") {
    std::printf("%d x %d pixels (W x H), %d channel(s), %d bits per sample\n",
                j["width"].get<int>(), j["height"].get<int>(), j["channels"].get<int>(),
                j["bit_depth"].get<int>());
  } else {
    std::printf("%s IDX of %s, dims %s (%zu bytes of data)\n",
                j["gzip"].get<bool>() ? "gzipped" : "plain", j["type"].get<std::string>().c_str(),
                j["dims"].dump().c_str(), j["bytes"].get<size_t>());
  }
  if (j.contains("values")) {
    std::printf("values:");
    for (const json& v : j["values"]) std::printf(" %s", num(v).c_str());
    std::printf("\n");
  }
}

void run_inspect(const InspectFlags& f) {
  json report;
  switch (detect(f.file)) {
    case Format::Safetensors:
      report = inspect_safetensors(f);
      break;
    case Format::Npy:
      report = inspect_npy(f);
      break;
    case Format::Png:
      report = inspect_png(f);
      break;
    case Format::Idx:
      report = inspect_idx(f);
      break;
    case Format::Unknown:
      throw Error("inspect: " + f.file +
                  ": not a safetensors, .npy, PNG or IDX file (by its first bytes and its name)");
  }
  if (!f.tensor.empty() && !report.contains("values"))
    throw Error("inspect: " + f.file + ": --tensor applies to safetensors and .npy files");
  print_report(f.c, report, print_text);
}

}  // namespace

void register_inspect(CLI::App& app) {
  auto f = std::make_shared<InspectFlags>();
  CLI::App* cmd = app.add_subcommand(
      "inspect",
      "Show what a file holds, read with the engine's loaders: for .safetensors every tensor's\n"
      "dtype, shape, byte range, min/max/mean/NaN count, the metadata and which nabla net the\n"
      "keys belong to; for .npy dtype, shape, order and statistics; for PNG size, channels and\n"
      "bit depth; for IDX (plain or gzip) dims and type. A malformed file gives exit 1 and one\n"
      "line naming the file and the problem.");
  cmd->add_option("FILE", f->file, "the file to inspect")->required();
  cmd->add_option("--tensor", f->tensor,
                  "also print the values of this tensor (safetensors: its name; .npy: any name)");
  add_common_flags(cmd, f->c, kJson);
  cmd->callback([f] { run_inspect(*f); });
}

}  // namespace nabla::cli
