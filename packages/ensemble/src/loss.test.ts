import { builtinBackendRegistry, initCompute } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { bradleyTerryLoss } from './loss.js';

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
});

const sig = (x: number) => 1 / (1 + Math.exp(-x));

describe('bradleyTerryLoss', () => {
  it('equals −log σ(r_c − r_r) on hand-computed cases, summed over members', () => {
    const before = tf.memory().numTensors;
    const c = tf.tensor2d([
      [1, 2],
      [0, 0],
    ]); // [k=2, B=2]
    const r = tf.tensor2d([
      [0, 3],
      [0, 1],
    ]);
    const loss = bradleyTerryLoss(c, r, undefined);
    // member 0: mean(−log σ(1), −log σ(−1)); member 1: mean(−log σ(0), −log σ(−1))
    const m0 = (-Math.log(sig(1)) - Math.log(sig(-1))) / 2;
    const m1 = (-Math.log(sig(0)) - Math.log(sig(-1))) / 2;
    expect(loss.dataSync()[0]).toBeCloseTo(m0 + m1, 5);
    tf.dispose([c, r, loss]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('has gradient −σ(−d) for the chosen reward and +σ(−d) for the rejected one', () => {
    const c = tf.tensor2d([[1.5]]);
    const r = tf.tensor2d([[0.5]]);
    const [gc, gr] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      bradleyTerryLoss(a as tf.Tensor2D, b as tf.Tensor2D, undefined),
    )([c, r]);
    expect(gc?.dataSync()[0]).toBeCloseTo(-sig(-1), 5);
    expect(gr?.dataSync()[0]).toBeCloseTo(sig(-1), 5);
    tf.dispose([c, r, gc as tf.Tensor, gr as tf.Tensor]);
  });

  it('weights pairs per member, applies the margin and the centering term', () => {
    const c = tf.tensor2d([[1, 1]]);
    const r = tf.tensor2d([[0, 2]]);
    const w = tf.tensor2d([[3, 1]]);
    const weighted = bradleyTerryLoss(c, r, w).dataSync()[0];
    expect(weighted).toBeCloseTo((3 * -Math.log(sig(1)) + -Math.log(sig(-1))) / 4, 5);
    const margin = bradleyTerryLoss(c, r, undefined, { margin: 0.5 }).dataSync()[0];
    expect(margin).toBeCloseTo((-Math.log(sig(0.5)) - Math.log(sig(-1.5))) / 2, 5);
    const centered = bradleyTerryLoss(c, r, undefined, { centering: 0.1 }).dataSync()[0];
    expect(centered).toBeCloseTo((-Math.log(sig(1)) - Math.log(sig(-1))) / 2 + (0.1 * (1 + 9)) / 2, 5);
    tf.dispose([c, r, w]);
  });

  it('is stable for large reward gaps', () => {
    const c = tf.tensor2d([[200, -200]]);
    const r = tf.tensor2d([[0, 0]]);
    const v = bradleyTerryLoss(c, r, undefined).dataSync()[0] as number;
    expect(Number.isFinite(v)).toBe(true);
    expect(v).toBeCloseTo(100, 3);
    tf.dispose([c, r]);
  });
});
