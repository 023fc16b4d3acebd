/**
 * The data-movement kernels (Identity, Cast, Transpose, Slice, Tile, GatherV2, UnsortedSegmentSum)
 * and the replaced Mean gradient against the stock wasm ones, on seeded random shapes (size-1 axes,
 * odd sizes, int32 as well as float32). They need the built addon: where it did not build they fail,
 * they never skip.
 */
import { builtinBackendRegistry, initCompute } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeVsStock, randn, randomPerm, randomShape, relError, seededRandom } from '../test/helpers.js';
import { installNativeKernels, NATIVE_KERNELS, nativeStatus, uninstallNativeKernels } from './install.js';
import { stridedMeta } from './movement.js';

const TOL = 1e-5;

beforeAll(async () => {
  await initCompute({ backend: 'wasm', registry: builtinBackendRegistry() });
  installNativeKernels(tf, { threads: 2, kernels: NATIVE_KERNELS });
});

afterAll(() => {
  uninstallNativeKernels(tf);
});

function expectSame(fn: () => tf.Tensor | tf.Tensor[], stockFn = fn, tol = TOL): void {
  const { native, stock } = nativeVsStock(fn, stockFn);
  native.forEach((values, i) => {
    expect(relError(values, stock[i] as Float32Array)).toBeLessThanOrEqual(tol);
  });
}

/** Random int32 values in [-1000, 1000) as a tensor. */
function randInt(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform(shape, -1000, 1000, 'int32', seed);
}

describe('Identity and Cast share the buffer', () => {
  it('tf.clone gives the same values and survives disposing the original', () => {
    const before = tf.memory().numTensors;
    const x = randn([33, 7], 1);
    const y = tf.clone(x);
    const expected = x.dataSync().slice();
    x.dispose();
    expect([...y.dataSync()]).toEqual([...expected]);
    y.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('frees the buffer once the last sharer is disposed', () => {
    const buffers = tf.memory().numDataBuffers;
    const x = randn([16], 2);
    const copies = [tf.clone(x), tf.cast(x, 'float32'), tf.clone(x)];
    expect(tf.memory().numDataBuffers).toBe(buffers + 1);
    x.dispose();
    tf.dispose(copies.slice(0, 2));
    expect(tf.memory().numDataBuffers).toBe(buffers + 1);
    expect((copies[2] as tf.Tensor).dataSync().length).toBe(16);
    tf.dispose(copies);
    expect(tf.memory().numDataBuffers).toBe(buffers);
  });

  it('casts to another dtype on the stock kernel', () => {
    expectSame(() => tf.cast(randInt([5, 9], 3), 'float32'));
    expectSame(() => tf.cast(tf.mul(randn([5, 9], 3), 100), 'int32'));
    expectSame(() => tf.cast(tf.tensor1d([0, 1, 2], 'int32'), 'bool'));
  });

  it('keeps variables independent of the tensor they were made from', () => {
    const x = randn([4, 4], 4);
    const v = tf.variable(x);
    v.assign(tf.zerosLike(x));
    expect(tf.sum(x).dataSync()[0]).not.toBe(0);
    expect(tf.sum(v).dataSync()[0]).toBe(0);
    tf.dispose([x, v]);
  });
});

describe('stridedMeta', () => {
  it('drops size-1 axes and merges contiguous runs', () => {
    expect([...stridedMeta([2, 3, 4], [12, 4, 1], 0)]).toEqual([1, 24, 1, 0]);
    expect([...stridedMeta([2, 1, 4], [4, 4, 1], 5)]).toEqual([1, 8, 1, 5]);
    // [0, 2, 1, 3] transpose of [2, 3, 4, 5]: out [2, 4, 3, 5], in strides (60, 5, 20, 1)
    expect([...stridedMeta([2, 4, 3, 5], [60, 5, 20, 1], 0)]).toEqual([4, 2, 4, 3, 5, 60, 5, 20, 1, 0]);
    expect([...stridedMeta([1, 1], [1, 1], 0)]).toEqual([1, 1, 1, 0]);
  });
});

describe('Transpose', () => {
  it('matches stock on random shapes and permutations (rank 1-6, float32 and int32)', () => {
    const rand = seededRandom(11);
    for (let trial = 0; trial < 60; trial++) {
      const rank = 1 + (trial % 6);
      const shape = randomShape(rand, rank, rank > 4 ? 5 : 9);
      const perm = randomPerm(rand, rank);
      const make = trial % 3 === 0 ? randInt : randn;
      expectSame(() => tf.transpose(make(shape, trial + 1), perm));
    }
  });

  it('handles the attention head split and 2-D transposes with odd sizes (tiled path)', () => {
    expectSame(() => tf.transpose(randn([4, 17, 3, 8], 1), [0, 2, 1, 3]));
    for (const [r, c] of [
      [1, 1],
      [33, 65],
      [129, 7],
      [70, 300],
    ] as const) {
      expectSame(() => tf.transpose(randn([r, c], r + c)));
      expectSame(() => tf.transpose(randn([3, r, c], r * c), [0, 2, 1]));
    }
  });

  it('gives the stock gradient', () => {
    const x = randn([3, 5, 7], 2);
    const w = randn([7, 3, 5], 3);
    expectSame(() => tf.grad((z: tf.Tensor) => tf.sum(tf.mul(tf.transpose(z, [2, 0, 1]), w)))(x));
    tf.dispose([x, w]);
  });
});

describe('Slice', () => {
  it('matches stock on random boxes (rank 1-5, float32 and int32, -1 sizes)', () => {
    const rand = seededRandom(12);
    for (let trial = 0; trial < 60; trial++) {
      const rank = 1 + (trial % 5);
      const shape = randomShape(rand, rank, 9);
      const begin = shape.map((d) => Math.floor(rand() * d));
      const size = shape.map((d, i) =>
        rand() < 0.2 ? -1 : 1 + Math.floor(rand() * (d - (begin[i] as number))),
      );
      const make = trial % 3 === 0 ? randInt : randn;
      expectSame(() => tf.slice(make(shape, trial + 1), begin, size));
    }
  });

  it('takes the reference model shapes and gives the stock gradient', () => {
    expectSame(() => tf.slice(randn([4, 17, 24], 1), [0, 0, 0], [-1, 16, -1]));
    const x = randn([4, 9, 5], 2);
    expectSame(() => tf.grad((z: tf.Tensor) => tf.sum(tf.square(tf.slice(z, [1, 2, 0], [2, 5, -1]))))(x));
    x.dispose();
  });
});

describe('Tile', () => {
  it('matches stock on random shapes and repetitions, and tf.broadcastTo', () => {
    const rand = seededRandom(13);
    for (let trial = 0; trial < 40; trial++) {
      const rank = 1 + (trial % 5);
      const shape = randomShape(rand, rank, 6);
      const reps = shape.map(() => 1 + Math.floor(rand() * 3));
      const make = trial % 3 === 0 ? randInt : randn;
      expectSame(() => tf.tile(make(shape, trial + 1), reps));
    }
    expectSame(() => tf.broadcastTo(randn([33, 1], 1), [33, 17]));
    expectSame(() => tf.broadcastTo(randn([1, 1, 7], 2), [3, 5, 7]));
  });
});

describe('GatherV2', () => {
  it('matches stock along every axis with 1-D and 2-D indices', () => {
    const rand = seededRandom(14);
    for (let trial = 0; trial < 40; trial++) {
      const rank = 1 + (trial % 4);
      const shape = randomShape(rand, rank, 8);
      const axis = Math.floor(rand() * rank);
      const dim = shape[axis] as number;
      const idxShape = trial % 2 === 0 ? [1 + Math.floor(rand() * 9)] : [2, 1 + Math.floor(rand() * 4)];
      const count = idxShape.reduce((a, b) => a * b, 1);
      const idx = Array.from({ length: count }, () => Math.floor(rand() * dim));
      const make = trial % 3 === 0 ? randInt : randn;
      expectSame(() => tf.gather(make(shape, trial + 1), tf.tensor(idx, idxShape, 'int32'), axis));
    }
  });

  it('takes an embedding-sized lookup, and gives the stock gradient (UnsortedSegmentSum)', () => {
    const ids = (): tf.Tensor =>
      tf.tensor1d(
        Array.from({ length: 4099 }, (_, i) => (i * 7919) % 513),
        'int32',
      );
    expectSame(() => tf.gather(randn([513, 33], 1), ids()));
    const table = randn([513, 33], 2);
    const w = randn([4099, 33], 3);
    expectSame(() => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids()), w)))(table));
    tf.dispose([table, w]);
  });

  it('leaves an out-of-range index to the stock kernel (its error)', () => {
    expect(() => tf.tidy(() => tf.gather(randn([4, 3], 1), tf.tensor1d([0, 4], 'int32')))).toThrow(
      /GatherV2: the index value 4 is not in \[0, 3\]/,
    );
  });
});

describe('UnsortedSegmentSum', () => {
  it('matches the stock kernel on random ids, skipping ids out of range', () => {
    const rand = seededRandom(15);
    for (let trial = 0; trial < 20; trial++) {
      const n = 1 + Math.floor(rand() * 200);
      const inner = randomShape(rand, trial % 3, 7);
      const segments = 1 + Math.floor(rand() * 40);
      const ids = Array.from({ length: n }, () => Math.floor(rand() * (segments + 2)) - 1);
      expectSame(() =>
        tf.unsortedSegmentSum(randn([n, ...inner], trial + 1), tf.tensor1d(ids, 'int32'), segments),
      );
    }
  });
});

describe('Mean gradient', () => {
  it('is replaced while installed (with Tile) and restored by uninstall', () => {
    expect(nativeStatus().gradients).toEqual(['Mean']);
    installNativeKernels(tf, { threads: 2, kernels: ['BatchMatMul'] });
    expect(nativeStatus().gradients).toEqual([]); // no native Tile: the stock gradient stays
    installNativeKernels(tf, { threads: 2, kernels: NATIVE_KERNELS, gradients: [] });
    expect(nativeStatus().gradients).toEqual([]);
    installNativeKernels(tf, { threads: 2, kernels: NATIVE_KERNELS });
    expect(nativeStatus().gradients).toEqual(['Mean']);
  });

  it('gives the stock gradient over every axis choice', () => {
    const x = randn([6, 5, 7], 1);
    const w = randn([6, 5, 7], 2);
    for (const axis of [0, 1, 2, -1, [0, 1], [1, 2], [0, 2], [0, 1, 2]]) {
      for (const keepDims of [false, true]) {
        expectSame(() =>
          tf.grad((z: tf.Tensor) => tf.sum(tf.mul(tf.mean(tf.mul(z, w), axis, keepDims), 3)))(x),
        );
      }
    }
    expectSame(() => tf.grad((z: tf.Tensor) => tf.mean(z))(x));
    tf.dispose([x, w]);
  });

  it('gives the stock layer-norm gradient (tf.moments)', () => {
    const x = randn([9, 33], 3);
    const w = randn([9, 33], 4);
    expectSame(() =>
      tf.grad((z: tf.Tensor) => {
        const { mean, variance } = tf.moments(z, -1, true);
        return tf.sum(tf.mul(tf.div(tf.sub(z, mean), tf.sqrt(tf.add(variance, 1e-5))), w));
      })(x),
    );
    tf.dispose([x, w]);
  });
});
