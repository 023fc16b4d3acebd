/**
 * Property tests of `--agg-opt` / `--ppo-opt` / `--arch-opt` parsing (issue 9, bad input): any strings
 * give an object or a ConfigError naming the flag; every `key=value` lands as an own key (`__proto__`
 * too, so the option schema rejects it instead of it vanishing), with its value converted exactly.
 */
import { ConfigError, resolveOptions } from '@quorum/core';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseKeyValues, parseOptionValue } from './key-values.js';

const FLAG = '--ppo-opt';
const DANGEROUS_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'];

/** A key as a user might type one: anything without `=`, never empty. */
const key = fc.oneof(
  fc.constantFrom('beta', 'std', 'klTarget', 'whitenRewards', ...DANGEROUS_KEYS),
  fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !k.includes('=')),
);
const value = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom(
    'true',
    'false',
    '',
    ' ',
    '\t',
    'NaN',
    'Infinity',
    '-Infinity',
    '1e400',
    '0x10',
    '-0',
    '=',
    'a=b',
  ),
  fc.double().map(String),
  fc.integer().map(String),
  fc.constant('9'.repeat(10_000)),
);

const prototypeNames = Object.getOwnPropertyNames(Object.prototype).sort();
afterAll(() => {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeNames);
});

describe('parseKeyValues', () => {
  it('any strings: an object or a ConfigError naming the flag', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.string(),
            fc.tuple(key, value).map(([k, v]) => `${k}=${v}`),
          ),
        ),
        (pairs) => {
          try {
            const out = parseKeyValues(pairs, FLAG);
            expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
          } catch (err) {
            if (!(err instanceof ConfigError)) throw err;
            expect(err.location?.field).toBe(FLAG);
            expect(err.message).toMatch(/expects key=value, got /);
            expect(err.message.length).toBeLessThan(300);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('every key=value becomes an own key holding the converted value; the last one wins', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(key, value), { minLength: 1, maxLength: 6 }), (entries) => {
        const out = parseKeyValues(
          entries.map(([k, v]) => `${k}=${v}`),
          FLAG,
        );
        const last = new Map(entries);
        expect(Object.keys(out).sort()).toEqual([...last.keys()].sort());
        for (const [k, v] of last) {
          expect(Object.getOwnPropertyDescriptor(out, k)?.value).toEqual(parseOptionValue(v));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('a pair without a key is an error naming the flag', () => {
    fc.assert(
      fc.property(
        fc.string().filter((s) => s.indexOf('=') <= 0),
        (pair) => {
          expect(() => parseKeyValues([pair], FLAG)).toThrow(ConfigError);
          expect(() => parseKeyValues([pair], FLAG)).toThrow(`field "${FLAG}"`);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('parseOptionValue', () => {
  it('numbers round-trip, booleans convert, blank and other text stay strings', () => {
    fc.assert(
      fc.property(
        fc.double({ noNaN: true }).filter((n) => !Object.is(n, -0)),
        (n) => {
          expect(parseOptionValue(String(n))).toBe(n);
        },
      ),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.string(), (s) => {
        const v = parseOptionValue(s);
        if (typeof v === 'number') {
          expect(s.trim()).not.toBe('');
          expect(v).toBe(Number(s));
        } else if (typeof v === 'boolean') expect(String(v)).toBe(s);
        else expect(v).toBe(s);
      }),
      { numRuns: 2000 },
    );
    expect(parseOptionValue('true')).toBe(true);
    expect(parseOptionValue('false')).toBe(false);
    expect(parseOptionValue(' ')).toBe(' ');
    expect(parseOptionValue('')).toBe('');
    expect(parseOptionValue('0.5')).toBe(0.5);
  });

  it('keeps `__proto__` as an own key, so the schema names it (was silently dropped)', () => {
    const out = parseKeyValues(['__proto__=1', 'beta=0.5'], FLAG);
    expect(Object.keys(out)).toEqual(['__proto__', 'beta']);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    const schema = z.object({ beta: z.number() }).strict();
    expect(() => resolveOptions(schema, { ...out }, '--agg(lcb)')).toThrow(/unknown option "__proto__"/);
  });

  it('blank is not zero (was Number(" ") = 0)', () => {
    expect(parseKeyValues(['beta= '], FLAG)).toEqual({ beta: ' ' });
  });

  it('with the schema, a text field gets the text as typed (apiKey=000123 was sent as 123)', () => {
    const schema = z.object({ apiKey: z.string(), model: z.string(), n: z.number(), flag: z.boolean() });
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{1,30}$/), fc.double({ noNaN: true }), (digits, n) => {
        const out = parseKeyValues(
          [`apiKey=${digits}`, 'model=4', `n=${n}`, 'flag=false'],
          '--judge-opt',
          schema,
        );
        expect(out).toEqual({ apiKey: digits, model: '4', n: Number(String(n)), flag: false });
      }),
      { numRuns: 300 },
    );
    // Without a schema, or for a key the schema does not know, values convert as before.
    expect(parseKeyValues(['apiKey=000123'], '--judge-opt')).toEqual({ apiKey: 123 });
    expect(parseKeyValues(['other=7'], '--judge-opt', schema)).toEqual({ other: 7 });
  });
});
