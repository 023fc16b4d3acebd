import { defineStrategy } from '@quorum/core';
import { useTestBackend } from '@quorum/testing';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { AggregationRule } from './aggregation-rule.js';
import { aggregationRegistry } from './builtins.js';
import { aggregationRule } from './rules.js';
import { aggregationRuleContract, runAggregationRuleContract } from './testing/index.js';

useTestBackend();

// Every built-in, with its default options and the other std mode.
runAggregationRuleContract(aggregationRegistry(), {
  options: {
    lcb: [{}, { beta: 2.5, std: 'sample' }],
    uwo: [{}, { lambda: 2, std: 'sample' }],
  },
});

// A plugin-style rule built only from public pieces: the mean of the two lowest members (soft worst case).
const lowerPairMean = defineStrategy({
  name: 'lower-pair-mean',
  description: 'mean of the two lowest members',
  source: 'test',
  options: z.object({}).strict(),
  create: (): AggregationRule =>
    aggregationRule({
      name: 'lower-pair-mean',
      properties: ['monotone', 'boundedByMinMax', 'translationEquivariant', 'atMostMean'],
      aggregate: (rewards) => {
        const k = rewards.shape[0];
        const n = Math.min(2, k);
        const lowest = tf.neg(tf.topk(tf.neg(tf.transpose(rewards)), n).values); // [B, n]
        return tf.mean(lowest, 1) as tf.Tensor1D; // [B]
      },
      aggregateArrays: (rewards) =>
        (rewards[0] ?? []).map((_, i) => {
          const col = rewards.map((r) => r[i] as number).sort((a, b) => a - b);
          const low = col.slice(0, 2);
          return low.reduce((a, b) => a + b, 0) / low.length;
        }),
    }),
});
aggregationRuleContract.run([{ name: 'lower-pair-mean (plugin)', create: () => lowerPairMean.create({}) }]);
