// MNIST-format loading: two IDX files per split, checked against each other, then bytes -> [0, 1].
#include <nabla/data/mnist.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>

#include <nabla/data/idx.h>
#include <nabla/error.h>

namespace nabla::data {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kNumClasses = 10;
constexpr const char* kInstallHint =
    "install the Debian package dataset-fashion-mnist or pass --data DIR";

// The path of <dir>/<name>.gz or <dir>/<name>, whichever exists first.
std::string find_file(const std::string& dir, const std::string& name) {
  for (const std::string& candidate : {name + ".gz", name}) {
    const fs::path p = fs::path(dir) / candidate;
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  throw Error(detail::concat("load_mnist: ", dir, ": no ", name, ".gz or ", name, " in it; ",
                             kInstallHint));
}

bool is_fashion_dir(const std::string& dir) {
  std::string lower = dir;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  if (lower.find("fashion") != std::string::npos) return true;
  std::error_code ec;
  return fs::equivalent(dir, default_fashion_mnist_dir(), ec);
}

}  // namespace

int64_t Dataset::size() const {
  return labels.defined() ? labels.size(0) : 0;
}

std::string default_fashion_mnist_dir() {
  const char* env = std::getenv("NABLA_FASHION_MNIST");
  return env && *env ? std::string(env) : std::string("/usr/share/datasets/fashion-mnist");
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                 "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

Dataset load_mnist(const std::string& dir_or_default, Split split, int64_t limit) {
  const std::string dir = dir_or_default.empty() ? default_fashion_mnist_dir() : dir_or_default;
  std::error_code ec;
  NABLA_CHECK(fs::is_directory(dir, ec), "load_mnist: data directory ", dir, " does not exist; ",
              kInstallHint);
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  const std::string image_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string label_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  const IdxArray im = read_idx(image_path);
  const IdxArray lb = read_idx(label_path);
  NABLA_CHECK(im.dims.size() == 3, "load_mnist: ", image_path,
              ": expected 3-d images [N, H, W], got sizes ", shape_str(im.dims));
  NABLA_CHECK(lb.dims.size() == 1, "load_mnist: ", label_path,
              ": expected 1-d labels [N], got sizes ", shape_str(lb.dims));
  NABLA_CHECK(im.dims[0] == lb.dims[0], "load_mnist: ", image_path, " has ", im.dims[0],
              " images but ", label_path, " has ", lb.dims[0], " labels");

  const int64_t n = limit > 0 ? std::min(limit, im.dims[0]) : im.dims[0];
  const int64_t h = im.dims[1], w = im.dims[2];
  Dataset ds;
  ds.labels = empty({n}, DType::Int64);
  int64_t* labels = ds.labels.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t y = lb.data[size_t(i)];
    NABLA_CHECK(y < kNumClasses, "load_mnist: ", label_path, ": label ", int(y), " of sample ", i,
                " is not below the number of classes (", kNumClasses, ")");
    labels[i] = y;
  }
  ds.images = empty({n, 1, h, w});
  float* px = ds.images.data<float>();
  const uint8_t* bytes = im.data.data();
  const int64_t total = n * h * w;
#pragma omp parallel for schedule(static) if (total > (int64_t(1) << 16))
  for (int64_t i = 0; i < total; ++i) px[i] = float(bytes[i]) / 255.0f;

  if (is_fashion_dir(dir)) {
    ds.class_names = fashion_mnist_classes();
  } else {
    for (int64_t c = 0; c < kNumClasses; ++c) ds.class_names.push_back(std::to_string(c));
  }
  return ds;
}

}  // namespace nabla::data
