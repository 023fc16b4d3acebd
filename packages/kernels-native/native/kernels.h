// Kernel entry points. All AVX2/FMA and AVX-512 code lives in functions compiled with a target
// attribute, so the addon loads on any x86-64; callers check cpuHasAvx2Fma() before calling any of
// them, and the AVX-512 paths run only when cpuHasAvx512() (see setSimdWidth).
#pragma once
#include <cstddef>
#include <cstdint>

namespace quorum {

bool cpuHasAvx2Fma();
bool cpuHasAvx512();
// The vector width of the GEMM, exp, tanh, softmax and the fused kernels (GELU, SiLU, LayerNorm, RMSNorm,
// AdamW): 512 (AVX-512, the default where the CPU has it) or 256 (AVX2).
int simdWidth();
// Chooses 512 or 256 (512 only where the CPU has AVX-512); returns the width now in use.
int setSimdWidth(int bits);

enum Activation : int { kLinear = 0, kRelu = 1, kRelu6 = 2, kLeakyRelu = 3, kSigmoid = 4, kElu = 5 };

struct GemmArgs {
  const float* a;
  const float* b;
  float* c;
  long batch;            // output batch count
  const int32_t* aIdx;   // batch -> A matrix index (nullptr: i % batchA)
  const int32_t* bIdx;   // batch -> B matrix index (nullptr: i % batchB)
  long batchA, batchB;
  int M, N, K;
  bool transA, transB;
  const float* bias;     // nullptr, or N values (per column), or 1 value when biasScalar
  bool biasScalar;
  int activation;        // Activation
  float alpha;           // leakyrelu slope
};

// C[i] = act(op(A[aIdx[i]]) · op(B[bIdx[i]]) + bias), row-major, using the thread pool.
void gemm(const GemmArgs& args);

// ---- elementwise and reductions (ops.cc) ----
enum BinaryOp : int { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3, kMax = 4, kMin = 5 };
enum UnaryOp : int { kExp = 0, kTanh = 1, kSquare = 2, kSqrt = 3, kRsqrt = 4, kNeg = 5 };
constexpr int kLastBinaryOp = kMin;
constexpr int kLastUnaryOp = kNeg;

// out = a op b with numpy broadcasting, given up to 8-D shapes already broadcast-aligned:
// shape[d] is the output shape, aStride/bStride are element strides (0 on broadcast axes).
void binary(int op, const float* a, const float* b, float* out, int rank, const long* shape,
            const long* aStride, const long* bStride);
void unary(int op, const float* x, float* out, long n);
// x viewed as [outer, red, inner]; out[o, i] = sum_r x[o, r, i] (scale applied after: mean).
void reduceSum(const float* x, float* out, long outer, long red, long inner, float scale);
// x viewed as [outer, red, inner]; out[o, i] = max_r x[o, r, i].
void reduceMax(const float* x, float* out, long outer, long red, long inner);
// softmax over the last axis of x viewed as [rows, cols].
void softmax(const float* x, float* out, long rows, long cols);

// ---- fused GELU, SiLU, LayerNorm and RMSNorm (fused.cc; contract: packages/core/src/fused-kernels.ts) ----
// y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))) over n elements.
void gelu(const float* x, float* y, long n);
// dx = dy · gelu′(x) over n elements.
void geluGrad(const float* dy, const float* x, float* dx, long n);
// x viewed as [rows, cols]: mean[r], rstd[r] = 1/√(biased var + eps), y = (x − mean)·rstd·gamma + beta.
void layerNorm(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd, long rows,
               long cols, float eps);
// The gradient of layerNorm given mean and rstd: dx [rows, cols], dgamma [cols], dbeta [cols]
// (dgamma and dbeta summed in a fixed order: the same bits on every call).
void layerNormGrad(const float* dy, const float* x, const float* gamma, const float* mean, const float* rstd,
                   float* dx, float* dgamma, float* dbeta, long rows, long cols);
// y = x·σ(x) over n elements.
void silu(const float* x, float* y, long n);
// dx = dy · σ(x)·(1 + x·(1 − σ(x))) over n elements.
void siluGrad(const float* dy, const float* x, float* dx, long n);
// x viewed as [rows, cols]: rstd[r] = 1/√(mean(x²) + eps), y = x·rstd·gamma.
void rmsNorm(const float* x, const float* gamma, float* y, float* rstd, long rows, long cols, float eps);
// The gradient of rmsNorm given rstd: dx [rows, cols], dgamma [cols] (summed in a fixed order: the same bits
// on every call).
void rmsNormGrad(const float* dy, const float* x, const float* gamma, const float* rstd, float* dx, float* dgamma,
                 long rows, long cols);

// ---- fused AdamW update (fused.cc; torch.optim.AdamW, the QuorumAdamW kernel) ----
// The hyperparameters as JavaScript numbers (doubles); adamW rounds them to float32 the way the
// composed stock ops do (a scalar operand such as 1 − beta1 is computed in double, then rounded).
struct AdamWHyper {
  double lr, beta1, beta2, epsilon, weightDecay, biasCorrection1, biasCorrection2, gradScale;
};
// Over n elements, in float32 and in the order of the composed ops (no FMA contraction):
//   g = grad·gradScale,  mOut = m·β1 + g·(1 − β1),  vOut = v·β2 + g²·(1 − β2)
//   pOut = param·(1 − lr·wd) − ((mOut / bc1) / (√(vOut / bc2) + ε))·lr
// The outputs must not overlap the inputs. Elementwise: the same bits with any thread count and width.
void adamW(const float* param, const float* grad, const float* m, const float* v, float* paramOut, float* mOut,
           float* vOut, long n, const AdamWHyper& h);

// ---- data movement on 4-byte elements (copy.cc) ----
// out (contiguous, `shape`) [i_0..i_r] = x[offset + sum_d i_d * stride[d]]: transposes, slices.
void stridedCopy(const void* x, void* out, int rank, const long* shape, const long* stride, long offset);
// x viewed as [outer, dim, inner]; out[o, i, :] = x[o, idx[i], :] (indices already checked).
void gatherRows(const void* x, const int32_t* idx, void* out, long outer, long dim, long nIdx, long inner);
// out[s, :] = sum of x[i, :] over i with ids[i] == s (ids outside [0, numSegments) are skipped).
void segmentSum(const float* x, const int32_t* ids, float* out, long nIds, long inner, long numSegments);

}  // namespace quorum
