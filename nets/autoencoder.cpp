// Data and figures shared by the autoencoder recipes (see autoencoder.h).
#include <nets/autoencoder.h>

#include <algorithm>
#include <filesystem>

#include <nabla/autograd.h>
#include <nabla/error.h>
#include <nabla/gan/latent.h>
#include <nabla/io/image.h>
#include <nabla/ops.h>

namespace nabla::nets {

namespace fs = std::filesystem;

data::Dataset autoencoder_data(const std::string& command, const std::string& dir,
                               data::Split split, int64_t limit) {
  data::Dataset ds = data::load_mnist(dir, split, limit > 0 ? limit : -1);
  NABLA_CHECK(ds.size() >= 1 && ds.images.size(1) == 1 && ds.images.size(2) == 28 &&
                  ds.images.size(3) == 28,
              command, ": the networks take 1x28x28 images, the data has ",
              ds.size() >= 1 ? shape_str(ds.images.shape()) : std::string("no image"));
  return ds;
}

void save_reconstructions(const std::string& path, const Tensor& x, const Tensor& recon) {
  NABLA_CHECK(x.dim() == 4 && x.shape() == recon.shape() && x.size(0) >= 1, "save_reconstructions(",
              path, "): x ", shape_str(x.shape()), " and recon ", shape_str(recon.shape()),
              " must be the same [N >= 1, C, H, W]");
  const int64_t n = std::min<int64_t>(x.size(0), 32), row = std::min<int64_t>(n, 16);
  std::vector<Tensor> rows;
  for (int64_t i = 0; i < n; i += row) {
    const int64_t m = std::min(row, n - i);
    rows.push_back(x.narrow(0, i, m).to(Device::cpu()));
    rows.push_back(recon.narrow(0, i, m).to(Device::cpu()));
  }
  io::save_image_grid(path, concat(rows, 0).contiguous(), row);
}

nlohmann::json save_latent_figures(const std::string& dir, const Tensor& codes,
                                   const Tensor& labels,
                                   const std::vector<std::string>& class_names,
                                   const Tensor& prior_samples,
                                   const std::function<Tensor(const Tensor&)>& decode, int64_t n,
                                   const std::string& title) {
  const gan::LatentBox box = gan::latent_box(prior_samples, 0.01);
  const std::string latent = (fs::path(dir) / "latent.png").string();
  const std::string manifold = (fs::path(dir) / "manifold.png").string();
  gan::save_latent_scatter(latent, codes, labels, class_names, prior_samples, box, title);
  Tensor images;
  {
    NoGradGuard ng;
    images = decode(gan::latent_grid(box, n));
  }
  io::save_image_grid(manifold, images, n, 1);
  return {{"latent_png", latent},
          {"manifold", manifold},
          {"latent_box", {box.x0, box.x1, box.y0, box.y1}}};
}

}  // namespace nabla::nets
