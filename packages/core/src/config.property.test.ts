/**
 * Property tests of config resolution (issue 9, bad input): thousands of malformed option objects —
 * wrong types, unknown and prototype-polluting keys, NaN/±Infinity, huge numbers, very long strings,
 * deep nesting — give either a valid resolved value or a ConfigError naming the option path, never
 * another exception, and never touch Object.prototype. The schemas mirror real ones (core knows no
 * strategy package, so they are copied here): no options, `lcb`, LoRA, the reward-model judge, a
 * training config, and quorum.config.json (path '', a file).
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { resolveOptions } from './config.js';
import { ConfigError, RegistryError } from './errors.js';
import { StrategyRegistry } from './registry.js';

const STD = ['population', 'sample'] as const;
const MODULES = ['q', 'k', 'v', 'o', 'fc', 'proj'] as const;

interface Case {
  readonly schema: z.ZodType;
  /** Plausible values for its keys (right type or nearly), mixed with garbage below. */
  readonly values: fc.Arbitrary<unknown>;
}

const schemas: Record<string, Case> = {
  none: { schema: z.object({}).strict(), values: fc.constant(1) },
  lcb: {
    schema: z.object({ beta: z.number().min(0).default(1), std: z.enum(STD).default('population') }).strict(),
    values: fc.oneof(fc.double(), fc.constantFrom(...STD), fc.constantFrom('Sample', 'population ')),
  },
  lora: {
    schema: z
      .object({
        rank: z.number().int().min(1).default(8),
        alpha: z.number().positive().default(16),
        dropout: z.number().min(0).max(0.9).default(0),
        targets: z
          .array(z.enum(MODULES))
          .min(1)
          .default([...MODULES]),
        layers: z
          .union([z.literal('all'), z.object({ top: z.number().int().min(1) }).strict()])
          .default('all'),
      })
      .strict(),
    values: fc.oneof(
      fc.integer({ min: -2, max: 64 }),
      fc.double(),
      fc.array(fc.oneof(fc.constantFrom(...MODULES), fc.string({ maxLength: 3 })), { maxLength: 8 }),
      fc.constantFrom('all', 'top:2'),
      fc.record({ top: fc.oneof(fc.integer({ min: -1, max: 9 }), fc.double()) }),
      fc.record({ top: fc.integer({ min: 1, max: 4 }), extra: fc.anything({ maxDepth: 1 }) }),
    ),
  },
  judge: {
    schema: z
      .object({
        model: z.string().min(1),
        rule: z.union([z.string(), z.tuple([z.string(), z.record(z.string(), z.unknown())])]).default('mean'),
        batchSize: z.number().int().positive().default(16),
      })
      .strict(),
    values: fc.oneof(
      fc.string({ maxLength: 8 }),
      fc.integer({ min: -1, max: 64 }),
      fc.tuple(fc.string({ maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue())),
      fc.tuple(fc.string({ maxLength: 4 }), fc.anything({ maxDepth: 2 })),
    ),
  },
  training: {
    schema: z
      .object({
        steps: z.number().int().min(1).default(100),
        seed: z.number().int().default(0),
        lr: z.number().positive().default(1e-5),
        beta2: z.number().min(0).max(1).default(0.999),
        klControl: z.enum(['fixed', 'adaptive']).default('fixed'),
        whitenRewards: z.boolean().default(false),
        missingEosPenalty: z.number().min(0).optional(),
        topP: z.number().gt(0).max(1).default(0.9),
      })
      .strict(),
    values: fc.oneof(
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constantFrom('fixed', 'adaptive', 'true', '1e-4', ''),
    ),
  },
};

/** quorum.config.json: resolved with path '' and the file, as apps/cli does. */
const projectSchema = z
  .object({ plugins: z.array(z.string()).default([]), backend: z.string().optional() })
  .strict();
const PROJECT_FILE = 'quorum.config.json';

/** Keys that break naive object handling. */
const DANGEROUS_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  '__defineGetter__',
  'then',
  '',
];

/** Values JSON can carry plus what a programmatic caller can pass; numbers at and beyond every edge. */
const awkwardNumber = fc.constantFrom(
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  -0,
  1e308,
  -1e308,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  Number.MAX_SAFE_INTEGER + 2,
  -(2 ** 53),
  2 ** 31,
  0.5,
  -1,
);
const longString = fc.constantFrom(1_000, 100_000).map((n) => 'x'.repeat(n));
const deep = fc.integer({ min: 10, max: 3000 }).map((depth) => {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? { a: v } : [v];
  return v;
});
const polluting = fc.constantFrom(
  JSON.parse('{"__proto__": {"polluted": true}}') as unknown,
  JSON.parse('{"constructor": {"prototype": {"polluted": true}}}') as unknown,
  JSON.parse('{"__proto__": null}') as unknown,
);
const garbage: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({
    maxDepth: 3,
    withBigInt: true,
    withBoxedValues: true,
    withDate: true,
    withMap: true,
    withSet: true,
    withNullPrototype: true,
    withObjectString: true,
    withTypedArray: true,
    withSparseArray: true,
    withUnicodeString: true,
    key: fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom(...DANGEROUS_KEYS)),
  }),
  awkwardNumber,
  longString,
  deep,
  polluting,
  fc.constantFrom(undefined, null, Symbol('s'), () => 1, Object.create(null) as unknown),
);

/** An object built like JSON.parse builds it: `__proto__` becomes an own key, not the prototype. */
function optionObject(keys: readonly string[], values: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  const key = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...(keys.length === 0 ? ['x'] : keys)) },
    { weight: 2, arbitrary: fc.constantFrom(...DANGEROUS_KEYS) },
    { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
    { weight: 1, arbitrary: longString },
  );
  const value = fc.oneof({ weight: 3, arbitrary: values }, { weight: 2, arbitrary: garbage });
  return fc.array(fc.tuple(key, value), { maxLength: 6 }).map((entries) => Object.fromEntries(entries));
}

/** Any input for a schema: mostly option objects, sometimes garbage in place of the object. */
function inputFor(c: Case): fc.Arbitrary<unknown> {
  const keys = c.schema instanceof z.ZodObject ? Object.keys(c.schema.shape) : [];
  return fc.oneof({ weight: 4, arbitrary: optionObject(keys, c.values) }, { weight: 1, arbitrary: garbage });
}

/** No NaN, no ±Infinity anywhere in a resolved value. */
function expectFinite(value: unknown, depth = 0): void {
  if (typeof value === 'number') expect(Number.isFinite(value)).toBe(true);
  else if (value !== null && typeof value === 'object' && depth < 8) {
    for (const v of Object.values(value)) expectFinite(v, depth + 1);
  }
}

const MAX_MESSAGE = 1000;

/** Checks a thrown value: a ConfigError naming the option path (under `path`) and, when given, the file. */
function expectConfigError(err: unknown, path: string, file?: string): void {
  if (!(err instanceof ConfigError)) throw err;
  expect(err.code).toBe('E_CONFIG');
  expect(err.message.length).toBeLessThan(MAX_MESSAGE);
  const field = err.location?.field;
  if (path !== '') {
    expect(field?.startsWith(path)).toBe(true);
    expect(err.message).toContain(`field "${field}"`);
  }
  if (file !== undefined) {
    expect(err.location?.file).toBe(file);
    expect(err.message.startsWith(file)).toBe(true);
  }
}

/** resolveOptions returns a value the schema accepts, or throws a ConfigError naming the path. */
function resolvesOrConfigError(schema: z.ZodType, input: unknown, path: string, file?: string): void {
  let resolved: unknown;
  try {
    resolved = resolveOptions(schema, input, path, file);
  } catch (err) {
    expectConfigError(err, path, file);
    return;
  }
  // These schemas have no transforms, so a resolved value is also a valid input.
  expect(schema.safeParse(resolved).success).toBe(true);
  expect(Object.getPrototypeOf(resolved)).toBe(Object.prototype);
  expectFinite(resolved);
}

const prototypeNames = Object.getOwnPropertyNames(Object.prototype).sort();
afterAll(() => {
  // Nothing above may have written to Object.prototype (`__proto__` keys are data, not a prototype).
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeNames);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
});

describe('resolveOptions under malformed input', () => {
  for (const [name, c] of Object.entries(schemas)) {
    it(`${name}: a resolved value or a ConfigError naming the option path`, () => {
      fc.assert(
        fc.property(inputFor(c), (input) => resolvesOrConfigError(c.schema, input, `point(${name})`)),
        { numRuns: 1000 },
      );
    });
  }

  it('well-formed options always resolve (the properties above are not vacuous)', () => {
    const lcb = schemas.lcb as Case;
    fc.assert(
      fc.property(
        fc.record(
          { beta: fc.double({ min: 0, max: 1e6, noNaN: true }), std: fc.constantFrom(...STD) },
          { requiredKeys: [] },
        ),
        (input) => {
          expect(resolveOptions(lcb.schema, input, 'lcb')).toEqual({ beta: 1, std: 'population', ...input });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('quorum.config.json (path "", a file): a resolved value or a ConfigError naming the file', () => {
    const values = fc.oneof(fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }), fc.string());
    fc.assert(
      fc.property(fc.oneof(optionObject(['plugins', 'backend'], values), garbage), (input) =>
        resolvesOrConfigError(projectSchema, input, '', PROJECT_FILE),
      ),
      { numRuns: 1000 },
    );
  });
});

describe('StrategyRegistry.resolve under malformed specs', () => {
  const registry = new StrategyRegistry({ id: 'point' });
  for (const [name, c] of Object.entries(schemas)) {
    registry.register({
      name,
      description: name,
      source: '@quorum/core',
      options: c.schema,
      create: () => name,
    });
  }
  const names = Object.keys(schemas);
  const specName = fc.oneof(
    fc.constantFrom(...names),
    fc.constantFrom(...DANGEROUS_KEYS),
    fc.string({ maxLength: 8 }),
    longString,
  );
  const spec = fc.oneof(
    specName,
    fc.constantFrom(...names).chain((n) => fc.tuple(fc.constant(n), inputFor(schemas[n] as Case))),
    fc.tuple(specName, garbage),
    fc.array(garbage, { maxLength: 4 }),
    garbage,
  );

  it('a resolved spec, a ConfigError naming the path, or a RegistryError for an unknown name', () => {
    fc.assert(
      fc.property(spec, (s) => {
        try {
          const { name, options } = registry.resolve(s, 'point');
          expect(names).toContain(name);
          expect((schemas[name] as Case).schema.safeParse(options).success).toBe(true);
        } catch (err) {
          if (err instanceof RegistryError) {
            expect(err.message).toMatch(/^unknown point /);
            expect(err.message.length).toBeLessThan(MAX_MESSAGE);
            return;
          }
          expectConfigError(err, 'point');
        }
      }),
      { numRuns: 2000 },
    );
  });
});
