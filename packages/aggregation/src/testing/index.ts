/**
 * The contract every `AggregationRule` keeps, built on @quorum/testing's harness. A plugin's test file:
 *
 *   import { aggregationRuleContract } from '@quorum/aggregation/testing';
 *   aggregationRuleContract.run([{ name: 'softmin', create: () => softminRule() }]);
 *
 * or, over a whole registry: `runAggregationRuleContract(registry, { options: { lcb: [{}, { beta: 2 }] } })`.
 * The suite activates a compute backend if none is active (the test file may pick one first with
 * `useTestBackend`).
 */
import { activeBackend, builtinBackendRegistry, initCompute, type StrategyRegistry } from '@quorum/core';
import {
  type ContractSuite,
  defineContractSuite,
  expectArraysClose,
  expectNoTensorLeaks,
  type RegistryCaseOptions,
  randomRewards,
} from '@quorum/testing';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, expect, it } from 'vitest';
import { AGGREGATION_PROPERTIES, type AggregationRule, disposeAggregateResult } from '../aggregation-rule.js';
import { aggregationRegistry } from '../builtins.js';

type Rows = number[][];

/** Tolerance between float32 tensor results and float64 array results. */
const TOL = { atol: 1e-4, rtol: 1e-4 };

interface TensorRun {
  readonly aggregate: number[];
  readonly mean: number[];
  readonly std: number[];
  readonly members: Rows;
}

/** Runs the tensor path on plain rows and reads everything back, disposing every tensor. */
function runTensor(rule: AggregationRule, rows: Rows): TensorRun {
  const input = tf.tensor2d(rows); // [k, B]
  try {
    const result = rule.aggregate(input);
    try {
      return {
        aggregate: Array.from(result.aggregate.dataSync()),
        mean: Array.from(result.mean.dataSync()),
        std: Array.from(result.std.dataSync()),
        members: result.members.arraySync(),
      };
    } finally {
      disposeAggregateResult(result);
    }
  } finally {
    input.dispose();
  }
}

const rowsOf = (seed: number, k: number, b: number): Rows => randomRewards(k, b, seed);

/** The contract suite for aggregation rules. */
export const aggregationRuleContract: ContractSuite<AggregationRule> = defineContractSuite<AggregationRule>(
  'AggregationRule',
  (ctx) => {
    beforeAll(async () => {
      if (activeBackend() === undefined) await initCompute({ registry: builtinBackendRegistry() });
    });

    it('returns [B] tensors and keeps the members as [k, B]', async () => {
      const rule = await ctx.create();
      const rows = rowsOf(1, 4, 6);
      const input = tf.tensor2d(rows); // [4, 6]
      const result = rule.aggregate(input);
      expect(result.aggregate.shape).toEqual([6]);
      expect(result.mean.shape).toEqual([6]);
      expect(result.std.shape).toEqual([6]);
      expect(result.members.shape).toEqual([4, 6]);
      expectArraysClose(result.members.dataSync(), input.dataSync(), { atol: 0, rtol: 0 });
      disposeAggregateResult(result);
      input.dispose();
      expect(typeof rule.name).toBe('string');
      for (const p of rule.properties) expect(AGGREGATION_PROPERTIES).toContain(p);
    });

    it('is finite on finite input', async () => {
      const rule = await ctx.create();
      for (const [seed, k, b, scale] of [
        [2, 3, 5, 1],
        [3, 8, 4, 30],
        [4, 2, 7, 1e-3],
      ] as const) {
        const rows = rowsOf(seed, k, b).map((r) => r.map((x) => Math.fround(x * scale)));
        const t = runTensor(rule, rows);
        const a = rule.aggregateArrays(rows);
        for (const v of [...t.aggregate, ...t.mean, ...t.std, ...a.aggregate, ...a.mean, ...a.std]) {
          expect(Number.isFinite(v)).toBe(true);
        }
      }
    });

    it('does not depend on the order of the members', async () => {
      const rule = await ctx.create();
      const rows = rowsOf(5, 5, 6);
      const shuffled = [rows[3], rows[0], rows[4], rows[2], rows[1]] as Rows;
      expectArraysClose(runTensor(rule, shuffled).aggregate, runTensor(rule, rows).aggregate, TOL);
      expectArraysClose(rule.aggregateArrays(shuffled).aggregate, rule.aggregateArrays(rows).aggregate, TOL);
    });

    it('works with one member (k = 1): the aggregate is that member’s reward and the std is 0', async () => {
      const rule = await ctx.create();
      const rows = rowsOf(6, 1, 5);
      const t = runTensor(rule, rows);
      expectArraysClose(t.aggregate, rows[0] as number[], TOL);
      expectArraysClose(t.std, [0, 0, 0, 0, 0], TOL);
      const a = rule.aggregateArrays(rows);
      expectArraysClose(a.aggregate, rows[0] as number[], TOL);
      expectArraysClose(a.std, [0, 0, 0, 0, 0], TOL);
    });

    it('gives the common value when all members agree', async () => {
      const rule = await ctx.create();
      const value = [0.5, -2.25, 3, 0];
      const rows = [value, value, value];
      expectArraysClose(runTensor(rule, rows).aggregate, value, TOL);
      expectArraysClose(rule.aggregateArrays(rows).aggregate, value, TOL);
    });

    it('leaks no tensors and leaves its input intact', async () => {
      const rule = await ctx.create();
      const rows = rowsOf(7, 3, 4);
      const input = tf.tensor2d(rows); // [3, 4]
      expectNoTensorLeaks(() => disposeAggregateResult(rule.aggregate(input)), {
        label: `${ctx.name}.aggregate`,
      });
      expect(input.isDisposed).toBe(false);
      expectArraysClose(input.dataSync(), rows.flat(), { atol: 0, rtol: 0 });
      input.dispose();
    });

    it('agrees between the tensor and the array paths', async () => {
      const rule = await ctx.create();
      for (const [seed, k, b] of [
        [8, 1, 3],
        [9, 2, 5],
        [10, 3, 4],
        [11, 6, 3],
      ] as const) {
        const rows = rowsOf(seed, k, b);
        const t = runTensor(rule, rows);
        const a = rule.aggregateArrays(rows);
        expectArraysClose(t.aggregate, a.aggregate, TOL);
        expectArraysClose(t.mean, a.mean, TOL);
        expectArraysClose(t.std, a.std, TOL);
      }
    });

    it('keeps the properties it claims (monotone, boundedByMinMax, translationEquivariant, atMostMean)', async () => {
      const rule = await ctx.create();
      const claims = new Set(rule.properties);
      const rows = rowsOf(12, 5, 8);
      const base = runTensor(rule, rows);
      if (claims.has('monotone')) {
        for (let m = 0; m < rows.length; m++) {
          const raised = rows.map((r, j) => (j === m ? r.map((x) => x + 0.75) : r));
          const after = runTensor(rule, raised).aggregate;
          after.forEach((v, i) => {
            expect(v, `monotone: raising member ${m} lowered item ${i}`).toBeGreaterThanOrEqual(
              (base.aggregate[i] as number) - 1e-5,
            );
          });
        }
      }
      if (claims.has('boundedByMinMax')) {
        base.aggregate.forEach((v, i) => {
          const col = rows.map((r) => r[i] as number);
          expect(v, `boundedByMinMax: item ${i}`).toBeGreaterThanOrEqual(Math.min(...col) - 1e-5);
          expect(v, `boundedByMinMax: item ${i}`).toBeLessThanOrEqual(Math.max(...col) + 1e-5);
        });
      }
      if (claims.has('translationEquivariant')) {
        const shifted = runTensor(
          rule,
          rows.map((r) => r.map((x) => x + 3.25)),
        ).aggregate;
        expectArraysClose(
          shifted,
          base.aggregate.map((v) => v + 3.25),
          TOL,
        );
      }
      if (claims.has('atMostMean')) {
        base.aggregate.forEach((v, i) => {
          expect(v, `atMostMean: item ${i}`).toBeLessThanOrEqual((base.mean[i] as number) + 1e-5);
        });
      }
    });
  },
);

/**
 * Runs the contract over every rule in `registry` (default: the built-ins), with default options or the
 * option sets given per name.
 */
export function runAggregationRuleContract(
  registry: StrategyRegistry<AggregationRule> = aggregationRegistry(),
  options?: RegistryCaseOptions,
): void {
  aggregationRuleContract.runRegistry(registry, options);
}
