/** Reading `key=value` options from the command line. */
import { ConfigError, describeValue } from '@quorum/core';

/** A value from the command line: `true`/`false` → boolean, a number → number, else the string as given. */
export function parseOptionValue(raw: string): unknown {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  // Number('') and Number('  ') are 0: blank stays a string, so the option's schema reports it.
  return raw.trim() !== '' && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
}

/** What `parseKeyValues` asks of a strategy's option schema: a zod object's `shape`. */
interface OptionShape {
  readonly shape?: Readonly<Record<string, { safeParse(value: unknown): { success: boolean } }>>;
}

/**
 * Parses repeated `key=value` options into an object (the last value wins). With the strategy's option
 * schema, a key whose field takes text gets the text as typed (`apiKey=000123` stays "000123"); every
 * other value is converted by `parseOptionValue` (numbers and booleans).
 */
export function parseKeyValues(
  pairs: readonly string[] | undefined,
  flag: string,
  schema?: unknown,
): Record<string, unknown> {
  const shape = (schema as OptionShape | undefined)?.shape;
  const out: Record<string, unknown> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0)
      throw new ConfigError(`expects key=value, got ${describeValue(pair)}`, {
        location: { field: flag },
        hint: `write ${flag} beta=0.5`,
      });
    // Defined, not assigned: `__proto__=1` becomes an own key (which the schema rejects as unknown)
    // instead of a silently ignored prototype write.
    const key = pair.slice(0, eq);
    const raw = pair.slice(eq + 1);
    const field = shape !== undefined && Object.hasOwn(shape, key) ? shape[key] : undefined;
    Object.defineProperty(out, key, {
      value: field?.safeParse(raw).success === true ? raw : parseOptionValue(raw),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
