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

describe('container helpers', () => {
  it('collects points and contributions from several modules', () => {
    const owner = strategyModule({
      points: [Greeter as never],
      strategies: [{ point: Greeter as never, definitions: [hello('hi', 'pkg-a') as never] }],
    });
    const plugin = strategyModule({
      strategies: [{ point: Greeter as never, definitions: [hello('hey', 'plugin-b') as never] }],
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
      points: [Greeter as never],
      strategies: [{ point: Greeter as never, definitions: [hello('hi', 'pkg-a') as never] }],
    });
    const b = strategyModule({
      strategies: [{ point: Greeter as never, definitions: [hello('hi', 'plugin-b') as never] }],
    });
    expect(() => collectRegistries(createQuorumContainer([a, b]))).toThrow(/by pkg-a and by plugin-b/);
  });
});
