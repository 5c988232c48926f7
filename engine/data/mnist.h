// Labelled image data sets, and the MNIST-format loader (Fashion-MNIST by default).
//
// A Dataset holds every sample in memory: images float32 [N, C, H, W] with pixels x / 255 in
// [0, 1] (no mean/std normalisation: attacks and their epsilons live in pixel space), labels
// int64 [N]. MNIST-format directories hold <prefix>-images-idx3-ubyte and
// <prefix>-labels-idx1-ubyte, gzipped (.gz) or plain, with prefix "train" or "t10k".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nabla/tensor.h>

namespace nabla::data {

struct Dataset {
  Tensor images;  // float32 [N, C, H, W] in [0, 1]
  Tensor labels;  // int64 [N]
  std::vector<std::string> class_names;
  // ensures: N, or 0 when the data set is empty (labels undefined).
  int64_t size() const;
};

// ensures: $NABLA_FASHION_MNIST when set and non-empty, else "/usr/share/datasets/fashion-mnist"
//   (where the Debian package dataset-fashion-mnist installs it).
std::string default_fashion_mnist_dir();

// ensures: the 10 Fashion-MNIST class names in label order (T-shirt/top, Trouser, Pullover,
//   Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot).
const std::vector<std::string>& fashion_mnist_classes();

enum class Split { Train, Test };

// requires: dir holds the split's image file [N, H, W] and label file [N] (labels < 10), each as
//   "<name>.gz" or "<name>" (tried in that order); an empty dir means default_fashion_mnist_dir().
// ensures: images [N, 1, H, W] float32 = byte / 255, labels int64 [N]; with limit > 0 only the
//   first min(limit, N) samples. class_names are fashion_mnist_classes() when dir is the default
//   directory or its path contains "fashion" (any case), else "0".."9".
//   Throws nabla::Error naming the path when dir or a file is missing (listing the names tried
//   and suggesting dataset-fashion-mnist or --data DIR), when the image and label counts differ,
//   the images are not 3-d or the labels not 1-d, a label is >= 10, or a file is malformed
//   (see read_idx).
Dataset load_mnist(const std::string& dir, Split split, int64_t limit = -1);

}  // namespace nabla::data
