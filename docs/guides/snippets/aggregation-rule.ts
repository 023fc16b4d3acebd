// my-lcb: mean − β·std with your own β, as a Quorum plugin (build it, then `--plugin ./my-lcb`).
import { AggregationRule, aggregationRule } from '@quorum/aggregation';
import { defineStrategy, strategyModule } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';

const options = z
  .object({ beta: z.number().min(0).default(0.5).describe('weight of the members’ std (≥ 0)') })
  .strict();

export function myLcb({ beta }: z.output<typeof options>): AggregationRule {
  return aggregationRule({
    name: 'my-lcb',
    properties: ['translationEquivariant', 'atMostMean'], // checked by the contract suite
    // rewards [k, B]; m.mean and m.variance are [B] (population variance by default)
    aggregate: (_rewards, m) => tf.sub(m.mean, tf.mul(tf.sqrt(m.variance), beta)) as tf.Tensor1D,
    aggregateArrays: (_rewards, m) => m.mean.map((mu, i) => mu - beta * Math.sqrt(m.variance[i] as number)),
  });
}

export const myLcbStrategy = defineStrategy({
  name: 'my-lcb',
  description: 'mean − β·std with my own default β = 0.5',
  source: 'my-lcb',
  options,
  create: (o) => myLcb(o),
});

export default strategyModule({
  strategies: [{ point: AggregationRule as never, definitions: [myLcbStrategy] as never }],
});
