// The study's strategies come from the registries it is given, by name: a plugin's rule is studied too.
import { aggregationRegistry, meanRule } from '@quorum/aggregation';
import { ConfigError, defineStrategy } from '@quorum/core';
import { builtinArchitectureRegistry } from '@quorum/ensemble';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { REPRODUCE_ARCHITECTURES, resolveReproduceStrategies } from './reproduce.js';

const pluginRule = defineStrategy({
  name: 'my-rule',
  description: 'a plugin rule (the mean under another name)',
  source: 'quorum-plugin-test',
  options: z.object({}).strict(),
  create: () => meanRule(),
});

describe('resolveReproduceStrategies', () => {
  const registries = {
    architectures: builtinArchitectureRegistry(),
    rules: aggregationRegistry([pluginRule]),
  };

  it("defaults to the paper's four architectures and mean, lcb (β = 1)", () => {
    const s = resolveReproduceStrategies(registries);
    expect(s.architectures.map((a) => a.name)).toEqual([...REPRODUCE_ARCHITECTURES]);
    expect(s.rules.map((r) => [r.label, r.rule.name])).toEqual([
      ['mean', 'mean'],
      ['lcb', 'lcb'],
    ]);
    expect([s.gold.name, s.ppoRule.label]).toEqual(['single', 'mean']);
  });

  it("takes a plugin's rule by name and rejects unknown or repeated names before any work", () => {
    const s = resolveReproduceStrategies(registries, {
      architectures: ['linear-heads'],
      rules: [{ label: 'my-rule', spec: 'my-rule' }],
    });
    expect(s.rules[0]?.rule.name).toBe('mean');
    expect(s.rules[0]?.label).toBe('my-rule');
    expect(() => resolveReproduceStrategies(registries, { architectures: ['warm'] })).toThrow(
      /unknown ensemble-architecture "warm"/,
    );
    expect(() => resolveReproduceStrategies(registries, { architectures: ['lora', 'lora'] })).toThrow(
      ConfigError,
    );
    expect(() =>
      resolveReproduceStrategies(registries, { rules: [{ label: 'x', spec: ['lcb', { beta: 'big' }] }] }),
    ).toThrow(/beta/);
  });
});
