// Elementwise and reduction kernels (AVX2/FMA, split over the thread pool when large): broadcasting
// binary ops, unary math, sums and maxima over one contiguous axis range, softmax over the last axis.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels.h"
#include "pool.h"
#include "vmath.h"

namespace quorum {

namespace {

#pragma GCC push_options
#pragma GCC target("avx2,fma")

// Elements per chunk handed to a thread: below one chunk a kernel runs on the calling thread alone
// (waking another costs more than it saves).
constexpr long kGrainLight = 1 << 14;  // add, mul, copies: memory-bound
constexpr long kGrainHeavy = 1 << 12;  // exp, tanh, softmax: compute-bound

// exp8, tanh8, hsum8, hmax8: vmath.h.
template <int OP>
inline __m256 apply8(__m256 a, __m256 b) {
  if (OP == kAdd) return _mm256_add_ps(a, b);
  if (OP == kSub) return _mm256_sub_ps(a, b);
  if (OP == kMul) return _mm256_mul_ps(a, b);
  if (OP == kDiv) return _mm256_div_ps(a, b);
  if (OP == kMax) return _mm256_max_ps(a, b);
  return _mm256_min_ps(a, b);
}
template <int OP>
inline float apply1(float a, float b) {
  if (OP == kAdd) return a + b;
  if (OP == kSub) return a - b;
  if (OP == kMul) return a * b;
  if (OP == kDiv) return a / b;
  if (OP == kMax) return a > b ? a : b;
  return a < b ? a : b;
}

// One innermost row: out[j] = a[j*as] op b[j*bs] with as, bs in {0, 1}.
template <int OP>
void binaryRow(const float* a, long as, const float* b, long bs, float* out, long n) {
  long j = 0;
  if (as == 1 && bs == 1) {
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(out + j, apply8<OP>(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j)));
    for (; j < n; j++) out[j] = apply1<OP>(a[j], b[j]);
  } else if (as == 1 && bs == 0) {
    const __m256 vb = _mm256_set1_ps(b[0]);
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(out + j, apply8<OP>(_mm256_loadu_ps(a + j), vb));
    for (; j < n; j++) out[j] = apply1<OP>(a[j], b[0]);
  } else if (as == 0 && bs == 1) {
    const __m256 va = _mm256_set1_ps(a[0]);
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(out + j, apply8<OP>(va, _mm256_loadu_ps(b + j)));
    for (; j < n; j++) out[j] = apply1<OP>(a[0], b[j]);
  } else {
    for (; j < n; j++) out[j] = apply1<OP>(a[j * as], b[j * bs]);
  }
}

template <int OP>
void binaryT(const float* a, const float* b, float* out, int rank, const long* shape, const long* aStride,
             const long* bStride) {
  const long inner = shape[rank - 1];
  long rows = 1;
  for (int d = 0; d < rank - 1; d++) rows *= shape[d];
  const long as = aStride[rank - 1], bs = bStride[rank - 1];
  if (rows == 1) {  // one long row: split it
    parallelFor(inner, kGrainLight, [&](long j0, long j1) {
      binaryRow<OP>(a + j0 * as, as, b + j0 * bs, bs, out + j0, j1 - j0);
    });
    return;
  }
  parallelFor(rows, std::max(1L, kGrainLight / std::max(1L, inner)), [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) {
      long rem = r, ao = 0, bo = 0;
      for (int d = rank - 2; d >= 0; d--) {
        const long i = rem % shape[d];
        rem /= shape[d];
        ao += i * aStride[d];
        bo += i * bStride[d];
      }
      binaryRow<OP>(a + ao, as, b + bo, bs, out + r * inner, inner);
    }
  });
}

template <int OP>
inline __m256 unary8(__m256 x) {
  if (OP == kExp) return exp8(x);
  if (OP == kTanh) return tanh8(x);
  if (OP == kSquare) return _mm256_mul_ps(x, x);
  if (OP == kSqrt) return _mm256_sqrt_ps(x);
  if (OP == kRsqrt) return _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_sqrt_ps(x));
  return _mm256_xor_ps(x, _mm256_set1_ps(-0.f));  // kNeg
}

template <int OP>
void unaryT(const float* x, float* out, long n) {
  const bool heavy = OP == kExp || OP == kTanh;
  parallelFor(n, heavy ? kGrainHeavy : kGrainLight, [&](long i0, long i1) {
    // Local copies: the vector stores may alias anything, including the lambda's captures, which
    // would otherwise be reloaded after every store.
    const float* __restrict src = x;
    float* __restrict dst = out;
    long i = i0;
    for (; i + 8 <= i1; i += 8) _mm256_storeu_ps(dst + i, unary8<OP>(_mm256_loadu_ps(src + i)));
    if (i < i1) {  // tail through a padded vector, so every element takes the same code path
      alignas(32) float tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (long k = i; k < i1; k++) tmp[k - i] = x[k];
      _mm256_store_ps(tmp, unary8<OP>(_mm256_load_ps(tmp)));
      for (long k = i; k < i1; k++) out[k] = tmp[k - i];
    }
  });
}

float rowSum(const float* x, long n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  long j = 0;
  for (; j + 32 <= n; j += 32) {
    s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + j));
    s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + j + 8));
    s2 = _mm256_add_ps(s2, _mm256_loadu_ps(x + j + 16));
    s3 = _mm256_add_ps(s3, _mm256_loadu_ps(x + j + 24));
  }
  for (; j + 8 <= n; j += 8) s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + j));
  float s = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; j < n; j++) s += x[j];
  return s;
}

float rowMax(const float* x, long n) {
  __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
  long j = 0;
  for (; j + 16 <= n; j += 16) {
    m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + j));
    m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + j + 8));
  }
  for (; j + 8 <= n; j += 8) m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + j));
  float m = hmax8(_mm256_max_ps(m0, m1));
  for (; j < n; j++) m = x[j] > m ? x[j] : m;
  return m;
}

// out[0:w] = sum (or max) over r < red of src[r*inner + 0:w], w <= 64, accumulated in registers.
template <bool MAX>
void columnBlock(const float* src, long red, long inner, float* dst, long w) {
  const __m256 init = MAX ? _mm256_set1_ps(-INFINITY) : _mm256_setzero_ps();
  if (w == 64) {
    __m256 acc[8];
    for (int v = 0; v < 8; v++) acc[v] = init;
    for (long r = 0; r < red; r++) {
      const float* row = src + r * inner;
      for (int v = 0; v < 8; v++)
        acc[v] = MAX ? _mm256_max_ps(acc[v], _mm256_loadu_ps(row + 8 * v)) : _mm256_add_ps(acc[v], _mm256_loadu_ps(row + 8 * v));
    }
    for (int v = 0; v < 8; v++) _mm256_storeu_ps(dst + 8 * v, acc[v]);
    return;
  }
  for (long i = 0; i < w; i++) dst[i] = MAX ? -INFINITY : 0.f;
  for (long r = 0; r < red; r++) {
    const float* row = src + r * inner;
    for (long i = 0; i < w; i++) dst[i] = MAX ? (row[i] > dst[i] ? row[i] : dst[i]) : dst[i] + row[i];
  }
}

template <bool MAX>
void reduceT(const float* x, float* out, long outer, long red, long inner, float scale) {
  if (inner == 1) {
    parallelFor(outer, std::max(1L, kGrainLight / red), [&](long o0, long o1) {
      for (long o = o0; o < o1; o++) out[o] = MAX ? rowMax(x + o * red, red) : rowSum(x + o * red, red) * scale;
    });
    return;
  }
  // Column reductions: blocks of 64 output columns, each reduced over `red` rows in registers.
  constexpr long kBlock = 64;
  const long blocksPerRow = (inner + kBlock - 1) / kBlock;
  const long work = outer * blocksPerRow;
  parallelFor(work, std::max(1L, kGrainLight / (red * kBlock)), [&](long w0, long w1) {
    for (long w = w0; w < w1; w++) {
      const long o = w / blocksPerRow, c0 = (w % blocksPerRow) * kBlock, c1 = std::min(inner, c0 + kBlock);
      float* dst = out + o * inner + c0;
      columnBlock<MAX>(x + o * red * inner + c0, red, inner, dst, c1 - c0);
      if (!MAX && scale != 1.f)
        for (long i = 0; i < c1 - c0; i++) dst[i] *= scale;
    }
  });
}

void softmaxRun(const float* x, float* out, long rows, long cols) {
  parallelFor(rows, std::max(1L, kGrainHeavy / cols), [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) {
      const float* xr = x + r * cols;
      float* yr = out + r * cols;
      const float m = rowMax(xr, cols);
      const __m256 mv = _mm256_set1_ps(m);
      __m256 vs = _mm256_setzero_ps();
      long j = 0;
      for (; j + 8 <= cols; j += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(xr + j), mv));
        _mm256_storeu_ps(yr + j, e);
        vs = _mm256_add_ps(vs, e);
      }
      float s = hsum8(vs);
      if (j < cols) {
        alignas(32) float tmp[8];
        for (long k = 0; k < 8; k++) tmp[k] = j + k < cols ? xr[j + k] - m : -100.f;
        _mm256_store_ps(tmp, exp8(_mm256_load_ps(tmp)));
        for (long k = j; k < cols; k++) {
          yr[k] = tmp[k - j];
          s += tmp[k - j];
        }
      }
      const __m256 inv = _mm256_set1_ps(1.f / s);
      for (j = 0; j + 8 <= cols; j += 8) _mm256_storeu_ps(yr + j, _mm256_mul_ps(_mm256_loadu_ps(yr + j), inv));
      for (; j < cols; j++) yr[j] *= 1.f / s;
    }
  });
}

#pragma GCC pop_options

}  // namespace

// ---- AVX-512 versions of the compute-bound kernels (exp, tanh, softmax), where the CPU has it: the
// same Cephes approximations on 16 lanes, tails through masks.
namespace avx512 {
namespace {
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")

// exp16, tanh16, tailMask: vmath.h.
template <bool TANH>
void unaryRun(const float* x, float* out, long n) {
  parallelFor(n, kGrainHeavy, [&](long i0, long i1) {
    const float* __restrict src = x;  // local copies (see unaryT)
    float* __restrict dst = out;
    for (long i = i0; i < i1; i += 16) {
      const __mmask16 m = tailMask(i1 - i);
      const __m512 v = _mm512_maskz_loadu_ps(m, src + i);
      _mm512_mask_storeu_ps(dst + i, m, TANH ? tanh16(v) : exp16(v));
    }
  });
}

void softmaxRun(const float* x, float* out, long rows, long cols) {
  parallelFor(rows, std::max(1L, kGrainHeavy / cols), [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) {
      const float* xr = x + r * cols;
      float* yr = out + r * cols;
      __m512 vm = _mm512_set1_ps(-INFINITY);
      for (long j = 0; j < cols; j += 16)
        vm = _mm512_max_ps(vm, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tailMask(cols - j), xr + j));
      const __m512 mv = _mm512_set1_ps(_mm512_reduce_max_ps(vm));
      __m512 vs = _mm512_setzero_ps();
      for (long j = 0; j < cols; j += 16) {
        const __mmask16 m = tailMask(cols - j);
        const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + j), mv));
        _mm512_mask_storeu_ps(yr + j, m, e);
        vs = _mm512_mask_add_ps(vs, m, vs, e);
      }
      const __m512 inv = _mm512_set1_ps(1.f / _mm512_reduce_add_ps(vs));
      for (long j = 0; j < cols; j += 16) {
        const __mmask16 m = tailMask(cols - j);
        _mm512_mask_storeu_ps(yr + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, yr + j), inv));
      }
    }
  });
}

#pragma GCC pop_options
}  // namespace
}  // namespace avx512

void binary(int op, const float* a, const float* b, float* out, int rank, const long* shape, const long* aStride,
            const long* bStride) {
  switch (op) {
    case kAdd:
      return binaryT<kAdd>(a, b, out, rank, shape, aStride, bStride);
    case kSub:
      return binaryT<kSub>(a, b, out, rank, shape, aStride, bStride);
    case kMul:
      return binaryT<kMul>(a, b, out, rank, shape, aStride, bStride);
    case kDiv:
      return binaryT<kDiv>(a, b, out, rank, shape, aStride, bStride);
    case kMax:
      return binaryT<kMax>(a, b, out, rank, shape, aStride, bStride);
    default:
      return binaryT<kMin>(a, b, out, rank, shape, aStride, bStride);
  }
}
void unary(int op, const float* x, float* out, long n) {
  switch (op) {
    case kExp:
      return simdWidth() == 512 ? avx512::unaryRun<false>(x, out, n) : unaryT<kExp>(x, out, n);
    case kTanh:
      return simdWidth() == 512 ? avx512::unaryRun<true>(x, out, n) : unaryT<kTanh>(x, out, n);
    case kSquare:
      return unaryT<kSquare>(x, out, n);
    case kSqrt:
      return unaryT<kSqrt>(x, out, n);
    case kRsqrt:
      return unaryT<kRsqrt>(x, out, n);
    default:
      return unaryT<kNeg>(x, out, n);
  }
}
void reduceSum(const float* x, float* out, long outer, long red, long inner, float scale) {
  reduceT<false>(x, out, outer, red, inner, scale);
}
void reduceMax(const float* x, float* out, long outer, long red, long inner) {
  reduceT<true>(x, out, outer, red, inner, 1.f);
}
void softmax(const float* x, float* out, long rows, long cols) {
  if (simdWidth() == 512) {
    avx512::softmaxRun(x, out, rows, cols);
  } else {
    softmaxRun(x, out, rows, cols);
  }
}

}  // namespace quorum
