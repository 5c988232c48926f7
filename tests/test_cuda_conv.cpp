// CUDA conv2d (kernels/cuda/conv.cu) against the CPU kernels and against cuDNN, over the shared
// problem list (tests/reference/conv_problems.h), and CPU/CUDA parity of the conv ops.
//
//   1. kernel level: cuda:: against cpu:: on every problem, read both as a conv and as a
//      transposed conv (whose P, Q are set by its input), in float and double: forward with
//      and without bias, backward-input, backward-weight with and without the bias gradient,
//      in the default (atomic) and the deterministic mode. Outputs start as NaN (an element
//      never written shows up), weight and bias gradients at known non-zero values (= in place
//      of += shows up). Deterministic mode must give bit-identical results on two runs, on
//      shapes large enough that the reductions are split.
//   2. against cuDNN (float, NCHW, forward / backward-data / backward-filter / backward-bias),
//      when cuDNN was found. cuDNN runs with CUDNN_FMA_MATH: its CUDNN_DEFAULT_MATH lets it use
//      TF32 tensor cores on Ampere and later (10-bit mantissa), which is not a float32
//      reference.
//   3. op level: check_parity for conv2d and conv_transpose2d (with output_padding), outputs
//      and every input gradient.
// Every case starts with gpu_or_skip(): without a GPU it prints why and passes.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <nabla/nabla.h>

#include "cuda_parity.h"
#include "kernels/conv.h"
#include "reference/conv_problems.h"

#ifdef NABLA_HAVE_CUDNN
// cuDNN 9 marks the legacy convolution API deprecated; it is still the simplest reference.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <cudnn.h>
#endif

namespace {

using nabla::Conv2dParams;
using nabla::Device;
using nabla::Tensor;
using nabla::test::check_parity;
using nabla::test::gpu_or_skip;
using nabla::test::kConvProblems;

[[maybe_unused]] int64_t numel_x(const Conv2dParams& p) {
  return p.N * p.C * p.H * p.W;
}
[[maybe_unused]] int64_t numel_w(const Conv2dParams& p) {
  return p.K * (p.C / p.groups) * p.R * p.S;
}
[[maybe_unused]] int64_t numel_y(const Conv2dParams& p) {
  return p.N * p.K * p.P * p.Q;
}

template <typename T>
std::vector<T> random_values(int64_t n, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& e : v) e = static_cast<T>(dist(gen));
  return v;
}

// Known non-zero starting values for the accumulated gradients.
template <typename T>
std::vector<T> prefill(int64_t n) {
  std::vector<T> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = T(0.25) * static_cast<T>(1 + i % 7);
  return v;
}

template <typename T>
std::vector<T> nans(int64_t n) {
  return std::vector<T>(static_cast<size_t>(n), std::numeric_limits<T>::quiet_NaN());
}

// Elements with |got - want| > tol + tol*|want| (NaN counts); reports the first few.
template <typename T>
int64_t mismatches(const std::string& what, const std::vector<T>& got, const std::vector<T>& want,
                   double tol) {
  if (got.size() != want.size()) {
    MESSAGE(what << ": size " << got.size() << " != " << want.size());
    return int64_t(std::max(got.size(), want.size()));
  }
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = double(got[i]), w = double(want[i]);
    if (std::abs(g - w) <= tol + tol * std::abs(w)) continue;
    if (bad++ < 5) MESSAGE(what << "[" << i << "]: gpu " << g << ", cpu " << w);
  }
  if (bad) MESSAGE(what << ": " << bad << " of " << got.size() << " elements differ");
  return bad;
}

template <typename T>
bool bit_identical(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// Sets nabla::deterministic() for a scope.
class DeterministicGuard {
 public:
  explicit DeterministicGuard(bool on) : prev_(nabla::deterministic()) {
    nabla::set_deterministic(on);
  }
  ~DeterministicGuard() { nabla::set_deterministic(prev_); }

 private:
  bool prev_;
};

#ifdef NABLA_HAVE_CUDA

// A device copy of v, and v read back from a device tensor.
template <typename T>
Tensor on_gpu(const std::vector<T>& v) {
  return nabla::from_vector(v, {int64_t(v.size())}, Device::cuda(0));
}
template <typename T>
std::vector<T> on_host(const Tensor& t) {
  return t.to(Device::cpu()).to_vector<T>();
}

// Runs the three kernels on the CPU and on the GPU for one problem and compares. x, w, b and dy
// are random in [-1, 1); seeds make every problem use different values.
template <typename T>
void check_kernels(const Conv2dParams& p, uint64_t seed, double tol) {
  namespace cpu = nabla::cpu;
  namespace cuda = nabla::cuda;
  const auto x = random_values<T>(numel_x(p), seed), w = random_values<T>(numel_w(p), seed + 1),
             b = random_values<T>(p.K, seed + 2), dy = random_values<T>(numel_y(p), seed + 3);
  const Tensor xg = on_gpu(x), wg = on_gpu(w), bg = on_gpu(b), dyg = on_gpu(dy);

  // forward, with and without bias
  auto y = nans<T>(numel_y(p));
  cpu::conv2d_forward(p, x.data(), w.data(), b.data(), y.data());
  Tensor yg = on_gpu(nans<T>(numel_y(p)));
  cuda::conv2d_forward(p, xg.data<T>(), wg.data<T>(), bg.data<T>(), yg.data<T>());
  CHECK(mismatches("y", on_host<T>(yg), y, tol) == 0);

  cpu::conv2d_forward<T>(p, x.data(), w.data(), nullptr, y.data());
  yg = on_gpu(nans<T>(numel_y(p)));
  cuda::conv2d_forward<T>(p, xg.data<T>(), wg.data<T>(), nullptr, yg.data<T>());
  CHECK(mismatches("y (no bias)", on_host<T>(yg), y, tol) == 0);

  // backward-input
  auto dx = nans<T>(numel_x(p));
  cpu::conv2d_backward_input(p, dy.data(), w.data(), dx.data());
  Tensor dxg = on_gpu(nans<T>(numel_x(p)));
  cuda::conv2d_backward_input(p, dyg.data<T>(), wg.data<T>(), dxg.data<T>());
  CHECK(mismatches("dx", on_host<T>(dxg), dx, tol) == 0);

  // backward-weight: accumulates into prefilled dw and db
  auto dw = prefill<T>(numel_w(p)), db = prefill<T>(p.K);
  cpu::conv2d_backward_weight(p, x.data(), dy.data(), dw.data(), db.data());
  for (const bool det : {false, true}) {
    DeterministicGuard guard(det);
    const std::string mode = det ? " (deterministic)" : " (default)";
    Tensor dwg = on_gpu(prefill<T>(numel_w(p))), dbg = on_gpu(prefill<T>(p.K));
    cuda::conv2d_backward_weight(p, xg.data<T>(), dyg.data<T>(), dwg.data<T>(), dbg.data<T>());
    CHECK(mismatches("dw" + mode, on_host<T>(dwg), dw, tol) == 0);
    CHECK(mismatches("db" + mode, on_host<T>(dbg), db, tol) == 0);
    // Without db: dw is the same, and nothing else is touched.
    dwg = on_gpu(prefill<T>(numel_w(p)));
    cuda::conv2d_backward_weight<T>(p, xg.data<T>(), dyg.data<T>(), dwg.data<T>(), nullptr);
    CHECK(mismatches("dw (no db)" + mode, on_host<T>(dwg), dw, tol) == 0);
  }
}

// Every problem of the list as a conv, then as a transposed conv with output_padding 0 and,
// where stride or dilation allows it, 1.
template <typename T>
void check_problem_list(double tol, uint64_t seed) {
  for (const auto& pr : kConvProblems) {
    INFO("problem: ", pr.name);
    check_kernels<T>(pr.params(), seed += 10, tol);
    const int64_t op_h = std::max(pr.stride_h, pr.dil_h) > 1 ? 1 : 0;
    const int64_t op_w = std::max(pr.stride_w, pr.dil_w) > 1 ? 1 : 0;
    for (int v = 0; v < 2; ++v) {
      const int64_t oh = v ? op_h : 0, ow = v ? op_w : 0;
      if (v == 1 && oh == 0 && ow == 0) continue;  // the same as v = 0
      if (pr.transposed_ho(oh) < 1 || pr.transposed_wo(ow) < 1) continue;
      INFO("read as a transposed conv, output_padding (", oh, ", ", ow, ")");
      check_kernels<T>(pr.transposed_params(oh, ow), seed += 10, tol);
    }
  }
}

// A conv with "same" padding, as the nets use.
Conv2dParams net_layer(int64_t N, int64_t C, int64_t HW, int64_t K, int64_t RS, int64_t stride,
                       int64_t pad) {
  Conv2dParams p;
  p.N = N, p.C = C, p.H = p.W = HW, p.K = K, p.R = p.S = RS;
  p.stride_h = p.stride_w = stride, p.pad_h = p.pad_w = pad;
  p.finalize();
  return p;
}

#endif  // NABLA_HAVE_CUDA

}  // namespace

// ---------------------------------------------------------------- 1. kernel level

TEST_CASE("cuda conv2d kernels: every problem against the CPU kernels, float") {
  if (!gpu_or_skip()) return;
#ifdef NABLA_HAVE_CUDA
  check_problem_list<float>(1e-4, 1000);
#endif
}

TEST_CASE("cuda conv2d kernels: every problem against the CPU kernels, double") {
  if (!gpu_or_skip()) return;
#ifdef NABLA_HAVE_CUDA
  check_problem_list<double>(1e-10, 2000);
#endif
}

TEST_CASE("cuda conv2d kernels: net-sized layers, split reductions, deterministic bits") {
  if (!gpu_or_skip()) return;
#ifdef NABLA_HAVE_CUDA
  // FashionCNN at batch 64 (backward-weight reduces over 50176 and 12544 pixels: split), a deep
  // U-Net layer whose small output splits the forward and backward-input reductions, and a
  // DCGAN discriminator layer.
  const Conv2dParams layers[] = {
      net_layer(64, 1, 28, 32, 3, 1, 1), net_layer(64, 32, 14, 64, 3, 1, 1),
      net_layer(4, 256, 8, 256, 3, 1, 1), net_layer(8, 64, 16, 128, 4, 2, 1)};
  uint64_t seed = 3000;
  for (const Conv2dParams& p : layers) {
    INFO("layer: x [", p.N, ",", p.C, ",", p.H, ",", p.W, "], w [", p.K, ",", p.C, ",", p.R, ",",
         p.S, "], stride ", p.stride_h);
    check_kernels<float>(p, seed += 10, 1e-4);

    // Deterministic mode: two runs of every kernel give the same bits.
    DeterministicGuard guard(true);
    const auto x = random_values<float>(numel_x(p), seed), w = random_values<float>(numel_w(p), 1),
               b = random_values<float>(p.K, 2), dy = random_values<float>(numel_y(p), 3);
    const Tensor xg = on_gpu(x), wg = on_gpu(w), bg = on_gpu(b), dyg = on_gpu(dy);
    std::vector<float> y[2], dx[2], dw[2], db[2];
    for (int run = 0; run < 2; ++run) {
      Tensor yg = on_gpu(nans<float>(numel_y(p))), dxg = on_gpu(nans<float>(numel_x(p)));
      Tensor dwg = on_gpu(prefill<float>(numel_w(p))), dbg = on_gpu(prefill<float>(p.K));
      nabla::cuda::conv2d_forward(p, xg.data<float>(), wg.data<float>(), bg.data<float>(),
                                  yg.data<float>());
      nabla::cuda::conv2d_backward_input(p, dyg.data<float>(), wg.data<float>(), dxg.data<float>());
      nabla::cuda::conv2d_backward_weight(p, xg.data<float>(), dyg.data<float>(), dwg.data<float>(),
                                          dbg.data<float>());
      y[run] = on_host<float>(yg), dx[run] = on_host<float>(dxg);
      dw[run] = on_host<float>(dwg), db[run] = on_host<float>(dbg);
    }
    CHECK(bit_identical(y[0], y[1]));
    CHECK(bit_identical(dx[0], dx[1]));
    CHECK(bit_identical(dw[0], dw[1]));
    CHECK(bit_identical(db[0], db[1]));
  }
#endif
}

// ---------------------------------------------------------------- 2. against cuDNN

#ifdef NABLA_HAVE_CUDNN
namespace {

#define CUDNN_CHECK(expr)                                                                    \
  do {                                                                                       \
    const cudnnStatus_t st_ = (expr);                                                        \
    REQUIRE_MESSAGE(st_ == CUDNN_STATUS_SUCCESS, #expr << ": " << cudnnGetErrorString(st_)); \
  } while (0)

// cuDNN descriptors of one problem, float NCHW, FMA math only.
struct CudnnConv {
  cudnnHandle_t handle = nullptr;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

  explicit CudnnConv(const Conv2dParams& p) {
    CUDNN_CHECK(cudnnCreate(&handle));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&bias));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(p.N),
                                           int(p.C), int(p.H), int(p.W)));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(p.N),
                                           int(p.K), int(p.P), int(p.Q)));
    CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, int(p.K), 1, 1));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, int(p.K),
                                           int(p.C / p.groups), int(p.R), int(p.S)));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, int(p.pad_h), int(p.pad_w), int(p.stride_h),
                                                int(p.stride_w), int(p.dil_h), int(p.dil_w),
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, int(p.groups)));
    CUDNN_CHECK(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH));
    int n, c, h, wd;
    CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(conv, x, w, &n, &c, &h, &wd));
    REQUIRE(n == p.N);
    REQUIRE(c == p.K);
    REQUIRE(h == p.P);
    REQUIRE(wd == p.Q);
  }
  ~CudnnConv() {
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyTensorDescriptor(bias);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroy(handle);
  }
  CudnnConv(const CudnnConv&) = delete;
  CudnnConv& operator=(const CudnnConv&) = delete;
};

bool tensor_op(cudnnMathType_t m) {
  return m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// The first algorithm cuDNN's heuristics rank, among those that run without tensor cores.
template <typename Perf, typename Algo>
Algo pick(const Perf* perf, int count, Algo fallback) {
  for (int i = 0; i < count; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && !tensor_op(perf[i].mathType)) return perf[i].algo;
  return fallback;
}

// Device scratch of at least `bytes` (a float tensor from the caching allocator).
Tensor scratch(size_t bytes) {
  return nabla::empty({int64_t(bytes / sizeof(float)) + 1}, nabla::DType::Float32, Device::cuda(0));
}

void check_against_cudnn(const Conv2dParams& p, uint64_t seed) {
  constexpr double kTol = 1e-4;
  const auto x = random_values<float>(numel_x(p), seed),
             w = random_values<float>(numel_w(p), seed + 1),
             b = random_values<float>(p.K, seed + 2),
             dy = random_values<float>(numel_y(p), seed + 3);
  const Tensor xg = on_gpu(x), wg = on_gpu(w), bg = on_gpu(b), dyg = on_gpu(dy);
  CudnnConv d(p);
  const float one = 1.f, zero = 0.f;
  int count = 0;

  // forward (+ bias)
  cudnnConvolutionFwdAlgoPerf_t fwd[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(
      d.handle, d.x, d.w, d.conv, d.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, fwd));
  const auto fwd_algo = pick(fwd, count, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
  size_t bytes = 0;
  CUDNN_CHECK(
      cudnnGetConvolutionForwardWorkspaceSize(d.handle, d.x, d.w, d.conv, d.y, fwd_algo, &bytes));
  Tensor ws = scratch(bytes);
  Tensor y_ref = on_gpu(nans<float>(numel_y(p))), y = on_gpu(nans<float>(numel_y(p)));
  CUDNN_CHECK(cudnnConvolutionForward(d.handle, &one, d.x, xg.data<float>(), d.w, wg.data<float>(),
                                      d.conv, fwd_algo, ws.data<float>(), bytes, &zero, d.y,
                                      y_ref.data<float>()));
  CUDNN_CHECK(
      cudnnAddTensor(d.handle, &one, d.bias, bg.data<float>(), &one, d.y, y_ref.data<float>()));
  nabla::cuda::conv2d_forward(p, xg.data<float>(), wg.data<float>(), bg.data<float>(),
                              y.data<float>());
  CHECK(mismatches("y vs cuDNN", on_host<float>(y), on_host<float>(y_ref), kTol) == 0);

  // backward-data
  cudnnConvolutionBwdDataAlgoPerf_t bwd_data[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
      d.handle, d.w, d.y, d.conv, d.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, bwd_data));
  const auto data_algo = pick(bwd_data, count, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1);
  CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(d.handle, d.w, d.y, d.conv, d.x,
                                                           data_algo, &bytes));
  ws = scratch(bytes);
  Tensor dx_ref = on_gpu(nans<float>(numel_x(p))), dx = on_gpu(nans<float>(numel_x(p)));
  CUDNN_CHECK(cudnnConvolutionBackwardData(d.handle, &one, d.w, wg.data<float>(), d.y,
                                           dyg.data<float>(), d.conv, data_algo, ws.data<float>(),
                                           bytes, &zero, d.x, dx_ref.data<float>()));
  nabla::cuda::conv2d_backward_input(p, dyg.data<float>(), wg.data<float>(), dx.data<float>());
  CHECK(mismatches("dx vs cuDNN", on_host<float>(dx), on_host<float>(dx_ref), kTol) == 0);

  // backward-filter and backward-bias, both accumulating (beta = 1) into prefilled buffers
  cudnnConvolutionBwdFilterAlgoPerf_t bwd_filter[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(d.handle, d.x, d.y, d.conv, d.w,
                                                            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                            &count, bwd_filter));
  const auto filter_algo = pick(bwd_filter, count, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1);
  CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(d.handle, d.x, d.y, d.conv, d.w,
                                                             filter_algo, &bytes));
  ws = scratch(bytes);
  Tensor dw_ref = on_gpu(prefill<float>(numel_w(p))), db_ref = on_gpu(prefill<float>(p.K));
  CUDNN_CHECK(cudnnConvolutionBackwardFilter(
      d.handle, &one, d.x, xg.data<float>(), d.y, dyg.data<float>(), d.conv, filter_algo,
      ws.data<float>(), bytes, &one, d.w, dw_ref.data<float>()));
  CUDNN_CHECK(cudnnConvolutionBackwardBias(d.handle, &one, d.y, dyg.data<float>(), &one, d.bias,
                                           db_ref.data<float>()));
  Tensor dw = on_gpu(prefill<float>(numel_w(p))), db = on_gpu(prefill<float>(p.K));
  nabla::cuda::conv2d_backward_weight(p, xg.data<float>(), dyg.data<float>(), dw.data<float>(),
                                      db.data<float>());
  CHECK(mismatches("dw vs cuDNN", on_host<float>(dw), on_host<float>(dw_ref), kTol) == 0);
  CHECK(mismatches("db vs cuDNN", on_host<float>(db), on_host<float>(db_ref), kTol) == 0);
}

}  // namespace
#endif  // NABLA_HAVE_CUDNN

TEST_CASE("cuda conv2d kernels: every problem against cuDNN, float") {
  if (!gpu_or_skip()) return;
#ifdef NABLA_HAVE_CUDNN
  uint64_t seed = 4000;
  for (const auto& pr : kConvProblems) {
    INFO("problem: ", pr.name);
    check_against_cudnn(pr.params(), seed += 10);
  }
#elif defined(NABLA_CUDA_EMU)
  MESSAGE("skipped: cuDNN runs only on a real GPU (this build's device is the CUDA emulator)");
#else
  MESSAGE("skipped: built without cuDNN (no cudnn.h / libcudnn found)");
#endif
}

// ---------------------------------------------------------------- 3. op level

namespace {

nabla::test::ParityOptions conv_tolerance() {
  nabla::test::ParityOptions o;
  // Sums of up to a few hundred products of N(0,1) values: float rounding reaches ~1e-5
  // absolute, more than the default atol.
  o.atol = 1e-4;
  o.rtol = 1e-4;
  return o;
}

}  // namespace

TEST_CASE("cuda conv2d op: parity of output and gradients (x, w, b)") {
  if (!gpu_or_skip()) return;
  nabla::Generator gen(7);
  struct Case {
    const char* name;
    nabla::Shape x, w;
    nabla::Conv2dArgs a;
    bool bias;
  };
  nabla::Conv2dArgs s2p1, g2d2, depthwise, plain;
  s2p1.stride = {2, 2}, s2p1.padding = {1, 1};
  g2d2.groups = 2, g2d2.dilation = {2, 2}, g2d2.padding = {2, 1};
  depthwise.groups = 5, depthwise.padding = {1, 1};
  const Case cases[] = {
      {"3x3 stride 2 pad 1, bias", {2, 3, 9, 8}, {4, 3, 3, 3}, s2p1, true},
      {"groups 2 dilation 2, bias", {2, 4, 11, 10}, {6, 2, 3, 3}, g2d2, true},
      {"depthwise, no bias", {3, 5, 7, 6}, {5, 1, 3, 3}, depthwise, false},
      {"1x1, no bias", {2, 6, 5, 7}, {9, 6, 1, 1}, plain, false},
  };
  for (const Case& c : cases) {
    INFO("case: ", c.name);
    std::vector<Tensor> in = {nabla::randn(c.x, nabla::DType::Float32, Device::cpu(), &gen),
                              nabla::randn(c.w, nabla::DType::Float32, Device::cpu(), &gen)};
    if (c.bias) in.push_back(nabla::randn({c.w[0]}, nabla::DType::Float32, Device::cpu(), &gen));
    const nabla::Conv2dArgs a = c.a;
    check_parity(
        std::string("conv2d ") + c.name,
        [a](const std::vector<Tensor>& t) {
          return std::vector<Tensor>{nabla::conv2d(t[0], t[1], t.size() > 2 ? t[2] : Tensor(), a)};
        },
        in, conv_tolerance());
  }
}

TEST_CASE("cuda conv2d op: parity in float64") {
  if (!gpu_or_skip()) return;
  nabla::Generator gen(8);
  const auto f64 = nabla::DType::Float64;
  const std::vector<Tensor> in = {nabla::randn({2, 3, 7, 9}, f64, Device::cpu(), &gen),
                                  nabla::randn({5, 3, 3, 3}, f64, Device::cpu(), &gen),
                                  nabla::randn({5}, f64, Device::cpu(), &gen)};
  nabla::test::ParityOptions o;
  o.atol = o.rtol = 1e-10;
  check_parity(
      "conv2d float64",
      [](const std::vector<Tensor>& t) {
        return std::vector<Tensor>{nabla::conv2d(t[0], t[1], t[2], 1, 1)};
      },
      in, o);
}

TEST_CASE("cuda conv_transpose2d op: parity with output_padding") {
  if (!gpu_or_skip()) return;
  nabla::Generator gen(9);
  struct Case {
    const char* name;
    nabla::Shape x, w;  // w [C_in, C_out/groups, R, S]
    nabla::Conv2dArgs a;
    bool bias;
  };
  nabla::Conv2dArgs dcgan, s2op1, dil_op, grouped;
  dcgan.stride = {2, 2}, dcgan.padding = {1, 1};
  s2op1.stride = {2, 2}, s2op1.padding = {1, 1}, s2op1.output_padding = {1, 1};
  // output_padding >= stride is allowed when dilation is larger: P is set by the input.
  dil_op.dilation = {2, 2}, dil_op.output_padding = {1, 1};
  grouped.groups = 2, grouped.stride = {2, 1}, grouped.padding = {0, 1};
  grouped.output_padding = {1, 0};
  const Case cases[] = {
      {"4x4 s2 p1 (DCGAN generator), bias", {2, 6, 4, 4}, {6, 3, 4, 4}, dcgan, true},
      {"3x3 s2 p1 output_padding 1, bias", {2, 4, 5, 6}, {4, 3, 3, 3}, s2op1, true},
      {"dilation 2, output_padding 1 (>= stride)", {2, 3, 5, 5}, {3, 2, 3, 3}, dil_op, false},
      {"groups 2, stride (2,1), output_padding (1,0)", {2, 4, 5, 4}, {4, 3, 3, 3}, grouped, true},
  };
  for (const Case& c : cases) {
    INFO("case: ", c.name);
    std::vector<Tensor> in = {nabla::randn(c.x, nabla::DType::Float32, Device::cpu(), &gen),
                              nabla::randn(c.w, nabla::DType::Float32, Device::cpu(), &gen)};
    if (c.bias)
      in.push_back(nabla::randn({c.w[1] * c.a.groups}, nabla::DType::Float32, Device::cpu(), &gen));
    const nabla::Conv2dArgs a = c.a;
    check_parity(
        std::string("conv_transpose2d ") + c.name,
        [a](const std::vector<Tensor>& t) {
          return std::vector<Tensor>{
              nabla::conv_transpose2d(t[0], t[1], t.size() > 2 ? t[2] : Tensor(), a)};
        },
        in, conv_tolerance());
  }
}

#ifdef NABLA_HAVE_CUDNN
#pragma GCC diagnostic pop
#endif
