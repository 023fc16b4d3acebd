/**
 * The contract every `DatasetFormat` keeps, built on @quorum/testing's harness. A plugin's test file:
 *
 *   import { datasetFormatContract } from '@quorum/data/testing';
 *   datasetFormatContract.run([{ name: 'my-format', create: () => myFormat }]);
 *
 * or over a registry: `runDatasetFormatContract(registryFor(container, DatasetFormat))`.
 */
import { DataError, type StrategyRegistry } from '@quorum/core';
import { type ContractSuite, defineContractSuite, type RegistryCaseOptions } from '@quorum/testing';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import type { DatasetFormat } from '../formats.js';
import type { PreferencePair, SftExample } from '../types.js';

const loc = { file: 'contract.jsonl', line: 41 };

/** Rows of every JSON shape, plus rows that use the built-in formats' field names with random values. */
const rows = fc.oneof(
  fc.jsonValue(),
  fc.dictionary(
    fc.constantFrom(
      'instruction',
      'input',
      'output',
      'output_1',
      'output_2',
      'preference',
      'prompt',
      'chosen',
      'rejected',
      'role',
      'content',
    ),
    fc.oneof(
      fc.string(),
      fc.integer(),
      fc.constant(null),
      fc.array(fc.record({ role: fc.string(), content: fc.string() }), { maxLength: 3 }),
    ),
  ),
);

function expectNormalised(format: DatasetFormat, example: PreferencePair | SftExample): void {
  expect(typeof example.id).toBe('string');
  expect(example.id.length).toBeGreaterThan(0);
  expect(typeof example.prompt.instruction).toBe('string');
  expect(typeof example.prompt.input).toBe('string');
  if (format.kind === 'preference') {
    const pair = example as PreferencePair;
    expect(typeof pair.chosen).toBe('string');
    expect(typeof pair.rejected).toBe('string');
    if (pair.tie !== undefined) expect(typeof pair.tie).toBe('boolean');
    if (pair.weight !== undefined) expect(Number.isFinite(pair.weight) && pair.weight >= 0).toBe(true);
  } else {
    expect(typeof (example as SftExample).response).toBe('string');
  }
}

export const datasetFormatContract: ContractSuite<DatasetFormat> = defineContractSuite<DatasetFormat>(
  'DatasetFormat',
  (ctx) => {
    it('has a kebab-case name and a kind', async () => {
      const format = await ctx.create();
      expect(format.name).toMatch(/^[a-z0-9][a-z0-9-]*$/);
      expect(['preference', 'sft']).toContain(format.kind);
    });

    it('detect answers a boolean for any row and never throws', async () => {
      const format = await ctx.create();
      fc.assert(
        fc.property(rows, (row) => {
          expect(typeof format.detect(row)).toBe('boolean');
        }),
        { numRuns: 200, seed: 1 },
      );
    });

    it('parse returns a normalised example or throws a DataError at the given file and line', async () => {
      const format = await ctx.create();
      fc.assert(
        fc.property(rows, (row) => {
          let example: PreferencePair | SftExample;
          try {
            example = format.parse(row, loc);
          } catch (error) {
            expect(error).toBeInstanceOf(DataError);
            expect((error as DataError).location).toMatchObject(loc);
            expect((error as DataError).hint).toBeTruthy();
            return;
          }
          expectNormalised(format, example);
        }),
        { numRuns: 300, seed: 2 },
      );
    });
  },
);

/** Runs the contract over every format in `registry`. */
export function runDatasetFormatContract(
  registry: StrategyRegistry<DatasetFormat>,
  options?: RegistryCaseOptions,
): void {
  datasetFormatContract.runRegistry(registry, options);
}
