import { builtinBackendRegistry, initCompute } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AdaptiveKlController,
  clippedPolicyLoss,
  clippedValueLoss,
  FixedKlController,
  fullKl,
  gae,
  klPerToken,
  sequenceKl,
  tokenRewards,
  whiten,
} from './ppo-math.js';

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
});

const close = (actual: readonly number[], expected: readonly number[], digits = 6): void => {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => {
    expect(a).toBeCloseTo(expected[i] as number, digits);
  });
};

describe('gae', () => {
  it('matches a hand-computed trajectory (γ = 1, λ = 0.95, reward on the last token)', () => {
    // δ2 = 1 − 0.3 = 0.7; δ1 = 0.3 − 0.4 = −0.1; δ0 = 0.4 − 0.5 = −0.1
    // A2 = 0.7; A1 = −0.1 + 0.95·0.7 = 0.565; A0 = −0.1 + 0.95·0.565 = 0.43675
    const { advantages, returns } = gae([0, 0, 1], [0.5, 0.4, 0.3], 1, 0.95);
    close(advantages, [0.43675, 0.565, 0.7]);
    close(returns, [0.93675, 0.965, 1.0]);
  });

  it('gives discounted Monte-Carlo returns at λ = 1 and one-step TD errors at λ = 0', () => {
    close(gae([1, 2], [0, 0], 0.5, 1).returns, [1 + 0.5 * 2, 2]);
    // λ = 0: A_t = r_t + γV_{t+1} − V_t
    close(gae([1, 2], [0.25, 0.5], 0.5, 0).advantages, [1 + 0.5 * 0.5 - 0.25, 2 - 0.5]);
  });

  it('rejects mismatched lengths', () => {
    expect(() => gae([1, 2], [0], 1, 0.95)).toThrow(/2 rewards but 1 values/);
  });
});

describe('KL estimators', () => {
  it('are zero when the policy equals the reference', () => {
    const logp = [-0.1, -2.3, -5, -0.7];
    expect(klPerToken(logp, logp, 'k1')).toEqual([0, 0, 0, 0]);
    expect(klPerToken(logp, logp, 'k3')).toEqual([0, 0, 0, 0]);
  });

  it('match hand values: p = 0.5, q = 0.25', () => {
    // k1 = log p − log q = log 2; k3 = (r − 1) − log r with r = q/p = 0.5 → −0.5 + log 2
    close(klPerToken([Math.log(0.5)], [Math.log(0.25)], 'k1'), [Math.log(2)]);
    close(klPerToken([Math.log(0.5)], [Math.log(0.25)], 'k3'), [-0.5 + Math.log(2)]);
    // k3 is never negative, k1 can be
    expect(klPerToken([Math.log(0.25)], [Math.log(0.5)], 'k1')[0]).toBeLessThan(0);
    expect(klPerToken([Math.log(0.25)], [Math.log(0.5)], 'k3')[0]).toBeGreaterThan(0);
  });
});

describe('the KL the step log reports', () => {
  it('is the mean over sequences of the sum over answer tokens (hand values)', () => {
    // answer 0: tokens with p = 0.5, q = 0.25 and p = q = 0.2; answer 1: one token with p = 0.25, q = 0.5
    const logp = [[Math.log(0.5), Math.log(0.2)], [Math.log(0.25)]];
    const logq = [[Math.log(0.25), Math.log(0.2)], [Math.log(0.5)]];
    // k1: (log 2 + 0 + (−log 2)) / 2 = 0 — an unbiased estimate that is 0 here, below 0 for answer 1
    expect(sequenceKl(logp, logq, 'k1')).toBeCloseTo(0, 12);
    // k3: ((−0.5 + log 2) + 0 + (1 − log 2)) / 2 = 0.25
    expect(sequenceKl(logp, logq, 'k3')).toBeCloseTo(0.25, 12);
    expect(sequenceKl([], [], 'k1')).toBe(0);
  });

  it('is exactly 0 for policy = reference, whatever the lengths', () => {
    const logp = [[-0.3, -4.1, -0.01], [-2], []];
    expect(sequenceKl(logp, logp, 'k1')).toBe(0);
    expect(sequenceKl(logp, logp, 'k3')).toBe(0);
  });

  it('refuses log-probs read with different masks', () => {
    expect(() => sequenceKl([[-1, -2]], [[-1]], 'k1')).toThrow(/2 policy log-probs but 1 reference/);
  });

  it('fullKl is Σ p·log(p/q) per position: hand values, 0 for p = q, never negative', () => {
    // p = softmax([0, ln 3]) = (1/4, 3/4); q = softmax([0, 0]) = (1/2, 1/2)
    // KL = 1/4·ln(1/2) + 3/4·ln(3/2) = 0.1308…
    const p = tf.tensor3d([
      [
        [0, Math.log(3)],
        [1, 2],
      ],
    ]); // [1, 2, 2]
    const q = tf.tensor3d([
      [
        [0, 0],
        [1, 2],
      ],
    ]); // [1, 2, 2]
    const before = tf.memory().numTensors;
    const kl = fullKl(p, q); // [1, 2]
    expect(tf.memory().numTensors).toBe(before + 1);
    const [a, b] = Array.from(kl.dataSync());
    expect(a).toBeCloseTo(0.25 * Math.log(0.5) + 0.75 * Math.log(1.5), 6);
    expect(b).toBe(0);
    const reversed = fullKl(q, p); // [1, 2]
    // KL(q‖p) = 1/2·ln 2 + 1/2·ln(2/3) = 0.1438…: the other direction, also ≥ 0
    expect(reversed.dataSync()[0]).toBeCloseTo(0.5 * Math.log(2) + 0.5 * Math.log(2 / 3), 6);
    tf.dispose([p, q, kl, reversed]);
  });
});

describe('reward shaping', () => {
  it('puts −β·KL on every token and the score on the last', () => {
    close(tokenRewards(2, [0.1, -0.2, 0.3], 0.5), [-0.05, 0.1, 1.85]);
    expect(tokenRewards(2, [], 0.5)).toEqual([]);
  });

  it('whitens a ragged batch (unbiased variance), optionally keeping the mean', () => {
    // numbers 1, 2, 3: mean 2, unbiased variance 1
    const w = whiten([[1, 2], [3]]);
    close(w[0] as number[], [-1, 0], 5);
    close(w[1] as number[], [1], 5);
    const kept = whiten([[1, 3], [5]], false); // mean 3, variance 4 → (x − 3)/2 + 3
    close(kept[0] as number[], [2, 3], 5);
    close(kept[1] as number[], [4], 5);
  });
});

describe('clipped losses', () => {
  it('policy loss: hand-computed ratios 1.5 (A = 1), 0.5 (A = 1), 1.1 (A = −2), ε = 0.2', () => {
    // max(−Aρ, −A·clip(ρ)): max(−1.5, −1.2) = −1.2 (clipped); max(−0.5, −0.8) = −0.5; max(2.2, 2.2) = 2.2
    const before = tf.memory().numTensors;
    const logp = tf.tensor2d([[Math.log(1.5), Math.log(0.5), Math.log(1.1)]]);
    const old = tf.zeros([1, 3]);
    const adv = tf.tensor2d([[1, 1, -2]]);
    const all = tf.ones([1, 3]);
    const firstTwo = tf.tensor2d([[1, 1, 0]]);
    const r = clippedPolicyLoss(logp, old, adv, all, 0.2);
    expect(r.loss.dataSync()[0]).toBeCloseTo(0.5 / 3, 5);
    expect(r.clipFraction.dataSync()[0]).toBeCloseTo(1 / 3, 5);
    const lr = [Math.log(1.5), Math.log(0.5), Math.log(1.1)];
    expect(r.approxKl.dataSync()[0]).toBeCloseTo((0.5 * lr.reduce((a, x) => a + x * x, 0)) / 3, 5);
    const m = clippedPolicyLoss(logp, old, adv, firstTwo, 0.2);
    expect(m.loss.dataSync()[0]).toBeCloseTo(-0.85, 5);
    expect(m.clipFraction.dataSync()[0]).toBeCloseTo(0.5, 5);
    tf.dispose([logp, old, adv, all, firstTwo, ...Object.values(r), ...Object.values(m)]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('value loss: hand-computed V = (1, 0, 0.5), V_old = 0.5, R = (2, 0, 0), ε = 0.2', () => {
    // V_clip = (0.7, 0.3, 0.5); errors (1, 0, 0.25) vs clipped (1.69, 0.09, 0.25) → ½·mean(1.69, 0.09, 0.25)
    const values = tf.tensor2d([[1, 0, 0.5]]);
    const old = tf.fill([1, 3], 0.5);
    const returns = tf.tensor2d([[2, 0, 0]]);
    const mask = tf.ones([1, 3]);
    const r = clippedValueLoss(values, old, returns, mask, 0.2);
    expect(r.loss.dataSync()[0]).toBeCloseTo((0.5 * 2.03) / 3, 5);
    expect(r.clipFraction.dataSync()[0]).toBeCloseTo(2 / 3, 5);
    tf.dispose([values, old, returns, mask, r.loss, r.clipFraction]);
  });
});

describe('KL controllers', () => {
  it('the adaptive controller raises β above the target KL and lowers it below', () => {
    const up = new AdaptiveKlController(0.1, 6, 10000);
    up.update(12, 64); // error clipped to +0.2
    expect(up.value).toBeCloseTo(0.1 * (1 + (0.2 * 64) / 10000), 10);
    const down = new AdaptiveKlController(0.1, 6, 10000);
    down.update(5.7, 64); // error −0.05
    expect(down.value).toBeCloseTo(0.1 * (1 - (0.05 * 64) / 10000), 10);
    expect(down.value).toBeLessThan(0.1);
    const fixed = new FixedKlController(0.02);
    fixed.update();
    expect(fixed.value).toBe(0.02);
  });
});
