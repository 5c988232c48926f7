// Tensor: shapes, strides, storage sharing, factories, Philox, printing, .npy.
#include "gradcheck.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "kernels/random.h"

using namespace nabla;
using namespace nabla::test;

TEST_CASE("tensor: shape, strides, dtype, device") {
  Tensor t = zeros({2, 3, 4});
  CHECK(t.shape() == Shape{2, 3, 4});
  CHECK(t.strides() == Shape{12, 4, 1});
  CHECK(t.numel() == 24);
  CHECK(t.dim() == 3);
  CHECK(t.size(-1) == 4);
  CHECK(t.dtype() == DType::Float32);
  CHECK(t.device() == Device::cpu());
  CHECK(t.is_contiguous());
  CHECK(t.str() == "float32[2, 3, 4] cpu");
  CHECK(!t.transpose(0, 2).is_contiguous());
  CHECK(Device::parse("cuda:1") == Device::cuda(1));
  CHECK(Device::cuda(2).str() == "cuda:2");
  check_error([] { Device::parse("gpu"); }, {"Device", "gpu"});
  CHECK(dtype_size(DType::Int64) == 8);
  CHECK(std::string(dtype_name(DType::Float64)) == "float64");
}

TEST_CASE("tensor: factories and conversions") {
  check_close(ones({2, 2}), {1, 1, 1, 1});
  check_close(full({3}, 2.5), {2.5, 2.5, 2.5});
  check_close(arange(5), {0, 1, 2, 3, 4});
  // Shapes with a 0-size dim anywhere are valid, empty, contiguous tensors.
  CHECK(zeros({2, 0, 3}).numel() == 0);
  CHECK(ones({3, 0}).is_contiguous());
  check_close(arange(1, 2, 0.25), {1, 1.25, 1.5, 1.75});
  Tensor v = from_vector<int64_t>({4, 5, 6}, {3});
  CHECK(v.dtype() == DType::Int64);
  CHECK(v.to_vector<int64_t>() == std::vector<int64_t>{4, 5, 6});
  check_close(v.to(DType::Float64), {4, 5, 6});
  CHECK(tensor({1.5}, {1}).item<float>() == 1.5f);
  check_error([] { from_vector<float>({1, 2, 3}, {2, 2}); }, {"from_vector", "[2, 2]"});
  check_error([] { ones({2}).item<float>(); }, {"item", "[2]"});
  check_error([] { ones({2}).data<double>(); }, {"float32[2]", "float64"});
  check_error([] { Tensor().shape(); }, {"undefined"});
}

TEST_CASE("tensor: views share storage, contiguous copies only when needed") {
  Tensor base = arange(12).reshape({3, 4});
  Tensor row = base.slice(1, 2);
  CHECK(row.shape() == Shape{1, 4});
  row.data<float>()[0] = 100;  // row is a view: base sees the write
  CHECK(base.to_vector<float>()[4] == 100);
  Tensor t = base.transpose(0, 1);
  CHECK(t.shape() == Shape{4, 3});
  check_close(t.contiguous(), {0, 100, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  Tensor c = base.contiguous();
  CHECK(c.raw_data() == base.raw_data());  // already contiguous: no copy
  check_close(base.narrow(1, 1, 2), {1, 2, 5, 6, 9, 10});
  check_close(tensor({1, 2}, {2, 1}).expand({2, 3}), {1, 1, 1, 2, 2, 2});
  CHECK(base.permute({1, 0}).strides() == Shape{1, 4});
  CHECK(base.flatten(0).shape() == Shape{12});
  CHECK(base.unsqueeze(0).shape() == Shape{1, 3, 4});
  CHECK(base.reshape({-1, 6}).shape() == Shape{2, 6});
  check_error([&] { base.reshape({5, -1}); }, {"reshape", "[3, 4]", "[5, -1]"});
  check_error([&] { t.view({12}); }, {"view", "not contiguous"});
  check_error([&] { base.narrow(1, 3, 2); }, {"narrow", "[3, 4]"});
  check_error([&] { base.expand({2, 4}); }, {"expand", "[3, 4]", "[2, 4]"});
}

TEST_CASE("tensor: copy_ and fill_ handle strided destinations") {
  Tensor a = zeros({3, 3});
  fill_(a.narrow(1, 1, 1), 7);
  check_close(a, {0, 7, 0, 0, 7, 0, 0, 7, 0});
  copy_(a.transpose(0, 1), arange(9).reshape({3, 3}));
  check_close(a, {0, 3, 6, 1, 4, 7, 2, 5, 8});
  check_error([&] { copy_(a, zeros({2})); }, {"copy_", "[3, 3]", "[2]"});
}

TEST_CASE("tensor: CUDA without a backend is a clear error") {
  if (cuda_available()) return;
  check_error([] { zeros({2}).to(Device::cuda(0)); }, {"cuda:0"});
}

TEST_CASE("random: Philox4x32-10 matches the Random123 known-answer vectors") {
  Philox4x32 a = philox4x32_10(0, 0, 0);
  CHECK(a.w[0] == 0x6627e8d5u);
  CHECK(a.w[3] == 0x9b00dbd8u);
  Philox4x32 b = philox4x32_10(~0ull, ~0ull, ~0ull);
  CHECK(b.w[0] == 0x408f276du);
  CHECK(b.w[3] == 0x6d5451fdu);
  Philox4x32 c = philox4x32_10(0x85a308d3243f6a88ull, 0x0370734413198a2eull, 0x299f31d0a4093822ull);
  CHECK(c.w[0] == 0xd16cfe09u);
  CHECK(c.w[1] == 0x94fdccebu);
  CHECK(c.w[2] == 0x5001e420u);
  CHECK(c.w[3] == 0x24126ea1u);
}

TEST_CASE("random: seeded, reproducible, and counter-addressable") {
  Generator g1(42), g2(42), g3(43);
  Tensor a = rand({1000}, DType::Float32, Device::cpu(), &g1);
  Tensor b = rand({1000}, DType::Float32, Device::cpu(), &g2);
  Tensor c = rand({1000}, DType::Float32, Device::cpu(), &g3);
  CHECK(a.to_vector<float>() == b.to_vector<float>());
  CHECK(a.to_vector<float>() != c.to_vector<float>());
  CHECK(g1.offset() == 250);  // 4 floats per Philox block
  // Drawing 1000 then 1000 equals the second half of one draw of 2000 from the same seed.
  Tensor a2 = rand({1000}, DType::Float32, Device::cpu(), &g1);
  Generator g4(42);
  Tensor both = rand({2000}, DType::Float32, Device::cpu(), &g4);
  CHECK(both.narrow(0, 1000, 1000).contiguous().to_vector<float>() == a2.to_vector<float>());
  // Element 5 of the stream is word 1 of block 1.
  Philox4x32 blk = philox4x32_10(1, 0, 42);
  CHECK(a.to_vector<float>()[5] == philox_to_float(blk.w[1]));
  // Moments of uniform and normal draws.
  Generator g(7);
  Tensor u = rand({100000}, DType::Float64, Device::cpu(), &g);
  CHECK(mean(u).item<double>() == doctest::Approx(0.5).epsilon(0.01));
  CHECK(max(u).item<double>() < 1.0);
  Tensor z = randn({100000}, DType::Float64, Device::cpu(), &g, 2.0, 3.0);
  CHECK(mean(z).item<double>() == doctest::Approx(2.0).epsilon(0.02));
  CHECK(std::sqrt(var(z).item<double>()) == doctest::Approx(3.0).epsilon(0.02));
  Tensor r = randint(3, 7, {1000}, &g);
  std::vector<int64_t> rv = r.to_vector<int64_t>();
  CHECK(*std::min_element(rv.begin(), rv.end()) == 3);
  CHECK(*std::max_element(rv.begin(), rv.end()) == 6);
  std::vector<int64_t> p = randperm(50, &g);
  std::sort(p.begin(), p.end());
  for (int64_t i = 0; i < 50; ++i) CHECK(p[size_t(i)] == i);
}

TEST_CASE("tensor: printing") {
  std::ostringstream os;
  os << tensor({1, 2, 3, 4}, {2, 2});
  CHECK(os.str() == "tensor([[1, 2],\n        [3, 4]], float32[2, 2] cpu)");
  std::ostringstream big;
  big << arange(2000);
  CHECK(big.str().find("[0, 1, 2, ..., 1997, 1998, 1999]") != std::string::npos);
  CHECK(big.str().find("1999") != std::string::npos);
}

namespace {
std::string tmp_path(const char* name) {
  return "/tmp/nabla_test_" + std::to_string(getpid()) + "_" + name;
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}
}  // namespace

TEST_CASE("npy: round trip for every dtype") {
  Tensor f = arange(6).reshape({2, 3});
  save_npy(tmp_path("f.npy"), f.transpose(0, 1));  // non-contiguous input is fine
  Tensor g = load_npy(tmp_path("f.npy"));
  CHECK(g.shape() == Shape{3, 2});
  check_close(g, {0, 3, 1, 4, 2, 5});
  save_npy(tmp_path("d.npy"), arange(4, DType::Float64));
  CHECK(load_npy(tmp_path("d.npy")).dtype() == DType::Float64);
  save_npy(tmp_path("i.npy"), from_vector<int64_t>({7, -8}, {2}));
  CHECK(load_npy(tmp_path("i.npy")).to_vector<int64_t>() == std::vector<int64_t>{7, -8});
  save_npy(tmp_path("s.npy"), full({}, 3.0));
  CHECK(load_npy(tmp_path("s.npy")).shape() == Shape{});
  // The header is what NumPy writes: 64-byte aligned, version 1.0.
  std::ifstream in(tmp_path("f.npy"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  CHECK(bytes.substr(1, 5) == "NUMPY");
  CHECK(bytes.find("'shape': (3, 2)") != std::string::npos);
  CHECK((bytes.size() - 24) % 64 == 0);
}

TEST_CASE("npy: malformed files get clear errors") {
  check_error([] { load_npy("/nonexistent/x.npy"); }, {"cannot open", "/nonexistent/x.npy"});
  write_bytes(tmp_path("bad1.npy"), "hello world");
  check_error([] { load_npy(tmp_path("bad1.npy")); }, {"not a .npy"});
  std::string good;
  {
    save_npy(tmp_path("g.npy"), arange(4));
    std::ifstream in(tmp_path("g.npy"), std::ios::binary);
    good.assign((std::istreambuf_iterator<char>(in)), {});
  }
  write_bytes(tmp_path("trunc.npy"), good.substr(0, good.size() - 3));
  check_error([] { load_npy(tmp_path("trunc.npy")); }, {"truncated data", "[4]"});
  write_bytes(tmp_path("trunch.npy"), good.substr(0, 30));
  check_error([] { load_npy(tmp_path("trunch.npy")); }, {"truncated inside the header"});
  std::string u8 = good;
  u8.replace(u8.find("<f4"), 3, "|u1");
  write_bytes(tmp_path("u8.npy"), u8);
  check_error([] { load_npy(tmp_path("u8.npy")); }, {"dtype", "|u1"});
  std::string fo = good;
  fo.replace(fo.find("False"), 5, "True ");
  write_bytes(tmp_path("fo.npy"), fo);
  check_error([] { load_npy(tmp_path("fo.npy")); }, {"Fortran"});
}
