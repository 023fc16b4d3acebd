/**
 * Messages of resolveOptions for input the property tests found awkward: values zod cannot print as
 * JSON, huge keys and key lists, non-finite numbers, and length bounds on arrays and strings.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { describeValue, resolveOptions } from './config.js';
import { ConfigError } from './errors.js';

/** The ConfigError `fn` throws (fails the test when it throws anything else or nothing). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

describe('resolveOptions messages', () => {
  it('names a bigint literal instead of failing to serialise it (was a TypeError)', () => {
    const err = configError(() => resolveOptions(z.object({ n: z.literal(5n) }).strict(), { n: 4 }, 'p'));
    expect(err.location?.field).toBe('p.n');
    expect(err.message).toMatch(/must be one of 5n/);
  });

  it('lists at most five unknown keys, each clipped, and counts the rest', () => {
    const input = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}${'y'.repeat(100)}`, 1]));
    const err = configError(() =>
      resolveOptions(z.object({ a: z.number().optional() }).strict(), input, 'p'),
    );
    expect(err.message).toMatch(/unknown options "k0y+…", .* and 4995 more/);
    expect(err.message.length).toBeLessThan(400);
  });

  it('clips a long key in the option path', () => {
    const schema = z.object({ r: z.record(z.string(), z.number()) }).strict();
    const err = configError(() => resolveOptions(schema, { r: { ['y'.repeat(5000)]: 'x' } }, 'p'));
    expect(err.location?.field).toBe(`p.r.${'y'.repeat(40)}…`);
    expect(err.message.length).toBeLessThan(200);
  });

  it('says a number must be finite for NaN and ±Infinity', () => {
    const schema = z.object({ beta: z.number() }).strict();
    expect(() => resolveOptions(schema, { beta: Number.NaN }, 'lcb')).toThrow(
      'field "lcb.beta": expected a finite number, got NaN',
    );
    expect(() => resolveOptions(schema, { beta: -Infinity }, 'lcb')).toThrow(
      'expected a finite number, got -Infinity',
    );
  });

  it('counts items and characters for array and string bounds', () => {
    const schema = z.object({ targets: z.array(z.string()).min(1), name: z.string().max(3) }).strict();
    expect(() => resolveOptions(schema, { targets: [], name: 'a' }, 'p')).toThrow(
      'field "p.targets": must have ≥ 1 item(s)',
    );
    expect(() => resolveOptions(schema, { targets: ['a'], name: 'abcd' }, 'p')).toThrow(
      'field "p.name": must have ≤ 3 character(s)',
    );
    expect(() => resolveOptions(z.object({ n: z.number().min(0) }), { n: -1 }, 'p')).toThrow(
      'field "p.n": must be ≥ 0',
    );
  });
});

describe('describeValue', () => {
  it('is short whatever the value', () => {
    expect(describeValue(() => 'a long function body')).toBe('a function');
    expect(describeValue('x'.repeat(1000))).toBe(`"${'x'.repeat(40)}…"`);
    expect(describeValue(Symbol('s'))).toBe('symbol Symbol(s)');
    expect(describeValue(10n)).toBe('bigint 10');
    expect(describeValue([1, 2])).toBe('an array of length 2');
  });
});
