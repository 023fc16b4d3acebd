import { aggregationRuleContract } from '@quorum/aggregation/testing';
import { ConfigError } from '@quorum/core';
import { expectArraysClose, useTestBackend } from '@quorum/testing';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { softminAggregate, softminAggregateArrays, softminRule, softminStrategy } from './softmin.js';

useTestBackend();

// The shared contract, at the default τ and at both ends of the range.
aggregationRuleContract.run([
  { name: 'softmin', create: () => softminStrategy.create(softminStrategy.options.parse({})) },
  { name: 'softmin τ=0.1', create: () => softminRule({ tau: 0.1 }) },
  { name: 'softmin τ=10', create: () => softminRule({ tau: 10 }) },
]);

/** Runs the tensor path on plain rows and disposes everything. */
function onTensor(rows: number[][], tau: number): number[] {
  const r = tf.tensor2d(rows); // [k, B]
  const out = softminAggregate(r, tau); // [B]
  const values = Array.from(out.dataSync());
  tf.dispose([r, out]);
  return values;
}

describe('softmin on hand-computed cases', () => {
  // Columns: r = (0, 2) at τ = 1 → log 2 − log(1 + e^−2); r = (1, 3) at τ = 1 → 1 + the same.
  it('two members, τ = 1: −log((e^0 + e^−2) / 2) = 0.5662191695', () => {
    const rows = [
      [0, 1],
      [2, 3],
    ];
    const expected = [0.5662191695169727, 1.5662191695169727];
    expectArraysClose(softminAggregateArrays(rows, 1), expected, { atol: 1e-12, rtol: 0 });
    expectArraysClose(onTensor(rows, 1), expected, { atol: 1e-5, rtol: 1e-5 });
  });

  it('two members, τ = 2: −2·log((e^−0.5 + e^−1.5) / 2) = 1.7597709861', () => {
    const rows = [[1], [3]];
    expectArraysClose(softminAggregateArrays(rows, 2), [1.759770986083445], { atol: 1e-12, rtol: 0 });
    expectArraysClose(onTensor(rows, 2), [1.759770986083445], { atol: 1e-5, rtol: 1e-5 });
  });

  it('three members, τ = 0.5: −0.5·log((e^2 + e^0 + e^−2) / 3) = −0.5221596699', () => {
    const rows = [[-1], [0], [1]];
    expectArraysClose(softminAggregateArrays(rows, 0.5), [-0.5221596699158949], { atol: 1e-12, rtol: 0 });
    expectArraysClose(onTensor(rows, 0.5), [-0.5221596699158949], { atol: 1e-5, rtol: 1e-5 });
  });

  it('approaches min as τ → 0 and mean as τ → ∞', () => {
    const rows = [[-1], [0.5], [4]];
    expectArraysClose(softminAggregateArrays(rows, 1e-3), [-1], { atol: 1e-2, rtol: 0 });
    expectArraysClose(onTensor(rows, 1e-3), [-1], { atol: 1e-2, rtol: 0 });
    expectArraysClose(softminAggregateArrays(rows, 1e4), [3.5 / 3], { atol: 1e-3, rtol: 0 });
  });

  it('stays finite for rewards far apart at a small τ (log-sum-exp, no overflow)', () => {
    const rows = [[-500], [500]];
    const t = onTensor(rows, 0.01);
    const a = softminAggregateArrays(rows, 0.01);
    expect(Number.isFinite(t[0])).toBe(true);
    expect(a[0]).toBeCloseTo(-500 + 0.01 * Math.log(2), 6);
  });

  it('rejects τ ≤ 0 and unknown options, naming the option', () => {
    expect(() => softminRule({ tau: 0 })).toThrow(ConfigError);
    expect(() => softminRule({ tau: -1 })).toThrow(/tau/);
    expect(() => softminRule({ beta: 1 } as never)).toThrow(/beta/);
    expect(softminStrategy.options.parse({})).toEqual({ tau: 1 });
  });
});
