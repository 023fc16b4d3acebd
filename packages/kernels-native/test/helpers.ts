/**
 * Test helpers (not exported from the package): run a computation with native kernels and with the
 * stock wasm kernels, and compare.
 */
import * as tf from '@tensorflow/tfjs';
import {
  installNativeKernels,
  NATIVE_KERNELS,
  type NativeKernelName,
  uninstallNativeKernels,
} from '../src/install.js';

/** max |a - b| / max(|b|), 0 when both are all zeros. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (Number.isNaN(x) !== Number.isNaN(y)) return Number.POSITIVE_INFINITY;
    diff = Math.max(diff, Math.abs(x - y));
    scale = Math.max(scale, Math.abs(y));
  }
  return scale === 0 ? diff : diff / scale;
}

/**
 * Runs `fn` on native kernels (all of NATIVE_KERNELS unless `kernels` says otherwise) and `stockFn` (default: `fn`) on the stock kernels; returns both
 * results' values and shapes. Throws when either run leaks a tensor or the shapes differ.
 */
export function nativeVsStock(
  fn: () => tf.Tensor | tf.Tensor[],
  stockFn: () => tf.Tensor | tf.Tensor[] = fn,
  kernels: readonly NativeKernelName[] = NATIVE_KERNELS,
): { native: Float32Array[]; stock: Float32Array[]; shapes: number[][] } {
  const run = (f: () => tf.Tensor | tf.Tensor[]): { values: Float32Array[]; shapes: number[][] } => {
    const before = tf.memory().numTensors;
    const out = tf.tidy(f);
    const list = Array.isArray(out) ? out : [out];
    const values = list.map((t) => Float32Array.from(t.dataSync()));
    const shapes = list.map((t) => t.shape);
    tf.dispose(list);
    if (tf.memory().numTensors !== before)
      throw new Error(`leaked ${tf.memory().numTensors - before} tensors`);
    return { values, shapes };
  };
  installNativeKernels(tf, { threads: 2, kernels });
  const native = run(fn);
  uninstallNativeKernels(tf);
  const stock = run(stockFn);
  installNativeKernels(tf, { threads: 2, kernels });
  expectSameShapes(native.shapes, stock.shapes);
  return { native: native.values, stock: stock.values, shapes: native.shapes };
}

function expectSameShapes(a: number[][], b: number[][]): void {
  if (JSON.stringify(a) !== JSON.stringify(b))
    throw new Error(`shapes differ: native ${JSON.stringify(a)} vs stock ${JSON.stringify(b)}`);
}

/** A deterministic random normal tensor. */
export function randn(shape: number[], seed: number): tf.Tensor {
  return tf.randomNormal(shape, 0, 1, 'float32', seed);
}
