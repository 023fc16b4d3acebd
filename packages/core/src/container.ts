/**
 * Dependency injection at the edges. Each package exports a `ContainerModule` that binds:
 * - the extension points it owns to `ExtensionPointToken` (so `quorum info` can list every point), and
 * - each strategy it contributes to that point's token (`Symbol.for('quorum.<Name>')`).
 * The CLI (or a user's pipeline) loads modules into one container and collects a registry per point.
 * Nothing inside tensor math touches the container.
 */
import 'reflect-metadata';
import { Container, ContainerModule, type ContainerModuleLoadOptions } from 'inversify';
import { RegistryError } from './errors.js';
import {
  type AnyExtensionPoint,
  type DefinitionOf,
  type ExtensionPoint,
  StrategyRegistry,
} from './registry.js';

/** Token under which packages bind the extension points they own. */
export const ExtensionPointToken: unique symbol = Symbol.for('quorum.ExtensionPoint') as never;

/** Binds a point's strategies as contributions to its token. */
export function contribute<T, C = undefined>(
  options: Pick<ContainerModuleLoadOptions, 'bind'>,
  point: ExtensionPoint<T, C>,
  definitions: readonly DefinitionOf<T, C>[],
): void {
  for (const definition of definitions) options.bind(point.token).toConstantValue(definition);
}

/** Declares ownership of an extension point inside a ContainerModule (so containers know it exists). */
export function declarePoint(
  options: Pick<ContainerModuleLoadOptions, 'bind'>,
  point: AnyExtensionPoint,
): void {
  options.bind(ExtensionPointToken).toConstantValue(point);
}

/** The instance type of a point. */
export type InstanceOf<P> = P extends ExtensionPoint<infer T, infer _C> ? T : never;
/** The context type of a point (what `create` takes besides the options). */
export type ContextOf<P> = P extends ExtensionPoint<infer _T, infer C> ? C : never;

/**
 * A ContainerModule that owns `points` and contributes `strategies`, one `{ point, definitions }` per
 * point. Each entry's definitions are checked against its own point's interface: `P` is the tuple of
 * the entries' points, inferred (e.g. `[EnsembleArchitecture, AggregationRule]` for a plugin adding to
 * both), so a judge given to the aggregation-rule point does not compile.
 */
export function strategyModule<const P extends readonly AnyExtensionPoint[] = []>(spec: {
  points?: readonly AnyExtensionPoint[];
  strategies?: {
    readonly [K in keyof P]: {
      readonly point: P[K];
      readonly definitions: readonly DefinitionOf<InstanceOf<P[K]>, ContextOf<P[K]>>[];
    };
  };
}): ContainerModule {
  return new ContainerModule((options) => {
    for (const point of spec.points ?? []) declarePoint(options, point);
    const strategies: readonly { point: AnyExtensionPoint; definitions: readonly unknown[] }[] =
      spec.strategies ?? [];
    for (const s of strategies) {
      for (const definition of s.definitions) options.bind(s.point.token).toConstantValue(definition);
    }
  });
}

/** A container with the given modules loaded (synchronously). */
export function createQuorumContainer(modules: readonly ContainerModule[] = []): Container {
  const container = new Container();
  container.load(...modules);
  return container;
}

/** Every extension point bound in the container, deduplicated by id, in binding order. */
export function extensionPoints(container: Container): ExtensionPoint<unknown, unknown>[] {
  const all =
    container.getAll<ExtensionPoint<unknown, unknown>>(ExtensionPointToken, { optional: true }) ?? [];
  const seen = new Map<string, ExtensionPoint<unknown, unknown>>();
  for (const p of all) if (!seen.has(p.id)) seen.set(p.id, p);
  return [...seen.values()];
}

/** Builds the registry of one point from the container's contributions. Duplicates throw. */
export function registryFor<T, C = undefined>(
  container: Container,
  point: ExtensionPoint<T, C>,
): StrategyRegistry<T, C> {
  const registry = new StrategyRegistry<T, C>(point);
  const contributions = container.getAll<DefinitionOf<T, C>>(point.token, { optional: true }) ?? [];
  for (const definition of contributions) registry.register(definition);
  return registry;
}

/** Registries for every point in the container, keyed by point id. */
export function collectRegistries(container: Container): Map<string, StrategyRegistry<unknown, unknown>> {
  const out = new Map<string, StrategyRegistry<unknown, unknown>>();
  for (const point of extensionPoints(container)) out.set(point.id, registryFor(container, point));
  return out;
}

/**
 * Looks up a registry by point id, typed by the point; throws listing the known points. The map holds
 * what `collectRegistries` built, so the entry under `point.id` holds definitions bound to `point.token`.
 */
export function requireRegistry<T, C = undefined>(
  registries: ReadonlyMap<string, StrategyRegistry<unknown, unknown>>,
  point: ExtensionPoint<T, C>,
): StrategyRegistry<T, C> {
  const reg = registries.get(point.id);
  if (reg === undefined) {
    throw new RegistryError(
      `extension point "${point.id}" is not loaded. Loaded: ${[...registries.keys()].join(', ')}`,
      {
        hint: 'load the package that owns it into the container',
      },
    );
  }
  return reg as StrategyRegistry<T, C>;
}

export type { ContainerModuleLoadOptions };
export { Container, ContainerModule };
