/**
 * Every native kernel against the stock wasm kernel: random shapes, all transposes, batch
 * broadcasts, odd sizes. These tests need the built addon: where it did not build they fail (the
 * installNativeKernels call throws with the reason), they never skip.
 */
import { builtinBackendRegistry, initCompute } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeVsStock, randn, relError, seededRandom, useSimd } from '../test/helpers.js';
import { loadAddon, type NativeAddon } from './addon.js';
import { installNativeKernels, NATIVE_KERNELS, nativeStatus, uninstallNativeKernels } from './install.js';

const TOL = 1e-5;

beforeAll(async () => {
  await initCompute({ backend: 'wasm', registry: builtinBackendRegistry() });
  const replaced = installNativeKernels(tf, { threads: 2, kernels: NATIVE_KERNELS });
  expect(replaced).toContain('BatchMatMul');
});

afterAll(() => {
  uninstallNativeKernels(tf);
});

function expectClose(fn: () => tf.Tensor | tf.Tensor[], stockFn = fn, tol = TOL): void {
  const { native, stock } = nativeVsStock(fn, stockFn);
  native.forEach((values, i) => {
    expect(relError(values, stock[i] as Float32Array)).toBeLessThanOrEqual(tol);
  });
}

// Every matmul, exp, tanh and softmax test runs with the AVX-512 kernels (matmul micro-tile 12x32)
// and the AVX2 ones (6x16); on a CPU without AVX-512, asking for 512 bits gives AVX2 (tested twice).
for (const simd of [512, 256] as const) {
  describe(`matmul, exp, tanh and softmax at ${simd} bits`, () => {
    beforeAll(() => {
      useSimd(simd);
      installNativeKernels(tf, { threads: 2, kernels: NATIVE_KERNELS, simd });
      expect(nativeStatus().simd).toBe(
        simd === 512 && loadAddon().ok && nativeStatus().cpu?.avx512f ? 512 : 256,
      );
    });
    afterAll(() => {
      useSimd(undefined);
      installNativeKernels(tf, { threads: 2, kernels: NATIVE_KERNELS });
    });

    describe(`BatchMatMul (${simd}-bit)`, () => {
      const sizes: [number, number, number][] = [
        [1, 1, 1],
        [7, 33, 129],
        [129, 7, 33],
        [33, 129, 7],
        [1, 17, 64],
        [64, 1, 5],
        [13, 37, 300], // K spans two KC blocks, M ends in a partial 6-row tile
        [50, 20, 520],
        [30, 8, 40], // an 8-wide output (LoRA's rank-8 projection): the half-width micro-kernel
      ];
      for (const [m, n, k] of sizes) {
        for (const tA of [false, true]) {
          for (const tB of [false, true]) {
            it(`[${m}x${k}]·[${k}x${n}] transposeA=${tA} transposeB=${tB}`, () => {
              expectClose(() => {
                const a = randn(tA ? [3, k, m] : [3, m, k], m * 7 + k);
                const b = randn(tB ? [3, n, k] : [3, k, n], n * 11 + k);
                return tf.matMul(a, b, tA, tB);
              });
            });
          }
        }
      }

      it('broadcasts a 2-D right operand over a batch', () => {
        expectClose(() => tf.matMul(randn([4, 9, 33], 1), randn([33, 17], 2)));
        expectClose(() => tf.matMul(randn([2, 3, 9, 33], 1), randn([1, 33, 17], 2), false, false));
      });

      it('broadcasts batch axes both ways ([2,1] with [1,3]) like tiling would', () => {
        expectClose(
          () => tf.matMul(randn([2, 1, 5, 7], 3), randn([1, 3, 7, 6], 4)),
          () =>
            tf.matMul(
              tf.tile(randn([2, 1, 5, 7], 3), [1, 3, 1, 1]),
              tf.tile(randn([1, 3, 7, 6], 4), [2, 1, 1, 1]),
            ),
        );
      });

      it('runs tall matrices (B packed once and shared by the threads), any transpose, K past one block', () => {
        for (const [m, n, k] of [
          [800, 37, 300],
          [801, 8, 20],
          [1000, 70, 129],
        ] as const) {
          for (const [tA, tB] of [
            [false, false],
            [true, false],
            [false, true],
            [true, true],
          ] as const) {
            expectClose(() =>
              tf.matMul(randn(tA ? [k, m] : [m, k], m + k), randn(tB ? [n, k] : [k, n], n + k), tA, tB),
            );
          }
          const bias = (): tf.Tensor => randn([n], 3);
          expectClose(
            () =>
              tf.fused.matMul({
                a: randn([m, k], 1) as tf.Tensor2D,
                b: randn([k, n], 2) as tf.Tensor2D,
                bias: bias(),
                activation: 'relu',
              }),
            () => tf.relu(tf.add(tf.matMul(randn([m, k], 1), randn([k, n], 2)), bias())),
          );
        }
      });

      it('runs the reference attention shapes across the thread split', () => {
        expectClose(() => tf.matMul(randn([8, 64, 32], 5), randn([8, 64, 32], 6), false, true));
        expectClose(() => tf.matMul(randn([3, 40, 24], 5), randn([3, 24, 40], 6)));
      });

      it('gives the stock gradients', () => {
        const a = randn([2, 13, 21], 7);
        const b = randn([2, 21, 9], 8);
        expectClose(() =>
          tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y))))([a, b]),
        );
        tf.dispose([a, b]);
      });
    });

    describe(`_FusedMatMul (${simd}-bit)`, () => {
      // The reference is the unfused op sequence on the stock kernels: tfjs-wasm 4.22's own _FusedMatMul
      // is wrong with transposeA or transposeB (rel. error ~0.15) and rejects a scalar bias.
      const reference: Record<string, (x: tf.Tensor) => tf.Tensor> = {
        linear: (x) => x,
        relu: (x) => tf.relu(x),
        relu6: (x) => tf.relu6(x),
        leakyrelu: (x) => tf.leakyRelu(x, 0.1),
        sigmoid: (x) => tf.sigmoid(x),
        elu: (x) => tf.elu(x),
      };
      for (const activation of ['linear', 'relu', 'relu6', 'leakyrelu', 'sigmoid', 'elu'] as const) {
        it(`bias + ${activation}, all transposes`, () => {
          for (const [tA, tB] of [
            [false, false],
            [true, false],
            [false, true],
            [true, true],
          ] as const) {
            const a = (): tf.Tensor2D => randn(tA ? [33, 7] : [7, 33], 9) as tf.Tensor2D;
            const b = (): tf.Tensor2D => randn(tB ? [17, 33] : [33, 17], 10) as tf.Tensor2D;
            const bias = (): tf.Tensor => randn([17], 11);
            expectClose(
              () =>
                tf.fused.matMul({
                  a: a(),
                  b: b(),
                  transposeA: tA,
                  transposeB: tB,
                  bias: bias(),
                  activation,
                  leakyreluAlpha: 0.1,
                }),
              () =>
                (reference[activation] as (x: tf.Tensor) => tf.Tensor)(
                  tf.add(tf.matMul(a(), b(), tA, tB), bias()),
                ),
            );
          }
        });
      }

      it('takes a scalar bias, no bias, and a batched input', () => {
        const a = (): tf.Tensor => randn([5, 9, 8], 1);
        expectClose(
          () => tf.fused.matMul({ a: a(), b: randn([8, 3], 2), bias: tf.scalar(0.5) }),
          () => tf.add(tf.matMul(a(), randn([8, 3], 2)), 0.5),
        );
        expectClose(() => tf.fused.matMul({ a: a(), b: randn([5, 8, 3], 2) }));
      });

      it('falls back to the stock kernel for prelu and for a full-matrix bias', () => {
        expectClose(() =>
          tf.fused.matMul({
            a: randn([4, 6], 1),
            b: randn([6, 5], 2),
            activation: 'prelu',
            preluActivationWeights: randn([5], 3),
          }),
        );
        // the stock kernel rejects it, so the native one must too (it is the stock kernel's answer)
        expect(() =>
          tf.tidy(() =>
            tf.fused.matMul({ a: randn([4, 6], 1), b: randn([6, 5], 2), bias: randn([4, 5], 3) }),
          ),
        ).toThrow(/rank-1 bias/);
      });

      it('gives the stock gradients (bias and weights)', () => {
        const x = randn([11, 16], 1);
        const w = randn([16, 12], 2);
        const bias = randn([12], 3);
        expectClose(() =>
          tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
            tf.sum(
              tf.square(
                tf.fused.matMul({ a: xx as tf.Tensor2D, b: ww as tf.Tensor2D, bias: bb, activation: 'relu' }),
              ),
            ),
          )([x, w, bias]),
        );
        tf.dispose([x, w, bias]);
      });
    });

    describe('unary ops', () => {
      it('exp and tanh over the float range, on odd lengths', () => {
        for (const n of [1, 7, 33, 129, 70001]) {
          expectClose(() => tf.exp(tf.mul(randn([n], n), 4)));
          expectClose(() => tf.tanh(tf.mul(randn([n], n + 1), 3)));
          expectClose(() => tf.tanh(tf.mul(randn([n], n + 2), 0.01)));
        }
        expectClose(() => tf.exp(tf.tensor1d([-100, -88, -20, 0, 1e-7, 20, 80])));
        for (const n of [1, 7, 33, 70001, 300001]) {
          expectClose(() => tf.square(randn([n], n)));
          expectClose(() => tf.neg(randn([n], n)));
          expectClose(() => tf.sqrt(tf.abs(randn([n], n))));
          expectClose(() => tf.rsqrt(tf.add(tf.abs(randn([n], n)), 1e-3)));
        }
        expectClose(() => tf.sqrt(tf.tensor1d([0, 1e-30, 4, 1e30])));
        expectClose(() => tf.tanh(tf.tensor1d([-30, -0.7, -0.6, -1e-6, 0, 1e-6, 0.624, 0.626, 9, 30])));
      });
    });

    describe('softmax', () => {
      it('over the last axis, with masked (-1e9) entries', () => {
        for (const cols of [1, 7, 33, 129]) expectClose(() => tf.softmax(tf.mul(randn([5, cols], cols), 3)));
        expectClose(() => {
          const mask = tf.linalg.bandPart(tf.ones([9, 9]), -1, 0);
          return tf.softmax(tf.add(randn([2, 9, 9], 3), tf.mul(tf.sub(1, mask), -1e9)));
        });
      });

      it('gives the stock gradient', () => {
        const x = randn([4, 17], 5);
        const w = randn([4, 17], 6);
        expectClose(() => tf.grad((z: tf.Tensor) => tf.sum(tf.mul(tf.softmax(z), w)))(x));
        tf.dispose([x, w]);
      });
    });
  });
}

describe('binary ops with broadcasting', () => {
  const shapes: [number[], number[]][] = [
    [[7], [7]],
    [
      [129, 33],
      [129, 33],
    ],
    [[4, 33, 8], [8]],
    [
      [4, 33, 1],
      [4, 33, 8],
    ],
    [
      [1, 3, 1],
      [5, 1, 7],
    ],
    [
      [2, 1, 9, 1],
      [3, 1, 5],
    ],
    [[], [4, 4]],
    [
      [1000, 130],
      [1, 130],
    ],
    // flat runs long enough for the native kernel (with 2 threads) rather than the stock one
    [
      [701, 199],
      [701, 199],
    ],
    [[701, 199], []],
  ];
  const ops = {
    add: tf.add,
    sub: tf.sub,
    mul: tf.mul,
    div: tf.div,
    maximum: tf.maximum,
    minimum: tf.minimum,
  };
  for (const op of ['add', 'sub', 'mul', 'div', 'maximum'] as const) {
    it(`${op} on ${shapes.length} shape pairs`, () => {
      for (const [sa, sb] of shapes) {
        expectClose(() => {
          const a = randn(sa, 1);
          const b = op === 'div' ? tf.add(tf.abs(randn(sb, 2)), 0.5) : randn(sb, 2);
          return ops[op](a, b);
        });
      }
    });
  }

  it('broadcasts the attention bias shapes (Maximum [B,1,T] with [T,T])', () => {
    expectClose(() => tf.maximum(randn([5, 1, 9], 1), randn([9, 9], 2)));
    expectClose(() => tf.mul(randn([3, 4, 9, 1], 1), randn([3, 4, 9, 9], 2)));
  });

  it('computes flat runs natively too (the kernels send them to the stock loop)', () => {
    const { addon } = loadAddon() as { addon: NativeAddon };
    const rand = seededRandom(5);
    for (const n of [1, 7, 8, 33, 70001]) {
      const a = Float32Array.from({ length: n }, () => rand() * 4 - 2);
      const b = Float32Array.from({ length: n }, () => rand() * 4 + 0.5);
      const fns = [
        (x: number, y: number) => x + y,
        (x: number, y: number) => x - y,
        (x: number, y: number) => x * y,
        (x: number, y: number) => x / y,
        (x: number, y: number) => Math.max(x, y),
        (x: number, y: number) => Math.min(x, y),
      ];
      fns.forEach((f, op) => {
        for (const [bLen, meta] of [
          [n, [1, n, 1, 1]],
          [1, [1, n, 1, 0]],
        ] as const) {
          const out = new Float32Array(n);
          addon.binary(op, a, b.subarray(0, bLen), out, Int32Array.from(meta));
          const want = Float32Array.from(a, (x, i) => f(x, b[bLen === 1 ? 0 : i] as number));
          expect(relError(out, want)).toBeLessThanOrEqual(1e-7);
        }
      });
    }
  });

  it('leaves int32 to the stock kernel', () => {
    const { native, stock } = nativeVsStock(() =>
      tf.add(tf.tensor1d([1, 2, 3], 'int32'), tf.scalar(4, 'int32')),
    );
    expect([...(native[0] as Float32Array)]).toEqual([...(stock[0] as Float32Array)]);
    const max = nativeVsStock(() => tf.maximum(tf.tensor1d([1, 5, 3], 'int32'), tf.scalar(4, 'int32')));
    expect([...(max.native[0] as Float32Array)]).toEqual([...(max.stock[0] as Float32Array)]);
  });
});

describe('reductions', () => {
  it('sum and mean over leading, trailing and middle axes', () => {
    const x = (): tf.Tensor => randn([6, 33, 7, 5], 4);
    for (const axis of [0, 3, -1, [0, 1], [2, 3], [1, 2], 1, [0, 1, 2, 3]]) {
      for (const keepDims of [false, true]) {
        expectClose(() => tf.sum(x(), axis, keepDims));
        expectClose(() => tf.mean(x(), axis, keepDims));
      }
    }
    expectClose(() => tf.sum(randn([129], 1)));
    expectClose(() => tf.sum(randn([3000, 130], 2), 0));
  });

  it('max over leading, trailing and middle axes', () => {
    const x = (): tf.Tensor => randn([6, 33, 7, 5], 4);
    for (const axis of [0, 3, -1, [0, 1], [2, 3], [1, 2], 1, [0, 1, 2, 3], [0, 2]]) {
      for (const keepDims of [false, true]) expectClose(() => tf.max(x(), axis, keepDims));
    }
    expectClose(() => tf.max(randn([129, 130], 2), -1));
    expectClose(() => tf.logSumExp(randn([65, 513], 3), -1, true));
  });

  it('leaves non-contiguous axes and int32 to the stock kernel', () => {
    expectClose(() => tf.sum(randn([4, 5, 6], 1), [0, 2]));
    const { native, stock } = nativeVsStock(() => tf.sum(tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32'), 1));
    expect([...(native[0] as Float32Array)]).toEqual([...(stock[0] as Float32Array)]);
  });
});

describe('install / uninstall', () => {
  it('reports the replaced kernels and restores the stock ones', () => {
    const stockAdd = (() => {
      uninstallNativeKernels(tf);
      return tf.getKernel('Add', 'wasm')?.kernelFunc;
    })();
    installNativeKernels(tf, { threads: 1, kernels: ['BatchMatMul', 'Add'] });
    expect(nativeStatus().kernels).toEqual(['BatchMatMul', 'Add']);
    expect(nativeStatus().threads).toBe(1);
    expect(tf.getKernel('Add', 'wasm')?.kernelFunc).not.toBe(stockAdd);
    uninstallNativeKernels(tf);
    expect(nativeStatus().kernels).toEqual([]);
    expect(tf.getKernel('Add', 'wasm')?.kernelFunc).toBe(stockAdd);
    installNativeKernels(tf, { threads: 2 });
    expect(nativeStatus().loaded).toBe(true);
  });

  it('rejects unknown kernel names', () => {
    expect(() => installNativeKernels(tf, { kernels: ['Conv2D' as never] })).toThrow(
      /unknown native kernel "Conv2D"/,
    );
  });
});
