import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { StrategySpec } from './config.js';
import { ConfigError, RegistryError } from './errors.js';
import { defineStrategy, StrategyRegistry, type StrategySpecOf } from './registry.js';

interface Scaler {
  scale(x: number): number;
}

const times = defineStrategy({
  name: 'times',
  description: 'multiplies',
  source: '@quorum/a',
  options: z
    .object({ factor: z.number().positive().default(2), mode: z.enum(['fast', 'exact']).default('exact') })
    .strict(),
  create: (o): Scaler => ({ scale: (x) => x * o.factor }),
});
const identity = defineStrategy({
  name: 'identity',
  description: 'returns x',
  source: '@quorum/a',
  options: z.object({}).strict(),
  create: (): Scaler => ({ scale: (x) => x }),
});

function registry(): StrategyRegistry<Scaler> {
  return new StrategyRegistry<Scaler>({ id: 'scaler' }).register(times).register(identity);
}

describe('StrategyRegistry', () => {
  it('creates from a name or [name, options], applying defaults', () => {
    const reg = registry();
    expect(reg.create('times').scale(3)).toBe(6);
    expect(reg.create(['times', { factor: 5 }]).scale(3)).toBe(15);
    expect(reg.names()).toEqual(['times', 'identity']);
  });

  it('throws on a duplicate name, naming both packages', () => {
    const reg = registry();
    const dup = { ...identity, source: '@my/plugin' };
    expect(() => reg.register(dup)).toThrow(RegistryError);
    expect(() => reg.register(dup)).toThrow(
      /"identity" is registered twice: by @quorum\/a and by @my\/plugin/,
    );
  });

  it('throws on an unknown name, listing the registered ones and a near match', () => {
    const reg = registry();
    expect(() => reg.create('tims')).toThrow(/unknown scaler "tims"\. Registered: times, identity/);
    expect(() => reg.create('tims')).toThrow(/did you mean "times"/);
    expect(() => reg.unregister('nope')).toThrow(RegistryError);
  });

  it('rejects names that are not kebab-case', () => {
    expect(() => registry().register({ ...identity, name: 'Bad Name' })).toThrow(/not kebab-case/);
  });

  it('reports invalid options with the option path and allowed values', () => {
    const reg = registry();
    expect(() => reg.create(['times', { factor: -1 }], 'train.scaler')).toThrow(ConfigError);
    expect(() => reg.create(['times', { factor: -1 }], 'train.scaler')).toThrow(
      /train\.scaler\(times\)\.factor/,
    );
    expect(() => reg.create(['times', { mode: 'slow' }])).toThrow(/must be one of "fast", "exact"/);
    expect(() => reg.create(['times', { factr: 3 }])).toThrow(
      /unknown option "factr"[\s\S]*valid options: factor, mode/,
    );
    expect(() => reg.create(['times', { factor: 'big' }])).toThrow(/expected number, got "big"/);
    expect(() => reg.create(['identity', { x: 1 }])).toThrow(/takes no options/);
  });

  it('rejects malformed specs', () => {
    const reg = registry();
    // Specs from JSON are not checked by the compiler: resolve (and create) check them at run time.
    expect(() => reg.resolve(42)).toThrow(/expected a strategy name or \[name, options\], got number 42/);
    expect(() => reg.resolve(['times', 3])).toThrow(/options of "times" must be an object/);
    const fromJson: unknown = JSON.parse('["times", 3]');
    expect(() => reg.create(fromJson as StrategySpec)).toThrow(/options of "times" must be an object/);
  });

  it("types a definition's spec by its name and option schema", () => {
    const ok: StrategySpecOf<typeof times> = ['times', { factor: 3 }];
    const bare: StrategySpecOf<typeof times> = 'times';
    // @ts-expect-error the name is the definition's own
    const wrongName: StrategySpecOf<typeof times> = 'identity';
    // @ts-expect-error mode is "fast" or "exact"
    const wrongOption: StrategySpecOf<typeof times> = ['times', { mode: 'slow' }];
    expect([ok, bare, wrongName, wrongOption]).toHaveLength(4);
    expect(registry().create(ok).scale(1)).toBe(3);
  });

  it('unregisters', () => {
    const reg = registry();
    reg.unregister('identity');
    expect(reg.has('identity')).toBe(false);
  });
});
