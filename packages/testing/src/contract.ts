/**
 * The contract-suite harness: one set of tests for an extension point, run once per strategy, so a
 * plugin's strategy is held to the same contract as the built-ins (like tfjs's `describeWithFlags`
 * over every backend). The package that owns a point defines its suite with `defineContractSuite`
 * and exports it from its `./testing` entry; a plugin's test file runs it over its own strategies.
 */
import type { StrategyRegistry } from '@quorum/core';
import { describe } from 'vitest';

/** What a suite's tests see: the case name and a factory for a fresh instance. */
export interface ContractContext<T> {
  /** The case name, e.g. `lcb` or `lcb {"beta":2}`. */
  readonly name: string;
  /** Creates a fresh instance. Call it inside a test (or a hook), not while vitest collects tests. */
  create(): T | Promise<T>;
}

/** One strategy (or one configuration of it) to run the suite over. */
export interface ContractCase<T> {
  readonly name: string;
  create(): T | Promise<T>;
}

export interface RegistryCaseOptions {
  /**
   * Options per strategy name; an array gives one case per entry. Names not listed run once with
   * their default options (`{}`).
   */
  readonly options?: Readonly<Record<string, object | readonly object[]>>;
  /** Only these names (default: every registered name). Unknown names throw. */
  readonly only?: readonly string[];
}

export interface ContractSuite<T> {
  /** The extension point's name, used in every `describe` title. */
  readonly pointName: string;
  /** Registers one vitest `describe` per case. Throws when `cases` is empty or has duplicate names. */
  run(cases: readonly ContractCase<T>[]): void;
  /** Runs the suite over every strategy in `registry` (see `casesFromRegistry`). */
  runRegistry(registry: StrategyRegistry<T>, options?: RegistryCaseOptions): void;
}

/**
 * Defines a contract suite. `tests` registers `it`/`describe` blocks for one strategy using `ctx`;
 * it is called once per case inside `describe('<pointName> contract: <case name>')`.
 */
export function defineContractSuite<T>(
  pointName: string,
  tests: (ctx: ContractContext<T>) => void,
): ContractSuite<T> {
  const run = (cases: readonly ContractCase<T>[]): void => {
    if (cases.length === 0) {
      throw new Error(`${pointName} contract: no cases to run; pass at least one { name, create }`);
    }
    const seen = new Set<string>();
    for (const c of cases) {
      if (seen.has(c.name)) throw new Error(`${pointName} contract: case "${c.name}" is given twice`);
      seen.add(c.name);
    }
    for (const c of cases) {
      describe(`${pointName} contract: ${c.name}`, () => {
        tests({ name: c.name, create: () => c.create() });
      });
    }
  };
  return {
    pointName,
    run,
    runRegistry: (registry, options) => run(casesFromRegistry(registry, options)),
  };
}

/**
 * One case per registered strategy (and per option set given for it). Instances are created through
 * `registry.create([name, options])`, so options are validated as a user's config would be.
 */
export function casesFromRegistry<T>(
  registry: StrategyRegistry<T>,
  options: RegistryCaseOptions = {},
): ContractCase<T>[] {
  const names = options.only ?? registry.names();
  for (const name of names) registry.get(name); // throws listing the registered names
  for (const name of Object.keys(options.options ?? {})) {
    if (!names.includes(name)) {
      throw new Error(
        `contract cases: options given for "${name}", which is not run. Run: ${names.join(', ')}`,
      );
    }
  }
  const cases: ContractCase<T>[] = [];
  for (const name of names) {
    const given = options.options?.[name];
    const sets: readonly (object | undefined)[] =
      given === undefined ? [undefined] : Array.isArray(given) ? given : [given];
    for (const set of sets) {
      cases.push({
        name: set === undefined || Object.keys(set).length === 0 ? name : `${name} ${JSON.stringify(set)}`,
        create: () => registry.create(set === undefined ? name : [name, set]),
      });
    }
  }
  return cases;
}
