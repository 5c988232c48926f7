// The attack figure, in the style of the panda/gibbon example (Goodfellow et al.): per image a
// row of original, perturbation (scaled to be seen, with its L-inf size), adversarial, each
// under the classifier's prediction and its softmax confidence (red where the attack flipped it).
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

}  // namespace nabla::attack
