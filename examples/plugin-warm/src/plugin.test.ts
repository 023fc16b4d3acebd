import { AggregationRule, aggregationModule } from '@quorum/aggregation';
import { collectRegistries, createQuorumContainer, requireRegistry } from '@quorum/core';
import { EnsembleArchitecture, ensembleModule } from '@quorum/ensemble';
import { useTestBackend } from '@quorum/testing';
import { describe, expect, it } from 'vitest';
import plugin, { softminStrategy, warmPluginModule, warmStrategy } from './index.js';

useTestBackend();

describe('the plugin module', () => {
  const container = createQuorumContainer([aggregationModule(), ensembleModule(), plugin]);
  const registries = collectRegistries(container);

  it('adds warm to ensemble-architecture and softmin to aggregation-rule, beside the built-ins', () => {
    const archs = requireRegistry(registries, EnsembleArchitecture);
    const rules = requireRegistry(registries, AggregationRule);
    expect(archs.names()).toEqual(['single', 'independent', 'linear-heads', 'lora', 'warm']);
    expect(rules.names()).toContain('softmin');
    expect(rules.names()).toContain('lcb');
    expect(archs.get('warm').source).toBe('@quorum-examples/plugin-warm');
  });

  it('creates the strategies by name with validated options', () => {
    const rules = requireRegistry(registries, AggregationRule);
    const rule = rules.create(['softmin', { tau: 0.5 }]);
    expect(rule.name).toBe('softmin');
    expect(rule.aggregateArrays([[-1], [0], [1]]).aggregate[0]).toBeCloseTo(-0.5221596699158949, 10);
    expect(() => rules.create(['softmin', { tau: 0 }])).toThrow(/tau/);
    const archs = requireRegistry(registries, EnsembleArchitecture);
    expect(archs.create('warm').name).toBe('warm');
  });

  it('is the default export and also a named factory', () => {
    expect(typeof plugin.load).toBe('function');
    expect(warmPluginModule()).not.toBe(plugin);
    expect(warmStrategy.name).toBe('warm');
    expect(softminStrategy.name).toBe('softmin');
  });

  it('throws naming both sources when loaded twice', () => {
    const twice = createQuorumContainer([aggregationModule(), ensembleModule(), plugin, warmPluginModule()]);
    expect(() => collectRegistries(twice)).toThrow(/registered twice/);
  });
});
