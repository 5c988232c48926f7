// GEMM family: C = alpha * op(A) * op(B) + beta * C, row-major.
//
//   op(A) is [M, K]: A itself ([M, K], lda >= K) or A^T (A is [K, M], lda >= M).
//   op(B) is [K, N]: B itself ([K, N], ldb >= N) or B^T (B is [N, K], ldb >= K).
//   C is [M, N] with ldc >= N.
//
// beta == 0 means C is written (=) and its old contents are never read, so C
// may hold NaN; beta == 1 accumulates (+=), which is how weight gradients use it.
// alpha == 0 (or K == 0) only scales C by beta: A and B are not read.
//
// Threads: a call splits C over omp_get_max_threads() threads once it has about
// 2 MFLOP per thread; smaller calls, and calls made inside an active parallel
// region, run on the calling thread. Each element of C is summed in the same order
// whatever the split, so results are bit-identical for any thread count.
#pragma once

#include <cstdint>

namespace nabla::cpu {

// requires: M, N, K >= 0; A, B, C valid for the shapes above; C does not alias A or B.
// ensures:  C = alpha * op(A) op(B) + beta * C. Runs on the OpenMP threads of the caller.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

// Batched: for b in [0, batch): gemm on A + b*stride_a, B + b*stride_b, C + b*stride_c.
// A stride of 0 broadcasts that operand across the batch.
template <typename T>
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                  T alpha, const T* A, int64_t lda, int64_t stride_a, const T* B, int64_t ldb,
                  int64_t stride_b, T beta, T* C, int64_t ldc, int64_t stride_c);

}  // namespace nabla::cpu

// CUDA twins (kernels/cuda/gemm.cu), same contracts; A, B and C are device pointers, the
// products queue on the current stream. No atomics: the same call on the same GPU model gives
// the same bits (the tiling, and with it the summation order, depends on the SM count).
namespace nabla::cuda {
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);
template <typename T>
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                  T alpha, const T* A, int64_t lda, int64_t stride_a, const T* B, int64_t ldb,
                  int64_t stride_b, T beta, T* C, int64_t ldc, int64_t stride_c);
}  // namespace nabla::cuda

// The explicit instantiations, one list for both backends: kernels/cpu/gemm.cpp and
// kernels/cuda/gemm.cu expand it in their namespace for each element type.
#define NABLA_GEMM_INSTANTIATE(T)                                                              \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, \
                        int64_t, T, T*, int64_t);                                              \
  template void gemm_batched<T>(bool, bool, int64_t, int64_t, int64_t, int64_t, T, const T*,   \
                                int64_t, int64_t, const T*, int64_t, int64_t, T, T*, int64_t,  \
                                int64_t);
