// Input-gradient interpretability: which pixels does a classifier's decision depend on?
//
// Notation: f the model (x [N, C, H, W] -> logits [N, K]), S_c(x) = f(x)[c] the pre-softmax
// score of class c, c_n the class explained for sample n (Options::classes, else the predicted
// class argmax f(x_n)), g = dS_c/dx from nabla::grad (no weight gradient is computed).
// A_k the activation of channel k of a layer chosen by its dotted module name ("conv2"), of
// size h x w; up(.) bilinear upsampling (align_corners = false) from h x w to H x W.
//
//   saliency           |g|, reduced over channels by the max (Simonyan et al.), or per channel
//   smoothgrad         (1/M) sum_m |dS_c/dx (x + eps_m)|, eps_m ~ N(0, (sigma (max x - min x))^2)
//                      per sample (Smilkov et al.: a Monte-Carlo estimate of the smoothed
//                      map); the draws depend on the seed and the image only, not on its place
//                      in the batch
//   integrated_grads   (x - x') * (1/m) sum_{k=1..m} dS_c/dx (x' + (k/m)(x - x')), baseline x'
//                      (zeros by default); summed over channels, signed; the attributions add
//                      up to S_c(x) - S_c(x') as m grows (completeness)
//   gradcam            up(ReLU(sum_k alpha_k A_k)), alpha_k = (1/hw) sum_ij dS_c/dA_k,ij
//   gradcam_pp         as gradcam with alpha_k = sum_ij relu(G_ij) a_ij,
//                      a_ij = G^2 / (2 G^2 + (sum_ab A_k,ab) G^3 + 1e-7), G = dS_c/dA_k
//                      (Chattopadhay et al., with exp(S_c) as the score; a = 0 where G = 0)
//   guided_backprop    g with every ReLU's backward replaced by  dx = dy [x > 0] [dy > 0]
//                      (Springenberg et al.), max |.| over channels
//   deconvnet          g with every ReLU's backward replaced by  dx = relu(dy) (Zeiler & Fergus),
//                      max |.| over channels
//   guided_gradcam     guided_backprop * gradcam, pixel by pixel
//   occlusion          for every placement P of a patch x patch square (stride `stride`, the last
//                      row and column placed flush with the border so every pixel is covered)
//                      filled with `fill`: d_P = s_c(x) - s_c(x with P filled); the map at a pixel
//                      is the mean of d_P over the placements covering it. s is the softmax
//                      probability (Options::occlusion_probability) or the logit
//   cam                sum_k W[c, k] A_k upsampled, for models ending in global average pooling
//                      then a Linear W (Zhou et al.); signed
//   class_model        gradient ascent arg max_I S_c(I) - lambda ||I||^2 from I = 0:
//                      I <- I + lr (dS_c/dI - 2 lambda I)
//   activation_max     the same ascent on mean_ij A_k,ij(I) for one channel k of one layer,
//                      from small seeded noise (a zero image gives many layers a dead start)
//   dense_saliency     |d l_seg / dx|, l_seg = mean over the chosen pixels of the per-pixel
//                      cross-entropy of a dense model (logits [N, K, H, W]); one backward
//
// Every method is batched: one forward/backward serves the whole batch (S = sum_n S_{c_n}(x_n)
// and each sample's gradient is its own, since samples do not interact in eval mode). Methods
// that multiply the batch (smoothgrad, integrated_grads, occlusion) process at most
// Options::max_batch rows per forward, which bounds their memory.
//
// Models (nn/model.h): every method takes an nn::Model, so a network (nn::Module), a plain
// callable, or a callable that exposes its module. Methods that look into a layer (gradcam,
// gradcam_pp, guided_gradcam, gradcam_raw, cam, activation_max) need the module: a plain
// callable gets an error naming the method. The model must be in eval mode (net.eval()): the
// methods run many forward passes and must not update batch-norm statistics or draw dropout
// masks. Maps come back float32 on the CPU, shaped
// [N, H, W] (or [N, C, H, W] with per_channel), whatever the model's device and dtype.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nabla/nn/model.h>
#include <nabla/nn/module.h>
#include <nabla/tensor.h>

namespace nabla::explain {

struct Options {
  Tensor classes;            // int64 [N]: the class explained per sample; undefined: predicted
  bool per_channel = false;  // gradient maps: keep [N, C, H, W] instead of max |.| over C
  int64_t max_batch = 256;   // rows per forward for smoothgrad, integrated_grads, occlusion
  // smoothgrad
  int64_t samples = 50;  // M, noise draws per image
  double sigma = 0.15;   // noise std as a fraction of each image's range (max x - min x)
  uint64_t seed = 0;     // smoothgrad noise (mixed with a hash of each image), activation_max
  // integrated_grads
  int64_t steps = 50;  // m, Riemann steps (right end points)
  Tensor baseline;     // x' shaped like x (or one sample [C, H, W]); undefined: zeros
  // gradcam, gradcam_pp, guided_gradcam, cam, activation_max: the dotted module name
  std::string layer;
  std::string fc = "fc";  // cam: the Linear after global average pooling
  // occlusion
  int64_t patch = 4, stride = 2;
  double fill = 0.0;
  bool occlusion_probability = true;  // softmax probability (true) or logit (false)
  // class_model, activation_max
  int64_t iterations = 200;
  double lr = 0.1, lambda = 0.01;
  int64_t channel = 0;  // activation_max
};

// ensures: int64 [N] on the CPU: argmax of model(x) per sample (no graph recorded).
Tensor predict(const nn::Model& model, const Tensor& x);

// requires: x float [N, C, H, W] on the model's device; opt.classes undefined or int64 [N]
//           with values in [0, K). Errors name the method and the shapes.
// ensures:  the maps described in the file comment, float32 CPU [N, H, W] (or [N, C, H, W]
//           with per_channel for saliency, smoothgrad, guided_backprop, deconvnet).
Tensor saliency(const nn::Model& model, const Tensor& x, const Options& opt = {});
Tensor smoothgrad(const nn::Model& model, const Tensor& x, const Options& opt = {});
Tensor integrated_gradients(const nn::Model& model, const Tensor& x, const Options& opt = {});
Tensor guided_backprop(const nn::Model& model, const Tensor& x, const Options& opt = {});
Tensor deconvnet(const nn::Model& model, const Tensor& x, const Options& opt = {});
Tensor occlusion(const nn::Model& model, const Tensor& x, const Options& opt = {});

// requires: a model with a module (model.module()), and opt.layer names a module below it whose
//           output is [N, k, h, w] (else an error listing the module names).
Tensor gradcam(const nn::Model& model, const Tensor& x, const Options& opt);
Tensor gradcam_pp(const nn::Model& model, const Tensor& x, const Options& opt);
Tensor guided_gradcam(const nn::Model& model, const Tensor& x, const Options& opt);
// requires: also opt.fc names a Linear with in_features = k, and model(x) equals
//           fc(global_avg_pool(layer output)) (checked: else an error saying the model does not
//           end in global average pooling).
Tensor cam(const nn::Model& model, const Tensor& x, const Options& opt);

// Grad-CAM at the layer's own resolution, before upsampling: float32 CPU [N, h, w].
// pp selects Grad-CAM++.
Tensor gradcam_raw(const nn::Model& model, const Tensor& x, const Options& opt, bool pp = false);

// requires: classes int64 [K'] on the CPU; input_shape [C, H, W]; opt.iterations >= 1.
// ensures:  images float32 CPU [K', C, H, W], one per class, by the ascent above (unclipped),
//           computed in the dtype of the model's parameters (float32 for a plain callable).
Tensor class_model(const nn::Model& model, const Tensor& classes, const Shape& input_shape,
                   const Options& opt, Device dev = Device::cpu());
// requires: a model with a module; opt.layer and 0 <= opt.channel < channels of that layer's
//           output.
// ensures:  one image float32 CPU [1, C, H, W] that drives that channel's mean activation up.
Tensor activation_max(const nn::Model& model, const Shape& input_shape, const Options& opt,
                      Device dev = Device::cpu());

// requires: model maps x [N, C, H, W] to logits [N, K, H', W']; target int64 [N, H', W'];
//           region undefined (every pixel) or a mask [N, H', W'] (nonzero = counted), with at
//           least one counted pixel per batch.
// ensures:  float32 CPU [N, H, W]: max over channels of |d l_seg / dx|.
Tensor dense_saliency(const nn::Model& model, const Tensor& x, const Tensor& target,
                      const Tensor& region = Tensor(), bool per_channel = false);

// The method names the CLI uses, and a dispatcher over the per-image methods above:
// saliency, smoothgrad, integrated-gradients, gradcam, gradcam++, guided-backprop,
// guided-gradcam, deconvnet, occlusion, cam. Unknown names throw listing the known ones.
const std::vector<std::string>& method_names();
Tensor explain(const std::string& method, const nn::Model& model, const Tensor& x,
               const Options& opt);

}  // namespace nabla::explain
