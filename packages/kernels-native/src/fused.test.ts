/**
 * The fused kernels (QuorumGelu, QuorumGeluGrad, QuorumSilu, QuorumSiluGrad, QuorumLayerNorm,
 * QuorumLayerNormGrad, QuorumRmsNorm, QuorumRmsNormGrad) against the same math in float64 (element by element)
 * and composed of stock tfjs ops on the stock wasm kernels (forward ops, and tf.grad of them for the
 * gradients), at both SIMD widths; the determinism of the norm gradients' row sums; leaks; registration only
 * while installed. They need the built addon: where it did not build they fail, they never skip.
 */
import {
  composedGelu,
  composedLayerNorm,
  composedRmsNorm,
  composedSilu,
  fusedKernelsActive,
  gelu,
  layerNorm,
  rmsNorm,
  silu,
} from '@quorum/backbone';
import { builtinBackendRegistry, FUSED_KERNELS, hasFusedKernel, initCompute } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectElementwise, nativeVsStock, randn, relError, seededRandom, useSimd } from '../test/helpers.js';
import { nativeBackend } from './backend.js';
import { NATIVE_FUSED_KERNELS } from './fused.js';
import { installNativeKernels, NATIVE_KERNELS, nativeStatus, uninstallNativeKernels } from './install.js';

const TOL = 1e-5;
const EPS = 1e-5;
const K = Math.sqrt(2 / Math.PI);
const C = 0.044715;

beforeAll(async () => {
  await initCompute({ backend: 'wasm', registry: builtinBackendRegistry() });
  installNativeKernels(tf, { threads: 2, kernels: NATIVE_KERNELS });
});

afterAll(() => {
  useSimd(undefined);
  uninstallNativeKernels(tf);
});

/** Runs a kernel by name (as @quorum/backbone does); always a list of outputs. */
function run(name: string, inputs: tf.NamedTensorMap, attrs: Record<string, number> = {}): tf.Tensor[] {
  const out = tf.engine().runKernel(name, inputs, attrs as unknown as tf.NamedAttrMap);
  return Array.isArray(out) ? (out as tf.Tensor[]) : [out as tf.Tensor];
}

// ---- float64 references
function gelu64(x: number): number {
  return 0.5 * x * (1 + Math.tanh(K * (x + C * x ** 3)));
}

function geluDeriv64(x: number): number {
  const t = Math.tanh(K * (x + C * x ** 3));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * K * (1 + 3 * C * x * x);
}

interface LayerNorm64 {
  y: Float64Array;
  mean: Float64Array;
  rstd: Float64Array;
}

function layerNorm64(x: Float32Array, gamma: Float32Array, beta: Float32Array, d: number): LayerNorm64 {
  const n = x.length / d;
  const y = new Float64Array(x.length);
  const mean = new Float64Array(n);
  const rstd = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[r * d + j] as number;
    const m = s / d;
    let v = 0;
    for (let j = 0; j < d; j++) v += ((x[r * d + j] as number) - m) ** 2;
    const rs = 1 / Math.sqrt(v / d + EPS);
    mean[r] = m;
    rstd[r] = rs;
    for (let j = 0; j < d; j++)
      y[r * d + j] = ((x[r * d + j] as number) - m) * rs * (gamma[j] as number) + (beta[j] as number);
  }
  return { y, mean, rstd };
}

/** The gradient from the float32 mean and rstd the forward kernel gave (as the grad kernel gets them). */
function layerNormGrad64(
  dy: Float32Array,
  x: Float32Array,
  gamma: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  d: number,
): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const n = x.length / d;
  const dx = new Float64Array(x.length);
  const dgamma = new Float64Array(d);
  const dbeta = new Float64Array(d);
  for (let r = 0; r < n; r++) {
    const m = mean[r] as number;
    const rs = rstd[r] as number;
    let a = 0;
    let b = 0;
    for (let j = 0; j < d; j++) {
      const i = r * d + j;
      const xh = ((x[i] as number) - m) * rs;
      const g = (dy[i] as number) * (gamma[j] as number);
      a += g;
      b += g * xh;
      dgamma[j] = (dgamma[j] as number) + (dy[i] as number) * xh;
      dbeta[j] = (dbeta[j] as number) + (dy[i] as number);
    }
    a /= d;
    b /= d;
    for (let j = 0; j < d; j++) {
      const i = r * d + j;
      const xh = ((x[i] as number) - m) * rs;
      dx[i] = rs * ((dy[i] as number) * (gamma[j] as number) - a - xh * b);
    }
  }
  return { dx, dgamma, dbeta };
}

function silu64(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** σ(x)·(1 + x·(1 − σ(x))), with 1 − σ(x) = e^−x·σ(x) (no cancellation for large x). */
function siluDeriv64(x: number): number {
  const e = Math.exp(-x);
  const s = 1 / (1 + e);
  return Number.isFinite(e) ? s * (1 + x * e * s) : 0;
}

function rmsNorm64(x: Float32Array, gamma: Float32Array, d: number): { y: Float64Array; rstd: Float64Array } {
  const n = x.length / d;
  const y = new Float64Array(x.length);
  const rstd = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += (x[r * d + j] as number) ** 2;
    const rs = 1 / Math.sqrt(ss / d + EPS);
    rstd[r] = rs;
    for (let j = 0; j < d; j++) y[r * d + j] = (x[r * d + j] as number) * rs * (gamma[j] as number);
  }
  return { y, rstd };
}

/**
 * The RMSNorm gradient from the float32 rstd the forward kernel gave; `scale` [N·D] is |rstd·dy·gamma|, the
 * size of the terms that cancel in dx (see the D = 1 check).
 */
function rmsNormGrad64(
  dy: Float32Array,
  x: Float32Array,
  gamma: Float32Array,
  rstd: Float32Array,
  d: number,
): { dx: Float64Array; dgamma: Float64Array; scale: Float64Array } {
  const n = x.length / d;
  const dx = new Float64Array(x.length);
  const scale = new Float64Array(x.length);
  const dgamma = new Float64Array(d);
  for (let r = 0; r < n; r++) {
    const rs = rstd[r] as number;
    let b = 0;
    for (let j = 0; j < d; j++) {
      const i = r * d + j;
      const xh = (x[i] as number) * rs;
      b += (dy[i] as number) * (gamma[j] as number) * xh;
      dgamma[j] = (dgamma[j] as number) + (dy[i] as number) * xh;
    }
    b /= d;
    for (let j = 0; j < d; j++) {
      const i = r * d + j;
      const g = (dy[i] as number) * (gamma[j] as number);
      dx[i] = rs * (g - (x[i] as number) * rs * b);
      scale[i] = Math.abs(rs * g);
    }
  }
  return { dx, dgamma, scale };
}

/**
 * Element by element: |actual − expected| ≤ rtol·|expected| + atol (for inputs where a relative bound holds
 * everywhere, unlike expectElementwise's atol from the largest value).
 */
function expectRelative(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  rtol: number,
  atol: number,
): void {
  expect(actual.length, what).toBe(expected.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const ratio =
      Math.abs((actual[i] as number) - (expected[i] as number)) /
      (rtol * Math.abs(expected[i] as number) + atol);
    if (!(ratio <= worst)) {
      worst = ratio;
      at = i;
    }
  }
  expect(worst, `${what}: element ${at} is ${actual[at]}, expected ${expected[at]}`).toBeLessThanOrEqual(1);
}

/**
 * Fused (native installed) vs composed (stock kernels), per output: max |diff| ≤ TOL · max(1, max |stock|).
 * The floor of 1 is the absolute tolerance near zero: the composed GELU loses its digits where
 * 1 + tanh u cancels (x < −3; e.g. gelu(−5) = −2.29e-7 comes out as −2.98e-7), so an output of only
 * tiny values is judged by absolute error.
 */
function expectCloseToStock(fused: () => tf.Tensor[], composed: () => tf.Tensor[], what: string): void {
  const { native, stock } = nativeVsStock(fused, composed);
  native.forEach((values, i) => {
    expect(relError(values, stock[i] as Float32Array, 1), `${what}, output ${i}`).toBeLessThanOrEqual(TOL);
  });
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

/** Random normal values with some outliers, and GELU's interesting range written in. */
function geluInput(shape: number[], seed: number): tf.Tensor {
  return tf.tidy(() => {
    const size = tf.util.sizeFromShape(shape);
    const fixed = [
      -1e4, -100, -30, -10.5, -10, -9.99, -5, -3, -1, -1e-3, 0, 1e-3, 1, 3, 5, 9.99, 10, 10.5, 30, 100,
    ];
    const x = tf
      .mul(randn([size], seed), 4)
      .dataSync()
      .slice();
    for (let i = 0; i < Math.min(size, fixed.length); i++) x[(i * 7919) % size] = fixed[i] as number;
    return tf.tensor(x, shape); // shape
  });
}

/** Random normal values (std 4) with SiLU's interesting range written in (its minimum, 0, ±30). */
function siluInput(shape: number[], seed: number): tf.Tensor {
  return tf.tidy(() => {
    const size = tf.util.sizeFromShape(shape);
    const fixed = [-30, -20, -10, -5, -2, -1.2785, -1, -1e-3, -1e-30, 0, 1e-3, 1, 2.3994, 5, 10, 20, 30];
    const x = tf
      .mul(randn([size], seed), 4)
      .dataSync()
      .slice();
    for (let i = 0; i < Math.min(size, fixed.length); i++) x[(i * 7919) % size] = fixed[i] as number;
    return tf.tensor(x, shape); // shape
  });
}

const SHAPES_D = [1, 7, 128, 512, 1000];

for (const simd of [512, 256] as const) {
  describe(`fused kernels at ${simd} bits`, () => {
    beforeAll(() => {
      useSimd(simd);
      installNativeKernels(tf, { threads: 2, kernels: NATIVE_KERNELS, simd });
    });
    afterAll(() => {
      useSimd(undefined);
      installNativeKernels(tf, { threads: 2, kernels: NATIVE_KERNELS });
    });

    const rand = seededRandom(simd);
    const geluShapes = [[1], [7], [16], [17], [3, 5, 7], [4097], [33, 1000], [70001], [2, 9, 512]];
    for (let i = 0; i < 3; i++) {
      geluShapes.push([1 + Math.floor(rand() * 300), 1 + Math.floor(rand() * 300)]);
    }

    it('QuorumGelu matches float64 and the composed stock ops, ±10 and beyond included', () => {
      geluShapes.forEach((shape, k) => {
        const x = geluInput(shape, 10 + k);
        const xs = x.dataSync() as Float32Array;
        const [y] = run(FUSED_KERNELS.gelu, { x }) as [tf.Tensor];
        expect(y.shape).toEqual(shape);
        expectElementwise(y.dataSync(), Float64Array.from(xs, gelu64), `gelu [${shape}]`);
        y.dispose();
        expectCloseToStock(
          () => run(FUSED_KERNELS.gelu, { x }),
          () => [composedGelu(x)],
          `gelu [${shape}]`,
        );
        x.dispose();
      });
      // saturation: exactly x past +10, exactly 0 in float64 and tiny here past −10; NaN stays NaN
      const y = tf.tidy(
        () => run(FUSED_KERNELS.gelu, { x: tf.tensor1d([-1e30, -20, 20, 1e30, Number.NaN]) })[0],
      );
      const v = (y as tf.Tensor).dataSync();
      expect(Math.abs(v[0] as number)).toBeLessThan(1e-8);
      expect(Math.abs(v[1] as number)).toBeLessThan(1e-30);
      expect([v[2], v[3]]).toEqual([20, 1e30].map(Math.fround));
      expect(Number.isNaN(v[4] as number)).toBe(true);
      (y as tf.Tensor).dispose();
    });

    it('QuorumGeluGrad matches float64 and tf.grad of the composed stock ops', () => {
      geluShapes.forEach((shape, k) => {
        const x = geluInput(shape, 20 + k);
        const dy = randn(shape, 30 + k);
        const xs = x.dataSync() as Float32Array;
        const dys = dy.dataSync() as Float32Array;
        const [dx] = run(FUSED_KERNELS.geluGrad, { dy, x }) as [tf.Tensor];
        expect(dx.shape).toEqual(shape);
        expectElementwise(
          dx.dataSync(),
          Float64Array.from(xs, (v, i) => (dys[i] as number) * geluDeriv64(v)),
          `gelu′ [${shape}]`,
        );
        dx.dispose();
        expectCloseToStock(
          () => run(FUSED_KERNELS.geluGrad, { dy, x }),
          () => [tf.grad(composedGelu)(x, dy)],
          `gelu′ [${shape}]`,
        );
        tf.dispose([x, dy]);
      });
      const d = tf.tidy(
        () =>
          run(FUSED_KERNELS.geluGrad, {
            dy: tf.ones([5]),
            x: tf.tensor1d([-1e30, -20, 20, 1e30, Number.NaN]),
          })[0],
      ) as tf.Tensor;
      const v = d.dataSync();
      expect(Math.abs(v[0] as number)).toBeLessThan(1e-30);
      expect(Math.abs(v[1] as number)).toBeLessThan(1e-30);
      expect([v[2], v[3]]).toEqual([1, 1]);
      expect(Number.isNaN(v[4] as number)).toBe(true);
      d.dispose();
    });

    // N not divisible by the thread count (and by the grad's row chunks), every D, ranks 1 to 3
    const lnShapes: number[][] = [];
    for (const d of SHAPES_D) {
      lnShapes.push([d], [3, d], [37, d], [1 + Math.floor(rand() * 200), d]);
    }
    lnShapes.push([4097, 128], [1025, 512], [3, 5, 7], [2, 33, 1000]);

    const lnInputs = (shape: number[], seed: number): [tf.Tensor, tf.Tensor, tf.Tensor] => {
      const d = shape[shape.length - 1] as number;
      return [
        tf.tidy(() => tf.add(tf.mul(randn(shape, seed), 2), 3)), // shape, mean 3, std 2
        tf.tidy(() => tf.add(tf.mul(randn([d], seed + 1), 0.5), 1)), // [D]
        randn([d], seed + 2), // [D]
      ];
    };

    it('QuorumLayerNorm matches float64 and the composed stock ops (y, mean, rstd)', () => {
      lnShapes.forEach((shape, k) => {
        const d = shape[shape.length - 1] as number;
        const [x, gamma, beta] = lnInputs(shape, 100 + 3 * k);
        const outs = run(FUSED_KERNELS.layerNorm, { x, gamma, beta }, { epsilon: EPS });
        const [y, mean, rstd] = outs as [tf.Tensor, tf.Tensor, tf.Tensor];
        expect(y.shape).toEqual(shape);
        expect(mean.shape).toEqual(shape.slice(0, -1));
        expect(rstd.shape).toEqual(shape.slice(0, -1));
        const want = layerNorm64(
          x.dataSync() as Float32Array,
          gamma.dataSync() as Float32Array,
          beta.dataSync() as Float32Array,
          d,
        );
        expectElementwise(y.dataSync(), want.y, `layerNorm y [${shape}]`);
        expectElementwise(mean.dataSync(), want.mean, `layerNorm mean [${shape}]`);
        expectElementwise(rstd.dataSync(), want.rstd, `layerNorm rstd [${shape}]`);
        tf.dispose(outs);
        expectCloseToStock(
          () => run(FUSED_KERNELS.layerNorm, { x, gamma, beta }, { epsilon: EPS }),
          () => {
            const { mean: m, variance } = tf.moments(x, -1); // [...]
            return [composedLayerNorm(x, gamma, beta, EPS), m, tf.rsqrt(tf.add(variance, EPS))];
          },
          `layerNorm [${shape}]`,
        );
        tf.dispose([x, gamma, beta]);
      });
    });

    it('QuorumLayerNormGrad matches float64 and tf.grad of the composed (tf.moments) layer norm', () => {
      lnShapes.forEach((shape, k) => {
        const d = shape[shape.length - 1] as number;
        const [x, gamma, beta] = lnInputs(shape, 200 + 3 * k);
        const dy = randn(shape, 300 + k);
        const fused = (): tf.Tensor[] => {
          const [, mean, rstd] = run(FUSED_KERNELS.layerNorm, { x, gamma, beta }, { epsilon: EPS }) as [
            tf.Tensor,
            tf.Tensor,
            tf.Tensor,
          ];
          return run(FUSED_KERNELS.layerNormGrad, { dy, x, gamma, mean, rstd }); // [..., D], [D], [D]
        };
        const outs = tf.tidy(() => {
          const [, mean, rstd] = run(FUSED_KERNELS.layerNorm, { x, gamma, beta }, { epsilon: EPS });
          return [
            mean,
            rstd,
            ...run(FUSED_KERNELS.layerNormGrad, { dy, x, gamma, mean, rstd } as tf.NamedTensorMap),
          ];
        });
        const [mean, rstd, dx, dgamma, dbeta] = outs as tf.Tensor[] as [
          tf.Tensor,
          tf.Tensor,
          tf.Tensor,
          tf.Tensor,
          tf.Tensor,
        ];
        expect(dx.shape).toEqual(shape);
        expect(dgamma.shape).toEqual([d]);
        expect(dbeta.shape).toEqual([d]);
        const want = layerNormGrad64(
          dy.dataSync() as Float32Array,
          x.dataSync() as Float32Array,
          gamma.dataSync() as Float32Array,
          mean.dataSync() as Float32Array,
          rstd.dataSync() as Float32Array,
          d,
        );
        expectElementwise(dx.dataSync(), want.dx, `layerNorm dx [${shape}]`);
        expectElementwise(dgamma.dataSync(), want.dgamma, `layerNorm dgamma [${shape}]`);
        expectElementwise(dbeta.dataSync(), want.dbeta, `layerNorm dbeta [${shape}]`);
        tf.dispose(outs);
        expectCloseToStock(
          fused,
          () =>
            tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => composedLayerNorm(a, g, b, EPS))(
              [x, gamma, beta],
              dy,
            ),
          `layerNorm grad [${shape}]`,
        );
        tf.dispose([x, gamma, beta, dy]);
      });
    });

    it('QuorumLayerNormGrad is deterministic: the same bits on every call and with 1 or 2 threads', () => {
      for (const shape of [
        [4097, 128],
        [1025, 512],
        [63, 1000],
      ]) {
        const [x, gamma, beta] = lnInputs(shape, 7);
        const dy = randn(shape, 8);
        const grads = (): Float32Array[] => {
          const outs = tf.tidy(() => {
            const [, mean, rstd] = run(
              FUSED_KERNELS.layerNorm,
              { x, gamma, beta },
              { epsilon: EPS },
            ) as tf.Tensor[];
            return run(FUSED_KERNELS.layerNormGrad, { dy, x, gamma, mean, rstd } as tf.NamedTensorMap); // [N, D], [D], [D]
          });
          // read outside the tidy: tidy walks its result, element by element for a typed array
          const values = outs.map((t) => t.dataSync() as Float32Array);
          tf.dispose(outs);
          return values;
        };
        const first = grads();
        for (let rep = 0; rep < 3; rep++) {
          const again = grads();
          first.forEach((values, i) => {
            expect(sameBits(again[i] as Float32Array, values), `output ${i}`).toBe(true);
          });
        }
        installNativeKernels(tf, { threads: 1, kernels: NATIVE_KERNELS, simd });
        const oneThread = grads();
        installNativeKernels(tf, { threads: 2, kernels: NATIVE_KERNELS, simd });
        first.forEach((values, i) => {
          expect(sameBits(oneThread[i] as Float32Array, values), `output ${i}, 1 thread`).toBe(true);
        });
        tf.dispose([x, gamma, beta, dy]);
      }
    });

    // SiLU: the GELU shapes (tails of every length at both widths, chunks over the threads)
    it('QuorumSilu matches float64 and the composed stock ops', () => {
      geluShapes.forEach((shape, k) => {
        const x = siluInput(shape, 50 + k);
        const xs = x.dataSync() as Float32Array;
        const [y] = run(FUSED_KERNELS.silu, { x }) as [tf.Tensor];
        expect(y.shape).toEqual(shape);
        expectElementwise(y.dataSync(), Float64Array.from(xs, silu64), `silu [${shape}]`);
        y.dispose();
        expectCloseToStock(
          () => run(FUSED_KERNELS.silu, { x }),
          () => [composedSilu(x)],
          `silu [${shape}]`,
        );
        x.dispose();
      });
    });

    it('QuorumSiluGrad matches float64 and tf.grad of the composed stock ops', () => {
      geluShapes.forEach((shape, k) => {
        const x = siluInput(shape, 60 + k);
        const dy = randn(shape, 70 + k);
        const xs = x.dataSync() as Float32Array;
        const dys = dy.dataSync() as Float32Array;
        const [dx] = run(FUSED_KERNELS.siluGrad, { dy, x }) as [tf.Tensor];
        expect(dx.shape).toEqual(shape);
        expectElementwise(
          dx.dataSync(),
          Float64Array.from(xs, (v, i) => (dys[i] as number) * siluDeriv64(v)),
          `silu′ [${shape}]`,
        );
        dx.dispose();
        expectCloseToStock(
          () => run(FUSED_KERNELS.siluGrad, { dy, x }),
          () => [tf.grad(composedSilu)(x, dy)],
          `silu′ [${shape}]`,
        );
        tf.dispose([x, dy]);
      });
    });

    it('QuorumSilu and QuorumSiluGrad: relative accuracy over [−88, 88], saturation beyond, NaN stays NaN', () => {
      // every 1/128 from −88 to 88 (22529 values, a tail at both widths): relative error, no absolute floor
      // for silu (its values run from 5e-37 to 88); silu′ gets 1e-6 absolute near its root at x ≈ −1.2785, where
      // s + x·s·(1 − s) cancels
      const grid = Float32Array.from({ length: 176 * 128 + 1 }, (_, i) => -88 + i / 128);
      const [y, d] = tf.tidy(() => {
        const x = tf.tensor1d(grid);
        return [run(FUSED_KERNELS.silu, { x })[0], run(FUSED_KERNELS.siluGrad, { dy: tf.onesLike(x), x })[0]];
      }) as [tf.Tensor, tf.Tensor];
      expectRelative(y.dataSync(), Float64Array.from(grid, silu64), 'silu on the grid', 1e-5, 0);
      expectRelative(d.dataSync(), Float64Array.from(grid, siluDeriv64), 'silu′ on the grid', 1e-5, 1e-6);
      // the negative tail alone, relative (e^x·(1 + x), no cancellation there)
      const tail = grid.filter((v) => v <= -5);
      expectRelative(
        d.dataSync().slice(0, tail.length),
        Float64Array.from(tail, siluDeriv64),
        'silu′ for x ≤ −5',
        1e-5,
        0,
      );
      tf.dispose([y, d]);
      // past exp's clamp (±88.38): silu → 0 and x, silu′ → 0 and 1, bounded for any x (no x·e^88 blow-up)
      const far = [
        -Infinity,
        -3e38,
        -1e30,
        -1e4,
        -100,
        -88.5,
        88.5,
        100,
        1e4,
        1e30,
        3e38,
        Infinity,
        Number.NaN,
      ];
      const [fy, fd] = tf.tidy(() => {
        const x = tf.tensor1d(far);
        return [run(FUSED_KERNELS.silu, { x })[0], run(FUSED_KERNELS.siluGrad, { dy: tf.onesLike(x), x })[0]];
      }) as [tf.Tensor, tf.Tensor];
      const fv = [...fy.dataSync()];
      const dv = [...fd.dataSync()];
      for (let i = 0; i < 6; i++) {
        expect(Math.abs(fv[i] as number), `silu(${far[i]})`).toBeLessThan(1e-36);
        expect(Math.abs(dv[i] as number), `silu′(${far[i]})`).toBeLessThan(1e-36);
      }
      expect(fv.slice(6, 12)).toEqual(far.slice(6, 12).map(Math.fround));
      expect(dv.slice(6, 12)).toEqual([1, 1, 1, 1, 1, 1]);
      expect(Number.isNaN(fv[12] as number) && Number.isNaN(dv[12] as number)).toBe(true);
      tf.dispose([fy, fd]);
    });

    // the LayerNorm shapes: every D (1, odd 7 and 1000, multiples of both widths), ranks 1 to 3
    const rmsInputs = (shape: number[], seed: number): [tf.Tensor, tf.Tensor] => {
      const d = shape[shape.length - 1] as number;
      return [
        tf.tidy(() => tf.add(tf.mul(randn(shape, seed), 2), 0.5)), // shape, mean 0.5, std 2
        tf.tidy(() => tf.add(tf.mul(randn([d], seed + 1), 0.5), 1)), // [D]
      ];
    };

    it('QuorumRmsNorm matches float64 and the composed stock ops (y, rstd)', () => {
      lnShapes.forEach((shape, k) => {
        const d = shape[shape.length - 1] as number;
        const [x, gamma] = rmsInputs(shape, 400 + 2 * k);
        const outs = run(FUSED_KERNELS.rmsNorm, { x, gamma }, { epsilon: EPS });
        const [y, rstd] = outs as [tf.Tensor, tf.Tensor];
        expect(outs.length).toBe(2);
        expect(y.shape).toEqual(shape);
        expect(rstd.shape).toEqual(shape.slice(0, -1));
        const want = rmsNorm64(x.dataSync() as Float32Array, gamma.dataSync() as Float32Array, d);
        expectElementwise(y.dataSync(), want.y, `rmsNorm y [${shape}]`);
        expectElementwise(rstd.dataSync(), want.rstd, `rmsNorm rstd [${shape}]`);
        tf.dispose(outs);
        expectCloseToStock(
          () => run(FUSED_KERNELS.rmsNorm, { x, gamma }, { epsilon: EPS }),
          () => [composedRmsNorm(x, gamma, EPS), tf.rsqrt(tf.add(tf.mean(tf.square(x), -1), EPS))],
          `rmsNorm [${shape}]`,
        );
        tf.dispose([x, gamma]);
      });
    });

    it('QuorumRmsNormGrad matches float64 and tf.grad of the composed RMSNorm (dx, dgamma)', () => {
      lnShapes.forEach((shape, k) => {
        const d = shape[shape.length - 1] as number;
        const [x, gamma] = rmsInputs(shape, 500 + 2 * k);
        const dy = randn(shape, 600 + k);
        const outs = tf.tidy(() => {
          const [, rstd] = run(FUSED_KERNELS.rmsNorm, { x, gamma }, { epsilon: EPS });
          return [rstd, ...run(FUSED_KERNELS.rmsNormGrad, { dy, x, gamma, rstd } as tf.NamedTensorMap)];
        });
        const [rstd, dx, dgamma] = outs as [tf.Tensor, tf.Tensor, tf.Tensor];
        expect(outs.length).toBe(3);
        expect(dx.shape).toEqual(shape);
        expect(dgamma.shape).toEqual([d]);
        const want = rmsNormGrad64(
          dy.dataSync() as Float32Array,
          x.dataSync() as Float32Array,
          gamma.dataSync() as Float32Array,
          rstd.dataSync() as Float32Array,
          d,
        );
        if (d === 1) {
          // dx = rstd·g·(1 − x̂²) = rstd·g·ε/(x² + ε): all cancellation in float32 (x̂² rounds near 1), here as
          // in the composed ops; judged against the size of the terms that cancel, |rstd·g|
          const got = dx.dataSync();
          want.dx.forEach((v, i) => {
            expect(
              Math.abs((got[i] as number) - v),
              `rmsNorm dx [${shape}] element ${i}`,
            ).toBeLessThanOrEqual(1e-6 * (want.scale[i] as number));
          });
        } else {
          expectElementwise(dx.dataSync(), want.dx, `rmsNorm dx [${shape}]`);
        }
        expectElementwise(dgamma.dataSync(), want.dgamma, `rmsNorm dgamma [${shape}]`);
        tf.dispose(outs);
        expectCloseToStock(
          () => {
            const [, r] = run(FUSED_KERNELS.rmsNorm, { x, gamma }, { epsilon: EPS }) as [
              tf.Tensor,
              tf.Tensor,
            ];
            return run(FUSED_KERNELS.rmsNormGrad, { dy, x, gamma, rstd: r }); // [..., D], [D]
          },
          () => tf.grads((a: tf.Tensor, g: tf.Tensor) => composedRmsNorm(a, g, EPS))([x, gamma], dy),
          `rmsNorm grad [${shape}]`,
        );
        tf.dispose([x, gamma, dy]);
      });
    });

    it('QuorumRmsNormGrad is deterministic: the same bits on every call and with 1 or 2 threads', () => {
      for (const shape of [
        [4097, 128],
        [1025, 512],
        [63, 1000],
      ]) {
        const [x, gamma] = rmsInputs(shape, 9);
        const dy = randn(shape, 10);
        const grads = (): Float32Array[] => {
          const outs = tf.tidy(() => {
            const [, rstd] = run(FUSED_KERNELS.rmsNorm, { x, gamma }, { epsilon: EPS }) as tf.Tensor[];
            return run(FUSED_KERNELS.rmsNormGrad, { dy, x, gamma, rstd } as tf.NamedTensorMap); // [N, D], [D]
          });
          const values = outs.map((t) => t.dataSync() as Float32Array);
          tf.dispose(outs);
          return values;
        };
        const first = grads();
        for (let rep = 0; rep < 3; rep++) {
          const again = grads();
          first.forEach((values, i) => {
            expect(sameBits(again[i] as Float32Array, values), `output ${i}`).toBe(true);
          });
        }
        installNativeKernels(tf, { threads: 1, kernels: NATIVE_KERNELS, simd });
        const oneThread = grads();
        installNativeKernels(tf, { threads: 2, kernels: NATIVE_KERNELS, simd });
        first.forEach((values, i) => {
          expect(sameBits(oneThread[i] as Float32Array, values), `output ${i}, 1 thread`).toBe(true);
        });
        tf.dispose([x, gamma, dy]);
      }
    });

    it("trains through @quorum/backbone's silu and rmsNorm (fused here, composed on the stock kernels)", () => {
      // loss = Σ w · RMSNorm(SiLU(x)·u) (SwiGLU's product, then a norm); gradients for x, u, gamma
      const shape = [37, 127];
      const seen: boolean[] = [];
      const [x, gamma] = rmsInputs(shape, 42);
      const u = randn(shape, 43);
      const w = randn(shape, 44);
      const grads = (): tf.Tensor[] => {
        const active = fusedKernelsActive();
        seen.push(active.silu && active.rmsNorm);
        return tf.grads((a: tf.Tensor, b: tf.Tensor, g: tf.Tensor) =>
          tf.sum(tf.mul(rmsNorm(tf.mul(silu(a), b), g, EPS), w)),
        )([x, u, gamma]);
      };
      expectCloseToStock(grads, grads, 'Σ w·RMSNorm(SiLU(x)·u) gradients');
      expect(seen).toEqual([true, false]); // the native run took the fused kernels, the stock run composed
      tf.dispose([x, gamma, u, w]);
    });

    it("trains through @quorum/backbone's gelu and layerNorm (fused here, composed on the stock kernels)", () => {
      // loss = Σ w · LayerNorm(GELU(x)); gradients for x, gamma, beta through the fused kernels vs stock
      const shape = [37, 128];
      const seen: boolean[] = [];
      const [x, gamma, beta] = lnInputs(shape, 40);
      const w = randn(shape, 41);
      const grads = (): tf.Tensor[] => {
        const active = fusedKernelsActive();
        seen.push(active.gelu && active.layerNorm);
        return tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(layerNorm(gelu(a), g, b, EPS), w)),
        )([x, gamma, beta]);
      };
      expectCloseToStock(grads, grads, 'Σ w·LayerNorm(GELU(x)) gradients');
      expect(seen).toEqual([true, false]); // the native run took the fused kernels, the stock run composed
      tf.dispose([x, gamma, beta, w]);
    });
  });
}

describe('fused kernels: memory, errors, registration', () => {
  it('leaks no tensor', () => {
    const x = randn([65, 128], 1);
    const gamma = randn([128], 2);
    const beta = randn([128], 3);
    const dy = randn([65, 128], 4);
    const tensors = tf.memory().numTensors;
    const bytes = tf.memory().numBytes;
    for (let rep = 0; rep < 3; rep++) {
      tf.tidy(() => {
        run(FUSED_KERNELS.gelu, { x });
        run(FUSED_KERNELS.geluGrad, { dy, x });
        const [, mean, rstd] = run(FUSED_KERNELS.layerNorm, { x, gamma, beta }, { epsilon: EPS });
        run(FUSED_KERNELS.layerNormGrad, { dy, x, gamma, mean, rstd } as tf.NamedTensorMap);
        run(FUSED_KERNELS.silu, { x });
        run(FUSED_KERNELS.siluGrad, { dy, x });
        const [, rms] = run(FUSED_KERNELS.rmsNorm, { x, gamma }, { epsilon: EPS });
        run(FUSED_KERNELS.rmsNormGrad, { dy, x, gamma, rstd: rms } as tf.NamedTensorMap);
      });
    }
    // kernels that reject their inputs allocate nothing
    expect(() =>
      tf.tidy(() => run(FUSED_KERNELS.layerNorm, { x, gamma: dy, beta }, { epsilon: EPS })),
    ).toThrow(/gamma must have 128 elements/);
    expect(() => tf.tidy(() => run(FUSED_KERNELS.rmsNorm, { x, gamma: dy }, { epsilon: EPS }))).toThrow(
      /gamma must have 128 elements/,
    );
    expect(() =>
      tf.tidy(() => run(FUSED_KERNELS.rmsNormGrad, { dy, x, gamma, rstd: gamma } as tf.NamedTensorMap)),
    ).toThrow(/rstd must have 65 elements/);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.memory().numBytes).toBe(bytes);
    tf.dispose([x, gamma, beta, dy]);
  });

  it('handles empty tensors and a zero-width last axis', () => {
    const empty = tf.tidy(() => {
      const x = tf.zeros([0, 4]);
      const [y] = run(FUSED_KERNELS.gelu, { x });
      const [ly, mean, rstd] = run(
        FUSED_KERNELS.layerNorm,
        { x, gamma: tf.ones([4]), beta: tf.zeros([4]) },
        {
          epsilon: EPS,
        },
      );
      const [dx, dgamma, dbeta] = run(FUSED_KERNELS.layerNormGrad, {
        dy: x,
        x,
        gamma: tf.ones([4]),
        mean: mean as tf.Tensor,
        rstd: rstd as tf.Tensor,
      });
      const [sy] = run(FUSED_KERNELS.silu, { x });
      const [sdx] = run(FUSED_KERNELS.siluGrad, { dy: x, x });
      const [ry, rstdRms] = run(FUSED_KERNELS.rmsNorm, { x, gamma: tf.ones([4]) }, { epsilon: EPS });
      const [rdx, rdgamma] = run(FUSED_KERNELS.rmsNormGrad, {
        dy: x,
        x,
        gamma: tf.ones([4]),
        rstd: rstdRms as tf.Tensor,
      });
      return [y, ly, mean, dx, dgamma, dbeta, sy, sdx, ry, rstdRms, rdx, rdgamma].map((t) => [
        (t as tf.Tensor).shape,
        [...(t as tf.Tensor).dataSync()],
      ]);
    });
    expect(empty).toEqual([
      [[0, 4], []],
      [[0, 4], []],
      [[0], []],
      [[0, 4], []],
      [[4], [0, 0, 0, 0]],
      [[4], [0, 0, 0, 0]],
      [[0, 4], []],
      [[0, 4], []],
      [[0, 4], []],
      [[0], []],
      [[0, 4], []],
      [[4], [0, 0, 0, 0]],
    ]);
    // rows of width 0: nothing to normalize, rstd the mean of nothing (NaN), dgamma empty
    const narrow = tf.tidy(() => {
      const x = tf.zeros([3, 0]);
      const [y, rstd] = run(FUSED_KERNELS.rmsNorm, { x, gamma: tf.zeros([0]) }, { epsilon: EPS });
      const [dx, dgamma] = run(FUSED_KERNELS.rmsNormGrad, {
        dy: x,
        x,
        gamma: tf.zeros([0]),
        rstd: rstd as tf.Tensor,
      });
      return [y, rstd, dx, dgamma].map((t) => [(t as tf.Tensor).shape, [...(t as tf.Tensor).dataSync()]]);
    });
    expect(narrow).toEqual([
      [[3, 0], []],
      [[3], [Number.NaN, Number.NaN, Number.NaN]],
      [[3, 0], []],
      [[0], []],
    ]);
  });

  it('rejects other dtypes, mismatched shapes and a missing epsilon with the reason', () => {
    tf.tidy(() => {
      expect(() => run(FUSED_KERNELS.gelu, { x: tf.tensor1d([1, 2], 'int32') })).toThrow(
        /x must be float32, got int32/,
      );
      expect(() => run(FUSED_KERNELS.geluGrad, { dy: tf.ones([3]), x: tf.ones([4]) })).toThrow(
        /differ in shape/,
      );
      const x = tf.ones([2, 3]);
      expect(() => run(FUSED_KERNELS.layerNorm, { x, gamma: tf.ones([3]), beta: tf.ones([3]) })).toThrow(
        /epsilon/,
      );
      expect(() =>
        run(FUSED_KERNELS.layerNormGrad, {
          dy: x,
          x,
          gamma: tf.ones([3]),
          mean: tf.ones([3]),
          rstd: tf.ones([2]),
        }),
      ).toThrow(/mean must have 2 elements/);
      expect(() => run(FUSED_KERNELS.silu, { x: tf.tensor1d([1, 2], 'int32') })).toThrow(
        /x must be float32, got int32/,
      );
      expect(() => run(FUSED_KERNELS.siluGrad, { dy: tf.ones([3]), x: tf.ones([4]) })).toThrow(
        /differ in shape/,
      );
      expect(() => run(FUSED_KERNELS.rmsNorm, { x, gamma: tf.ones([3]) })).toThrow(/epsilon/);
      expect(() => run(FUSED_KERNELS.rmsNorm, { x, gamma: tf.ones([3]) }, { epsilon: -1 })).toThrow(
        /epsilon must be a finite number >= 0, got -1/,
      );
      expect(() => run(FUSED_KERNELS.rmsNorm, { x }, { epsilon: EPS })).toThrow(/input "gamma" is missing/);
      expect(() =>
        run(FUSED_KERNELS.rmsNormGrad, { dy: tf.ones([2, 4]), x, gamma: tf.ones([3]), rstd: tf.ones([2]) }),
      ).toThrow(/differ in shape/);
      expect(() =>
        run(FUSED_KERNELS.rmsNormGrad, { dy: x, x, gamma: tf.ones([3]), rstd: tf.ones([3]) }),
      ).toThrow(/rstd must have 2 elements/);
    });
  });

  it('are registered only while installed, on by default, and listed like the other kernels', async () => {
    uninstallNativeKernels(tf);
    for (const name of NATIVE_FUSED_KERNELS) {
      expect(tf.getKernel(name, 'wasm')).toBeUndefined();
      expect(hasFusedKernel(name)).toBe(false);
    }
    installNativeKernels(tf, { threads: 2 });
    for (const name of NATIVE_FUSED_KERNELS) {
      expect(tf.getKernel(name, 'wasm')).toBeDefined();
      expect(hasFusedKernel(name)).toBe(true);
      expect(nativeStatus().kernels).toContain(name);
    }
    installNativeKernels(tf, { threads: 2, kernels: ['BatchMatMul', FUSED_KERNELS.gelu] });
    expect(nativeStatus().kernels).toEqual(['BatchMatMul', FUSED_KERNELS.gelu]);
    expect(tf.getKernel(FUSED_KERNELS.gelu, 'wasm')).toBeDefined();
    expect(tf.getKernel(FUSED_KERNELS.layerNorm, 'wasm')).toBeUndefined();
    uninstallNativeKernels(tf);
    expect(tf.getKernel('QuorumGelu', 'wasm')).toBeUndefined();
    const active = await nativeBackend({ threads: 2 }).activate(tf);
    for (const name of NATIVE_FUSED_KERNELS) expect(active.details).toContain(name);
    expect(tf.getKernel('QuorumGelu', 'wasm')).toBeDefined();
  });
});
