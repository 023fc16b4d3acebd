/** Reading `key=value` options from the command line. */
import { ConfigError, describeValue } from '@quorum/core';

/** A value from the command line: `true`/`false` → boolean, a number → number, else the string as given. */
export function parseOptionValue(raw: string): unknown {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  // Number('') and Number('  ') are 0: blank stays a string, so the option's schema reports it.
  return raw.trim() !== '' && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
}

/** Parses repeated `key=value` options into an object (numbers and booleans converted; the last value wins). */
export function parseKeyValues(pairs: readonly string[] | undefined, flag: string): Record<string, unknown> {
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
    Object.defineProperty(out, pair.slice(0, eq), {
      value: parseOptionValue(pair.slice(eq + 1)),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
