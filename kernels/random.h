// Random family: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3").
//
// A counter-based generator: block j of the stream is philox(key = seed, counter = offset + j)
// and gives four 32-bit words. Element i of a draw uses the words of block i / 4 (float) or
// i / 2 (double, two words per element), so any element can be computed on its own: the CPU
// and a GPU thread draw exactly the same bits for the same (seed, offset, i).
//
//   uniform float  = (w >> 8) * 2^-24                      in [0, 1)
//   uniform double = ((w_hi << 21) ^ (w_lo >> 11)) * 2^-53  in [0, 1)
//   normal         = Box-Muller on consecutive uniform pairs (u1 moved into (0, 1])
//
// The transforms of the uniforms (philox_scale, philox_box_muller) are shared host/device
// functions built only from operations that round identically on a CPU and a GPU, so that a
// draw can be the same BITS on both (see "Portable transforms" below).
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define NABLA_HD __host__ __device__
#else
#define NABLA_HD
#endif

namespace nabla {

struct Philox4x32 {
  uint32_t w[4];
};

// One Philox4x32-10 block for a 128-bit counter (ctr_lo, ctr_hi) and a 64-bit key.
NABLA_HD inline Philox4x32 philox4x32_10(uint64_t ctr_lo, uint64_t ctr_hi, uint64_t key) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t c0 = uint32_t(ctr_lo), c1 = uint32_t(ctr_lo >> 32);
  uint32_t c2 = uint32_t(ctr_hi), c3 = uint32_t(ctr_hi >> 32);
  uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = uint64_t(kM0) * c0, p1 = uint64_t(kM1) * c2;
    uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0, n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c1 = uint32_t(p1);
    c3 = uint32_t(p0);
    c0 = n0;
    c2 = n2;
    k0 += kW0;
    k1 += kW1;
  }
  return {{c0, c1, c2, c3}};
}

NABLA_HD inline float philox_to_float(uint32_t w) {
  return float(w >> 8) * (1.0f / 16777216.0f);
}
NABLA_HD inline double philox_to_double(uint32_t hi, uint32_t lo) {
  return double((uint64_t(hi) << 21) ^ (lo >> 11)) * (1.0 / 9007199254740992.0);
}

// Uniforms per Philox block: four 32-bit words give four floats or two doubles.
template <typename T>
inline constexpr int64_t kPhiloxPerBlock = sizeof(T) == 4 ? 4 : 2;

// The uniforms of block b of the stream (seed, offset): u[k] is element b * per + k.
// Every draw (uniform, normal, the dropout mask) goes through this one mapping.
template <typename T>
NABLA_HD inline void philox_uniforms(uint64_t seed, uint64_t offset, int64_t b, T* u) {
  Philox4x32 r = philox4x32_10(offset + uint64_t(b), 0, seed);
  if constexpr (sizeof(T) == 4) {
    for (int k = 0; k < 4; ++k) u[k] = philox_to_float(r.w[k]);
  } else {
    for (int k = 0; k < 2; ++k) u[k] = philox_to_double(r.w[2 * k], r.w[2 * k + 1]);
  }
}

// ---------------------------------------------------------------- Portable transforms
//
// Identical bits on the CPU and the GPU need operations that IEEE 754 rounds the same way on
// both: +, -, *, /, sqrt and fma, each correctly rounded (nvcc's defaults -prec-div=true and
// -prec-sqrt=true keep / and sqrt so; nothing here may be built with fast-math), and frexp and
// rint, which are exact. Every product that meets an add is an explicit fma: GCC (gnu++ mode,
// -ffp-contract=fast) and nvcc (--fmad=true) would otherwise each choose which a*b + c to fuse.
// The C library's log, sin and cos are NOT used: glibc and CUDA's libdevice round them
// differently in the last bit (and glibc picks an FMA or a non-FMA variant by CPU), so a
// Box-Muller on them would differ by an ulp between devices. The versions below are accurate
// to about 1 ulp in double (log: fdlibm's e_log.c, with its adds fused; sin/cos: Taylor series
// of sin(pi y), cos(pi y) on |y| <= 1/4 after an exact reduction of the angle in turns).

NABLA_HD inline double philox_fma(double a, double b, double c) {
  return std::fma(a, b, c);
}
NABLA_HD inline float philox_fma(float a, float b, float c) {
  return std::fma(a, b, c);
}

// ln x for a positive normal x (callers pass x in [2^-53, 1]).
NABLA_HD inline double philox_log(double x) {
  constexpr double kLn2Hi = 6.93147180369123816490e-01, kLn2Lo = 1.90821492927058770002e-10;
  constexpr double kLg1 = 6.666666666666735130e-01, kLg2 = 3.999999999940941908e-01,
                   kLg3 = 2.857142874366239149e-01, kLg4 = 2.222219843214978396e-01,
                   kLg5 = 1.818357216161805012e-01, kLg6 = 1.531383769920937332e-01,
                   kLg7 = 1.479819860511658591e-01;
  int k = 0;
  double m = std::frexp(x, &k);  // x = m 2^k, m in [1/2, 1): exact
  if (m < 0.70710678118654752440) {
    m = 2 * m;
    k = k - 1;
  }
  // ln x = k ln 2 + ln(1 + f), f = m - 1 in [-0.293, 0.414) (exact: Sterbenz), and
  // ln(1 + f) = 2 atanh(s) = f - (f^2/2 - s (f^2/2 + R(s^2))), s = f / (2 + f).
  const double f = m - 1.0, dk = double(k);
  const double s = f / (2.0 + f);
  const double z = s * s, w = z * z;
  const double t1 = w * philox_fma(w, philox_fma(w, kLg6, kLg4), kLg2);
  const double r =
      philox_fma(z, philox_fma(w, philox_fma(w, philox_fma(w, kLg7, kLg5), kLg3), kLg1), t1);
  const double h = 0.5 * f;  // f^2/2 = h * f, fused into each use
  const double a = philox_fma(s, philox_fma(h, f, r), dk * kLn2Lo);
  const double b = philox_fma(h, f, -a) - f;
  return philox_fma(dk, kLn2Hi, -b);  // k ln2_hi is exact: ln2_hi has 32 bits
}

// sin(2 pi u) and cos(2 pi u) for u in [0, 1).
NABLA_HD inline void philox_sincos_2pi(double u, double* sin_out, double* cos_out) {
  constexpr double kPiHi = 3.141592653589793, kPiLo = 1.2246467991473532e-16;
  // (-1)^k pi^(2k+1) / (2k+1)! and (-1)^k pi^(2k) / (2k)!, k >= 1, rounded to double.
  constexpr double kS1 = -5.16771278004997, kS2 = 2.5501640398773455, kS3 = -0.5992645293207921,
                   kS4 = 0.08214588661112823, kS5 = -0.0073704309457143504,
                   kS6 = 0.00046630280576761255, kS7 = -2.1915353447830217e-05,
                   kS8 = 7.952054001475513e-07, kS9 = -2.2948428997269873e-08;
  constexpr double kC1 = -4.934802200544679, kC2 = 4.0587121264167685, kC3 = -1.3352627688545895,
                   kC4 = 0.2353306303588932, kC5 = -0.02580689139001406,
                   kC6 = 0.0019295743094039231, kC7 = -0.0001046381049248457,
                   kC8 = 4.303069587032947e-06, kC9 = -1.3878952462213771e-07,
                   kC10 = 3.604730797462501e-09;
  // 2 pi u = pi y + q pi/2 with q = rint(4u) and y = 2 (u - q/4) in [-1/4, 1/4]: 4u, q/4,
  // u - q/4 and 2 (u - q/4) are all exact (u is a multiple of 2^-53 below 1).
  const double q = std::rint(4.0 * u);
  const double y = 2.0 * (u - 0.25 * q);
  const double z = y * y;
  double ps = philox_fma(z, kS9, kS8);
  ps = philox_fma(z, ps, kS7);
  ps = philox_fma(z, ps, kS6);
  ps = philox_fma(z, ps, kS5);
  ps = philox_fma(z, ps, kS4);
  ps = philox_fma(z, ps, kS3);
  ps = philox_fma(z, ps, kS2);
  ps = philox_fma(z, ps, kS1);
  double pc = philox_fma(z, kC10, kC9);
  pc = philox_fma(z, pc, kC8);
  pc = philox_fma(z, pc, kC7);
  pc = philox_fma(z, pc, kC6);
  pc = philox_fma(z, pc, kC5);
  pc = philox_fma(z, pc, kC4);
  pc = philox_fma(z, pc, kC3);
  pc = philox_fma(z, pc, kC2);
  pc = philox_fma(z, pc, kC1);
  // sin(pi y) = pi y + y^3 P(y^2), with pi y carried in two parts (kPiHi y exact in the fma).
  const double sn = philox_fma(kPiHi, y, philox_fma(kPiLo, y, (y * z) * ps));
  const double cs = philox_fma(z, pc, 1.0);
  switch (int(q) & 3) {
    case 0:
      *sin_out = sn;
      *cos_out = cs;
      break;
    case 1:
      *sin_out = cs;
      *cos_out = -sn;
      break;
    case 2:
      *sin_out = -sn;
      *cos_out = -cs;
      break;
    default:
      *sin_out = -cs;
      *cos_out = sn;
      break;
  }
}

// out = lo + (hi - lo) u, as one fma.
template <typename T>
NABLA_HD inline T philox_scale(T u, T lo, T hi) {
  return philox_fma(hi - lo, u, lo);
}

// Box-Muller: z0 = mean + std r cos(2 pi u1), z1 = mean + std r sin(2 pi u1),
// r = sqrt(-2 ln(1 - u0)); 1 - u0 lies in (0, 1] (exact), so the log is finite. Evaluated in
// double for both T, rounded to T once.
template <typename T>
NABLA_HD inline void philox_box_muller(T u0, T u1, T mean, T std, T* z0, T* z1) {
  const double r = std::sqrt(-2.0 * philox_log(1.0 - double(u0)));
  double s = 0, c = 0;
  philox_sincos_2pi(double(u1), &s, &c);
  const double a = double(std) * r;
  *z0 = T(philox_fma(a, c, double(mean)));
  *z1 = T(philox_fma(a, s, double(mean)));
}

}  // namespace nabla

namespace nabla::cpu {

// Each draw consumes philox_blocks(n) counters from `offset` on; the generator advances by it.
inline uint64_t philox_blocks_float(int64_t n) {
  return uint64_t((n + 3) / 4);
}
inline uint64_t philox_blocks_double(int64_t n) {
  return uint64_t((n + 1) / 2);
}

// ensures: out[i] = lo + (hi - lo) * U_i, U_i the i-th uniform of the stream (seed, offset).
template <typename T>
void uniform(uint64_t seed, uint64_t offset, T* out, int64_t n, T lo, T hi);

// ensures: out[i] = mean + std * Z_i, Z_i standard normals by Box-Muller on uniforms 2k, 2k+1.
template <typename T>
void normal(uint64_t seed, uint64_t offset, T* out, int64_t n, T mean, T std);

}  // namespace nabla::cpu

// CUDA twins (kernels/cuda/random.cu), same contracts and the same stream; out is device memory.
// uniform is philox_scale of the same uniforms; normal is philox_box_muller of the same pairs.
namespace nabla::cuda {
template <typename T>
void uniform(uint64_t seed, uint64_t offset, T* out, int64_t n, T lo, T hi);
template <typename T>
void normal(uint64_t seed, uint64_t offset, T* out, int64_t n, T mean, T std);
}  // namespace nabla::cuda

// The explicit instantiations, one list for both backends: kernels/cpu/random.cpp and
// kernels/cuda/random.cu expand it in their namespace for each element type.
#define NABLA_RANDOM_INSTANTIATE(T)                                \
  template void uniform<T>(uint64_t, uint64_t, T*, int64_t, T, T); \
  template void normal<T>(uint64_t, uint64_t, T*, int64_t, T, T);
