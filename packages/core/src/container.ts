/**
 * Dependency injection at the edges. Each package exports a `ContainerModule` that binds:
 * - the extension points it owns to `ExtensionPointToken` (so `quorum info` can list every point), and
 * - each strategy it contributes to that point's token (`Symbol.for('quorum.<Name>')`).
 * The CLI (or a user's pipeline) loads modules into one container and collects a registry per point.
 * Nothing inside tensor math touches the container.
 */
import 'reflect-metadata';
import { Container, ContainerModule, type ContainerModuleLoadOptions } from 'inversify';
import type { z } from 'zod';
import { RegistryError } from './errors.js';
import { type ExtensionPoint, type StrategyDefinition, StrategyRegistry } from './registry.js';

/** Token under which packages bind the extension points they own. */
export const ExtensionPointToken: unique symbol = Symbol.for('quorum.ExtensionPoint') as never;

/** Binds a point so that containers know it exists, and its strategies as contributions. */
export function contribute<T>(
  options: Pick<ContainerModuleLoadOptions, 'bind'>,
  point: ExtensionPoint<T>,
  definitions: readonly StrategyDefinition<T, z.ZodType>[],
): void {
  for (const definition of definitions) options.bind(point.token).toConstantValue(definition);
}

/** Declares ownership of an extension point inside a ContainerModule. */
export function declarePoint(
  options: Pick<ContainerModuleLoadOptions, 'bind'>,
  point: ExtensionPoint<unknown>,
): void {
  options.bind(ExtensionPointToken).toConstantValue(point);
}

/** A ContainerModule that owns `points` and contributes `strategies` (pairs of point + definitions). */
export function strategyModule(spec: {
  points?: readonly ExtensionPoint<never>[];
  strategies?: readonly {
    point: ExtensionPoint<never>;
    definitions: readonly StrategyDefinition<never, z.ZodType>[];
  }[];
}): ContainerModule {
  return new ContainerModule((options) => {
    for (const point of spec.points ?? []) declarePoint(options, point as ExtensionPoint<unknown>);
    for (const s of spec.strategies ?? []) contribute(options, s.point, s.definitions);
  });
}

/** A container with the given modules loaded (synchronously). */
export function createQuorumContainer(modules: readonly ContainerModule[] = []): Container {
  const container = new Container();
  container.load(...modules);
  return container;
}

/** Every extension point bound in the container, deduplicated by id, in binding order. */
export function extensionPoints(container: Container): ExtensionPoint<unknown>[] {
  const all = container.getAll<ExtensionPoint<unknown>>(ExtensionPointToken, { optional: true }) ?? [];
  const seen = new Map<string, ExtensionPoint<unknown>>();
  for (const p of all) if (!seen.has(p.id)) seen.set(p.id, p);
  return [...seen.values()];
}

/** Builds the registry of one point from the container's contributions. Duplicates throw. */
export function registryFor<T>(container: Container, point: ExtensionPoint<T>): StrategyRegistry<T> {
  const registry = new StrategyRegistry<T>(point);
  const contributions = container.getAll<StrategyDefinition<T>>(point.token, { optional: true }) ?? [];
  for (const definition of contributions) registry.register(definition);
  return registry;
}

/** Registries for every point in the container, keyed by point id. */
export function collectRegistries(container: Container): Map<string, StrategyRegistry<unknown>> {
  const out = new Map<string, StrategyRegistry<unknown>>();
  for (const point of extensionPoints(container)) out.set(point.id, registryFor(container, point));
  return out;
}

/** Looks up a registry by point id; throws listing the known points. */
export function requireRegistry<T>(
  registries: Map<string, StrategyRegistry<unknown>>,
  point: ExtensionPoint<T>,
): StrategyRegistry<T> {
  const reg = registries.get(point.id);
  if (reg === undefined) {
    throw new RegistryError(
      `extension point "${point.id}" is not loaded. Loaded: ${[...registries.keys()].join(', ')}`,
      {
        hint: 'load the package that owns it into the container',
      },
    );
  }
  return reg as StrategyRegistry<T>;
}

export type { ContainerModuleLoadOptions };
export { Container, ContainerModule };
