// CycleGAN's and pix2pix's networks (see image2image.h).
#include <nets/image2image.h>

#include <algorithm>
#include <set>
#include <sstream>

#include <nabla/error.h>
#include <nabla/io/safetensors.h>
#include <nabla/nn/init.h>
#include <nabla/nn/padding.h>
#include <nabla/ops.h>

namespace nabla::nets {

using nn::make;
using ModuleList = std::vector<std::shared_ptr<nn::Module>>;

Norm parse_norm(const std::string& name) {
  if (name == "batch") return Norm::Batch;
  if (name == "instance") return Norm::Instance;
  throw Error("unknown norm '" + name + "': expected batch or instance");
}

const char* norm_name(Norm norm) {
  return norm == Norm::Batch ? "batch" : "instance";
}

namespace {

std::shared_ptr<nn::Module> norm_layer(Norm norm, int64_t c) {
  if (norm == Norm::Batch) return make<nn::BatchNorm2d>(c);
  return make<nn::InstanceNorm2d>(c, 1e-5, /*affine=*/false);
}

std::shared_ptr<nn::Conv2d> conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad,
                                 bool bias, Generator* gen) {
  return make<nn::Conv2d>(in, out, k, stride, pad, 1, 1, bias, gen);
}

std::shared_ptr<nn::ConvTranspose2d> convt(int64_t in, int64_t out, int64_t k, int64_t stride,
                                           int64_t pad, int64_t output_padding, bool bias,
                                           Generator* gen) {
  return make<nn::ConvTranspose2d>(in, out, k, stride, pad, output_padding, 1, bias, 1, gen);
}

void check_image(const char* net, const Tensor& x, int64_t channels, int64_t multiple,
                 int64_t min_size) {
  NABLA_CHECK(x.dim() == 4 && x.size(1) == channels, net, ": x ", shape_str(x.shape()),
              " must be [N, ", channels, ", H, W]");
  NABLA_CHECK(x.size(2) % multiple == 0 && x.size(3) % multiple == 0 && x.size(2) >= min_size &&
                  x.size(3) >= min_size,
              net, ": x ", shape_str(x.shape()), " needs H and W multiples of ", multiple,
              " and at least ", min_size);
}

}  // namespace

// ---------------------------------------------------------------- ResnetGenerator
ResnetBlock::ResnetBlock(int64_t dim, const std::string& padding_type, Norm norm, bool use_dropout,
                         bool use_bias, Generator* gen)
    : Module("ResnetBlock") {
  NABLA_CHECK(dim >= 1, "ResnetBlock: dim ", dim, " must be >= 1");
  NABLA_CHECK(padding_type == "reflect" || padding_type == "replicate" || padding_type == "zero",
              "ResnetBlock: padding_type '", padding_type,
              "' is not one of reflect, replicate, zero");
  ModuleList layers;
  const int64_t p = padding_type == "zero" ? 1 : 0;
  auto padding = [&] {
    if (padding_type == "reflect") layers.push_back(make<nn::ReflectionPad2d>(1));
    if (padding_type == "replicate") layers.push_back(make<nn::ReplicationPad2d>(1));
  };
  padding();
  layers.push_back(conv(dim, dim, 3, 1, p, use_bias, gen));
  layers.push_back(norm_layer(norm, dim));
  layers.push_back(make<nn::ReLU>());
  if (use_dropout) layers.push_back(make<nn::Dropout>(0.5));
  padding();
  layers.push_back(conv(dim, dim, 3, 1, p, use_bias, gen));
  layers.push_back(norm_layer(norm, dim));
  conv_block = register_module("conv_block", std::make_shared<nn::Sequential>(layers));
}

Tensor ResnetBlock::forward(const Tensor& x) {
  return add(x, (*conv_block)(x));
}

ResnetGenerator::ResnetGenerator(int64_t input_nc_, int64_t output_nc_, int64_t ngf_, Norm norm_,
                                 bool use_dropout_, int64_t n_blocks_,
                                 const std::string& padding_type_, Generator* gen)
    : Module("ResnetGenerator"),
      input_nc(input_nc_),
      output_nc(output_nc_),
      ngf(ngf_),
      n_blocks(n_blocks_),
      norm(norm_),
      use_dropout(use_dropout_),
      padding_type(padding_type_) {
  NABLA_CHECK(input_nc >= 1 && output_nc >= 1 && ngf >= 1 && n_blocks >= 0,
              "ResnetGenerator: input_nc ", input_nc, ", output_nc ", output_nc, ", ngf ", ngf,
              " must be >= 1 and n_blocks ", n_blocks, " >= 0");
  const bool use_bias = norm == Norm::Instance;
  ModuleList layers = {make<nn::ReflectionPad2d>(3), conv(input_nc, ngf, 7, 1, 0, use_bias, gen),
                       norm_layer(norm, ngf), make<nn::ReLU>()};
  for (int64_t mult : {1, 2}) {
    layers.push_back(conv(ngf * mult, ngf * mult * 2, 3, 2, 1, use_bias, gen));
    layers.push_back(norm_layer(norm, ngf * mult * 2));
    layers.push_back(make<nn::ReLU>());
  }
  for (int64_t i = 0; i < n_blocks; ++i)
    layers.push_back(make<ResnetBlock>(ngf * 4, padding_type, norm, use_dropout, use_bias, gen));
  for (int64_t mult : {4, 2}) {
    layers.push_back(convt(ngf * mult, ngf * mult / 2, 3, 2, 1, 1, use_bias, gen));
    layers.push_back(norm_layer(norm, ngf * mult / 2));
    layers.push_back(make<nn::ReLU>());
  }
  layers.push_back(make<nn::ReflectionPad2d>(3));
  layers.push_back(conv(ngf, output_nc, 7, 1, 0, /*bias=*/true, gen));
  layers.push_back(make<nn::Tanh>());
  model = register_module("model", std::make_shared<nn::Sequential>(layers));
  init_weights(*this, 0.02, gen);
}

Tensor ResnetGenerator::forward(const Tensor& x) {
  check_image("ResnetGenerator", x, input_nc, 4, 8);
  return (*model)(x);
}

// ---------------------------------------------------------------- UnetGenerator
UnetSkipConnectionBlock::UnetSkipConnectionBlock(int64_t outer_nc, int64_t inner_nc,
                                                 int64_t input_nc,
                                                 std::shared_ptr<nn::Module> submodule,
                                                 bool outermost_, bool innermost, Norm norm,
                                                 bool use_dropout, Generator* gen)
    : Module("UnetSkipConnectionBlock"), outermost(outermost_) {
  if (input_nc == -1) input_nc = outer_nc;
  NABLA_CHECK(outer_nc >= 1 && inner_nc >= 1 && input_nc >= 1 && !(outermost && innermost) &&
                  (innermost || submodule),
              "UnetSkipConnectionBlock: outer_nc ", outer_nc, ", inner_nc ", inner_nc,
              ", input_nc ", input_nc, " must be >= 1, with a submodule unless innermost");
  const bool use_bias = norm == Norm::Instance;
  auto downconv = conv(input_nc, inner_nc, 4, 2, 1, use_bias, gen);
  ModuleList layers;
  if (outermost) {
    layers = {downconv, submodule, make<nn::ReLU>(),
              convt(inner_nc * 2, outer_nc, 4, 2, 1, 0, /*bias=*/true, gen), make<nn::Tanh>()};
  } else if (innermost) {
    layers = {make<nn::LeakyReLU>(0.2), downconv, make<nn::ReLU>(),
              convt(inner_nc, outer_nc, 4, 2, 1, 0, use_bias, gen), norm_layer(norm, outer_nc)};
  } else {
    layers = {make<nn::LeakyReLU>(0.2),   downconv,
              norm_layer(norm, inner_nc), submodule,
              make<nn::ReLU>(),           convt(inner_nc * 2, outer_nc, 4, 2, 1, 0, use_bias, gen),
              norm_layer(norm, outer_nc)};
    if (use_dropout) layers.push_back(make<nn::Dropout>(0.5));
  }
  model = register_module("model", std::make_shared<nn::Sequential>(layers));
}

Tensor UnetSkipConnectionBlock::forward(const Tensor& x) {
  if (outermost) return (*model)(x);
  return concat({x, (*model)(x)}, 1);
}

UnetGenerator::UnetGenerator(int64_t input_nc_, int64_t output_nc_, int64_t num_downs_,
                             int64_t ngf_, Norm norm_, bool use_dropout_, Generator* gen)
    : Module("UnetGenerator"),
      input_nc(input_nc_),
      output_nc(output_nc_),
      num_downs(num_downs_),
      ngf(ngf_),
      norm(norm_),
      use_dropout(use_dropout_) {
  NABLA_CHECK(input_nc >= 1 && output_nc >= 1 && ngf >= 1 && num_downs >= 5 && num_downs <= 16,
              "UnetGenerator: input_nc ", input_nc, ", output_nc ", output_nc, ", ngf ", ngf,
              " must be >= 1 and num_downs ", num_downs, " in [5, 16]");
  using Block = UnetSkipConnectionBlock;
  auto block = make<Block>(ngf * 8, ngf * 8, -1, nullptr, false, true, norm, false, gen);
  for (int64_t i = 0; i < num_downs - 5; ++i)
    block = make<Block>(ngf * 8, ngf * 8, -1, block, false, false, norm, use_dropout, gen);
  block = make<Block>(ngf * 4, ngf * 8, -1, block, false, false, norm, false, gen);
  block = make<Block>(ngf * 2, ngf * 4, -1, block, false, false, norm, false, gen);
  block = make<Block>(ngf, ngf * 2, -1, block, false, false, norm, false, gen);
  block = make<Block>(output_nc, ngf, input_nc, block, true, false, norm, false, gen);
  model = register_module("model", block);
  init_weights(*this, 0.02, gen);
}

Tensor UnetGenerator::forward(const Tensor& x) {
  check_image("UnetGenerator", x, input_nc, int64_t(1) << num_downs, int64_t(1) << num_downs);
  return (*model)(x);
}

// ---------------------------------------------------------------- NLayerDiscriminator
NLayerDiscriminator::NLayerDiscriminator(int64_t input_nc_, int64_t ndf_, int64_t n_layers_,
                                         Norm norm_, Generator* gen)
    : Module("NLayerDiscriminator"),
      input_nc(input_nc_),
      ndf(ndf_),
      n_layers(n_layers_),
      norm(norm_) {
  NABLA_CHECK(input_nc >= 1 && ndf >= 1 && n_layers >= 1 && n_layers <= 16,
              "NLayerDiscriminator: input_nc ", input_nc, ", ndf ", ndf,
              " must be >= 1 and n_layers ", n_layers, " in [1, 16]");
  const bool use_bias = norm == Norm::Instance;
  ModuleList layers = {conv(input_nc, ndf, 4, 2, 1, true, gen), make<nn::LeakyReLU>(0.2)};
  int64_t mult = 1, prev = 1;
  for (int64_t n = 1; n < n_layers; ++n) {
    prev = mult;
    mult = std::min<int64_t>(int64_t(1) << n, 8);
    layers.push_back(conv(ndf * prev, ndf * mult, 4, 2, 1, use_bias, gen));
    layers.push_back(norm_layer(norm, ndf * mult));
    layers.push_back(make<nn::LeakyReLU>(0.2));
  }
  prev = mult;
  mult = std::min<int64_t>(int64_t(1) << n_layers, 8);
  layers.push_back(conv(ndf * prev, ndf * mult, 4, 1, 1, use_bias, gen));
  layers.push_back(norm_layer(norm, ndf * mult));
  layers.push_back(make<nn::LeakyReLU>(0.2));
  layers.push_back(conv(ndf * mult, 1, 4, 1, 1, true, gen));
  model = register_module("model", std::make_shared<nn::Sequential>(layers));
  init_weights(*this, 0.02, gen);
}

Tensor NLayerDiscriminator::forward(const Tensor& x) {
  NABLA_CHECK(x.dim() == 4 && x.size(1) == input_nc, "NLayerDiscriminator: x ",
              shape_str(x.shape()), " must be [N, ", input_nc, ", H, W]");
  // Each stride-2 convolution maps s to floor(s / 2), each stride-1 one to s - 1.
  int64_t h = x.size(2), w = x.size(3);
  for (int64_t n = 0; n < n_layers; ++n) h /= 2, w /= 2;
  NABLA_CHECK(h >= 3 && w >= 3, "NLayerDiscriminator(n_layers ", n_layers, "): x ",
              shape_str(x.shape()), " is too small: the patch map would be empty");
  return (*model)(x);
}

// ---------------------------------------------------------------- init
void init_weights(nn::Module& m, double gain, Generator* gen) {
  auto conv_like = [&](Tensor& weight, Tensor& bias) {
    nn::init::normal_(weight, 0.0, gain, gen);
    if (bias.defined()) nn::init::zeros_(bias);
  };
  for (const auto& [name, sub] : m.named_modules()) {
    if (auto* c = dynamic_cast<nn::Conv2d*>(sub.get())) {
      conv_like(c->weight, c->bias);
    } else if (auto* t = dynamic_cast<nn::ConvTranspose2d*>(sub.get())) {
      conv_like(t->weight, t->bias);
    } else if (auto* l = dynamic_cast<nn::Linear*>(sub.get())) {
      conv_like(l->weight, l->bias);
    } else if (auto* b = dynamic_cast<nn::BatchNorm2d*>(sub.get())) {
      nn::init::normal_(b->weight, 1.0, gain, gen);
      nn::init::zeros_(b->bias);
    }
  }
}

// ---------------------------------------------------------------- rebuild from a state dict
LoadedNet rebuild(const nn::StateDict& sd, const std::string& what, const std::string& padding_type,
                  bool unet_dropout) {
  auto has = [&](const std::string& k) { return sd.count(k) > 0; };
  auto shape = [&](const std::string& k) -> const Shape& {
    auto it = sd.find(k);
    NABLA_CHECK(it != sd.end(), what, ": no key '", k, "' (", sd.size(),
                " keys; not a ResnetGenerator, UnetGenerator or NLayerDiscriminator state dict)");
    return it->second.shape();
  };
  // Index i of "model.<i>..." or of "<prefix>.<i>...".
  auto index_after = [](const std::string& key, size_t pos) {
    return std::stoll(key.substr(pos, key.find('.', pos) - pos));
  };
  bool batch = false;
  for (const auto& [k, t] : sd)
    if (k.size() > 12 && k.compare(k.size() - 12, 12, "running_mean") == 0) batch = true;
  const Norm norm = batch ? Norm::Batch : Norm::Instance;
  LoadedNet out;
  std::ostringstream args;
  if (has("model.model.0.weight")) {
    const Shape& w0 = shape("model.model.0.weight");
    int64_t blocks = 1;
    for (std::string prefix = "model.model.1"; has(prefix + ".model.1.weight");
         prefix += ".model.3")
      ++blocks;
    const int64_t output_nc = shape("model.model.3.weight")[1];
    NABLA_CHECK(blocks >= 5, what, ": a U-Net of ", blocks,
                " nested blocks; UnetGenerator needs num_downs >= 5");
    out.kind = "UnetGenerator";
    out.net = std::make_shared<UnetGenerator>(w0[1], output_nc, blocks, w0[0], norm, unet_dropout);
    out.input_nc = w0[1];
    out.output_nc = output_nc;
    args << "input_nc=" << w0[1] << ", output_nc=" << output_nc << ", num_downs=" << blocks
         << ", ngf=" << w0[0] << ", norm=" << norm_name(norm)
         << ", use_dropout=" << (unet_dropout ? "true" : "false");
  } else if (has("model.1.weight") && shape("model.1.weight").size() == 4 &&
             shape("model.1.weight")[2] == 7) {
    const Shape& w1 = shape("model.1.weight");
    std::set<int64_t> blocks, inner;
    int64_t last = 0;
    for (const auto& [k, t] : sd) {
      if (k.rfind("model.", 0) != 0) continue;
      const int64_t i = index_after(k, 6);
      if (t.dim() == 4) last = std::max(last, i);
      const size_t cb = k.find(".conv_block.");
      if (cb != std::string::npos) {
        blocks.insert(i);
        if (i == *blocks.begin() && t.dim() == 4) inner.insert(index_after(k, cb + 12));
      }
    }
    const int64_t offset = padding_type == "zero" ? 0 : 1;
    // The second 3x3 convolution follows [pad,] conv, norm, relu, [dropout,] [pad].
    const bool dropout = !inner.empty() && *inner.rbegin() == 4 + 2 * offset;
    const int64_t output_nc = shape("model." + std::to_string(last) + ".weight")[0];
    const int64_t n_blocks = int64_t(blocks.size());
    out.kind = "ResnetGenerator";
    out.net = std::make_shared<ResnetGenerator>(w1[1], output_nc, w1[0], norm, dropout, n_blocks,
                                                padding_type);
    out.input_nc = w1[1];
    out.output_nc = output_nc;
    args << "input_nc=" << w1[1] << ", output_nc=" << output_nc << ", ngf=" << w1[0]
         << ", norm=" << norm_name(norm) << ", use_dropout=" << (dropout ? "true" : "false")
         << ", n_blocks=" << n_blocks << ", padding_type=" << padding_type;
  } else {
    const Shape& w0 = shape("model.0.weight");
    int64_t convs = 0;
    for (const auto& [k, t] : sd)
      if (t.dim() == 4 && k.size() > 7 && k.compare(k.size() - 7, 7, ".weight") == 0) ++convs;
    NABLA_CHECK(w0.size() == 4 && convs >= 3, what, ": model.0.weight ", shape_str(w0), " and ",
                convs, " convolutions do not make an NLayerDiscriminator");
    out.kind = "NLayerDiscriminator";
    out.net = std::make_shared<NLayerDiscriminator>(w0[1], w0[0], convs - 2, norm);
    out.input_nc = w0[1];
    out.output_nc = 1;
    args << "input_nc=" << w0[1] << ", ndf=" << w0[0] << ", n_layers=" << convs - 2
         << ", norm=" << norm_name(norm);
  }
  out.args = args.str();
  try {
    out.net->load_state_dict(sd, true);
  } catch (const Error& e) {
    throw Error(what + ": does not load into " + out.kind + "(" + out.args + "): " + e.what());
  }
  return out;
}

LoadedNet load_net(const std::string& path, const std::string& padding_type, bool unet_dropout) {
  return rebuild(io::load_safetensors(path).tensors, path, padding_type, unet_dropout);
}

int64_t unet_num_downs(int64_t size) {
  int64_t n = 0;
  while ((int64_t(1) << n) < size) ++n;
  NABLA_CHECK(size >= 32 && (int64_t(1) << n) == size, "unet_num_downs: image size ", size,
              " must be a power of two >= 32 (num_downs = log2(size))");
  return n;
}

}  // namespace nabla::nets
