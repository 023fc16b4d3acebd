// my-lcb.test.ts — the shared contract plus one hand-computed case.
import { aggregationRuleContract } from '@quorum/aggregation/testing';
import { useTestBackend } from '@quorum/testing';
import { expect, it } from 'vitest';
import { myLcb } from './aggregation-rule.js';

useTestBackend();
aggregationRuleContract.run([{ name: 'my-lcb', create: () => myLcb({ beta: 0.5 }) }]);

it('members (1, 3): mean 2, std 1 → 2 − 0.5 = 1.5', () => {
  expect(myLcb({ beta: 0.5 }).aggregateArrays([[1], [3]]).aggregate).toEqual([1.5]);
});
