// engine/data: IDX round trips and every malformed-file error, load_mnist on tiny synthetic
// directories, the DataLoader's permutations and gathers, PNG decoding and folder loading, and
// (when installed) the real Fashion-MNIST test split.
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nabla/data/idx.h>
#include <nabla/data/image_folder.h>
#include <nabla/data/loader.h>
#include <nabla/data/mnist.h>

#include "gradcheck.h"

// Static, so these symbols cannot clash with the engine's own stb_image_write implementation.
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

using namespace nabla;
using namespace nabla::data;
using namespace nabla::test;
namespace fs = std::filesystem;

namespace {

void write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  REQUIRE(f.good());
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

// An IDX header by hand: magic, type, ndims, then big-endian sizes.
std::string idx_header(uint8_t type, const std::vector<uint32_t>& sizes) {
  std::string h = {0, 0, char(type), char(sizes.size())};
  for (uint32_t s : sizes)
    for (int shift = 24; shift >= 0; shift -= 8) h += char((s >> shift) & 0xff);
  return h;
}

IdxArray counting(const std::vector<int64_t>& dims) {
  IdxArray a{dims, {}};
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  for (int64_t i = 0; i < n; ++i) a.data.push_back(uint8_t((i * 37 + 11) % 256));
  return a;
}

// An MNIST-format split: n images of h x w with pixel (i, p) = (i * 31 + p * 7) % 256, labels i
// % 10.
void write_split(const std::string& dir, const std::string& prefix, int64_t n, int64_t h, int64_t w,
                 bool gz) {
  IdxArray im = {{n, h, w}, {}}, lb = {{n}, {}};
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t p = 0; p < h * w; ++p) im.data.push_back(uint8_t((i * 31 + p * 7) % 256));
    lb.data.push_back(uint8_t(i % 10));
  }
  const std::string ext = gz ? ".gz" : "";
  write_idx(dir + "/" + prefix + "-images-idx3-ubyte" + ext, im);
  write_idx(dir + "/" + prefix + "-labels-idx1-ubyte" + ext, lb);
}

// A PNG of w x h with `comp` interleaved channels.
void write_png(const std::string& path, int w, int h, int comp, const std::vector<uint8_t>& px) {
  REQUIRE(px.size() == size_t(w * h * comp));
  REQUIRE(stbi_write_png(path.c_str(), w, h, comp, px.data(), w * comp) != 0);
}

// A gray PNG whose every pixel is v.
void write_flat_png(const std::string& path, int w, int h, uint8_t v) {
  write_png(path, w, h, 1, std::vector<uint8_t>(size_t(w * h), v));
}

// The expected float of a byte: x / 255 in float32, exactly as the loaders compute it.
double px(int v) {
  return double(float(v) / 255.0f);
}

Dataset row_dataset(int64_t n, int64_t c, int64_t h, int64_t w) {
  Dataset ds;
  std::vector<float> im(size_t(n * c * h * w));
  for (size_t i = 0; i < im.size(); ++i) im[i] = float(i);
  ds.images = from_vector(im, {n, c, h, w});
  std::vector<int64_t> lb(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) lb[size_t(i)] = (i * 7) % 10;
  ds.labels = from_vector(lb, {n});
  return ds;
}

std::vector<int64_t> epoch_order(const DataLoader& dl) {
  std::vector<int64_t> all;
  for (const Batch& b : dl) all.insert(all.end(), b.indices.begin(), b.indices.end());
  return all;
}

}  // namespace

// ---------------------------------------------------------------- IDX
TEST_CASE("idx: plain and gzipped round trips keep dims and bytes") {
  TempDir tmp;
  for (const std::vector<int64_t>& dims :
       std::vector<std::vector<int64_t>>{{5}, {2, 3, 4}, {2, 1, 3, 2}, {0, 28, 28}}) {
    const IdxArray a = counting(dims);
    for (const std::string name : {"a.idx", "a.idx.gz"}) {
      write_idx(tmp / name, a);
      const IdxArray b = read_idx(tmp / name);
      CHECK(b.dims == a.dims);
      CHECK(b.data == a.data);
    }
  }
  // The suffix decides the encoding: gzip magic 1f 8b, or the bare IDX header.
  write_idx(tmp / "b.gz", counting({2, 3}));
  write_idx(tmp / "b", counting({2, 3}));
  const std::string gz = read_file(tmp / "b.gz"), plain = read_file(tmp / "b");
  CHECK(uint8_t(gz[0]) == 0x1f);
  CHECK(uint8_t(gz[1]) == 0x8b);
  CHECK(plain.substr(0, 12) == idx_header(0x08, {2, 3}));
  CHECK(plain.size() == 12 + 6);
}

TEST_CASE("idx: every malformed file names the path and the problem") {
  TempDir tmp;
  const std::string body = idx_header(0x08, {2, 3}) + std::string(6, '\x07');
  auto bad = [&](const std::string& name, const std::string& bytes,
                 const std::vector<std::string>& fragments) {
    const std::string path = tmp / name;
    write_raw(path, bytes);
    std::vector<std::string> want = fragments;
    want.push_back(path);
    want.push_back("read_idx");
    check_error([&] { read_idx(path); }, want);
  };
  write_raw(tmp / "ok", body);
  CHECK(read_idx(tmp / "ok").data == std::vector<uint8_t>(6, 7));

  check_error([&] { read_idx(tmp / "missing"); }, {"read_idx", tmp / "missing", "no such file"});
  check_error([&] { read_idx(tmp.path.string()); }, {tmp.path.string(), "not a regular file"});
  bad("empty", "", {"truncated header", "expected 4 bytes, got 0"});
  bad("magic", std::string("\x01\x00", 2) + body.substr(2), {"bad magic", "0x01 0x00"});
  bad("float", idx_header(0x0D, {2, 3}) + std::string(24, '\0'),
      {"unsupported element type 0x0D", "float32", "only 0x08"});
  bad("int32", idx_header(0x0C, {2}) + std::string(8, '\0'), {"0x0C", "int32"});
  bad("ndims0", idx_header(0x08, {}), {"expected 1 to 4 dimensions, got 0"});
  bad("ndims5", idx_header(0x08, {1, 1, 1, 1, 1}) + std::string(1, '\0'),
      {"expected 1 to 4 dimensions, got 5"});
  bad("sizes", idx_header(0x08, {2, 3}).substr(0, 9), {"truncated header", "expected 8", "got 5"});
  bad("short", body.substr(0, body.size() - 1),
      {"truncated data", "[2, 3]", "need 6 bytes, got 5"});
  bad("long", body + "xy", {"trailing bytes after the 6 data bytes"});
  bad("huge", idx_header(0x08, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}),
      {"overflow", "4294967295"});
  // Claims 4 GiB, holds 3 bytes: fails as truncated without allocating the claim.
  bad("liar", idx_header(0x08, {0xFFFFFFFF}) + "abc", {"need 4294967295 bytes, got 3"});

  // The same checks through gzip.
  write_gz(tmp / "short.gz", body.substr(0, body.size() - 1));
  check_error([&] { read_idx(tmp / "short.gz"); }, {tmp / "short.gz", "need 6 bytes, got 5"});
  write_gz(tmp / "long.gz", body + "z");
  check_error([&] { read_idx(tmp / "long.gz"); }, {tmp / "long.gz", "trailing bytes"});
  // A gzip stream cut in the middle ends early; one with a flipped byte is corrupt. The payload
  // is pseudo-random so that deflate cannot shrink it and the cut lands inside the data.
  std::string noise;
  for (uint32_t i = 0, x = 1; i < 4096; ++i) noise += char((x = x * 1664525u + 1013904223u) >> 24);
  write_gz(tmp / "whole.gz", idx_header(0x08, {4096}) + noise);
  const std::string whole = read_file(tmp / "whole.gz");
  write_raw(tmp / "cut.gz", whole.substr(0, whole.size() / 2));
  check_error([&] { read_idx(tmp / "cut.gz"); },
              {tmp / "cut.gz", "truncated data", "need 4096 bytes", "gzip stream ends early"});
  std::string flipped = whole;
  flipped[flipped.size() - 6] ^= 0x55;  // inside the CRC-32 trailer
  write_raw(tmp / "crc.gz", flipped);
  check_error([&] { read_idx(tmp / "crc.gz"); },
              {tmp / "crc.gz", "read error", "incorrect data check"});
}

TEST_CASE("idx: write_idx rejects inconsistent arrays") {
  TempDir tmp;
  check_error(
      [&] {
        write_idx(tmp / "x", IdxArray{{2, 3}, std::vector<uint8_t>(5)});
      },
      {"write_idx", tmp / "x", "[2, 3]", "need 6 bytes, data has 5"});
  check_error([&] { write_idx(tmp / "x", IdxArray{{}, {}}); }, {"got 0"});
  check_error([&] { write_idx(tmp / "x", IdxArray{{1, 1, 1, 1, 1}, {1}}); }, {"got 5"});
  check_error(
      [&] {
        write_idx(tmp / "x", IdxArray{{int64_t(1) << 32}, {}});
      },
      {"4294967296", "unsigned 32-bit"});
  check_error([&] { write_idx((tmp / "no_dir") + "/x", counting({2})); },
              {"cannot open for writing"});
}

// ---------------------------------------------------------------- MNIST
TEST_CASE("load_mnist: synthetic directories, gzipped and plain") {
  TempDir tmp;
  const std::string fashion = tmp / "my-Fashion-set", digits = tmp / "digits";
  fs::create_directories(fashion);
  fs::create_directories(digits);
  write_split(fashion, "train", 12, 3, 2, true);
  write_split(fashion, "t10k", 5, 3, 2, false);
  write_split(digits, "t10k", 5, 3, 2, true);

  const Dataset tr = load_mnist(fashion, Split::Train);
  CHECK(tr.size() == 12);
  CHECK(tr.images.shape() == Shape{12, 1, 3, 2});
  CHECK(tr.images.dtype() == DType::Float32);
  CHECK(tr.labels.shape() == Shape{12});
  CHECK(tr.labels.dtype() == DType::Int64);
  std::vector<double> want;
  for (int64_t i = 0; i < 12; ++i)
    for (int64_t p = 0; p < 6; ++p) want.push_back(px(int((i * 31 + p * 7) % 256)));
  check_close(tr.images, want, 0, 0);
  std::vector<int64_t> labels = tr.labels.to_vector<int64_t>();
  for (int64_t i = 0; i < 12; ++i) CHECK(labels[size_t(i)] == i % 10);
  CHECK(tr.class_names == fashion_mnist_classes());

  const Dataset te = load_mnist(fashion, Split::Test);
  CHECK(te.images.shape() == Shape{5, 1, 3, 2});
  check_close(te.images, std::vector<double>(want.begin(), want.begin() + 30), 0, 0);

  const Dataset lim = load_mnist(fashion, Split::Train, 4);
  CHECK(lim.images.shape() == Shape{4, 1, 3, 2});
  check_close(lim.images, std::vector<double>(want.begin(), want.begin() + 24), 0, 0);
  CHECK(load_mnist(fashion, Split::Train, 100).size() == 12);

  const Dataset d = load_mnist(digits, Split::Test);
  CHECK(d.class_names ==
        std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
}

TEST_CASE("load_mnist: the default directory and its environment override") {
  const char* old = std::getenv("NABLA_FASHION_MNIST");
  const std::string saved = old ? old : "";
  TempDir tmp;
  const std::string dir = tmp / "plain_name";
  fs::create_directories(dir);
  write_split(dir, "t10k", 3, 2, 2, false);
  setenv("NABLA_FASHION_MNIST", dir.c_str(), 1);
  CHECK(default_fashion_mnist_dir() == dir);
  // No "fashion" in the path, but it is the default directory: Fashion-MNIST names.
  CHECK(load_mnist(dir, Split::Test).class_names == fashion_mnist_classes());
  unsetenv("NABLA_FASHION_MNIST");
  CHECK(default_fashion_mnist_dir() == "/usr/share/datasets/fashion-mnist");
  CHECK(load_mnist(dir, Split::Test).class_names[0] == "0");
  if (old) setenv("NABLA_FASHION_MNIST", saved.c_str(), 1);
  CHECK(fashion_mnist_classes().size() == 10);
  CHECK(fashion_mnist_classes()[0] == "T-shirt/top");
  CHECK(fashion_mnist_classes()[9] == "Ankle boot");
}

TEST_CASE("load_mnist: errors name the path and the problem") {
  TempDir tmp;
  const std::string dir = tmp / "set";
  fs::create_directories(dir);
  check_error([&] { load_mnist(tmp / "nope", Split::Train); },
              {"load_mnist", tmp / "nope", "does not exist", "dataset-fashion-mnist", "--data"});
  check_error([&] { load_mnist(dir, Split::Train); },
              {dir, "train-images-idx3-ubyte.gz", "train-images-idx3-ubyte",
               "dataset-fashion-mnist", "--data DIR"});
  write_idx(dir + "/t10k-images-idx3-ubyte", counting({3, 2, 2}));
  check_error([&] { load_mnist(dir, Split::Test); }, {"t10k-labels-idx1-ubyte.gz"});

  write_idx(dir + "/t10k-labels-idx1-ubyte", IdxArray{{4}, {0, 1, 2, 3}});
  check_error([&] { load_mnist(dir, Split::Test); },
              {"t10k-images-idx3-ubyte", "has 3 images", "t10k-labels-idx1-ubyte", "4 labels"});
  write_idx(dir + "/t10k-labels-idx1-ubyte", IdxArray{{3}, {0, 10, 2}});
  check_error([&] { load_mnist(dir, Split::Test); },
              {"t10k-labels-idx1-ubyte", "label 10 of sample 1", "number of classes (10)"});
  write_idx(dir + "/t10k-labels-idx1-ubyte", IdxArray{{3, 1}, {0, 1, 2}});
  check_error([&] { load_mnist(dir, Split::Test); }, {"expected 1-d labels", "[3, 1]"});
  write_idx(dir + "/t10k-labels-idx1-ubyte", IdxArray{{3}, {0, 1, 2}});
  write_idx(dir + "/t10k-images-idx3-ubyte", counting({3, 4}));
  check_error([&] { load_mnist(dir, Split::Test); },
              {"t10k-images-idx3-ubyte", "expected 3-d images", "[3, 4]"});
  // The .gz file wins over the plain one when both exist; a malformed one is reported as such.
  write_raw(dir + "/t10k-images-idx3-ubyte.gz", "junk");
  check_error([&] { load_mnist(dir, Split::Test); }, {"t10k-images-idx3-ubyte.gz", "bad magic"});
}

TEST_CASE("load_mnist: the installed Fashion-MNIST test split") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir + "/t10k-images-idx3-ubyte.gz")) {
    MESSAGE("skipped: " << dir << " not installed (Debian package dataset-fashion-mnist)");
    return;
  }
  const Dataset ds = load_mnist(dir, Split::Test);
  CHECK(ds.images.shape() == Shape{10000, 1, 28, 28});
  CHECK(ds.class_names == fashion_mnist_classes());
  std::vector<int64_t> per_class(10, 0);
  int64_t out_of_range = 0;
  for (int64_t y : ds.labels.to_vector<int64_t>()) {
    if (y >= 0 && y < 10)
      ++per_class[size_t(y)];
    else
      ++out_of_range;
  }
  CHECK(out_of_range == 0);
  CHECK(per_class == std::vector<int64_t>(10, 1000));
  const float* p = ds.images.data<float>();
  const auto [lo, hi] = std::minmax_element(p, p + ds.images.numel());
  CHECK(*lo == 0.0f);
  CHECK(*hi == 1.0f);
}

// ---------------------------------------------------------------- DataLoader
TEST_CASE("DataLoader: batches cover every index once, the last one partial") {
  const Dataset ds = row_dataset(10, 1, 2, 3);
  DataLoader dl(ds, 3, true, 42);
  CHECK(dl.num_batches() == 4);
  std::vector<int64_t> sizes;
  for (const Batch& b : dl) sizes.push_back(int64_t(b.indices.size()));
  CHECK(sizes == std::vector<int64_t>{3, 3, 3, 1});
  for (int64_t e = 0; e < 3; ++e) {
    dl.set_epoch(e);
    std::vector<int64_t> order = epoch_order(dl);
    std::sort(order.begin(), order.end());
    std::vector<int64_t> all(10);
    for (int64_t i = 0; i < 10; ++i) all[size_t(i)] = i;
    CHECK(order == all);
  }

  DataLoader dropping(ds, 3, true, 42, true);
  CHECK(dropping.num_batches() == 3);
  for (const Batch& b : dropping) CHECK(b.indices.size() == 3);
  // Dropping the tail does not change the order of the batches that remain.
  std::vector<int64_t> kept = epoch_order(dropping),
                       full = epoch_order(DataLoader(ds, 3, true, 42));
  CHECK(kept == std::vector<int64_t>(full.begin(), full.begin() + 9));
  CHECK(DataLoader(ds, 5, false, 0, true).num_batches() == 2);
  CHECK(DataLoader(ds, 11, false, 0, true).num_batches() == 0);
  CHECK(DataLoader(ds, 11, false, 0).num_batches() == 1);
}

TEST_CASE("DataLoader: the order depends only on (seed, epoch)") {
  const Dataset ds = row_dataset(50, 1, 1, 1);
  DataLoader a(ds, 8, true, 7), b(ds, 8, true, 7), c(ds, 8, true, 8);
  const std::vector<int64_t> a0 = epoch_order(a);
  CHECK(a0 == epoch_order(b));
  CHECK(a0 != epoch_order(c));
  std::vector<int64_t> identity(50);
  for (int64_t i = 0; i < 50; ++i) identity[size_t(i)] = i;
  CHECK(a0 != identity);

  a.set_epoch(1);
  const std::vector<int64_t> a1 = epoch_order(a);
  CHECK(a1 != a0);
  // Jumping straight to an epoch gives what stepping there gave: no hidden state.
  b.set_epoch(5);
  b.set_epoch(1);
  CHECK(epoch_order(b) == a1);
  a.set_epoch(0);
  CHECK(epoch_order(a) == a0);
  CHECK(a.epoch() == 0);

  DataLoader plain(ds, 8, false, 7);
  plain.set_epoch(3);
  CHECK(epoch_order(plain) == identity);
}

TEST_CASE("DataLoader: batch contents are the source rows") {
  // 40 rows of 3x96x96 floats: 4.4 MB in the full batch, enough for the OpenMP gather.
  const int64_t row = 3 * 96 * 96;
  for (int64_t bs : {3, 40}) {
    const Dataset ds = row_dataset(40, 3, 96, 96);
    DataLoader dl(ds, bs, true, 3);
    dl.set_epoch(2);
    const std::vector<float> src = ds.images.to_vector<float>();
    const std::vector<int64_t> src_labels = ds.labels.to_vector<int64_t>();
    for (const Batch& b : dl) {
      const int64_t n = int64_t(b.indices.size());
      REQUIRE(b["image"].shape() == Shape{n, 3, 96, 96});
      REQUIRE(b["label"].shape() == Shape{n});
      CHECK(b["image"].is_contiguous());
      std::vector<double> want;
      std::vector<int64_t> want_labels;
      for (int64_t idx : b.indices) {
        want.insert(want.end(), src.begin() + idx * row, src.begin() + (idx + 1) * row);
        want_labels.push_back(src_labels[size_t(idx)]);
      }
      check_close(b["image"], want, 0, 0);
      CHECK(b["label"].to_vector<int64_t>() == want_labels);
    }
  }
  // A non-contiguous source (a permuted view) gathers its logical rows.
  Dataset t = row_dataset(4, 1, 2, 3);
  t.images = t.images.permute({0, 1, 3, 2});
  const Batch b = DataLoader(t, 4, false, 0).batch(0);
  check_close(b["image"], t.images.contiguous(), 0, 0);
}

TEST_CASE("DataLoader: errors") {
  const Dataset ds = row_dataset(5, 1, 1, 1);
  check_error([&] { DataLoader(ds, 0, true, 0); }, {"DataLoader", "batch_size", "got 0"});
  DataLoader dl(ds, 2, false, 0);
  check_error([&] { dl.batch(3); }, {"DataLoader::batch", "index 3", "[0, 3)"});
  check_error([&] { dl.batch(-1); }, {"index -1"});
  check_error([&] { dl.set_epoch(-2); }, {"set_epoch", "got -2"});
  Dataset bad = ds;
  bad.labels = zeros({4}, DType::Int64);
  check_error([&] { DataLoader(bad, 2, false, 0); },
              {"TensorSource", "same number of items", "float32[5, 1, 1, 1]", "int64[4]"});
  check_error([&] { DataLoader(Dataset{}, 2, false, 0); }, {"no images or no labels"});
  check_error([&] { DataLoader(nullptr, 2, false, 0); }, {"DataLoader", "no data source"});
  check_error([&] { dl.batch(0)["mask"]; }, {"no field 'mask'", "image, label"});
}

// Items built on demand, item i depending on i alone (what a procedural data set does): an image
// [1, side(i), side(i)] and a mask. `odd_size` gives item 3 a different size.
class MadeUp : public Source {
 public:
  explicit MadeUp(int64_t n, bool odd_size = false) : n_(n), odd_(odd_size) {}
  int64_t size() const override { return n_; }
  std::vector<std::string> fields() const override { return {"image", "mask"}; }
  Example get(int64_t i) const override {
    const int64_t s = odd_ && i == 3 ? 5 : 4;
    return {{"image", full({1, s, s}, double(i))},
            {"mask", full({s, s}, double(i % 3), DType::Int64)}};
  }
  std::string describe(int64_t i) const override { return "tile " + std::to_string(i); }

 private:
  int64_t n_;
  bool odd_;
};

TEST_CASE("DataLoader: items of any fields and shapes (masks, pairs, float targets)") {
  // In memory: image + int64 mask [H, W] + float target; pairs A/B.
  const int64_t n = 6;
  std::vector<float> a(size_t(n * 2 * 3 * 3)), t(size_t(n * 2));
  for (size_t i = 0; i < a.size(); ++i) a[i] = float(i);
  for (size_t i = 0; i < t.size(); ++i) t[i] = 0.5f * float(i);
  std::vector<int64_t> m(size_t(n * 3 * 3));
  for (size_t i = 0; i < m.size(); ++i) m[i] = int64_t(i % 6);
  const Tensor A = from_vector(a, {n, 2, 3, 3}), M = from_vector(m, {n, 3, 3}),
               T = from_vector(t, {n, 2});
  auto src = std::make_shared<TensorSource>(
      Example{{"image", A}, {"mask", M}, {"target", T}, {"B", mul(A, 2.0)}});
  DataLoader dl(src, 4, true, 5);
  dl.set_epoch(1);
  int64_t seen = 0;
  for (const Batch& b : dl) {
    const int64_t k = int64_t(b.indices.size());
    CHECK(b.names() == std::vector<std::string>{"image", "mask", "target", "B"});
    REQUIRE(b["mask"].shape() == Shape{k, 3, 3});
    CHECK(b["mask"].dtype() == DType::Int64);
    REQUIRE(b["target"].shape() == Shape{k, 2});
    for (int64_t r = 0; r < k; ++r) {
      const int64_t i = b.indices[size_t(r)];
      check_close(b["image"].slice(r, r + 1), A.slice(i, i + 1), 0, 0);
      check_close(b["B"].slice(r, r + 1), mul(A.slice(i, i + 1), 2.0), 0, 0);
      check_close(b["target"].slice(r, r + 1), T.slice(i, i + 1), 0, 0);
      CHECK(b["mask"].slice(r, r + 1).contiguous().to_vector<int64_t>() ==
            M.slice(i, i + 1).contiguous().to_vector<int64_t>());
    }
    seen += k;
  }
  CHECK(seen == n);
  check_error(
      [&] {
        TensorSource(Example{{"image", A}, {"mask", M.slice(0, 5)}});
      },
      {"TensorSource", "same number of items", "int64[5, 3, 3]"});

  // Built on demand: stacked per field, the same batches for the same (seed, epoch).
  DataLoader made(std::make_shared<MadeUp>(7), 3, true, 9);
  made.set_epoch(2);
  const Batch b0 = made.batch(0);
  REQUIRE(b0["image"].shape() == Shape{3, 1, 4, 4});
  REQUIRE(b0["mask"].shape() == Shape{3, 4, 4});
  for (int64_t r = 0; r < 3; ++r) {
    const int64_t i = b0.indices[size_t(r)];
    CHECK(b0["image"].slice(r, r + 1).contiguous().to_vector<float>() ==
          std::vector<float>(16, float(i)));
    CHECK(b0["mask"].slice(r, r + 1).contiguous().to_vector<int64_t>() ==
          std::vector<int64_t>(16, i % 3));
  }
  CHECK(epoch_order(made).size() == 7);
}

TEST_CASE("DataLoader: mismatched field shapes within a batch name both items") {
  DataLoader dl(std::make_shared<MadeUp>(6, true), 6, false, 0);
  check_error([&] { dl.batch(0); }, {"DataLoader", "field 'image'", "tile 3", "float32[1, 5, 5]",
                                     "tile 0", "float32[1, 4, 4]", "same shape"});
  // Batches that do not mix the odd item are fine.
  DataLoader small(std::make_shared<MadeUp>(6, true), 3, false, 0);
  CHECK(small.batch(0)["image"].shape() == Shape{3, 1, 4, 4});
  check_error([&] { small.batch(1); }, {"tile 3"});
}

// ---------------------------------------------------------------- PNG
TEST_CASE("load_png: gray and RGB values, channel conversion") {
  TempDir tmp;
  // Gray 3 wide, 2 high.
  write_png(tmp / "g.png", 3, 2, 1, {0, 51, 102, 153, 204, 255});
  const Tensor g = load_png(tmp / "g.png", 1);
  CHECK(g.shape() == Shape{1, 2, 3});
  check_close(g, {0, 0.2, 0.4, 0.6, 0.8, 1}, 1e-7, 0);
  const Tensor g3 = load_png(tmp / "g.png", 3);
  CHECK(g3.shape() == Shape{3, 2, 3});
  check_close(g3, {0, 0.2, 0.4, 0.6, 0.8, 1, 0, 0.2, 0.4, 0.6, 0.8, 1, 0, 0.2, 0.4, 0.6, 0.8, 1},
              1e-7, 0);

  // RGB 2 wide, 1 high, interleaved on disk, planar in memory.
  write_png(tmp / "c.png", 2, 1, 3, {10, 20, 30, 40, 50, 60});
  const Tensor c = load_png(tmp / "c.png", 3);
  CHECK(c.shape() == Shape{3, 1, 2});
  check_close(c, {px(10), px(40), px(20), px(50), px(30), px(60)}, 0, 0);
  // RGB -> gray is stb's integer luma (77 r + 150 g + 29 b) >> 8.
  const Tensor cg = load_png(tmp / "c.png", 1);
  CHECK(cg.shape() == Shape{1, 1, 2});
  check_close(
      cg, {px((77 * 10 + 150 * 20 + 29 * 30) >> 8), px((77 * 40 + 150 * 50 + 29 * 60) >> 8)}, 0, 0);
  // Alpha is dropped.
  write_png(tmp / "a.png", 1, 1, 4, {1, 2, 3, 4});
  check_close(load_png(tmp / "a.png", 3), {px(1), px(2), px(3)}, 0, 0);
}

TEST_CASE("load_png: errors") {
  TempDir tmp;
  write_flat_png(tmp / "ok.png", 2, 2, 9);
  check_error([&] { load_png(tmp / "ok.png", 2); }, {"load_png", tmp / "ok.png", "got 2"});
  check_error([&] { load_png(tmp / "none.png", 1); },
              {"load_png", tmp / "none.png", "no such file"});
  write_raw(tmp / "text.png", "this is not a png");
  check_error([&] { load_png(tmp / "text.png", 1); }, {tmp / "text.png", "not a PNG image"});
  // A valid header over a cut-off body fails at decoding, still naming the file.
  const std::string whole = read_file(tmp / "ok.png");
  write_raw(tmp / "cut.png", whole.substr(0, 40));
  check_error([&] { load_png(tmp / "cut.png", 1); }, {tmp / "cut.png", "load_png"});
}

TEST_CASE("load_image_folder: classes sorted by name, labels and pixels") {
  TempDir tmp;
  const std::string root = tmp / "root";
  fs::create_directories(root + "/zebra");
  fs::create_directories(root + "/ant");
  write_flat_png(root + "/zebra/b.png", 4, 3, 200);
  write_flat_png(root + "/zebra/a.png", 4, 3, 100);
  write_flat_png(root + "/ant/x.png", 4, 3, 50);
  write_raw(root + "/README.txt", "ignored");
  write_raw(root + "/zebra/.DS_Store", "ignored");

  const Dataset ds = load_image_folder(root, 1);
  CHECK(ds.class_names == std::vector<std::string>{"ant", "zebra"});
  CHECK(ds.images.shape() == Shape{3, 1, 3, 4});
  CHECK(ds.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 1});
  std::vector<double> want;
  for (int v : {50, 100, 200}) want.insert(want.end(), 12, px(v));
  check_close(ds.images, want, 0, 0);
  CHECK(load_image_folder(root, 3).images.shape() == Shape{3, 3, 3, 4});
}

TEST_CASE("load_image_folder: errors name the offending file or folder") {
  TempDir tmp;
  const std::string root = tmp / "root";
  check_error([&] { load_image_folder(root, 1); },
              {"load_image_folder", root, "no such directory"});
  fs::create_directories(root);
  check_error([&] { load_image_folder(root, 1); }, {root, "no class folders"});
  fs::create_directories(root + "/a");
  fs::create_directories(root + "/b");
  write_flat_png(root + "/a/1.png", 4, 3, 1);
  check_error([&] { load_image_folder(root, 1); }, {root + "/b", "no images"});
  write_flat_png(root + "/b/1.png", 4, 3, 1);
  write_flat_png(root + "/b/2.png", 5, 3, 1);
  check_error([&] { load_image_folder(root, 1); },
              {root + "/b/2.png", "3x5", root + "/a/1.png", "3x4", "same size"});
  fs::remove(root + "/b/2.png");
  write_raw(root + "/b/notes.txt", "hello");
  check_error([&] { load_image_folder(root, 1); }, {root + "/b/notes.txt", "not a PNG image"});
  check_error([&] { load_image_folder(root, 4); }, {"channels must be 1 (gray) or 3 (RGB)"});
}

TEST_CASE("load_paired_folder: A/B pairs by file name") {
  TempDir tmp;
  const std::string root = tmp / "facades";
  fs::create_directories(root + "/A");
  fs::create_directories(root + "/B");
  write_flat_png(root + "/A/2.png", 3, 2, 20);
  write_flat_png(root + "/A/1.png", 3, 2, 10);
  write_flat_png(root + "/B/1.png", 3, 2, 110);
  write_flat_png(root + "/B/2.png", 3, 2, 120);
  auto src = load_paired_folder(root, 1);
  CHECK(src->size() == 2);
  CHECK(src->item_names() == std::vector<std::string>{"1.png", "2.png"});
  const Batch b = DataLoader(src, 2, false, 0).batch(0);
  CHECK(b["A"].shape() == Shape{2, 1, 2, 3});
  std::vector<double> wa, wb;
  for (int v : {10, 20}) wa.insert(wa.end(), 6, px(v));
  for (int v : {110, 120}) wb.insert(wb.end(), 6, px(v));
  check_close(b["A"], wa, 0, 0);
  check_close(b["B"], wb, 0, 0);
  write_flat_png(root + "/A/3.png", 3, 2, 30);
  check_error([&] { load_paired_folder(root, 1); },
              {"load_paired_folder", root + "/B/3.png", "missing", root + "/A/3.png"});
  fs::remove(root + "/A/3.png");
  write_flat_png(root + "/B/4.png", 3, 2, 30);
  check_error([&] { load_paired_folder(root, 1); }, {root + "/B/4.png", "no partner"});
  check_error([&] { load_paired_folder(tmp / "nothing", 1); }, {"no such directory"});
}

TEST_CASE("load_image_mask_folder: images with class-index masks, and every error") {
  TempDir tmp;
  const std::string root = tmp / "seg";
  fs::create_directories(root + "/images");
  fs::create_directories(root + "/masks");
  write_png(root + "/images/a.png", 2, 2, 3, std::vector<uint8_t>(12, 255));
  write_png(root + "/images/b.png", 2, 2, 3, std::vector<uint8_t>(12, 0));
  write_png(root + "/masks/a.png", 2, 2, 1, {0, 1, 2, 5});
  write_png(root + "/masks/b.png", 2, 2, 1, {5, 5, 0, 0});
  auto src = load_image_mask_folder(root, 3, 6);
  const Example& t = src->tensors();
  CHECK(t["image"].shape() == Shape{2, 3, 2, 2});
  CHECK(t["mask"].dtype() == DType::Int64);
  CHECK(t["mask"].to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 5, 5, 5, 0, 0});
  check_close(t["image"].slice(0, 1), std::vector<double>(12, 1.0), 0, 0);
  const Batch b = DataLoader(src, 2, true, 1).batch(0);
  CHECK(b["mask"].shape() == Shape{2, 2, 2});

  check_error([&] { load_image_mask_folder(root, 3, 5); },
              {root + "/masks/a.png", "row 1, col 1", "class 5", "[0, 5)"});
  write_png(root + "/images/c.png", 2, 2, 3, std::vector<uint8_t>(12, 9));
  check_error([&] { load_image_mask_folder(root, 3, 6); },
              {root + "/masks/c.png", "missing", root + "/images/c.png"});
  write_png(root + "/masks/c.png", 3, 2, 1, std::vector<uint8_t>(6, 0));
  check_error([&] { load_image_mask_folder(root, 3, 6); },
              {root + "/masks/c.png", "2x3", root + "/images/c.png", "2x2"});
  write_png(root + "/masks/c.png", 2, 2, 3, std::vector<uint8_t>(12, 0));
  check_error([&] { load_image_mask_folder(root, 3, 6); },
              {root + "/masks/c.png", "8-bit grayscale", "3 channel"});
  fs::remove(root + "/images/c.png");
  check_error([&] { load_image_mask_folder(root, 3, 6); }, {root + "/masks/c.png", "no partner"});
}

TEST_CASE("load_images: a flat folder is one domain") {
  TempDir tmp;
  const std::string dir = tmp / "horses";
  fs::create_directories(dir + "/sub");
  write_png(dir + "/1.png", 1, 1, 3, {255, 0, 0});
  write_png(dir + "/0.png", 1, 1, 3, {0, 0, 255});
  const Dataset ds = load_images(dir + "/", 3);
  CHECK(ds.class_names == std::vector<std::string>{"horses"});
  CHECK(ds.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 0});
  check_close(ds.images, {0, 0, 1, 1, 0, 0}, 0, 0);
  check_error([&] { load_images(tmp / "void", 3); }, {"load_images", tmp / "void"});
  fs::create_directories(tmp / "empty");
  check_error([&] { load_images(tmp / "empty", 3); }, {tmp / "empty", "no images"});
}
