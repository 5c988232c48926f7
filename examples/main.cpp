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
//   nabla aae train        the adversarial autoencoder with a Gaussian, mixture or swiss-roll prior
//   nabla vae train        the variational autoencoder (reparameterisation, analytic KL)
//   nabla inspect FILE     what a safetensors, .npy, PNG or IDX file holds (or why it is malformed)
//   nabla cyclegan|pix2pix train|translate|eval  image-to-image translation
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <new>
#include <string>

#include <nabla/error.h>

#include "common.h"

namespace {

// OpenMP threads spin only briefly when they wait, unless the user chose a policy. With
// libgomp's default (300000 spin iterations at every barrier) two threads on a 2-core machine
// that also runs one other busy process took the FashionCNN train step from 15 ms to 126 ms; with
// OMP_WAIT_POLICY=passive (sleep at once) the busy case fell to 28 ms but the quiet one rose to
// 29 ms, since every parallel region then wakes its threads through the kernel. GOMP_SPINCOUNT=1000
// gave 16 ms quiet and 31 ms busy: close to the best of both (docs/benchmarks.md, "OpenMP under
// load"). clang's libomp ignores GOMP_SPINCOUNT and spins for KMP_BLOCKTIME milliseconds (200 by
// default): 1 ms gave 14 ms quiet and 33 ms busy, where 0 (sleep at once) gave 27 and 25 ms and
// the default 14 and 36 ms.
// libgomp reads its variables once, when it is loaded, before main: so they are set and the
// program runs itself again (execv of /proc/self/exe, same pid and arguments). Setting
// OMP_WAIT_POLICY, GOMP_SPINCOUNT or KMP_BLOCKTIME to anything keeps the runtime's own
// behaviour; when execv fails, nabla runs on with the runtime's defaults.
void default_openmp_wait_policy(char** argv) {
  for (const char* v : {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME"})
    if (std::getenv(v)) return;
  ::setenv("GOMP_SPINCOUNT", "1000", 1);
  ::setenv("KMP_BLOCKTIME", "1", 1);
  ::execv("/proc/self/exe", argv);
}

}  // namespace

int main(int argc, char** argv) {
  default_openmp_wait_policy(argv);
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
  nabla::cli::register_aae(app);
  nabla::cli::register_vae(app);
  nabla::cli::register_inspect(app);
  nabla::cli::register_image2image(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const nabla::Error& e) {
    std::fprintf(stderr, "nabla: error: %s\n", e.what());
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    // A file operation that no command checked itself. libstdc++'s message names the operation,
    // the reason and the path(s): "filesystem error: cannot create directories: ... [/proc/x]".
    std::string what = e.what();
    if (what.rfind("filesystem error: ", 0) == 0) what.erase(0, 18);
    std::fprintf(stderr, "nabla: error: %s\n", what.c_str());
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
