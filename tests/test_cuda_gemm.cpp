// The CUDA GEMM (kernels/cuda/gemm.cu) and the ops that run on it:
//   1. kernel level: cuda::gemm / cuda::gemm_batched against cpu::gemm on ragged sizes, every
//      transpose pair, padded leading dimensions (odd ones, and ones rounded up to 4 so that
//      float4 loads run up to a ragged edge), misaligned pointers (the scalar load path),
//      alpha/beta pairs, beta == 0 over NaN, beta == 1 over a nonzero C, the FashionCNN linear
//      shapes, the split-K and 128x128-tile paths and the grid limits; elements of C outside
//      [M, N] must come back untouched;
//   2. our SGEMM against cuBLAS (cublasSgemm, CUBLAS_PEDANTIC_MATH: no TF32) on the same list;
//   3. op level: check_parity for matmul (2-D, folded, batched, broadcast, 1-D) and linear
//      (with and without bias).
// Without a GPU every case prints "skipped" and passes.
//
// Tolerance of a GEMM element: any summation order of K products has an error below
// K * eps * sum_k |a_ik b_kj| (the usual a-priori bound); random signs make it about
// sqrt(K) * eps times that sum, so (4 sqrt(K) + 8) * eps * (|alpha| sum_k |a b| + |beta c|)
// is safe for both sides and still catches a missing or doubled k step.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nabla/nabla.h>

#include "cuda_parity.h"
#include "gradcheck.h"
#include "kernels/gemm.h"

#ifdef NABLA_HAVE_CUBLAS
#include <cublas_v2.h>
#endif

using namespace nabla;
using namespace nabla::test;

namespace {

#ifdef NABLA_HAVE_CUDA

struct GemmCase {
  bool ta, tb;
  int64_t M, N, K;
  double alpha, beta;
  int64_t pad;     // extra columns on every leading dimension; -1: rounded up to a multiple
                   // of 4, so a ragged matrix still takes the float4 loads
  bool nan_c;      // C starts as NaN (beta == 0 must not read it)
  int64_t offset;  // A, B and C start this many elements into their buffers
};

std::string describe(const GemmCase& c) {
  std::ostringstream os;
  os << (c.ta ? "A^T" : "A") << (c.tb ? " B^T" : " B") << " M=" << c.M << " N=" << c.N
     << " K=" << c.K << " alpha=" << c.alpha << " beta=" << c.beta << " pad=" << c.pad
     << " offset=" << c.offset << (c.nan_c ? " C=NaN" : "");
  return os.str();
}

struct Mnk {
  int64_t M, N, K;
};

// Sizes around the tiles (64 and 128 for float, 16 for double, BK 16), vectors, the FashionCNN
// linear GEMMs (fc1 64x128x3136 forward, 128x3136x64 weight gradient, 64x3136x128 input gradient;
// fc2 64x10x128 and its gradients), split-K problems (small C, long K) and one that fills 128x128
// tiles with ragged edges.
const Mnk kShapes[] = {{1, 1, 1},       {33, 65, 17},     {127, 1, 300},    {1, 127, 300},
                       {5, 7, 1},       {64, 64, 16},     {129, 257, 65},   {256, 256, 256},
                       {64, 128, 3136}, {128, 3136, 64},  {64, 3136, 128},  {64, 10, 128},
                       {10, 128, 64},   {64, 128, 10},    {300, 200, 1000}, {17, 31, 2000},
                       {1, 1, 5000},    {1553, 1500, 40}, {0, 5, 3},        {5, 0, 3},
                       {6, 5, 0}};

std::vector<GemmCase> kernel_cases() {
  std::vector<GemmCase> v;
  for (const Mnk& s : kShapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        // Written over NaN, float4 path where the shape allows it.
        v.push_back({bool(ta), bool(tb), s.M, s.N, s.K, 1.0, 0.0, 0, true, 0});
        // Accumulated onto a nonzero C, lda > K, pointers off by one element (scalar path).
        v.push_back({bool(ta), bool(tb), s.M, s.N, s.K, 0.5, 1.0, 3, false, 1});
        // Leading dimensions rounded up to a multiple of 4: float4 loads up to the ragged edge.
        v.push_back({bool(ta), bool(tb), s.M, s.N, s.K, 1.0, 0.0, -1, true, 0});
      }
  v.push_back({false, false, 33, 65, 17, 1.0, 1.0, 0, false, 0});     // beta 1, aligned
  v.push_back({false, true, 64, 128, 3136, 1.0, 1.0, 0, false, 0});   // split-K + beta 1
  v.push_back({true, false, 40, 36, 52, -1.5, 0.25, 4, false, 0});    // padded, still float4
  v.push_back({false, false, 33, 65, 17, 0.0, 0.0, 2, true, 0});      // alpha 0: C = 0
  v.push_back({false, false, 33, 65, 17, 0.0, 2.0, 2, false, 0});     // alpha 0: C = 2 C
  v.push_back({true, true, 33, 65, 17, 0.0, 1.0, 0, false, 0});       // alpha 0, beta 1: no-op
  v.push_back({false, false, 2048, 2048, 32, 1.0, 0.0, 0, true, 0});  // 128x128 tiles, aligned
  return v;
}

template <typename T>
struct Problem {
  std::vector<T> A, B, C;  // whole buffers, the matrices start at `offset`
  int64_t lda, ldb, ldc;
};

// Buffers with the matrices at c.offset, a few spare elements after them, C's padding and spares
// holding a sentinel so that a stray write shows up.
template <typename T>
Problem<T> make_problem(const GemmCase& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  Problem<T> p;
  const int64_t rows_a = c.ta ? c.K : c.M, cols_a = c.ta ? c.M : c.K;
  const int64_t rows_b = c.tb ? c.N : c.K, cols_b = c.tb ? c.K : c.N;
  auto ld = [&](int64_t cols) { return c.pad >= 0 ? cols + c.pad : (cols + 3) / 4 * 4; };
  p.lda = ld(cols_a);
  p.ldb = ld(cols_b);
  p.ldc = ld(c.N);
  p.A.resize(size_t(c.offset + rows_a * p.lda + 4));
  p.B.resize(size_t(c.offset + rows_b * p.ldb + 4));
  p.C.assign(size_t(c.offset + c.M * p.ldc + 4), T(12345));
  for (auto& x : p.A) x = T(dist(rng));
  for (auto& x : p.B) x = T(dist(rng));
  for (int64_t m = 0; m < c.M; ++m)
    for (int64_t n = 0; n < c.N; ++n)
      p.C[size_t(c.offset + m * p.ldc + n)] =
          c.nan_c ? std::numeric_limits<T>::quiet_NaN() : T(dist(rng));
  return p;
}

// |alpha| sum_k |a_mk b_kn| + |beta c_mn| for every element of C (row-major [M, N]), the scale of
// the rounding error of any summation order.
template <typename T>
std::vector<double> error_scale(const GemmCase& c, const Problem<T>& p) {
  std::vector<double> a(p.A.size()), b(p.B.size());
  std::transform(p.A.begin(), p.A.end(), a.begin(), [](T x) { return std::fabs(double(x)); });
  std::transform(p.B.begin(), p.B.end(), b.begin(), [](T x) { return std::fabs(double(x)); });
  std::vector<double> s(size_t(std::max<int64_t>(1, c.M * c.N)), 0.0);
  if (c.M > 0 && c.N > 0)
    cpu::gemm<double>(c.ta, c.tb, c.M, c.N, c.K, std::fabs(c.alpha), a.data() + c.offset, p.lda,
                      b.data() + c.offset, p.ldb, 0.0, s.data(), c.N);
  if (c.beta != 0)
    for (int64_t m = 0; m < c.M; ++m)
      for (int64_t n = 0; n < c.N; ++n)
        s[size_t(m * c.N + n)] += std::fabs(c.beta * double(p.C[size_t(c.offset + m * p.ldc + n)]));
  return s;
}

// Compares a whole C buffer: elements of the [M, N] window within the tolerance of the file
// comment, every other element bit-identical to `before` (NaN matching NaN). Reports the first
// mismatches; returns their count.
template <typename T>
int64_t compare_c(const std::string& what, const GemmCase& c, const Problem<T>& p,
                  const std::vector<T>& got, const std::vector<T>& want,
                  const std::vector<double>& scale) {
  const double eps = std::numeric_limits<T>::epsilon() / 2;
  const double factor = (4 * std::sqrt(double(c.K)) + 8) * eps;
  int64_t bad = 0;
  std::ostringstream os;
  for (size_t i = 0; i < got.size(); ++i) {
    const int64_t rel = int64_t(i) - c.offset;
    // With N = 0 the leading dimension may be 0 (the pad-0 and rounded variants): C then has
    // no element, and the whole buffer must come back unchanged.
    const bool in_c = rel >= 0 && p.ldc > 0;
    const int64_t m = in_c ? rel / p.ldc : -1, n = in_c ? rel % p.ldc : -1;
    const bool inside = in_c && m < c.M && n < c.N;
    const double g = double(got[i]), w = double(want[i]);
    bool ok;
    if (inside) {
      const double tol = factor * scale[size_t(m * c.N + n)] + 1e-30;
      ok = std::fabs(g - w) <= tol;  // false for NaN
    } else {
      const double b = double(p.C[i]);
      ok = (std::isnan(g) && std::isnan(b)) || g == b;
    }
    if (!ok && bad++ < 8) {
      os << "\n  ";
      if (inside)
        os << "C[" << m << ", " << n << "]";
      else
        os << "buffer[" << i << "] (outside C)";
      os << " got " << g << ", expected " << w;
    }
  }
  if (bad)
    FAIL_CHECK(what << " (" << describe(c) << "): " << bad << " of " << got.size()
                    << " elements differ" << os.str());
  return bad;
}

template <typename T>
Tensor to_device(const std::vector<T>& v) {
  return from_vector<T>(v, {int64_t(v.size())}, Device::cuda(0));
}

template <typename T>
std::vector<T> to_host(const Tensor& t) {
  return t.to(Device::cpu()).to_vector<T>();
}

// C on the device after cuda::gemm, as a host buffer.
template <typename T>
std::vector<T> run_ours(const GemmCase& c, const Problem<T>& p) {
  Tensor a = to_device(p.A), b = to_device(p.B), cc = to_device(p.C);
  cuda::gemm<T>(c.ta, c.tb, c.M, c.N, c.K, T(c.alpha), a.data<T>() + c.offset, p.lda,
                b.data<T>() + c.offset, p.ldb, T(c.beta), cc.data<T>() + c.offset, p.ldc);
  return to_host<T>(cc);
}

template <typename T>
void check_against_cpu(const GemmCase& c, uint32_t seed) {
  const Problem<T> p = make_problem<T>(c, seed);
  std::vector<T> want = p.C;
  cpu::gemm<T>(c.ta, c.tb, c.M, c.N, c.K, T(c.alpha), p.A.data() + c.offset, p.lda,
               p.B.data() + c.offset, p.ldb, T(c.beta), want.data() + c.offset, p.ldc);
  compare_c<T>(sizeof(T) == 4 ? "float cuda::gemm vs cpu::gemm" : "double cuda::gemm vs cpu::gemm",
               c, p, run_ours(c, p), want, error_scale(c, p));
}

#ifdef NABLA_HAVE_CUBLAS
#define CUBLAS_OK(expr) REQUIRE_MESSAGE((expr) == CUBLAS_STATUS_SUCCESS, #expr " failed")

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, and a row-major matrix with
// leading dimension ld is its transpose in column-major with the same ld: so cuBLAS gets B first
// with B's transpose flag, then A with A's, and m = N, n = M.
std::vector<float> run_cublas(cublasHandle_t h, const GemmCase& c, const Problem<float>& p) {
  Tensor a = to_device(p.A), b = to_device(p.B), cc = to_device(p.C);
  const float alpha = float(c.alpha), beta = float(c.beta);
  CUBLAS_OK(cublasSgemm(h, c.tb ? CUBLAS_OP_T : CUBLAS_OP_N, c.ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                        int(c.N), int(c.M), int(c.K), &alpha, b.data<float>() + c.offset,
                        int(p.ldb), a.data<float>() + c.offset, int(p.lda), &beta,
                        cc.data<float>() + c.offset, int(p.ldc)));
  return to_host<float>(cc);
}
#endif  // NABLA_HAVE_CUBLAS

#endif

}  // namespace

TEST_CASE("cuda gemm float vs the CPU: every transpose, ragged sizes, alpha/beta, NaN C") {
  if (!gpu_or_skip()) return;
#ifdef NABLA_HAVE_CUDA
  uint32_t seed = 1;
  for (const GemmCase& c : kernel_cases()) check_against_cpu<float>(c, seed++);
#endif
}

TEST_CASE("cuda gemm double vs the CPU: every transpose, ragged sizes, alpha/beta, NaN C") {
  if (!gpu_or_skip()) return;
#ifdef NABLA_HAVE_CUDA
  uint32_t seed = 1000;
  for (const GemmCase& c : kernel_cases()) check_against_cpu<double>(c, seed++);
#endif
}

TEST_CASE("cuda gemm: grid limits (more than 65535 tile rows or batch entries)") {
  if (!gpu_or_skip()) return;
#ifdef NABLA_HAVE_CUDA
  // More than 65535 tile rows (float: 64-row tiles, as N is thin; double: 16-row tiles):
  // gridDim.y is capped and the kernel loops.
  check_against_cpu<float>({false, false, 65535 * 128 + 5, 3, 2, 1.0, 0.0, 0, true, 0}, 7);
  check_against_cpu<float>({true, true, 65535 * 128 + 5, 3, 2, 1.0, 1.0, 0, false, 0}, 8);
  check_against_cpu<double>({false, true, 65535 * 16 + 3, 2, 3, 1.0, 0.0, 0, true, 0}, 9);
  // 70000 batch entries: gridDim.z is capped, the kernel loops.
  const int64_t batch = 70000, M = 2, N = 3, K = 5;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> A(size_t(batch * M * K)), B(size_t(batch * K * N));
  std::vector<float> C(size_t(batch * M * N), std::numeric_limits<float>::quiet_NaN());
  for (auto& x : A) x = dist(rng);
  for (auto& x : B) x = dist(rng);
  std::vector<float> want = C;
  cpu::gemm_batched<float>(false, false, batch, M, N, K, 1.f, A.data(), K, M * K, B.data(), N,
                           K * N, 0.f, want.data(), N, M * N);
  Tensor a = to_device(A), b = to_device(B), c = to_device(C);
  cuda::gemm_batched<float>(false, false, batch, M, N, K, 1.f, a.data<float>(), K, M * K,
                            b.data<float>(), N, K * N, 0.f, c.data<float>(), N, M * N);
  const std::vector<float> got = to_host<float>(c);
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= 1e-5f) && bad++ < 5)
      MESSAGE("batch element " << i << ": got " << got[i] << ", expected " << want[i]);
  CHECK(bad == 0);
#endif
}

TEST_CASE("cuda gemm_batched: strides, broadcast operands, one shared C, against the CPU") {
  if (!gpu_or_skip()) return;
#ifdef NABLA_HAVE_CUDA
  struct BatchCase {
    bool ta, tb;
    int64_t batch, M, N, K;
    bool bcast_a, bcast_b, shared_c;
    double beta;
  };
  const BatchCase cases[] = {
      {false, false, 3, 33, 17, 9, false, false, false, 0.0},
      {false, true, 4, 20, 31, 65, true, false, false, 0.0},      // A broadcast (stride 0)
      {true, false, 5, 16, 16, 16, false, true, false, 1.0},      // B broadcast, accumulate
      {true, true, 200, 129, 130, 17, false, false, false, 0.0},  // 128x128 tiles, batched
      {false, false, 6, 7, 5, 300, false, false, true, 1.0},      // every product into one C
      {false, false, 3, 64, 128, 3136, false, true, false, 0.0},
  };
  uint32_t seed = 50;
  for (const BatchCase& bc : cases) {
    INFO("batch " << bc.batch << (bc.ta ? " A^T" : " A") << (bc.tb ? " B^T" : " B") << " M=" << bc.M
                  << " N=" << bc.N << " K=" << bc.K << (bc.bcast_a ? " A broadcast" : "")
                  << (bc.bcast_b ? " B broadcast" : "") << (bc.shared_c ? " one C" : ""));
    for (int dt = 0; dt < 2; ++dt) {
      auto run = [&](auto zero) {
        using T = decltype(zero);
        std::mt19937 rng(seed++);
        std::uniform_real_distribution<double> dist(-1.0, 1.0);
        const int64_t lda = bc.ta ? bc.M : bc.K, ldb = bc.tb ? bc.K : bc.N, ldc = bc.N;
        const int64_t sa = bc.bcast_a ? 0 : bc.M * bc.K, sb = bc.bcast_b ? 0 : bc.K * bc.N;
        const int64_t sc = bc.shared_c ? 0 : bc.M * bc.N;
        std::vector<T> A(size_t(std::max<int64_t>(sa * bc.batch, bc.M * bc.K)));
        std::vector<T> B(size_t(std::max<int64_t>(sb * bc.batch, bc.K * bc.N)));
        std::vector<T> C(size_t(std::max<int64_t>(sc * bc.batch, bc.M * bc.N)));
        for (auto& x : A) x = T(dist(rng));
        for (auto& x : B) x = T(dist(rng));
        for (auto& x : C) x = bc.beta == 0 ? std::numeric_limits<T>::quiet_NaN() : T(dist(rng));
        std::vector<T> want = C;
        cpu::gemm_batched<T>(bc.ta, bc.tb, bc.batch, bc.M, bc.N, bc.K, T(1), A.data(), lda, sa,
                             B.data(), ldb, sb, T(bc.beta), want.data(), ldc, sc);
        Tensor a = to_device(A), b = to_device(B), c = to_device(C);
        cuda::gemm_batched<T>(bc.ta, bc.tb, bc.batch, bc.M, bc.N, bc.K, T(1), a.data<T>(), lda, sa,
                              b.data<T>(), ldb, sb, T(bc.beta), c.data<T>(), ldc, sc);
        const std::vector<T> got = to_host<T>(c);
        // K products per element, times the batch when they all land in one C.
        const double terms = double(bc.K) * (bc.shared_c ? double(bc.batch) : 1.0) + 1;
        const double tol = (4 * std::sqrt(terms) + 8) * std::numeric_limits<T>::epsilon() * terms;
        int64_t bad = 0;
        for (size_t i = 0; i < got.size(); ++i)
          if (!(std::fabs(double(got[i]) - double(want[i])) <= tol) && bad++ < 5)
            MESSAGE((sizeof(T) == 4 ? "float" : "double")
                    << " element " << i << ": got " << got[i] << ", expected " << want[i]);
        CHECK(bad == 0);
      };
      if (dt == 0)
        run(float{});
      else
        run(double{});
    }
  }
#endif
}

TEST_CASE("cuda gemm: the same call twice gives the same bits (split-K has no atomics)") {
  if (!gpu_or_skip()) return;
#ifdef NABLA_HAVE_CUDA
  for (const Mnk& s : {Mnk{64, 128, 3136}, Mnk{17, 31, 2000}, Mnk{300, 200, 1000}}) {
    const GemmCase c{false, true, s.M, s.N, s.K, 1.0, 0.0, 0, true, 0};
    const Problem<float> p = make_problem<float>(c, 11);
    const std::vector<float> first = run_ours(c, p), second = run_ours(c, p);
    CHECK_MESSAGE(first == second, describe(c) << ": two runs differ");
  }
#endif
}

TEST_CASE("cuda sgemm against cuBLAS (TF32 off) on the same problem list") {
  if (!gpu_or_skip()) return;
#ifdef NABLA_HAVE_CUBLAS
  cublasHandle_t h = nullptr;
  CUBLAS_OK(cublasCreate(&h));
  // Pedantic math: plain FP32 with no TF32 tensor-core shortcut, the arithmetic ours does.
  CUBLAS_OK(cublasSetMathMode(h, CUBLAS_PEDANTIC_MATH));
  uint32_t seed = 500;
  for (const GemmCase& c : kernel_cases()) {
    if (c.M == 0 || c.N == 0 || c.K == 0) continue;  // cuBLAS wants ld >= 1 for empty operands
    const Problem<float> p = make_problem<float>(c, seed++);
    compare_c<float>("float cuda::gemm vs cublasSgemm", c, p, run_ours(c, p), run_cublas(h, c, p),
                     error_scale(c, p));
  }
  CUBLAS_OK(cublasDestroy(h));
#elif defined(NABLA_CUDA_EMU)
  MESSAGE("skipped: cuBLAS runs only on a real GPU (this build's device is the CUDA emulator)");
#endif
}

TEST_CASE("cuda matmul parity: 2-D, folded batch, batched, broadcast and 1-D operands") {
  if (!gpu_or_skip()) return;
  struct MatmulCase {
    Shape a, b;
  };
  const MatmulCase cases[] = {
      {{33, 17}, {17, 65}},
      {{4, 5, 6}, {6, 3}},
      {{3, 33, 17}, {3, 17, 9}},
      {{2, 1, 5, 7}, {3, 7, 4}},
      {{5, 7}, {2, 7, 4}},
      {{7}, {7, 3}},
      {{3, 7}, {7}},
      {{7}, {7}},
      {{64, 3136}, {3136, 128}},
      {{2, 3, 129, 65}, {65, 130}},
  };
  uint64_t seed = 1;
  auto f = [](const std::vector<Tensor>& v) { return std::vector<Tensor>{matmul(v[0], v[1])}; };
  for (const MatmulCase& mc : cases) {
    const std::string name = "matmul " + shape_str(mc.a) + " x " + shape_str(mc.b);
    Tensor a = uniform(mc.a, -1, 1, seed++), b = uniform(mc.b, -1, 1, seed++);
    ParityOptions f32;
    f32.atol = 1e-4;  // K up to 3136 float products on each side
    f32.rtol = 1e-4;
    check_parity(name + " float32", f, {a.to(DType::Float32), b.to(DType::Float32)}, f32);
    ParityOptions f64;
    f64.atol = 1e-11;
    f64.rtol = 1e-11;
    check_parity(name + " float64", f, {a, b}, f64);
  }
}

TEST_CASE("cuda linear parity: with and without bias, 1-D to 3-D input, FashionCNN fc1, fc2") {
  if (!gpu_or_skip()) return;
  struct LinearCase {
    Shape x;
    int64_t out;
    bool bias;
  };
  const LinearCase cases[] = {
      {{64, 3136}, 128, true}, {{64, 128}, 10, true}, {{2, 5, 7}, 3, false},
      {{7}, 3, true},          {{33, 65}, 17, false},
  };
  uint64_t seed = 100;
  for (const LinearCase& lc : cases) {
    const int64_t in = lc.x.back();
    std::vector<Tensor> inputs = {uniform(lc.x, -1, 1, seed++),
                                  uniform({lc.out, in}, -1, 1, seed++)};
    if (lc.bias) inputs.push_back(uniform({lc.out}, -1, 1, seed++));
    auto f = [](const std::vector<Tensor>& v) {
      return std::vector<Tensor>{linear(v[0], v[1], v.size() > 2 ? v[2] : Tensor())};
    };
    const std::string name = "linear x " + shape_str(lc.x) + " out " + std::to_string(lc.out) +
                             (lc.bias ? " with bias" : " without bias");
    std::vector<Tensor> f32_inputs;
    for (const Tensor& t : inputs) f32_inputs.push_back(t.to(DType::Float32));
    ParityOptions f32;
    f32.atol = 1e-4;
    f32.rtol = 1e-4;
    check_parity(name + " float32", f, f32_inputs, f32);
    ParityOptions f64;
    f64.atol = 1e-11;
    f64.rtol = 1e-11;
    check_parity(name + " float64", f, inputs, f64);
  }
}
