// safetensors read/write and the atomic file writer of the io module (see safetensors.h).
#include <nabla/io/safetensors.h>

#include <nabla/io/files.h>

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

namespace nabla::io {

// The raw data is copied byte for byte between memory and file.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes little-endian");

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Python's safetensors refuses headers above 100 MB; so do we, before allocating one.
constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;

const char* file_dtype(DType d) {
  switch (d) {
    case DType::Float32:
      return "F32";
    case DType::Float64:
      return "F64";
    case DType::Int64:
      return "I64";
  }
  return "?";
}

// One tensor entry of a header, checked against the data region.
struct Entry {
  std::string name;
  std::string dtype;  // as in the file
  DType out = DType::Float32;
  size_t file_elem = 4;  // bytes per element in the file
  Shape shape;
  uint64_t begin = 0, end = 0;
};

// a * b, or UINT64_MAX when it overflows: a saturated byte count never equals a real span.
uint64_t mul_sat(uint64_t a, uint64_t b) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a)
    return std::numeric_limits<uint64_t>::max();
  return a * b;
}

bool is_uint_array(const json& j, size_t want_size) {
  if (!j.is_array() || (want_size && j.size() != want_size)) return false;
  return std::all_of(j.begin(), j.end(), [](const json& v) { return v.is_number_unsigned(); });
}

// Through concat, not "[" + std::to_string(b) + ...: GCC 12 warns (-Wrestrict, a known false
// positive) on a string literal plus a temporary std::string.
std::string fmt_offsets(uint64_t b, uint64_t e) {
  return detail::concat('[', b, ", ", e, ']');
}
std::string fmt_range(uint64_t b, uint64_t e) {  // half-open
  return detail::concat('[', b, ", ", e, ')');
}

// Text from the file as it goes into an error message: at most `max` characters.
std::string clip(const std::string& s, size_t max = 120) {
  return s.size() <= max ? s : s.substr(0, max) + "... (" + std::to_string(s.size()) + " bytes)";
}

// A header value as it goes into an error message. nlohmann's dump() recurses once per nesting
// level and copies the whole value, so untrusted JSON is never dumped: scalars are shown (strings
// clipped), arrays of scalars up to 8 elements, anything else by its type and size.
std::string describe(const json& v) {
  if (v.is_string()) return detail::concat('"', clip(v.get_ref<const std::string&>()), '"');
  if (v.is_primitive()) return v.dump();
  if (v.is_array() && v.size() <= 8 &&
      std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_primitive(); })) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out += ", ";
      out += describe(v[i]);
    }
    return out + "]";
  }
  return detail::concat("a JSON ", v.type_name(), " of ", v.size(), " element(s)");
}

}  // namespace

void check_json_depth(const std::string& what, const std::string& text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;  // the escaped character cannot end the string
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      NABLA_CHECK(++depth <= max_depth, what, ": the JSON nests deeper than ", max_depth,
                  " levels (at character ", i, ")");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

namespace {

Entry parse_entry(const std::string& path, const std::string& name, const json& v,
                  uint64_t data_len) {
  const std::string where = "load_safetensors: " + path + ": tensor '" + clip(name) + "'";
  NABLA_CHECK(v.is_object(), where,
              ": expected an object with dtype, shape and data_offsets, found ", describe(v));
  for (const char* key : {"dtype", "shape", "data_offsets"})
    NABLA_CHECK(v.contains(key), where, " has no \"", key, "\" field");
  const json& jd = v["dtype"];
  const json& js = v["shape"];
  const json& jo = v["data_offsets"];
  NABLA_CHECK(jd.is_string(), where, ": dtype must be a string, found ", describe(jd));
  NABLA_CHECK(is_uint_array(js, 0), where,
              ": shape must be an array of non-negative integers, found ", describe(js));
  NABLA_CHECK(is_uint_array(jo, 2), where,
              ": data_offsets must be two non-negative integers [begin, end], found ",
              describe(jo));

  Entry e;
  e.name = name;
  e.dtype = jd.get<std::string>();
  if (e.dtype == "F32") {
    e.out = DType::Float32, e.file_elem = 4;
  } else if (e.dtype == "F64") {
    e.out = DType::Float64, e.file_elem = 8;
  } else if (e.dtype == "I64") {
    e.out = DType::Int64, e.file_elem = 8;
  } else if (e.dtype == "F16" || e.dtype == "BF16") {
    e.out = DType::Float32, e.file_elem = 2;
  } else {
    throw Error(where + " has dtype " + clip(e.dtype) +
                ", which nabla does not read (supported: F32, F64, I64; F16 and BF16 are "
                "widened to F32)");
  }
  uint64_t numel = 1;
  // Every partial product must fit in int64, zero dimensions counted as 1: [2^62, 2^62, 0] holds
  // no element, but its strides would still overflow.
  int64_t partial = 1;
  for (const json& d : js) {
    const uint64_t n = d.get<uint64_t>();
    NABLA_CHECK(n <= uint64_t(std::numeric_limits<int64_t>::max()) &&
                    !__builtin_mul_overflow(partial, std::max<int64_t>(int64_t(n), 1), &partial),
                where, ": shape ", describe(js), " overflows a 64-bit element count");
    e.shape.push_back(int64_t(n));
    numel = mul_sat(numel, n);
  }
  e.begin = jo[0].get<uint64_t>();
  e.end = jo[1].get<uint64_t>();
  NABLA_CHECK(e.end >= e.begin, where, ": data_offsets ", fmt_offsets(e.begin, e.end),
              " end before they begin");
  NABLA_CHECK(e.end <= data_len, where, ": data_offsets ", fmt_offsets(e.begin, e.end),
              " run past the end of the data region, which is ", data_len,
              " bytes (is the file truncated?)");
  const uint64_t need = mul_sat(numel, e.file_elem);
  NABLA_CHECK(need == e.end - e.begin, where, ": shape ", shape_str(e.shape), " of dtype ", e.dtype,
              " needs ",
              need == std::numeric_limits<uint64_t>::max() ? std::string("more than 2^64")
                                                           : std::to_string(need),
              " bytes, but data_offsets ", fmt_offsets(e.begin, e.end), " span ", e.end - e.begin,
              " bytes");
  return e;
}

// Checks that the entries tile [0, data_len) exactly: no overlaps, no uncovered bytes.
void check_layout(const std::string& path, std::vector<Entry>& entries, uint64_t data_len) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0, covered = 0;
  const Entry* last = nullptr;  // the entry that ends at `cursor`
  std::string first_gap;
  for (const Entry& e : entries) {
    // An empty entry [x, x] overlaps nothing that ends at or before x.
    if (last && e.begin < cursor)
      throw Error("load_safetensors: " + path + ": tensors '" + clip(last->name) + "' " +
                  fmt_offsets(last->begin, last->end) + " and '" + clip(e.name) + "' " +
                  fmt_offsets(e.begin, e.end) + " overlap in the data region");
    if (e.begin > cursor && first_gap.empty())
      first_gap = "bytes " + fmt_range(cursor, e.begin) + " belong to no tensor";
    covered += e.end - e.begin;
    if (e.end >= cursor) cursor = e.end, last = &e;
  }
  if (covered != data_len) {
    if (first_gap.empty())
      first_gap = "bytes " + fmt_range(cursor, data_len) + " follow the last tensor";
    throw Error("load_safetensors: " + path + ": the data region is " + std::to_string(data_len) +
                " bytes but the entries cover " + std::to_string(covered) + " (" + first_gap + ")");
  }
}

// IEEE half and bfloat16 bit patterns to float.
float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h >> 15) << 31;
  const uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24, exact in float
    const float v = std::ldexp(float(mant), -24);
    return sign ? -v : v;
  }
  if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
}
float bf16_to_float(uint16_t h) {
  return std::bit_cast<float>(uint32_t(h) << 16);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& op,
                       const std::function<void(std::FILE*)>& fill) {
  const std::string tmp = temp_path_for(path);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  NABLA_CHECK(f != nullptr, op, ": cannot write ", path, ": cannot create ", tmp, ": ",
              std::strerror(errno));
  // Removes the temp file and throws; `path` itself has not been touched yet.
  auto fail = [&](const std::string& why) {
    if (f) std::fclose(f);
    std::remove(tmp.c_str());
    throw Error(op + ": cannot write " + path + ": " + why);
  };
  try {
    fill(f);
  } catch (const std::exception& e) {
    fail(e.what());
  } catch (...) {
    fail("the writer threw a non-standard exception");
  }
  if (std::ferror(f)) fail(std::string("write error: ") + std::strerror(errno));
  if (std::fflush(f) != 0) fail(std::string("flush failed: ") + std::strerror(errno));
  if (::fsync(::fileno(f)) != 0) fail(std::string("fsync failed: ") + std::strerror(errno));
  const int rc = std::fclose(f);
  f = nullptr;
  if (rc != 0) fail(std::string("close failed: ") + std::strerror(errno));
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) fail("cannot rename " + tmp + " over it: " + ec.message());
}

void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Everything that can be checked is checked before the temp file exists.
  std::vector<Tensor> data;
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    NABLA_CHECK(name != "__metadata__", "save_safetensors: ", path,
                ": \"__metadata__\" is reserved and cannot name a tensor");
    NABLA_CHECK(t.defined(), "save_safetensors: ", path, ": tensor '", name, "' is undefined");
    Tensor c = t.detach().to(Device::cpu()).contiguous();
    const uint64_t bytes = uint64_t(c.numel()) * dtype_size(c.dtype());
    header[name] = {{"dtype", file_dtype(c.dtype())},
                    {"shape", c.shape()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(std::move(c));
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {  // names that are not valid UTF-8
    throw Error("save_safetensors: " + path + ": cannot encode the header: " + e.what());
  }
  // Spaces after the JSON are part of the format; they make 8 + N a multiple of 8.
  text.append((8 - text.size() % 8) % 8, ' ');
  write_file_atomic(path, "save_safetensors", [&](std::FILE* f) {
    unsigned char len[8];
    for (int i = 0; i < 8; ++i)
      len[i] = static_cast<unsigned char>(uint64_t(text.size()) >> (8 * i));
    std::fwrite(len, 1, 8, f);
    std::fwrite(text.data(), 1, text.size(), f);
    for (const Tensor& c : data)
      if (c.numel() > 0) std::fwrite(c.raw_data(), dtype_size(c.dtype()), size_t(c.numel()), f);
  });
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  NABLA_CHECK(fs::exists(st), "load_safetensors: ", path, ": no such file");
  NABLA_CHECK(fs::is_regular_file(st), "load_safetensors: ", path, " is not a regular file");
  const uint64_t file_size = fs::file_size(path, ec);
  NABLA_CHECK(!ec, "load_safetensors: ", path, ": cannot read its size: ", ec.message());
  NABLA_CHECK(file_size >= 8, "load_safetensors: ", path, ": the file is ", file_size,
              " bytes, too short for the 8-byte header length");
  std::ifstream in(path, std::ios::binary);
  NABLA_CHECK(in.good(), "load_safetensors: ", path, ": cannot open: ", std::strerror(errno));
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  NABLA_CHECK(in.gcount() == 8, "load_safetensors: ", path, ": cannot read the header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  NABLA_CHECK(n <= file_size - 8, "load_safetensors: ", path, ": header length ", n,
              " is larger than the file allows (the file is ", file_size, " bytes, so at most ",
              file_size - 8, " bytes of header)");
  NABLA_CHECK(n <= kMaxHeaderBytes, "load_safetensors: ", path, ": header length ", n,
              " bytes exceeds the 100 MB limit");
  std::string text(n, '\0');
  in.read(text.data(), std::streamsize(n));
  NABLA_CHECK(uint64_t(in.gcount()) == n, "load_safetensors: ", path, ": cannot read the ", n,
              "-byte header");

  // A real header nests 3 deep ({"name": {"shape": [..]}}). nlohmann's parser is iterative, but
  // its dump() and comparisons recurse once per level, so deeper headers are refused unparsed.
  check_json_depth("load_safetensors: " + path + ": header", text, 64);
  json header;
  try {
    header = json::parse(text);
  } catch (const json::exception& e) {
    throw Error("load_safetensors: " + path +
                ": the header is not valid JSON: " + clip(e.what(), 300));
  }
  NABLA_CHECK(header.is_object(), "load_safetensors: ", path,
              ": the header must be a JSON object, found ", header.type_name());

  const uint64_t data_start = 8 + n, data_len = file_size - data_start;
  SafetensorsFile out;
  std::vector<Entry> entries;
  for (const auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      NABLA_CHECK(v.is_object(), "load_safetensors: ", path,
                  ": __metadata__ must be an object of strings, found ", describe(v));
      for (const auto& [k, s] : v.items()) {
        NABLA_CHECK(s.is_string(), "load_safetensors: ", path, ": __metadata__ value of '", clip(k),
                    "' must be a string, found ", describe(s));
        out.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, name, v, data_len));
  }
  check_layout(path, entries, data_len);

  // The tensors now account for every byte of the data region, so these allocations are bounded
  // by the file size.
  std::vector<uint16_t> half;
  for (const Entry& e : entries) {
    Tensor t = empty(e.shape, e.out);
    const uint64_t bytes = e.end - e.begin;
    in.seekg(std::streamoff(data_start + e.begin));
    char* dst = static_cast<char*>(t.raw_data());
    if (e.file_elem == 2) {
      half.resize(size_t(t.numel()));
      dst = reinterpret_cast<char*>(half.data());
    }
    in.read(dst, std::streamsize(bytes));
    NABLA_CHECK(in.good() && uint64_t(in.gcount()) == bytes, "load_safetensors: ", path,
                ": cannot read the ", bytes, " bytes of tensor '", clip(e.name), "'");
    if (e.file_elem == 2) {
      float* p = t.data<float>();
      for (size_t i = 0; i < half.size(); ++i)
        p[i] = e.dtype == "F16" ? half_to_float(half[i]) : bf16_to_float(half[i]);
    }
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

void copy_into(const TensorMap& dst, const TensorMap& src, const std::string& what) {
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, t] : dst) {
    NABLA_CHECK(t.defined(), "copy_into: destination tensor '", name, "' is undefined");
    auto it = src.find(name);
    if (it == src.end())
      missing.push_back(name);
    else if (!it->second.defined())
      mismatched.push_back(name + ": expected " + shape_str(t.shape()) + ", " + what +
                           " has an undefined tensor");
    else if (it->second.shape() != t.shape())
      mismatched.push_back(name + ": expected " + shape_str(t.shape()) + ", file has " +
                           shape_str(it->second.shape()));
  }
  for (const auto& kv : src)
    if (!dst.count(kv.first)) unexpected.push_back(kv.first);
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    // A wrong checkpoint can differ in hundreds of names: list the first few of each kind.
    constexpr size_t kShown = 20;
    std::ostringstream os;
    os << "copy_into: " << what << " does not match the destination";
    auto list = [&](const char* title, const std::vector<std::string>& v, const char* sep) {
      if (v.empty()) return;
      os << "\n  " << title << " (" << v.size() << "): ";
      for (size_t i = 0; i < v.size() && i < kShown; ++i) os << (i ? sep : "") << v[i];
      if (v.size() > kShown) os << sep << "... and " << v.size() - kShown << " more";
    };
    list("missing from the file", missing, ", ");
    list("unexpected in the file", unexpected, ", ");
    list("shape mismatches", mismatched, "; ");
    throw Error(os.str());
  }
  for (const auto& [name, t] : dst) copy_(t, src.at(name));
}

}  // namespace nabla::io
