/**
 * Elementwise, reduction and softmax kernels on the addon: Add/Sub/Multiply/RealDiv/Maximum with
 * numpy broadcasting (the addon also has min, which no kernel here uses), Exp/Tanh/Square/Sqrt/Rsqrt/Neg, Sum/Mean/Max over one contiguous run of
 * axes, Softmax over the last axis. float32 only; every other case goes to the stock kernel.
 */
import * as tf from '@tensorflow/tfjs';
import type { NativeAddon } from './addon.js';
import { asWasm, f32, withOutput } from './wasm-heap.js';

type Fallback = (args: Parameters<tf.KernelFunc>[0]) => tf.TensorInfo | tf.TensorInfo[];

export const BINARY_OPS: Readonly<Record<string, number>> = {
  Add: 0,
  Sub: 1,
  Multiply: 2,
  RealDiv: 3,
  Maximum: 4,
};
export const UNARY_OPS: Readonly<Record<string, number>> = {
  Exp: 0,
  Tanh: 1,
  Square: 2,
  Sqrt: 3,
  Rsqrt: 4,
  Neg: 5,
};

/**
 * The broadcast of `aShape` and `bShape` as the addon's meta array: [rank, ...shape, ...aStrides,
 * ...bStrides], with size-1 axes dropped and adjacent axes merged where both inputs allow it.
 */
export function broadcastMeta(
  aShape: readonly number[],
  bShape: readonly number[],
): { outShape: number[]; meta: Int32Array } {
  const outShape = tf.broadcast_util.assertAndGetBroadcastShape(aShape as number[], bShape as number[]);
  const rank = outShape.length;
  const strides = (shape: readonly number[]): number[] => {
    const padded = [...new Array<number>(rank - shape.length).fill(1), ...shape];
    const s = new Array<number>(rank).fill(0);
    let acc = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const dim = padded[d] as number;
      s[d] = dim === 1 ? 0 : acc;
      acc *= dim;
    }
    return s;
  };
  const as = strides(aShape);
  const bs = strides(bShape);
  // Drop size-1 axes, then merge axis d into d+1 when both inputs are contiguous across them.
  const dims: { n: number; a: number; b: number }[] = [];
  for (let d = 0; d < rank; d++) {
    if (outShape[d] !== 1) dims.push({ n: outShape[d] as number, a: as[d] as number, b: bs[d] as number });
  }
  const merged: { n: number; a: number; b: number }[] = [];
  for (const dim of dims) {
    const last = merged[merged.length - 1];
    if (last !== undefined && last.a === dim.a * dim.n && last.b === dim.b * dim.n) {
      merged[merged.length - 1] = { n: last.n * dim.n, a: dim.a, b: dim.b };
    } else {
      merged.push({ ...dim });
    }
  }
  if (merged.length === 0) merged.push({ n: 1, a: 0, b: 0 });
  const r = merged.length;
  const meta = new Int32Array(1 + 3 * r);
  meta[0] = r;
  merged.forEach((d, i) => {
    meta[1 + i] = d.n;
    meta[1 + r + i] = d.a;
    meta[1 + 2 * r + i] = d.b;
  });
  return { outShape, meta };
}

/**
 * A broadcasting binary op. Operands that need no real broadcast (same shape, or one scalar: one flat
 * run after merging axes) with fewer than `flatMinSize` output elements go to the stock kernel: its
 * single-threaded SIMD loop is as fast as one native thread there (memory-bound), so only a large
 * run split over several threads gains. The native loop wins on every row/column broadcast.
 */
export function binaryKernel(
  addon: NativeAddon,
  op: number,
  fallback: Fallback,
  flatMinSize = 0,
): tf.KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length > 8 || b.shape.length > 8)
      return fallback(args);
    const { outShape, meta } = broadcastMeta(a.shape, b.shape);
    if (meta[0] === 1 && (meta[1] as number) < flatMinSize) return fallback(args);
    const backend = asWasm(args.backend);
    return withOutput(backend, outShape, (out) => {
      if (tf.util.sizeFromShape(outShape) === 0) return;
      addon.binary(op, f32(backend, a), f32(backend, b), f32(backend, out), meta);
    });
  };
}

/** A unary op; inputs with fewer than `minSize` elements go to the stock kernel (see binaryKernel). */
export function unaryKernel(addon: NativeAddon, op: number, fallback: Fallback, minSize = 0): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype !== 'float32' || tf.util.sizeFromShape(x.shape) < minSize) return fallback(args);
    const backend = asWasm(args.backend);
    return withOutput(backend, [...x.shape], (out) => {
      if (tf.util.sizeFromShape(x.shape) === 0) return;
      addon.unary(op, f32(backend, x), f32(backend, out));
    });
  };
}

/** The axes of a reduction as [outer, red, inner] when they form one contiguous run, else undefined. */
export function reductionPlan(
  shape: readonly number[],
  axis: number | number[] | null | undefined,
  keepDims: boolean,
): { outer: number; red: number; inner: number; outShape: number[] } | undefined {
  if (shape.length === 0) return undefined;
  const axes = [...tf.util.parseAxisParam((axis ?? null) as number | number[], shape as number[])].sort(
    (p, q) => p - q,
  );
  if (axes.length === 0) return undefined;
  const first = axes[0] as number;
  if (!axes.every((v, i) => v === first + i)) return undefined;
  const last = axes[axes.length - 1] as number;
  const red = tf.util.sizeFromShape(shape.slice(first, last + 1));
  if (red === 0) return undefined;
  return {
    outer: tf.util.sizeFromShape(shape.slice(0, first)),
    red,
    inner: tf.util.sizeFromShape(shape.slice(last + 1)),
    outShape: keepDims
      ? shape.map((d, i) => (i >= first && i <= last ? 1 : d))
      : shape.filter((_, i) => i < first || i > last),
  };
}

/** Sum (`mean` false) or Mean over axes that form one contiguous run; others fall back. */
export function reduceKernel(addon: NativeAddon, mean: boolean, fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    if (x.dtype !== 'float32') return fallback(args);
    const plan = reductionPlan(x.shape, axis, keepDims);
    if (plan === undefined) return fallback(args);
    const { outer, red, inner } = plan;
    const backend = asWasm(args.backend);
    return withOutput(backend, plan.outShape, (out) => {
      if (outer * inner === 0) return;
      addon.reduceSum(f32(backend, x), f32(backend, out), outer, red, inner, mean ? 1 / red : 1);
    });
  };
}

/** Max over axes that form one contiguous run; others fall back. */
export function maxKernel(addon: NativeAddon, fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { reductionIndices, keepDims } = args.attrs as unknown as {
      reductionIndices: number | number[];
      keepDims: boolean;
    };
    if (x.dtype !== 'float32') return fallback(args);
    const plan = reductionPlan(x.shape, reductionIndices, keepDims);
    if (plan === undefined) return fallback(args);
    const { outer, red, inner } = plan;
    const backend = asWasm(args.backend);
    return withOutput(backend, plan.outShape, (out) => {
      if (outer * inner === 0) return;
      addon.reduceMax(f32(backend, x), f32(backend, out), outer, red, inner);
    });
  };
}

export function softmaxKernel(addon: NativeAddon, fallback: Fallback): tf.KernelFunc {
  return (args) => {
    const { logits } = args.inputs as { logits: tf.TensorInfo };
    const { dim } = args.attrs as unknown as { dim: number };
    const rank = logits.shape.length;
    if (logits.dtype !== 'float32' || rank === 0 || (dim !== -1 && dim !== rank - 1)) return fallback(args);
    const cols = logits.shape[rank - 1] as number;
    const rows = tf.util.sizeFromShape(logits.shape) / Math.max(cols, 1);
    if (cols === 0) return fallback(args);
    const backend = asWasm(args.backend);
    return withOutput(backend, [...logits.shape], (out) => {
      if (rows === 0) return;
      addon.softmax(f32(backend, logits), f32(backend, out), rows, cols);
    });
  };
}
