/**
 * One registry of named strategies per extension point. A strategy is a name, a description, the
 * package that contributed it, a zod schema for its options (with their defaults) and a factory.
 * Duplicate names throw naming both packages; unknown names throw listing the registered ones.
 */
import type { z } from 'zod';
import { describeValue, parseStrategySpec, resolveOptions } from './config.js';
import { RegistryError } from './errors.js';

/** A named strategy for one extension point. `TInstance` is what the point's consumers use. */
export interface StrategyDefinition<TInstance = unknown, TSchema extends z.ZodType = z.ZodType> {
  /** Kebab-case name used in configs and on the command line, e.g. `lcb`. */
  readonly name: string;
  /** One line shown by `quorum info`. */
  readonly description: string;
  /** The package (or plugin path) that contributed it, shown in duplicate-name errors. */
  readonly source: string;
  /** Option schema with defaults; `z.object({}).strict()` for a strategy without options. */
  readonly options: TSchema;
  /** Builds an instance from resolved options. Called when a config names this strategy. */
  create(options: z.output<TSchema>): TInstance;
}

/** Declares a strategy with its option types inferred from the schema. */
export function defineStrategy<TInstance, TSchema extends z.ZodType>(
  definition: StrategyDefinition<TInstance, TSchema>,
): StrategyDefinition<TInstance, TSchema> {
  return definition;
}

/** An extension point: its kebab-case id, the DI token its contributions bind to, and what it is for. */
export interface ExtensionPoint<TInstance = unknown> {
  readonly id: string;
  readonly token: symbol;
  readonly description: string;
  /** Phantom field carrying the instance type. */
  readonly __instance?: TInstance;
}

/**
 * Declares an extension point. `name` is PascalCase (e.g. `AggregationRule`); the token is
 * `Symbol.for('quorum.<name>')`, so two copies of a package still agree on it.
 */
export function defineExtensionPoint<TInstance>(
  name: string,
  id: string,
  description: string,
): ExtensionPoint<TInstance> {
  return { id, token: Symbol.for(`quorum.${name}`), description };
}

export class StrategyRegistry<TInstance = unknown> {
  private readonly entries = new Map<string, StrategyDefinition<TInstance>>();

  constructor(readonly point: Pick<ExtensionPoint<TInstance>, 'id'>) {}

  /** Adds a strategy. Throws when the name is taken, naming both sources. */
  register(definition: StrategyDefinition<TInstance, z.ZodType>): this {
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
    this.entries.set(definition.name, definition as StrategyDefinition<TInstance>);
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
  get(name: string): StrategyDefinition<TInstance> {
    const entry = this.entries.get(name);
    if (entry === undefined) throw this.unknown(name);
    return entry;
  }

  /** Registered names, in registration order. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  definitions(): StrategyDefinition<TInstance>[] {
    return [...this.entries.values()];
  }

  /**
   * Resolves a config entry (`name` or `[name, options]`) to an instance: looks the name up,
   * validates the options against the strategy's schema (errors name `path`), and creates it.
   */
  create(spec: unknown, path: string = this.point.id): TInstance {
    const { name, options } = parseStrategySpec(spec, path);
    const definition = this.get(name);
    const resolved = resolveOptions(definition.options, options, `${path}(${name})`);
    return definition.create(resolved);
  }

  /** Validates options for `name` without creating it; returns the resolved options. */
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
