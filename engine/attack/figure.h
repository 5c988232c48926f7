// The attack figure, in the style of the panda/gibbon example (Goodfellow et al.): per image a
// row of original, perturbation (scaled to be seen, with its L-inf size), adversarial, each
// under the classifier's prediction and its softmax confidence (red where the attack flipped it);
// and its segmentation twin: per image the image, the perturbation, the adversarial image, the
// true mask and the predictions before and after, with the pixel accuracies.
#pragma once

#include <string>
#include <vector>

#include <nabla/nn/module.h>
#include <nabla/tensor.h>

namespace nabla::attack {

// requires: x and x_adv CPU [n, C, H, W] in [0, 1] of the same shape; net a classifier in eval
//   mode on dev (logits [n, K]); names one per class.
// ensures: the figure saved atomically at path; errors name the path.
void save_attack_figure(const std::string& path, nn::Module& net, const Tensor& x,
                        const Tensor& x_adv, const std::vector<std::string>& names, Device dev,
                        const std::string& title);

// requires: x and x_adv CPU [n, C, H, W] in [0, 1] of the same shape, masks int64 [n, H, W];
//   net a segmentation model in eval mode on dev (logits [n, K, H, W]); class_names one per class
//   (K); eps > 0 scales the perturbation (shown as 0.5 + (x_adv - x) / 2 eps).
// ensures: the panel saved atomically at path; errors name the path and the shapes.
void save_segmentation_attack_figure(const std::string& path, nn::Module& net, const Tensor& x,
                                     const Tensor& x_adv, const Tensor& masks,
                                     const std::vector<std::string>& class_names, double eps,
                                     Device dev, const std::string& title);

}  // namespace nabla::attack
