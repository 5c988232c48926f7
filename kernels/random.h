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
