// Fused GELU (tanh approximation), SiLU, LayerNorm and RMSNorm over the last axis, forward and backward,
// and the AdamW update: the QuorumGelu, QuorumGeluGrad, QuorumSilu, QuorumSiluGrad, QuorumLayerNorm,
// QuorumLayerNormGrad, QuorumRmsNorm, QuorumRmsNormGrad and QuorumAdamW kernels (contract:
// packages/core/src/fused-kernels.ts). AVX2/FMA, AVX-512 where simdWidth() is 512; split over the thread
// pool (GELU, SiLU and AdamW by flat element ranges, LayerNorm and RMSNorm by rows).
//
// GELU goes through ½(1 + tanh u) = σ(2u) = 1/(1 + e^{−2u}) (the same function, one exp and one
// division per element, and no cancellation in 1 + tanh u for negative x, where tanh u rounds to −1):
//   u = √(2/π)(x + 0.044715x³),  e = exp(−2u),  s = 1/(1 + e)
//   gelu(x)  = ½x(1 + tanh u) = x / (1 + e)
//   gelu′(x) = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)
//            = s + 2√(2/π)·x·(e·s)·s·(1 + 3·0.044715x²)        (1 − t² = 4s(1 − s), 1 − s = e·s)
//
// SiLU goes through e = exp(−x) and s = σ(x) = 1/(1 + e), with 1 − s = e·s (no cancellation for large x):
//   silu(x)  = x·s = x / (1 + e)
//   silu′(x) = s·(1 + x·(1 − s)) = s + x·(e·s)·s
// exp clamps its argument to ±88.38 (kExpLimit), so past that e is e^±88.38 instead of 0 or ∞; x is clamped
// to the same range where it multiplies such an e (the forward's x below −88.38, both terms of the derivative),
// which keeps the error below 4e-37 (silu is about x·e^x there) instead of growing with |x|.
//
// RMSNorm: one pass for Σx² (rstd = 1/√(mean(x²) + ε)), one for y = x·rstd·gamma. Its gradient, with
// x̂ = x·rstd and g = dy·gamma: dx = rstd·(g − x̂·mean(g·x̂)), dgamma = Σ over rows of dy·x̂ (two passes per row).
//
// LayerNormGrad and RmsNormGrad sum dgamma (and dbeta) over rows in a fixed partition: chunks of consecutive
// rows chosen from the shape alone (not the thread count), one partial buffer per chunk, summed in chunk
// order at the end, so the result is the same whichever thread runs which chunk and however many threads
// there are.
//
// AdamW does exactly the float32 operations of the composed stock ops of @quorum/backbone's optimizer
// (packages/backbone/src/optim.ts), in their order, each rounded on its own (no FMA; division and
// square root are correctly rounded): g·s, m·β1 + g·(1 − β1), v·β2 + g²·(1 − β2),
// (m′/bc1) / (√(v′/bc2) + ε), p·(1 − lr·wd) − update·lr, with the scalar operands rounded to float32
// from doubles as tfjs rounds them. So it gives the composed version's bits, at either width.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "kernels.h"
#include "pool.h"

// No implicit FMA contraction in this file (GCC contracts a*b+c, intrinsics included, by default):
// the LayerNorm gradient computes g = dy·gamma in two passes, and must round it the same way in both
// (contracted into g − mean(g) in one pass only, a row of D = 1 would give dx = rstd·(rounding error)
// instead of 0). The fused multiply-adds that are wanted are written out.
#pragma GCC optimize("fp-contract=off")

#include "vmath.h"

namespace quorum {

namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluC = 0.044715f;
// gelu′'s second term uses x clamped to ±30 (keeps x² finite for huge inputs); past |x| = 30 the term
// is below 1e-34 (e·s·s ≤ 5e-39 there), so the clamp changes nothing measurable.
constexpr float kGeluClamp = 30.f;
// SiLU: exp's clamp (vmath.h), and the x clamp where x multiplies exp's result (see the top of the file).
constexpr float kExpLimit = 88.3762626647949f;
constexpr long kGrainGelu = 1 << 12;  // elements per chunk (exp-bound, like tanh)
constexpr long kGrainSilu = 1 << 12;  // elements per chunk (exp-bound, like GELU)
constexpr long kGrainRows = 1 << 13;  // elements per chunk of LayerNorm / RMSNorm rows
// LayerNormGrad, RmsNormGrad: row chunks of about this many elements, at most kGradMaxChunks of them.
constexpr long kGradChunkElems = 1 << 14;
constexpr long kGradMaxChunks = 64;
// AdamW: elements per chunk. Memory-bound (4 streams in, 3 out: 28 bytes per element), so a chunk is
// ~230 KB of traffic; a tensor of one chunk or less (biases, LayerNorm gains, up to [64, 128]) runs on
// the calling thread without waking the pool. Measured (2 threads vs 1, whole kernel call): 16k elements
// 4.8 vs 6.3 µs, 64k 11-13 vs 22 µs; a grain of 1 << 12 gains nothing below 64k (the helper is late for
// a 2-chunk job), 1 << 14 nothing at 16k.
constexpr long kGrainAdamW = 1 << 13;

// AdamW's scalar operands, rounded to float32 (see adamW).
struct AdamWScalars {
  float gradScale, beta1, oneMinusBeta1, beta2, oneMinusBeta2, bc1, bc2, eps, decay, lr;
};

#pragma GCC push_options
#pragma GCC target("avx2,fma")

// Lanes [0, n) of 8 set (n >= 1): masked loads read zeros elsewhere and touch no memory there.
inline __m256i tailMask8(long n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n < 8 ? n : 8)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// e = exp(−2u), u = √(2/π)(x + 0.044715x³)
inline __m256 geluExp8(__m256 x) {
  const __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(kGeluC), _mm256_mul_ps(x, x)), x, x);
  return exp8(_mm256_mul_ps(inner, _mm256_set1_ps(-2.f * kSqrt2OverPi)));
}

inline __m256 gelu8(__m256 x) { return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.f), geluExp8(x))); }

inline __m256 geluDeriv8(__m256 x) {
  const __m256 e = geluExp8(x);
  const __m256 s = _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_add_ps(_mm256_set1_ps(1.f), e));
  // max/min return their second operand when one is NaN: x stays NaN (and so does the result)
  const __m256 xc = _mm256_min_ps(_mm256_set1_ps(kGeluClamp), _mm256_max_ps(_mm256_set1_ps(-kGeluClamp), x));
  const __m256 poly = _mm256_fmadd_ps(_mm256_set1_ps(3.f * kGeluC), _mm256_mul_ps(xc, xc), _mm256_set1_ps(1.f));
  const __m256 k = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(2.f * kSqrt2OverPi), xc), poly);
  return _mm256_fmadd_ps(k, _mm256_mul_ps(_mm256_mul_ps(e, s), s), s);
}

// y = f(x) elementwise on the pool, 8 lanes at a time, the tail through a mask.
template <class F>
void mapRun(const float* x, float* y, long n, long grain, F f) {
  parallelFor(n, grain, [&](long i0, long i1) {
    const float* __restrict src = x;  // local copies: stores may alias the lambda's captures
    float* __restrict dst = y;
    long i = i0;
    for (; i + 8 <= i1; i += 8) _mm256_storeu_ps(dst + i, f(_mm256_loadu_ps(src + i)));
    if (i < i1) {
      const __m256i m = tailMask8(i1 - i);
      _mm256_maskstore_ps(dst + i, m, f(_mm256_maskload_ps(src + i, m)));
    }
  });
}

// dx = dy · f′(x) elementwise, as mapRun.
template <class F>
void gradMapRun(const float* dy, const float* x, float* dx, long n, long grain, F deriv) {
  parallelFor(n, grain, [&](long i0, long i1) {
    const float* __restrict g = dy;
    const float* __restrict src = x;
    float* __restrict dst = dx;
    long i = i0;
    for (; i + 8 <= i1; i += 8)
      _mm256_storeu_ps(dst + i, _mm256_mul_ps(_mm256_loadu_ps(g + i), deriv(_mm256_loadu_ps(src + i))));
    if (i < i1) {
      const __m256i m = tailMask8(i1 - i);
      _mm256_maskstore_ps(dst + i, m,
                          _mm256_mul_ps(_mm256_maskload_ps(g + i, m), deriv(_mm256_maskload_ps(src + i, m))));
    }
  });
}

void geluRun(const float* x, float* y, long n) { mapRun(x, y, n, kGrainGelu, [](__m256 v) { return gelu8(v); }); }

void geluGradRun(const float* dy, const float* x, float* dx, long n) {
  gradMapRun(dy, x, dx, n, kGrainGelu, [](__m256 v) { return geluDeriv8(v); });
}

// e = exp(−x)
inline __m256 siluExp8(__m256 x) { return exp8(_mm256_xor_ps(x, _mm256_set1_ps(-0.f))); }

inline __m256 silu8(__m256 x) {
  // max/min return their second operand when one is NaN: x stays NaN (and so does the result)
  const __m256 xl = _mm256_max_ps(_mm256_set1_ps(-kExpLimit), x);
  return _mm256_div_ps(xl, _mm256_add_ps(_mm256_set1_ps(1.f), siluExp8(x)));
}

inline __m256 siluDeriv8(__m256 x) {
  const __m256 e = siluExp8(x);
  const __m256 s = _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_add_ps(_mm256_set1_ps(1.f), e));
  const __m256 xc = _mm256_min_ps(_mm256_set1_ps(kExpLimit), _mm256_max_ps(_mm256_set1_ps(-kExpLimit), x));
  return _mm256_fmadd_ps(xc, _mm256_mul_ps(_mm256_mul_ps(e, s), s), s);
}

void siluRun(const float* x, float* y, long n) { mapRun(x, y, n, kGrainSilu, [](__m256 v) { return silu8(v); }); }

void siluGradRun(const float* dy, const float* x, float* dx, long n) {
  gradMapRun(dy, x, dx, n, kGrainSilu, [](__m256 v) { return siluDeriv8(v); });
}

// One row of D: mean, rstd = 1/√(biased var + eps) (two passes: mean, then squared deviations),
// y = (x − mean)·rstd·gamma + beta.
void layerNormRow(const float* x, const float* gamma, const float* beta, float* y, long D, float eps, float* meanOut,
                  float* rstdOut) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  long j = 0;
  for (; j + 16 <= D; j += 16) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + j));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + j + 8));
  }
  for (; j < D; j += 8) a0 = _mm256_add_ps(a0, _mm256_maskload_ps(x + j, tailMask8(D - j)));
  const float mean = hsum8(_mm256_add_ps(a0, a1)) / static_cast<float>(D);
  const __m256 mv = _mm256_set1_ps(mean);
  a0 = _mm256_setzero_ps();
  a1 = _mm256_setzero_ps();
  for (j = 0; j + 16 <= D; j += 16) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + j), mv);
    const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + j + 8), mv);
    a0 = _mm256_fmadd_ps(d0, d0, a0);
    a1 = _mm256_fmadd_ps(d1, d1, a1);
  }
  for (; j < D; j += 8) {
    const __m256i m = tailMask8(D - j);
    const __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + j, m), mv), _mm256_castsi256_ps(m));
    a0 = _mm256_fmadd_ps(d, d, a0);
  }
  const float var = hsum8(_mm256_add_ps(a0, a1)) / static_cast<float>(D);
  const float rstd = 1.f / std::sqrt(var + eps);
  const __m256 rv = _mm256_set1_ps(rstd);
  for (j = 0; j + 8 <= D; j += 8) {
    const __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + j), mv), rv);
    _mm256_storeu_ps(y + j, _mm256_fmadd_ps(xh, _mm256_loadu_ps(gamma + j), _mm256_loadu_ps(beta + j)));
  }
  if (j < D) {
    const __m256i m = tailMask8(D - j);
    const __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + j, m), mv), rv);
    _mm256_maskstore_ps(y + j, m, _mm256_fmadd_ps(xh, _mm256_maskload_ps(gamma + j, m), _mm256_maskload_ps(beta + j, m)));
  }
  *meanOut = mean;
  *rstdOut = rstd;
}

void layerNormRun(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                  long rows, long D, float eps) {
  parallelFor(rows, std::max(1L, kGrainRows / D), [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) layerNormRow(x + r * D, gamma, beta, y + r * D, D, eps, mean + r, rstd + r);
  });
}

// Full vectors through plain loads and stores, the tail (TAIL) through masked ones (slow on some CPUs).
template <bool TAIL>
inline __m256 load8(const float* p, __m256i m) {
  return TAIL ? _mm256_maskload_ps(p, m) : _mm256_loadu_ps(p);
}
template <bool TAIL>
inline void store8(float* p, __m256i m, __m256 v) {
  if (TAIL) {
    _mm256_maskstore_ps(p, m, v);
  } else {
    _mm256_storeu_ps(p, v);
  }
}

// Pass 1 of a row at column j: Σ g, Σ g·xhat (g = dy·gamma) and the row's share of dgamma, dbeta.
template <bool TAIL>
inline void gradSums8(const float* dyr, const float* xr, const float* gamma, float* pdg, float* pdb, long j,
                      __m256i m, __m256 mv, __m256 rv, __m256* sa, __m256* sb) {
  const __m256 d = load8<TAIL>(dyr + j, m);  // 0 in a tail's unused lanes, so g is too
  const __m256 xh = _mm256_mul_ps(_mm256_sub_ps(load8<TAIL>(xr + j, m), mv), rv);
  const __m256 g = _mm256_mul_ps(d, load8<TAIL>(gamma + j, m));
  *sa = _mm256_add_ps(*sa, g);
  *sb = _mm256_fmadd_ps(g, xh, *sb);
  store8<TAIL>(pdg + j, m, _mm256_fmadd_ps(d, xh, load8<TAIL>(pdg + j, m)));
  store8<TAIL>(pdb + j, m, _mm256_add_ps(load8<TAIL>(pdb + j, m), d));
}

// Pass 2 at column j: dx = rstd·(g − mean(g) − xhat·mean(g·xhat)).
template <bool TAIL>
inline void gradDx8(const float* dyr, const float* xr, const float* gamma, float* dxr, long j, __m256i m, __m256 mv,
                    __m256 rv, __m256 av, __m256 bv) {
  const __m256 xh = _mm256_mul_ps(_mm256_sub_ps(load8<TAIL>(xr + j, m), mv), rv);
  const __m256 g = _mm256_mul_ps(load8<TAIL>(dyr + j, m), load8<TAIL>(gamma + j, m));
  store8<TAIL>(dxr + j, m, _mm256_mul_ps(rv, _mm256_fnmadd_ps(xh, bv, _mm256_sub_ps(g, av))));
}

// Rows [r0, r1) of the gradient: dx, and dgamma/dbeta accumulated (row order) into pdg/pdb (zeroed).
void layerNormGradRows(const float* dy, const float* x, const float* gamma, const float* mean, const float* rstd,
                       float* dx, float* pdg, float* pdb, long r0, long r1, long D) {
  const float invD = 1.f / static_cast<float>(D);
  const long full = D & ~7L;
  const __m256i all = _mm256_set1_epi32(-1), tail = tailMask8(D - full);
  for (long r = r0; r < r1; r++) {
    const float* xr = x + r * D;
    const float* dyr = dy + r * D;
    float* dxr = dx + r * D;
    const __m256 mv = _mm256_set1_ps(mean[r]), rv = _mm256_set1_ps(rstd[r]);
    __m256 sa = _mm256_setzero_ps(), sb = _mm256_setzero_ps();
    for (long j = 0; j < full; j += 8) gradSums8<false>(dyr, xr, gamma, pdg, pdb, j, all, mv, rv, &sa, &sb);
    if (full < D) gradSums8<true>(dyr, xr, gamma, pdg, pdb, full, tail, mv, rv, &sa, &sb);
    const __m256 av = _mm256_set1_ps(hsum8(sa) * invD), bv = _mm256_set1_ps(hsum8(sb) * invD);
    for (long j = 0; j < full; j += 8) gradDx8<false>(dyr, xr, gamma, dxr, j, all, mv, rv, av, bv);
    if (full < D) gradDx8<true>(dyr, xr, gamma, dxr, full, tail, mv, rv, av, bv);
  }
}

// One row of D: rstd = 1/√(mean(x²) + eps), y = x·rstd·gamma.
void rmsNormRow(const float* x, const float* gamma, float* y, long D, float eps, float* rstdOut) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  long j = 0;
  for (; j + 16 <= D; j += 16) {
    const __m256 v0 = _mm256_loadu_ps(x + j);
    const __m256 v1 = _mm256_loadu_ps(x + j + 8);
    a0 = _mm256_fmadd_ps(v0, v0, a0);
    a1 = _mm256_fmadd_ps(v1, v1, a1);
  }
  for (; j < D; j += 8) {
    const __m256 v = _mm256_maskload_ps(x + j, tailMask8(D - j));  // 0 in the unused lanes
    a0 = _mm256_fmadd_ps(v, v, a0);
  }
  const float ms = hsum8(_mm256_add_ps(a0, a1)) / static_cast<float>(D);
  const float rstd = 1.f / std::sqrt(ms + eps);
  const __m256 rv = _mm256_set1_ps(rstd);
  for (j = 0; j + 8 <= D; j += 8)
    _mm256_storeu_ps(y + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j), rv), _mm256_loadu_ps(gamma + j)));
  if (j < D) {
    const __m256i m = tailMask8(D - j);
    _mm256_maskstore_ps(y + j, m,
                        _mm256_mul_ps(_mm256_mul_ps(_mm256_maskload_ps(x + j, m), rv), _mm256_maskload_ps(gamma + j, m)));
  }
  *rstdOut = rstd;
}

void rmsNormRun(const float* x, const float* gamma, float* y, float* rstd, long rows, long D, float eps) {
  parallelFor(rows, std::max(1L, kGrainRows / D), [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) rmsNormRow(x + r * D, gamma, y + r * D, D, eps, rstd + r);
  });
}

// RMSNorm's pass 1 of a row at column j: Σ g·xhat (g = dy·gamma) and the row's share of dgamma.
template <bool TAIL>
inline void rmsGradSums8(const float* dyr, const float* xr, const float* gamma, float* pdg, long j, __m256i m,
                         __m256 rv, __m256* sb) {
  const __m256 d = load8<TAIL>(dyr + j, m);  // 0 in a tail's unused lanes, so g is too
  const __m256 xh = _mm256_mul_ps(load8<TAIL>(xr + j, m), rv);
  const __m256 g = _mm256_mul_ps(d, load8<TAIL>(gamma + j, m));
  *sb = _mm256_fmadd_ps(g, xh, *sb);
  store8<TAIL>(pdg + j, m, _mm256_fmadd_ps(d, xh, load8<TAIL>(pdg + j, m)));
}

// RMSNorm's pass 2 at column j: dx = rstd·(g − xhat·mean(g·xhat)).
template <bool TAIL>
inline void rmsGradDx8(const float* dyr, const float* xr, const float* gamma, float* dxr, long j, __m256i m,
                       __m256 rv, __m256 bv) {
  const __m256 xh = _mm256_mul_ps(load8<TAIL>(xr + j, m), rv);
  const __m256 g = _mm256_mul_ps(load8<TAIL>(dyr + j, m), load8<TAIL>(gamma + j, m));
  store8<TAIL>(dxr + j, m, _mm256_mul_ps(rv, _mm256_fnmadd_ps(xh, bv, g)));
}

// Rows [r0, r1) of RMSNorm's gradient: dx, and dgamma accumulated (row order) into pdg (zeroed).
void rmsNormGradRows(const float* dy, const float* x, const float* gamma, const float* rstd, float* dx, float* pdg,
                     long r0, long r1, long D) {
  const float invD = 1.f / static_cast<float>(D);
  const long full = D & ~7L;
  const __m256i all = _mm256_set1_epi32(-1), tail = tailMask8(D - full);
  for (long r = r0; r < r1; r++) {
    const float* xr = x + r * D;
    const float* dyr = dy + r * D;
    float* dxr = dx + r * D;
    const __m256 rv = _mm256_set1_ps(rstd[r]);
    __m256 sb = _mm256_setzero_ps();
    for (long j = 0; j < full; j += 8) rmsGradSums8<false>(dyr, xr, gamma, pdg, j, all, rv, &sb);
    if (full < D) rmsGradSums8<true>(dyr, xr, gamma, pdg, full, tail, rv, &sb);
    const __m256 bv = _mm256_set1_ps(hsum8(sb) * invD);
    for (long j = 0; j < full; j += 8) rmsGradDx8<false>(dyr, xr, gamma, dxr, j, all, rv, bv);
    if (full < D) rmsGradDx8<true>(dyr, xr, gamma, dxr, full, tail, rv, bv);
  }
}

// AdamW's scalars broadcast to 8 lanes.
struct AdamW8 {
  __m256 gradScale, beta1, oneMinusBeta1, beta2, oneMinusBeta2, bc1, bc2, eps, decay, lr;
  explicit AdamW8(const AdamWScalars& s)
      : gradScale(_mm256_set1_ps(s.gradScale)),
        beta1(_mm256_set1_ps(s.beta1)),
        oneMinusBeta1(_mm256_set1_ps(s.oneMinusBeta1)),
        beta2(_mm256_set1_ps(s.beta2)),
        oneMinusBeta2(_mm256_set1_ps(s.oneMinusBeta2)),
        bc1(_mm256_set1_ps(s.bc1)),
        bc2(_mm256_set1_ps(s.bc2)),
        eps(_mm256_set1_ps(s.eps)),
        decay(_mm256_set1_ps(s.decay)),
        lr(_mm256_set1_ps(s.lr)) {}
};

// 8 elements of the update at i (a tail's unused lanes compute on zeros and are not stored).
template <bool TAIL>
inline void adamW8(const float* p, const float* gr, const float* m, const float* v, float* po, float* mo, float* vo,
                   long i, __m256i mask, const AdamW8& k) {
  const __m256 g = _mm256_mul_ps(load8<TAIL>(gr + i, mask), k.gradScale);
  const __m256 mn = _mm256_add_ps(_mm256_mul_ps(load8<TAIL>(m + i, mask), k.beta1), _mm256_mul_ps(g, k.oneMinusBeta1));
  const __m256 vn =
      _mm256_add_ps(_mm256_mul_ps(load8<TAIL>(v + i, mask), k.beta2), _mm256_mul_ps(_mm256_mul_ps(g, g), k.oneMinusBeta2));
  const __m256 update =
      _mm256_div_ps(_mm256_div_ps(mn, k.bc1), _mm256_add_ps(_mm256_sqrt_ps(_mm256_div_ps(vn, k.bc2)), k.eps));
  const __m256 pn = _mm256_sub_ps(_mm256_mul_ps(load8<TAIL>(p + i, mask), k.decay), _mm256_mul_ps(update, k.lr));
  store8<TAIL>(mo + i, mask, mn);
  store8<TAIL>(vo + i, mask, vn);
  store8<TAIL>(po + i, mask, pn);
}

// Elements [i0, i1) of the update.
void adamWRange(const float* param, const float* grad, const float* m, const float* v, float* paramOut, float* mOut,
                float* vOut, long i0, long i1, const AdamWScalars& s) {
  const AdamW8 k(s);
  const __m256i all = _mm256_set1_epi32(-1);
  long i = i0;
  for (; i + 8 <= i1; i += 8) adamW8<false>(param, grad, m, v, paramOut, mOut, vOut, i, all, k);
  if (i < i1) adamW8<true>(param, grad, m, v, paramOut, mOut, vOut, i, tailMask8(i1 - i), k);
}

#pragma GCC pop_options

}  // namespace

// ---- AVX-512: the same kernels on 16 lanes, tails through masks.
namespace avx512 {
namespace {
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")

// exp16, tailMask: vmath.h.
inline __m512 geluExp16(__m512 x) {
  const __m512 inner = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(kGeluC), _mm512_mul_ps(x, x)), x, x);
  return exp16(_mm512_mul_ps(inner, _mm512_set1_ps(-2.f * kSqrt2OverPi)));
}

inline __m512 gelu16(__m512 x) { return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.f), geluExp16(x))); }

inline __m512 geluDeriv16(__m512 x) {
  const __m512 e = geluExp16(x);
  const __m512 s = _mm512_div_ps(_mm512_set1_ps(1.f), _mm512_add_ps(_mm512_set1_ps(1.f), e));
  const __m512 xc = _mm512_min_ps(_mm512_set1_ps(kGeluClamp), _mm512_max_ps(_mm512_set1_ps(-kGeluClamp), x));
  const __m512 poly = _mm512_fmadd_ps(_mm512_set1_ps(3.f * kGeluC), _mm512_mul_ps(xc, xc), _mm512_set1_ps(1.f));
  const __m512 k = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(2.f * kSqrt2OverPi), xc), poly);
  return _mm512_fmadd_ps(k, _mm512_mul_ps(_mm512_mul_ps(e, s), s), s);
}

// y = f(x) elementwise on the pool, 16 lanes at a time, the tail through a mask.
template <class F>
void mapRun(const float* x, float* y, long n, long grain, F f) {
  parallelFor(n, grain, [&](long i0, long i1) {
    const float* __restrict src = x;
    float* __restrict dst = y;
    long i = i0;
    for (; i + 16 <= i1; i += 16) _mm512_storeu_ps(dst + i, f(_mm512_loadu_ps(src + i)));
    if (i < i1) {
      const __mmask16 m = tailMask(i1 - i);
      _mm512_mask_storeu_ps(dst + i, m, f(_mm512_maskz_loadu_ps(m, src + i)));
    }
  });
}

// dx = dy · f′(x) elementwise, as mapRun.
template <class F>
void gradMapRun(const float* dy, const float* x, float* dx, long n, long grain, F deriv) {
  parallelFor(n, grain, [&](long i0, long i1) {
    const float* __restrict g = dy;
    const float* __restrict src = x;
    float* __restrict dst = dx;
    long i = i0;
    for (; i + 16 <= i1; i += 16)
      _mm512_storeu_ps(dst + i, _mm512_mul_ps(_mm512_loadu_ps(g + i), deriv(_mm512_loadu_ps(src + i))));
    if (i < i1) {
      const __mmask16 m = tailMask(i1 - i);
      _mm512_mask_storeu_ps(dst + i, m,
                            _mm512_mul_ps(_mm512_maskz_loadu_ps(m, g + i), deriv(_mm512_maskz_loadu_ps(m, src + i))));
    }
  });
}

void geluRun(const float* x, float* y, long n) { mapRun(x, y, n, kGrainGelu, [](__m512 v) { return gelu16(v); }); }

void geluGradRun(const float* dy, const float* x, float* dx, long n) {
  gradMapRun(dy, x, dx, n, kGrainGelu, [](__m512 v) { return geluDeriv16(v); });
}

inline __m512 siluExp16(__m512 x) {
  return exp16(_mm512_castsi512_ps(
      _mm512_xor_si512(_mm512_castps_si512(x), _mm512_set1_epi32(static_cast<int>(0x80000000u)))));
}

inline __m512 silu16(__m512 x) {
  const __m512 xl = _mm512_max_ps(_mm512_set1_ps(-kExpLimit), x);
  return _mm512_div_ps(xl, _mm512_add_ps(_mm512_set1_ps(1.f), siluExp16(x)));
}

inline __m512 siluDeriv16(__m512 x) {
  const __m512 e = siluExp16(x);
  const __m512 s = _mm512_div_ps(_mm512_set1_ps(1.f), _mm512_add_ps(_mm512_set1_ps(1.f), e));
  const __m512 xc = _mm512_min_ps(_mm512_set1_ps(kExpLimit), _mm512_max_ps(_mm512_set1_ps(-kExpLimit), x));
  return _mm512_fmadd_ps(xc, _mm512_mul_ps(_mm512_mul_ps(e, s), s), s);
}

void siluRun(const float* x, float* y, long n) { mapRun(x, y, n, kGrainSilu, [](__m512 v) { return silu16(v); }); }

void siluGradRun(const float* dy, const float* x, float* dx, long n) {
  gradMapRun(dy, x, dx, n, kGrainSilu, [](__m512 v) { return siluDeriv16(v); });
}

void layerNormRow(const float* x, const float* gamma, const float* beta, float* y, long D, float eps, float* meanOut,
                  float* rstdOut) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  long j = 0;
  for (; j + 32 <= D; j += 32) {
    a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + j));
    a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + j + 16));
  }
  for (; j < D; j += 16) a0 = _mm512_add_ps(a0, _mm512_maskz_loadu_ps(tailMask(D - j), x + j));
  const float mean = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) / static_cast<float>(D);
  const __m512 mv = _mm512_set1_ps(mean);
  a0 = _mm512_setzero_ps();
  a1 = _mm512_setzero_ps();
  for (j = 0; j + 32 <= D; j += 32) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + j), mv);
    const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + j + 16), mv);
    a0 = _mm512_fmadd_ps(d0, d0, a0);
    a1 = _mm512_fmadd_ps(d1, d1, a1);
  }
  for (; j < D; j += 16) {
    const __mmask16 m = tailMask(D - j);
    const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + j), mv);
    a0 = _mm512_fmadd_ps(d, d, a0);
  }
  const float var = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) / static_cast<float>(D);
  const float rstd = 1.f / std::sqrt(var + eps);
  const __m512 rv = _mm512_set1_ps(rstd);
  for (j = 0; j < D; j += 16) {
    const __mmask16 m = tailMask(D - j);
    const __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + j), mv), rv);
    _mm512_mask_storeu_ps(y + j, m,
                          _mm512_fmadd_ps(xh, _mm512_maskz_loadu_ps(m, gamma + j), _mm512_maskz_loadu_ps(m, beta + j)));
  }
  *meanOut = mean;
  *rstdOut = rstd;
}

void layerNormRun(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                  long rows, long D, float eps) {
  parallelFor(rows, std::max(1L, kGrainRows / D), [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) layerNormRow(x + r * D, gamma, beta, y + r * D, D, eps, mean + r, rstd + r);
  });
}

void layerNormGradRows(const float* dy, const float* x, const float* gamma, const float* mean, const float* rstd,
                       float* dx, float* pdg, float* pdb, long r0, long r1, long D) {
  const float invD = 1.f / static_cast<float>(D);
  for (long r = r0; r < r1; r++) {
    const float* xr = x + r * D;
    const float* dyr = dy + r * D;
    float* dxr = dx + r * D;
    const __m512 mv = _mm512_set1_ps(mean[r]), rv = _mm512_set1_ps(rstd[r]);
    __m512 sa = _mm512_setzero_ps(), sb = _mm512_setzero_ps();
    for (long j = 0; j < D; j += 16) {
      const __mmask16 m = tailMask(D - j);
      const __m512 d = _mm512_maskz_loadu_ps(m, dyr + j);
      const __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + j), mv), rv);
      const __m512 g = _mm512_mul_ps(d, _mm512_maskz_loadu_ps(m, gamma + j));
      sa = _mm512_add_ps(sa, g);
      sb = _mm512_fmadd_ps(g, xh, sb);
      _mm512_mask_storeu_ps(pdg + j, m, _mm512_fmadd_ps(d, xh, _mm512_maskz_loadu_ps(m, pdg + j)));
      _mm512_mask_storeu_ps(pdb + j, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, pdb + j), d));
    }
    const __m512 av = _mm512_set1_ps(_mm512_reduce_add_ps(sa) * invD);
    const __m512 bv = _mm512_set1_ps(_mm512_reduce_add_ps(sb) * invD);
    for (long j = 0; j < D; j += 16) {
      const __mmask16 m = tailMask(D - j);
      const __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + j), mv), rv);
      const __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dyr + j), _mm512_maskz_loadu_ps(m, gamma + j));
      _mm512_mask_storeu_ps(dxr + j, m, _mm512_mul_ps(rv, _mm512_fnmadd_ps(xh, bv, _mm512_sub_ps(g, av))));
    }
  }
}

void rmsNormRow(const float* x, const float* gamma, float* y, long D, float eps, float* rstdOut) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  long j = 0;
  for (; j + 32 <= D; j += 32) {
    const __m512 v0 = _mm512_loadu_ps(x + j);
    const __m512 v1 = _mm512_loadu_ps(x + j + 16);
    a0 = _mm512_fmadd_ps(v0, v0, a0);
    a1 = _mm512_fmadd_ps(v1, v1, a1);
  }
  for (; j < D; j += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(tailMask(D - j), x + j);
    a0 = _mm512_fmadd_ps(v, v, a0);
  }
  const float ms = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) / static_cast<float>(D);
  const float rstd = 1.f / std::sqrt(ms + eps);
  const __m512 rv = _mm512_set1_ps(rstd);
  for (j = 0; j < D; j += 16) {
    const __mmask16 m = tailMask(D - j);
    _mm512_mask_storeu_ps(
        y + j, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + j), rv), _mm512_maskz_loadu_ps(m, gamma + j)));
  }
  *rstdOut = rstd;
}

void rmsNormRun(const float* x, const float* gamma, float* y, float* rstd, long rows, long D, float eps) {
  parallelFor(rows, std::max(1L, kGrainRows / D), [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) rmsNormRow(x + r * D, gamma, y + r * D, D, eps, rstd + r);
  });
}

void rmsNormGradRows(const float* dy, const float* x, const float* gamma, const float* rstd, float* dx, float* pdg,
                     long r0, long r1, long D) {
  const float invD = 1.f / static_cast<float>(D);
  for (long r = r0; r < r1; r++) {
    const float* xr = x + r * D;
    const float* dyr = dy + r * D;
    float* dxr = dx + r * D;
    const __m512 rv = _mm512_set1_ps(rstd[r]);
    __m512 sb = _mm512_setzero_ps();
    for (long j = 0; j < D; j += 16) {
      const __mmask16 m = tailMask(D - j);
      const __m512 d = _mm512_maskz_loadu_ps(m, dyr + j);
      const __m512 xh = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + j), rv);
      const __m512 g = _mm512_mul_ps(d, _mm512_maskz_loadu_ps(m, gamma + j));
      sb = _mm512_fmadd_ps(g, xh, sb);
      _mm512_mask_storeu_ps(pdg + j, m, _mm512_fmadd_ps(d, xh, _mm512_maskz_loadu_ps(m, pdg + j)));
    }
    const __m512 bv = _mm512_set1_ps(_mm512_reduce_add_ps(sb) * invD);
    for (long j = 0; j < D; j += 16) {
      const __mmask16 m = tailMask(D - j);
      const __m512 xh = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + j), rv);
      const __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dyr + j), _mm512_maskz_loadu_ps(m, gamma + j));
      _mm512_mask_storeu_ps(dxr + j, m, _mm512_mul_ps(rv, _mm512_fnmadd_ps(xh, bv, g)));
    }
  }
}

struct AdamW16 {
  __m512 gradScale, beta1, oneMinusBeta1, beta2, oneMinusBeta2, bc1, bc2, eps, decay, lr;
  explicit AdamW16(const AdamWScalars& s)
      : gradScale(_mm512_set1_ps(s.gradScale)),
        beta1(_mm512_set1_ps(s.beta1)),
        oneMinusBeta1(_mm512_set1_ps(s.oneMinusBeta1)),
        beta2(_mm512_set1_ps(s.beta2)),
        oneMinusBeta2(_mm512_set1_ps(s.oneMinusBeta2)),
        bc1(_mm512_set1_ps(s.bc1)),
        bc2(_mm512_set1_ps(s.bc2)),
        eps(_mm512_set1_ps(s.eps)),
        decay(_mm512_set1_ps(s.decay)),
        lr(_mm512_set1_ps(s.lr)) {}
};

// The same operations as the AVX2 adamW8, on the lanes of mask (the others read as 0, not stored).
inline void adamW16(const float* p, const float* gr, const float* m, const float* v, float* po, float* mo, float* vo,
                    long i, __mmask16 mask, const AdamW16& k) {
  const __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, gr + i), k.gradScale);
  const __m512 mn =
      _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(mask, m + i), k.beta1), _mm512_mul_ps(g, k.oneMinusBeta1));
  const __m512 vn = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(mask, v + i), k.beta2),
                                  _mm512_mul_ps(_mm512_mul_ps(g, g), k.oneMinusBeta2));
  const __m512 update =
      _mm512_div_ps(_mm512_div_ps(mn, k.bc1), _mm512_add_ps(_mm512_sqrt_ps(_mm512_div_ps(vn, k.bc2)), k.eps));
  const __m512 pn =
      _mm512_sub_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(mask, p + i), k.decay), _mm512_mul_ps(update, k.lr));
  _mm512_mask_storeu_ps(mo + i, mask, mn);
  _mm512_mask_storeu_ps(vo + i, mask, vn);
  _mm512_mask_storeu_ps(po + i, mask, pn);
}

void adamWRange(const float* param, const float* grad, const float* m, const float* v, float* paramOut, float* mOut,
                float* vOut, long i0, long i1, const AdamWScalars& s) {
  const AdamW16 k(s);
  long i = i0;
  for (; i + 16 <= i1; i += 16) adamW16(param, grad, m, v, paramOut, mOut, vOut, i, (__mmask16)0xFFFF, k);
  if (i < i1) adamW16(param, grad, m, v, paramOut, mOut, vOut, i, tailMask(i1 - i), k);
}

#pragma GCC pop_options
}  // namespace
}  // namespace avx512

void gelu(const float* x, float* y, long n) {
  if (n <= 0) return;
  if (simdWidth() == 512) {
    avx512::geluRun(x, y, n);
  } else {
    geluRun(x, y, n);
  }
}

void geluGrad(const float* dy, const float* x, float* dx, long n) {
  if (n <= 0) return;
  if (simdWidth() == 512) {
    avx512::geluGradRun(dy, x, dx, n);
  } else {
    geluGradRun(dy, x, dx, n);
  }
}

void layerNorm(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd, long rows,
               long cols, float eps) {
  if (rows <= 0 || cols <= 0) return;
  if (simdWidth() == 512) {
    avx512::layerNormRun(x, gamma, beta, y, mean, rstd, rows, cols, eps);
  } else {
    layerNormRun(x, gamma, beta, y, mean, rstd, rows, cols, eps);
  }
}

namespace {

// The row partition of a norm's gradient (see the top of the file): runs rowsFn(r0, r1, partial) over chunks
// of consecutive rows, each with its own zeroed partial buffer of NSUMS × cols floats (sum k at k·cols) to
// accumulate into, and writes the per-column sums of the chunks' partials, added in chunk order, to sums[k].
// rows 0 gives zeros.
template <int NSUMS, typename RowsFn>
void rowChunkedSums(long rows, long cols, float* const (&sums)[NSUMS], const RowsFn& rowsFn) {
  const size_t rowBytes = static_cast<size_t>(cols) * sizeof(float);
  if (rows <= 0) {
    for (float* out : sums) std::memset(out, 0, rowBytes);
    return;
  }
  // The partition depends on the shape only.
  long chunks = (rows * cols + kGradChunkElems - 1) / kGradChunkElems;
  chunks = std::max(1L, std::min(std::min(chunks, kGradMaxChunks), rows));
  const long rowsPer = (rows + chunks - 1) / chunks;
  chunks = (rows + rowsPer - 1) / rowsPer;
  const long stride = NSUMS * cols;
  std::unique_ptr<float[]> partial(new float[static_cast<size_t>(chunks) * static_cast<size_t>(stride)]);
  parallelFor(chunks, 1, [&](long c0, long c1) {
    for (long c = c0; c < c1; c++) {
      float* p = partial.get() + c * stride;
      std::memset(p, 0, NSUMS * rowBytes);
      const long r0 = c * rowsPer, r1 = std::min(rows, r0 + rowsPer);
      rowsFn(r0, r1, p);
    }
  });
  // Chunk 0 + chunk 1 + ... in that order, for every column.
  for (int k = 0; k < NSUMS; k++) std::memcpy(sums[k], partial.get() + k * cols, rowBytes);
  for (long c = 1; c < chunks; c++) {
    for (int k = 0; k < NSUMS; k++) {
      const float* p = partial.get() + c * stride + k * cols;
      float* out = sums[k];
      for (long j = 0; j < cols; j++) out[j] += p[j];
    }
  }
}

}  // namespace

void layerNormGrad(const float* dy, const float* x, const float* gamma, const float* mean, const float* rstd,
                   float* dx, float* dgamma, float* dbeta, long rows, long cols) {
  if (cols <= 0) return;
  const bool wide = simdWidth() == 512;
  float* const sums[2] = {dgamma, dbeta};
  rowChunkedSums(rows, cols, sums, [&](long r0, long r1, float* p) {
    if (wide) {
      avx512::layerNormGradRows(dy, x, gamma, mean, rstd, dx, p, p + cols, r0, r1, cols);
    } else {
      layerNormGradRows(dy, x, gamma, mean, rstd, dx, p, p + cols, r0, r1, cols);
    }
  });
}

void silu(const float* x, float* y, long n) {
  if (n <= 0) return;
  if (simdWidth() == 512) {
    avx512::siluRun(x, y, n);
  } else {
    siluRun(x, y, n);
  }
}

void siluGrad(const float* dy, const float* x, float* dx, long n) {
  if (n <= 0) return;
  if (simdWidth() == 512) {
    avx512::siluGradRun(dy, x, dx, n);
  } else {
    siluGradRun(dy, x, dx, n);
  }
}

void rmsNorm(const float* x, const float* gamma, float* y, float* rstd, long rows, long cols, float eps) {
  if (rows <= 0 || cols <= 0) return;
  if (simdWidth() == 512) {
    avx512::rmsNormRun(x, gamma, y, rstd, rows, cols, eps);
  } else {
    rmsNormRun(x, gamma, y, rstd, rows, cols, eps);
  }
}

void rmsNormGrad(const float* dy, const float* x, const float* gamma, const float* rstd, float* dx, float* dgamma,
                 long rows, long cols) {
  if (cols <= 0) return;
  const bool wide = simdWidth() == 512;
  float* const sums[1] = {dgamma};
  rowChunkedSums(rows, cols, sums, [&](long r0, long r1, float* p) {
    if (wide) {
      avx512::rmsNormGradRows(dy, x, gamma, rstd, dx, p, r0, r1, cols);
    } else {
      rmsNormGradRows(dy, x, gamma, rstd, dx, p, r0, r1, cols);
    }
  });
}

void adamW(const float* param, const float* grad, const float* m, const float* v, float* paramOut, float* mOut,
           float* vOut, long n, const AdamWHyper& h) {
  if (n <= 0) return;
  // Each scalar operand as tfjs makes it: the JavaScript (double) expression, rounded to float32.
  const AdamWScalars s{static_cast<float>(h.gradScale),
                       static_cast<float>(h.beta1),
                       static_cast<float>(1.0 - h.beta1),
                       static_cast<float>(h.beta2),
                       static_cast<float>(1.0 - h.beta2),
                       static_cast<float>(h.biasCorrection1),
                       static_cast<float>(h.biasCorrection2),
                       static_cast<float>(h.epsilon),
                       static_cast<float>(1.0 - h.lr * h.weightDecay),
                       static_cast<float>(h.lr)};
  const bool wide = simdWidth() == 512;
  const auto range = [&](long i0, long i1) {
    if (wide) {
      avx512::adamWRange(param, grad, m, v, paramOut, mOut, vOut, i0, i1, s);
    } else {
      adamWRange(param, grad, m, v, paramOut, mOut, vOut, i0, i1, s);
    }
  };
  if (n <= kGrainAdamW) {
    range(0, n);  // one chunk: no pool hand-off
  } else {
    parallelFor(n, kGrainAdamW, range);
  }
}

}  // namespace quorum
