import { defineStrategy, RegistryError, StrategyRegistry } from '@quorum/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { casesFromRegistry, defineContractSuite } from './contract.js';

/** A toy extension point: maps a number to a number. */
interface Shaper {
  readonly name: string;
  apply(x: number): number;
}

const double = defineStrategy({
  name: 'double',
  description: 'x · factor',
  source: '@quorum/testing (test)',
  options: z.object({ factor: z.number().positive().default(2) }).strict(),
  create: (o): Shaper => ({ name: 'double', apply: (x) => x * o.factor }),
});
const square = defineStrategy({
  name: 'square',
  description: 'x²',
  source: '@quorum/testing (test)',
  options: z.object({}).strict(),
  create: (): Shaper => ({ name: 'square', apply: (x) => x * x }),
});

const ran: string[] = [];

/** The contract every Shaper keeps: f(0) = 0, finite on finite input, f(1) > 0. */
const shaperContract = defineContractSuite<Shaper>('Shaper', (ctx) => {
  it('maps 0 to 0', async () => {
    const s = await ctx.create();
    ran.push(ctx.name);
    expect(s.apply(0)).toBe(0);
  });
  it('is finite on finite input and positive at 1', async () => {
    const s = await ctx.create();
    expect(Number.isFinite(s.apply(123.5))).toBe(true);
    expect(s.apply(1)).toBeGreaterThan(0);
  });
});

shaperContract.run([
  { name: 'double (hand-made)', create: () => double.create({ factor: 3 }) },
  { name: 'square (async)', create: async () => square.create({}) },
]);

const registry = new StrategyRegistry<Shaper>({ id: 'shaper' }).register(double).register(square);
shaperContract.runRegistry(registry, { options: { double: [{}, { factor: 0.5 }] } });

describe('contract harness', () => {
  it('ran the suite once per case, in order', () => {
    expect(ran).toEqual([
      'double (hand-made)',
      'square (async)',
      'double',
      'double {"factor":0.5}',
      'square',
    ]);
  });

  it('rejects an empty or duplicated case list', () => {
    expect(() => shaperContract.run([])).toThrow(/no cases/);
    const c = { name: 'x', create: () => square.create({}) };
    expect(() => shaperContract.run([c, c])).toThrow(/"x" is given twice/);
  });

  it('builds cases through the registry, validating options', () => {
    const cases = casesFromRegistry(registry, { options: { double: { factor: -1 } } });
    expect(cases.map((c) => c.name)).toEqual(['double {"factor":-1}', 'square']);
    expect(() => cases[0]?.create()).toThrow(/factor/);
    expect(() => casesFromRegistry(registry, { only: ['cube'] })).toThrow(RegistryError);
    expect(() => casesFromRegistry(registry, { only: ['square'], options: { double: {} } })).toThrow(
      /options given for "double", which is not run/,
    );
  });
});
