// A plugin used by the CLI tests to stand for a bug. Its `explode` aggregation rule, once rows are scored:
//   mode=throw   (default) throws a plain Error (not a Quorum error); `message=` (empty) gives it no message;
//   mode=reject  leaves a rejected promise unhandled and goes on like `mean`;
//   mode=nan     returns NaN as the aggregate of every row.
// So the top-level handler, the exit codes and the rollback of the output can be tested in a real process.
import { AggregationRule, meanRule } from '@quorum/aggregation';
import { defineStrategy, strategyModule } from '@quorum/core';
import { z } from 'zod';

const explode = defineStrategy({
  name: 'explode',
  description: 'test plugin rule that fails when it aggregates (mode=throw|reject|nan)',
  source: 'quorum-plugin-throws',
  options: z
    .object({
      mode: z.enum(['throw', 'reject', 'nan']).default('throw'),
      message: z.string().default('boom from the explode rule'),
      code: z.string().optional(),
    })
    .strict(),
  create: (options) => {
    const mean = meanRule();
    const error = () =>
      Object.assign(new Error(options.message), options.code === undefined ? {} : { code: options.code });
    return {
      ...mean,
      name: 'explode',
      aggregateArrays: (rewards) => {
        if (options.mode === 'throw') throw error();
        const result = mean.aggregateArrays(rewards);
        if (options.mode === 'reject') {
          Promise.reject(error());
          return result;
        }
        return { ...result, aggregate: result.aggregate.map(() => Number.NaN) };
      },
    };
  },
});

export default strategyModule({ strategies: [{ point: AggregationRule, definitions: [explode] }] });
