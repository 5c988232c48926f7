// Latent spaces of the autoencoders (AAE, VAE): the priors an adversarial autoencoder matches its
// codes to, and the pictures of a 2-D latent space.
//
//   priors (Makhzani et al. 2015, "Adversarial Autoencoders", section 2 and figures 2-4; d = 2
//   for the mixture and the swiss roll)
//     gaussian    z ~ N(0, I_d)
//     mixture10   component k uniform in 0..9 (or the label), a ~ N(0, 0.5^2), b ~ N(0, 0.05^2),
//                 z = R(2 pi k / 10) (1.4 + a, b): ten elongated Gaussians on a circle of
//                 radius 1.4, component k along the angle 2 pi k / 10 (standard deviations 0.5
//                 and 0.05: the widths of the paper's figure)
//     swissroll   u ~ U(0, 1) (label k: u ~ U(k / 10, (k + 1) / 10)), r = 3 sqrt(u),
//                 theta = 4 pi sqrt(u), z = r (cos theta, sin theta): two turns of a spiral out
//                 to radius 3, whose arc is cut into ten segments of equal probability
//   moments (what the tests check): gaussian mean 0, covariance I; mixture10 mean 0, covariance
//   (1.4^2 + 0.5^2 + 0.05^2) / 2 I = 1.10625 I (ten rotations of diag(1.96 + 0.25, 0.0025)
//   average to half its trace); swissroll E[|z|^2] = 9 E[u] = 4.5.
//
//   save_latent_scatter  codes [N, 2] coloured by class over samples of the prior in light grey,
//                        equal scales on both axes, ticks, a legend of the class names
//   latent_box           the box the pictures span: per axis the q and 1 - q quantiles of the
//                        given points, widened by 5 % on each side
//   latent_grid          n x n points spanning a box, row-major with the top row at the highest
//                        z_2 (so a decoded grid has the scatter's orientation): the manifold
//                        figure is decode(latent_grid(...)) laid out n per row
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nabla/random.h>
#include <nabla/tensor.h>

namespace nabla::gan {

enum class Prior { Gaussian, Mixture10, SwissRoll };
constexpr int64_t kPriorClasses = 10;  // components of mixture10, segments of swissroll

const char* prior_name(Prior p);
std::vector<std::string> prior_names();
// requires: a name of prior_names() (else nabla::Error listing them).
Prior prior_from_name(const std::string& name);

// requires: n >= 1, d >= 1 (d == 2 for mixture10 and swissroll); labels undefined or int64 [n]
//   in [0, 10) (not for gaussian, which has no components: nabla::Error).
// ensures: float32 [n, d] on the CPU drawn from gen as above; with labels, sample i comes from
//   component (segment) labels[i]; without, the component is drawn uniformly from gen.
Tensor sample_prior(Prior p, int64_t n, int64_t d, Generator& gen, const Tensor& labels = Tensor());

struct LatentBox {
  double x0 = -1, x1 = 1, y0 = -1, y1 = 1;
};

// requires: points float [N, 2] with N >= 1, 0 <= q < 0.5.
// ensures: the box above (a degenerate axis is widened to +-1 around its value).
LatentBox latent_box(const Tensor& points, double q = 0.01);

// requires: n >= 2. ensures: float32 [n * n, 2] on the CPU as above.
Tensor latent_grid(const LatentBox& box, int64_t n);

// requires: codes float [N, 2]; labels int64 [N] in [0, class_names.size()); background
//   undefined or float [M, 2]; box as latent_box gives it.
// ensures: an RGB PNG at path (atomic) of about 640 x 520 pixels: the background points in
//   light grey, then the codes as dots of palette_color(label), inside `box` made square;
//   points outside the box are left out. Errors name the path and the shapes.
void save_latent_scatter(const std::string& path, const Tensor& codes, const Tensor& labels,
                         const std::vector<std::string>& class_names, const Tensor& background,
                         const LatentBox& box, const std::string& title);

}  // namespace nabla::gan
