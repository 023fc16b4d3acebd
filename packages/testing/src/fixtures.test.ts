import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { useTestBackend } from './backend.js';
import {
  ALPACA_EVAL_PAIRS,
  expectArraysClose,
  randomNormalTensor,
  randomRewards,
  randomUniformTensor,
} from './fixtures.js';
import { expectNoTensorLeaks } from './leaks.js';

useTestBackend();

describe('fixtures', () => {
  it('ships real AlpacaEval rows in the AlpacaFarm layout', () => {
    expect(ALPACA_EVAL_PAIRS.length).toBeGreaterThanOrEqual(3);
    for (const row of ALPACA_EVAL_PAIRS) {
      expect(row.instruction.length).toBeGreaterThan(0);
      expect([0, 1, 1.5, 2]).toContain(row.preference);
      expect(row.generator_1).toBe('text_davinci_003');
    }
    expect(new Set(ALPACA_EVAL_PAIRS.map((r) => r.preference))).toEqual(new Set([0, 1, 2]));
  });

  it('draws the same tensors from the same seed', () => {
    expectNoTensorLeaks(() => {
      const a = randomNormalTensor([2, 3], 7);
      const b = randomNormalTensor([2, 3], 7);
      const c = randomUniformTensor([4], 7, -1, 1);
      expect(a.shape).toEqual([2, 3]);
      expectArraysClose(a.dataSync(), b.dataSync(), { atol: 0, rtol: 0 });
      expect(Math.max(...c.dataSync())).toBeLessThan(1);
      tf.dispose([a, b, c]);
    });
    expect(randomRewards(3, 4, 1)).toEqual(randomRewards(3, 4, 1));
    expect(randomRewards(3, 4, 1)).not.toEqual(randomRewards(3, 4, 2));
  });

  it('expectArraysClose names the first differing index', () => {
    expectArraysClose([1, 2, Number.NaN], [1, 2 + 1e-7, Number.NaN]);
    expect(() => expectArraysClose([1, 2, 3], [1, 2.5, 3])).toThrow(/index 1: got 2, expected 2.5/);
    expect(() => expectArraysClose([1], [1, 2])).toThrow(/length/);
    expect(() => expectArraysClose([Number.POSITIVE_INFINITY], [1e30])).toThrow(/index 0/);
  });
});
