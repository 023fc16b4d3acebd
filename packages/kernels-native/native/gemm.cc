// Single-precision GEMM for the tfjs kernel overrides: BLIS-style blocking (KC x NC panels of B,
// packed, with B's transpose handled while packing; MC x KC blocks of A read in place, transposed or
// not), a register-blocked micro-kernel — 6x16 with AVX2/FMA, 12x32 with AVX-512 where the CPU has it
// (chosen at run time) — and an epilogue (bias, activation) applied on each thread's rows.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "pool.h"

namespace quorum {

bool cpuHasAvx2Fma() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool cpuHasAvx512() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return cpuHasAvx2Fma() && __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

namespace {
int gSimdWidth = cpuHasAvx512() ? 512 : 256;
}  // namespace

int simdWidth() { return gSimdWidth; }

int setSimdWidth(int bits) {
  if (bits == 512 && cpuHasAvx512()) {
    gSimdWidth = 512;
  } else {
    gSimdWidth = 256;
  }
  return gSimdWidth;
}

namespace {

constexpr int KC = 256, MC = 144, NC = 3072;  // MC: a multiple of both micro-tiles' MR (6 and 12)

// Grow-only 64-byte-aligned scratch buffer, one per thread.
struct Scratch {
  float* p = nullptr;
  size_t n = 0;
  float* get(size_t count) {
    if (count > n) {
      std::free(p);
      size_t bytes = ((count * sizeof(float) + 63) / 64) * 64;
      p = static_cast<float*>(std::aligned_alloc(64, bytes));
      n = count;
    }
    return p;
  }
  ~Scratch() { std::free(p); }
};

inline float activate(float v, int activation, float alpha) {
  switch (activation) {
    case kRelu:
      return v < 0.f ? 0.f : v;
    case kRelu6:
      return v < 0.f ? 0.f : (v > 6.f ? 6.f : v);
    case kLeakyRelu:
      return v < 0.f ? alpha * v : v;
    case kSigmoid:
      return 1.f / (1.f + std::exp(-v));
    case kElu:
      return v < 0.f ? std::expm1(v) : v;
    default:
      return v;
  }
}

// Bias and activation on rows [m0, m1) x columns [n0, n1) of one output matrix.
void epilogue(float* C, int ldc, int m0, int m1, int n0, int n1, const float* bias, bool biasScalar, int activation,
              float alpha) {
  if (bias == nullptr && activation == kLinear) return;
  for (int i = m0; i < m1; i++) {
    float* r = C + (size_t)i * ldc;
    if (bias != nullptr) {
      if (biasScalar) {
        const float b = bias[0];
        for (int j = n0; j < n1; j++) r[j] += b;
      } else {
        for (int j = n0; j < n1; j++) r[j] += bias[j];
      }
    }
    if (activation == kRelu) {
      for (int j = n0; j < n1; j++) r[j] = r[j] < 0.f ? 0.f : r[j];
    } else if (activation != kLinear) {
      for (int j = n0; j < n1; j++) r[j] = activate(r[j], activation, alpha);
    }
  }
}

}  // namespace

// ---- AVX2/FMA: 6x16 micro-tile, 12 ymm accumulators
namespace avx2 {
namespace {
#pragma GCC push_options
#pragma GCC target("avx2,fma")

constexpr int MR = 6, NR = 16;

// How the micro-kernel reads its MR x kc block of op(A) in place: untransposed (element (r, k) at
// r*lda + k) or transposed (k*lda + r).
enum AMode { kRows, kCols };

// C[0:mr, 0:nr] (+)= A (MR x kc) · Bp (kc x NR panel); rows >= mr of A are never read. HALF: nr <= 8,
// only the left 8 columns are computed (narrow outputs such as LoRA's rank-8 projections).
template <int MODE, bool HALF>
void micro(int kc, const float* __restrict A, int lda, const float* __restrict Bp, float* __restrict C,
               int ldc, bool accumulate, int mr, int nr) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(),
         c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(),
         c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(),
         c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  // Row pointers: rows past mr alias row 0, whose results for them are dropped.
  const float* a0 = A;
  const float* a1 = A + (size_t)(mr > 1 ? 1 : 0) * lda;
  const float* a2 = A + (size_t)(mr > 2 ? 2 : 0) * lda;
  const float* a3 = A + (size_t)(mr > 3 ? 3 : 0) * lda;
  const float* a4 = A + (size_t)(mr > 4 ? 4 : 0) * lda;
  const float* a5 = A + (size_t)(mr > 5 ? 5 : 0) * lda;
  for (int k = 0; k < kc; k++) {
    const __m256 b0 = _mm256_load_ps(Bp);
    const __m256 b1 = HALF ? b0 : _mm256_load_ps(Bp + 8);
    if (MODE == kCols) {
      a0 = A;
      a1 = A + (mr > 1 ? 1 : 0);
      a2 = A + (mr > 2 ? 2 : 0);
      a3 = A + (mr > 3 ? 3 : 0);
      a4 = A + (mr > 4 ? 4 : 0);
      a5 = A + (mr > 5 ? 5 : 0);
    }
    const int kk = MODE == kRows ? k : 0;
    __m256 a = _mm256_broadcast_ss(a0 + kk);
    c00 = _mm256_fmadd_ps(a, b0, c00);
    if (!HALF) c01 = _mm256_fmadd_ps(a, b1, c01);
    a = _mm256_broadcast_ss(a1 + kk);
    c10 = _mm256_fmadd_ps(a, b0, c10);
    if (!HALF) c11 = _mm256_fmadd_ps(a, b1, c11);
    a = _mm256_broadcast_ss(a2 + kk);
    c20 = _mm256_fmadd_ps(a, b0, c20);
    if (!HALF) c21 = _mm256_fmadd_ps(a, b1, c21);
    a = _mm256_broadcast_ss(a3 + kk);
    c30 = _mm256_fmadd_ps(a, b0, c30);
    if (!HALF) c31 = _mm256_fmadd_ps(a, b1, c31);
    a = _mm256_broadcast_ss(a4 + kk);
    c40 = _mm256_fmadd_ps(a, b0, c40);
    if (!HALF) c41 = _mm256_fmadd_ps(a, b1, c41);
    a = _mm256_broadcast_ss(a5 + kk);
    c50 = _mm256_fmadd_ps(a, b0, c50);
    if (!HALF) c51 = _mm256_fmadd_ps(a, b1, c51);
    if (MODE == kCols) A += lda;
    Bp += NR;
  }
  const __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (!HALF && mr == MR && nr == NR) {
    for (int i = 0; i < MR; i++) {
      float* r = C + (size_t)i * ldc;
      if (accumulate) {
        _mm256_storeu_ps(r, _mm256_add_ps(_mm256_loadu_ps(r), acc[i][0]));
        _mm256_storeu_ps(r + 8, _mm256_add_ps(_mm256_loadu_ps(r + 8), acc[i][1]));
      } else {
        _mm256_storeu_ps(r, acc[i][0]);
        _mm256_storeu_ps(r + 8, acc[i][1]);
      }
    }
    return;
  }
  if (HALF && mr == MR && nr == 8) {
    for (int i = 0; i < MR; i++) {
      float* r = C + (size_t)i * ldc;
      _mm256_storeu_ps(r, accumulate ? _mm256_add_ps(_mm256_loadu_ps(r), acc[i][0]) : acc[i][0]);
    }
    return;
  }
  alignas(32) float t[MR * NR];
  for (int i = 0; i < MR; i++) {
    _mm256_store_ps(t + i * NR, acc[i][0]);
    _mm256_store_ps(t + i * NR + 8, acc[i][1]);
  }
  for (int i = 0; i < mr; i++) {
    float* r = C + (size_t)i * ldc;
    for (int j = 0; j < nr; j++) r[j] = (accumulate ? r[j] : 0.f) + t[i * NR + j];
  }
}

#include "gemm_impl.inc"

#pragma GCC pop_options
}  // namespace
void run(const GemmArgs& g) { gemmRun(g); }
}  // namespace avx2

// ---- AVX-512: 12x32 micro-tile, 24 zmm accumulators (twice the FLOPs per instruction of AVX2)
namespace avx512 {
namespace {
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")

constexpr int MR = 12, NR = 32;

// How the micro-kernel reads its MR x kc block of op(A) in place: untransposed (element (r, k) at
// r*lda + k) or transposed (k*lda + r).
enum AMode { kRows, kCols };

// C[0:mr, 0:nr] (+)= A (MR x kc) · Bp (kc x NR panel); rows >= mr of A are never read (their pointers
// alias row 0 and their results are dropped). HALF: nr <= 16, only the left 16 columns.
template <int MODE, bool HALF>
void micro(int kc, const float* __restrict A, int lda, const float* __restrict Bp, float* __restrict C, int ldc,
           bool accumulate, int mr, int nr) {
  __m512 c0[MR], c1[MR];
  for (int i = 0; i < MR; i++) {
    c0[i] = _mm512_setzero_ps();
    c1[i] = _mm512_setzero_ps();
  }
  const float* rows[MR];
  for (int i = 0; i < MR; i++) rows[i] = A + (size_t)(i < mr ? i : 0) * (MODE == kRows ? lda : 1);
  for (int k = 0; k < kc; k++) {
    const __m512 b0 = _mm512_load_ps(Bp);
    const __m512 b1 = HALF ? b0 : _mm512_load_ps(Bp + 16);
    const size_t off = MODE == kRows ? (size_t)k : (size_t)k * lda;
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
      const __m512 a = _mm512_set1_ps(rows[i][off]);
      c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
      if (!HALF) c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
    }
    Bp += NR;
  }
  if (!HALF && mr == MR && nr == NR) {
    for (int i = 0; i < MR; i++) {
      float* r = C + (size_t)i * ldc;
      if (accumulate) {
        _mm512_storeu_ps(r, _mm512_add_ps(_mm512_loadu_ps(r), c0[i]));
        _mm512_storeu_ps(r + 16, _mm512_add_ps(_mm512_loadu_ps(r + 16), c1[i]));
      } else {
        _mm512_storeu_ps(r, c0[i]);
        _mm512_storeu_ps(r + 16, c1[i]);
      }
    }
    return;
  }
  // Partial tile: masked loads and stores of the first nr columns.
  const __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : (__mmask16)0;
  for (int i = 0; i < mr; i++) {
    float* r = C + (size_t)i * ldc;
    __m512 v0 = c0[i];
    if (accumulate) v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, r), v0);
    _mm512_mask_storeu_ps(r, m0, v0);
    if (!HALF && m1 != 0) {
      __m512 v1 = c1[i];
      if (accumulate) v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, r + 16), v1);
      _mm512_mask_storeu_ps(r + 16, m1, v1);
    }
  }
}

#include "gemm_impl.inc"

#pragma GCC pop_options
}  // namespace
void run(const GemmArgs& g) { gemmRun(g); }
}  // namespace avx512

void gemm(const GemmArgs& args) {
  if (gSimdWidth == 512) {
    avx512::run(args);
  } else {
    avx2::run(args);
  }
}

}  // namespace quorum
