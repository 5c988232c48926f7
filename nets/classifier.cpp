// FashionCNN (see classifier.h).
#include <nets/classifier.h>

#include <nabla/error.h>
#include <nabla/io/safetensors.h>
#include <nabla/ops.h>
#include <nabla/ops/pool.h>

namespace nabla::nets {

FashionCNN::FashionCNN(Generator* gen) : nn::Module("FashionCNN") {
  conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(1, 32, 3, 1, 1, 1, 1, true, gen));
  conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(32, 64, 3, 1, 1, 1, 1, true, gen));
  fc1 = register_module("fc1", std::make_shared<nn::Linear>(64 * 7 * 7, 128, true, gen));
  fc2 = register_module("fc2", std::make_shared<nn::Linear>(128, kClasses, true, gen));
}

Tensor FashionCNN::forward(const Tensor& x) {
  NABLA_CHECK(x.dim() == 4 && x.size(1) == kChannels && x.size(2) == kSize && x.size(3) == kSize,
              "FashionCNN: expects images [N, 1, 28, 28], got ", shape_str(x.shape()));
  Tensor h = max_pool2d(relu((*conv1)(x)), 2);
  h = max_pool2d(relu((*conv2)(h)), 2);
  h = relu((*fc1)(h.flatten(1)));
  return (*fc2)(h);
}

FashionGAP::FashionGAP(Generator* gen) : nn::Module("FashionGAP") {
  features = register_module(
      "features", std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
                      std::make_shared<nn::Conv2d>(1, 32, 3, 1, 1, 1, 1, true, gen),
                      std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(2),
                      std::make_shared<nn::Conv2d>(32, 64, 3, 1, 1, 1, 1, true, gen),
                      std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(2),
                      std::make_shared<nn::Conv2d>(64, kFeatures, 3, 1, 1, 1, 1, true, gen),
                      std::make_shared<nn::ReLU>()}));
  fc = register_module("fc", std::make_shared<nn::Linear>(kFeatures, kClasses, true, gen));
}

Tensor FashionGAP::forward(const Tensor& x) {
  NABLA_CHECK(x.dim() == 4 && x.size(1) == kChannels && x.size(2) == kSize && x.size(3) == kSize,
              "FashionGAP: expects images [N, 1, 28, 28], got ", shape_str(x.shape()));
  return (*fc)(global_avg_pool2d((*features)(x)));
}

std::shared_ptr<nn::Module> make_classifier(const std::string& arch, Generator* gen) {
  if (arch == "fashioncnn") return std::make_shared<FashionCNN>(gen);
  if (arch == "gap") return std::make_shared<FashionGAP>(gen);
  throw Error("make_classifier: unknown architecture '" + arch + "' (fashioncnn or gap)");
}

std::string classifier_arch(const nn::StateDict& sd) {
  for (const char* arch : {"fashioncnn", "gap"}) {
    Generator gen(0);
    const nn::StateDict keys = make_classifier(arch, &gen)->state_dict();
    bool same = keys.size() == sd.size();
    for (auto a = keys.begin(), b = sd.begin(); same && a != keys.end(); ++a, ++b)
      same = a->first == b->first;
    if (same) return arch;
  }
  return "";
}

std::shared_ptr<nn::Module> load_classifier(const std::string& path, std::string* arch) {
  io::SafetensorsFile file = io::load_safetensors(path);
  // No exact match: load as FashionCNN anyway, so the error lists its missing and unexpected keys.
  std::string name = classifier_arch(file.tensors);
  if (name.empty()) name = "fashioncnn";
  auto net = make_classifier(name);
  try {
    net->load_state_dict(file.tensors);
  } catch (const Error& e) {
    throw Error(path + " does not hold a " + net->type_name() + " state dict: " + e.what());
  }
  net->eval();
  if (arch) *arch = name;
  return net;
}

}  // namespace nabla::nets
