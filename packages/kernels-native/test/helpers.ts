/**
 * Test helpers (not exported from the package): run a computation with native kernels and with the
 * stock wasm kernels, and compare.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import {
  installNativeKernels,
  NATIVE_KERNELS,
  type NativeKernelName,
  uninstallNativeKernels,
} from '../src/install.js';

/**
 * max |a - b| / max(max |b|, floor), 0 when both are all zeros. A `floor` (e.g. 1e-3) judges a tensor that
 * is zero in exact arithmetic (float noise only) by its absolute error.
 */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>, floor = 0): number {
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
  const denom = Math.max(scale, floor);
  return denom === 0 ? diff : diff / denom;
}

let simd: 256 | 512 | undefined;

/** The matmul vector width nativeVsStock installs the kernels with (undefined: the widest the CPU has). */
export function useSimd(bits: 256 | 512 | undefined): void {
  simd = bits;
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
  installNativeKernels(tf, { threads: 2, kernels, simd });
  const native = run(fn);
  uninstallNativeKernels(tf);
  const stock = run(stockFn);
  installNativeKernels(tf, { threads: 2, kernels, simd });
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

/** A deterministic uniform [0, 1) generator (mulberry32), for random shapes in tests. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random shape of the given rank, dims in [1, maxDim], with ~1 in 4 dims equal to 1. */
export function randomShape(rand: () => number, rank: number, maxDim: number): number[] {
  return Array.from({ length: rank }, () => (rand() < 0.25 ? 1 : 1 + Math.floor(rand() * maxDim)));
}

/** A random permutation of 0..n-1. */
export function randomPerm(rand: () => number, n: number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [p[i], p[j]] = [p[j] as number, p[i] as number];
  }
  return p;
}

/**
 * Element by element against a float64 reference: |actual − expected| ≤ tol·|expected| + atol, with
 * atol = tol/10 of the largest |expected| (the absolute tolerance near zero, where a difference cancels).
 * A NaN must be expected where it appears.
 */
export function expectElementwise(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  tol = 1e-5,
): void {
  expect(actual.length, what).toBe(expected.length);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i] as number));
  const atol = (tol / 10) * scale + 1e-30;
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    const ratio = Number.isNaN(e)
      ? Number.isNaN(a)
        ? 0
        : Infinity
      : Math.abs(a - e) / (tol * Math.abs(e) + atol);
    if (!(ratio <= worst)) {
      worst = ratio;
      at = i;
    }
  }
  expect(worst, `${what}: element ${at} is ${actual[at]}, expected ${expected[at]}`).toBeLessThanOrEqual(1);
}
