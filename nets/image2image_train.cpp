// CycleGAN and pix2pix: the training recipes, translation and evaluation (see
// image2image_train.h).
#include <nets/image2image_train.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <optional>

#include <nabla/autograd.h>
#include <nabla/data/image_folder.h>
#include <nabla/data/translation.h>
#include <nabla/error.h>
#include <nabla/gan/samples.h>
#include <nabla/io/image.h>
#include <nabla/metrics/generative.h>
#include <nabla/metrics/image.h>
#include <nabla/ops.h>
#include <nabla/optim/factory.h>
#include <nabla/optim/schedule.h>
#include <nabla/train/trainer.h>
#include <nets/classifier.h>

namespace nabla::nets {

using nlohmann::json;
namespace fs = std::filesystem;

void to_json(json& j, const Image2ImageTraining& c) {
  j = {{"model", c.model},
       {"task", c.task},
       {"dataroot", c.dataroot},
       {"direction", c.direction},
       {"input_nc", c.input_nc},
       {"output_nc", c.output_nc},
       {"load_size", c.load_size},
       {"crop_size", c.crop_size},
       {"no_flip", c.no_flip},
       {"serial_batches", c.serial_batches},
       {"netG", c.netG},
       {"norm", c.norm},
       {"dropout", c.dropout},
       {"ngf", c.ngf},
       {"ndf", c.ndf},
       {"n_layers_D", c.n_layers_D},
       {"loss", c.loss},
       {"lambda_A", c.lambda_A},
       {"lambda_B", c.lambda_B},
       {"lambda_identity", c.lambda_identity},
       {"lambda_L1", c.lambda_L1},
       {"pool_size", c.pool_size},
       {"n_epochs", c.n_epochs},
       {"n_epochs_decay", c.n_epochs_decay},
       {"batch", c.batch},
       {"lr", c.lr},
       {"beta1", c.beta1},
       {"seed", c.seed},
       {"data", c.data},
       {"train_limit", c.train_limit},
       {"out", c.out},
       {"checkpoint_every", c.checkpoint_every},
       {"device", c.device},
       {"threads", c.threads}};
}

void from_json(const json& j, Image2ImageTraining& c) {
  auto get = [&](const char* key, auto& field) {
    train::read_option(j, "image2image options", key, field);
  };
  get("model", c.model);
  get("task", c.task);
  get("dataroot", c.dataroot);
  get("direction", c.direction);
  get("input_nc", c.input_nc);
  get("output_nc", c.output_nc);
  get("load_size", c.load_size);
  get("crop_size", c.crop_size);
  get("no_flip", c.no_flip);
  get("serial_batches", c.serial_batches);
  get("netG", c.netG);
  get("norm", c.norm);
  get("dropout", c.dropout);
  get("ngf", c.ngf);
  get("ndf", c.ndf);
  get("n_layers_D", c.n_layers_D);
  get("loss", c.loss);
  get("lambda_A", c.lambda_A);
  get("lambda_B", c.lambda_B);
  get("lambda_identity", c.lambda_identity);
  get("lambda_L1", c.lambda_L1);
  get("pool_size", c.pool_size);
  get("n_epochs", c.n_epochs);
  get("n_epochs_decay", c.n_epochs_decay);
  get("batch", c.batch);
  get("lr", c.lr);
  get("beta1", c.beta1);
  get("seed", c.seed);
  get("data", c.data);
  get("train_limit", c.train_limit);
  get("out", c.out);
  get("checkpoint_every", c.checkpoint_every);
  get("device", c.device);
  get("threads", c.threads);
}

Image2ImageTraining resolve_defaults(Image2ImageTraining c) {
  NABLA_CHECK(c.model == "cyclegan" || c.model == "pix2pix", "image2image: model '", c.model,
              "': expected cyclegan or pix2pix");
  const bool cyc = c.model == "cyclegan";
  if (c.task.empty() && c.dataroot.empty()) c.task = cyc ? "sneaker2boot" : "edges2fashion";
  NABLA_CHECK(c.task.empty() || c.dataroot.empty(), c.model,
              ": give --task or --dataroot, not both");
  if (!c.task.empty()) {
    const bool paired = data::translation_task_paired(c.task);
    NABLA_CHECK(cyc || paired, "pix2pix needs paired data; the task ", c.task,
                " is unpaired (try edges2fashion, or cyclegan)");
    if (c.train_limit == 0) c.train_limit = c.task == "he2ihc" ? 200 : (cyc ? 500 : 1000);
  }
  if (c.norm.empty()) c.norm = cyc ? "instance" : "batch";
  if (c.loss.empty()) c.loss = cyc ? "lsgan" : "nonsaturating";
  if (c.dropout == "auto") c.dropout = cyc ? "off" : "on";
  NABLA_CHECK(c.dropout == "on" || c.dropout == "off", c.model, ": --dropout ", c.dropout,
              ": expected auto, on or off");
  NABLA_CHECK(c.direction == "AtoB" || c.direction == "BtoA", c.model, ": --direction ",
              c.direction, ": expected AtoB or BtoA");
  parse_norm(c.norm);
  gan::loss_from_name(c.loss);
  return c;
}

std::shared_ptr<nn::Module> define_G(int64_t input_nc, int64_t output_nc, int64_t ngf,
                                     const std::string& netG, Norm norm, bool use_dropout,
                                     Generator* gen) {
  auto number = [&](size_t from, size_t to) -> int64_t {
    const std::string s = netG.substr(from, to - from);
    NABLA_CHECK(!s.empty() && s.size() <= 6 && std::all_of(s.begin(), s.end(), ::isdigit),
                "--netG ", netG, ": expected resnet_<n>blocks or unet_<size>");
    return std::stoll(s);
  };
  if (netG.rfind("resnet_", 0) == 0 && netG.size() > 13 &&
      netG.compare(netG.size() - 6, 6, "blocks") == 0)
    return std::make_shared<ResnetGenerator>(input_nc, output_nc, ngf, norm, use_dropout,
                                             number(7, netG.size() - 6), "reflect", gen);
  if (netG.rfind("unet_", 0) == 0)
    return std::make_shared<UnetGenerator>(
        input_nc, output_nc, unet_num_downs(number(5, netG.size())), ngf, norm, use_dropout, gen);
  throw Error("--netG " + netG + ": expected resnet_<n>blocks (e.g. resnet_6blocks) or " +
              "unet_<size> (e.g. unet_32)");
}

AdversarialTerms adversarial_terms(gan::Loss loss, const Tensor& real_logits,
                                   const Tensor& fake_logits) {
  const gan::Losses l = gan::gan_losses(loss, real_logits, fake_logits);
  switch (loss) {
    case gan::Loss::LSGAN:
      return {l.d, mul(l.g, 2.0)};
    case gan::Loss::Minimax:
    case gan::Loss::NonSaturating:
      return {mul(l.d, 0.5), l.g};
    default:
      return {l.d, l.g};
  }
}

namespace {

bool relativistic(gan::Loss l) {
  return l == gan::Loss::RSGAN || l == gan::Loss::RaSGAN || l == gan::Loss::RaLSGAN;
}

// The reference's 'linear' policy, stepped per epoch: the trainer asks for the rate at a step.
class EpochLinearDecay : public optim::LRSchedule {
 public:
  EpochLinearDecay(double lr, int64_t n_epochs, int64_t n_epochs_decay, int64_t steps_per_epoch)
      : lr_(lr), n_(n_epochs), decay_(n_epochs_decay), steps_(steps_per_epoch) {}
  double lr_at(int64_t t) const override {
    const int64_t epoch = t / steps_ + 1;  // 1-based
    return lr_ * std::max(0.0, 1.0 - double(std::max<int64_t>(0, epoch - n_)) / double(decay_ + 1));
  }

 private:
  double lr_;
  int64_t n_, decay_, steps_;
};

// An image pool's stored images as module buffers, so that a run checkpoint carries them.
class PoolState : public nn::Module {
 public:
  PoolState(int64_t capacity, int64_t c, int64_t h, int64_t w) : Module("PoolState") {
    images = zeros({std::max<int64_t>(capacity, 1), c, h, w});
    count = zeros({}, DType::Int64);
    register_buffer("images", &images);
    register_buffer("count", &count);
  }
  void save_from(const gan::ImagePool& p) {
    count = full({}, double(p.size()), DType::Int64);
    if (p.size() > 0) copy_(images.narrow(0, 0, p.size()), p.state().to(Device::cpu()));
  }
  void load_into(gan::ImagePool& p, Device dev) const {
    const int64_t k = count.item<int64_t>();
    p.load_state(k > 0 ? images.narrow(0, 0, k).contiguous().to(dev) : Tensor());
  }
  Tensor images, count;
};

std::unique_ptr<optim::Optimizer> adam(std::vector<Tensor> params, const Image2ImageTraining& c) {
  return optim::make_optimizer("adam", std::move(params),
                               {.lr = c.lr, .beta1 = c.beta1, .beta2 = 0.999});
}

std::vector<Tensor> joined(const nn::Module& a, const nn::Module& b) {
  std::vector<Tensor> p = a.parameters(), q = b.parameters();
  p.insert(p.end(), q.begin(), q.end());
  return p;
}

// Gray images become RGB for panels that mix 1- and 3-channel rows.
Tensor rgb(const Tensor& x) {
  return x.size(1) == 3 ? x : x.expand({x.size(0), 3, x.size(2), x.size(3)}).contiguous();
}

}  // namespace

// ---------------------------------------------------------------- CycleGAN
CycleGANModel::CycleGANModel(const Image2ImageTraining& c_, Device dev, Generator* init)
    : c(c_),
      loss(gan::loss_from_name(c_.loss)),
      pool_A(c_.pool_size, c_.seed * 3 + 11),
      pool_B(c_.pool_size, c_.seed * 3 + 12),
      order_gen(c_.seed * 3 + 13) {
  NABLA_CHECK(c.input_nc >= 1 && c.output_nc >= 1, "cyclegan: input_nc ", c.input_nc,
              " and output_nc ", c.output_nc, " must be set");
  const Norm norm = parse_norm(c.norm);
  const bool drop = c.dropout == "on";
  const int64_t pair = loss == gan::Loss::Turing ? 2 : 1;
  G_A = define_G(c.input_nc, c.output_nc, c.ngf, c.netG, norm, drop, init);
  G_B = define_G(c.output_nc, c.input_nc, c.ngf, c.netG, norm, drop, init);
  D_A = std::make_shared<NLayerDiscriminator>(pair * c.output_nc, c.ndf, c.n_layers_D, norm, init);
  D_B = std::make_shared<NLayerDiscriminator>(pair * c.input_nc, c.ndf, c.n_layers_D, norm, init);
  for (nn::Module* m : {G_A.get(), G_B.get(), (nn::Module*)D_A.get(), (nn::Module*)D_B.get()})
    m->to(dev);
  opt_G = adam(joined(*G_A, *G_B), c);
  opt_D = adam(joined(*D_A, *D_B), c);
}

CycleGANModel::Outputs CycleGANModel::forward(const Tensor& real_A, const Tensor& real_B) {
  Outputs o;
  o.fake_B = (*G_A)(real_A);
  o.rec_A = (*G_B)(o.fake_B);
  o.fake_A = (*G_B)(real_B);
  o.rec_B = (*G_A)(o.fake_A);
  return o;
}

Tensor CycleGANModel::d_logits(NLayerDiscriminator& D, const Tensor& real, const Tensor& fake,
                               const Tensor& order) {
  return order.defined() ? D(gan::turing_pair(real, fake, order)) : D(fake);
}

std::vector<std::pair<std::string, double>> CycleGANModel::step_G(const Tensor& real_A,
                                                                  const Tensor& real_B,
                                                                  const Outputs& o, bool update) {
  nn::FreezeGuard frozen_a(*D_A), frozen_b(*D_B);
  const bool turing = loss == gan::Loss::Turing;
  // The generator's adversarial term against one frozen D judging `fake` (real: that domain).
  auto g_term = [&](NLayerDiscriminator& D, const Tensor& real, const Tensor& fake) {
    if (turing) {
      const Tensor order = gan::turing_order(fake.size(0), order_gen).to(fake.device());
      return gan::turing_losses(D(gan::turing_pair(real, fake, order)), order).g;
    }
    Tensor fl = D(fake);
    Tensor rl = relativistic(loss) ? D(real).detach() : fl.detach();
    return adversarial_terms(loss, rl, fl).g;
  };
  Tensor g_A = g_term(*D_A, real_B, o.fake_B), g_B = g_term(*D_B, real_A, o.fake_A);
  Tensor cyc_A = mul(l1_loss(o.rec_A, real_A), c.lambda_A);
  Tensor cyc_B = mul(l1_loss(o.rec_B, real_B), c.lambda_B);
  Tensor total = add(add(g_A, g_B), add(cyc_A, cyc_B));
  double idt_A = 0, idt_B = 0;
  if (c.lambda_identity > 0) {
    NABLA_CHECK(c.input_nc == c.output_nc,
                "cyclegan: the identity loss needs input_nc == output_nc", " (", c.input_nc, " vs ",
                c.output_nc, "); set --lambda_identity 0");
    Tensor ia = mul(l1_loss((*G_A)(real_B), real_B), c.lambda_B * c.lambda_identity);
    Tensor ib = mul(l1_loss((*G_B)(real_A), real_A), c.lambda_A * c.lambda_identity);
    total = add(total, add(ia, ib));
    idt_A = ia.item<double>();
    idt_B = ib.item<double>();
  }
  opt_G->zero_grad();
  total.backward();
  if (update) opt_G->step();
  return {{"g_A", g_A.item<double>()},
          {"g_B", g_B.item<double>()},
          {"cycle_A", cyc_A.item<double>()},
          {"cycle_B", cyc_B.item<double>()},
          {"idt_A", idt_A},
          {"idt_B", idt_B}};
}

std::vector<std::pair<std::string, double>> CycleGANModel::step_D(const Tensor& real_A,
                                                                  const Tensor& real_B,
                                                                  const Outputs& o, bool update) {
  const bool turing = loss == gan::Loss::Turing;
  auto d_term = [&](NLayerDiscriminator& D, const Tensor& real, const Tensor& pooled) {
    if (turing) {
      const Tensor order = gan::turing_order(real.size(0), order_gen).to(real.device());
      return gan::turing_losses(D(gan::turing_pair(real, pooled, order)), order).d;
    }
    return adversarial_terms(loss, D(real), D(pooled)).d;
  };
  Tensor fake_B = pool_B.query(o.fake_B.detach()), fake_A = pool_A.query(o.fake_A.detach());
  opt_D->zero_grad();
  Tensor d_A = d_term(*D_A, real_B, fake_B), d_B = d_term(*D_B, real_A, fake_A);
  add(d_A, d_B).backward();
  if (update) opt_D->step();
  return {{"d_A", d_A.item<double>()}, {"d_B", d_B.item<double>()}};
}

// ---------------------------------------------------------------- pix2pix
Pix2PixModel::Pix2PixModel(const Image2ImageTraining& c_, Device dev, Generator* init)
    : c(c_), loss(gan::loss_from_name(c_.loss)), order_gen(c_.seed * 3 + 13) {
  const Norm norm = parse_norm(c.norm);
  const int64_t pair = loss == gan::Loss::Turing ? 2 : 1;
  G = define_G(c.input_nc, c.output_nc, c.ngf, c.netG, norm, c.dropout == "on", init);
  D = std::make_shared<NLayerDiscriminator>(c.input_nc + pair * c.output_nc, c.ndf, c.n_layers_D,
                                            norm, init);
  G->to(dev);
  D->to(dev);
  opt_G = adam(G->parameters(), c);
  opt_D = adam(D->parameters(), c);
}

std::vector<std::pair<std::string, double>> Pix2PixModel::step(const Tensor& a, const Tensor& b) {
  const bool turing = loss == gan::Loss::Turing;
  const Tensor order = turing ? gan::turing_order(a.size(0), order_gen).to(a.device()) : Tensor();
  Tensor fake = (*G)(a);
  // D on the condition and the image(s): cat(a, x), or cat(a, pair) for turing.
  auto judge = [&](const Tensor& x) { return (*D)(concat({a, x}, 1)); };
  opt_D->zero_grad();
  Tensor d;
  if (turing) {
    d = gan::turing_losses(judge(gan::turing_pair(b, fake.detach(), order)), order).d;
  } else {
    d = adversarial_terms(loss, judge(b), judge(fake.detach())).d;
  }
  d.backward();
  opt_D->step();

  Tensor g_gan;
  {
    nn::FreezeGuard frozen(*D);
    if (turing) {
      g_gan = gan::turing_losses(judge(gan::turing_pair(b, fake, order)), order).g;
    } else {
      Tensor fl = judge(fake);
      Tensor rl = relativistic(loss) ? judge(b).detach() : fl.detach();
      g_gan = adversarial_terms(loss, rl, fl).g;
    }
    Tensor g_l1 = mul(l1_loss(fake, b), c.lambda_L1);
    opt_G->zero_grad();
    add(g_gan, g_l1).backward();
    opt_G->step();
    return {
        {"d", d.item<double>()}, {"g_gan", g_gan.item<double>()}, {"g_l1", g_l1.item<double>()}};
  }
}

// ---------------------------------------------------------------- data
namespace {

struct Data {
  data::TranslationSet train, test;
  int64_t size = 0;  // image side
};

Data load_data(Image2ImageTraining& c, bool need_train) {
  Data d;
  const bool pix = c.model == "pix2pix";
  if (!c.task.empty()) {
    if (need_train) d.train = data::translation_task(c.task, true, c.train_limit, c.data, c.seed);
    d.test = data::translation_task(c.task, false, 64, c.data, c.seed);
  } else {
    const int in = int(c.input_nc > 0 ? c.input_nc : 3),
              out = int(c.output_nc > 0 ? c.output_nc : 3);
    // With BtoA the folders' A holds the output domain.
    const bool swap = c.direction == "BtoA";
    const int a_nc = swap ? out : in, b_nc = swap ? in : out;
    if (need_train)
      d.train = data::translation_folder(c.dataroot, "train", pix, a_nc, b_nc, c.train_limit);
    const fs::path test_dir = fs::path(c.dataroot) / (pix ? "test" : "testA");
    d.test = fs::exists(test_dir)
                 ? data::translation_folder(c.dataroot, "test", pix, a_nc, b_nc, 64)
                 : d.train;
  }
  if (c.direction == "BtoA") {
    for (data::TranslationSet* s : {&d.train, &d.test}) {
      std::swap(s->A, s->B);
      std::swap(s->names_A, s->names_B);
      s->B_of_A = Tensor();
    }
  }
  const data::TranslationSet& ref = need_train ? d.train : d.test;
  d.size = ref.A.size(2);
  NABLA_CHECK(ref.A.size(2) == ref.A.size(3), c.model, ": ", ref.name, " holds ", ref.A.size(2),
              "x", ref.A.size(3), " images; square images are expected (crop them to a square)");
  const int64_t a_nc = ref.A.size(1), b_nc = ref.B.size(1);
  NABLA_CHECK(c.input_nc == 0 || c.input_nc == a_nc, c.model, ": --input_nc ", c.input_nc,
              " but the A images of ", ref.name, " have ", a_nc, " channels");
  NABLA_CHECK(c.output_nc == 0 || c.output_nc == b_nc, c.model, ": --output_nc ", c.output_nc,
              " but the B images of ", ref.name, " have ", b_nc, " channels");
  c.input_nc = a_nc;
  c.output_nc = b_nc;
  if (c.crop_size == 0) c.crop_size = d.size;
  if (c.load_size == 0) c.load_size = std::max(c.crop_size, d.size);
  NABLA_CHECK(c.crop_size <= c.load_size, c.model, ": --crop_size ", c.crop_size,
              " must not exceed --load_size ", c.load_size);
  if (c.netG.empty()) c.netG = pix ? "unet_" + std::to_string(c.crop_size) : "resnet_6blocks";
  return d;
}

// A permutation of 0..n-1 that depends on (seed, epoch) only.
std::vector<int64_t> permutation(int64_t n, uint64_t seed, int64_t epoch) {
  Generator g(seed * 1000003ull + uint64_t(epoch) * 7919ull + 17);
  const std::vector<double> u = rand({n}, DType::Float64, Device::cpu(), &g).to_vector<double>();
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  std::stable_sort(p.begin(), p.end(),
                   [&](int64_t a, int64_t b) { return u[size_t(a)] < u[size_t(b)]; });
  return p;
}

Tensor gather(const Tensor& x, const std::vector<int64_t>& idx) {
  std::vector<Tensor> rows;
  for (int64_t i : idx) rows.push_back(x.slice(i, i + 1));
  return concat(rows, 0);
}

}  // namespace

// ---------------------------------------------------------------- training
json train_image2image(const Image2ImageTraining& options, Device dev, bool resume, bool show) {
  Image2ImageTraining c = resolve_defaults(options);
  const bool cyc = c.model == "cyclegan";
  NABLA_CHECK(c.n_epochs >= 1 && c.n_epochs_decay >= 0 && c.batch >= 1, c.model, ": --n_epochs ",
              c.n_epochs, " must be >= 1, --n_epochs_decay ", c.n_epochs_decay,
              " >= 0 and --batch ", c.batch, " >= 1");
  NABLA_CHECK(c.lr > 0 && c.ngf >= 1 && c.ndf >= 1 && c.n_layers_D >= 1 && c.pool_size >= 0,
              c.model, ": --lr ", c.lr, ", --ngf ", c.ngf, ", --ndf ", c.ndf, ", --n_layers_D ",
              c.n_layers_D, " must be > 0 and --pool_size ", c.pool_size, " >= 0");
  NABLA_CHECK(!c.out.empty(), c.model, ": --out is empty");
  Data d = load_data(c, true);
  const int64_t nA = d.train.A.size(0), nB = d.train.B.size(0);
  NABLA_CHECK(cyc || nA == nB, "pix2pix: ", nA, " A images but ", nB, " B images");
  const int64_t per_epoch = cyc ? std::max(nA, nB) : nA;
  NABLA_CHECK(per_epoch >= c.batch, c.model, ": ", per_epoch,
              " training images are fewer than one batch of ", c.batch);
  const int64_t steps_per_epoch = per_epoch / c.batch;
  if (show)
    std::fprintf(stderr, "%s: %s, A %s, B %s%s; %s, device %s\n", c.model.c_str(),
                 d.train.name.c_str(), shape_str(d.train.A.shape()).c_str(),
                 shape_str(d.train.B.shape()).c_str(), d.train.paired ? " (paired)" : " (unpaired)",
                 c.netG.c_str(), dev.str().c_str());

  Generator init(c.seed);
  std::unique_ptr<CycleGANModel> cg;
  std::unique_ptr<Pix2PixModel> pp;
  if (cyc)
    cg = std::make_unique<CycleGANModel>(c, dev, &init);
  else
    pp = std::make_unique<Pix2PixModel>(c, dev, &init);
  Generator augment(c.seed * 2 + 1);
  const EpochLinearDecay schedule(c.lr, c.n_epochs, c.n_epochs_decay, steps_per_epoch);
  PoolState pool_state_A(c.pool_size, c.input_nc, c.crop_size, c.crop_size);
  PoolState pool_state_B(c.pool_size, c.output_nc, c.crop_size, c.crop_size);

  std::vector<std::string> terms = cyc ? std::vector<std::string>{"d_A", "g_A", "cycle_A", "idt_A",
                                                                  "d_B", "g_B", "cycle_B", "idt_B"}
                                       : std::vector<std::string>{"d", "g_gan", "g_l1"};
  std::vector<std::string> columns = {"epoch"};
  columns.insert(columns.end(), terms.begin(), terms.end());
  columns.insert(columns.end(), {"lr", "epoch_seconds", "train_images_per_s"});
  const io::Rgb palette[] = {{30, 90, 200},   {220, 90, 30},   {40, 160, 60},   {150, 60, 180},
                             {120, 170, 240}, {240, 170, 120}, {130, 210, 140}, {200, 150, 220}};
  train::CurvePanel adversarial{
      "adversarial terms", "epoch", std::string("loss (") + c.loss + ")", {}};
  train::CurvePanel reconstruction{"reconstruction terms", "epoch", "weighted L1", {}};
  for (size_t i = 0; i < terms.size(); ++i) {
    const std::string& t = terms[i];
    const bool adv =
        t[0] == 'd' || t.rfind("g_A", 0) == 0 || t.rfind("g_B", 0) == 0 || t == "g_gan";
    (adv ? adversarial : reconstruction).curves.push_back({t, t, palette[i % 8]});
  }
  train::Trainer trainer({.name = c.model + " train",
                          .out = c.out,
                          .epochs = c.n_epochs + c.n_epochs_decay,
                          .steps_per_epoch = steps_per_epoch,
                          .checkpoint_every = c.checkpoint_every,
                          .resume = resume,
                          .show = show},
                         columns, {adversarial, reconstruction});
  std::vector<std::pair<std::string, nn::Module*>> nets;
  if (cyc) {
    nets = {{"G_A", cg->G_A.get()},
            {"G_B", cg->G_B.get()},
            {"D_A", cg->D_A.get()},
            {"D_B", cg->D_B.get()}};
  } else {
    nets = {{"G", pp->G.get()}, {"D", pp->D.get()}};
  }
  for (auto& [name, m] : nets) trainer.add_module(name, *m);
  if (cyc) {
    trainer.add_module("pool_A", pool_state_A);
    trainer.add_module("pool_B", pool_state_B);
    trainer.add_optimizer("optimizer_G", *cg->opt_G, &schedule);
    trainer.add_optimizer("optimizer_D", *cg->opt_D, &schedule);
    trainer.add_generator("pool_A", cg->pool_A.generator());
    trainer.add_generator("pool_B", cg->pool_B.generator());
    trainer.add_generator("order", cg->order_gen);
  } else {
    trainer.add_optimizer("optimizer_G", *pp->opt_G, &schedule);
    trainer.add_optimizer("optimizer_D", *pp->opt_D, &schedule);
    trainer.add_generator("order", pp->order_gen);
  }
  trainer.add_generator("augment", augment);
  trainer.set_options(c);
  trainer.set_metadata([&]() -> std::map<std::string, std::map<std::string, std::string>> {
    if (cyc) {
      pool_state_A.save_from(cg->pool_A);
      pool_state_B.save_from(cg->pool_B);
    }
    std::map<std::string, std::map<std::string, std::string>> meta;
    for (auto& [name, m] : nets)
      meta[name] = {
          {"model", m->type_name()},  {"image2image", c.model},
          {"netG", c.netG},           {"norm", c.norm},
          {"loss", c.loss},           {"task", c.task},
          {"direction", c.direction}, {"epoch", std::to_string(trainer.log().records().size())}};
    return meta;
  });

  // The fixed test images of the panels.
  const int64_t k_panel = std::min<int64_t>({4, d.test.A.size(0), d.test.B.size(0)});
  const Tensor panel_A = d.test.A.slice(0, k_panel).to(dev);
  const Tensor panel_B = d.test.B.slice(0, k_panel).to(dev);
  const std::string samples_dir = (fs::path(c.out) / "samples").string();
  auto center = [&](Tensor x) {
    // Panels at the crop size: the test images resized to load_size, their central crop.
    if (x.size(2) != c.load_size || x.size(3) != c.load_size)
      x = upsample_bilinear2d(x, c.load_size, c.load_size, false);
    if (x.size(2) == c.crop_size) return x;
    const int64_t o = (x.size(2) - c.crop_size) / 2;
    return x.narrow(2, o, c.crop_size).narrow(3, o, c.crop_size).contiguous();
  };
  auto panel = [&]() {
    NoGradGuard ng;
    for (auto& [name, m] : nets) m->eval();
    Tensor a = center(panel_A), b = center(panel_B);
    Tensor grid;
    if (cyc) {
      Tensor ga = (*cg->G_A)(a), fb = (*cg->G_B)(b);
      grid =
          concat({rgb(a), rgb(ga), rgb((*cg->G_B)(ga)), rgb(b), rgb(fb), rgb((*cg->G_A)(fb))}, 0);
    } else {
      grid = concat({rgb(a), rgb((*pp->G)(a)), rgb(b)}, 0);
    }
    for (auto& [name, m] : nets) m->train();
    return grid;
  };

  bool first_epoch = true;
  std::vector<int64_t> order;
  json summary = trainer.fit(
      [&](int64_t epoch) {
        if (first_epoch && resume && cyc) {
          pool_state_A.load_into(cg->pool_A, dev);
          pool_state_B.load_into(cg->pool_B, dev);
        }
        first_epoch = false;
        for (auto& [name, m] : nets) m->train();
        order = c.serial_batches ? std::vector<int64_t>() : permutation(nA, c.seed, epoch);
        if (c.serial_batches) {
          order.resize(static_cast<size_t>(nA));
          std::iota(order.begin(), order.end(), 0);
        }
      },
      [&](const train::StepInfo& s) {
        std::vector<int64_t> ia, ib;
        for (int64_t k = 0; k < c.batch; ++k) {
          const int64_t i = s.batch * c.batch + k;
          ia.push_back(order[size_t(i % nA)]);
          if (cyc) {
            if (c.serial_batches) {
              ib.push_back(i % nB);
            } else {
              const double u = rand({1}, DType::Float64, Device::cpu(), &augment).item<double>();
              ib.push_back(std::min(nB - 1, int64_t(u * double(nB))));
            }
          }
        }
        Tensor a, b;
        if (cyc) {
          // Unpaired: A and B get their own crops and flips.
          a = data::jitter({gather(d.train.A, ia)}, c.load_size, c.crop_size, !c.no_flip,
                           augment)[0];
          b = data::jitter({gather(d.train.B, ib)}, c.load_size, c.crop_size, !c.no_flip,
                           augment)[0];
        } else {
          auto ab = data::jitter({gather(d.train.A, ia), gather(d.train.B, ia)}, c.load_size,
                                 c.crop_size, !c.no_flip, augment);
          a = ab[0];
          b = ab[1];
        }
        a = a.to(dev);
        b = b.to(dev);
        std::vector<std::pair<std::string, double>> m;
        if (cyc) {
          auto o = cg->forward(a, b);
          m = cg->step_G(a, b, o);
          auto md = cg->step_D(a, b, o);
          m.insert(m.end(), md.begin(), md.end());
        } else {
          m = pp->step(a, b);
        }
        return train::StepResult{m, c.batch};
      },
      [&](const train::EpochStats& st) {
        gan::save_epoch_samples(samples_dir, st.epoch, panel(), k_panel);
        train::Record r{{"epoch", double(st.epoch)},
                        {"lr", schedule.lr_at((st.epoch - 1) * steps_per_epoch)},
                        {"epoch_seconds", st.seconds},
                        {"train_images_per_s", double(st.samples) / st.seconds}};
        for (const std::string& t : terms) r[t] = st.mean.at(t);
        return r;
      });

  const json records = trainer.log().records();
  const json last = records.empty() ? json::object() : records.back();
  summary.update({{"model", c.model},
                  {"options", c},
                  {"device", dev.str()},
                  {"data", d.train.name},
                  {"n_A", nA},
                  {"n_B", nB},
                  {"paired", d.train.paired},
                  {"last", last},
                  {"curves", trainer.log().curves_path()},
                  {"samples", (fs::path(samples_dir) /
                               ("epoch_" +
                                [&] {
                                  char buf[8];
                                  std::snprintf(buf, sizeof buf, "%03lld",
                                                (long long)(c.n_epochs + c.n_epochs_decay));
                                  return std::string(buf);
                                }() +
                                ".png"))
                                  .string()}});
  json files = json::object();
  for (auto& [name, m] : nets) files[name] = trainer.checkpoint().module_path(name);
  summary["networks"] = files;
  trainer.log().write_summary(summary);
  return summary;
}

// ---------------------------------------------------------------- translate
json translate_images(const Image2ImageTranslation& t, Device dev) {
  NABLA_CHECK(t.input.empty() != t.task.empty(),
              "translate: give exactly one of --input DIR and --task T");
  NABLA_CHECK(!t.out.empty(), "translate: --out is empty");
  NABLA_CHECK(t.domain == "A" || t.domain == "B", "translate: --domain ", t.domain,
              ": expected A or B");
  LoadedNet g = load_net(t.checkpoint, t.padding_type);
  NABLA_CHECK(g.kind != "NLayerDiscriminator", "translate: ", t.checkpoint,
              " holds a discriminator (", g.args, "), not a generator");
  Tensor x;
  std::vector<std::string> names;
  if (!t.task.empty()) {
    data::TranslationSet s = data::translation_task(t.task, false, t.limit, t.data);
    x = t.domain == "A" ? s.A : s.B;
    for (int64_t i = 0; i < x.size(0); ++i)
      names.push_back(t.task + "_" + t.domain + "_" + std::to_string(i) + ".png");
  } else {
    NABLA_CHECK(fs::is_directory(t.input), "translate: --input ", t.input, " is not a folder");
    data::Dataset ds = data::load_images(t.input, int(g.input_nc));
    x = sub(mul(ds.images, 2.0), 1.0);
    for (const auto& e : fs::directory_iterator(t.input)) {
      const std::string n = e.path().filename().string();
      if (e.is_regular_file() && !n.empty() && n[0] != '.') names.push_back(n);
    }
    std::sort(names.begin(), names.end());
    if (t.limit > 0 && x.size(0) > t.limit) {
      x = x.slice(0, t.limit).contiguous();
      names.resize(size_t(t.limit));
    }
  }
  NABLA_CHECK(x.size(1) == g.input_nc, "translate: the generator in ", t.checkpoint, " takes ",
              g.input_nc, " channels, the images have ", x.size(1));
  g.net->to(dev);
  g.net->train(t.train_mode);
  std::vector<Tensor> outs;
  {
    NoGradGuard ng;
    for (int64_t i = 0; i < x.size(0); i += 64) {
      const int64_t m = std::min<int64_t>(64, x.size(0) - i);
      outs.push_back((*g.net)(x.narrow(0, i, m).contiguous().to(dev)).to(Device::cpu()));
    }
  }
  Tensor y = concat(outs, 0);
  fs::create_directories(t.out);
  for (int64_t i = 0; i < y.size(0); ++i) {
    fs::path p = fs::path(t.out) / names[size_t(i)];
    p.replace_extension(".png");
    io::save_png(p.string(), mul(add(y.slice(i, i + 1).squeeze(0), 1.0), 0.5));
  }
  const int64_t k = std::min<int64_t>(8, y.size(0));
  const std::string panel = (fs::path(t.out) / "panel.png").string();
  io::save_image_grid(panel,
                      mul(add(concat({rgb(x.slice(0, k)), rgb(y.slice(0, k))}, 0), 1.0), 0.5), k, 2,
                      std::max<int64_t>(1, 96 / y.size(2)));
  json s = {{"n", y.size(0)},
            {"generator", g.kind},
            {"arguments", g.args},
            {"checkpoint", t.checkpoint},
            {"mode", t.train_mode ? "train" : "eval"},
            {"output_mean", mean(y).item<double>()},
            {"output_min", -max(neg(y)).item<double>()},
            {"output_max", max(y).item<double>()},
            {"out", t.out},
            {"panel", panel}};
  if (!t.save_npy.empty()) {
    fs::create_directories(t.save_npy);
    const std::string in = (fs::path(t.save_npy) / "inputs.npy").string();
    const std::string out = (fs::path(t.save_npy) / "outputs.npy").string();
    save_npy(in, x.contiguous());
    save_npy(out, y.contiguous());
    s["inputs_npy"] = in;
    s["outputs_npy"] = out;
  }
  return s;
}

// ---------------------------------------------------------------- evaluate
namespace {

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}

// FashionCNN fc1 features after ReLU and predicted classes of 32x32 images in [-1, 1].
std::pair<Tensor, std::vector<int64_t>> fashion_features(nn::Module& net, const Tensor& x32) {
  Tensor x = mul(add(x32.narrow(2, 2, 28).narrow(3, 2, 28).contiguous(), 1.0), 0.5);
  Tensor captured;
  nn::ForwardHookGuard hook(net.submodule("fc1"),
                            [&](nn::Module&, const Tensor&, const Tensor& out) {
                              captured = out;
                              return std::optional<Tensor>();
                            });
  NoGradGuard ng;
  std::vector<Tensor> feats;
  std::vector<int64_t> cls;
  for (int64_t i = 0; i < x.size(0); i += 500) {
    const int64_t m = std::min<int64_t>(500, x.size(0) - i);
    Tensor logits = net(x.narrow(0, i, m).contiguous());
    feats.push_back(relu(captured));
    const std::vector<int64_t> p = argmax(logits, 1).to_vector<int64_t>();
    cls.insert(cls.end(), p.begin(), p.end());
  }
  return {concat(feats, 0), cls};
}

}  // namespace

json evaluate_image2image(const Image2ImageEvaluation& e, Device dev) {
  NABLA_CHECK(e.task.empty() != e.dataroot.empty(),
              "eval: give exactly one of --task and --dataroot");
  LoadedNet g = load_net(e.checkpoint, e.padding_type);
  NABLA_CHECK(g.kind != "NLayerDiscriminator", "eval: ", e.checkpoint, " holds a discriminator (",
              g.args, "), not a generator");
  data::TranslationSet s =
      !e.task.empty() ? data::translation_task(e.task, false, e.limit, e.data)
                      : data::translation_folder(e.dataroot, "test", e.aligned, int(g.input_nc),
                                                 int(g.output_nc), e.limit);
  if (e.direction == "BtoA") {
    // he2ihc's test tiles are the same in both stains: B -> A is paired by index as well.
    std::swap(s.A, s.B);
    s.B_of_A = s.B_of_A.defined() ? s.B : Tensor();
  }
  NABLA_CHECK(s.A.size(1) == g.input_nc, "eval: the generator in ", e.checkpoint, " takes ",
              g.input_nc, " channels, the A images of ", s.name, " have ", s.A.size(1));
  g.net->to(dev);
  g.net->eval();
  std::vector<Tensor> outs;
  {
    NoGradGuard ng;
    for (int64_t i = 0; i < s.A.size(0); i += 64) {
      const int64_t m = std::min<int64_t>(64, s.A.size(0) - i);
      outs.push_back((*g.net)(s.A.narrow(0, i, m).contiguous().to(dev)).to(Device::cpu()));
    }
  }
  const Tensor y = concat(outs, 0);
  json r = {{"n", y.size(0)},
            {"data", s.name},
            {"generator", g.kind},
            {"arguments", g.args},
            {"checkpoint", e.checkpoint},
            {"direction", e.direction}};
  const Tensor truth = s.B_of_A.defined() ? s.B_of_A : (s.paired ? s.B : Tensor());
  if (truth.defined()) {
    r["reference"] = s.B_of_A.defined() ? "hidden pairs" : "paired B";
    r["l1"] = mean_of(metrics::l1_per_image(y, truth));
    r["psnr"] = mean_of(metrics::psnr(y, truth, 2.0));
    r["ssim"] = mean_of(metrics::ssim(y, truth, 2.0));
    if (s.A.size(1) == truth.size(1)) {
      r["l1_identity"] = mean_of(metrics::l1_per_image(s.A, truth));
      r["psnr_identity"] = mean_of(metrics::psnr(s.A, truth, 2.0));
      r["ssim_identity"] = mean_of(metrics::ssim(s.A, truth, 2.0));
    }
  }
  if (!e.classifier.empty()) {
    NABLA_CHECK(y.size(1) == 1 && y.size(2) == 32 && y.size(3) == 32,
                "eval: --classifier needs 1x32x32 ",
                "images (the Fashion-MNIST tasks), the generator gives ", shape_str(y.shape()));
    std::string arch;
    auto net = load_classifier(e.classifier, &arch);
    NABLA_CHECK(arch == "fashioncnn", "eval: --classifier ", e.classifier, " is a ", arch,
                "; the features are FashionCNN's fc1");
    auto [fy, cy] = fashion_features(*net, y);
    auto [fa, ca] = fashion_features(*net, s.A);
    auto [fb, cb] = fashion_features(*net, s.B);
    r["fd"] = metrics::frechet_distance(fy, fb);
    r["fd_identity"] = metrics::frechet_distance(fa, fb);
    // The target class: the most frequent prediction on the real B images.
    std::vector<int64_t> hist(10, 0);
    for (int64_t k : cb) ++hist[size_t(k)];
    const int64_t target = int64_t(std::max_element(hist.begin(), hist.end()) - hist.begin());
    auto fraction = [&](const std::vector<int64_t>& v) {
      return double(std::count(v.begin(), v.end(), target)) / double(v.size());
    };
    r["target_class"] = target;
    r["target_fraction"] = fraction(cy);
    r["target_fraction_identity"] = fraction(ca);
    r["target_fraction_real_B"] = fraction(cb);
  }
  return r;
}

}  // namespace nabla::nets
