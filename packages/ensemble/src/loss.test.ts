import { builtinBackendRegistry, initCompute } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  agreementLoss,
  bradleyTerryLoss,
  odinCorrelationLoss,
  odinOrthogonalityLoss,
  rowPearson,
} from './loss.js';

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

// ODIN (issue 17): each term on hand-computed cases, values and gradient signs.
describe('ODIN losses', () => {
  it('rowPearson: ±1 on linear rows, 0 on a constant row or constant lengths', () => {
    const before = tf.memory().numTensors;
    const x = tf.tensor2d([
      [1, 2, 3],
      [3, 2, 1],
      [5, 5, 5],
    ]); // [k=3, N=3]
    const y = tf.tensor1d([1, 2, 3]);
    const same = tf.tensor1d([4, 4, 4]);
    const r = rowPearson(x, y);
    const flat = rowPearson(x, same);
    const got = Array.from(r.dataSync());
    expect(got[0]).toBeCloseTo(1, 5);
    expect(got[1]).toBeCloseTo(-1, 5);
    expect(got[2]).toBeCloseTo(0, 5);
    expect(Array.from(flat.dataSync())).toEqual([0, 0, 0]);
    tf.dispose([x, y, same, r, flat]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('correlation loss = |ρ(r_q, L)| − |ρ(r_l, L)|, summed over members', () => {
    // Member 0: ρ([1,2,3], L) = 1; ρ([0,0,1], L) = cov 1 / √(⅔ · 2) = √3/2.
    // Member 1: ρ([3,2,1], L) = −1 (|·| = 1); ρ([1,3,2], L) = 1 / √(2 · 2) = ½.
    const q = tf.tensor2d([
      [1, 2, 3],
      [3, 2, 1],
    ]);
    const l = tf.tensor2d([
      [0, 0, 1],
      [1, 3, 2],
    ]);
    const L = tf.tensor1d([1, 2, 3]);
    const loss = odinCorrelationLoss(q, l, L);
    expect(loss.dataSync()[0]).toBeCloseTo(1 - Math.sqrt(3) / 2 + (1 - 0.5), 5);
    tf.dispose([q, l, L, loss]);
  });

  it('correlation loss gradients push length out of the quality head and into the length head', () => {
    // x = [1, 3, 2], L = [1, 2, 3]: ρ = ½ and ∂ρ/∂x_i = dy_i/√(sxx·syy) − ρ·dx_i/sxx = [−¼, −¼, ½].
    const x = tf.tensor2d([[1, 3, 2]]);
    const y = tf.tensor2d([[1, 3, 2]]);
    const L = tf.tensor1d([1, 2, 3]);
    const [gq, gl] = tf.grads((q: tf.Tensor, l: tf.Tensor) =>
      odinCorrelationLoss(q as tf.Tensor2D, l as tf.Tensor2D, L),
    )([x, y]);
    const q = Array.from((gq as tf.Tensor).dataSync());
    const l = Array.from((gl as tf.Tensor).dataSync());
    [-0.25, -0.25, 0.5].forEach((g, i) => {
      expect(q[i]).toBeCloseTo(g, 5); // descent lowers the quality reward of the longest answer
      expect(l[i]).toBeCloseTo(-g, 5); // and raises the length reward there
    });
    tf.dispose([x, y, L, gq as tf.Tensor, gl as tf.Tensor]);
  });

  it('orthogonality loss = Σ |cos(w_q, w_l)|, and its gradient turns w_l away from w_q', () => {
    const wq = tf.tensor2d([
      [1, 0],
      [0, 1],
    ]); // [D=2, k=2]: columns (1, 0) and (0, 1)
    const wl = tf.tensor2d([
      [1, 3],
      [1, 4],
    ]); // columns (1, 1) and (3, 4)
    const loss = odinOrthogonalityLoss(wq, wl);
    expect(loss.dataSync()[0]).toBeCloseTo(1 / Math.sqrt(2) + 4 / 5, 5);
    // Member 0: ∂cos/∂w_l = w_q/(‖w_q‖‖w_l‖) − cos·w_l/‖w_l‖² = (1/√2 − 1/(2√2), −1/(2√2)).
    const [g] = tf.grads((l: tf.Tensor) => odinOrthogonalityLoss(wq, l as tf.Tensor2D))([wl]);
    const gv = Array.from((g as tf.Tensor).dataSync()); // row-major [D, k]
    expect(gv[0]).toBeCloseTo(1 / (2 * Math.sqrt(2)), 5);
    expect(gv[2]).toBeCloseTo(-1 / (2 * Math.sqrt(2)), 5);
    const orthogonal = odinOrthogonalityLoss(wq, wq.reverse(1) as tf.Tensor2D);
    expect(orthogonal.dataSync()[0]).toBeCloseTo(0, 6);
    tf.dispose([wq, wl, loss, g as tf.Tensor, orthogonal]);
  });

  it('agreement loss = −mean over pairs of the members’ variance of σ(r_c − r_r); it pushes members apart', () => {
    const c = tf.tensor2d([[2], [0]]); // [k=2, B=1]
    const r = tf.tensor2d([[0], [0]]);
    const p0 = sig(2);
    const p1 = 0.5;
    const mean = (p0 + p1) / 2;
    const variance = ((p0 - mean) ** 2 + (p1 - mean) ** 2) / 2;
    const loss = agreementLoss(c, r);
    expect(loss.dataSync()[0]).toBeCloseTo(-variance, 6);
    // ∂/∂c_0 = −(p0 − mean)·p0(1 − p0) < 0: descent widens the leading member's margin.
    const [g] = tf.grads((a: tf.Tensor) => agreementLoss(a as tf.Tensor2D, r))([c]);
    const gv = Array.from((g as tf.Tensor).dataSync());
    expect(gv[0]).toBeCloseTo(-(p0 - mean) * p0 * (1 - p0), 6);
    expect(gv[1]).toBeGreaterThan(0);
    const agree = agreementLoss(tf.tensor2d([[1], [1]]), r);
    expect(agree.dataSync()[0]).toBeCloseTo(0, 7);
    tf.dispose([c, r, loss, g as tf.Tensor, agree]);
  });
});
