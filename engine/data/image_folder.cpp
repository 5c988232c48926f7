// PNG loading through stb_image, and folder scans into Datasets (see image_folder.h).
//
// This file holds the engine's one STB_IMAGE_IMPLEMENTATION. Only the PNG decoder is compiled
// in: PNG is the engine's image format, and every other decoder would be untested attack
// surface for malformed files.
#include <nabla/data/image_folder.h>

#include <algorithm>
#include <filesystem>

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

// The header's width and height; throws naming the file when stb cannot parse it as a PNG.
void png_size(const char* fn, const std::string& path, int& h, int& w) {
  std::error_code ec;
  NABLA_CHECK(fs::exists(path, ec), fn, ": ", path, ": no such file");
  NABLA_CHECK(fs::is_regular_file(path, ec), fn, ": ", path, ": not a regular file");
  int comp = 0;
  NABLA_CHECK(stbi_info(path.c_str(), &w, &h, &comp), fn, ": ", path,
              ": not a PNG image (stb_image: ", stbi_failure_reason(), ")");
}

// Decodes path into dst as [channels, h, w] floats. Returns an error message instead of
// throwing, because it runs inside OpenMP loops, where an exception must not escape.
std::string decode_into(const char* fn, const std::string& path, int channels, int h, int w,
                        float* dst) {
  int fw = 0, fh = 0, comp = 0;
  stbi_uc* px = stbi_load(path.c_str(), &fw, &fh, &comp, channels);
  if (!px)
    return detail::concat(fn, ": ", path, ": cannot decode PNG (stb_image: ", stbi_failure_reason(),
                          ")");
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
    int mh = 0, mw = 0, comp = 0;
    png_size(fn, path, mh, mw);
    NABLA_CHECK(mh == h && mw == w, fn, ": ", path, " is ", mh, "x", mw, " (HxW) but its image ",
                image, " is ", h, "x", w);
    NABLA_CHECK(
        stbi_info(path.c_str(), &mw, &mh, &comp) && comp == 1 && !stbi_is_16_bit(path.c_str()), fn,
        ": ", path, ": a mask must be an 8-bit grayscale PNG of class indices (this one has ", comp,
        " channel(s)", stbi_is_16_bit(path.c_str()) ? ", 16 bits" : "", ")");
    stbi_uc* px = stbi_load(path.c_str(), &mw, &mh, &comp, 1);
    NABLA_CHECK(px != nullptr, fn, ": ", path,
                ": cannot decode PNG (stb_image: ", stbi_failure_reason(), ")");
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
