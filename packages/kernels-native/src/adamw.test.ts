/**
 * QuorumAdamW (the fused AdamW update) against the formula in float64 and against the composed stock
 * ops of @quorum/backbone's AdamW (packages/backbone/src/optim.ts) on the stock wasm kernels, one step
 * and five steps fed back, at both SIMD widths; determinism (calls, threads, widths); inputs left
 * unchanged; leaks; errors. They need the built addon: where it did not build they fail, never skip.
 */
import { type AdamWHyper, composedAdamWUpdate } from '@quorum/backbone';
import { builtinBackendRegistry, FUSED_KERNELS, initCompute } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectElementwise, nativeVsStock, randn, relError, useSimd } from '../test/helpers.js';
import { installNativeKernels, NATIVE_KERNELS, uninstallNativeKernels } from './install.js';

/** The attributes of update number `t` (1-based), as the optimizer computes them. */
function hyperAt(
  t: number,
  h: { lr: number; beta1: number; beta2: number; epsilon: number; weightDecay: number; gradScale: number },
): AdamWHyper {
  return { ...h, biasCorrection1: 1 - h.beta1 ** t, biasCorrection2: 1 - h.beta2 ** t };
}

/** The optimizer states the tests start from. */
interface Case {
  readonly label: string;
  /** The update number (1: the first step, m = v = 0). */
  readonly t: number;
  readonly hyper: Omit<AdamWHyper, 'biasCorrection1' | 'biasCorrection2'>;
}

const CASES: readonly Case[] = [
  {
    label: 'first step, no decay',
    t: 1,
    hyper: { lr: 3e-4, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, gradScale: 1 },
  },
  {
    label: 'step 10, decay 0.1, clipped gradients (scale 0.25)',
    t: 10,
    hyper: { lr: 1e-3, beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1, gradScale: 0.25 },
  },
  {
    label: 'large lr 1, step 3, decay 0.01, scale 3',
    t: 3,
    hyper: { lr: 1, beta1: 0.8, beta2: 0.99, epsilon: 1e-6, weightDecay: 0.01, gradScale: 3 },
  },
  {
    label: 'small lr 1e-7, step 1000, decay 0.1',
    t: 1000,
    hyper: { lr: 1e-7, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1, gradScale: 1 },
  },
];

// Scalar-ish, vector tails (7, 17), one chunk (128), the chunk size + 1 (8193), 8 chunks ([128, 512]),
// 64 chunks and a tail ([4097, 128]).
const SHAPES: readonly number[][] = [[1], [7], [17], [128], [8193], [128, 512], [4097, 128]];

beforeAll(async () => {
  await initCompute({ backend: 'wasm', registry: builtinBackendRegistry() });
  installNativeKernels(tf, { threads: 2, kernels: NATIVE_KERNELS });
});

afterAll(() => {
  useSimd(undefined);
  uninstallNativeKernels(tf);
});

/** Runs QuorumAdamW: [param′, m′, v′]. */
function fusedAdamW(
  param: tf.Tensor,
  grad: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  h: AdamWHyper,
): tf.Tensor[] {
  return tf
    .engine()
    .runKernel(FUSED_KERNELS.adamW, { param, grad, m, v }, h as unknown as tf.NamedAttrMap) as tf.Tensor[];
}

/** The formula in float64 from the float32 inputs: [param′, m′, v′]. */
function adamW64(
  param: Float32Array,
  grad: Float32Array,
  m: Float32Array,
  v: Float32Array,
  h: AdamWHyper,
): Float64Array[] {
  const n = param.length;
  const p1 = new Float64Array(n);
  const m1 = new Float64Array(n);
  const v1 = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const g = (grad[i] as number) * h.gradScale;
    const mi = h.beta1 * (m[i] as number) + (1 - h.beta1) * g;
    const vi = h.beta2 * (v[i] as number) + (1 - h.beta2) * g * g;
    m1[i] = mi;
    v1[i] = vi;
    p1[i] =
      (param[i] as number) * (1 - h.lr * h.weightDecay) -
      (h.lr * (mi / h.biasCorrection1)) / (Math.sqrt(vi / h.biasCorrection2) + h.epsilon);
  }
  return [p1, m1, v1];
}

/**
 * The inputs of a case: param ~ N(0, 1), grad ~ N(0, 1) with every 7th element 0. On the first step
 * m = v = 0; later, m ~ N(0, 0.1²) and v = m² + 0.01·N(0, 1)² (v ≥ m², as Adam's moments keep it),
 * with every 11th element's m, v and grad all 0.
 */
function inputs(shape: number[], c: Case, seed: number): [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor] {
  return tf.tidy(() => {
    const n = tf.util.sizeFromShape(shape);
    const param = randn(shape, seed); // shape
    const g = randn([n], seed + 1).dataSync() as Float32Array;
    for (let i = 0; i < n; i += 7) g[i] = 0;
    if (c.t === 1) return [param, tf.tensor(g, shape), tf.zeros(shape), tf.zeros(shape)];
    const m = tf.mul(randn([n], seed + 2), 0.1); // [n]
    const v = tf.add(tf.square(m), tf.mul(tf.square(randn([n], seed + 3)), 0.01)); // [n]
    const ms = m.dataSync().slice();
    const vs = v.dataSync().slice();
    for (let i = 0; i < n; i += 11) g[i] = ms[i] = vs[i] = 0;
    return [param, tf.tensor(g, shape), tf.tensor(ms, shape), tf.tensor(vs, shape)];
  }) as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
}

/** The largest distance in float32 units in the last place (both arrays finite). */
function maxUlps(a: Float32Array, b: Float32Array): number {
  const ia = new Int32Array(a.buffer, a.byteOffset, a.length);
  const ib = new Int32Array(b.buffer, b.byteOffset, b.length);
  // float bits as a monotone integer line: negative floats mirrored below zero
  const ordered = (x: number): number => (x < 0 ? -2147483648 - x : x);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(worst, Math.abs(ordered(ia[i] as number) - ordered(ib[i] as number)));
  }
  return worst;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

/** The values of a kernel's outputs (then disposed). */
function values(run: () => tf.Tensor[]): Float32Array[] {
  const outs = tf.tidy(run);
  const vals = outs.map((t) => t.dataSync().slice() as Float32Array);
  tf.dispose(outs);
  return vals;
}

for (const simd of [512, 256] as const) {
  describe(`QuorumAdamW at ${simd} bits`, () => {
    beforeAll(() => {
      useSimd(simd);
      installNativeKernels(tf, { threads: 2, kernels: NATIVE_KERNELS, simd });
    });
    afterAll(() => {
      useSimd(undefined);
      installNativeKernels(tf, { threads: 2, kernels: NATIVE_KERNELS });
    });

    it('matches the formula in float64 (rel. 1e-5), first step, decay, grad scale, large and small lr', () => {
      CASES.forEach((c, k) => {
        const h = hyperAt(c.t, c.hyper);
        SHAPES.forEach((shape, s) => {
          const [param, grad, m, v] = inputs(shape, c, 1000 * k + 10 * s);
          const outs = fusedAdamW(param, grad, m, v, h);
          expect(outs.map((t) => t.shape)).toEqual([shape, shape, shape]);
          expect(outs.map((t) => t.dtype)).toEqual(['float32', 'float32', 'float32']);
          const want = adamW64(
            param.dataSync() as Float32Array,
            grad.dataSync() as Float32Array,
            m.dataSync() as Float32Array,
            v.dataSync() as Float32Array,
            h,
          );
          ['param′', 'm′', 'v′'].forEach((what, i) => {
            expectElementwise(
              (outs[i] as tf.Tensor).dataSync(),
              want[i] as Float64Array,
              `${c.label}, ${what} [${shape}]`,
            );
          });
          tf.dispose([...outs, param, grad, m, v]);
        });
      });
    });

    it('matches the composed stock ops of the backbone optimizer (rel. 1e-6, at most 1 ulp)', () => {
      CASES.forEach((c, k) => {
        const h = hyperAt(c.t, c.hyper);
        SHAPES.forEach((shape, s) => {
          const [param, grad, m, v] = inputs(shape, c, 2000 + 1000 * k + 10 * s);
          const { native, stock } = nativeVsStock(
            () => fusedAdamW(param, grad, m, v, h),
            () => composedAdamWUpdate(param, grad, m, v, h),
          );
          native.forEach((got, i) => {
            const want = stock[i] as Float32Array;
            const what = `${c.label}, output ${i} [${shape}]`;
            expect(relError(got, want), what).toBeLessThanOrEqual(1e-6);
            expect(maxUlps(got, want), what).toBeLessThanOrEqual(1);
          });
          tf.dispose([param, grad, m, v]);
        });
      });
    });

    it('five updates fed back match five composed updates (rel. 1e-5)', () => {
      const base = { lr: 1e-3, beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1, gradScale: 0.5 };
      for (const shape of [[7], [128], [128, 512]]) {
        const first: Case = { label: 'multi-step', t: 1, hyper: base };
        const [param, , m, v] = inputs(shape, first, 77);
        const grads = [0, 1, 2, 3, 4].map((j) => randn(shape, 500 + j)); // shape each
        const steps = (update: typeof fusedAdamW) => (): tf.Tensor[] => {
          let state = [param, m, v];
          grads.forEach((grad, j) => {
            const [p0, m0, v0] = state as [tf.Tensor, tf.Tensor, tf.Tensor];
            state = update(p0, grad, m0, v0, hyperAt(j + 1, base));
          });
          return state;
        };
        const { native, stock } = nativeVsStock(steps(fusedAdamW), steps(composedAdamWUpdate));
        native.forEach((got, i) => {
          expect(relError(got, stock[i] as Float32Array), `output ${i} [${shape}]`).toBeLessThanOrEqual(1e-5);
        });
        tf.dispose([param, m, v, ...grads]);
      }
    });

    it('is deterministic: the same bits on every call and with 1 or 2 threads', () => {
      const c = CASES[1] as Case;
      const h = hyperAt(c.t, c.hyper);
      for (const shape of [[128], [128, 512], [4097, 128]]) {
        const [param, grad, m, v] = inputs(shape, c, 31);
        const first = values(() => fusedAdamW(param, grad, m, v, h));
        const again = values(() => fusedAdamW(param, grad, m, v, h));
        installNativeKernels(tf, { threads: 1, kernels: NATIVE_KERNELS, simd });
        const oneThread = values(() => fusedAdamW(param, grad, m, v, h));
        installNativeKernels(tf, { threads: 2, kernels: NATIVE_KERNELS, simd });
        first.forEach((want, i) => {
          expect(sameBits(again[i] as Float32Array, want), `output ${i} [${shape}], again`).toBe(true);
          expect(sameBits(oneThread[i] as Float32Array, want), `output ${i} [${shape}], 1 thread`).toBe(true);
        });
        tf.dispose([param, grad, m, v]);
      }
    });
  });
}

describe('QuorumAdamW: widths, inputs, memory, errors', () => {
  it('gives the same bits at 512 and 256 bits (elementwise, no FMA)', () => {
    const c = CASES[2] as Case;
    const h = hyperAt(c.t, c.hyper);
    const [param, grad, m, v] = inputs([4097, 128], c, 5);
    const at = (simd: 256 | 512): Float32Array[] => {
      installNativeKernels(tf, { threads: 2, kernels: NATIVE_KERNELS, simd });
      return values(() => fusedAdamW(param, grad, m, v, h));
    };
    const wide = at(512);
    const narrow = at(256);
    installNativeKernels(tf, { threads: 2, kernels: NATIVE_KERNELS });
    wide.forEach((want, i) => {
      expect(sameBits(narrow[i] as Float32Array, want), `output ${i}`).toBe(true);
    });
    tf.dispose([param, grad, m, v]);
  });

  it('leaves its inputs unchanged and leaks nothing', () => {
    const c = CASES[1] as Case;
    const h = hyperAt(c.t, c.hyper);
    for (const shape of [[128], [128, 512]]) {
      const ins = inputs(shape, c, 9);
      const before = ins.map((t) => t.dataSync().slice() as Float32Array);
      const tensors = tf.memory().numTensors;
      const bytes = tf.memory().numBytes;
      for (let rep = 0; rep < 3; rep++) {
        tf.dispose(fusedAdamW(...ins, h));
        tf.tidy(() => {
          fusedAdamW(...ins, h);
        });
      }
      // a rejected call allocates nothing
      expect(() =>
        tf.tidy(() => fusedAdamW(ins[0], ins[1], ins[2], ins[3], { ...h, biasCorrection2: 0 })),
      ).toThrow(/biasCorrection2 must be > 0/);
      expect(tf.memory().numTensors).toBe(tensors);
      expect(tf.memory().numBytes).toBe(bytes);
      ins.forEach((t, i) => {
        expect(sameBits(t.dataSync() as Float32Array, before[i] as Float32Array), `input ${i}`).toBe(true);
      });
      tf.dispose(ins);
    }
  });

  it('handles empty tensors', () => {
    const h = hyperAt(1, CASES[0]?.hyper as Case['hyper']);
    const shapes = tf.tidy(() => {
      const z = tf.zeros([0, 4]);
      return fusedAdamW(z, z, z, z, h).map((t) => [t.shape, t.size]);
    });
    expect(shapes).toEqual([
      [[0, 4], 0],
      [[0, 4], 0],
      [[0, 4], 0],
    ]);
  });

  it('rejects other dtypes, mismatched shapes and bad attributes with the reason', () => {
    const h = hyperAt(1, CASES[0]?.hyper as Case['hyper']);
    tf.tidy(() => {
      const x = tf.ones([4]);
      expect(() => fusedAdamW(x, tf.ones([3]), x, x, h)).toThrow(
        /grad \[3\] and param \[4\] differ in shape/,
      );
      expect(() => fusedAdamW(x, x, tf.ones([2, 2]), x, h)).toThrow(
        /m \[2, 2\] and param \[4\] differ in shape/,
      );
      expect(() => fusedAdamW(x, x, x, tf.ones([4], 'int32'), h)).toThrow(/v must be float32, got int32/);
      expect(() => fusedAdamW(tf.ones([4], 'int32'), x, x, x, h)).toThrow(/param must be float32, got int32/);
      expect(() =>
        tf
          .engine()
          .runKernel(FUSED_KERNELS.adamW, { param: x, grad: x, v: x }, h as unknown as tf.NamedAttrMap),
      ).toThrow(/input "m" is missing/);
      const { gradScale: _, ...noScale } = h;
      expect(() => fusedAdamW(x, x, x, x, noScale as AdamWHyper)).toThrow(
        /attribute gradScale must be a finite number, got undefined/,
      );
      expect(() => fusedAdamW(x, x, x, x, { ...h, lr: Number.NaN })).toThrow(
        /attribute lr must be a finite number, got NaN/,
      );
      expect(() => fusedAdamW(x, x, x, x, { ...h, epsilon: Number.POSITIVE_INFINITY })).toThrow(
        /attribute epsilon must be a finite number/,
      );
      expect(() => fusedAdamW(x, x, x, x, { ...h, biasCorrection1: 0 })).toThrow(
        /attribute biasCorrection1 must be > 0/,
      );
      expect(() => fusedAdamW(x, x, x, x, { ...h, biasCorrection2: -0.5 })).toThrow(
        /attribute biasCorrection2 must be > 0/,
      );
    });
  });
});
