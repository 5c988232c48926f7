// Test helpers: finite-difference gradient checks, closeness checks, seeded values, scratch
// folders.
//
// gradcheck(f, inputs): with L = sum(f(inputs) * R) for a fixed random R, compares every
// element of autograd's dL/dinput with the central difference (L(x+h) - L(x-h)) / 2h, in
// float64. Inputs are made float64 leaves that require grad. Callers choose inputs away
// from kinks (relu at 0, clamp bounds, ties in max).
#pragma once

#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nabla/nabla.h>

namespace nabla::test {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-7;
  double rtol = 1e-5;
  uint64_t seed = 1234;
};

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// Returns true when every gradient matches; reports the first mismatches through doctest.
inline bool gradcheck(const Fn& f, std::vector<Tensor> inputs, GradcheckOptions opt = {}) {
  for (auto& x : inputs) {
    x = x.detach().to(DType::Float64).contiguous().clone();
    x.set_requires_grad(true);
  }
  Tensor out = f(inputs);
  REQUIRE(out.dtype() == DType::Float64);
  Generator gen(opt.seed);
  Tensor R = randn(out.shape(), DType::Float64, Device::cpu(), &gen);
  Tensor L = sum(mul(out, R));
  std::vector<Tensor> analytic = grad({L}, inputs);
  bool ok = true;
  for (size_t k = 0; k < inputs.size(); ++k) {
    REQUIRE(analytic[k].shape() == inputs[k].shape());
    std::vector<double> a = analytic[k].to_vector<double>();
    double* px = inputs[k].data<double>();
    int mismatches = 0;
    std::ostringstream report;
    for (int64_t i = 0; i < inputs[k].numel(); ++i) {
      double saved = px[i];
      double lp, lm;
      {
        NoGradGuard ng;
        px[i] = saved + opt.eps;
        lp = sum(mul(f(inputs), R)).item<double>();
        px[i] = saved - opt.eps;
        lm = sum(mul(f(inputs), R)).item<double>();
      }
      px[i] = saved;
      double numeric = (lp - lm) / (2 * opt.eps);
      double diff = std::abs(numeric - a[size_t(i)]);
      if (!(diff <= opt.atol + opt.rtol * std::abs(numeric))) {
        if (mismatches < 5)
          report << "  input " << k << " " << inputs[k].str() << " element " << i << ": autograd "
                 << a[size_t(i)] << " vs numeric " << numeric << "\n";
        ++mismatches;
      }
    }
    if (mismatches) {
      ok = false;
      FAIL_CHECK("gradcheck: " << mismatches << " mismatches for input " << k << "\n"
                               << report.str());
    }
  }
  return ok;
}

// Checks every element of t against `expected` within atol + rtol * |expected|; prints the
// first mismatches.
inline void check_close(const Tensor& t, const std::vector<double>& expected, double atol = 1e-5,
                        double rtol = 1e-5) {
  std::vector<double> v = t.to_vector<double>();
  REQUIRE_MESSAGE(v.size() == expected.size(), "size " << v.size() << " vs " << expected.size());
  int bad = 0;
  std::ostringstream os;
  for (size_t i = 0; i < v.size(); ++i) {
    bool same_nan = std::isnan(v[i]) && std::isnan(expected[i]);
    if (!same_nan && !(std::abs(v[i] - expected[i]) <= atol + rtol * std::abs(expected[i]))) {
      if (bad < 5) os << "  [" << i << "] got " << v[i] << ", expected " << expected[i] << "\n";
      ++bad;
    }
  }
  CHECK_MESSAGE(bad == 0, bad << " mismatches in " << t.str() << "\n" << os.str());
}

inline void check_close(const Tensor& a, const Tensor& b, double atol = 1e-5, double rtol = 1e-5) {
  REQUIRE_MESSAGE(a.shape() == b.shape(), a.str() << " vs " << b.str());
  check_close(a, b.to_vector<double>(), atol, rtol);
}

// Runs f and checks that it throws nabla::Error whose message contains every fragment.
template <typename F>
void check_error(F&& f, const std::vector<std::string>& fragments) {
  try {
    f();
    FAIL_CHECK("expected nabla::Error containing '" << (fragments.empty() ? "" : fragments[0])
                                                    << "', nothing was thrown");
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const auto& fr : fragments)
      CHECK_MESSAGE(msg.find(fr) != std::string::npos,
                    "message '" << msg << "' lacks '" << fr << "'");
  }
}

// The tests' one value generator: uniform values in [lo, hi) from a seed, drawn by the
// engine's Philox generator (the same values on every platform and thread count), as a
// tensor of dtype dt (drawn in float64, then converted) or as a vector of T.
inline Tensor uniform(const Shape& s, double lo = -1, double hi = 1, uint64_t seed = 7,
                      DType dt = DType::Float64) {
  Generator g(seed);
  return rand(s, DType::Float64, Device::cpu(), &g, lo, hi).to(dt);
}
template <typename T = double>
std::vector<T> uniform_values(int64_t n, uint64_t seed, double lo = -1, double hi = 1) {
  const std::vector<double> v = uniform({n}, lo, hi, seed).to_vector<double>();
  return std::vector<T>(v.begin(), v.end());
}

// A fresh folder under the system temp dir, unique to this process and object, removed with
// everything in it at scope exit: tmp / "file.png" is a path inside it.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("nabla_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  // The names of the entries directly inside the folder.
  std::set<std::string> names() const {
    std::set<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path))
      out.insert(e.path().filename().string());
    return out;
  }
};

// The whole content of a file ("" when it cannot be read).
inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace nabla::test
