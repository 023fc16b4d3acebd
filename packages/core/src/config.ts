/**
 * Config resolution: user input (partial, loosely typed) → resolved options (complete, typed), with
 * errors that name the option path and the allowed values.
 */
import { z } from 'zod';
import { ConfigError } from './errors.js';

/** A strategy as written in a config: `"lcb"` or `["lcb", { "beta": 0.5 }]`. */
export type StrategySpec<TName extends string = string, TOptions = unknown> =
  | TName
  | readonly [TName, TOptions];

/** Splits a spec into its name and raw options. `path` names the config entry for errors. */
export function parseStrategySpec(spec: unknown, path: string): { name: string; options: unknown } {
  if (typeof spec === 'string') return { name: spec, options: {} };
  if (Array.isArray(spec) && spec.length === 2 && typeof spec[0] === 'string') {
    const options = spec[1] ?? {};
    if (typeof options !== 'object' || Array.isArray(options)) {
      throw new ConfigError(`options of "${spec[0]}" must be an object, got ${describeValue(options)}`, {
        location: { field: `${path}[1]` },
        hint: `write it as ["${spec[0]}", { "option": value }]`,
      });
    }
    return { name: spec[0], options };
  }
  throw new ConfigError(`expected a strategy name or [name, options], got ${describeValue(spec)}`, {
    location: { field: path },
    hint: 'write "name" or ["name", { ...options }]',
  });
}

/** A short description of a value for error messages. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'string') return `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

function joinPath(base: string, segments: readonly PropertyKey[]): string {
  let out = base;
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else out += out === '' ? String(s) : `.${String(s)}`;
  }
  return out;
}

/** Turns the first zod issue into a message that names the allowed values where zod knows them. */
function issueMessage(issue: z.core.$ZodIssue, input: unknown): string {
  switch (issue.code) {
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'unrecognized_keys':
      return `unknown option${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'too_small':
      return `must be ${issue.inclusive === false ? '>' : '≥'} ${String(issue.minimum)}`;
    case 'too_big':
      return `must be ${issue.inclusive === false ? '<' : '≤'} ${String(issue.maximum)}`;
    case 'invalid_type': {
      const got = valueAt(input, issue.path);
      return `expected ${issue.expected}, got ${got === undefined ? 'nothing' : describeValue(got)}`;
    }
    default:
      return issue.message;
  }
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = input;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p];
  }
  return cur;
}

/**
 * Validates `input` against `schema` (which supplies defaults) and returns the resolved value.
 * Throws a ConfigError naming `path` + the failing option and, for unknown keys, the valid ones.
 */
export function resolveOptions<S extends z.ZodType>(
  schema: S,
  input: unknown,
  path: string,
  file?: string,
): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0] as z.core.$ZodIssue;
  let hint: string | undefined;
  if (issue.code === 'unrecognized_keys' && schema instanceof z.ZodObject) {
    const keys = Object.keys(schema.shape);
    hint = keys.length === 0 ? 'this strategy takes no options' : `valid options: ${keys.join(', ')}`;
  }
  const field = joinPath(path, issue.path);
  throw new ConfigError(issueMessage(issue, input), {
    location: { ...(file === undefined ? {} : { file }), ...(field === '' ? {} : { field }) },
    ...(hint === undefined ? {} : { hint }),
  });
}
