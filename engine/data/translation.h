// Image-to-image translation data: two domains of images, A and B, with pixels in [-1, 1].
//
//   folders (the layout of junyanz/pytorch-CycleGAN-and-pix2pix)
//     unaligned   root/<phase>A/*.png and root/<phase>B/*.png, any counts (CycleGAN)
//     aligned     root/<phase>/*.png, each image A and B side by side (A left, B right; the
//                 width must be even) (pix2pix); or root/<phase>A and root/<phase>B holding the
//                 same file names (the paired-folder layout), taken in name order
//   built-in tasks (nothing to download: Fashion-MNIST from dataset-fashion-mnist, 28x28 padded
//   to 32x32 with the background value -1, and the procedural histology tiles)
//     edges2fashion  paired: A = Sobel edge map of the item (dark edges on white:
//                    1 - 2 min(1, |grad| / (0.5 max |grad|)) with |grad| the Sobel magnitude of
//                    the [0, 1] item and max over the item), B = the item; train: the train split,
//                    test: the test split
//     sneaker2boot   unpaired: A = class 7 (sneaker), B = class 9 (ankle boot), each from its own
//                    images of the split
//     he2ihc         unpaired with hidden pairs: A = histology tiles in H&E (histology.h), B = the
//                    tiles rendered in an immunohistochemistry-like stain: hematoxylin
//                    counterstain plus DAB (3,3'-diaminobenzidine, brown) on the neoplastic
//                    nuclei (see ihc_render). Training: A from tiles 0..n-1, B from the disjoint
//                    tiles n..2n-1 of the train stream, so no pair is ever seen; test: tile i of
//                    the test stream in both stains (the hidden pair kept as B_of_A)
//
// Errors name the folder or file: a missing or empty domain, images of different sizes, a file
// that is not a decodable PNG, an aligned image of odd width, a pair without a partner.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nabla/random.h>
#include <nabla/tensor.h>

namespace nabla::data {

struct TranslationSet {
  Tensor A, B;          // float32 [nA, cA, H, W] and [nB, cB, H, W] in [-1, 1]
  bool paired = false;  // A[i] and B[i] show the same thing (then nA == nB)
  Tensor B_of_A;        // he2ihc: the hidden partner of each A image (undefined otherwise)
  std::string name;     // the task, or the folder
  std::vector<std::string> names_A, names_B;  // file names (folders) or "<task> <split> <i>"
};

// "edges2fashion", "sneaker2boot", "he2ihc".
const std::vector<std::string>& translation_task_names();
// requires: a name of translation_task_names() (nabla::Error listing them otherwise).
bool translation_task_paired(const std::string& task);
// The side of the task's images: 32 for all three.
int64_t translation_task_size(const std::string& task);

// requires: a task name; limit >= 0 images per domain (0: all; he2ihc: 0 means 1000 train and
//   200 test tiles); mnist_dir as load_mnist takes it; seed: the histology stream's seed.
// ensures: the task's split as above (channels: 1 for the Fashion-MNIST tasks, 3 for he2ihc).
TranslationSet translation_task(const std::string& task, bool train, int64_t limit = 0,
                                const std::string& mnist_dir = "", uint64_t seed = 0);

// requires: root in the layout above; phase "train" or "test" (any folder name); input_nc and
//   output_nc 1 or 3 (gray <-> RGB conversions as load_png does); limit >= 0 (0: all).
// ensures: the set, paired when aligned. Errors as above.
TranslationSet translation_folder(const std::string& root, const std::string& phase, bool aligned,
                                  int input_nc, int output_nc, int64_t limit = 0);

// The Sobel edge map of edges2fashion. requires: x float [N, 1, H, W] in [0, 1].
// ensures: [N, 1, H, W] in [-1, 1] as above (a blank image gives all 1).
Tensor sobel_edges(const Tensor& x);

// The IHC rendering of he2ihc. requires: he float [3, H, W] in [0, 1] (an H&E tile), mask int64
//   [H, W] (its classes). The H&E tile is unmixed by colour deconvolution (Ruifrok and Johnston
//   2001) into hematoxylin and eosin optical densities with the generator's stain vectors; the
//   IHC tile is I = 10^-(c_H h + c_DAB d) with the hematoxylin vector h, the DAB vector
//   d = (0.268, 0.570, 0.776), c_DAB = 1.5 max(c_H, 0.3) on neoplastic pixels (class 1) and 0
//   elsewhere; eosin is dropped (no counterstain of the cytoplasm).
// ensures: float [3, H, W] in [0, 1].
Tensor ihc_render(const Tensor& he, const Tensor& mask);

// The reference's training transform, drawn per image from gen and applied alike to every tensor
// of `images` (A and B of a pair get the same crop and flip):
//   resize to load_size x load_size (bilinear; skipped when the image already has that size),
//   crop crop_size x crop_size at a uniform position, and mirror left-right with probability 1/2
//   when flip.
// requires: tensors float [N, C, H, W] with equal N, H, W; crop_size <= load_size.
std::vector<Tensor> jitter(const std::vector<Tensor>& images, int64_t load_size, int64_t crop_size,
                           bool flip, Generator& gen);

}  // namespace nabla::data
