// Translation data: folders in the reference's layout, the built-in tasks, the training jitter
// (see translation.h).
#include <nabla/data/translation.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>

#include <nabla/data/histology.h>
#include <nabla/data/image_folder.h>
#include <nabla/data/mnist.h>
#include <nabla/error.h>
#include <nabla/ops.h>

namespace nabla::data {

namespace fs = std::filesystem;

namespace {

// [N, C, H, W] in [0, 1] -> [-1, 1].
Tensor to_signed(const Tensor& x) {
  return sub(mul(x, 2.0), 1.0);
}

// Fashion-MNIST items of a split as [N, 1, 32, 32] in [0, 1] (padded by 2 with 0), optionally
// only one class, at most limit (0: all).
Tensor fashion(const std::string& dir, bool train, int64_t klass, int64_t limit) {
  Dataset ds = load_mnist(dir, train ? Split::Train : Split::Test, 0);
  NABLA_CHECK(ds.images.size(2) == 28 && ds.images.size(3) == 28,
              "translation task: Fashion-MNIST images must be 28x28, got ",
              shape_str(ds.images.shape()));
  const std::vector<int64_t> y = ds.labels.to_vector<int64_t>();
  std::vector<int64_t> keep;
  for (size_t i = 0; i < y.size(); ++i) {
    if (klass >= 0 && y[i] != klass) continue;
    keep.push_back(int64_t(i));
    if (limit > 0 && int64_t(keep.size()) >= limit) break;
  }
  NABLA_CHECK(!keep.empty(), "translation task: no Fashion-MNIST image of class ", klass);
  const std::vector<float> px = ds.images.contiguous().to_vector<float>();
  std::vector<float> out;
  out.reserve(keep.size() * 784);
  for (int64_t i : keep) out.insert(out.end(), px.begin() + i * 784, px.begin() + (i + 1) * 784);
  return pad(from_vector(out, {int64_t(keep.size()), 1, 28, 28}), {2, 2, 2, 2});
}

constexpr double kH[3] = {0.650, 0.704, 0.286}, kE[3] = {0.072, 0.990, 0.105};
constexpr double kDab[3] = {0.268, 0.570, 0.776};

// Channel conversion of [N, C, H, W] in [0, 1] to `channels` (gray -> RGB replicates, RGB ->
// gray is the luma 0.299 R + 0.587 G + 0.114 B, as stb_image converts).
Tensor convert_channels(const Tensor& x, int channels) {
  if (x.size(1) == channels) return x;
  if (channels == 3) return x.expand({x.size(0), 3, x.size(2), x.size(3)}).contiguous();
  std::vector<Tensor> c = split(x, 1, 1);
  return add(add(mul(c[0], 0.299), mul(c[1], 0.587)), mul(c[2], 0.114));
}

std::vector<std::string> png_names(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (e.is_regular_file() && !n.empty() && n[0] != '.') names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  return names;
}

Tensor domain(const fs::path& dir, int channels, int64_t limit, std::vector<std::string>& names) {
  NABLA_CHECK(fs::is_directory(dir), "translation data: the domain folder ", dir.string(),
              " does not exist");
  names = png_names(dir);
  NABLA_CHECK(!names.empty(), "translation data: the domain folder ", dir.string(),
              " holds no image");
  Tensor x = load_images(dir.string(), channels).images;
  if (limit > 0 && x.size(0) > limit) {
    x = x.slice(0, limit).contiguous();
    names.resize(size_t(limit));
  }
  return x;
}

}  // namespace

const std::vector<std::string>& translation_task_names() {
  static const std::vector<std::string> names = {"edges2fashion", "sneaker2boot", "he2ihc"};
  return names;
}

bool translation_task_paired(const std::string& task) {
  const auto& n = translation_task_names();
  NABLA_CHECK(std::find(n.begin(), n.end(), task) != n.end(), "unknown translation task '", task,
              "': expected edges2fashion, sneaker2boot or he2ihc");
  return task == "edges2fashion";
}

int64_t translation_task_size(const std::string& task) {
  translation_task_paired(task);
  return 32;
}

Tensor sobel_edges(const Tensor& x) {
  NABLA_CHECK(x.defined() && x.dim() == 4 && x.size(1) == 1, "sobel_edges: x ",
              x.defined() ? shape_str(x.shape()) : "undefined", " must be [N, 1, H, W]");
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  const std::vector<double> v = x.to(Device::cpu()).contiguous().to_vector<double>();
  std::vector<float> out(v.size());
  std::vector<double> mag(size_t(h * w));
  for (int64_t i = 0; i < n; ++i) {
    const double* p = v.data() + i * h * w;
    // Replicated borders: at(r, c) clamps the position.
    auto at = [&](int64_t r, int64_t c) {
      return p[std::clamp<int64_t>(r, 0, h - 1) * w + std::clamp<int64_t>(c, 0, w - 1)];
    };
    double mx = 0;
    for (int64_t r = 0; r < h; ++r)
      for (int64_t c = 0; c < w; ++c) {
        const double gx = at(r - 1, c + 1) + 2 * at(r, c + 1) + at(r + 1, c + 1) -
                          at(r - 1, c - 1) - 2 * at(r, c - 1) - at(r + 1, c - 1);
        const double gy = at(r + 1, c - 1) + 2 * at(r + 1, c) + at(r + 1, c + 1) -
                          at(r - 1, c - 1) - 2 * at(r - 1, c) - at(r - 1, c + 1);
        mag[size_t(r * w + c)] = std::sqrt(gx * gx + gy * gy);
        mx = std::max(mx, mag[size_t(r * w + c)]);
      }
    for (int64_t k = 0; k < h * w; ++k)
      out[size_t(i * h * w + k)] =
          float(1 - 2 * (mx > 0 ? std::min(1.0, mag[size_t(k)] / (0.5 * mx)) : 0.0));
  }
  return from_vector(out, x.shape());
}

Tensor ihc_render(const Tensor& he, const Tensor& mask) {
  NABLA_CHECK(he.defined() && mask.defined() && he.dim() == 3 && he.size(0) == 3 &&
                  mask.dim() == 2 && mask.size(0) == he.size(1) && mask.size(1) == he.size(2),
              "ihc_render: he ", he.defined() ? shape_str(he.shape()) : "undefined",
              " must be [3, H, W] and mask ",
              mask.defined() ? shape_str(mask.shape()) : "undefined", " [H, W]");
  const int64_t hw = he.size(1) * he.size(2);
  const std::vector<double> rgb = he.to(Device::cpu()).contiguous().to_vector<double>();
  const std::vector<int64_t> m = mask.to(Device::cpu()).contiguous().to_vector<int64_t>();
  // The stain matrix M (rows: hematoxylin, eosin, their normalised cross product), OD = c M.
  auto normed = [](const double* a) {
    const double s = std::sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]);
    return std::array<double, 3>{a[0] / s, a[1] / s, a[2] / s};
  };
  const auto h = normed(kH), e = normed(kE), d = normed(kDab);
  std::array<double, 3> r = {h[1] * e[2] - h[2] * e[1], h[2] * e[0] - h[0] * e[2],
                             h[0] * e[1] - h[1] * e[0]};
  r = normed(r.data());
  const double M[3][3] = {{h[0], h[1], h[2]}, {e[0], e[1], e[2]}, {r[0], r[1], r[2]}};
  // Inverse by the adjugate.
  const double det = M[0][0] * (M[1][1] * M[2][2] - M[1][2] * M[2][1]) -
                     M[0][1] * (M[1][0] * M[2][2] - M[1][2] * M[2][0]) +
                     M[0][2] * (M[1][0] * M[2][1] - M[1][1] * M[2][0]);
  double inv[3][3];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      const int a = (j + 1) % 3, b = (j + 2) % 3, c = (i + 1) % 3, dd = (i + 2) % 3;
      inv[i][j] = (M[a][c] * M[b][dd] - M[a][dd] * M[b][c]) / det;
    }
  std::vector<float> out(size_t(3 * hw));
  for (int64_t k = 0; k < hw; ++k) {
    double od[3];
    for (int ch = 0; ch < 3; ++ch)
      od[ch] = -std::log10(std::clamp(rgb[size_t(ch * hw + k)], 1.0 / 255, 1.0));
    // c = OD M^-1: c_s = sum_ch OD_ch inv[ch][s].
    const double c_h = std::max(0.0, od[0] * inv[0][0] + od[1] * inv[1][0] + od[2] * inv[2][0]);
    const double c_dab = m[size_t(k)] == 1 ? 1.5 * std::max(c_h, 0.3) : 0.0;
    for (int ch = 0; ch < 3; ++ch)
      out[size_t(ch * hw + k)] = float(
          std::clamp(std::pow(10.0, -(c_h * h[size_t(ch)] + c_dab * d[size_t(ch)])), 0.0, 1.0));
  }
  return from_vector(out, he.shape());
}

TranslationSet translation_task(const std::string& task, bool train, int64_t limit,
                                const std::string& mnist_dir, uint64_t seed) {
  NABLA_CHECK(limit >= 0, "translation task ", task, ": limit ", limit, " must be >= 0");
  TranslationSet s;
  s.name = task;
  s.paired = translation_task_paired(task);
  const std::string split = train ? "train" : "test";
  auto names = [&](const char* dom, int64_t n) {
    std::vector<std::string> v;
    for (int64_t i = 0; i < n; ++i)
      v.push_back(task + " " + split + " " + dom + " " + std::to_string(i));
    return v;
  };
  if (task == "edges2fashion") {
    Tensor items = fashion(mnist_dir, train, -1, limit);
    s.A = sobel_edges(items);
    s.B = to_signed(items);
  } else if (task == "sneaker2boot") {
    s.A = to_signed(fashion(mnist_dir, train, 7, limit));
    s.B = to_signed(fashion(mnist_dir, train, 9, limit));
  } else {
    const int64_t n = limit > 0 ? limit : (train ? 1000 : 200);
    const int64_t size = translation_task_size(task);
    const HistologySplit hs = train ? HistologySplit::Train : HistologySplit::Test;
    std::vector<Tensor> a, b, hidden;
    for (int64_t i = 0; i < n; ++i) {
      Example t = histology_tile(seed, hs, i, size);
      a.push_back(t["image"]);
      if (train) {
        Example u = histology_tile(seed, hs, n + i, size);
        b.push_back(ihc_render(u["image"], u["mask"]));
      } else {
        hidden.push_back(ihc_render(t["image"], t["mask"]));
      }
    }
    auto stack = [](const std::vector<Tensor>& v) {
      std::vector<Tensor> r;
      for (const Tensor& t : v) r.push_back(t.unsqueeze(0));
      return to_signed(concat(r, 0));
    };
    s.A = stack(a);
    if (train) {
      s.B = stack(b);
    } else {
      s.B_of_A = stack(hidden);
      s.B = s.B_of_A;  // the test split's B domain: the same tiles, in IHC
    }
  }
  s.names_A = names("A", s.A.size(0));
  s.names_B = names("B", s.B.size(0));
  return s;
}

TranslationSet translation_folder(const std::string& root, const std::string& phase, bool aligned,
                                  int input_nc, int output_nc, int64_t limit) {
  NABLA_CHECK((input_nc == 1 || input_nc == 3) && (output_nc == 1 || output_nc == 3),
              "translation data: --input_nc ", input_nc, " and --output_nc ", output_nc,
              " must be 1 or 3");
  NABLA_CHECK(limit >= 0, "translation data: limit ", limit, " must be >= 0");
  TranslationSet s;
  s.name = root;
  const fs::path r(root);
  NABLA_CHECK(fs::is_directory(r), "translation data: ", root, " is not a folder");
  if (!aligned) {
    s.A = to_signed(domain(r / (phase + "A"), input_nc, limit, s.names_A));
    s.B = to_signed(domain(r / (phase + "B"), output_nc, limit, s.names_B));
    NABLA_CHECK(s.A.size(2) == s.B.size(2) && s.A.size(3) == s.B.size(3),
                "translation data: ", (r / (phase + "A")).string(), " holds ", s.A.size(2), "x",
                s.A.size(3), " images, ", (r / (phase + "B")).string(), " ", s.B.size(2), "x",
                s.B.size(3), ": both domains must have one size");
    return s;
  }
  s.paired = true;
  const fs::path dir = r / phase;
  if (fs::is_directory(dir / "A") && fs::is_directory(dir / "B")) {
    // The paired-folder layout: <phase>/A and <phase>/B with the same file names.
    s.A = to_signed(domain(dir / "A", input_nc, 0, s.names_A));
    s.B = to_signed(domain(dir / "B", output_nc, 0, s.names_B));
    for (size_t i = 0; i < std::max(s.names_A.size(), s.names_B.size()); ++i) {
      const bool in_b = i < s.names_B.size(), in_a = i < s.names_A.size();
      NABLA_CHECK(in_a && in_b && s.names_A[i] == s.names_B[i], "translation data: ",
                  in_a ? (dir / "A" / s.names_A[i]).string() : (dir / "B" / s.names_B[i]).string(),
                  " has no partner of the same name in ",
                  in_a ? (dir / "B").string() : (dir / "A").string());
    }
    NABLA_CHECK(s.A.size(2) == s.B.size(2) && s.A.size(3) == s.B.size(3),
                "translation data: ", (dir / "A").string(), " and ", (dir / "B").string(),
                " hold images of different sizes");
    if (limit > 0 && s.A.size(0) > limit) {
      s.A = s.A.slice(0, limit).contiguous();
      s.B = s.B.slice(0, limit).contiguous();
      s.names_A.resize(size_t(limit));
      s.names_B.resize(size_t(limit));
    }
    return s;
  }
  // Aligned images: A on the left half, B on the right half.
  std::vector<std::string> names;
  Tensor ab = domain(dir, 3, limit, names);
  NABLA_CHECK(ab.size(3) % 2 == 0, "translation data: the aligned images in ", dir.string(),
              " are ", ab.size(2), "x", ab.size(3),
              ": the width must be even (A and B side by side)", " (first file ", names.front(),
              ")");
  const int64_t w = ab.size(3) / 2;
  s.A = to_signed(convert_channels(ab.narrow(3, 0, w).contiguous(), input_nc).contiguous());
  s.B = to_signed(convert_channels(ab.narrow(3, w, w).contiguous(), output_nc).contiguous());
  s.names_A = s.names_B = names;
  return s;
}

std::vector<Tensor> jitter(const std::vector<Tensor>& images, int64_t load_size, int64_t crop_size,
                           bool flip, Generator& gen) {
  NABLA_CHECK(!images.empty() && crop_size >= 1 && crop_size <= load_size, "jitter: crop_size ",
              crop_size, " must be in [1, load_size ", load_size, "]");
  const Tensor& first = images.front();
  for (const Tensor& t : images)
    NABLA_CHECK(t.dim() == 4 && t.size(0) == first.size(0) && t.size(2) == first.size(2) &&
                    t.size(3) == first.size(3),
                "jitter: images ", shape_str(t.shape()), " and ", shape_str(first.shape()),
                " must be [N, C, H, W] with equal N, H, W");
  const int64_t n = first.size(0);
  std::vector<int64_t> top(static_cast<size_t>(n)), left(static_cast<size_t>(n));
  std::vector<bool> mirror(static_cast<size_t>(n));
  const int64_t room = load_size - crop_size + 1;
  for (int64_t i = 0; i < n; ++i) {
    const std::vector<double> u =
        rand({3}, DType::Float64, Device::cpu(), &gen).to_vector<double>();
    top[size_t(i)] = std::min(room - 1, int64_t(u[0] * double(room)));
    left[size_t(i)] = std::min(room - 1, int64_t(u[1] * double(room)));
    mirror[size_t(i)] = flip && u[2] < 0.5;
  }
  std::vector<Tensor> out;
  for (const Tensor& t : images) {
    Tensor x = t;
    if (x.size(2) != load_size || x.size(3) != load_size)
      x = upsample_bilinear2d(x, load_size, load_size, false);
    std::vector<Tensor> rows;
    for (int64_t i = 0; i < n; ++i) {
      Tensor c = x.slice(i, i + 1)
                     .narrow(2, top[size_t(i)], crop_size)
                     .narrow(3, left[size_t(i)], crop_size)
                     .contiguous();
      if (mirror[size_t(i)]) {
        const std::vector<float> v = c.to(Device::cpu()).to_vector<float>();
        std::vector<float> m(v.size());
        const int64_t planes = c.size(1), s = crop_size;
        for (int64_t p = 0; p < planes; ++p)
          for (int64_t r = 0; r < s; ++r)
            for (int64_t q = 0; q < s; ++q)
              m[size_t((p * s + r) * s + q)] = v[size_t((p * s + r) * s + (s - 1 - q))];
        c = from_vector(m, c.shape(), c.device());
      }
      rows.push_back(c);
    }
    out.push_back(concat(rows, 0));
  }
  return out;
}

}  // namespace nabla::data
