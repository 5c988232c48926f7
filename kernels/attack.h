// Fused attack steps: the update rules of BIM/PGD, one elementwise pass each (plus a per-sample
// norm reduction for L2). Forward only: they are update rules, not differentiable ops.
//
//   attack_step_linf   x' = clamp(clamp(x + alpha*sign(g), x0 - eps, x0 + eps), lo, hi)
//   attack_step_l2     per sample n:  u = x + alpha * g / ||g_n||   (u = x when ||g_n|| = 0)
//                                     d = u - x0,  d *= eps / ||d_n|| when ||d_n|| > eps
//                                     x' = clamp(x0 + d, lo, hi)
//
// x, g, x0, x' have the same shape; for L2 it is [N, D...] with D the elements of one sample.
// sign(0) = 0 (and sign(NaN) = 0): a zero gradient does not move x.
//
// Exact floating-point recipe. The CPU kernels and their CUDA twins follow it literally, so
// that the two agree bit for bit (compile the CUDA side with -fmad=false, or rely on the
// notes below that make contraction harmless). T is float or double; scalars marked T are
// rounded to T once (round to nearest) by the caller.
//
//   L-inf, per element (alpha, eps, lo, hi: T):
//     T s = (g > 0) - (g < 0);               // -1, 0 or 1, exact
//     T t = x + alpha * s;                   // alpha*s is exact, so the add is the only
//                                            // rounding: an fma would give the same bits
//     T lower = x0 - eps, upper = x0 + eps;  // one rounding each
//     t = t < lower ? lower : t;             // clamps are selections, exact; written as
//     t = t > upper ? upper : t;             // comparisons so that a NaN t stays NaN (fminf/
//     t = t < lo ? lo : t;                   // fmaxf would drop it)
//     t = t > hi ? hi : t;
//     x' = t;
//
//   APGD L-inf (Croce & Hein 2020), per element of sample n (eta[n], a, b, eps, lo, hi: T;
//   b = 1 - a rounded to T by the caller):
//     T s = (g > 0) - (g < 0);
//     T z = x + eta[n] * s;                  // as the L-inf step: one rounding
//     z = clamp(clamp(z, x0 - eps, x0 + eps), lo, hi)   (selections, as above)
//     T d1 = z - x, d2 = x - xp;             // one rounding each
//     T t = fma(b, d2, fma(a, d1, x));       // explicit fmas, inner one first
//     t = clamp(clamp(t, x0 - eps, x0 + eps), lo, hi);  x' = t
//   i.e. z = P(x + eta sign g), x' = P(x + a (z - x) + (1 - a)(x - xp)) with xp the previous
//   iterate: the momentum step of APGD (a = 0.75 there; a = 1, b = 0 for its first step).
//
//   L2 (alpha, eps: double; lo, hi: T):
//     1. gsq[n] = sum over the sample of double(g)^2 (the reduction order below)
//     2. T a = gsq[n] > 0 ? T(alpha / sqrt(gsq[n])) : 0     (double math, one rounding to T)
//        u = fma(a, g, x)                                  (one rounding)
//        dsq[n] = sum over the sample of double(u - x0)^2  (the same order; u - x0 rounded to T)
//     3. double dn = sqrt(dsq[n])
//        t = dn > eps ? fma(T(eps / dn), u - x0, x0) : u   (u - x0 rounded to T, as in step 2)
//        t = t < lo ? lo : t;  t = t > hi ? hi : t;  x' = t
//   A step that stays inside the ball is therefore exactly u (x0 + (u - x0) could differ from
//   u in the last bit), and a zero gradient leaves x unchanged.
//   The fmas are explicit (std::fma, __fmaf_rn / __fma_rn on the GPU), so the result does not
//   depend on whether a compiler contracts a*b + c. Division and sqrt are the correctly
//   rounded IEEE ones (nvcc's defaults; never --use_fast_math for these kernels).
//
//   Reduction order of a per-sample sum of squares: the sample's D elements are cut into
//   chunks of kAttackNormChunk consecutive elements; each chunk is summed in index order as
//   acc = fma(v, v, acc) in double, starting from 0; the chunk sums are then added in chunk
//   order, starting from 0. The order is fixed, so the result does not depend on threads.
#pragma once

#include <cstdint>

namespace nabla {

constexpr int64_t kAttackNormChunk = 4096;

namespace cpu {

// requires: x, g, x0, y hold n elements (y may alias x); lo <= hi; alpha, eps >= 0.
// ensures:  y written (=) by the L-inf recipe above.
template <typename T>
void attack_step_linf(const T* x, const T* g, const T* x0, T* y, int64_t n, T alpha, T eps, T lo,
                      T hi);

// requires: x, xp, g, x0, y [N, D] (y may alias x, not xp); eta [N] >= 0; 0 <= a <= 1,
//           b = T(1 - a); eps >= 0; lo <= hi.
// ensures:  y written (=) by the APGD L-inf recipe above.
template <typename T>
void attack_step_apgd_linf(const T* x, const T* xp, const T* g, const T* x0, const T* eta, T* y,
                           int64_t N, int64_t D, T a, T b, T eps, T lo, T hi);

// requires: g [N, D]; gsq [N].
// ensures:  gsq[n] = ||g_n||^2 in double, in the documented order, written (=).
template <typename T>
void attack_l2_sq_norms(const T* g, double* gsq, int64_t N, int64_t D);

// requires: x, g, x0, u [N, D] (u may alias x or g, not x0); gsq from attack_l2_sq_norms;
//           dsq [N]; alpha >= 0.
// ensures:  u = fma(a_n, g, x) and dsq[n] = ||u_n - x0_n||^2 (step 2 of the recipe), written (=).
template <typename T>
void attack_step_l2_delta(const T* x, const T* g, const T* x0, const double* gsq, double alpha,
                          T* u, double* dsq, int64_t N, int64_t D);

// requires: x0 [N, D]; y [N, D] holding u from attack_step_l2_delta, dsq from it; eps >= 0;
//           lo <= hi.
// ensures:  y = clamp(projection of u onto the eps-ball around x0, lo, hi) in place (step 3).
template <typename T>
void attack_step_l2_project(const T* x0, const double* dsq, double eps, T lo, T hi, T* y, int64_t N,
                            int64_t D);

}  // namespace cpu

// CUDA twins (kernels/cuda/attack.cu), same contracts and the same recipe: the results equal
// the CPU's bit for bit. Every array is device memory.
namespace cuda {
template <typename T>
void attack_step_linf(const T* x, const T* g, const T* x0, T* y, int64_t n, T alpha, T eps, T lo,
                      T hi);
template <typename T>
void attack_step_apgd_linf(const T* x, const T* xp, const T* g, const T* x0, const T* eta, T* y,
                           int64_t N, int64_t D, T a, T b, T eps, T lo, T hi);
template <typename T>
void attack_l2_sq_norms(const T* g, double* gsq, int64_t N, int64_t D);
template <typename T>
void attack_step_l2_delta(const T* x, const T* g, const T* x0, const double* gsq, double alpha,
                          T* u, double* dsq, int64_t N, int64_t D);
template <typename T>
void attack_step_l2_project(const T* x0, const double* dsq, double eps, T lo, T hi, T* y, int64_t N,
                            int64_t D);
}  // namespace cuda
}  // namespace nabla

// The explicit instantiations, one list for both backends: kernels/cpu/attack.cpp and
// kernels/cuda/attack.cu expand it in their namespace for each element type.
#define NABLA_ATTACK_INSTANTIATE(T)                                                              \
  template void attack_step_linf<T>(const T*, const T*, const T*, T*, int64_t, T, T, T, T);      \
  template void attack_step_apgd_linf<T>(const T*, const T*, const T*, const T*, const T*, T*,   \
                                         int64_t, int64_t, T, T, T, T, T);                       \
  template void attack_l2_sq_norms<T>(const T*, double*, int64_t, int64_t);                      \
  template void attack_step_l2_delta<T>(const T*, const T*, const T*, const double*, double, T*, \
                                        double*, int64_t, int64_t);                              \
  template void attack_step_l2_project<T>(const T*, const double*, double, T, T, T*, int64_t,    \
                                          int64_t);
