import {
  ConfigError,
  createQuorumContainer,
  RegistryError,
  registryFor,
  type StrategySpec,
} from '@quorum/core';
import { describe, expect, it } from 'vitest';
import { AggregationRule } from './aggregation-rule.js';
import { aggregationRegistry, builtinAggregationRules, createAggregationRule, lcbRule } from './builtins.js';
import { aggregationModule } from './module.js';

/** A spec as a config file or the command line gives it: checked at run time, not by the compiler. */
const fromConfig = (spec: StrategySpec) => createAggregationRule(spec, aggregationRegistry());

describe('aggregation registry', () => {
  it('registers the five built-ins', () => {
    expect(aggregationRegistry().names()).toEqual(['mean', 'lcb', 'min', 'uwo', 'median']);
    expect(builtinAggregationRules.every((d) => d.source === '@quorum/aggregation')).toBe(true);
  });

  it('creates a rule from a name or [name, options], with defaults', () => {
    expect(createAggregationRule('mean').name).toBe('mean');
    expect(aggregationRegistry().resolve('lcb').options).toEqual({ beta: 1, std: 'population' });
    expect(aggregationRegistry().resolve(['uwo', { std: 'sample' }]).options).toEqual({
      lambda: 0.5,
      std: 'sample',
    });
    expect(createAggregationRule(['lcb', { beta: 2 }]).aggregateArrays([[0], [2]]).aggregate).toEqual([-1]);
    const typeChecks = (): void => {
      // @ts-expect-error the built-in specs are typed: beta is a number
      createAggregationRule(['lcb', { beta: '2' }]);
      // @ts-expect-error and the name is a built-in's
      createAggregationRule('lbc');
    };
    expect(typeChecks).toBeTypeOf('function');
  });

  it('names the option and lists the valid ones for an unknown option', () => {
    let error: unknown;
    try {
      fromConfig(['lcb', { betta: 2 }]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(/unknown option "betta"/);
    expect((error as ConfigError).hint).toBe('valid options: beta, std');
    expect(() => fromConfig(['mean', { beta: 1 }])).toThrow(/this strategy takes no options/);
  });

  it('rejects a negative β or λ and an unknown std mode, naming the option path', () => {
    expect(() => createAggregationRule(['lcb', { beta: -0.5 }])).toThrow(
      /aggregation-rule\(lcb\)\.beta.*must be ≥ 0/s,
    );
    expect(() => createAggregationRule(['uwo', { lambda: -1 }])).toThrow(/lambda.*must be ≥ 0/s);
    expect(() => fromConfig(['lcb', { std: 'unbiased' }])).toThrow(/must be one of "population", "sample"/);
    expect(() => fromConfig(['lcb', { beta: '2' }])).toThrow(/expected number, got "2"/);
    expect(() => lcbRule({ beta: -1 })).toThrow(ConfigError);
  });

  it('lists the registered names for an unknown rule', () => {
    expect(() => fromConfig('lbc')).toThrow(RegistryError);
    expect(() => fromConfig('lbc')).toThrow(/Registered: mean, lcb, min, uwo, median/);
  });

  it('contributes the point and the built-ins through its ContainerModule', () => {
    const container = createQuorumContainer([aggregationModule()]);
    expect(registryFor(container, AggregationRule).names()).toEqual(['mean', 'lcb', 'min', 'uwo', 'median']);
    expect(AggregationRule.id).toBe('aggregation-rule');
    expect(AggregationRule.token).toBe(Symbol.for('quorum.AggregationRule'));
  });
});
