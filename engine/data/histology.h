// A procedural histology-like segmentation set: H&E-stained tissue tiles with five nucleus types,
// a semantic mask and an instance map, generated on demand. It stands in for PanNuke (Gamper et
// al., 2019/2020: 256x256 H&E patches, nuclei labelled neoplastic, inflammatory, connective/soft
// tissue, dead and epithelial), which cannot be downloaded here; real data in that layout loads
// with load_image_mask_folder (image_folder.h).
//
//   classes   0 background (stroma, lumens), 1 neoplastic, 2 inflammatory, 3 connective,
//             4 dead, 5 epithelial
//   a tile    S x S pixels (16 <= S <= 256, default 64), drawn as follows:
//     stroma      fibres: white noise smeared along a smoothly bending orientation field theta
//                 (a line-integral convolution over +-6 px), times a low-frequency density
//     nuclei      placed without overlap (and a one-pixel gap) by rejection sampling, epithelial
//                 rings first, then neoplastic clusters, connective, dead, inflammatory:
//                   neoplastic    large irregular ellipses (semi-axes 4.5-7 px, harmonic
//                                 boundary wobble), clustered around a few centres, vesicular
//                                 chromatin with a dark rim and nucleoli
//                   inflammatory  small (radius 2-3 px), round, very dark, scattered
//                   connective    spindles of aspect ratio 3-5 aligned with theta at their centre
//                   dead          small pyknotic nuclei (radius 1.6-2.4 px, darkest) with 1-3
//                                 fragments (each its own instance) and an eosinophilic halo
//                   epithelial    medium ellipses (3-4 px), radially oriented, in rings of radius
//                                 7-12 px around a pale lumen, on a pink cytoplasm band
//                 Sizes are in pixels: a larger tile is a larger field of view, with proportionally
//                 more nuclei.
//     colour      Beer-Lambert with Ruifrok & Johnston's stain vectors (hematoxylin
//                 0.650/0.704/0.286, eosin 0.072/0.990/0.105):
//                   I_rgb = I0_rgb * 10^-(c_H h_rgb + c_E e_rgb)
//                 c_H, c_E the stain concentrations drawn above; per tile the stain jitter moves
//                 each vector component by a few percent (renormalised), scales c_H and c_E by
//                 0.8-1.2 and sets the illumination I0; then a Gaussian blur (sigma 0.4-0.9 px) and
//                 pixel noise (sigma 0.005-0.02), clamped to [0, 1]
//     labels      mask: the class of the nucleus covering each pixel, 0 elsewhere; instances: 0 for
//                 background, 1, 2, ... for the nuclei in placement order
//   balance   about 80% background pixels over a split; every type occurs in every split of a
//             few dozen tiles; most tiles hold several types (each type is present in a tile with
//             a fixed probability, at least one type per tile)
//
// Determinism: tile i of a split depends only on (seed, split, i, S): its random numbers are
// Philox4x32-10 blocks keyed by the seed with (split, part of the tile, i) in the counter, so a
// tile is the same whatever was generated before, in any order and on any thread. The splits are
// fixed and disjoint streams: train, val and test never share a tile.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nabla/data/source.h>
#include <nabla/tensor.h>

namespace nabla::data {

inline constexpr int64_t kHistologyClasses = 6;
inline constexpr int64_t kHistologyMinSize = 16, kHistologyMaxSize = 256;

enum class HistologySplit { Train, Val, Test };
// ensures: "train", "val" or "test".
const char* histology_split_name(HistologySplit s);
// requires: name is train, val or test (nabla::Error listing them otherwise).
HistologySplit histology_split_from_name(const std::string& name);

// ensures: the six class names in label order: background, neoplastic, inflammatory, connective,
//   dead, epithelial.
const std::vector<std::string>& histology_class_names();

// requires: kHistologyMinSize <= size <= kHistologyMaxSize, index >= 0 (nabla::Error naming the
//   value otherwise).
// ensures: tile `index` of the split: {"image" float32 [3, size, size] in [0, 1], "mask" int64
//   [size, size] in 0..5, "instances" int64 [size, size]}, a function of its arguments alone.
Example histology_tile(uint64_t seed, HistologySplit split, int64_t index, int64_t size = 64);

// The tiles 0..n-1 of one split as a Source (fields image, mask, instances), generated when read.
class HistologySource : public Source {
 public:
  // requires: n >= 0; size as for histology_tile (nabla::Error naming the value otherwise).
  HistologySource(HistologySplit split, int64_t n, int64_t size = 64, uint64_t seed = 0);

  int64_t size() const override { return n_; }
  std::vector<std::string> fields() const override { return {"image", "mask", "instances"}; }
  // requires: 0 <= i < size() (nabla::Error naming i and the size otherwise).
  // ensures: histology_tile(seed, split, i, tile_size).
  Example get(int64_t i) const override;
  // ensures: "histology train tile 12 (seed 0, 64x64)".
  std::string describe(int64_t i) const override;

  HistologySplit split() const { return split_; }
  int64_t tile_size() const { return tile_; }
  uint64_t seed() const { return seed_; }

 private:
  HistologySplit split_;
  int64_t n_, tile_;
  uint64_t seed_;
};

}  // namespace nabla::data
