// Sample grids (see samples.h).
#include <nabla/gan/samples.h>
#include <nabla/io/files.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>

#include <nabla/error.h>
#include <nabla/io/image.h>
#include <nabla/ops.h>

namespace nabla::gan {

namespace fs = std::filesystem;

namespace {

std::string epoch_name(int64_t epoch, const char* ext) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "epoch_%03lld.%s", (long long)epoch, ext);
  return buf;
}

// [-1, 1] -> [0, 1] for the PNG.
Tensor to_unit(const Tensor& x) {
  return mul(add(x.detach(), 1.0), 0.5);
}

}  // namespace

std::string save_epoch_samples(const std::string& dir, int64_t epoch, const Tensor& images,
                               int64_t nrow) {
  NABLA_CHECK(images.defined() && images.dim() == 4 && images.size(0) >= 1 &&
                  (images.size(1) == 1 || images.size(1) == 3),
              "save_epoch_samples: images ",
              images.defined() ? shape_str(images.shape()) : "undefined",
              " must be [N, 1 or 3, H, W]");
  NABLA_CHECK(epoch >= 0, "save_epoch_samples: epoch ", epoch, " must be >= 0");
  nabla::io::create_dirs(dir, "the sample folder");
  const std::string png = (fs::path(dir) / epoch_name(epoch, "png")).string();
  io::save_image_grid(png, to_unit(images), nrow);
  save_npy((fs::path(dir) / epoch_name(epoch, "npy")).string(),
           images.detach().to(Device::cpu()).to(DType::Float32).contiguous());
  return png;
}

std::string save_epoch_strip(const std::string& dir, int64_t per_epoch) {
  NABLA_CHECK(per_epoch >= 1, "save_epoch_strip: per_epoch ", per_epoch, " must be >= 1");
  std::map<int64_t, fs::path> files;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      long long epoch = 0;
      char tail[8] = {0};
      if (std::sscanf(name.c_str(), "epoch_%lld.%7s", &epoch, tail) == 2 &&
          std::string(tail) == "npy")
        files[epoch] = e.path();
    }
  NABLA_CHECK(!files.empty(), "save_epoch_strip: no epoch_<e>.npy in ", dir);
  std::vector<Tensor> rows;
  int64_t k = 0;
  fs::path first;
  for (const auto& [epoch, path] : files) {
    Tensor x = load_npy(path.string());
    NABLA_CHECK(x.dim() == 4 && (x.size(1) == 1 || x.size(1) == 3),
                "save_epoch_strip: ", path.string(), " holds ", shape_str(x.shape()),
                ", expected [N, 1 or 3, H, W]");
    if (rows.empty()) {
      k = std::min(per_epoch, x.size(0));
      first = path;
    }
    NABLA_CHECK(x.size(0) >= k, "save_epoch_strip: ", path.string(), " holds ",
                shape_str(x.shape()), ", fewer than the ", k, " samples of ", first.string());
    Tensor row = x.narrow(0, 0, k);
    if (!rows.empty()) {
      Shape a = rows.front().shape(), b = row.shape();
      NABLA_CHECK(a == b, "save_epoch_strip: ", path.string(), " holds ", shape_str(x.shape()),
                  " but ", first.string(), " gave rows of ", shape_str(a));
    }
    rows.push_back(row);
  }
  const std::string png = (fs::path(dir) / "epochs.png").string();
  io::save_image_grid(png, to_unit(concat(rows, 0)), k);
  return png;
}

Tensor interpolate_latents(const Tensor& a, const Tensor& b, int64_t steps) {
  NABLA_CHECK(
      a.defined() && b.defined() && a.shape() == b.shape() && a.dim() >= 1 && a.size(0) >= 1,
      "interpolate_latents: a ", a.defined() ? shape_str(a.shape()) : "undefined", " and b ",
      b.defined() ? shape_str(b.shape()) : "undefined", " must have the same shape [R, ...]");
  NABLA_CHECK(steps >= 2, "interpolate_latents: steps ", steps, " must be >= 2");
  std::vector<Tensor> out;
  for (int64_t r = 0; r < a.size(0); ++r) {
    Tensor ar = a.narrow(0, r, 1), br = b.narrow(0, r, 1);
    for (int64_t s = 0; s < steps; ++s) {
      const double t = double(s) / double(steps - 1);
      out.push_back(add(mul(ar, 1.0 - t), mul(br, t)));
    }
  }
  return concat(out, 0);
}

}  // namespace nabla::gan
