import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { collectRegistries, createQuorumContainer, registryFor, strategyModule } from './container.js';
import { coreModule } from './module.js';
import { defineExtensionPoint, defineStrategy } from './registry.js';

interface Greeter {
  greet(): string;
}
const Greeter = defineExtensionPoint<Greeter>('TestGreeter', 'greeter', 'says hello');
const hello = (name: string, source: string) =>
  defineStrategy({
    name,
    description: name,
    source,
    options: z.object({ loud: z.boolean().default(false) }).strict(),
    create: (o): Greeter => ({ greet: () => (o.loud ? name.toUpperCase() : name) }),
  });

interface Counter {
  count(): number;
}
const Counter = defineExtensionPoint<Counter, { readonly start?: number }>(
  'TestCounter',
  'counter',
  'counts',
);
const counter = defineStrategy({
  name: 'from',
  description: 'counts from the context start',
  source: 'pkg-c',
  options: z.object({ step: z.number().default(1) }).strict(),
  create: (o, context?: { readonly start?: number }): Counter => ({
    count: () => (context?.start ?? 0) + o.step,
  }),
});

describe('container helpers', () => {
  it('checks each contribution against its own point, and passes a typed context to create', () => {
    const both = strategyModule({
      points: [Greeter, Counter],
      strategies: [
        { point: Greeter, definitions: [hello('hi', 'pkg-a')] },
        { point: Counter, definitions: [counter] },
      ],
    });
    const container = createQuorumContainer([both]);
    const counters = registryFor(container, Counter);
    expect(counters.create('from').count()).toBe(1);
    expect(counters.create(['from', { step: 2 }], 'counter', { start: 10 }).count()).toBe(12);
    // Compile-time checks (typecheck runs this file; an unused @ts-expect-error fails it):
    const wrongUses = (): void => {
      // @ts-expect-error a Greeter definition is not a Counter
      strategyModule({ strategies: [{ point: Counter, definitions: [hello('hi', 'pkg-a')] }] });
      // @ts-expect-error the context has the point's type
      counters.create('from', 'counter', { start: 'ten' });
      // @ts-expect-error a spec is a name or [name, options]
      counters.create(3);
    };
    expect(wrongUses).toBeTypeOf('function');
  });

  it('collects points and contributions from several modules', () => {
    const owner = strategyModule({
      points: [Greeter],
      strategies: [{ point: Greeter, definitions: [hello('hi', 'pkg-a')] }],
    });
    const plugin = strategyModule({
      strategies: [{ point: Greeter, definitions: [hello('hey', 'plugin-b')] }],
    });
    const container = createQuorumContainer([coreModule(), owner, plugin]);
    const registries = collectRegistries(container);
    expect([...registries.keys()]).toEqual(['compute-backend', 'greeter']);
    const greeters = registryFor(container, Greeter);
    expect(greeters.names()).toEqual(['hi', 'hey']);
    expect(greeters.create(['hey', { loud: true }]).greet()).toBe('HEY');
  });

  it('reports a duplicate contributed by two modules', () => {
    const a = strategyModule({
      points: [Greeter],
      strategies: [{ point: Greeter, definitions: [hello('hi', 'pkg-a')] }],
    });
    const b = strategyModule({
      strategies: [{ point: Greeter, definitions: [hello('hi', 'plugin-b')] }],
    });
    expect(() => collectRegistries(createQuorumContainer([a, b]))).toThrow(/by pkg-a and by plugin-b/);
  });
});
