// Single-precision GEMM for the tfjs kernel overrides: BLIS-style blocking (KC x NC panels of B,
// MC x KC blocks of A, both packed), a 6x16 AVX2/FMA register-blocked micro-kernel, transposes
// handled while packing, and an epilogue (bias, activation) applied on each thread's rows.
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

namespace {

#pragma GCC push_options
#pragma GCC target("avx2,fma")

constexpr int MR = 6, NR = 16;      // micro-tile: 6 rows x 16 columns = 12 ymm accumulators
constexpr int KC = 256, MC = 144, NC = 3072;

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
thread_local Scratch tlsA, tlsB;

// Packs op(A)[i0:i0+mc, k0:k0+kc] into MR-row panels, k-major inside a panel; pads rows with 0.
void packA(const float* A, int lda, bool tA, int i0, int mc, int k0, int kc, float* dst) {
  for (int p = 0; p < mc; p += MR) {
    const int mr = std::min(MR, mc - p);
    float* d = dst + (size_t)p * kc;
    if (tA) {  // op(A)[i][k] = A[k][i]: rows of the panel are contiguous in memory
      for (int k = 0; k < kc; k++) {
        const float* s = A + (size_t)(k0 + k) * lda + i0 + p;
        int r = 0;
        for (; r < mr; r++) d[k * MR + r] = s[r];
        for (; r < MR; r++) d[k * MR + r] = 0.f;
      }
    } else {
      for (int r = 0; r < MR; r++) {
        if (r < mr) {
          const float* s = A + (size_t)(i0 + p + r) * lda + k0;
          for (int k = 0; k < kc; k++) d[k * MR + r] = s[k];
        } else {
          for (int k = 0; k < kc; k++) d[k * MR + r] = 0.f;
        }
      }
    }
  }
}

// Packs op(B)[k0:k0+kc, j0:j0+nc] into NR-column panels, k-major inside a panel; pads with 0.
void packB(const float* B, int ldb, bool tB, int k0, int kc, int j0, int nc, float* dst) {
  for (int q = 0; q < nc; q += NR) {
    const int nr = std::min(NR, nc - q);
    float* d = dst + (size_t)q * kc;
    if (!tB) {
      for (int k = 0; k < kc; k++) {
        const float* s = B + (size_t)(k0 + k) * ldb + j0 + q;
        if (nr == NR) {
          std::memcpy(d + k * NR, s, NR * sizeof(float));
        } else {
          int c = 0;
          for (; c < nr; c++) d[k * NR + c] = s[c];
          for (; c < NR; c++) d[k * NR + c] = 0.f;
        }
      }
    } else {  // op(B)[k][j] = B[j][k]
      for (int c = 0; c < NR; c++) {
        if (c < nr) {
          const float* s = B + (size_t)(j0 + q + c) * ldb + k0;
          for (int k = 0; k < kc; k++) d[k * NR + c] = s[k];
        } else {
          for (int k = 0; k < kc; k++) d[k * NR + c] = 0.f;
        }
      }
    }
  }
}

// C[0:mr, 0:nr] (+)= Ap (MR x kc panel) · Bp (kc x NR panel).
void micro6x16(int kc, const float* __restrict Ap, const float* __restrict Bp, float* __restrict C, int ldc,
               bool accumulate, int mr, int nr) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(),
         c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(),
         c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(),
         c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int k = 0; k < kc; k++) {
    const __m256 b0 = _mm256_load_ps(Bp), b1 = _mm256_load_ps(Bp + 8);
    __m256 a = _mm256_broadcast_ss(Ap + 0);
    c00 = _mm256_fmadd_ps(a, b0, c00);
    c01 = _mm256_fmadd_ps(a, b1, c01);
    a = _mm256_broadcast_ss(Ap + 1);
    c10 = _mm256_fmadd_ps(a, b0, c10);
    c11 = _mm256_fmadd_ps(a, b1, c11);
    a = _mm256_broadcast_ss(Ap + 2);
    c20 = _mm256_fmadd_ps(a, b0, c20);
    c21 = _mm256_fmadd_ps(a, b1, c21);
    a = _mm256_broadcast_ss(Ap + 3);
    c30 = _mm256_fmadd_ps(a, b0, c30);
    c31 = _mm256_fmadd_ps(a, b1, c31);
    a = _mm256_broadcast_ss(Ap + 4);
    c40 = _mm256_fmadd_ps(a, b0, c40);
    c41 = _mm256_fmadd_ps(a, b1, c41);
    a = _mm256_broadcast_ss(Ap + 5);
    c50 = _mm256_fmadd_ps(a, b0, c50);
    c51 = _mm256_fmadd_ps(a, b1, c51);
    Ap += MR;
    Bp += NR;
  }
  const __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (mr == MR && nr == NR) {
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

// One thread: C[m0:m1, n0:n1] = op(A) · op(B) (no epilogue).
void gemmBlock(const float* A, int lda, bool tA, const float* B, int ldb, bool tB, float* C, int ldc, int K,
               int m0, int m1, int n0, int n1) {
  if (m1 <= m0 || n1 <= n0) return;
  if (K == 0) {
    for (int i = m0; i < m1; i++) std::memset(C + (size_t)i * ldc + n0, 0, (size_t)(n1 - n0) * sizeof(float));
    return;
  }
  float* Ap = tlsA.get((size_t)(MC + MR) * KC);
  float* Bp = tlsB.get((size_t)(NC + NR) * KC);
  for (int jc = n0; jc < n1; jc += NC) {
    const int nc = std::min(NC, n1 - jc);
    for (int pc = 0; pc < K; pc += KC) {
      const int kc = std::min(KC, K - pc);
      packB(B, ldb, tB, pc, kc, jc, nc, Bp);
      for (int ic = m0; ic < m1; ic += MC) {
        const int mc = std::min(MC, m1 - ic);
        packA(A, lda, tA, ic, mc, pc, kc, Ap);
        for (int jr = 0; jr < nc; jr += NR) {
          const int nr = std::min(NR, nc - jr);
          for (int ir = 0; ir < mc; ir += MR) {
            micro6x16(kc, Ap + (size_t)ir * kc, Bp + (size_t)jr * kc, C + (size_t)(ic + ir) * ldc + jc + jr, ldc,
                      pc > 0, std::min(MR, mc - ir), nr);
          }
        }
      }
    }
  }
}

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

void gemmRun(const GemmArgs& g) {
  const int M = g.M, N = g.N, K = g.K;
  const int lda = g.transA ? M : K, ldb = g.transB ? K : N;
  const size_t sA = (size_t)M * K, sB = (size_t)K * N, sC = (size_t)M * N;
  if (g.batch == 0 || M == 0 || N == 0) return;
  // Work units: each batch item is cut into `slices` along M (or N when N is larger), in whole micro-tiles.
  const double flops = 2.0 * M * N * (double)K * (double)g.batch;
  const int want = flops < 1.5e6 ? 1 : poolThreads();
  const bool alongM = M >= N;
  const int unit = alongM ? MR : NR;
  const int tiles = ((alongM ? M : N) + unit - 1) / unit;
  const int slices = g.batch % want == 0 ? 1 : std::min(want, tiles);
  const long units = g.batch * slices;
  const int nt = (int)std::min<long>(want, units);
  pool().run(nt, [&](int t, int n) {
    long u0, u1;
    splitRange(units, t, n, &u0, &u1);
    for (long u = u0; u < u1; u++) {
      const long bi = u / slices;
      const int s = (int)(u % slices);
      const long ia = g.aIdx ? g.aIdx[bi] : bi % g.batchA;
      const long ib = g.bIdx ? g.bIdx[bi] : bi % g.batchB;
      const float* A = g.a + ia * sA;
      const float* B = g.b + ib * sB;
      float* C = g.c + bi * sC;
      const int lo = (int)((long)tiles * s / slices) * unit;
      const int hi = std::min(alongM ? M : N, (int)((long)tiles * (s + 1) / slices) * unit);
      const int m0 = alongM ? lo : 0, m1 = alongM ? hi : M, n0 = alongM ? 0 : lo, n1 = alongM ? N : hi;
      gemmBlock(A, lda, g.transA, B, ldb, g.transB, C, N, K, m0, m1, n0, n1);
      epilogue(C, N, m0, m1, n0, n1, g.bias, g.biasScalar, g.activation, g.alpha);
    }
  });
}

#pragma GCC pop_options

}  // namespace

void gemm(const GemmArgs& args) { gemmRun(args); }

}  // namespace quorum
