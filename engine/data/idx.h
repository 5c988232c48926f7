// The IDX file format of MNIST and Fashion-MNIST, read and written as raw bytes.
//
//   bytes 0-1  0x00 0x00
//   byte  2    element type: 0x08 = unsigned byte (the only one supported), 0x09 signed byte,
//              0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
//   byte  3    ndims (1..4 here)
//   then       ndims big-endian uint32 sizes, then prod(sizes) elements in row-major order.
//
// Files may be gzipped or plain: zlib's gzread reads both transparently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nabla::data {

// A u8 IDX array: dims (outermost first) and the row-major bytes.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};

// requires: path names an IDX file of unsigned bytes with 1 to 4 dims, gzipped or plain.
// ensures: the dims and exactly prod(dims) data bytes. Throws nabla::Error naming the path for a
//   missing or unreadable file, bad magic, an element type other than u8 (naming the type found),
//   ndims 0 or > 4, sizes whose product overflows, truncated data (expected N bytes, got M) and
//   trailing bytes after the data. Memory grows with the bytes actually read (64 MiB steps),
//   so a header that claims huge sizes cannot make it allocate them.
IdxArray read_idx(const std::string& path);

// requires: 1 <= a.dims.size() <= 4, every dim in [0, 2^32), prod(dims) == a.data.size().
// ensures: writes a u8 IDX file, gzip-compressed when path ends in ".gz", plain otherwise.
//   Throws nabla::Error naming the path when a is malformed or the file cannot be written.
void write_idx(const std::string& path, const IdxArray& a);

}  // namespace nabla::data
