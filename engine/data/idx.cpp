// IDX read/write over zlib's gz* API (see idx.h for the format).
#include <nabla/data/idx.h>

#include <zlib.h>

#include <climits>
#include <filesystem>
#include <fstream>
#include <memory>

#include <nabla/error.h>
#include <nabla/tensor.h>

namespace nabla::data {

namespace {

constexpr uint8_t kTypeU8 = 0x08;
constexpr size_t kMaxDims = 4;
// gzread takes an unsigned length and returns an int: read in bounded chunks.
constexpr size_t kChunk = size_t(1) << 20;
constexpr size_t kMaxStep = size_t(64) << 20;

const char* idx_type_name(uint8_t t) {
  switch (t) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
  }
  return "unknown";
}

std::string hex_byte(uint8_t b) {
  const char* digits = "0123456789ABCDEF";
  return std::string("0x") + digits[b >> 4] + digits[b & 15];
}

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// zlib's message for the stream's error state, without the path prefix gzerror adds.
std::string zlib_message(gzFile f, const std::string& path) {
  int errnum = Z_OK;
  std::string msg = gzerror(f, &errnum);
  if (msg.starts_with(path + ": ")) msg.erase(0, path.size() + 2);
  return msg;
}

// " (gzip stream ends early)" when a short read came from a gzip stream cut short, else "".
std::string cut_note(gzFile f) {
  int errnum = Z_OK;
  gzerror(f, &errnum);
  return errnum == Z_BUF_ERROR ? " (gzip stream ends early)" : "";
}

// Reads up to n bytes into dst; returns how many arrived (fewer only at end of input). A corrupt
// gzip stream throws; a gzip stream cut short just ends early, like a short plain file.
size_t read_some(gzFile f, uint8_t* dst, size_t n, const std::string& path) {
  size_t got = 0;
  while (got < n) {
    const unsigned want = unsigned(std::min(n - got, kChunk));
    const int r = gzread(f, dst + got, want);
    NABLA_CHECK(r >= 0, "read_idx: ", path, ": read error: ", zlib_message(f, path));
    if (r == 0) break;
    got += size_t(r);
  }
  return got;
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  std::error_code ec;
  NABLA_CHECK(std::filesystem::exists(path, ec), "read_idx: ", path, ": no such file");
  NABLA_CHECK(std::filesystem::is_regular_file(path, ec), "read_idx: ", path,
              ": not a regular file");
  GzFile f(gzopen(path.c_str(), "rb"));
  NABLA_CHECK(f != nullptr, "read_idx: ", path, ": cannot open for reading");

  uint8_t head[4];
  const size_t got_head = read_some(f.get(), head, 4, path);
  NABLA_CHECK(got_head == 4, "read_idx: ", path, ": truncated header: expected 4 bytes, got ",
              got_head, cut_note(f.get()));
  NABLA_CHECK(head[0] == 0 && head[1] == 0, "read_idx: ", path,
              ": bad magic: expected the first two bytes 0x00 0x00, got ", hex_byte(head[0]), " ",
              hex_byte(head[1]), " (not an IDX file?)");
  NABLA_CHECK(head[2] == kTypeU8, "read_idx: ", path, ": unsupported element type ",
              hex_byte(head[2]), " (", idx_type_name(head[2]), "); only 0x08 (unsigned byte) is ",
              "supported");
  const size_t ndims = head[3];
  NABLA_CHECK(ndims >= 1 && ndims <= kMaxDims, "read_idx: ", path, ": expected 1 to ", kMaxDims,
              " dimensions, got ", ndims);

  uint8_t sizes[4 * kMaxDims];
  const size_t got_sizes = read_some(f.get(), sizes, 4 * ndims, path);
  NABLA_CHECK(got_sizes == 4 * ndims, "read_idx: ", path, ": truncated header: expected ",
              4 * ndims, " bytes of sizes, got ", got_sizes, cut_note(f.get()));
  IdxArray a;
  for (size_t d = 0; d < ndims; ++d) {
    const uint8_t* s = sizes + 4 * d;
    a.dims.push_back(int64_t(uint32_t(s[0]) << 24 | uint32_t(s[1]) << 16 | uint32_t(s[2]) << 8 |
                             uint32_t(s[3])));
  }
  int64_t total = 1;
  for (int64_t n : a.dims)
    NABLA_CHECK(!__builtin_mul_overflow(total, n, &total), "read_idx: ", path, ": sizes ",
                shape_str(a.dims), " overflow a 64-bit element count");

  // Grow as bytes arrive, so a header that claims more than the file holds fails as "truncated"
  // instead of allocating prod(dims) bytes up front: 1 MiB first, then doubling, in steps of at
  // most 64 MiB. (A first step of 64 MiB made every truncated input with large dims zero-fill
  // 64 MiB: 10 s per input under AddressSanitizer on a busy machine.)
  const size_t expected = size_t(total);
  size_t have = 0;
  while (have < expected) {
    const size_t step = std::min({expected - have, kMaxStep, std::max(kChunk, have)});
    a.data.resize(have + step);
    const size_t r = read_some(f.get(), a.data.data() + have, step, path);
    have += r;
    if (r < step) break;
  }
  NABLA_CHECK(have == expected, "read_idx: ", path, ": truncated data: sizes ", shape_str(a.dims),
              " need ", expected, " bytes, got ", have, cut_note(f.get()));
  a.data.resize(expected);
  uint8_t extra;
  NABLA_CHECK(read_some(f.get(), &extra, 1, path) == 0, "read_idx: ", path,
              ": trailing bytes after the ", expected, " data bytes of sizes ", shape_str(a.dims));
  return a;
}

void write_idx(const std::string& path, const IdxArray& a) {
  const size_t ndims = a.dims.size();
  NABLA_CHECK(ndims >= 1 && ndims <= kMaxDims, "write_idx: ", path, ": expected 1 to ", kMaxDims,
              " dimensions, got ", ndims);
  int64_t total = 1;
  for (int64_t d : a.dims) {
    NABLA_CHECK(d >= 0 && d <= int64_t(UINT32_MAX), "write_idx: ", path, ": size ", d, " in ",
                shape_str(a.dims), " does not fit an unsigned 32-bit field");
    NABLA_CHECK(!__builtin_mul_overflow(total, d, &total), "write_idx: ", path, ": sizes ",
                shape_str(a.dims), " overflow a 64-bit element count");
  }
  NABLA_CHECK(size_t(total) == a.data.size(), "write_idx: ", path, ": sizes ", shape_str(a.dims),
              " need ", total, " bytes, data has ", a.data.size());

  std::string bytes = {0, 0, char(kTypeU8), char(ndims)};
  for (int64_t d : a.dims)
    for (int shift = 24; shift >= 0; shift -= 8) bytes += char((uint64_t(d) >> shift) & 0xff);
  bytes.append(reinterpret_cast<const char*>(a.data.data()), a.data.size());

  const bool gz = path.size() >= 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  if (gz) {
    GzFile f(gzopen(path.c_str(), "wb"));
    NABLA_CHECK(f != nullptr, "write_idx: ", path, ": cannot open for writing");
    for (size_t off = 0; off < bytes.size(); off += kChunk) {
      const unsigned n = unsigned(std::min(bytes.size() - off, kChunk));
      NABLA_CHECK(gzwrite(f.get(), bytes.data() + off, n) == int(n), "write_idx: ", path,
                  ": write failed");
    }
    NABLA_CHECK(gzclose(f.release()) == Z_OK, "write_idx: ", path, ": write failed on close");
  } else {
    std::ofstream out(path, std::ios::binary);
    NABLA_CHECK(out.good(), "write_idx: ", path, ": cannot open for writing");
    out.write(bytes.data(), std::streamsize(bytes.size()));
    out.close();
    NABLA_CHECK(out.good(), "write_idx: ", path, ": write failed");
  }
}

}  // namespace nabla::data
