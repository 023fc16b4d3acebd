// Kernel entry points. All AVX2/FMA code lives in functions compiled with a target attribute, so the
// addon loads on any x86-64; callers check cpuHasAvx2Fma() before calling any of them.
#pragma once
#include <cstddef>
#include <cstdint>

namespace quorum {

bool cpuHasAvx2Fma();

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
enum BinaryOp : int { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3 };
enum UnaryOp : int { kExp = 0, kTanh = 1 };

// out = a op b with numpy broadcasting, given up to 6-D shapes already broadcast-aligned:
// shape[d] is the output shape, aStride/bStride are element strides (0 on broadcast axes).
void binary(int op, const float* a, const float* b, float* out, int rank, const long* shape,
            const long* aStride, const long* bStride);
void unary(int op, const float* x, float* out, long n);
// x viewed as [outer, red, inner]; out[o, i] = sum_r x[o, r, i] (scale applied after: mean).
void reduceSum(const float* x, float* out, long outer, long red, long inner, float scale);
// softmax over the last axis of x viewed as [rows, cols].
void softmax(const float* x, float* out, long rows, long cols);

}  // namespace quorum
