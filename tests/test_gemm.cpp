// Tests for the CPU GEMM (kernels/cpu/gemm.cpp) against a naive triple loop:
// every transpose combination, ragged sizes that are not multiples of the
// micro-tile or cache blocks, padded leading dimensions, alpha/beta handling
// (beta == 0 must overwrite NaN), empty dimensions, and the batched entry point
// with a broadcast operand.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gradcheck.h"
#include "kernels/gemm.h"

namespace {

using nabla::cpu::gemm;
using nabla::cpu::gemm_batched;

// The executable spec: C = alpha * op(A) op(B) + beta * C, accumulated in long
// double so that the reference is more accurate than either kernel under test.
template <typename T>
void gemm_naive(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      long double acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += static_cast<long double>(ta ? A[k * lda + i] : A[i * lda + k]) *
               static_cast<long double>(tb ? B[j * ldb + k] : B[k * ldb + j]);
      const long double old = beta == T(0) ? 0.0L : static_cast<long double>(C[i * ldc + j]);
      C[i * ldc + j] = static_cast<T>(alpha * acc + beta * old);
    }
}

// n values in [-1, 1) from the tests' generator; each call advances the seed.
template <typename T>
std::vector<T> random_vector(std::size_t n, uint64_t& seed) {
  return nabla::test::uniform_values<T>(static_cast<int64_t>(n), seed++);
}

template <typename T>
double tolerance() {
  return sizeof(T) == 4 ? 1e-5 : 1e-12;
}

// Relative error against the reference, scaled by the magnitude of the terms
// (sum |a||b|, which bounds the rounding error of any summation order), so a
// near-cancelling dot product is not held to an impossible standard.
template <typename T>
void check_close(const std::vector<T>& got, const std::vector<T>& want,
                 const std::vector<double>& scale, const std::string& what) {
  REQUIRE(got.size() == want.size());
  int reported = 0;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    const double err = std::fabs(g - w);
    const double tol = tolerance<T>() * std::max(1.0, std::max(std::fabs(w), scale[i]));
    if (!(err <= tol)) {  // also catches NaN
      ++bad;
      if (reported++ < 5)
        MESSAGE(what << ": element " << i << " got " << g << " want " << w << " err " << err);
    }
  }
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " mismatching elements");
}

// One full comparison of gemm against gemm_naive on a fresh random problem.
// pad_* add unused columns to each leading dimension; C's padding is checked to
// be left untouched.
template <typename T>
void run_case(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, T beta, int64_t pad_a,
              int64_t pad_b, int64_t pad_c, bool nan_c, unsigned seed = 1) {
  uint64_t rng = seed + static_cast<unsigned>(M * 131 + N * 17 + K);
  const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K;
  const int64_t b_rows = tb ? N : K, b_cols = tb ? K : N;
  const int64_t lda = a_cols + pad_a, ldb = b_cols + pad_b, ldc = N + pad_c;
  auto A = random_vector<T>(static_cast<std::size_t>(std::max<int64_t>(1, a_rows * lda)), rng);
  auto B = random_vector<T>(static_cast<std::size_t>(std::max<int64_t>(1, b_rows * ldb)), rng);
  auto C0 = random_vector<T>(static_cast<std::size_t>(std::max<int64_t>(1, M * ldc)), rng);
  if (nan_c)
    for (auto& x : C0) x = std::numeric_limits<T>::quiet_NaN();
  // Padding of C gets a sentinel so that a stray write shows up.
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = N; j < ldc; ++j) C0[i * ldc + j] = T(12345);

  auto got = C0, want = C0;
  gemm<T>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, got.data(), ldc);
  gemm_naive<T>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, want.data(), ldc);

  std::vector<double> scale(got.size(), 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = beta == T(0) ? 0.0 : std::fabs(double(beta) * double(C0[i * ldc + j]));
      for (int64_t k = 0; k < K; ++k)
        s += std::fabs(double(alpha)) * std::fabs(double(ta ? A[k * lda + i] : A[i * lda + k])) *
             std::fabs(double(tb ? B[j * ldb + k] : B[k * ldb + j]));
      scale[i * ldc + j] = s;
    }
  check_close(got, want, scale,
              std::string(sizeof(T) == 4 ? "float" : "double") + " ta=" + std::to_string(ta) +
                  " tb=" + std::to_string(tb) + " M=" + std::to_string(M) +
                  " N=" + std::to_string(N) + " K=" + std::to_string(K) + " alpha=" +
                  std::to_string(double(alpha)) + " beta=" + std::to_string(double(beta)));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = N; j < ldc; ++j) REQUIRE(got[i * ldc + j] == T(12345));
}

struct Size {
  int64_t M, N, K;
};

// Ragged sizes around the micro-tile (8 x 48 floats with AVX-512, 6 x 16 with
// AVX2) and the cache blocks (KC 512 floats / 256 doubles, NC 240), plus
// vectors (M or N = 1) and a thin CNN shape (fc2: 64 x 10 x 128).
const Size kSizes[] = {{1, 1, 1},     {2, 2, 2},      {7, 13, 5},    {33, 65, 17},  {100, 1, 300},
                       {1, 300, 100}, {9, 49, 3},     {17, 47, 129}, {64, 10, 128}, {8, 48, 1},
                       {49, 97, 600}, {130, 300, 70}, {5, 530, 257}};

template <typename T>
void all_transposes_all_sizes() {
  for (const Size& s : kSizes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        run_case<T>(ta, tb, s.M, s.N, s.K, T(1), T(0), 0, 0, 0, /*nan_c=*/true);
}

}  // namespace

TEST_CASE("gemm: hand-computed 2x2 times 2x2") {
  // [1 2; 3 4] * [5 6; 7 8] = [19 22; 43 50]
  const float A[] = {1, 2, 3, 4}, B[] = {5, 6, 7, 8};
  float C[4] = {NAN, NAN, NAN, NAN};
  gemm<float>(false, false, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2);
  CHECK(C[0] == 19.0f);
  CHECK(C[1] == 22.0f);
  CHECK(C[2] == 43.0f);
  CHECK(C[3] == 50.0f);

  // A^T B: [1 3; 2 4] * [5 6; 7 8] = [26 30; 38 44]
  gemm<float>(true, false, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2);
  CHECK(C[0] == 26.0f);
  CHECK(C[1] == 30.0f);
  CHECK(C[2] == 38.0f);
  CHECK(C[3] == 44.0f);

  // A B^T: [1 2; 3 4] * [5 7; 6 8] = [17 23; 39 53]
  double Ad[] = {1, 2, 3, 4}, Bd[] = {5, 6, 7, 8};
  double Cd[4] = {1, 1, 1, 1};
  // 0.5 * A B^T + 2 * C
  gemm<double>(false, true, 2, 2, 2, 0.5, Ad, 2, Bd, 2, 2.0, Cd, 2);
  CHECK(Cd[0] == 10.5);
  CHECK(Cd[1] == 13.5);
  CHECK(Cd[2] == 21.5);
  CHECK(Cd[3] == 28.5);

  // A^T B^T: [1 3; 2 4] * [5 7; 6 8] = [23 31; 34 46]
  gemm<double>(true, true, 2, 2, 2, 1.0, Ad, 2, Bd, 2, 0.0, Cd, 2);
  CHECK(Cd[0] == 23.0);
  CHECK(Cd[1] == 31.0);
  CHECK(Cd[2] == 34.0);
  CHECK(Cd[3] == 46.0);
}

TEST_CASE("gemm: all transposes and ragged sizes with beta = 0 over NaN (float)") {
  all_transposes_all_sizes<float>();
}

TEST_CASE("gemm: all transposes and ragged sizes with beta = 0 over NaN (double)") {
  all_transposes_all_sizes<double>();
}

TEST_CASE("gemm: padded leading dimensions") {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      run_case<float>(ta, tb, 33, 65, 17, 1.0f, 0.0f, 3, 5, 7, true);
      run_case<double>(ta, tb, 33, 65, 17, 1.0, 0.0, 3, 5, 7, true);
      run_case<float>(ta, tb, 19, 100, 530, 1.0f, 0.0f, 16, 1, 32, true);
      run_case<double>(ta, tb, 19, 100, 530, 1.0, 0.0, 16, 1, 32, true);
    }
}

TEST_CASE("gemm: alpha = 0.5 and beta = 1 accumulates") {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (const Size& s : {Size{7, 13, 5}, Size{33, 65, 17}, Size{70, 200, 600}}) {
        run_case<float>(ta, tb, s.M, s.N, s.K, 0.5f, 1.0f, 2, 3, 4, false);
        run_case<double>(ta, tb, s.M, s.N, s.K, 0.5, 1.0, 2, 3, 4, false);
        run_case<float>(ta, tb, s.M, s.N, s.K, -1.5f, 0.25f, 0, 0, 1, false);
        run_case<double>(ta, tb, s.M, s.N, s.K, -1.5, 0.25, 0, 0, 1, false);
      }
}

TEST_CASE("gemm: large enough to use several cache blocks and threads") {
  // K = 1100 spans several KC blocks (so later blocks accumulate onto the first),
  // N = 700 several NC blocks, M = 1030 two MC blocks; all are big enough to be
  // split across threads (by columns, or by rows when N is narrow).
  run_case<float>(false, false, 300, 700, 1100, 1.0f, 0.0f, 0, 0, 0, true);
  run_case<float>(true, true, 300, 700, 1100, 0.5f, 1.0f, 1, 1, 1, false);
  run_case<float>(false, true, 1030, 70, 60, 1.0f, 0.0f, 0, 0, 0, true);
  run_case<double>(true, false, 200, 530, 600, 1.0, 1.0, 0, 0, 0, false);
}

TEST_CASE("gemm: empty dimensions") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> A(64, 1.0f), B(64, 1.0f);

  SUBCASE("K = 0 scales C by beta") {
    std::vector<float> C(12, 2.0f);
    gemm<float>(false, false, 3, 4, 0, 1.0f, A.data(), 1, B.data(), 4, 0.5f, C.data(), 4);
    for (float x : C) CHECK(x == 1.0f);
  }
  SUBCASE("K = 0 with beta = 0 zeroes C, even if it held NaN") {
    std::vector<float> C(12, nan);
    gemm<float>(false, false, 3, 4, 0, 1.0f, A.data(), 1, B.data(), 4, 0.0f, C.data(), 4);
    for (float x : C) CHECK(x == 0.0f);
  }
  SUBCASE("M = 0 and N = 0 touch nothing") {
    std::vector<float> C(12, nan);
    gemm<float>(false, false, 0, 4, 5, 1.0f, A.data(), 5, B.data(), 4, 0.0f, C.data(), 4);
    gemm<float>(false, false, 3, 0, 5, 1.0f, A.data(), 5, B.data(), 1, 0.0f, C.data(), 1);
    for (float x : C) CHECK(std::isnan(x));
  }
  SUBCASE("alpha = 0 skips the product: NaN in A does not reach C") {
    std::vector<double> An(64, std::numeric_limits<double>::quiet_NaN()), Bd(64, 1.0);
    std::vector<double> C(12, 4.0);
    gemm<double>(false, false, 3, 4, 5, 0.0, An.data(), 5, Bd.data(), 4, 0.25, C.data(), 4);
    for (double x : C) CHECK(x == 1.0);
  }
  SUBCASE("batch = 0 is a no-op") {
    std::vector<float> C(12, nan);
    gemm_batched<float>(false, false, 0, 3, 4, 5, 1.0f, A.data(), 5, 15, B.data(), 4, 20, 0.0f,
                        C.data(), 4, 12);
    for (float x : C) CHECK(std::isnan(x));
  }
}

namespace {

// gemm_batched against per-entry naive products; stride_b == 0 shares one B
// (as a convolution's weights are shared across samples).
template <typename T>
void batched_case(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, bool share_a,
                  bool share_b, T beta) {
  uint64_t rng = 7;
  const int64_t lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2, ldc = N + 3;
  const int64_t sa = share_a ? 0 : (ta ? K : M) * lda;
  const int64_t sb = share_b ? 0 : (tb ? N : K) * ldb;
  const int64_t sc = M * ldc;
  auto A =
      random_vector<T>(static_cast<std::size_t>((share_a ? 1 : batch) * (ta ? K : M) * lda), rng);
  auto B =
      random_vector<T>(static_cast<std::size_t>((share_b ? 1 : batch) * (tb ? N : K) * ldb), rng);
  auto C0 = random_vector<T>(static_cast<std::size_t>(batch * sc), rng);
  if (beta == T(0))
    for (auto& x : C0) x = std::numeric_limits<T>::quiet_NaN();
  auto got = C0, want = C0;
  gemm_batched<T>(ta, tb, batch, M, N, K, T(1), A.data(), lda, sa, B.data(), ldb, sb, beta,
                  got.data(), ldc, sc);
  for (int64_t b = 0; b < batch; ++b)
    gemm_naive<T>(ta, tb, M, N, K, T(1), A.data() + b * sa, lda, B.data() + b * sb, ldb, beta,
                  want.data() + b * sc, ldc);
  // Padding columns of C are NaN / random in both and must stay equal; the scale
  // is the dot-product magnitude bound, here at most K (|a|, |b| <= 1) plus |C|.
  std::vector<double> scale(got.size(), static_cast<double>(K) + 1.0);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = N; j < ldc; ++j) {
        const std::size_t at = static_cast<std::size_t>(b * sc + i * ldc + j);
        CHECK((std::isnan(got[at]) ? std::isnan(C0[at]) : got[at] == C0[at]));
        got[at] = want[at] = T(0);
      }
  check_close(got, want, scale, "batched");
}

}  // namespace

TEST_CASE("gemm_batched: independent entries and stride-0 broadcasting") {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      batched_case<float>(ta, tb, 5, 7, 13, 9, false, false, 0.0f);
      batched_case<float>(ta, tb, 4, 32, 50, 9, true, false, 0.0f);   // shared A (conv weights)
      batched_case<double>(ta, tb, 3, 17, 33, 20, false, true, 1.0);  // shared B
      batched_case<double>(ta, tb, 16, 8, 16, 8, false, true, 0.0);   // long batch, threads
      batched_case<float>(ta, tb, 9, 20, 70, 40, true, true, 0.5f);   // both shared
      // Enough work for threads: an even batch is split across them, an odd short
      // one runs in order with each GEMM split.
      batched_case<float>(ta, tb, 4, 64, 196, 144, true, false, 0.0f);
      batched_case<double>(ta, tb, 3, 64, 196, 400, false, true, 1.0);
    }
}

TEST_CASE("gemm_batched: stride_c = 0 accumulates every entry into one C") {
  // With beta = 1 and a shared output, the batch sums its products into C: the
  // way a weight gradient is accumulated over samples.
  const int64_t batch = 6, M = 5, N = 7, K = 3;
  uint64_t rng = 3;
  auto A = random_vector<double>(batch * M * K, rng);
  auto B = random_vector<double>(batch * K * N, rng);
  std::vector<double> got(M * N, 0.5), want(M * N, 0.5);
  gemm_batched<double>(false, false, batch, M, N, K, 1.0, A.data(), K, M * K, B.data(), N, K * N,
                       1.0, got.data(), N, 0);
  for (int64_t b = 0; b < batch; ++b)
    gemm_naive<double>(false, false, M, N, K, 1.0, A.data() + b * M * K, K, B.data() + b * K * N, N,
                       1.0, want.data(), N);
  for (std::size_t i = 0; i < got.size(); ++i)
    CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-12));
}

TEST_CASE("gemm: result does not depend on the thread count") {
  // Every C element is summed in the same order whichever thread computes it, so
  // one thread and all threads agree bit for bit (the determinism promise).
  uint64_t rng = 11;
  const int64_t M = 150, N = 500, K = 700;
  auto A = random_vector<float>(M * K, rng), B = random_vector<float>(K * N, rng);
  std::vector<float> one(M * N), all(M * N);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  gemm<float>(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, one.data(), N);
  omp_set_num_threads(std::max(2, saved));
  gemm<float>(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, all.data(), N);
  omp_set_num_threads(saved);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < one.size(); ++i) differ += one[i] != all[i];
  CHECK(differ == 0);
}
