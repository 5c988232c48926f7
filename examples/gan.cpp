// nabla gan train | sample: DCGAN and the conditional GAN on Fashion-MNIST at 32x32 with the
// discriminator losses of engine/gan. The recipe and the sampler are nets/gan_train.h; this file
// maps the flags onto them and prints the result.
#include <cstdio>

#include <nabla/error.h>
#include <nabla/gan/losses.h>
#include <nets/gan_train.h>

#include "common.h"

namespace nabla::cli {

namespace {

struct GanTrainFlags {
  Common c;
  nets::GanTraining t;
  std::string classes;
};

struct GanSampleFlags {
  Common c;
  nets::GanSampling s;
};

struct GanStudyFlags {
  Common c;
  nets::GanStudy s;
  std::string losses, classes;
  bool full = false;
};

struct GanEvalFlags {
  Common c;
  nets::GanEvaluation e;
  std::string classes;
};

constexpr unsigned kGanTrainFlags = kTrainingFlags & ~unsigned(kTestLimit);

std::vector<int64_t> parse_classes(const std::string& s) {
  std::vector<int64_t> out;
  for (const std::string& part : split_list(s)) {
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    NABLA_CHECK(used == part.size() && v >= 0 && v <= 9, "--classes ", s, ": '", part,
                "' is not a class index 0..9");
    out.push_back(v);
  }
  return out;
}

void print_train(const nlohmann::json& s) {
  std::printf("%s with the %s loss, %lld epochs on %lld images (classes",
              s["model"].get<std::string>().c_str(), s["loss"].get<std::string>().c_str(),
              (long long)s["epochs"].get<int64_t>(), (long long)s["n_train"].get<int64_t>());
  for (const auto& k : s["classes"]) std::printf(" %lld", (long long)k.get<int64_t>());
  std::printf(")\n");
  std::printf("last epoch: D loss %.4f, G loss %.4f, D(x) %.4f, D(G(z)) %.4f\n",
              s["d_loss"].get<double>(), s["g_loss"].get<double>(), s["d_x"].get<double>(),
              s["d_g_z"].get<double>());
  std::printf("trained in %.1f s (%.0f img/s on %s)\n", s["train_seconds"].get<double>(),
              s["images_per_second"].get<double>(), s["device"].get<std::string>().c_str());
  std::printf(
      "wrote %s, %s, %s, %s, %s\n", s["generator"].get<std::string>().c_str(),
      s["discriminator"].get<std::string>().c_str(), s["samples"].get<std::string>().c_str(),
      s["interpolation"].get<std::string>().c_str(), s["curves"].get<std::string>().c_str());
}

void print_sample(const nlohmann::json& s) {
  std::printf("%lld samples (nz %lld), pixels mean %.4f, std %.4f, in [%.4f, %.4f]\n",
              (long long)s["n"].get<int64_t>(), (long long)s["nz"].get<int64_t>(),
              s["pixel_mean"].get<double>(), s["pixel_std"].get<double>(),
              s["pixel_min"].get<double>(), s["pixel_max"].get<double>());
  std::printf("wrote %s\n", s["grid"].get<std::string>().c_str());
  if (s.contains("z_npy"))
    std::printf("wrote %s, %s\n", s["z_npy"].get<std::string>().c_str(),
                s["images_npy"].get<std::string>().c_str());
}

void print_eval(const nlohmann::json& s) {
  std::printf("%lld samples from %s against %lld %s images\n", (long long)s["n"].get<int64_t>(),
              s["source"].get<std::string>().c_str(), (long long)s["n_reference"].get<int64_t>(),
              s["reference"].get<std::string>().c_str());
  std::printf("FD %.4f (floor, train against test: %.4f), KID %.5f\n", s["fd"].get<double>(),
              s["fd_floor"].get<double>(), s["kid"].get<double>());
  std::printf("precision %.4f, recall %.4f (k = 3)\n", s["precision"].get<double>(),
              s["recall"].get<double>());
  std::printf("classes covered %lld of 10, KL(p(y) || uniform) %.4f, classifier score %.4f\n",
              (long long)s["classes_covered"].get<int64_t>(), s["coverage_kl"].get<double>(),
              s["classifier_score"].get<double>());
}

void print_study(const nlohmann::json& s) {
  std::printf("%-14s %-18s %-18s %-16s %-16s %-10s\n", "loss", "FD", "KID", "precision", "recall",
              "covered");
  for (const auto& row : s["table"]) {
    auto ms = [&](const char* k) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.4g +- %.2g", row[k]["mean"].get<double>(),
                    row[k]["sd"].get<double>());
      return std::string(buf);
    };
    std::printf("%-14s %-18s %-18s %-16s %-16s %-10s\n", row["loss"].get<std::string>().c_str(),
                ms("fd").c_str(), ms("kid").c_str(), ms("precision").c_str(), ms("recall").c_str(),
                ms("classes_covered").c_str());
  }
  std::printf("wrote %s\n", s["markdown"].get<std::string>().c_str());
}

}  // namespace

void register_gan(CLI::App& app) {
  CLI::App* gan_cmd = app.add_subcommand(
      "gan",
      "Generative adversarial networks: DCGAN and the conditional GAN on Fashion-MNIST padded to\n"
      "32x32, with seven discriminator losses; train, then sample a generator.");
  gan_cmd->require_subcommand(1);

  auto f = std::make_shared<GanTrainFlags>();
  f->c.epochs = 5;
  f->c.batch = 64;
  f->c.lr = 2e-4;
  f->c.out = "runs/gan";
  CLI::App* train = gan_cmd->add_subcommand(
      "train",
      "Train DCGAN (pytorch/examples' networks, one stage fewer for 32x32) or the conditional\n"
      "GAN. Each step updates D on a real and a generated batch, then G through the frozen D\n"
      "(no D weight gradient is computed). Adam (lr 2e-4, betas 0.5, 0.999). Writes\n"
      "DIR/generator.safetensors and DIR/discriminator.safetensors (pytorch/examples' state_dict\n"
      "keys), DIR/metrics.csv, DIR/curves.png (D and G losses, D(x) and D(G(z))),\n"
      "DIR/samples/epoch_<e>.png (fixed noise), DIR/samples/epochs.png, DIR/interpolation.png and\n"
      "DIR/summary.json; --resume DIR continues the run.");
  add_common_flags(train, f->c, kGanTrainFlags,
                   {{"--lr", "Adam learning rate of both networks"},
                    {"--train-limit", "use the first N training images of the chosen classes"}});
  nets::GanTraining& t = f->t;
  train->add_option("--model", t.model, "dcgan, or cgan (the label conditions G and D)")
      ->capture_default_str()
      ->check(CLI::IsMember({"dcgan", "cgan"}));
  train
      ->add_option("--loss", t.loss,
                   "minimax, nonsaturating, lsgan, rsgan, rasgan, ralsgan or turing (formulas "
                   "and sources in engine/gan/losses.h)")
      ->capture_default_str()
      ->check(CLI::IsMember(gan::loss_names()));
  train->add_option("--nz", t.nz, "latent dimension")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  train->add_option("--ngf", t.ngf, "generator width (channels of its last hidden layer)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  train->add_option("--ndf", t.ndf, "discriminator width (channels of its first layer)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  train->add_option("--beta1", t.beta1, "Adam beta1")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.999));
  train->add_option("--classes", f->classes,
                    "comma-separated Fashion-MNIST classes to train on (default: all ten)");
  train->callback([f, train] {
    const Common& c = f->c;
    nets::GanTraining t = f->t;
    t.classes = parse_classes(f->classes);
    t.epochs = c.epochs;
    t.batch = c.batch;
    t.lr = c.lr;
    t.seed = c.seed;
    t.data = c.data;
    t.train_limit = c.train_limit;
    t.out = c.out;
    t.checkpoint_every = c.checkpoint_every;
    t.device = c.device;
    t.threads = c.threads;
    t = resume_options(*train, c, t).get<nets::GanTraining>();
    Common run = c;
    run.threads = t.threads;
    apply_threads(run);
    const nlohmann::json s =
        nets::train_gan(t, resolve_device(t.device), !c.resume.empty(), c.show_progress());
    print_report(c, s, print_train);
  });

  auto g = std::make_shared<GanSampleFlags>();
  g->c.out = "runs/gan_samples";
  CLI::App* sample = gan_cmd->add_subcommand(
      "sample",
      "Draw samples from a trained generator (in eval mode): DIR/samples.png, a grid of --n.\n"
      "With --save-npy DIR2 also DIR2/z.npy (float32 [n, nz, 1, 1]) and DIR2/images.npy\n"
      "(float32 [n, 1, 32, 32] in [-1, 1]); for a conditional generator DIR2/labels.npy too\n"
      "(int64, the index within its classes, which its one-hot encodes).");
  add_common_flags(sample, g->c, kDevice | kOut | kJson | kSeed | kThreads);
  sample->add_option("--checkpoint", g->s.checkpoint, "generator.safetensors of `gan train`")
      ->required()
      ->check(CLI::ExistingFile);
  sample->add_option("--n", g->s.n, "number of samples")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  sample->add_option("--class", g->s.klass,
                     "conditional generator: the Fashion-MNIST class of every sample (default: "
                     "its classes in turn)");
  sample->add_option("--save-npy", g->s.save_npy, "also write z.npy and images.npy into DIR");
  sample->callback([g] {
    apply_threads(g->c);
    nets::GanSampling s = g->s;
    s.seed = g->c.seed;
    s.out = g->c.out;
    print_report(g->c, nets::sample_gan(s, resolve_device(g->c.device)), print_sample);
  });

  auto st = std::make_shared<GanStudyFlags>();
  st->c.epochs = 3;
  st->c.batch = 64;
  st->c.lr = 2e-4;
  st->c.train_limit = 6000;
  st->c.out = "runs/gan_study";
  st->s.train.ngf = st->s.train.ndf = 16;
  CLI::App* study = gan_cmd->add_subcommand(
      "study",
      "The discriminators side by side: DCGAN trained with every loss (or --losses) over\n"
      "--seeds seeds, each run evaluated as `gan eval` does against the first --n test images.\n"
      "The default size (ngf = ndf = 16, 3 epochs of 6000 images) is a small CPU budget; --full\n"
      "trains at ngf = ndf = 64 for 5 epochs of all images. Writes DIR/<loss>_seed<k>/ (each\n"
      "run's files and eval.json), DIR/study.json and DIR/study.md (mean and sd per loss).");
  add_common_flags(
      study, st->c,
      kDevice | kData | kOut | kJson | kQuiet | kBatch | kEpochs | kLr | kTrainLimit | kThreads);
  study->add_option("--classifier", st->s.classifier, "FashionCNN checkpoint of `classify train`")
      ->required()
      ->check(CLI::ExistingFile);
  study->add_option("--losses", st->losses, "comma-separated losses (default: all seven)");
  study->add_option("--seeds", st->s.seeds, "seeds per loss")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  study->add_option("--model", st->s.train.model, "dcgan or cgan")
      ->capture_default_str()
      ->check(CLI::IsMember({"dcgan", "cgan"}));
  study->add_option("--ngf", st->s.train.ngf, "generator width")->capture_default_str();
  study->add_option("--ndf", st->s.train.ndf, "discriminator width")->capture_default_str();
  study->add_option("--n", st->s.n, "samples and reference images per evaluation")
      ->capture_default_str()
      ->check(CLI::Range(4, 100000));
  study->add_option("--classes", st->classes, "comma-separated classes (default: all ten)");
  study->add_flag("--full", st->full,
                  "the full size: ngf = ndf = 64, 5 epochs, all training images (for a GPU)");
  study->callback([st] {
    apply_threads(st->c);
    nets::GanStudy s = st->s;
    s.train.epochs = st->full ? 5 : st->c.epochs;
    s.train.batch = st->c.batch;
    s.train.lr = st->c.lr;
    s.train.data = st->c.data;
    s.train.train_limit = st->full ? 0 : st->c.train_limit;
    if (st->full) s.train.ngf = s.train.ndf = 64;
    s.train.classes = parse_classes(st->classes);
    s.train.device = st->c.device;
    s.train.threads = st->c.threads;
    s.losses = split_list(st->losses);
    s.out = st->c.out;
    print_report(st->c, nets::gan_study(s, resolve_device(st->c.device), st->c.show_progress()),
                 print_study);
  });

  auto e = std::make_shared<GanEvalFlags>();
  CLI::App* eval = gan_cmd->add_subcommand(
      "eval",
      "Measure generated samples on the features of a FashionCNN (`classify train`): the\n"
      "Frechet distance on fc1 (128-d, after ReLU) with its floor FD(train, test), KID (cubic\n"
      "kernel), precision and recall (k = 3), classes covered, KL(p(y) || uniform) and the\n"
      "classifier score. Samples come from a generator (--checkpoint, drawn as `gan sample`\n"
      "draws them) or from a .npy made elsewhere (--images, float [n, 1, 32, 32] in [-1, 1]).");
  add_common_flags(eval, e->c, kDevice | kData | kJson | kSeed | kThreads);
  eval->add_option("--checkpoint", e->e.checkpoint, "generator.safetensors of `gan train`")
      ->check(CLI::ExistingFile);
  eval->add_option("--images", e->e.images, "samples as .npy, float [n, 1, 32, 32] in [-1, 1]")
      ->check(CLI::ExistingFile);
  eval->add_option("--classifier", e->e.classifier, "FashionCNN checkpoint of `classify train`")
      ->required()
      ->check(CLI::ExistingFile);
  eval->add_option("--reference", e->e.reference,
                   "real images to compare with: train, test (the first --n images of the "
                   "split) or a .npy like --images")
      ->capture_default_str();
  eval->add_option("--n", e->e.n, "samples drawn from --checkpoint, and reference images")
      ->capture_default_str()
      ->check(CLI::Range(4, 100000));
  eval->add_option("--class", e->e.klass, "conditional generator: sample only this class");
  eval->add_option("--classes", e->classes,
                   "comma-separated classes of the reference images (default: all ten)");
  eval->callback([e] {
    apply_threads(e->c);
    nets::GanEvaluation ev = e->e;
    ev.seed = e->c.seed;
    ev.data = e->c.data;
    ev.classes = parse_classes(e->classes);
    print_report(e->c, nets::evaluate_gan(ev, resolve_device(e->c.device)), print_eval);
  });
}

}  // namespace nabla::cli
