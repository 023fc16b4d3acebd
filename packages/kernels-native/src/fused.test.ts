/**
 * The fused kernels (QuorumGelu, QuorumGeluGrad, QuorumLayerNorm, QuorumLayerNormGrad) against the
 * same math in float64 (element by element) and composed of stock tfjs ops on the stock wasm kernels
 * (forward ops, and tf.grad of them for the gradients), at both SIMD widths; the determinism of the
 * LayerNorm gradient's row sums; leaks; registration only while installed. They need the built addon:
 * where it did not build they fail, they never skip.
 */
import { composedGelu, composedLayerNorm, fusedKernelsActive, gelu, layerNorm } from '@quorum/backbone';
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
      });
    }
    // kernels that reject their inputs allocate nothing
    expect(() =>
      tf.tidy(() => run(FUSED_KERNELS.layerNorm, { x, gamma: dy, beta }, { epsilon: EPS })),
    ).toThrow(/gamma must have 128 elements/);
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
      return [y, ly, mean, dx, dgamma, dbeta].map((t) => [
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
