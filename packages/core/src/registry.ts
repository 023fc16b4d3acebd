/**
 * One registry of named strategies per extension point. A strategy is a name, a description, the
 * package that contributed it, a zod schema for its options (with their defaults) and a factory.
 * Duplicate names throw naming both packages; unknown names throw listing the registered ones.
 */
import type { z } from 'zod';
import { describeValue, parseStrategySpec, resolveOptions, type StrategySpec } from './config.js';
import { RegistryError } from './errors.js';

/**
 * A named strategy for one extension point. `TInstance` is what the point's consumers use, `TSchema` the
 * zod schema of its options, `TContext` what the caller may hand to `create` besides the options (e.g. a
 * logger for a judge; `unknown` for a strategy that ignores it, so it fits every point), `TName` the name
 * as a literal type (inferred by `defineStrategy`).
 */
export interface StrategyDefinition<
  TInstance = unknown,
  TSchema extends z.ZodType = z.ZodType,
  TContext = unknown,
  TName extends string = string,
> {
  /** Kebab-case name used in configs and on the command line, e.g. `lcb`. */
  readonly name: TName;
  /** One line shown by `quorum info`. */
  readonly description: string;
  /** The package (or plugin path) that contributed it, shown in duplicate-name errors. */
  readonly source: string;
  /** Option schema with defaults; `z.object({}).strict()` for a strategy without options. */
  readonly options: TSchema;
  /**
   * Builds an instance from resolved options. Called when a config names this strategy; `context` is what
   * the caller passed to `StrategyRegistry.create` (undefined when it passed nothing).
   */
  create(options: z.output<TSchema>, context?: TContext): TInstance;
}

/** The spec (`"name"` or `["name", options]`) that a definition accepts, typed by its name and schema. */
export type StrategySpecOf<D> =
  D extends StrategyDefinition<unknown, infer S, infer _C, infer N>
    ? StrategySpec<N, z.input<S> & object>
    : never;

/** Declares a strategy with its option types inferred from the schema and its name kept as a literal. */
export function defineStrategy<
  TInstance,
  TSchema extends z.ZodType,
  TContext = unknown,
  const TName extends string = string,
>(
  definition: StrategyDefinition<TInstance, TSchema, TContext, TName>,
): StrategyDefinition<TInstance, TSchema, TContext, TName> {
  return definition;
}

/**
 * An extension point: its kebab-case id, the DI token its contributions bind to, and what it is for.
 * `TInstance` is the interface strategies implement (checked exactly: a point only takes definitions of
 * its own interface); `TContext` what callers may pass to `create` besides the options.
 */
export interface ExtensionPoint<TInstance = unknown, TContext = undefined> {
  readonly id: string;
  readonly token: symbol;
  readonly description: string;
  /** Phantom field carrying the instance type (a function type, so the type is matched exactly). */
  readonly __instance?: (instance: TInstance) => TInstance;
  /** Phantom field carrying the context type. */
  readonly __context?: TContext;
}

/** A point of any type, for code that only reads its id, token and description (e.g. `quorum info`). */
export type AnyExtensionPoint = Pick<ExtensionPoint, 'id' | 'token' | 'description'>;

/**
 * Declares an extension point. `name` is PascalCase (e.g. `AggregationRule`); the token is
 * `Symbol.for('quorum.<name>')`, so two copies of a package still agree on it.
 */
export function defineExtensionPoint<TInstance, TContext = undefined>(
  name: string,
  id: string,
  description: string,
): ExtensionPoint<TInstance, TContext> {
  return { id, token: Symbol.for(`quorum.${name}`), description };
}

/** A definition a registry of `TInstance` accepts, whatever its option schema and name. */
export type DefinitionOf<TInstance, TContext = undefined> = StrategyDefinition<
  TInstance,
  z.ZodType,
  TContext,
  string
>;

export class StrategyRegistry<TInstance = unknown, TContext = undefined> {
  private readonly entries = new Map<string, DefinitionOf<TInstance, TContext>>();

  constructor(readonly point: Pick<ExtensionPoint<TInstance, TContext>, 'id'>) {}

  /** Adds a strategy. Throws when the name is taken, naming both sources. */
  register(definition: DefinitionOf<TInstance, TContext>): this {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(definition.name)) {
      throw new RegistryError(
        `${this.point.id} name "${definition.name}" from ${definition.source} is not kebab-case`,
        {
          hint: 'use lower-case letters, digits and dashes, e.g. "my-rule"',
        },
      );
    }
    const existing = this.entries.get(definition.name);
    if (existing !== undefined) {
      throw new RegistryError(
        `${this.point.id} "${definition.name}" is registered twice: by ${existing.source} and by ${definition.source}`,
        { hint: `rename one of them, or load only one of ${existing.source} and ${definition.source}` },
      );
    }
    this.entries.set(definition.name, definition);
    return this;
  }

  /** Removes a strategy; throws when it is not registered. */
  unregister(name: string): void {
    if (!this.entries.delete(name)) throw this.unknown(name);
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The definition registered under `name`; throws listing the valid names when unknown. */
  get(name: string): DefinitionOf<TInstance, TContext> {
    const entry = this.entries.get(name);
    if (entry === undefined) throw this.unknown(name);
    return entry;
  }

  /** Registered names, in registration order. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  definitions(): DefinitionOf<TInstance, TContext>[] {
    return [...this.entries.values()];
  }

  /**
   * Resolves a config entry (`name` or `[name, options]`) to an instance: looks the name up,
   * validates the options against the strategy's schema (errors name `path`), and creates it with
   * `context` (the point's extra inputs, e.g. a judge's logger). The spec is checked again at run time,
   * since plugin names and JSON options are only known then.
   */
  create(spec: StrategySpec, path: string = this.point.id, context?: TContext): TInstance {
    const { name, options } = parseStrategySpec(spec, path);
    const definition = this.get(name);
    const resolved = resolveOptions(definition.options, options, `${path}(${name})`);
    return context === undefined ? definition.create(resolved) : definition.create(resolved, context);
  }

  /**
   * Validates a spec without creating it; returns the name and resolved options. Takes any value (a
   * config file's JSON, say): a malformed spec is a ConfigError naming `path`.
   */
  resolve(spec: unknown, path: string = this.point.id): { name: string; options: unknown } {
    const { name, options } = parseStrategySpec(spec, path);
    const definition = this.get(name);
    return { name, options: resolveOptions(definition.options, options, `${path}(${name})`) };
  }

  private unknown(name: string): RegistryError {
    const names = this.names();
    // Names whose lengths differ by more than 2 are more than 2 edits apart: skip the O(|a|·|b|) count.
    const near = names.filter((n) => Math.abs(n.length - name.length) <= 2 && editDistance(n, name) <= 2);
    return new RegistryError(
      `unknown ${this.point.id} ${describeValue(name)}. Registered: ${names.length === 0 ? '(none)' : names.join(', ')}`,
      {
        hint:
          near.length > 0
            ? `did you mean ${near.map((n) => `"${n}"`).join(' or ')}?`
            : 'load the plugin that provides it with --plugin, or pick a registered name',
      },
    );
  }
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0] as number;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j] as number;
      dp[j] = Math.min(
        (dp[j] as number) + 1,
        (dp[j - 1] as number) + 1,
        prev + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      prev = tmp;
    }
  }
  return dp[b.length] as number;
}
