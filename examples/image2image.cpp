// nabla cyclegan train|translate|eval and nabla pix2pix train|translate|eval: image-to-image
// translation with the networks, options and data layout of junyanz/pytorch-CycleGAN-and-pix2pix.
// The recipes are nets/image2image_train.h; this file maps the flags onto them and prints.
#include <cstdio>
#include <memory>

#include <nabla/data/translation.h>
#include <nabla/error.h>
#include <nabla/gan/losses.h>
#include <nabla/train/trainer.h>
#include <nets/image2image_train.h>

#include "common.h"

namespace nabla::cli {

namespace {

struct TrainFlags {
  Common c;
  nets::Image2ImageTraining t;
};
struct TranslateFlags {
  Common c;
  nets::Image2ImageTranslation t;
};
struct EvalFlags {
  Common c;
  nets::Image2ImageEvaluation e;
};

constexpr unsigned kI2ITrainFlags = kDevice | kData | kOut | kJson | kQuiet | kSeed | kBatch | kLr |
                                    kResume | kCheckpointEvery | kTrainLimit | kThreads;

void print_train(const nlohmann::json& s) {
  const nlohmann::json& o = s["options"];
  std::printf("%s on %s (%lld A, %lld B images%s), %s, norm %s, loss %s, %lld + %lld epochs\n",
              s["model"].get<std::string>().c_str(), s["data"].get<std::string>().c_str(),
              (long long)s["n_A"].get<int64_t>(), (long long)s["n_B"].get<int64_t>(),
              s["paired"].get<bool>() ? ", paired" : ", unpaired",
              o["netG"].get<std::string>().c_str(), o["norm"].get<std::string>().c_str(),
              o["loss"].get<std::string>().c_str(), (long long)o["n_epochs"].get<int64_t>(),
              (long long)o["n_epochs_decay"].get<int64_t>());
  std::printf("last epoch:");
  for (const auto& [k, v] : s["last"].items())
    if (k != "epoch" && k != "epoch_seconds" && k != "train_images_per_s" && k != "lr")
      std::printf(" %s %.4f", k.c_str(), v.get<double>());
  std::printf("\n");
  std::printf("trained in %.1f s (%.1f img/s on %s)\n", s["train_seconds"].get<double>(),
              s["samples_per_second"].get<double>(), s["device"].get<std::string>().c_str());
  std::printf("wrote");
  for (const auto& [k, v] : s["networks"].items()) std::printf(" %s", v.get<std::string>().c_str());
  std::printf(", %s, %s\n", s["samples"].get<std::string>().c_str(),
              s["curves"].get<std::string>().c_str());
}

void print_translate(const nlohmann::json& s) {
  std::printf("%lld images through %s(%s) in %s mode; outputs mean %.4f in [%.4f, %.4f]\n",
              (long long)s["n"].get<int64_t>(), s["generator"].get<std::string>().c_str(),
              s["arguments"].get<std::string>().c_str(), s["mode"].get<std::string>().c_str(),
              s["output_mean"].get<double>(), s["output_min"].get<double>(),
              s["output_max"].get<double>());
  std::printf("wrote %s/*.png and %s\n", s["out"].get<std::string>().c_str(),
              s["panel"].get<std::string>().c_str());
  if (s.contains("inputs_npy"))
    std::printf("wrote %s, %s\n", s["inputs_npy"].get<std::string>().c_str(),
                s["outputs_npy"].get<std::string>().c_str());
}

void print_eval(const nlohmann::json& s) {
  std::printf("%lld test images of %s through %s(%s)\n", (long long)s["n"].get<int64_t>(),
              s["data"].get<std::string>().c_str(), s["generator"].get<std::string>().c_str(),
              s["arguments"].get<std::string>().c_str());
  if (s.contains("l1")) {
    std::printf("against the %s: L1 %.4f, PSNR %.2f dB, SSIM %.4f\n",
                s["reference"].get<std::string>().c_str(), s["l1"].get<double>(),
                s["psnr"].get<double>(), s["ssim"].get<double>());
    if (s.contains("l1_identity"))
      std::printf("identity baseline (A itself): L1 %.4f, PSNR %.2f dB, SSIM %.4f\n",
                  s["l1_identity"].get<double>(), s["psnr_identity"].get<double>(),
                  s["ssim_identity"].get<double>());
  }
  if (s.contains("fd")) {
    std::printf("FD to the B images (FashionCNN fc1): %.4f (untranslated A: %.4f)\n",
                s["fd"].get<double>(), s["fd_identity"].get<double>());
    std::printf("classified as class %lld: %.4f of G(A), %.4f of A, %.4f of real B\n",
                (long long)s["target_class"].get<int64_t>(), s["target_fraction"].get<double>(),
                s["target_fraction_identity"].get<double>(),
                s["target_fraction_real_B"].get<double>());
  }
  if (!s.contains("l1") && !s.contains("fd"))
    std::printf("no metric: unpaired data without --classifier\n");
}

void register_model(CLI::App& app, const std::string& model) {
  const bool cyc = model == "cyclegan";
  CLI::App* cmd = app.add_subcommand(
      model,
      cyc ? "CycleGAN (Zhu et al. 2017): unpaired translation A <-> B with two generators, "
            "two PatchGAN\ndiscriminators and the cycle-consistency loss."
          : "pix2pix (Isola et al. 2017): paired translation A -> B with a U-Net generator "
            "and a\nconditional PatchGAN discriminator, adversarial loss plus lambda_L1 L1.");
  cmd->require_subcommand(1);
  const std::string tasks = cyc ? "sneaker2boot (default), he2ihc, edges2fashion" : "edges2fashion";

  auto f = std::make_shared<TrainFlags>();
  f->t.model = model;
  f->c.batch = 1;
  f->c.lr = 2e-4;
  f->c.out = "runs/" + model;
  CLI::App* train = cmd->add_subcommand(
      "train",
      std::string(
          cyc ? "Train CycleGAN: G_A: A -> B and G_B: B -> A (ResnetGenerator), D_A on B and D_B "
                "on A\n(NLayerDiscriminator), LSGAN, lambda_A = lambda_B = 10, identity "
                "0.5 lambda, image pools\nof 50, Adam 2e-4 (0.5, 0.999); each iteration "
                "the G step with both D frozen,\nthen the D step on pooled fakes with the "
                "loss halved."
              : "Train pix2pix: G: A -> B (UnetGenerator with dropout, batch norm), D on "
                "cat(A, B)\n(NLayerDiscriminator), BCE with logits plus lambda_L1 = 100; "
                "each iteration the D step,\nthen the G step with D frozen. Adam 2e-4 "
                "(0.5, 0.999).") +
          "\nThe rate is constant for --n_epochs, then decays linearly over --n_epochs_decay.\n"
          "Data: --task (" +
          tasks + ") or --dataroot DIR in the reference's layout\n(" +
          (cyc ? "DIR/trainA, DIR/trainB, DIR/testA, DIR/testB"
               : "DIR/train/*.png with A|B side by side, or DIR/train/A and DIR/train/B") +
          "). Writes DIR/<net>.safetensors (the reference's\nstate_dict keys), DIR/metrics.csv, "
          "DIR/curves.png, DIR/samples/epoch_<e>.png (" +
          (cyc ? "rows A, G_A(A),\nG_B(G_A(A)), B, G_B(B), G_A(G_B(B))" : "rows A, G(A), B") +
          ") and DIR/summary.json; --resume DIR continues (and may extend --n_epochs_decay).");
  add_common_flags(train, f->c, kI2ITrainFlags,
                   {{"--batch", "images per iteration (the reference's --batch_size, default 1)"},
                    {"--lr", "Adam learning rate of every network"},
                    {"--resume",
                     "continue the run checkpointed in DIR (its options, weights, "
                     "optimizers, pools and random state); --n_epochs_decay may be "
                     "raised to train longer"},
                    {"--train-limit",
                     "use at most N training images per domain (default: the "
                     "task's CPU-sized subset)"}});
  nets::Image2ImageTraining& t = f->t;
  train->add_option("--task", t.task, "built-in task: " + tasks);
  train->add_option("--dataroot", t.dataroot,
                    "a folder in the reference's layout instead of --task");
  train->add_option("--direction", t.direction, "AtoB or BtoA (swap the domains)")
      ->capture_default_str()
      ->check(CLI::IsMember({"AtoB", "BtoA"}));
  train->add_option("--input_nc", t.input_nc, "channels of A, 1 or 3 (default: the data's)")
      ->check(CLI::IsMember({0, 1, 3}));
  train->add_option("--output_nc", t.output_nc, "channels of B, 1 or 3 (default: the data's)")
      ->check(CLI::IsMember({0, 1, 3}));
  train->add_option("--load_size", t.load_size, "resize images to this size (default: theirs)");
  train->add_option("--crop_size", t.crop_size,
                    "then crop at random to this size (default: load_size)");
  train->add_flag("--no_flip", t.no_flip, "no random left-right flip");
  train->add_flag("--serial_batches", t.serial_batches,
                  "take images in order (otherwise A is shuffled and B drawn at random)");
  train->add_option("--netG", t.netG,
                    std::string("resnet_<n>blocks or unet_<size> (default: ") +
                        (cyc ? "resnet_6blocks" : "unet_<crop_size>") + ")");
  train
      ->add_option("--norm", t.norm,
                   std::string("instance or batch (default: ") + (cyc ? "instance" : "batch") + ")")
      ->check(CLI::IsMember({"", "instance", "batch"}));
  train
      ->add_option("--dropout", t.dropout,
                   "auto (the reference's: off for CycleGAN, on for pix2pix), on or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "on", "off"}));
  train->add_option("--ngf", t.ngf, "generator width (the reference: 64)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  train->add_option("--ndf", t.ndf, "discriminator width (the reference: 64)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  train->add_option("--n_layers_D", t.n_layers_D, "PatchGAN depth")
      ->capture_default_str()
      ->check(CLI::Range(1, 8));
  std::vector<std::string> losses = gan::loss_names();
  train
      ->add_option("--loss", t.loss,
                   std::string("GAN loss (default: ") +
                       (cyc ? "lsgan" : "nonsaturating, the reference's vanilla") +
                       "); any of engine/gan: minimax, nonsaturating, lsgan, rsgan, rasgan, "
                       "ralsgan, turing")
      ->check(CLI::IsMember([&] {
        losses.push_back("");
        return losses;
      }()));
  if (cyc) {
    train->add_option("--lambda_A", t.lambda_A, "weight of the cycle loss A -> B -> A")
        ->capture_default_str();
    train->add_option("--lambda_B", t.lambda_B, "weight of the cycle loss B -> A -> B")
        ->capture_default_str();
    train
        ->add_option("--lambda_identity", t.lambda_identity,
                     "identity loss weight, relative to lambda_A and lambda_B (0: none)")
        ->capture_default_str();
    train->add_option("--pool_size", t.pool_size, "image pool size (0: no pool)")
        ->capture_default_str();
  } else {
    train->add_option("--lambda_L1", t.lambda_L1, "weight of the L1 loss")->capture_default_str();
    t.pool_size = 0;
  }
  train->add_option("--n_epochs", t.n_epochs, "epochs at the initial rate")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  train->add_option("--n_epochs_decay", t.n_epochs_decay, "epochs of linear decay to zero")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  train->add_option("--beta1", t.beta1, "Adam beta1")->capture_default_str();
  train->callback([f, train] {
    const Common& c = f->c;
    nets::Image2ImageTraining t = f->t;
    t.batch = c.batch;
    t.lr = c.lr;
    t.seed = c.seed;
    t.data = c.data;
    t.train_limit = c.train_limit;
    t.out = c.out;
    t.checkpoint_every = c.checkpoint_every;
    t.device = c.device;
    t.threads = c.threads;
    // A resumed run may extend its decay (the number of epochs); every other option stays.
    const bool extend = !c.resume.empty() && train->count("--n_epochs_decay") > 0;
    const int64_t decay = t.n_epochs_decay;
    if (extend)
      train::read_option(train::saved_options(c.resume), "saved options", "n_epochs_decay",
                         t.n_epochs_decay);
    t = resume_options(*train, c, t).get<nets::Image2ImageTraining>();
    if (extend) t.n_epochs_decay = decay;
    Common run = c;
    run.threads = t.threads;
    apply_threads(run);
    print_report(
        c,
        nets::train_image2image(t, resolve_device(t.device), !c.resume.empty(), c.show_progress()),
        print_train);
  });

  auto g = std::make_shared<TranslateFlags>();
  g->c.out = "runs/" + model + "_translated";
  CLI::App* tr = cmd->add_subcommand(
      "translate",
      "Translate images with a trained generator (in eval mode unless --train-mode): each\n"
      "image of --input DIR (PNGs, converted to the generator's channels) or of a task's test\n"
      "split (--task, side --domain) -> DIR/<name>.png, and DIR/panel.png (inputs over outputs).\n"
      "--checkpoint takes our networks or the reference's state dicts (the architecture is read\n"
      "from the keys). With --save-npy DIR2 also DIR2/inputs.npy and DIR2/outputs.npy (float32\n"
      "[N, C, H, W] in [-1, 1]), which scripts/torch_image2image.py check compares with PyTorch.");
  add_common_flags(tr, g->c, kDevice | kData | kOut | kJson | kThreads);
  tr->add_option("--checkpoint", g->t.checkpoint,
                 std::string("a generator: ") +
                     (cyc ? "G_A.safetensors or G_B.safetensors" : "G.safetensors"))
      ->required()
      ->check(CLI::ExistingFile);
  tr->add_option("--input", g->t.input, "a folder of PNG images");
  tr->add_option("--task", g->t.task, "a built-in task's test images instead of --input")
      ->check(CLI::IsMember(data::translation_task_names()));
  tr->add_option("--domain", g->t.domain, "with --task: translate its A or its B images")
      ->capture_default_str()
      ->check(CLI::IsMember({"A", "B"}));
  tr->add_option("--limit", g->t.limit, "at most N images (0: all)")->capture_default_str();
  tr->add_option("--save-npy", g->t.save_npy, "also write inputs.npy and outputs.npy into DIR");
  tr->add_option("--padding_type", g->t.padding_type,
                 "ResnetGenerator padding (not visible in the keys): reflect, replicate or zero")
      ->capture_default_str()
      ->check(CLI::IsMember({"reflect", "replicate", "zero"}));
  tr->add_flag("--train-mode", g->t.train_mode,
               "batch statistics and dropout as in training (the reference's test without --eval)");
  tr->callback([g] {
    apply_threads(g->c);
    nets::Image2ImageTranslation t = g->t;
    t.out = g->c.out;
    t.data = g->c.data;
    print_report(g->c, nets::translate_images(t, resolve_device(g->c.device)), print_translate);
  });

  auto e = std::make_shared<EvalFlags>();
  e->e.aligned = !cyc;
  CLI::App* ev = cmd->add_subcommand(
      "eval",
      "Evaluate a generator on a test split, in eval mode. Paired data (edges2fashion, a\n"
      "pix2pix --dataroot) and he2ihc (its hidden pairs): L1, PSNR and SSIM (11x11 Gaussian\n"
      "window, sigma 1.5) of G(A) against B, with the untranslated A as a baseline when the\n"
      "channels agree. Fashion-MNIST tasks with --classifier (a FashionCNN of `classify train`):\n"
      "the Frechet distance of G(A) to the test B images on fc1 features, and the fraction of\n"
      "G(A) classified as B's class (sneaker2boot: ankle boot).");
  add_common_flags(ev, e->c, kDevice | kData | kJson | kThreads);
  ev->add_option("--checkpoint", e->e.checkpoint, "the A -> B generator")
      ->required()
      ->check(CLI::ExistingFile);
  ev->add_option("--task", e->e.task, "a built-in task")
      ->check(CLI::IsMember(data::translation_task_names()));
  ev->add_option("--dataroot", e->e.dataroot,
                 "a folder in the reference's layout (its test split)");
  ev->add_option("--direction", e->e.direction, "AtoB, or BtoA for a B -> A generator")
      ->capture_default_str()
      ->check(CLI::IsMember({"AtoB", "BtoA"}));
  ev->add_option("--classifier", e->e.classifier, "FashionCNN checkpoint (FD and class fraction)")
      ->check(CLI::ExistingFile);
  ev->add_option("--limit", e->e.limit, "at most N test images per domain (0: all)")
      ->capture_default_str();
  ev->add_option("--padding_type", e->e.padding_type, "ResnetGenerator padding")
      ->capture_default_str()
      ->check(CLI::IsMember({"reflect", "replicate", "zero"}));
  ev->callback([e] {
    apply_threads(e->c);
    nets::Image2ImageEvaluation v = e->e;
    v.data = e->c.data;
    print_report(e->c, nets::evaluate_image2image(v, resolve_device(e->c.device)), print_eval);
  });
}

}  // namespace

void register_image2image(CLI::App& app) {
  register_model(app, "cyclegan");
  register_model(app, "pix2pix");
}

}  // namespace nabla::cli
