// nabla: the command line of the engine. Each subcommand is one file under examples/.
//
//   nabla classify train   train FashionCNN on Fashion-MNIST (or any MNIST-format set)
//   nabla classify eval    test accuracy, per-class accuracy, confusion matrix of a checkpoint
//   nabla attack           adversarial examples against a checkpoint (engine/attack)
//   nabla robustness       accuracy against eps, and the transferability matrix
//   nabla explain          saliency, Grad-CAM, guided backprop, occlusion... (engine/explain)
//   nabla explain detector the saliency-based adversarial detector
//   nabla demo             the README's main job: a short training run and a report folder
//   nabla squares          the input-gradient warm-up on synthetic shapes
//   nabla data histology   a preview of the procedural histology tiles and their class balance
//   nabla segment train    train a U-Net on the histology tiles (or an image+mask folder)
//   nabla segment eval     loss, pixel accuracy, IoU/Dice per class, mIoU of a U-Net checkpoint
//   nabla segment attack   FGSM, PGD, targeted PGD on a U-Net: scores before and after, a panel
//   nabla segment saliency |d l_seg / dx| over the image or a region, heat-map panels
//   nabla segment study    the robust-segmentation study: layered PGD, sign choice, Tables 1-2
//   nabla gan train|sample DCGAN and the conditional GAN with seven discriminator losses
//   nabla cyclegan|pix2pix train|translate|eval  image-to-image translation
#include <cstdio>
#include <exception>
#include <new>

#include <nabla/error.h>

#include "common.h"

int main(int argc, char** argv) {
  CLI::App app{
      "nabla: a from-scratch deep-learning engine built around the input gradient.\n"
      "Own tensors, reverse-mode autograd and handwritten kernels; these commands train,\n"
      "evaluate and inspect networks. Run `nabla <command> --help` for each command's flags."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "nabla 0.1.0");
  nabla::cli::register_classify(app);
  nabla::cli::register_attack(app);
  nabla::cli::register_robustness(app);
  nabla::cli::register_explain(app);
  nabla::cli::register_demo(app);
  nabla::cli::register_squares(app);
  nabla::cli::register_data(app);
  nabla::cli::register_segment(app);
  nabla::cli::register_gan(app);
  nabla::cli::register_image2image(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const nabla::Error& e) {
    std::fprintf(stderr, "nabla: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "nabla: error: out of memory (try a smaller --batch)\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nabla: unexpected error: %s\n", e.what());
    return 2;
  }
  return 0;
}
