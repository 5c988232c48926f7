// NumPy .npy read/write (format versions 1.0, 2.0 and 3.0), little-endian, C order.
//
//   magic "\x93NUMPY", major, minor, header length (uint16 for 1.0, uint32 for 2.0/3.0),
//   then a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//   padded with spaces and a newline to a multiple of 64 bytes, then the raw data.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include <nabla/io/files.h>
#include <nabla/tensor.h>

namespace nabla {

namespace {
const char kMagic[] = "\x93NUMPY";

const char* descr_of(DType d) {
  switch (d) {
    case DType::Float32:
      return "<f4";
    case DType::Float64:
      return "<f8";
    case DType::Int64:
      return "<i8";
  }
  return "";
}

// The header as it goes into an error message: at most 200 characters of it.
std::string shown(const std::string& h) {
  return h.size() <= 200 ? h : h.substr(0, 200) + "... (" + std::to_string(h.size()) + " bytes)";
}

// Value of `key` in the header dict, as raw text up to the next top-level comma or brace.
std::string dict_value(const std::string& h, const std::string& key, const std::string& path) {
  size_t k = h.find("'" + key + "'");
  NABLA_CHECK(k != std::string::npos, "load_npy: ", path, ": header has no '", key,
              "': ", shown(h));
  size_t colon = h.find(':', k);
  NABLA_CHECK(colon != std::string::npos, "load_npy: ", path, ": malformed header: ", shown(h));
  size_t start = colon + 1;
  while (start < h.size() && h[start] == ' ') ++start;
  size_t end = start;
  if (start < h.size() && h[start] == '(') {
    end = h.find(')', start);
    NABLA_CHECK(end != std::string::npos, "load_npy: ", path, ": unterminated shape: ", shown(h));
    ++end;
  } else {
    while (end < h.size() && h[end] != ',' && h[end] != '}') ++end;
  }
  return h.substr(start, end - start);
}
}  // namespace

void save_npy(const std::string& path, const Tensor& t) {
  Tensor c = t.detach().to(Device::cpu()).contiguous();
  std::string shape = "(";
  for (size_t i = 0; i < c.shape().size(); ++i)
    shape += std::to_string(c.shape()[i]) +
             (c.shape().size() == 1 ? "," : (i + 1 < c.shape().size() ? ", " : ""));
  shape += ")";
  std::string header = std::string("{'descr': '") + descr_of(c.dtype()) +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  NABLA_CHECK(header.size() < 65536, "save_npy: header too long for ", t.str());
  const std::string tmp = io::temp_path_for(path);
  {
    std::ofstream f(tmp, std::ios::binary);
    NABLA_CHECK(f.good(), "save_npy: cannot write ", path, ": cannot create ", tmp);
    f.write(kMagic, 6);
    const char ver[2] = {1, 0};
    f.write(ver, 2);
    uint16_t len = uint16_t(header.size());
    const char len_le[2] = {char(len & 0xff), char(len >> 8)};
    f.write(len_le, 2);
    f.write(header.data(), std::streamsize(header.size()));
    f.write(static_cast<const char*>(c.raw_data()),
            std::streamsize(size_t(c.numel()) * dtype_size(c.dtype())));
    f.close();
    if (!f) {
      std::remove(tmp.c_str());
      throw Error("save_npy: cannot write " + path + ": write to " + tmp + " failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw Error("save_npy: cannot rename " + tmp + " to " + path + ": " + why);
  }
}

Tensor load_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  NABLA_CHECK(f.good(), "load_npy: cannot open ", path);
  char magic[8] = {};
  f.read(magic, 8);
  NABLA_CHECK(f.gcount() == 8 && std::memcmp(magic, kMagic, 6) == 0, "load_npy: ", path,
              " is not a .npy file (expected the magic string \\x93NUMPY)");
  int major = static_cast<unsigned char>(magic[6]);
  NABLA_CHECK(major >= 1 && major <= 3, "load_npy: ", path, ": unsupported format version ", major);
  uint32_t hlen = 0;
  unsigned char lb[4] = {};
  int nlen = major == 1 ? 2 : 4;
  f.read(reinterpret_cast<char*>(lb), nlen);
  NABLA_CHECK(f.gcount() == nlen, "load_npy: ", path, ": truncated before the header length");
  for (int i = nlen - 1; i >= 0; --i) hlen = (hlen << 8) | lb[i];
  NABLA_CHECK(hlen < (1u << 20), "load_npy: ", path, ": header length ", hlen, " is implausible");
  std::string h(hlen, '\0');
  f.read(h.data(), hlen);
  NABLA_CHECK(f.gcount() == std::streamsize(hlen), "load_npy: ", path,
              ": truncated inside the header (expected ", hlen, " bytes)");
  std::string descr = dict_value(h, "descr", path);
  std::string fortran = dict_value(h, "fortran_order", path);
  std::string shape_txt = dict_value(h, "shape", path);
  descr.erase(std::remove(descr.begin(), descr.end(), '\''), descr.end());
  DType dt;
  if (descr == "<f4")
    dt = DType::Float32;
  else if (descr == "<f8")
    dt = DType::Float64;
  else if (descr == "<i8")
    dt = DType::Int64;
  else
    throw Error("load_npy: " + path + ": dtype '" + shown(descr) +
                "' not supported (expected <f4, <f8 or <i8)");
  NABLA_CHECK(fortran == "False", "load_npy: ", path, ": Fortran-order arrays are not supported");
  NABLA_CHECK(shape_txt.size() >= 2 && shape_txt.front() == '(' && shape_txt.back() == ')',
              "load_npy: ", path, ": malformed shape ", shown(shape_txt));
  Shape shape;
  std::string inner = shape_txt.substr(1, shape_txt.size() - 2);
  size_t pos = 0;
  while (pos < inner.size()) {
    size_t comma = inner.find(',', pos);
    std::string tok =
        inner.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    tok.erase(std::remove(tok.begin(), tok.end(), ' '), tok.end());
    if (!tok.empty()) {
      int64_t d = 0;
      const auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), d);
      NABLA_CHECK(std::all_of(tok.begin(), tok.end(), ::isdigit), "load_npy: ", path,
                  ": malformed shape ", shown(shape_txt));
      NABLA_CHECK(ec == std::errc() && end == tok.data() + tok.size(), "load_npy: ", path,
                  ": dimension ", shown(tok), " of shape ", shown(shape_txt),
                  " does not fit in 64 bits");
      shape.push_back(d);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  // The data size is checked against what the file holds before anything is allocated.
  int64_t numel = 0;
  try {
    numel = shape_numel(shape);  // throws when a partial product overflows 64 bits
  } catch (const Error& e) {
    throw Error("load_npy: " + path + ": " + e.what());
  }
  uint64_t bytes = 0;
  NABLA_CHECK(!__builtin_mul_overflow(uint64_t(numel), uint64_t(dtype_size(dt)), &bytes),
              "load_npy: ", path, ": shape ", shape_str(shape), " needs more than 2^64 bytes");
  const std::streamoff data_start = f.tellg();
  f.seekg(0, std::ios::end);
  const std::streamoff file_end = f.tellg();
  f.seekg(data_start);
  NABLA_CHECK(data_start >= 0 && file_end >= data_start, "load_npy: ", path,
              ": cannot determine the file size");
  const uint64_t have = uint64_t(file_end - data_start);
  NABLA_CHECK(have >= bytes, "load_npy: ", path, ": truncated data: shape ", shape_str(shape),
              " of ", descr, " needs ", bytes, " bytes, the file has ", have, " after the header");
  Tensor t = empty(shape, dt);
  f.read(static_cast<char*>(t.raw_data()), std::streamsize(bytes));
  NABLA_CHECK(f.gcount() == std::streamsize(bytes), "load_npy: ", path, ": truncated data: shape ",
              shape_str(shape), " needs ", bytes, " bytes, file has ", f.gcount());
  return t;
}

}  // namespace nabla
