// N-API surface of the addon. Every kernel works in place on Float32Array views (in tfjs-wasm's
// heap), checks its arguments' sizes, and refuses to run when the CPU lacks AVX2/FMA, so loading
// the addon is always safe and calling it on an unsupported CPU is a JS exception, never SIGILL.
#include <node_api.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdint>
#include <string>

#include "kernels.h"
#include "pool.h"

namespace {

using quorum::GemmArgs;

const bool kSupported = quorum::cpuHasAvx2Fma();

bool fail(napi_env env, const std::string& message) {
  napi_throw_error(env, "E_NATIVE", message.c_str());
  return false;
}

bool requireCpu(napi_env env) {
  return kSupported || fail(env, "this CPU lacks AVX2/FMA; the native kernels cannot run here");
}

bool getArgs(napi_env env, napi_callback_info info, size_t expected, napi_value* argv, const char* fn) {
  size_t argc = expected;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return fail(env, "napi_get_cb_info failed");
  if (argc < expected) return fail(env, std::string(fn) + ": expected " + std::to_string(expected) + " arguments");
  return true;
}

bool isNullish(napi_env env, napi_value v) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  return t == napi_null || t == napi_undefined;
}

template <typename T>
bool getTyped(napi_env env, napi_value v, napi_typedarray_type want, T** ptr, size_t* len, const char* what) {
  bool isTyped = false;
  napi_is_typedarray(env, v, &isTyped);
  napi_typedarray_type type;
  void* data = nullptr;
  napi_value buffer;
  size_t offset = 0;
  if (!isTyped || napi_get_typedarray_info(env, v, &type, len, &data, &buffer, &offset) != napi_ok || type != want)
    return fail(env, std::string(what) + (want == napi_float32_array ? " must be a Float32Array" : " must be an Int32Array"));
  *ptr = static_cast<T*>(data);
  return true;
}

bool getF32(napi_env env, napi_value v, float** p, size_t* n, const char* what) {
  return getTyped(env, v, napi_float32_array, p, n, what);
}

// A Float32Array or an Int32Array (the data-movement kernels only copy 4-byte elements).
bool get4(napi_env env, napi_value v, void** p, size_t* n, const char* what) {
  bool isTyped = false;
  napi_is_typedarray(env, v, &isTyped);
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset = 0;
  if (!isTyped || napi_get_typedarray_info(env, v, &type, n, p, &buffer, &offset) != napi_ok ||
      (type != napi_float32_array && type != napi_int32_array))
    return fail(env, std::string(what) + " must be a Float32Array or an Int32Array");
  return true;
}

double getNumber(napi_env env, napi_value v) {
  double r = 0;
  napi_get_value_double(env, v, &r);
  return r;
}
long getLong(napi_env env, napi_value v) { return static_cast<long>(getNumber(env, v)); }
bool getBool(napi_env env, napi_value v) {
  bool r = false;
  if (napi_get_value_bool(env, v, &r) != napi_ok) r = getNumber(env, v) != 0;
  return r;
}

napi_value makeBool(napi_env env, bool b) {
  napi_value v;
  napi_get_boolean(env, b, &v);
  return v;
}

// cpuFeatures() -> { avx2, fma, avx512f }
napi_value CpuFeatures(napi_env env, napi_callback_info) {
  napi_value obj;
  napi_create_object(env, &obj);
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  napi_set_named_property(env, obj, "avx2", makeBool(env, __builtin_cpu_supports("avx2")));
  napi_set_named_property(env, obj, "fma", makeBool(env, __builtin_cpu_supports("fma")));
  napi_set_named_property(env, obj, "avx512f", makeBool(env, __builtin_cpu_supports("avx512f")));
#else
  napi_set_named_property(env, obj, "avx2", makeBool(env, false));
  napi_set_named_property(env, obj, "fma", makeBool(env, false));
  napi_set_named_property(env, obj, "avx512f", makeBool(env, false));
#endif
  return obj;
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!getArgs(env, info, 1, argv, "setThreads")) return nullptr;
  const long n = getLong(env, argv[0]);
  if (n < 1 || n > 256) {
    fail(env, "setThreads: threads must be between 1 and 256, got " + std::to_string(n));
    return nullptr;
  }
  quorum::setPoolThreads(static_cast<int>(n));
  return nullptr;
}

// simdWidth() -> 512 or 256; setSimdWidth(bits) -> the width now in use (512 only where the CPU has it)
napi_value SimdWidth(napi_env env, napi_callback_info) {
  napi_value v;
  napi_create_int32(env, quorum::simdWidth(), &v);
  return v;
}

napi_value SetSimdWidth(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!getArgs(env, info, 1, argv, "setSimdWidth")) return nullptr;
  const long bits = getLong(env, argv[0]);
  if (bits != 256 && bits != 512) {
    fail(env, "setSimdWidth: bits must be 256 or 512, got " + std::to_string(bits));
    return nullptr;
  }
  napi_value v;
  napi_create_int32(env, quorum::setSimdWidth(static_cast<int>(bits)), &v);
  return v;
}

napi_value GetThreads(napi_env env, napi_callback_info) {
  napi_value v;
  napi_create_int32(env, quorum::poolThreads(), &v);
  return v;
}

// matmul(a, b, out, batchA, batchB, batch, M, N, K, transA, transB, aIdx|null, bIdx|null,
//        bias|null, biasScalar, activation, alpha)
napi_value MatMul(napi_env env, napi_callback_info info) {
  napi_value argv[17];
  if (!getArgs(env, info, 17, argv, "matmul") || !requireCpu(env)) return nullptr;
  GemmArgs g{};
  float *a, *b, *c;
  size_t la, lb, lc;
  if (!getF32(env, argv[0], &a, &la, "a") || !getF32(env, argv[1], &b, &lb, "b") || !getF32(env, argv[2], &c, &lc, "out"))
    return nullptr;
  g.a = a;
  g.b = b;
  g.c = c;
  g.batchA = getLong(env, argv[3]);
  g.batchB = getLong(env, argv[4]);
  g.batch = getLong(env, argv[5]);
  const long M = getLong(env, argv[6]), N = getLong(env, argv[7]), K = getLong(env, argv[8]);
  g.transA = getBool(env, argv[9]);
  g.transB = getBool(env, argv[10]);
  if (g.batchA < 1 || g.batchB < 1 || g.batch < 0 || M < 0 || N < 0 || K < 0 || M > INT32_MAX || N > INT32_MAX ||
      K > INT32_MAX) {
    fail(env, "matmul: invalid sizes");
    return nullptr;
  }
  g.M = static_cast<int>(M);
  g.N = static_cast<int>(N);
  g.K = static_cast<int>(K);
  if (la < static_cast<size_t>(g.batchA * M * K) || lb < static_cast<size_t>(g.batchB * K * N) ||
      lc < static_cast<size_t>(g.batch * M * N)) {
    fail(env, "matmul: a, b or out is smaller than its shape");
    return nullptr;
  }
  const napi_value idx[2] = {argv[11], argv[12]};
  const int32_t* idxPtr[2] = {nullptr, nullptr};
  const long limits[2] = {g.batchA, g.batchB};
  for (int s = 0; s < 2; s++) {
    if (isNullish(env, idx[s])) continue;
    int32_t* p;
    size_t n;
    if (!getTyped(env, idx[s], napi_int32_array, &p, &n, s == 0 ? "aIdx" : "bIdx")) return nullptr;
    if (n < static_cast<size_t>(g.batch)) {
      fail(env, "matmul: batch index array shorter than batch");
      return nullptr;
    }
    for (long i = 0; i < g.batch; i++)
      if (p[i] < 0 || p[i] >= limits[s]) {
        fail(env, "matmul: batch index out of range");
        return nullptr;
      }
    idxPtr[s] = p;
  }
  g.aIdx = idxPtr[0];
  g.bIdx = idxPtr[1];
  g.biasScalar = getBool(env, argv[14]);
  if (!isNullish(env, argv[13])) {
    float* bias;
    size_t lbias;
    if (!getF32(env, argv[13], &bias, &lbias, "bias")) return nullptr;
    if (lbias < (g.biasScalar ? 1u : static_cast<size_t>(N))) {
      fail(env, "matmul: bias is smaller than N");
      return nullptr;
    }
    g.bias = bias;
  }
  g.activation = static_cast<int>(getLong(env, argv[15]));
  g.alpha = static_cast<float>(getNumber(env, argv[16]));
  if (g.activation < quorum::kLinear || g.activation > quorum::kElu) {
    fail(env, "matmul: unknown activation");
    return nullptr;
  }
  quorum::gemm(g);
  return nullptr;
}

// binary(op, a, b, out, meta: Int32Array [rank, shape..., aStride..., bStride...])
napi_value Binary(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!getArgs(env, info, 5, argv, "binary") || !requireCpu(env)) return nullptr;
  const long op = getLong(env, argv[0]);
  float *a, *b, *out;
  int32_t* meta;
  size_t la, lb, lo, lm;
  if (!getF32(env, argv[1], &a, &la, "a") || !getF32(env, argv[2], &b, &lb, "b") ||
      !getF32(env, argv[3], &out, &lo, "out") || !getTyped(env, argv[4], napi_int32_array, &meta, &lm, "meta"))
    return nullptr;
  const int rank = lm > 0 ? meta[0] : 0;
  if (op < quorum::kAdd || op > quorum::kLastBinaryOp || rank < 1 || rank > 8 || lm < static_cast<size_t>(1 + 3 * rank)) {
    fail(env, "binary: invalid op or meta");
    return nullptr;
  }
  long shape[8], as[8], bs[8];
  size_t total = 1, maxA = 0, maxB = 0;
  for (int d = 0; d < rank; d++) {
    shape[d] = meta[1 + d];
    as[d] = meta[1 + rank + d];
    bs[d] = meta[1 + 2 * rank + d];
    if (shape[d] < 0 || as[d] < 0 || bs[d] < 0) {
      fail(env, "binary: negative shape or stride");
      return nullptr;
    }
    total *= static_cast<size_t>(shape[d]);
    if (shape[d] > 0) {
      maxA += static_cast<size_t>((shape[d] - 1) * as[d]);
      maxB += static_cast<size_t>((shape[d] - 1) * bs[d]);
    }
  }
  if (total == 0) return nullptr;
  if (lo < total || la <= maxA || lb <= maxB) {
    fail(env, "binary: a, b or out is smaller than its shape");
    return nullptr;
  }
  quorum::binary(static_cast<int>(op), a, b, out, rank, shape, as, bs);
  return nullptr;
}

// unary(op, x, out): 0 exp, 1 tanh, 2 square, 3 sqrt, 4 rsqrt, 5 neg
napi_value Unary(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!getArgs(env, info, 3, argv, "unary") || !requireCpu(env)) return nullptr;
  const long op = getLong(env, argv[0]);
  float *x, *out;
  size_t lx, lo;
  if (!getF32(env, argv[1], &x, &lx, "x") || !getF32(env, argv[2], &out, &lo, "out")) return nullptr;
  if (op < quorum::kExp || op > quorum::kLastUnaryOp || lo < lx) {
    fail(env, "unary: invalid op, or out is smaller than x");
    return nullptr;
  }
  quorum::unary(static_cast<int>(op), x, out, static_cast<long>(lx));
  return nullptr;
}

// reduceSum(x, out, outer, red, inner, scale) and reduceMax(x, out, outer, red, inner)
bool reduceArgs(napi_env env, napi_value* argv, const char* fn, float** x, float** out, long* outer, long* red,
                long* inner) {
  size_t lx, lo;
  if (!getF32(env, argv[0], x, &lx, "x") || !getF32(env, argv[1], out, &lo, "out")) return false;
  *outer = getLong(env, argv[2]);
  *red = getLong(env, argv[3]);
  *inner = getLong(env, argv[4]);
  if (*outer < 0 || *red < 1 || *inner < 0 || lx < static_cast<size_t>(*outer * *red * *inner) ||
      lo < static_cast<size_t>(*outer * *inner))
    return fail(env, std::string(fn) + ": x or out is smaller than its shape");
  return true;
}

napi_value ReduceSum(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!getArgs(env, info, 6, argv, "reduceSum") || !requireCpu(env)) return nullptr;
  float *x, *out;
  long outer, red, inner;
  if (!reduceArgs(env, argv, "reduceSum", &x, &out, &outer, &red, &inner)) return nullptr;
  quorum::reduceSum(x, out, outer, red, inner, static_cast<float>(getNumber(env, argv[5])));
  return nullptr;
}

napi_value ReduceMax(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!getArgs(env, info, 5, argv, "reduceMax") || !requireCpu(env)) return nullptr;
  float *x, *out;
  long outer, red, inner;
  if (!reduceArgs(env, argv, "reduceMax", &x, &out, &outer, &red, &inner)) return nullptr;
  quorum::reduceMax(x, out, outer, red, inner);
  return nullptr;
}

// stridedCopy(x, out, meta: Int32Array [rank, shape..., stride..., offset]); x and out 4-byte arrays.
napi_value StridedCopy(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!getArgs(env, info, 3, argv, "stridedCopy")) return nullptr;
  void *x, *out;
  int32_t* meta;
  size_t lx, lo, lm;
  if (!get4(env, argv[0], &x, &lx, "x") || !get4(env, argv[1], &out, &lo, "out") ||
      !getTyped(env, argv[2], napi_int32_array, &meta, &lm, "meta"))
    return nullptr;
  const int rank = lm > 0 ? meta[0] : 0;
  if (rank < 1 || rank > 8 || lm < static_cast<size_t>(2 + 2 * rank)) {
    fail(env, "stridedCopy: invalid meta");
    return nullptr;
  }
  long shape[8], stride[8];
  const long offset = meta[1 + 2 * rank];
  size_t total = 1, maxIn = offset < 0 ? SIZE_MAX : static_cast<size_t>(offset);
  for (int d = 0; d < rank; d++) {
    shape[d] = meta[1 + d];
    stride[d] = meta[1 + rank + d];
    if (shape[d] < 0 || stride[d] < 0) {
      fail(env, "stridedCopy: negative shape or stride");
      return nullptr;
    }
    total *= static_cast<size_t>(shape[d]);
    if (shape[d] > 0) maxIn += static_cast<size_t>((shape[d] - 1) * stride[d]);
  }
  if (total == 0) return nullptr;
  if (offset < 0 || lo < total || lx <= maxIn) {
    fail(env, "stridedCopy: x or out is smaller than its shape");
    return nullptr;
  }
  quorum::stridedCopy(x, out, rank, shape, stride, offset);
  return nullptr;
}

// gather(x, indices, out, outer, dim, inner) -> false (and no write) when an index is outside [0, dim)
napi_value Gather(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!getArgs(env, info, 6, argv, "gather")) return nullptr;
  void *x, *out;
  int32_t* idx;
  size_t lx, lo, li;
  if (!get4(env, argv[0], &x, &lx, "x") || !getTyped(env, argv[1], napi_int32_array, &idx, &li, "indices") ||
      !get4(env, argv[2], &out, &lo, "out"))
    return nullptr;
  const long outer = getLong(env, argv[3]), dim = getLong(env, argv[4]), inner = getLong(env, argv[5]);
  const long nIdx = static_cast<long>(li);
  if (outer < 0 || dim < 0 || inner < 0 || lx < static_cast<size_t>(outer * dim * inner) ||
      lo < static_cast<size_t>(outer * nIdx * inner)) {
    fail(env, "gather: x or out is smaller than its shape");
    return nullptr;
  }
  for (long i = 0; i < nIdx; i++) {
    if (idx[i] < 0 || idx[i] >= dim) return makeBool(env, false);
  }
  if (outer * nIdx * inner > 0) quorum::gatherRows(x, idx, out, outer, dim, nIdx, inner);
  return makeBool(env, true);
}

// segmentSum(x, ids, out, inner, numSegments): x [ids.length, inner] -> out [numSegments, inner]
napi_value SegmentSum(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!getArgs(env, info, 5, argv, "segmentSum")) return nullptr;
  float *x, *out;
  int32_t* ids;
  size_t lx, lo, li;
  if (!getF32(env, argv[0], &x, &lx, "x") || !getTyped(env, argv[1], napi_int32_array, &ids, &li, "ids") ||
      !getF32(env, argv[2], &out, &lo, "out"))
    return nullptr;
  const long inner = getLong(env, argv[3]), numSegments = getLong(env, argv[4]);
  const long nIds = static_cast<long>(li);
  if (inner < 0 || numSegments < 0 || lx < static_cast<size_t>(nIds * inner) ||
      lo < static_cast<size_t>(numSegments * inner)) {
    fail(env, "segmentSum: x or out is smaller than its shape");
    return nullptr;
  }
  if (numSegments * inner > 0) quorum::segmentSum(x, ids, out, nIds, inner, numSegments);
  return nullptr;
}

// softmax(x, out, rows, cols)
napi_value Softmax(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!getArgs(env, info, 4, argv, "softmax") || !requireCpu(env)) return nullptr;
  float *x, *out;
  size_t lx, lo;
  if (!getF32(env, argv[0], &x, &lx, "x") || !getF32(env, argv[1], &out, &lo, "out")) return nullptr;
  const long rows = getLong(env, argv[2]), cols = getLong(env, argv[3]);
  if (rows < 0 || cols < 1 || lx < static_cast<size_t>(rows * cols) || lo < static_cast<size_t>(rows * cols)) {
    fail(env, "softmax: x or out is smaller than its shape");
    return nullptr;
  }
  quorum::softmax(x, out, rows, cols);
  return nullptr;
}

// name(x, out): an elementwise kernel over x's length.
napi_value Elementwise(napi_env env, napi_callback_info info, const char* name,
                       void (*run)(const float*, float*, long)) {
  napi_value argv[2];
  if (!getArgs(env, info, 2, argv, name) || !requireCpu(env)) return nullptr;
  float *x, *out;
  size_t lx, lo;
  if (!getF32(env, argv[0], &x, &lx, "x") || !getF32(env, argv[1], &out, &lo, "out")) return nullptr;
  if (lo < lx) {
    fail(env, std::string(name) + ": out is smaller than x");
    return nullptr;
  }
  run(x, out, static_cast<long>(lx));
  return nullptr;
}

// name(dy, x, out): the gradient of an elementwise kernel, dy · f′(x).
napi_value ElementwiseGrad(napi_env env, napi_callback_info info, const char* name,
                           void (*run)(const float*, const float*, float*, long)) {
  napi_value argv[3];
  if (!getArgs(env, info, 3, argv, name) || !requireCpu(env)) return nullptr;
  float *dy, *x, *out;
  size_t ld, lx, lo;
  if (!getF32(env, argv[0], &dy, &ld, "dy") || !getF32(env, argv[1], &x, &lx, "x") ||
      !getF32(env, argv[2], &out, &lo, "out"))
    return nullptr;
  if (ld != lx || lo < lx) {
    fail(env, std::string(name) + ": dy and x differ in length, or out is smaller than x");
    return nullptr;
  }
  run(dy, x, out, static_cast<long>(lx));
  return nullptr;
}

napi_value Gelu(napi_env env, napi_callback_info info) { return Elementwise(env, info, "gelu", quorum::gelu); }

napi_value GeluGrad(napi_env env, napi_callback_info info) {
  return ElementwiseGrad(env, info, "geluGrad", quorum::geluGrad);
}

// layerNorm(x, gamma, beta, y, mean, rstd, rows, cols, eps)
napi_value LayerNorm(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  if (!getArgs(env, info, 9, argv, "layerNorm") || !requireCpu(env)) return nullptr;
  float *x, *gamma, *beta, *y, *mean, *rstd;
  size_t lx, lg, lb, ly, lm, lr;
  if (!getF32(env, argv[0], &x, &lx, "x") || !getF32(env, argv[1], &gamma, &lg, "gamma") ||
      !getF32(env, argv[2], &beta, &lb, "beta") || !getF32(env, argv[3], &y, &ly, "y") ||
      !getF32(env, argv[4], &mean, &lm, "mean") || !getF32(env, argv[5], &rstd, &lr, "rstd"))
    return nullptr;
  const long rows = getLong(env, argv[6]), cols = getLong(env, argv[7]);
  const size_t n = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  if (rows < 0 || cols < 1 || lx < n || ly < n || lg < static_cast<size_t>(cols) || lb < static_cast<size_t>(cols) ||
      lm < static_cast<size_t>(rows) || lr < static_cast<size_t>(rows)) {
    fail(env, "layerNorm: an input or output is smaller than its shape");
    return nullptr;
  }
  quorum::layerNorm(x, gamma, beta, y, mean, rstd, rows, cols, static_cast<float>(getNumber(env, argv[8])));
  return nullptr;
}

// layerNormGrad(dy, x, gamma, mean, rstd, dx, dgamma, dbeta, rows, cols)
napi_value LayerNormGrad(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  if (!getArgs(env, info, 10, argv, "layerNormGrad") || !requireCpu(env)) return nullptr;
  float *dy, *x, *gamma, *mean, *rstd, *dx, *dgamma, *dbeta;
  size_t ld, lx, lg, lm, lr, ldx, ldg, ldb;
  if (!getF32(env, argv[0], &dy, &ld, "dy") || !getF32(env, argv[1], &x, &lx, "x") ||
      !getF32(env, argv[2], &gamma, &lg, "gamma") || !getF32(env, argv[3], &mean, &lm, "mean") ||
      !getF32(env, argv[4], &rstd, &lr, "rstd") || !getF32(env, argv[5], &dx, &ldx, "dx") ||
      !getF32(env, argv[6], &dgamma, &ldg, "dgamma") || !getF32(env, argv[7], &dbeta, &ldb, "dbeta"))
    return nullptr;
  const long rows = getLong(env, argv[8]), cols = getLong(env, argv[9]);
  const size_t n = static_cast<size_t>(rows) * static_cast<size_t>(cols), c = static_cast<size_t>(cols);
  if (rows < 0 || cols < 1 || ld < n || lx < n || ldx < n || lg < c || ldg < c || ldb < c ||
      lm < static_cast<size_t>(rows) || lr < static_cast<size_t>(rows)) {
    fail(env, "layerNormGrad: an input or output is smaller than its shape");
    return nullptr;
  }
  quorum::layerNormGrad(dy, x, gamma, mean, rstd, dx, dgamma, dbeta, rows, cols);
  return nullptr;
}

napi_value Silu(napi_env env, napi_callback_info info) { return Elementwise(env, info, "silu", quorum::silu); }

napi_value SiluGrad(napi_env env, napi_callback_info info) {
  return ElementwiseGrad(env, info, "siluGrad", quorum::siluGrad);
}

// rmsNorm(x, gamma, y, rstd, rows, cols, eps)
napi_value RmsNorm(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!getArgs(env, info, 7, argv, "rmsNorm") || !requireCpu(env)) return nullptr;
  float *x, *gamma, *y, *rstd;
  size_t lx, lg, ly, lr;
  if (!getF32(env, argv[0], &x, &lx, "x") || !getF32(env, argv[1], &gamma, &lg, "gamma") ||
      !getF32(env, argv[2], &y, &ly, "y") || !getF32(env, argv[3], &rstd, &lr, "rstd"))
    return nullptr;
  const long rows = getLong(env, argv[4]), cols = getLong(env, argv[5]);
  const size_t n = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  if (rows < 0 || cols < 1 || lx < n || ly < n || lg < static_cast<size_t>(cols) || lr < static_cast<size_t>(rows)) {
    fail(env, "rmsNorm: an input or output is smaller than its shape");
    return nullptr;
  }
  quorum::rmsNorm(x, gamma, y, rstd, rows, cols, static_cast<float>(getNumber(env, argv[6])));
  return nullptr;
}

// rmsNormGrad(dy, x, gamma, rstd, dx, dgamma, rows, cols)
napi_value RmsNormGrad(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!getArgs(env, info, 8, argv, "rmsNormGrad") || !requireCpu(env)) return nullptr;
  float *dy, *x, *gamma, *rstd, *dx, *dgamma;
  size_t ld, lx, lg, lr, ldx, ldg;
  if (!getF32(env, argv[0], &dy, &ld, "dy") || !getF32(env, argv[1], &x, &lx, "x") ||
      !getF32(env, argv[2], &gamma, &lg, "gamma") || !getF32(env, argv[3], &rstd, &lr, "rstd") ||
      !getF32(env, argv[4], &dx, &ldx, "dx") || !getF32(env, argv[5], &dgamma, &ldg, "dgamma"))
    return nullptr;
  const long rows = getLong(env, argv[6]), cols = getLong(env, argv[7]);
  const size_t n = static_cast<size_t>(rows) * static_cast<size_t>(cols), c = static_cast<size_t>(cols);
  if (rows < 0 || cols < 1 || ld < n || lx < n || ldx < n || lg < c || ldg < c || lr < static_cast<size_t>(rows)) {
    fail(env, "rmsNormGrad: an input or output is smaller than its shape");
    return nullptr;
  }
  quorum::rmsNormGrad(dy, x, gamma, rstd, dx, dgamma, rows, cols);
  return nullptr;
}

// adamW(param, grad, m, v, paramOut, mOut, vOut, lr, beta1, beta2, epsilon, weightDecay, biasCorrection1,
//       biasCorrection2, gradScale): the four inputs of one length, the outputs at least as long and
// apart from them (the update never writes into its inputs).
napi_value AdamW(napi_env env, napi_callback_info info) {
  napi_value argv[15];
  if (!getArgs(env, info, 15, argv, "adamW") || !requireCpu(env)) return nullptr;
  float *p, *g, *m, *v, *po, *mo, *vo;
  size_t lp, lg, lm, lv, lpo, lmo, lvo;
  if (!getF32(env, argv[0], &p, &lp, "param") || !getF32(env, argv[1], &g, &lg, "grad") ||
      !getF32(env, argv[2], &m, &lm, "m") || !getF32(env, argv[3], &v, &lv, "v") ||
      !getF32(env, argv[4], &po, &lpo, "paramOut") || !getF32(env, argv[5], &mo, &lmo, "mOut") ||
      !getF32(env, argv[6], &vo, &lvo, "vOut"))
    return nullptr;
  if (lg != lp || lm != lp || lv != lp || lpo < lp || lmo < lp || lvo < lp) {
    fail(env, "adamW: param, grad, m and v differ in length, or an output is smaller than param");
    return nullptr;
  }
  const float* ins[4] = {p, g, m, v};
  float* outs[3] = {po, mo, vo};
  for (const float* in : ins)
    for (const float* out : outs)
      if (lp > 0 && in < out + lp && out < in + lp) {
        fail(env, "adamW: an output overlaps an input");
        return nullptr;
      }
  for (int a = 0; a < 3; a++)
    for (int b = a + 1; b < 3; b++)
      if (lp > 0 && outs[a] < outs[b] + lp && outs[b] < outs[a] + lp) {
        fail(env, "adamW: the outputs overlap");
        return nullptr;
      }
  quorum::AdamWHyper h{};
  double* fields[8] = {&h.lr, &h.beta1, &h.beta2, &h.epsilon, &h.weightDecay, &h.biasCorrection1, &h.biasCorrection2,
                       &h.gradScale};
  for (int i = 0; i < 8; i++) *fields[i] = getNumber(env, argv[7 + i]);
  quorum::adamW(p, g, m, v, po, mo, vo, static_cast<long>(lp), h);
  return nullptr;
}

napi_value Init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"cpuFeatures", nullptr, CpuFeatures, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"getThreads", nullptr, GetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"simdWidth", nullptr, SimdWidth, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setSimdWidth", nullptr, SetSimdWidth, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"matmul", nullptr, MatMul, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"binary", nullptr, Binary, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"unary", nullptr, Unary, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"reduceSum", nullptr, ReduceSum, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"reduceMax", nullptr, ReduceMax, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"stridedCopy", nullptr, StridedCopy, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"gather", nullptr, Gather, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"segmentSum", nullptr, SegmentSum, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"softmax", nullptr, Softmax, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"gelu", nullptr, Gelu, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"geluGrad", nullptr, GeluGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"layerNorm", nullptr, LayerNorm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"layerNormGrad", nullptr, LayerNormGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"silu", nullptr, Silu, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"siluGrad", nullptr, SiluGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"rmsNorm", nullptr, RmsNorm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"rmsNormGrad", nullptr, RmsNormGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamW", nullptr, AdamW, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
