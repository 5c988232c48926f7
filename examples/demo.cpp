// nabla demo: the README's main job. A short, complete tour on whatever device there is:
//   1. trains FashionCNN on Fashion-MNIST for one epoch (classify train, into DIR/classify),
//   2. reloads the checkpoint it wrote and evaluates it (the accuracy must not move),
//   3. shows 16 test images with predicted and true labels (DIR/predictions.png),
//   4. takes the input gradient of each predicted class score, dS_c/dx (vanilla saliency),
//      and shows it as heat maps under the images (DIR/saliency.png); only dS/dx is asked of
//      autograd, so no weight-gradient kernel runs, and the report counts them,
//   5. attacks the whole test set with FGSM at eps = 0.1 (the input gradient as an attack):
//      accuracy under attack, and DIR/attack.png (original, perturbation, adversarial),
//   6. explains 6 test images side by side (the comparison figure of Selvaraju et al.: original,
//      guided backprop, Grad-CAM at conv2, guided Grad-CAM, occlusion) in DIR/explain.png,
//   7. segmentation: a small U-Net on generated histology tiles (segment train's recipe, into
//      DIR/segment), its test mIoU, its validation predictions (DIR/segment/val_predictions.png),
//      and a targeted PGD toward the background (DIR/segment_attack.png),
//   8. generative models: an adversarial autoencoder with a 2-d latent and the mixture10 prior
//      (supervised) on a subset (DIR/aae: latent.png, manifold.png), and a small DCGAN on a
//      subset (DIR/gan: samples/epochs.png); their numbers join the report,
//   9. translation: a few pix2pix epochs of edges2fashion on a subset (pix2pix train's recipe,
//      into DIR/pix2pix), its test L1 / PSNR / SSIM and a panel of edges, outputs and items
//      (DIR/pix2pix_panel.png),
//  10. writes DIR/report.json and DIR/report.md.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include <nabla/attack/attack.h>
#include <nabla/attack/figure.h>
#include <nabla/attack/segmentation.h>
#include <nabla/autograd.h>
#include <nabla/error.h>
#include <nabla/explain/explain.h>
#include <nabla/explain/figure.h>
#include <nabla/io/files.h>
#include <nabla/io/heatmap.h>
#include <nabla/io/image.h>
#include <nabla/metrics/classification.h>
#include <nabla/ops.h>
#include <nabla/train/checkpoint.h>
#include <nabla/train/evaluate.h>
#include <nets/aae_train.h>
#include <nets/classifier.h>
#include <nets/classifier_train.h>
#include <nets/gan_train.h>
#include <nets/image2image_train.h>
#include <nets/unet.h>
#include <nets/unet_train.h>

#include "common.h"

namespace nabla::cli {

namespace {

// Images [n, 1, 28, 28] in a row of labelled cells: "pred" in green when right, red when wrong,
// and the true class under it.
void draw_predictions(const std::string& path, const Tensor& images, const Tensor& pred,
                      const Tensor& truth, const std::vector<std::string>& names) {
  const int n = int(images.size(0)), cols = 8, scale = 3, cell_w = 28 * scale + 24,
            cell_h = 28 * scale + 34;
  const int rows = (n + cols - 1) / cols;
  io::Canvas canvas(cols * cell_w, rows * cell_h + 20);
  canvas.text(4, 4, "FashionCNN on test images: prediction (green right, red wrong) / truth",
              io::kBlack);
  for (int i = 0; i < n; ++i) {
    const int x = (i % cols) * cell_w + 12, y = (i / cols) * cell_h + 20;
    canvas.blit(images.slice(i, i + 1).squeeze(0), x, y, scale);
    const int64_t p = pred.data<int64_t>()[i], t = truth.data<int64_t>()[i];
    canvas.text(x, y + 28 * scale + 3, names[size_t(p)], p == t ? io::kGreen : io::kRed);
    canvas.text(x, y + 28 * scale + 14, names[size_t(t)], io::kGray);
  }
  canvas.save_png(path);
}

// Images on top, |dS/dx| heat maps (each normalized by its own max) below, with the class
// whose score S was differentiated.
void draw_saliency(const std::string& path, const Tensor& images, const Tensor& sal,
                   const Tensor& pred, const std::vector<std::string>& names) {
  const int n = int(images.size(0)), scale = 3, cell = 28 * scale + 8;
  io::Canvas canvas(n * cell + 8, 2 * cell + 36);
  canvas.text(4, 4, "input (top) and |dS_c/dx| of the predicted class (bottom)", io::kBlack);
  for (int i = 0; i < n; ++i) {
    const int x = 4 + i * cell;
    canvas.blit(images.slice(i, i + 1).squeeze(0), x, 20, scale);
    std::vector<float> s = sal.slice(i, i + 1).contiguous().to_vector<float>();
    const float mx = std::max(*std::max_element(s.begin(), s.end()), 1e-12f);
    for (int r = 0; r < 28; ++r)
      for (int q = 0; q < 28; ++q)
        canvas.fill_rect(x + q * scale, 20 + cell + r * scale, scale, scale,
                         io::colormap(s[size_t(r * 28 + q)] / mx, io::Colormap::Hot));
    canvas.text(x, 20 + 2 * cell, "S: " + names[size_t(pred.data<int64_t>()[i])], io::kBlack);
  }
  canvas.save_png(path);
}

// 8. The generative section: small enough for about a minute on two cores.
nlohmann::json run_generative(const Common& o, Device dev, bool show) {
  if (show) std::fprintf(stderr, "== 8. generative: AAE (2-d latent) and DCGAN ==\n");
  nets::AaeTraining a;
  a.prior = "mixture10";
  a.supervised = true;
  a.hidden = 256;
  a.epochs = 5;
  a.batch = 100;
  a.train_limit = 6000;
  a.test_limit = 2000;
  a.seed = o.seed;
  a.data = o.data;
  a.out = o.out + "/aae";
  a.device = o.device;
  const nlohmann::json aae = nets::train_aae(a, dev, false, show);
  nets::GanTraining g;
  // Two classes of simple shape (trousers, sneakers) and a raised learning rate: what 96 steps
  // of a small DCGAN can begin to draw.
  g.ngf = g.ndf = 16;
  g.epochs = 3;
  g.batch = 64;
  g.lr = 5e-4;
  g.classes = {1, 7};
  g.train_limit = 2048;
  g.seed = o.seed;
  g.data = o.data;
  g.out = o.out + "/gan";
  g.device = o.device;
  const nlohmann::json gan = nets::train_gan(g, dev, false, show);
  return {{"aae",
           {{"prior", a.prior},
            {"supervised", a.supervised},
            {"n_train", aae["n_train"]},
            {"test_recon", aae["test_recon"]},
            {"d_prior", aae["d_prior"]},
            {"d_code", aae["d_code"]},
            {"train_seconds", aae["train_seconds"]},
            {"latent", aae["latent_png"]},
            {"manifold", aae["manifold"]}}},
          {"gan",
           {{"n_train", gan["n_train"]},
            {"d_loss", gan["d_loss"]},
            {"g_loss", gan["g_loss"]},
            {"d_x", gan["d_x"]},
            {"d_g_z", gan["d_g_z"]},
            {"train_seconds", gan["train_seconds"]},
            {"samples", gan["samples"]}}}};
}

nlohmann::json run_demo(const Common& o) {
  nabla::io::create_dirs(o.out, "the output folder (--out)");
  const bool show = o.show_progress();
  nets::ClassifierTraining cfg;
  cfg.epochs = o.epochs;
  cfg.seed = o.seed;
  cfg.device = o.device;
  cfg.out = o.out + "/classify";
  cfg.data = o.data;
  cfg.train_limit = o.train_limit;
  cfg.test_limit = o.test_limit;
  cfg.checkpoint_every = o.checkpoint_every;
  const Device dev = resolve_device(o.device);
  if (show)
    std::fprintf(stderr, "== 1. training FashionCNN (%lld epoch) ==\n", (long long)o.epochs);
  // --resume DIR continues the training part, which lives in DIR/classify.
  const bool resume = !o.resume.empty();
  NABLA_CHECK(!resume || train::Checkpoint::exists(cfg.out), "--resume ", o.resume,
              ": no training run to continue in ", cfg.out);
  nlohmann::json train = nets::train_classifier(cfg, dev, resume, show);

  if (show)
    std::fprintf(stderr, "== 2. reloading %s ==\n", train["checkpoint"].get<std::string>().c_str());
  nets::FashionCNN net;
  train::load_weights(net, train["checkpoint"].get<std::string>());
  net.to(dev);
  data::Dataset test = data::load_mnist(cfg.data, data::Split::Test, cfg.test_limit);
  const train::Evaluation ev = train::evaluate_classifier(net, test, 256, dev, false);

  if (show) std::fprintf(stderr, "== 3-4. predictions and input gradients ==\n");
  const int64_t n_show = std::min<int64_t>(16, test.size());
  net.eval();
  Tensor images = test.images.slice(0, n_show).contiguous();
  Tensor truth = test.labels.slice(0, n_show).contiguous();
  Tensor x = images.to(dev);
  Tensor pred = explain::predict(net, x);
  // |dS_c/dx| of each predicted class: S = sum_i logits[i, pred_i], so one backward gives every
  // image its own gradient (engine/explain).
  explain::Options sopt;
  sopt.classes = pred;
  reset_kernel_counts();
  Tensor sal = explain::saliency(net, x, sopt);  // [n_show, 28, 28]
  const int64_t weight_kernels = kernel_count("conv2d_backward_weight") +
                                 kernel_count("linear_backward_weight") +
                                 kernel_count("linear_backward_bias");
  const int64_t right = metrics::count_correct(pred, truth);

  // 5. FGSM at eps = 0.1 on the whole test set: the input gradient as an attack.
  if (show) std::fprintf(stderr, "== 5. FGSM, eps 0.1 ==\n");
  attack::Options aopt;
  aopt.eps = 0.1;
  const double fgsm_acc =
      attack::adversarial_accuracy(net, net, test.images, test.labels, "fgsm", aopt, 500, dev);
  // FGSM has no randomness: the first images attacked again give the same x_adv.
  const attack::Model model = [&](const Tensor& xb) { return net(xb); };
  Tensor fig_x = test.images.slice(0, 4).contiguous().to(dev);
  Tensor fig_adv = attack::fgsm(model, fig_x, test.labels.slice(0, 4).contiguous().to(dev), aopt)
                       .x_adv.to(Device::cpu());
  fig_x = fig_x.to(Device::cpu());
  const std::string attack_png = o.out + "/attack.png";
  attack::save_attack_figure(attack_png, net, fig_x, fig_adv, test.class_names, dev,
                             "FGSM, eps 0.1: original, perturbation, adversarial");

  const std::string pred_png = o.out + "/predictions.png", sal_png = o.out + "/saliency.png";
  draw_predictions(pred_png, images, pred, truth, test.class_names);
  draw_saliency(sal_png, images.slice(0, 8), sal.slice(0, 8), pred, test.class_names);

  // 6. The explanation panel: the same class through four different lenses.
  if (show) std::fprintf(stderr, "== 6. explanations ==\n");
  const std::string explain_png = o.out + "/explain.png";
  explain::save_comparison_figure(explain_png, net, "conv2", images.slice(0, 6).contiguous(),
                                  truth.slice(0, 6).contiguous(), test.class_names, Tensor(), dev);

  // 7. Segmentation: U-Net on generated tiles, then PGD toward the full-area background.
  if (show) std::fprintf(stderr, "== 7. segmentation: U-Net on histology tiles ==\n");
  nets::SegmentationTraining seg;
  seg.base = 8;
  seg.epochs = 3;
  seg.batch = 8;
  seg.lr = 0.01;
  seg.seed = o.seed;
  seg.data.seed = o.seed;
  seg.data.tile = 32;
  seg.data.n_train = 192;
  seg.data.n_val = 16;
  seg.data.n_test = 32;
  seg.out = o.out + "/segment";
  seg.device = o.device;
  const nlohmann::json segsum = nets::train_segmenter(seg, dev, false, show);
  std::shared_ptr<nets::UNet> unet = nets::load_unet(seg.out + "/model.safetensors");
  unet->to(dev);
  unet->eval();
  const nets::SegmentationData sd = nets::load_segmentation_data(seg.data, false);
  const auto* st = dynamic_cast<const data::TensorSource*>(sd.test.get());
  NABLA_CHECK(st != nullptr, "demo: the segmentation test split is not in memory");
  const Tensor sx = st->tensors()["image"], sy = st->tensors()["mask"];
  attack::Options sa;
  sa.eps = 0.03;
  sa.steps = 20;
  sa.alpha = 2.5 * sa.eps / sa.steps;
  sa.early_stop = false;
  sa.objective = attack::Objective::segmentation_targeted(
      attack::full_mask(1, sx.size(2), sx.size(3), 0).squeeze(0), 1.0);
  const attack::SetResult sadv = attack::attack_set("pgd", *unet, sx, sy, sa, 32, dev);
  const train::SegmentationEvaluation seg_clean =
      train::evaluate_segmenter(*unet, sd.test, sd.class_names, 64, dev);
  const train::SegmentationEvaluation seg_adv = train::evaluate_segmenter(
      *unet,
      std::make_shared<data::TensorSource>(data::Example{{"image", sadv.x_adv}, {"mask", sy}}),
      sd.class_names, 64, dev);
  const std::string seg_attack_png = o.out + "/segment_attack.png";
  attack::save_segmentation_attack_figure(seg_attack_png, *unet, sx.slice(0, 4).contiguous(),
                                          sadv.x_adv.slice(0, 4).contiguous(),
                                          sy.slice(0, 4).contiguous(), sd.class_names, sa.eps, dev,
                                          "U-Net under PGD-20 toward the background, eps 0.03");
  const nlohmann::json segment = {{"test_miou", seg_clean.metrics.miou()},
                                  {"test_pixel_accuracy", seg_clean.metrics.pixel_accuracy()},
                                  {"attack_eps", sa.eps},
                                  {"attack_steps", sa.steps},
                                  {"attacked_miou", seg_adv.metrics.miou()},
                                  {"attacked_pixel_accuracy", seg_adv.metrics.pixel_accuracy()},
                                  {"train_seconds", segsum["train_seconds"]},
                                  {"n_test", seg_clean.n}};

  const nlohmann::json generative = run_generative(o, dev, show);

  // 9. Translation: pix2pix on edges2fashion, a small U-Net for a few epochs of a subset.
  if (show) std::fprintf(stderr, "== 9. translation: pix2pix on edges2fashion ==\n");
  nets::Image2ImageTraining p2p;
  p2p.model = "pix2pix";
  p2p.task = "edges2fashion";
  p2p.ngf = p2p.ndf = 16;
  p2p.n_epochs = 2;
  p2p.n_epochs_decay = 1;
  p2p.batch = 4;
  p2p.train_limit = 400;
  p2p.seed = o.seed;
  p2p.data = o.data;
  p2p.out = o.out + "/pix2pix";
  p2p.device = o.device;
  const nlohmann::json p2psum = nets::train_image2image(p2p, dev, false, show);
  nets::Image2ImageEvaluation p2pe;
  p2pe.checkpoint = p2p.out + "/G.safetensors";
  p2pe.task = "edges2fashion";
  p2pe.limit = 500;
  p2pe.data = o.data;
  const nlohmann::json p2pev = nets::evaluate_image2image(p2pe, dev);
  const std::string p2p_panel = o.out + "/pix2pix_panel.png";
  std::filesystem::copy_file(p2psum["samples"].get<std::string>(), p2p_panel,
                             std::filesystem::copy_options::overwrite_existing);
  const nlohmann::json translation = {{"l1", p2pev["l1"]},
                                      {"psnr", p2pev["psnr"]},
                                      {"ssim", p2pev["ssim"]},
                                      {"n_test", p2pev["n"]},
                                      {"train_seconds", p2psum["train_seconds"]}};

  nlohmann::json report = {{"device", dev.str()},
                           {"segment", segment},
                           {"generative", generative},
                           {"translation", translation},
                           {"train", train},
                           {"reloaded_test_accuracy", ev.accuracy()},
                           {"accuracy", ev.accuracy()},
                           {"n", ev.n},
                           {"per_class", ev.to_json()["per_class"]},
                           {"shown", n_show},
                           {"shown_correct", right},
                           {"weight_gradient_kernels_in_grad_x", weight_kernels},
                           {"fgsm_eps", 0.1},
                           {"fgsm_accuracy", fgsm_acc},
                           {"files",
                            {{"predictions", pred_png},
                             {"attack", attack_png},
                             {"saliency", sal_png},
                             {"explain", explain_png},
                             {"segment_attack", seg_attack_png},
                             {"segment_predictions", seg.out + "/val_predictions.png"},
                             {"pix2pix_panel", p2p_panel},
                             {"checkpoint", train["checkpoint"]},
                             {"metrics", train["metrics"]},
                             {"curves", train["curves"]}}}};
  std::ofstream(o.out + "/report.json") << report.dump(2) << "\n";
  std::ofstream md(o.out + "/report.md");
  md << "# nabla demo\n\n"
     << "FashionCNN trained for " << o.epochs << " epoch(s) on " << train["n_train"]
     << " Fashion-MNIST images, device " << dev.str() << ".\n\n"
     << "| | |\n|---|---|\n"
     << "| test accuracy (" << ev.n << " images) | " << ev.accuracy() << " |\n"
     << "| training throughput | " << std::lround(train["images_per_second"].get<double>())
     << " img/s |\n"
     << "| weight-gradient kernels run by grad(S, {x}) | " << weight_kernels << " |\n"
     << "| accuracy under FGSM, eps 0.1 | " << fgsm_acc << " |\n\n"
     << "| class | test accuracy |\n|---|---|\n";
  for (const auto& pc : report["per_class"])
    md << "| " << pc["class"].get<std::string>() << " | " << pc["accuracy"].get<double>() << " |\n";
  md << "\n"
     << "![curves](classify/curves.png)\n\n![predictions](predictions.png)\n\n"
     << "![saliency](saliency.png)\n\n![attack](attack.png)\n\n"
     << "Explanations of the predicted class (original, guided backprop, Grad-CAM at conv2, "
        "guided Grad-CAM, occlusion; `nabla explain --help` for more):\n\n"
     << "![explanations](explain.png)\n\n"
     << "## Segmentation\n\nA U-Net (base 8) trained for 3 epochs on 192 generated 32x32 histology "
        "tiles: test mIoU over the nuclei "
     << seg_clean.metrics.miou() << ", pixel accuracy " << seg_clean.metrics.pixel_accuracy()
     << "; under PGD-20 toward the background at eps 0.03: mIoU " << seg_adv.metrics.miou()
     << ", pixel accuracy " << seg_adv.metrics.pixel_accuracy()
     << ".\n\n![segment predictions](segment/val_predictions.png)\n\n"
     << "![segment attack](segment_attack.png)\n"
     << "\n## Translation\n\npix2pix (a U-Net with ngf 16, 3 epochs of " << p2psum["n_A"]
     << " edge/item pairs of edges2fashion): on " << p2pev["n"] << " test pairs L1 "
     << p2pev["l1"].get<double>() << ", PSNR " << p2pev["psnr"].get<double>() << " dB, SSIM "
     << p2pev["ssim"].get<double>()
     << " (rows: edges, G(edges), the items).\n\n![pix2pix](pix2pix_panel.png)\n";
  const nlohmann::json& ga = generative["aae"];
  const nlohmann::json& gg = generative["gan"];
  md << "\n## Generative models\n\nAn adversarial autoencoder (784-256-256-2, prior: ten "
        "Gaussians, one per class, D told the label) trained for 5 epochs on "
     << ga["n_train"] << " images: test reconstruction BCE " << ga["test_recon"].get<double>()
     << " per pixel; D(prior) " << ga["d_prior"].get<double>() << ", D(E(x)) "
     << ga["d_code"].get<double>() << ".\n\n![aae latent](aae/latent.png)\n\n"
     << "![aae manifold](aae/manifold.png)\n\nA DCGAN (ngf = ndf = 16) trained for 3 epochs on "
     << gg["n_train"] << " trousers and sneakers: D(x) " << gg["d_x"].get<double>() << ", D(G(z)) "
     << gg["d_g_z"].get<double>() << ".\n\n![dcgan samples](gan/samples/epochs.png)\n";
  return report;
}

}  // namespace

void register_demo(CLI::App& app) {
  auto o = std::make_shared<Common>();
  o->out = "demo_out";
  o->epochs = 1;
  CLI::App* demo = app.add_subcommand(
      "demo",
      "The README's main job: train FashionCNN briefly on whatever device there is, reload the\n"
      "checkpoint, show predictions and input-gradient saliency, and write a report folder:\n"
      "DIR/report.md, report.json, predictions.png, saliency.png, attack.png, explain.png,\n"
      "segment_attack.png, DIR/classify/ (metrics.csv, curves.png, model.safetensors) and\n"
      "DIR/segment/ (a small U-Net on generated histology tiles), DIR/aae/ (an adversarial\n"
      "autoencoder with a 2-d latent: latent.png, manifold.png) and DIR/gan/ (a small DCGAN:\n"
      "samples/epochs.png).");
  add_common_flags(demo, *o, kTrainingFlags & ~(kBatch | kLr),
                   {{"--out", "report folder"},
                    {"--epochs", "training epochs"},
                    {"--seed", "seed of everything random"},
                    {"--resume",
                     "continue an interrupted demo in DIR (its training part, "
                     "DIR/classify, from its last checkpoint), then do the rest"},
                    {"--json", "print the report as one JSON object on stdout"}});
  demo->callback([o] {
    if (!o->resume.empty()) o->out = o->resume;
    apply_threads(*o);
    nlohmann::json r = run_demo(*o);
    if (o->json) {
      std::cout << r.dump() << "\n";
      return;
    }
    std::printf("test accuracy %.4f on %lld images (after reloading the checkpoint)\n",
                r["accuracy"].get<double>(), (long long)r["n"].get<int64_t>());
    std::printf("%lld of the %lld images shown are classified right\n",
                (long long)r["shown_correct"].get<int64_t>(), (long long)r["shown"].get<int64_t>());
    std::printf("weight-gradient kernels run by grad(S, {x}): %lld\n",
                (long long)r["weight_gradient_kernels_in_grad_x"].get<int64_t>());
    std::printf("accuracy under FGSM (eps 0.1) on the same images: %.4f\n",
                r["fgsm_accuracy"].get<double>());
    std::printf(
        "U-Net on histology tiles: test mIoU %.4f (nuclei), %.4f under PGD-20 toward the "
        "background (eps 0.03)\n",
        r["segment"]["test_miou"].get<double>(), r["segment"]["attacked_miou"].get<double>());
    const nlohmann::json& ga = r["generative"]["aae"];
    std::printf(
        "AAE (2-d latent, mixture10 prior): test recon %.4f per pixel, D(prior) %.4f, "
        "D(E(x)) %.4f\n",
        ga["test_recon"].get<double>(), ga["d_prior"].get<double>(), ga["d_code"].get<double>());
    const nlohmann::json& gg = r["generative"]["gan"];
    std::printf("DCGAN (ngf 16, %lld images): D(x) %.4f, D(G(z)) %.4f\n",
                (long long)gg["n_train"].get<int64_t>(), gg["d_x"].get<double>(),
                gg["d_g_z"].get<double>());
    std::printf("pix2pix on edges2fashion: test L1 %.4f, PSNR %.2f dB, SSIM %.4f\n",
                r["translation"]["l1"].get<double>(), r["translation"]["psnr"].get<double>(),
                r["translation"]["ssim"].get<double>());
    std::printf(
        "report: %s/report.md (pictures: predictions.png, saliency.png, attack.png, "
        "explain.png, segment_attack.png, pix2pix_panel.png, classify/curves.png, "
        "aae/latent.png, aae/manifold.png, gan/samples/epochs.png)\n",
        o->out.c_str());
  });
}

}  // namespace nabla::cli
