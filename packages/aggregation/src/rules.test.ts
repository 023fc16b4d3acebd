import { QuorumError } from '@quorum/core';
import { expectArraysClose, expectNoTensorLeaks, useTestBackend } from '@quorum/testing';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { disposeAggregateResult } from './aggregation-rule.js';
import { lcbRule, meanRule, medianRule, minRule, uwoRule } from './builtins.js';
import {
  lcbAggregate,
  lcbAggregateArrays,
  medianAggregate,
  medianAggregateArrays,
  memberMoments,
  memberMomentsArrays,
  uwoAggregate,
} from './rules.js';

useTestBackend();

// Three members, two items. Item 0: rewards 1, 2, 6 → mean 3, squared deviations 4 + 1 + 9 = 14,
// population variance 14/3 (std 2.16025), sample variance 7 (std 2.64575). Item 1: all 0.
const ROWS = [
  [1, 0],
  [2, 0],
  [6, 0],
];
const POP_STD = Math.sqrt(14 / 3);
const SAMPLE_STD = Math.sqrt(7);

function aggregateOf(rule: ReturnType<typeof meanRule>, rows: number[][]): number[] {
  return expectNoTensorLeaks(() => {
    const input = tf.tensor2d(rows); // [k, B]
    const result = rule.aggregate(input);
    const out = Array.from(result.aggregate.dataSync());
    disposeAggregateResult(result);
    input.dispose();
    return out;
  });
}

describe('built-in rules on hand-computed cases', () => {
  it('mean, min and median', () => {
    expectArraysClose(aggregateOf(meanRule(), ROWS), [3, 0]);
    expectArraysClose(aggregateOf(minRule(), ROWS), [1, 0]);
    expectArraysClose(aggregateOf(medianRule(), ROWS), [2, 0]);
    // even k: the mean of the two middle rewards (1, 2, 4, 10 → 3)
    expectArraysClose(aggregateOf(medianRule(), [[1], [4], [2], [10]]), [3]);
    expectArraysClose(medianRule().aggregateArrays([[1], [4], [2], [10]]).aggregate, [3]);
  });

  it('lcb with population and sample std', () => {
    expectArraysClose(aggregateOf(lcbRule(), ROWS), [3 - POP_STD, 0]);
    expectArraysClose(aggregateOf(lcbRule({ beta: 2, std: 'sample' }), ROWS), [3 - 2 * SAMPLE_STD, 0]);
    expectArraysClose(
      lcbRule({ beta: 2, std: 'sample' }).aggregateArrays(ROWS).aggregate,
      [3 - 2 * SAMPLE_STD, 0],
      {
        atol: 1e-12,
      },
    );
    expectArraysClose(aggregateOf(lcbRule({ beta: 0 }), ROWS), [3, 0]);
  });

  it('uwo with population and sample variance', () => {
    expectArraysClose(aggregateOf(uwoRule(), ROWS), [3 - 0.5 * (14 / 3), 0]);
    expectArraysClose(aggregateOf(uwoRule({ lambda: 1, std: 'sample' }), ROWS), [3 - 7, 0]);
    expectArraysClose(uwoRule({ lambda: 1, std: 'sample' }).aggregateArrays(ROWS).aggregate, [-4, 0], {
      atol: 1e-12,
    });
  });

  it('reports mean and the std of the rule’s mode', () => {
    const pop = lcbRule().aggregateArrays(ROWS);
    expectArraysClose(pop.mean, [3, 0], { atol: 1e-12 });
    expectArraysClose(pop.std, [POP_STD, 0], { atol: 1e-12 });
    expectArraysClose(lcbRule({ std: 'sample' }).aggregateArrays(ROWS).std, [SAMPLE_STD, 0], { atol: 1e-12 });
    expectArraysClose(meanRule().aggregateArrays([[1], [3]]).std, [1], { atol: 1e-12 });
  });

  it('k = 1: the sample std is defined as 0, never NaN', () => {
    const one = [[1.5, -2]];
    const m = memberMoments(tf.tensor2d(one), 'sample');
    expectArraysClose(m.variance.dataSync(), [0, 0], { atol: 0, rtol: 0 });
    tf.dispose([m.mean, m.variance]);
    expect(memberMomentsArrays(one, 'sample').variance).toEqual([0, 0]);
    expectArraysClose(lcbRule({ std: 'sample', beta: 3 }).aggregateArrays(one).aggregate, [1.5, -2]);
    expectArraysClose(aggregateOf(uwoRule({ std: 'sample' }), one), [1.5, -2]);
  });

  it('the plain tensor functions match the array functions', () => {
    const rows = [
      [0.3, -1.2, 2],
      [1.1, 0.4, -0.5],
      [-0.7, 0.9, 1.25],
      [2.5, 0, 0.1],
    ];
    expectNoTensorLeaks(() => {
      const input = tf.tensor2d(rows); // [4, 3]
      const lcb = lcbAggregate(input, { beta: 1.5, std: 'sample' });
      const uwo = uwoAggregate(input, { lambda: 0.3, std: 'population' });
      const med = medianAggregate(input);
      expectArraysClose(lcb.dataSync(), lcbAggregateArrays(rows, { beta: 1.5, std: 'sample' }), {
        atol: 1e-5,
      });
      expectArraysClose(med.dataSync(), medianAggregateArrays(rows), { atol: 1e-6 });
      expect(uwo.shape).toEqual([3]);
      tf.dispose([input, lcb, uwo, med]);
    });
  });

  it('handles an empty batch (B = 0)', () => {
    expect(meanRule().aggregateArrays([[], []]).aggregate).toEqual([]);
    expect(aggregateOf(medianRule(), [[], [], []])).toEqual([]);
  });

  it('rejects rewards that are not [k, B]', () => {
    const flat = tf.tensor1d([1, 2, 3]);
    expect(() => meanRule().aggregate(flat as unknown as tf.Tensor2D)).toThrow(
      /shape \[k, B\].*got shape \[3\]/,
    );
    flat.dispose();
    expect(() => meanRule().aggregateArrays([])).toThrow(QuorumError);
    expect(() => meanRule().aggregateArrays([[1, 2], [3]])).toThrow(
      /member 1 has 1 rewards but member 0 has 2/,
    );
  });
});
