/**
 * `BatchMatMul` and `_FusedMatMul` on the native sgemm. Every matmul gradient in tfjs is another
 * BatchMatMul with transposes, so these two kernels serve forward and backward. Batch dimensions
 * broadcast numpy-style ([2,1,M,K] × [1,3,K,N] → [2,3,M,N]). Anything else falls back to the stock
 * kernel: non-float32 inputs, PReLU, a bias that is not per-column or scalar.
 */
import * as tf from '@tensorflow/tfjs';
import type { NativeAddon } from './addon.js';
import { asWasm, f32, withOutput } from './wasm-heap.js';

/** The sizes of one batched matmul, as the addon takes them. */
export interface MatMulPlan {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly batchA: number;
  readonly batchB: number;
  readonly batch: number;
  /** Output batch item → A (or B) matrix, when the plain `i % batchA` rule does not hold. */
  readonly aIdx: Int32Array | null;
  readonly bIdx: Int32Array | null;
  readonly outShape: number[];
}

/** Plans `op(a) · op(b)` for shapes [...batchA, M, K] and [...batchB, K, N] (before transposes). */
export function planMatMul(
  aShape: readonly number[],
  bShape: readonly number[],
  transposeA: boolean,
  transposeB: boolean,
): MatMulPlan {
  const ra = aShape.length;
  const rb = bShape.length;
  if (ra < 2 || rb < 2) throw new Error(`matMul needs rank ≥ 2 inputs, got [${aShape}] and [${bShape}]`);
  const m = (transposeA ? aShape[ra - 1] : aShape[ra - 2]) as number;
  const k = (transposeA ? aShape[ra - 2] : aShape[ra - 1]) as number;
  const k2 = (transposeB ? bShape[rb - 1] : bShape[rb - 2]) as number;
  const n = (transposeB ? bShape[rb - 2] : bShape[rb - 1]) as number;
  if (k !== k2) {
    throw new Error(
      `Error in matMul: inner shapes (${k}) and (${k2}) of Tensors with shapes ${aShape} and ${bShape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  }
  const outerA = aShape.slice(0, -2);
  const outerB = bShape.slice(0, -2);
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  const batchA = tf.util.sizeFromShape(outerA);
  const batchB = tf.util.sizeFromShape(outerB);
  const batch = tf.util.sizeFromShape(outer);
  const simple = (size: number): boolean => size === batch || size === 1;
  const needIdx = !(simple(batchA) && simple(batchB));
  return {
    m,
    n,
    k,
    batchA,
    batchB,
    batch,
    aIdx: needIdx ? broadcastIndex(outer, outerA) : null,
    bIdx: needIdx ? broadcastIndex(outer, outerB) : null,
    outShape: [...outer, m, n],
  };
}

/** For each flat index of `outer`, the flat index into `shape` (right-aligned, size-1 axes broadcast). */
function broadcastIndex(outer: readonly number[], shape: readonly number[]): Int32Array {
  const size = tf.util.sizeFromShape(outer as number[]);
  const idx = new Int32Array(size);
  const offset = outer.length - shape.length;
  for (let i = 0; i < size; i++) {
    let rem = i;
    let flat = 0;
    let stride = 1;
    for (let d = outer.length - 1; d >= 0; d--) {
      const od = outer[d] as number;
      const coord = rem % od;
      rem = Math.floor(rem / od);
      const sd = d - offset;
      if (sd >= 0) {
        const dim = shape[sd] as number;
        flat += (dim === 1 ? 0 : coord) * stride;
        stride *= dim;
      }
    }
    idx[i] = flat;
  }
  return idx;
}

const ACTIVATIONS: Readonly<Record<string, number>> = {
  linear: 0,
  relu: 1,
  relu6: 2,
  leakyrelu: 3,
  sigmoid: 4,
  elu: 5,
};

type Fallback = (args: Parameters<tf.KernelFunc>[0]) => tf.TensorInfo | tf.TensorInfo[];

export function batchMatMulKernel(addon: NativeAddon, fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback(args);
    return runMatMul(addon, args.backend, a, b, !!transposeA, !!transposeB, null, 0, 0);
  };
}

export function fusedMatMulKernel(addon: NativeAddon, fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as {
      a: tf.TensorInfo;
      b: tf.TensorInfo;
      bias?: tf.TensorInfo;
      preluActivationWeights?: tf.TensorInfo;
    };
    const { transposeA, transposeB, activation, leakyreluAlpha } = args.attrs as unknown as {
      transposeA: boolean;
      transposeB: boolean;
      activation?: string;
      leakyreluAlpha?: number;
    };
    const act = ACTIVATIONS[activation ?? 'linear'];
    if (
      act === undefined ||
      preluActivationWeights != null ||
      a.dtype !== 'float32' ||
      b.dtype !== 'float32'
    ) {
      return fallback(args);
    }
    const plan = planMatMul(a.shape, b.shape, !!transposeA, !!transposeB);
    if (bias != null && !biasSupported(bias, plan)) return fallback(args);
    return runMatMul(
      addon,
      args.backend,
      a,
      b,
      !!transposeA,
      !!transposeB,
      bias ?? null,
      act,
      leakyreluAlpha ?? 0.2,
      plan,
    );
  };
}

/** A per-column ([..., 1, N]) or scalar float32 bias that does not widen the output's rank. */
function biasSupported(bias: tf.TensorInfo, plan: MatMulPlan): boolean {
  if (bias.dtype !== 'float32' || bias.shape.length > plan.outShape.length) return false;
  const size = tf.util.sizeFromShape(bias.shape);
  if (size === 1) return true;
  return size === plan.n && bias.shape[bias.shape.length - 1] === plan.n;
}

function runMatMul(
  addon: NativeAddon,
  rawBackend: unknown,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  bias: tf.TensorInfo | null,
  activation: number,
  alpha: number,
  planned?: MatMulPlan,
): tf.TensorInfo {
  const backend = asWasm(rawBackend);
  const p = planned ?? planMatMul(a.shape, b.shape, transposeA, transposeB);
  return withOutput(backend, p.outShape, (out) => {
    const biasView = bias === null ? null : f32(backend, bias);
    addon.matmul(
      f32(backend, a),
      f32(backend, b),
      f32(backend, out),
      p.batchA,
      p.batchB,
      p.batch,
      p.m,
      p.n,
      p.k,
      transposeA,
      transposeB,
      p.aIdx,
      p.bIdx,
      biasView,
      biasView !== null && biasView.length === 1,
      activation,
      alpha,
    );
  });
}
