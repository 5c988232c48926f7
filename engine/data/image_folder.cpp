// PNG loading through stb_image, and folder scans into Datasets (see image_folder.h).
//
// This file holds the engine's one STB_IMAGE_IMPLEMENTATION. Only the PNG decoder is compiled
// in: PNG is the engine's image format, and every other decoder would be untested attack
// surface for malformed files.
#include <nabla/data/image_folder.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include <nabla/error.h>

#define STBI_ONLY_PNG
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

namespace nabla::data {

namespace fs = std::filesystem;

namespace {

void check_channels(const char* fn, const std::string& path, int channels) {
  NABLA_CHECK(channels == 1 || channels == 3, fn, ": ", path,
              ": channels must be 1 (gray) or 3 (RGB), got ", channels);
}

// ---- PNG guards. stb_image 2.27 trusts a PNG's header and chunk lengths: a 25-byte file that
// claims 131072 x 1536 pixels makes it allocate gigabytes before anything is decoded, an IDAT
// length larger than the file makes it realloc up to 2 GiB, and a zero-length first IDAT passes a
// null pointer to memcpy. So the file is read into memory, its chunk layout is checked here, its
// size comes from stbi_info_from_memory and is capped, and only then does stb decode it.

constexpr uint64_t kDefaultMaxPngBytes = uint64_t(256) << 20;  // decoded bytes: 8192^2 RGBA
constexpr const char* kMaxPngEnv = "NABLA_PNG_MAX_BYTES";

// The cap on width x height x channels x bytes per sample: NABLA_PNG_MAX_BYTES when it is set to
// a positive integer below 2^31 (stb takes an int length), else 256 MiB.
uint64_t max_png_bytes_impl() {
  if (const char* e = std::getenv(kMaxPngEnv)) {
    uint64_t v = 0;
    const char* end = e + std::strlen(e);
    if (auto [p, ec] = std::from_chars(e, end, v);
        ec == std::errc() && p == end && v > 0 && v < (uint64_t(1) << 31))
      return v;
  }
  return kDefaultMaxPngBytes;
}

uint32_t be32(const unsigned char* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

// stb's reason for the last failure, never empty.
std::string stb_reason() {
  const char* r = stbi_failure_reason();
  return r && *r ? std::string(r) : std::string("stb_image gave no reason");
}

struct Png {
  std::vector<unsigned char> bytes;
  int w = 0, h = 0, comp = 0;
  bool is16 = false;
};

// Reads and checks `path`; returns an error message (empty on success) rather than throwing,
// because it also runs inside OpenMP loops. `channels` is what the caller will ask stb for (0 when
// only the header is wanted).
std::string read_png(const char* fn, const std::string& path, int channels, Png& png) {
  auto fail = [&](const std::string& why) { return detail::concat(fn, ": ", path, ": ", why); };
  std::error_code ec;
  if (!fs::exists(path, ec)) return fail("no such file");
  if (!fs::is_regular_file(path, ec)) return fail("not a regular file");
  const uint64_t size = fs::file_size(path, ec);
  if (ec) return fail("cannot read its size: " + ec.message());
  const uint64_t cap = max_png_bytes_impl();
  if (size > cap)
    return fail(detail::concat("the file is ", size, " bytes, over the ", cap,
                               "-byte PNG limit (raise it with ", kMaxPngEnv, "=<bytes>)"));
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return fail(std::string("cannot open: ") + std::strerror(errno));
  png.bytes.resize(size_t(size));
  const size_t got = size ? std::fread(png.bytes.data(), 1, size_t(size), f) : 0;
  std::fclose(f);
  if (got != size) return fail(detail::concat("read ", got, " of its ", size, " bytes"));

  // Signature, then chunks: length (big-endian, < 2^31), type, data, CRC. Every chunk must fit in
  // the file, IHDR must come first with 13 bytes, IDAT must not be empty.
  static const unsigned char kSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  const unsigned char* b = png.bytes.data();
  if (size < 8 || std::memcmp(b, kSig, 8) != 0) return fail("not a PNG image (no PNG signature)");
  uint64_t pos = 8;
  bool first = true, seen_idat = false, seen_iend = false;
  uint64_t idat_bytes = 0;
  while (pos < size && !seen_iend) {
    if (size - pos < 12)
      return fail(detail::concat("truncated chunk header at byte ", pos, " (the file is ", size,
                                 " bytes)"));
    const uint32_t len = be32(b + pos);
    const std::string type(reinterpret_cast<const char*>(b + pos + 4), 4);
    if (len > 0x7fffffffu || len > size - pos - 12)
      return fail(detail::concat(
          "chunk '", std::all_of(type.begin(), type.end(), ::isalpha) ? type : "?", "' at byte ",
          pos, " declares ", len, " bytes, but only ", size - pos - 12, " follow it"));
    if (first && (type != "IHDR" || len != 13))
      return fail("not a PNG image (the first chunk is not a 13-byte IHDR)");
    if (type == "IDAT") {
      if (len == 0) return fail(detail::concat("empty IDAT chunk at byte ", pos));
      seen_idat = true;
      idat_bytes += len;
    }
    seen_iend = type == "IEND";
    first = false;
    pos += 12 + uint64_t(len);
  }
  if (first) return fail("not a PNG image (no IHDR chunk)");
  if (!seen_idat) return fail("no image data (no IDAT chunk)");

  // Deflate expands at most 1032:1, so the IDAT data bounds the pixel data it can hold: a tiny file
  // that claims a huge image fails here instead of inside stb's inflate buffer.
  {
    const uint64_t w = be32(b + 16), h = be32(b + 20), depth = b[24], color = b[25];
    const uint64_t file_channels = color == 2 ? 3 : color == 4 ? 2 : color == 6 ? 4 : 1;
    if (w > 0 && h > 0 && w < (1u << 24) && h < (1u << 24) && depth > 0 && depth <= 16) {
      const uint64_t raw = h * ((w * file_channels * depth + 7) / 8);
      if (raw > idat_bytes * 1032 + 1024)
        return fail(detail::concat("the IDAT data (", idat_bytes, " bytes) cannot inflate to the ",
                                   raw, " bytes of a ", w, "x", h,
                                   " image (is the file truncated?)"));
    }
  }
  if (!stbi_info_from_memory(b, int(size), &png.w, &png.h, &png.comp))
    return fail("not a PNG image (stb_image: " + stb_reason() + ")");
  png.is16 = stbi_is_16_bit_from_memory(b, int(size)) != 0;
  const uint64_t samples = uint64_t(std::max(png.comp, channels)) * (png.is16 ? 2 : 1);
  const uint64_t need = uint64_t(png.w) * uint64_t(png.h) * samples;
  if (need > cap)
    return fail(detail::concat(png.w, "x", png.h, " pixels x ", samples, " bytes per pixel need ",
                               need, " bytes decoded, over the ", cap,
                               "-byte PNG limit (raise it with ", kMaxPngEnv, "=<bytes>)"));
  return {};
}

// The header's width and height; throws naming the file when it is not a PNG we accept.
void png_size(const char* fn, const std::string& path, int& h, int& w) {
  Png png;
  const std::string err = read_png(fn, path, 0, png);
  NABLA_CHECK(err.empty(), err);
  h = png.h, w = png.w;
}

// Decodes path into dst as [channels, h, w] floats. Returns an error message instead of
// throwing, because it runs inside OpenMP loops, where an exception must not escape.
std::string decode_into(const char* fn, const std::string& path, int channels, int h, int w,
                        float* dst) {
  Png png;
  if (std::string err = read_png(fn, path, channels, png); !err.empty()) return err;
  int fw = 0, fh = 0, comp = 0;
  stbi_uc* px =
      stbi_load_from_memory(png.bytes.data(), int(png.bytes.size()), &fw, &fh, &comp, channels);
  if (!px)
    return detail::concat(fn, ": ", path, ": cannot decode PNG (stb_image: ", stb_reason(), ")");
  if (fw != w || fh != h) {
    stbi_image_free(px);
    return detail::concat(fn, ": ", path, ": decoded size ", fh, "x", fw,
                          " differs from its header's ", h, "x", w);
  }
  // stb returns interleaved HWC; the engine is planar CHW.
  const size_t plane = size_t(h) * size_t(w);
  for (size_t p = 0; p < plane; ++p)
    for (int c = 0; c < channels; ++c)
      dst[size_t(c) * plane + p] = float(px[p * size_t(channels) + size_t(c)]) / 255.0f;
  stbi_image_free(px);
  return {};
}

// Entries of dir in name order: sub-folders or files (hidden names skipped).
std::vector<fs::path> list_dir(const char* fn, const fs::path& dir, bool want_dirs) {
  std::error_code ec;
  NABLA_CHECK(fs::is_directory(dir, ec), fn, ": ", dir.string(), ": no such directory");
  std::vector<fs::path> out;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.filename().string().starts_with(".")) continue;
    // Its own error code: a dangling link counts as a file, and loading it then names it.
    std::error_code entry_ec;
    if (it->is_directory(entry_ec) == want_dirs) out.push_back(p);
  }
  NABLA_CHECK(!ec, fn, ": ", dir.string(), ": cannot list: ", ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

// Every file into one [N, channels, H, W] tensor. Sizes are checked from the headers first, so
// a mismatch fails before anything is decoded, and the batch is allocated once.
Tensor load_all(const char* fn, const std::vector<std::string>& files, int channels) {
  int h0 = 0, w0 = 0;
  png_size(fn, files[0], h0, w0);
  for (size_t i = 1; i < files.size(); ++i) {
    int h = 0, w = 0;
    png_size(fn, files[i], h, w);
    NABLA_CHECK(h == h0 && w == w0, fn, ": ", files[i], " is ", h, "x", w, " (HxW) but ", files[0],
                " is ", h0, "x", w0, "; every image must have the same size");
  }
  const int64_t n = int64_t(files.size());
  Tensor images = empty({n, channels, h0, w0});
  float* dst = images.data<float>();
  const size_t per_image = size_t(channels) * size_t(h0) * size_t(w0);
  std::vector<std::string> errors(files.size());
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < n; ++i)
    errors[size_t(i)] =
        decode_into(fn, files[size_t(i)], channels, h0, w0, dst + size_t(i) * per_image);
  for (const std::string& e : errors) NABLA_CHECK(e.empty(), e);
  return images;
}

std::vector<std::string> files_of(const char* fn, const fs::path& dir) {
  std::vector<std::string> files;
  for (const fs::path& p : list_dir(fn, dir, false)) files.push_back(p.string());
  NABLA_CHECK(!files.empty(), fn, ": ", dir.string(), ": folder has no images");
  return files;
}

}  // namespace

PngInfo png_info(const std::string& path) {
  Png png;
  const std::string err = read_png("png_info", path, 0, png);
  NABLA_CHECK(err.empty(), err);
  PngInfo info;
  info.width = png.w, info.height = png.h, info.channels = png.comp;
  info.bit_depth = png.bytes[24];  // IHDR: width, height, then the bit depth (checked above)
  return info;
}

uint64_t png_max_bytes() {
  return max_png_bytes_impl();
}

Tensor load_png(const std::string& path, int channels) {
  check_channels("load_png", path, channels);
  int h = 0, w = 0;
  png_size("load_png", path, h, w);
  Tensor out = empty({channels, h, w});
  const std::string err = decode_into("load_png", path, channels, h, w, out.data<float>());
  NABLA_CHECK(err.empty(), err);
  return out;
}

Dataset load_image_folder(const std::string& root, int channels) {
  const char* fn = "load_image_folder";
  check_channels(fn, root, channels);
  const std::vector<fs::path> classes = list_dir(fn, root, true);
  NABLA_CHECK(!classes.empty(), fn, ": ", root, ": no class folders (expected root/<class>/*.png)");
  Dataset ds;
  std::vector<std::string> files;
  std::vector<int64_t> labels;
  for (size_t k = 0; k < classes.size(); ++k) {
    ds.class_names.push_back(classes[k].filename().string());
    for (std::string& f : files_of(fn, classes[k])) {
      files.push_back(std::move(f));
      labels.push_back(int64_t(k));
    }
  }
  ds.images = load_all(fn, files, channels);
  ds.labels = from_vector(labels, {int64_t(labels.size())});
  return ds;
}

Dataset load_images(const std::string& dir, int channels) {
  const char* fn = "load_images";
  check_channels(fn, dir, channels);
  const std::vector<std::string> files = files_of(fn, dir);
  Dataset ds;
  ds.images = load_all(fn, files, channels);
  ds.labels = zeros({int64_t(files.size())}, DType::Int64);
  // "a/b/" has an empty filename: name the domain after the last non-empty component.
  fs::path p = fs::path(dir);
  if (!p.has_filename()) p = p.parent_path();
  ds.class_names = {p.filename().string()};
  return ds;
}

namespace {

// The file names of dir's PNGs, in order, and their full paths.
std::vector<std::string> names_in(const char* fn, const fs::path& dir) {
  std::vector<std::string> names;
  for (const std::string& f : files_of(fn, dir)) names.push_back(fs::path(f).filename().string());
  return names;
}

// Both folders must hold the same names; the error names the first file without a partner.
void check_pairs(const char* fn, const fs::path& a, const std::vector<std::string>& na,
                 const fs::path& b, const std::vector<std::string>& nb, const char* what_b) {
  for (const std::string& n : na)
    NABLA_CHECK(std::binary_search(nb.begin(), nb.end(), n), fn, ": ", (b / n).string(),
                ": missing (the ", what_b, " of ", (a / n).string(), ")");
  for (const std::string& n : nb)
    NABLA_CHECK(std::binary_search(na.begin(), na.end(), n), fn, ": ", (b / n).string(),
                " has no partner ", (a / n).string());
}

std::vector<std::string> paths(const fs::path& dir, const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const std::string& n : names) out.push_back((dir / n).string());
  return out;
}

}  // namespace

std::shared_ptr<TensorSource> load_paired_folder(const std::string& root, int channels) {
  const char* fn = "load_paired_folder";
  check_channels(fn, root, channels);
  const fs::path a = fs::path(root) / "A", b = fs::path(root) / "B";
  const std::vector<std::string> na = names_in(fn, a), nb = names_in(fn, b);
  check_pairs(fn, a, na, b, nb, "partner in B");
  return std::make_shared<TensorSource>(Example{{"A", load_all(fn, paths(a, na), channels)},
                                                {"B", load_all(fn, paths(b, nb), channels)}},
                                        na);
}

std::shared_ptr<TensorSource> load_image_mask_folder(const std::string& root, int channels,
                                                     int64_t num_classes) {
  const char* fn = "load_image_mask_folder";
  check_channels(fn, root, channels);
  NABLA_CHECK(num_classes >= 1 && num_classes <= 256, fn, ": ", root,
              ": num_classes must be in [1, 256] (8-bit masks), got ", num_classes);
  const fs::path idir = fs::path(root) / "images", mdir = fs::path(root) / "masks";
  const std::vector<std::string> names = names_in(fn, idir), mnames = names_in(fn, mdir);
  check_pairs(fn, idir, names, mdir, mnames, "mask");
  Tensor images = load_all(fn, paths(idir, names), channels);
  const int64_t n = images.size(0), h = images.size(2), w = images.size(3);
  Tensor masks = empty({n, h, w}, DType::Int64);
  int64_t* dst = masks.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const std::string path = (mdir / names[size_t(i)]).string(),
                      image = (idir / names[size_t(i)]).string();
    Png png;
    const std::string err = read_png(fn, path, 1, png);
    NABLA_CHECK(err.empty(), err);
    NABLA_CHECK(png.h == h && png.w == w, fn, ": ", path, " is ", png.h, "x", png.w,
                " (HxW) but its image ", image, " is ", h, "x", w);
    NABLA_CHECK(png.comp == 1 && !png.is16, fn, ": ", path,
                ": a mask must be an 8-bit grayscale PNG of class indices (this one has ", png.comp,
                " channel(s)", png.is16 ? ", 16 bits" : "", ")");
    int mw = 0, mh = 0, comp = 0;
    stbi_uc* px =
        stbi_load_from_memory(png.bytes.data(), int(png.bytes.size()), &mw, &mh, &comp, 1);
    NABLA_CHECK(px != nullptr, fn, ": ", path, ": cannot decode PNG (stb_image: ", stb_reason(),
                ")");
    if (mw != w || mh != h) {
      stbi_image_free(px);
      throw Error(detail::concat(fn, ": ", path, ": decoded size ", mh, "x", mw,
                                 " differs from its header's ", h, "x", w));
    }
    int64_t* m = dst + i * h * w;
    int64_t bad = -1;
    for (int64_t p = 0; p < h * w; ++p) {
      m[p] = px[p];
      if (bad < 0 && m[p] >= num_classes) bad = p;
    }
    stbi_image_free(px);
    NABLA_CHECK(bad < 0, fn, ": ", path, ": pixel (row ", bad / w, ", col ", bad % w,
                ") holds class ", bad < 0 ? 0 : m[bad], ", outside [0, ", num_classes, ")");
  }
  return std::make_shared<TensorSource>(Example{{"image", images}, {"mask", masks}}, names);
}

}  // namespace nabla::data
