// The networks of CycleGAN (Zhu et al. 2017) and pix2pix (Isola et al. 2017) as the reference
// implementation, junyanz/pytorch-CycleGAN-and-pix2pix (models/networks.py), builds them: the same
// class names, constructor arguments, layer order and state_dict keys, so that the reference's
// modules load our checkpoints with strict=True and we load theirs.
//
// norm: Norm::Instance is InstanceNorm2d(affine=false, no running statistics) and the
// convolutions in front of it keep their bias; Norm::Batch is BatchNorm2d and those convolutions
// have none (the reference's use_bias). The first and last convolutions always have a bias.
// Cxky-sz below: Conv2d to x channels, kernel y, stride z; Tk: ConvTranspose2d; R: ReLU;
// L: LeakyReLU(0.2); N: the norm; P(p): the padding of padding_type ("reflect": ReflectionPad2d,
// "replicate": ReplicationPad2d, "zero": padding inside the convolution).
//
//   ResnetGenerator(input_nc, output_nc, ngf, norm, use_dropout, n_blocks, padding_type)
//     x [N, input_nc, H, W], H and W multiples of 4, at least 8
//     model.0 ReflectionPad2d(3)  model.1 C(ngf)k7  model.2 N  model.3 R
//     model.4 C(2 ngf)k3s2p1  5 N  6 R   model.7 C(4 ngf)k3s2p1  8 N  9 R        [4 ngf, H/4, W/4]
//     model.10 .. model.9+n_blocks  ResnetBlock(4 ngf): x + conv_block(x), conv_block =
//         P(1) C k3 N R [Dropout(0.5) when use_dropout] P(1) C k3 N ("model.10.conv_block.5.bias")
//     T(2 ngf)k3s2p1 output_padding 1, N, R;  T(ngf) likewise, N, R            [ngf, H, W]
//     ReflectionPad2d(3), C(output_nc)k7, Tanh                                 [output_nc, H, W]
//   NLayerDiscriminator(input_nc, ndf, n_layers, norm): the PatchGAN
//     model.0 C(ndf)k4s2p1  model.1 L;  for n = 1 .. n_layers-1: C(ndf min(2^n, 8))k4s2p1, N, L;
//     C(ndf min(2^n_layers, 8))k4s1p1, N, L;  C(1)k4s1p1: one logit per patch
//     (70x70 patches for n_layers 3; a 64x64 input gives [N, 1, 6, 6], 32x32 gives [N, 1, 2, 2])
//   UnetGenerator(input_nc, output_nc, num_downs, ngf, norm, use_dropout)
//     x [N, input_nc, H, W], H and W multiples of 2^num_downs (the bottleneck is 1x1 at
//     H = 2^num_downs); num_downs >= 5. Nested UnetSkipConnectionBlocks, outermost first:
//       outermost   model.model = [C(ngf)k4s2p1, submodule, R, T(output_nc)k4s2p1, Tanh]
//       middle      [L, C(inner)k4s2p1, N, submodule, R, T(outer)k4s2p1, N, (Dropout(0.5))]
//       innermost   [L, C(ngf 8)k4s2p1, R, T(ngf 8)k4s2p1, N]
//     and every block but the outermost returns cat(x, model(x)) along channels. Widths from the
//     inside out: innermost ngf 8, num_downs - 5 blocks of ngf 8 (with dropout when use_dropout),
//     then ngf 4, ngf 2, ngf and the outermost. Keys nest: model.model.1.model.3.model.1.weight.
//
// Initialization is the reference's init_weights('normal', 0.02): convolution weights N(0, 0.02)
// and biases 0, BatchNorm2d weights N(1, 0.02) and biases 0, drawn from gen. Dropout masks come
// from the default generator.
#pragma once

#include <memory>
#include <string>

#include <nabla/nn/layers.h>

namespace nabla::nets {

enum class Norm { Batch, Instance };
// "batch" / "instance" (the reference's --norm); anything else: nabla::Error listing both.
Norm parse_norm(const std::string& name);
const char* norm_name(Norm norm);

class ResnetBlock : public nn::Module {
 public:
  // requires: dim >= 1; padding_type "reflect", "replicate" or "zero".
  ResnetBlock(int64_t dim, const std::string& padding_type, Norm norm, bool use_dropout,
              bool use_bias, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;  // x + conv_block(x), [N, dim, H, W]
  std::shared_ptr<nn::Sequential> conv_block;
};

class ResnetGenerator : public nn::Module {
 public:
  // requires: input_nc, output_nc, ngf >= 1; n_blocks >= 0; padding_type as ResnetBlock.
  ResnetGenerator(int64_t input_nc, int64_t output_nc, int64_t ngf = 64, Norm norm = Norm::Batch,
                  bool use_dropout = false, int64_t n_blocks = 6,
                  const std::string& padding_type = "reflect", Generator* gen = nullptr);
  // requires: x [N, input_nc, H, W], H and W multiples of 4 and >= 8.
  // ensures: [N, output_nc, H, W] in (-1, 1).
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Sequential> model;
  int64_t input_nc, output_nc, ngf, n_blocks;
  Norm norm;
  bool use_dropout;
  std::string padding_type;
};

class UnetSkipConnectionBlock : public nn::Module {
 public:
  // requires: outer_nc, inner_nc >= 1; input_nc >= 1 or -1 (then outer_nc); a submodule unless
  // innermost; not both outermost and innermost.
  UnetSkipConnectionBlock(int64_t outer_nc, int64_t inner_nc, int64_t input_nc,
                          std::shared_ptr<nn::Module> submodule, bool outermost, bool innermost,
                          Norm norm, bool use_dropout, Generator* gen = nullptr);
  // outermost: model(x); otherwise cat(x, model(x)) along channels.
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Sequential> model;
  bool outermost;
};

class UnetGenerator : public nn::Module {
 public:
  // requires: input_nc, output_nc, ngf >= 1; num_downs >= 5.
  UnetGenerator(int64_t input_nc, int64_t output_nc, int64_t num_downs, int64_t ngf = 64,
                Norm norm = Norm::Batch, bool use_dropout = false, Generator* gen = nullptr);
  // requires: x [N, input_nc, H, W], H and W multiples of 2^num_downs.
  // ensures: [N, output_nc, H, W] in (-1, 1).
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<UnetSkipConnectionBlock> model;
  int64_t input_nc, output_nc, num_downs, ngf;
  Norm norm;
  bool use_dropout;
};

class NLayerDiscriminator : public nn::Module {
 public:
  // requires: input_nc, ndf, n_layers >= 1.
  NLayerDiscriminator(int64_t input_nc, int64_t ndf = 64, int64_t n_layers = 3,
                      Norm norm = Norm::Batch, Generator* gen = nullptr);
  // requires: x [N, input_nc, H, W] large enough for n_layers + 2 convolutions of kernel 4.
  // ensures: patch logits [N, 1, H', W'] (no sigmoid: the loss applies it).
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Sequential> model;
  int64_t input_nc, ndf, n_layers;
  Norm norm;
};

// The reference's init_weights('normal', gain) on every Conv2d, ConvTranspose2d, Linear and
// BatchNorm2d below m (see above).
void init_weights(nn::Module& m, double gain = 0.02, Generator* gen = nullptr);

// A network rebuilt from a checkpoint: which class, its constructor arguments in words, and the
// module holding the checkpoint's values.
struct LoadedNet {
  std::string kind;  // "ResnetGenerator", "UnetGenerator" or "NLayerDiscriminator"
  std::string args;  // "input_nc=1, output_nc=1, ngf=32, norm=instance, ..."
  std::shared_ptr<nn::Module> net;
  int64_t input_nc = 0, output_nc = 0;  // output_nc 1 for the discriminator
};
// requires: sd the state dict of one of the three networks (ours or the reference's).
// ensures: the network with the arguments its keys and shapes imply (the norm from the presence
//          of running statistics, n_blocks, num_downs and n_layers from the nesting, use_dropout
//          of the ResnetGenerator from where its second convolution sits), sd loaded strictly.
//          padding_type and the U-Net's use_dropout leave no trace in the keys: they are given.
//          Anything else: nabla::Error naming `what` (the file) and the keys found.
LoadedNet rebuild(const nn::StateDict& sd, const std::string& what,
                  const std::string& padding_type = "reflect", bool unet_dropout = false);
// The same from a safetensors file.
LoadedNet load_net(const std::string& path, const std::string& padding_type = "reflect",
                   bool unet_dropout = false);

// num_downs for a square image of side `size`: log2(size) (5 for 32, 6 for 64, 8 for 256).
// requires: size a power of two >= 32.
int64_t unet_num_downs(int64_t size);

}  // namespace nabla::nets
