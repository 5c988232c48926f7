// PNG images from disk, through stb_image: one file, a folder of class folders, or a flat folder.
//
//   load_png           file -> float32 [C, H, W], pixels byte / 255 in [0, 1]
//   load_image_folder  root/<class>/*.png -> Dataset, classes sorted by name give labels 0..K-1
//   load_images        dir/*.png -> Dataset with every label 0 (one CycleGAN domain)
//   load_paired_folder root/A/*.png, root/B/*.png paired by file name -> {"A", "B"} (pix2pix)
//   load_image_mask_folder  root/images/*.png, root/masks/*.png paired by file name ->
//                      {"image" [C, H, W], "mask" int64 [H, W]}; a mask is an 8-bit grayscale
//                      PNG whose pixel values are class indices (segmentation)
//
// stb converts between gray and RGB (gray -> RGB replicates, RGB -> gray is its luma) and drops
// alpha; 16-bit PNGs are reduced to 8 bits. Files are taken in name order, so a folder always
// loads in the same order. Hidden files (".DS_Store" and the like) are skipped.
#pragma once

#include <memory>
#include <string>

#include <nabla/data/mnist.h>
#include <nabla/data/source.h>
#include <nabla/tensor.h>

namespace nabla::data {

// requires: path is a PNG file; channels is 1 (gray) or 3 (RGB).
// ensures: float32 [channels, H, W] in [0, 1]. Throws nabla::Error naming the path when the file
//   is missing or not a decodable PNG, and for any other channel count.
Tensor load_png(const std::string& path, int channels);

// A PNG's header, read after the same checks load_png makes (chunk layout, size cap).
struct PngInfo {
  int width = 0, height = 0;
  int channels = 0;   // in the file: 1 gray, 2 gray+alpha, 3 RGB (or a palette), 4 RGBA
  int bit_depth = 0;  // bits per sample as the IHDR states it (1, 2, 4, 8 or 16)
};
// ensures: the header of the PNG at path. Throws nabla::Error naming the path as load_png does.
PngInfo png_info(const std::string& path);

// The cap on a decoded PNG (width x height x channels x bytes per sample): NABLA_PNG_MAX_BYTES
// when set to a positive integer below 2^31, else 256 MiB. load_png and the folder loaders refuse
// larger images with an error that names the limit and the variable, before anything is decoded.
uint64_t png_max_bytes();

// requires: root holds one sub-folder per class, each with at least one PNG, all of one H x W;
//   channels is 1 or 3.
// ensures: images [N, channels, H, W] class by class, labels the class index, class_names the
//   sorted folder names. Regular files directly in root are ignored (a README may sit there).
//   Throws nabla::Error naming the path for a missing root, no class folders, an empty class
//   folder, a file that is not a PNG, or the first image whose size differs from the first
//   image's (both sizes given).
Dataset load_image_folder(const std::string& root, int channels);

// requires: dir holds at least one PNG, all of one H x W, and nothing else but sub-folders
//   (which are ignored); channels is 1 or 3.
// ensures: images [N, channels, H, W] in name order, labels all 0, class_names {the folder's
//   name}. Errors as for load_image_folder.
Dataset load_images(const std::string& dir, int channels);

// requires: root/A and root/B hold PNGs with the same file names (hidden files skipped), all of
//   one H x W within each folder; channels is 1 or 3.
// ensures: fields "A" and "B" [N, channels, H, W] in name order, item names the file names.
//   Throws nabla::Error naming the folder and the first file that has no partner, or errors as
//   for load_image_folder.
std::shared_ptr<TensorSource> load_paired_folder(const std::string& root, int channels);

// requires: root/images holds PNGs and root/masks one 8-bit grayscale PNG of the same file name
//   and size per image, with every pixel a class index in [0, num_classes); channels 1 or 3.
// ensures: "image" float32 [N, channels, H, W] in [0, 1] and "mask" int64 [N, H, W], in name
//   order; item names the file names. Throws nabla::Error naming the file for a missing mask, a
//   mask without an image, sizes that differ (both sizes), a mask that is not 8-bit grayscale,
//   and the first pixel out of range (its position and value).
std::shared_ptr<TensorSource> load_image_mask_folder(const std::string& root, int channels,
                                                     int64_t num_classes);

}  // namespace nabla::data
