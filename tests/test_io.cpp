// engine/io: safetensors round trips and byte layout, every malformed-file error, atomic saves,
// copy_into, image grids, PNGs read back through stb_image, the Canvas and its font, plots and
// metrics files.
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nabla/io/image.h>
#include <nabla/io/metrics.h>
#include <nabla/io/plot.h>
#include <nabla/io/safetensors.h>

#include "gradcheck.h"

// The PNG reader, private to this file: engine/data holds the library's stb_image symbols.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

using namespace nabla;
using namespace nabla::io;
using namespace nabla::test;
namespace fs = std::filesystem;

namespace {

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

std::string u64_le(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char((n >> (8 * i)) & 0xff);
  return s;
}

// A safetensors file from a header text and the data region, exactly as given.
std::string st_bytes(const std::string& header, const std::string& data) {
  return u64_le(header.size()) + header + data;
}

template <typename T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::vector<double> values(const Tensor& t) {
  return t.to_vector<double>();
}

}  // namespace

// ---------------------------------------------------------------- safetensors

TEST_CASE("safetensors: round trip of F32, F64, I64, 0-d, empty, a strided view and metadata") {
  TempDir tmp;
  const std::string path = tmp / "ckpt.safetensors";
  Tensor base = arange(12).reshape({3, 4});
  TensorMap in{
      {"f32", tensor({1.5, -2.25, 3e-8, 1e30, 0, -0.0}, {2, 3})},
      {"f64", tensor({3.141592653589793, -1e-300, 1e300}, {3}, DType::Float64)},
      {"i64", from_vector<int64_t>({-9007199254740993LL, 0, 42}, {3})},
      {"scalar", full({}, 7.5)},
      {"empty", zeros({0, 5})},
      {"view", base.transpose(0, 1)},  // [4, 3], not contiguous
  };
  REQUIRE_FALSE(in["view"].is_contiguous());
  const std::map<std::string, std::string> meta{{"format", "pt"}, {"epoch", "3"}};
  save_safetensors(path, in, meta);

  SafetensorsFile out = load_safetensors(path);
  CHECK(out.metadata == meta);
  REQUIRE(out.tensors.size() == in.size());
  for (const auto& kv : in) {
    const std::string& name = kv.first;  // not a structured binding: CAPTURE takes it in a lambda
    const Tensor& t = kv.second;
    CAPTURE(name);
    REQUIRE(out.tensors.count(name));
    const Tensor& u = out.tensors.at(name);
    CHECK(u.dtype() == t.dtype());
    CHECK(u.shape() == t.shape());
    CHECK(u.is_contiguous());
    CHECK(u.device().is_cpu());
    if (t.dtype() == DType::Int64)
      CHECK(u.to_vector<int64_t>() == t.to_vector<int64_t>());  // beyond 2^53: no double trip
    else
      CHECK(values(u) == values(t));
  }
  CHECK(out.tensors.at("scalar").shape().empty());
  CHECK(values(out.tensors.at("view")) ==
        std::vector<double>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  CHECK(tmp.names() == std::set<std::string>{"ckpt.safetensors"});
}

TEST_CASE("safetensors: our file's length field, JSON and data bytes are exactly the format") {
  TempDir tmp;
  const std::string path = tmp / "a.safetensors";
  save_safetensors(path, {{"b", from_vector<int64_t>({7}, {1})}, {"a", tensor({1, 2}, {2})}},
                   {{"k", "v"}});
  const std::string bytes = read_file(path);
  REQUIRE(bytes.size() >= 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[size_t(i)]);
  const std::string json =
      R"({"__metadata__":{"k":"v"},"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]},)"
      R"("b":{"data_offsets":[8,16],"dtype":"I64","shape":[1]}})";
  CHECK((8 + n) % 8 == 0);  // data 8-byte aligned
  REQUIRE(n >= json.size());
  CHECK(n - json.size() < 8);  // no more padding than alignment needs
  CHECK(bytes.substr(8, json.size()) == json);
  CHECK(bytes.substr(8 + json.size(), n - json.size()) == std::string(n - json.size(), ' '));
  const std::string data = raw(std::vector<float>{1, 2}) + raw(std::vector<int64_t>{7});
  CHECK(bytes.size() == 8 + n + 16);
  CHECK(bytes.substr(8 + n) == data);
}

TEST_CASE("safetensors: hand-built files load (any order, unaligned, padded, F16/BF16 widened)") {
  TempDir tmp;
  const std::string path = tmp / "hand.safetensors";
  // Entries listed against data order; "w" F64 starts at byte 4 (unaligned); odd padding.
  const std::string header = R"({"w":{"dtype":"F64","shape":[2],"data_offsets":[4,20]},)"
                             R"( "s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                             R"( "h":{"dtype":"F16","shape":[5],"data_offsets":[20,30]},)"
                             R"( "bf":{"dtype":"BF16","shape":[2],"data_offsets":[30,34]},)"
                             R"( "e":{"dtype":"I64","shape":[0,3],"data_offsets":[34,34]},)"
                             R"( "__metadata__":{"source":"hand"}}   )";
  const std::string data = raw(std::vector<float>{-3.5f}) + raw(std::vector<double>{0.1, -2}) +
                           raw(std::vector<uint16_t>{0x3C00, 0xC000, 0x0001, 0x7C00, 0x3555}) +
                           raw(std::vector<uint16_t>{0x3F80, 0x4049});
  write_bytes(path, st_bytes(header, data));
  SafetensorsFile f = load_safetensors(path);
  CHECK(f.metadata == std::map<std::string, std::string>{{"source", "hand"}});
  REQUIRE(f.tensors.size() == 5);
  CHECK(values(f.tensors.at("s")) == std::vector<double>{-3.5});
  CHECK(f.tensors.at("w").dtype() == DType::Float64);
  CHECK(values(f.tensors.at("w")) == std::vector<double>{0.1, -2});
  CHECK(f.tensors.at("h").dtype() == DType::Float32);
  // 1, -2, the smallest subnormal 2^-24, +inf, and 0x3555 = 0.333251953125.
  CHECK(values(f.tensors.at("h")) ==
        std::vector<double>{1, -2, std::ldexp(1.0, -24), INFINITY, 0.333251953125});
  CHECK(values(f.tensors.at("bf")) == std::vector<double>{1, 3.140625});
  CHECK(f.tensors.at("e").shape() == Shape{0, 3});
  CHECK(f.tensors.at("e").dtype() == DType::Int64);
}

TEST_CASE("safetensors: every malformed file gives an error naming the path and the problem") {
  TempDir tmp;
  const std::string path = tmp / "bad.safetensors";
  auto expect = [&](const std::string& bytes, std::vector<std::string> fragments) {
    write_bytes(path, bytes);
    fragments.push_back(path);
    check_error([&] { load_safetensors(path); }, fragments);
  };
  const std::string f32x2 = raw(std::vector<float>{1, 2});

  SUBCASE("missing file") {
    check_error([&] { load_safetensors(tmp / "nope.safetensors"); },
                {"no such file", tmp / "nope.safetensors"});
  }
  SUBCASE("a directory") {
    check_error([&] { load_safetensors(tmp.path.string()); }, {"not a regular file"});
  }
  SUBCASE("shorter than the length field") {
    expect("abcde", {"5 bytes", "too short"});
  }
  SUBCASE("header length past the end of the file") {
    expect(u64_le(1000) + "{}  " + std::string(8, 'x'),
           {"header length 1000", "the file is 20 bytes", "at most 12"});
  }
  SUBCASE("header length over 100 MB, in a file big enough to hold it") {
    write_bytes(path, u64_le(150'000'000));
    fs::resize_file(path, 200'000'000);  // sparse: costs no disk and no time
    check_error([&] { load_safetensors(path); }, {"150000000", "100 MB", path});
  }
  SUBCASE("header not JSON") {
    expect(st_bytes("{\"a\": [1,", ""), {"not valid JSON", "parse"});
  }
  SUBCASE("header not an object") {
    expect(st_bytes("[1, 2]", ""), {"JSON object", "array"});
  }
  SUBCASE("entry not an object") {
    expect(st_bytes(R"({"a": 5})", ""), {"'a'", "expected an object"});
  }
  SUBCASE("missing fields") {
    expect(st_bytes(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", f32x2), {"'a'", "\"dtype\""});
    expect(st_bytes(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", f32x2), {"\"shape\""});
    expect(st_bytes(R"({"a":{"dtype":"F32","shape":[2]}})", f32x2), {"\"data_offsets\""});
  }
  SUBCASE("wrong JSON types") {
    expect(st_bytes(R"({"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", f32x2),
           {"dtype must be a string"});
    expect(st_bytes(R"({"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", f32x2),
           {"shape must be an array of non-negative integers"});
    expect(st_bytes(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", f32x2),
           {"shape must be", "[-2]"});
    expect(st_bytes(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", f32x2),
           {"shape must be"});
    expect(st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}})", f32x2),
           {"data_offsets must be two non-negative integers"});
    expect(st_bytes(R"({"__metadata__":{"epoch":3}})", ""), {"__metadata__", "'epoch'", "string"});
  }
  SUBCASE("unsupported dtype") {
    expect(st_bytes(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", f32x2),
           {"dtype U8", "supported: F32, F64, I64"});
  }
  SUBCASE("offsets out of range or reversed") {
    expect(st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", f32x2),
           {"[8, 0]", "end before they begin"});
    expect(st_bytes(R"({"a":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}})", f32x2),
           {"[0, 400]", "past the end", "8 bytes"});
  }
  SUBCASE("offsets disagree with shape x dtype size") {
    expect(st_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f32x2),
           {"shape [3]", "F32", "needs 12 bytes", "span 8 bytes"});
    // A shape whose byte count overflows 64 bits must not wrap around to the span.
    expect(st_bytes(R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
                    f32x2),
           {"shape [4294967296, 4294967296] overflows a 64-bit element count"});
    // The element count fits in int64, its byte count does not.
    expect(st_bytes(R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})",
                    f32x2),
           {"more than 2^64", "span 8 bytes"});
  }
  SUBCASE("overlapping entries") {
    expect(st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                    R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                    f32x2 + f32x2.substr(0, 4)),
           {"'a' [0, 8]", "'b' [4, 12]", "overlap"});
  }
  SUBCASE("bytes no entry covers") {
    expect(st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f32x2 + "xyzw"),
           {"data region is 12 bytes", "cover 8", "[8, 12)"});
    expect(st_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                    R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                    f32x2 + "xyzw"),
           {"cover 8", "[4, 8) belong to no tensor"});
  }
}

TEST_CASE("safetensors: a failed save leaves the existing file untouched and no temp file") {
  TempDir tmp;
  const std::string path = tmp / "model.safetensors";
  save_safetensors(path, {{"w", tensor({1, 2, 3}, {3})}});
  const std::string before = read_file(path);
  const std::set<std::string> only{"model.safetensors"};

  check_error([&] { save_safetensors(path, {{"w", Tensor()}}); }, {path, "'w'", "undefined"});
  CHECK(read_file(path) == before);
  CHECK(tmp.names() == only);

  check_error([&] { save_safetensors(path, {{"__metadata__", ones({1})}}); }, {"reserved"});
  CHECK(tmp.names() == only);

  check_error([&] { save_safetensors(path, {{"bad\xff", ones({1})}}); }, {"encode the header"});
  CHECK(read_file(path) == before);

  // The writer fails after the temp file exists: the temp file must go, the target must stay.
  check_error(
      [&] {
        write_file_atomic(path, "test", [](std::FILE* f) {
          std::fputs("partial", f);
          throw Error("disk on fire");
        });
      },
      {"test", path, "disk on fire"});
  CHECK(read_file(path) == before);
  CHECK(tmp.names() == only);

  const std::string missing_dir = tmp / "no/such/dir/m.safetensors";
  check_error(
      [&] {
        save_safetensors(missing_dir, {{"w", ones({1})}});
      },
      {missing_dir, "No such file"});
  CHECK(tmp.names() == only);

  // Renaming over a non-empty directory fails after the data is written.
  fs::create_directories(tmp.path / "occupied" / "x");
  check_error(
      [&] {
        save_safetensors(tmp / "occupied", {{"w", ones({1})}});
      },
      {"cannot rename", tmp / "occupied"});
  CHECK(tmp.names() == std::set<std::string>{"model.safetensors", "occupied"});

  // A successful save replaces the file in one step.
  save_safetensors(path, {{"w", tensor({4, 5}, {2})}});
  CHECK(values(load_safetensors(path).tensors.at("w")) == std::vector<double>{4, 5});
  CHECK(tmp.names() == std::set<std::string>{"model.safetensors", "occupied"});
}

TEST_CASE("copy_into: copies by name with dtype conversion, or lists every mismatch") {
  Tensor w = zeros({2, 2}), b = zeros({2});
  TensorMap dst{{"fc.weight", w}, {"fc.bias", b}};
  copy_into(dst,
            {{"fc.weight", tensor({1, 2, 3, 4}, {2, 2}, DType::Float64)},
             {"fc.bias", tensor({0.5, -0.5}, {2}, DType::Float64)}},
            "ckpt.safetensors");
  CHECK(w.dtype() == DType::Float32);
  CHECK(values(w) == std::vector<double>{1, 2, 3, 4});  // the model's own tensors changed
  CHECK(values(b) == std::vector<double>{0.5, -0.5});

  TensorMap conv{{"conv1.weight", zeros({32, 1, 3, 3})},
                 {"conv1.bias", zeros({32})},
                 {"fc.weight", zeros({10, 4})}};
  TensorMap file{{"conv1.weight", ones({16, 1, 3, 3})},
                 {"fc.weight", ones({10, 4})},
                 {"head.weight", ones({1})}};
  check_error([&] { copy_into(conv, file, "run/ckpt.safetensors"); },
              {"run/ckpt.safetensors", "missing from the file (1): conv1.bias",
               "unexpected in the file (1): head.weight",
               "conv1.weight: expected [32, 1, 3, 3], file has [16, 1, 3, 3]"});
  CHECK(values(conv.at("fc.weight")) == std::vector<double>(40, 0.0));  // nothing copied
}

// ---------------------------------------------------------------- images

TEST_CASE("make_grid: shape, placement, scaling and padding") {
  // 5 images [1, 2, 3] with distinct values; 3 per row, padding 1, scale 2.
  const int64_t N = 5, H = 2, W = 3, pad = 1, s = 2;
  Tensor imgs = arange(double(N * H * W)).reshape({N, 1, H, W});
  Tensor g = make_grid(imgs, 3, pad, -1.0, s);
  const int64_t cell_h = H * s + pad, cell_w = W * s + pad;
  REQUIRE(g.shape() == Shape{1, 2 * cell_h + pad, 3 * cell_w + pad});
  std::vector<double> v = values(g);
  int bad = 0;
  for (int64_t y = 0; y < g.size(1); ++y)
    for (int64_t x = 0; x < g.size(2); ++x) {
      double want = -1;
      const int64_t r = (y - pad) / cell_h, c = (x - pad) / cell_w;
      const int64_t iy = (y - pad) % cell_h, ix = (x - pad) % cell_w;
      const int64_t n = r * 3 + c;
      if (y >= pad && x >= pad && iy < H * s && ix < W * s && n < N)
        want = double(n * H * W + (iy / s) * W + ix / s);
      bad += v[size_t(y * g.size(2) + x)] != want;
    }
  CHECK(bad == 0);

  Tensor rgb = make_grid(rand({2, 3, 4, 4}), 8, 2, 1.0, 1);  // nrow > N: one row of N images
  CHECK(rgb.shape() == Shape{3, 4 + 2 * 2, 2 * (4 + 2) + 2});
  CHECK(make_grid(ones({1, 1, 28, 28}, DType::Float64), 8, 0, 0, 3).shape() == Shape{1, 84, 84});

  check_error([&] { make_grid(ones({3, 4, 4}), 8); }, {"make_grid", "[N, C, H, W]", "[3, 4, 4]"});
  check_error([&] { make_grid(ones({2, 2, 4, 4}), 8); }, {"C = 1 or 3", "[2, 2, 4, 4]"});
  check_error([&] { make_grid(ones({2, 1, 4, 4}, DType::Int64), 8); }, {"float", "int64"});
  check_error([&] { make_grid(ones({2, 1, 4, 4}), 0); }, {"nrow 0"});
  check_error([&] { make_grid(ones({2, 1, 4, 4}), 2, 2, 1.0, 1 << 20); }, {"too large"});
}

TEST_CASE("save_png: written atomically and read back with stb_image") {
  TempDir tmp;
  SUBCASE("gray [H, W]: clamping, rounding, NaN") {
    const std::string path = tmp / "g.png";
    save_png(path, tensor({0, 1, 0.5, -3, 7, NAN}, {2, 3}));
    int w = 0, h = 0, c = 0;
    unsigned char* px = stbi_load(path.c_str(), &w, &h, &c, 0);
    REQUIRE(px != nullptr);
    CHECK(w == 3);
    CHECK(h == 2);
    CHECK(c == 1);
    CHECK(std::vector<int>(px, px + 6) == std::vector<int>{0, 255, 128, 0, 255, 0});
    stbi_image_free(px);
  }
  SUBCASE("RGB [3, H, W] float64, channel order") {
    const std::string path = tmp / "rgb.png";
    Tensor x = zeros({3, 2, 2}, DType::Float64);
    double* p = x.data<double>();
    p[0] = 1;        // R of (0, 0)
    p[4 + 1] = 1;    // G of (0, 1)
    p[8 + 2] = 0.2;  // B of (1, 0): round(51) = 51
    save_png(path, x);
    int w = 0, h = 0, c = 0;
    unsigned char* px = stbi_load(path.c_str(), &w, &h, &c, 0);
    REQUIRE(px != nullptr);
    CHECK(c == 3);
    CHECK(std::vector<int>(px, px + 12) ==
          std::vector<int>{255, 0, 0, 0, 255, 0, 0, 0, 51, 0, 0, 0});
    stbi_image_free(px);
  }
  SUBCASE("a grid file and errors") {
    const std::string path = tmp / "grid.png";
    save_image_grid(path, rand({10, 1, 28, 28}), 4, 2, 2);
    int w = 0, h = 0, c = 0;
    REQUIRE(stbi_info(path.c_str(), &w, &h, &c));
    CHECK(w == 4 * (56 + 2) + 2);
    CHECK(h == 3 * (56 + 2) + 2);
    const std::string before = read_file(path);
    check_error([&] { save_png(path, ones({2, 4, 4})); }, {"save_png", path, "[2, 4, 4]"});
    check_error([&] { save_png(path, ones({4, 4}, DType::Int64)); }, {"float", "int64"});
    const std::string nodir = tmp / "missing/x.png";
    check_error([&] { save_png(nodir, ones({4, 4})); }, {"save_png", nodir});
    CHECK(read_file(path) == before);
    CHECK(tmp.names() == std::set<std::string>{"grid.png"});
  }
}

namespace {
int count_color(const Canvas& cv, Rgb c) {
  int n = 0;
  for (int y = 0; y < cv.height(); ++y)
    for (int x = 0; x < cv.width(); ++x) n += cv.pixel(x, y) == c;
  return n;
}
}  // namespace

namespace {
// The font pixels of one character as rows of '#'/'.', read from a canvas.
std::vector<std::string> render(char ch, int scale = 1) {
  Canvas cv(Canvas::kGlyphW * scale, Canvas::kGlyphH * scale, kWhite);
  cv.text(0, 0, std::string(1, ch), kBlack, scale);
  std::vector<std::string> rows;
  for (int y = 0; y < cv.height(); ++y) {
    std::string r;
    for (int x = 0; x < cv.width(); ++x) r += cv.pixel(x, y) == kBlack ? '#' : '.';
    rows.push_back(r);
  }
  return rows;
}
}  // namespace

TEST_CASE("Canvas: font glyphs, text metrics and rotation") {
  CHECK(render('1') == std::vector<std::string>{"..#..", ".##..", "..#..", "..#..", "..#..",
                                                "..#..", ".###.", "....."});
  CHECK(render('%') == std::vector<std::string>{"##...", "##..#", "...#.", "..#..", ".#...",
                                                "#..##", "...##", "....."});
  CHECK(render('g') == std::vector<std::string>{".....", ".....", ".####", "#...#", "#...#",
                                                ".####", "....#", ".###."});
  CHECK(render(' ') == std::vector<std::string>(8, "....."));
  CHECK(render('\x01') == render('?'));  // outside ASCII 32..126
  // Scale 2 doubles every pixel.
  const auto one = render('1'), two = render('1', 2);
  int bad = 0;
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 10; ++x)
      bad += two[size_t(y)][size_t(x)] != one[size_t(y / 2)][size_t(x / 2)];
  CHECK(bad == 0);
  // Every printable glyph has ink and differs from every other one: catches a shifted table.
  std::set<std::vector<std::string>> seen;
  for (char ch = 33; ch <= 126; ++ch) {
    CAPTURE(ch);
    const auto g = render(ch);
    CHECK(g != render(' '));
    CHECK(seen.insert(g).second);
  }

  CHECK(Canvas::text_width("ab", 1) == 11);
  CHECK(Canvas::text_width("abc\nd", 2) == 34);
  CHECK(Canvas::text_width("", 1) == 0);
  CHECK(Canvas::text_height("a", 1) == 8);
  CHECK(Canvas::text_height("a\nb", 3) == 54);

  // Rotated 90 degrees counter-clockwise: the glyph's column u becomes row (width - 1 - u).
  Canvas cv(8, 5, kWhite);
  cv.text_vertical(0, 0, "1", kBlack);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 8; ++x) {
      CAPTURE(x);
      CAPTURE(y);
      CHECK((cv.pixel(x, y) == kBlack) == (one[size_t(x)][size_t(4 - y)] == '#'));
    }
  check_error([&] { cv.text(0, 0, "x", kBlack, 0); }, {"scale", "0"});
}

TEST_CASE("Canvas: rectangles, lines, discs, blits, clipping, conversion") {
  Canvas cv(6, 4, Rgb{1, 2, 3});
  CHECK(cv.pixel(5, 3) == Rgb{1, 2, 3});
  cv.fill_rect(4, 2, 100, 100, kRed);  // clipped at the border
  cv.fill_rect(-50, -50, 51, 51, kGreen);
  cv.set_pixel(-1, 0, kBlue);
  cv.line(-10, 100, 1000, -7, kBlue, 3);  // off-canvas ends: clipped, not a crash
  CHECK(cv.pixel(4, 2) == kRed);
  CHECK(cv.pixel(5, 3) == kRed);
  CHECK(cv.pixel(0, 0) == kGreen);
  check_error([&] { cv.pixel(6, 0); }, {"(6, 0)", "6x4"});
  check_error([] { Canvas(0, 5); }, {"Canvas", "0x5"});

  Canvas d(5, 5, kWhite);
  d.line(0, 0, 4, 4, kBlack);
  int ink = 0;
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 5; ++x) {
      ink += d.pixel(x, y) == kBlack;
      if (x == y) CHECK(d.pixel(x, y) == kBlack);
    }
  CHECK(ink == 5);
  // Far-away ends are clipped: same pixels on the canvas, and no walk across 2e9 pixels.
  Canvas e(5, 5, kWhite);
  e.line(-1000000000, 1, 1000000000, 1, kBlack);
  e.line(-100, -100, 100, 100, kRed);
  for (int x = 0; x < 5; ++x) CHECK(e.pixel(x, 1) == (x == 1 ? kRed : kBlack));
  for (int k = 0; k < 5; ++k) CHECK(e.pixel(k, k) == kRed);
  e.line(0, 0, 4, 4, kBlue, 1 << 30);  // a brush larger than the canvas fills it
  CHECK(count_color(e, kBlue) == 25);
  Canvas r(7, 7, kWhite);
  r.fill_circle(3, 3, 2, kBlack);
  CHECK(r.pixel(3, 1) == kBlack);
  CHECK(r.pixel(1, 1) == kWhite);  // corner of the 5x5 box is outside radius 2.5
  CHECK(r.pixel(3, 0) == kWhite);

  Canvas b(4, 4, kWhite);
  b.blit(tensor({0, 1, 0.5, 2}, {2, 2}), 0, 0, 2);  // gray, clamped, scaled
  CHECK(b.pixel(1, 1) == Rgb{0, 0, 0});
  CHECK(b.pixel(2, 0) == Rgb{255, 255, 255});
  CHECK(b.pixel(1, 3) == Rgb{128, 128, 128});
  Tensor t = b.to_tensor();
  CHECK(t.shape() == Shape{3, 4, 4});
  CHECK(t.to_vector<float>()[2 * 4 + 1] == doctest::Approx(128 / 255.0));
  check_error([&] { b.blit(ones({2, 3, 3}), 0, 0); }, {"Canvas::blit", "[2, 3, 3]"});
}

// ---------------------------------------------------------------- plots

TEST_CASE("nice_ticks: round steps that cover the range") {
  Ticks t = nice_ticks(1, 10, 7, true);
  CHECK(t.step == 2);
  CHECK(t.values == std::vector<double>{0, 2, 4, 6, 8, 10});
  t = nice_ticks(0.62, 0.91, 7);
  CHECK(t.step == doctest::Approx(0.1));
  CHECK(t.first == doctest::Approx(0.6));
  CHECK(t.last == doctest::Approx(1.0));
  CHECK(t.decimals == 1);
  CHECK(format_tick(t.values[2], t.decimals) == "0.8");
  t = nice_ticks(5, 5);  // a single value is widened around it
  CHECK(t.first <= 4.5);
  CHECK(t.last >= 5.5);
  CHECK(nice_ticks(0, 0).values.size() >= 3);
  CHECK(format_tick(-1e-12, 2) == "0.00");
  CHECK(format_tick(2.5e6, 0) == "2.5e+06");
  // Property sweep: every range gets <= max_ticks ticks at multiples of a 1/2/5 step, covering it.
  Generator gen(3);
  std::vector<double> r =
      rand({200}, DType::Float64, Device::cpu(), &gen, -6, 6).to_vector<double>();
  int bad = 0;
  for (size_t i = 0; i + 1 < r.size(); i += 2) {
    const double lo = std::min(r[i], r[i + 1]) * 1000, hi = std::max(r[i], r[i + 1]) * 1000;
    const Ticks k = nice_ticks(lo, hi, 6);
    const double m = k.step / std::pow(10.0, std::floor(std::log10(k.step) + 1e-9));
    const bool ok = k.values.size() <= 6 && k.values.size() >= 2 && k.first <= lo && k.last >= hi &&
                    (std::abs(m - 1) < 1e-9 || std::abs(m - 2) < 1e-9 || std::abs(m - 5) < 1e-9);
    if (!ok && bad++ < 3) MESSAGE("range [" << lo << ", " << hi << "] step " << k.step);
  }
  CHECK(bad == 0);
}

TEST_CASE("save_plot: panels, single points, NaN gaps and errors") {
  TempDir tmp;
  const Rgb c1{1, 200, 3}, c2{250, 5, 9};
  Series full{"train", {1, 2, 3, 4, 5}, {0.9, 0.5, 0.4, 0.35, 0.3}, c1};
  Series gap = full;
  gap.y[2] = NAN;
  PlotPanel p{"loss", "epoch", "loss", {full}};
  PlotPanel q{"loss", "epoch", "loss", {gap}};
  const int n_full = count_color(render_plot({p}), c1), n_gap = count_color(render_plot({q}), c1);
  CHECK(n_gap > 0);
  CHECK(n_gap < n_full);  // the two segments next to the NaN are gone

  PlotPanel one{"acc", "", "", {Series{"test", {3}, {0.8}, c2}}};
  Canvas cv = render_plot({p, one}, 300, 200);
  CHECK(cv.width() == 600);
  CHECK(cv.height() == 200);
  // The single point's marker lands in the right-hand panel, as does its legend entry.
  int right = 0, left = 0;
  for (int y = 0; y < 200; ++y)
    for (int x = 0; x < 600; ++x) (x < 300 ? left : right) += cv.pixel(x, y) == c2;
  CHECK(left == 0);
  CHECK(right > 0);

  const std::string path = tmp / "curves.png";
  save_plot(path, {p, one});
  int w = 0, h = 0, c = 0;
  REQUIRE(stbi_info(path.c_str(), &w, &h, &c));
  CHECK(w == 960);
  CHECK(h == 360);

  check_error([&] { save_plot(path, {}); }, {"save_plot", path, "no panels"});
  check_error(
      [&] {
        save_plot(path, {PlotPanel{"empty", "", "", {}}});
      },
      {"panel 0", "'empty'", "no series"});
  Series bad{"val", {1, 2, 3}, {1, 2}, c1};
  check_error(
      [&] {
        save_plot(path, {p, PlotPanel{"acc", "", "", {bad}}});
      },
      {"'val'", "panel 1", "3 x values but 2 y values"});
  check_error([&] { save_plot(path, {p}, 100, 100); }, {"100x100", "too small"});
}

// ---------------------------------------------------------------- metrics

TEST_CASE("CsvWriter: header, flushed rows, number format, errors") {
  TempDir tmp;
  const std::string path = tmp / "metrics.csv";
  {
    CsvWriter w(path, {"epoch", "loss", "a,b"});
    CHECK(read_file(path) == "epoch,loss,\"a,b\"\n");
    w.row({1, 0.123456789, NAN});
    w.row({2, 1e-7, -INFINITY});
    // Each row is on disk before the writer goes away: a crash keeps it.
    CHECK(read_file(path) == "epoch,loss,\"a,b\"\n1,0.12345679,nan\n2,1e-07,-inf\n");
    check_error([&] { w.row({1, 2}); }, {path, "expected 3 values", "got 2"});
  }
  check_error([&] { CsvWriter(tmp / "no/dir.csv", {"a"}); }, {"cannot create", tmp / "no/dir.csv"});
  check_error([&] { CsvWriter(path, {}); }, {"no columns"});
  check_error([&] { CsvWriter(path, {"a", "a"}); }, {"'a'", "twice"});

  CHECK(format_number(3) == "3");
  CHECK(format_number(-2.5) == "-2.5");
  CHECK(format_duration(0.5) == "0.50s");
  CHECK(format_duration(9.84) == "9.8s");
  CHECK(format_duration(65) == "1m05s");
  CHECK(format_duration(59.97) == "1m00s");
  CHECK(format_duration(7387) == "2h03m07s");
  CHECK(format_duration(NAN) == "?");
  CHECK(format_count(950) == "950");
  CHECK(format_count(1234) == "1.23k");
  CHECK(format_count(45.6e6) == "45.6M");
  CHECK(format_count(7e9) == "7.00G");
  CHECK(format_count(999.7e3) == "1.00M");
  CHECK(format_count(-1500) == "-1.50k");
  CHECK(format_count(123456) == "123k");
}
