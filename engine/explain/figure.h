// Figures of explanations: the row label of an explained image, and the comparison figure that
// shows one class through four lenses (original, guided backprop, Grad-CAM, guided Grad-CAM,
// occlusion), after the comparison figure of Selvaraju et al. (Grad-CAM, 2017).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <nabla/nn/module.h>
#include <nabla/tensor.h>

namespace nabla::explain {

// ensures: "#index\nexplains: <class>\npred: <class>\ntrue: <class>", classes by name where
//   names has them, else by number.
std::string row_label(const std::vector<std::string>& names, int64_t index, int64_t explained,
                      int64_t pred, int64_t truth);

// requires: x CPU [n, C, H, W] in [0, 1]; labels int64 [n]; classes int64 [n] or undefined (the
//   predicted classes); net a classifier in eval mode on dev with a module named `layer`.
// ensures: the comparison figure at path (Grad-CAM at `layer`; guided Grad-CAM is the product of
//   the guided backprop and Grad-CAM maps). Returns {"figure", "layer", "classes", "predicted"}.
nlohmann::json save_comparison_figure(const std::string& path, nn::Module& net,
                                      const std::string& layer, const Tensor& x,
                                      const Tensor& labels, const std::vector<std::string>& names,
                                      const Tensor& classes, Device dev);

}  // namespace nabla::explain
