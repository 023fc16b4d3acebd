/**
 * Config resolution: user input (partial, loosely typed) → resolved options (complete, typed), with
 * errors that name the option path and the allowed values.
 */
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { printable } from './printable.js';

/**
 * A strategy as written in a config: `"lcb"` or `["lcb", { "beta": 0.5 }]`. `StrategySpecOf<D>` is the
 * spec of one definition (its name and the input type of its option schema).
 */
export type StrategySpec<TName extends string = string, TOptions extends object = object> =
  | TName
  | readonly [TName, TOptions];

/** Splits a spec into its name and raw options. `path` names the config entry for errors. */
export function parseStrategySpec(spec: unknown, path: string): { name: string; options: unknown } {
  if (typeof spec === 'string') return { name: spec, options: {} };
  if (Array.isArray(spec) && spec.length === 2 && typeof spec[0] === 'string') {
    const options = spec[1] ?? {};
    if (typeof options !== 'object' || Array.isArray(options)) {
      const name = describeValue(spec[0]); // quoted, and clipped: a name can be any string
      throw new ConfigError(`options of ${name} must be an object, got ${describeValue(options)}`, {
        location: { field: `${path}[1]` },
        hint: `write it as [${name}, { "option": value }]`,
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
  if (typeof value === 'string') return printable(value, 40);
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'function') return 'a function';
  return `${typeof value} ${clip(String(value))}`;
}

/** The first 40 characters of `text` (user input can be megabytes; a message stays readable). */
function clip(text: string, max = 40): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** An allowed value in a message: strings quoted and clipped, bigints as `5n` (JSON.stringify throws on them). */
function literal(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return `"${clip(value)}"`;
  return clip(String(value));
}

/** Keys named in a message: at most `max`, each clipped, then how many more. */
function listKeys(keys: readonly string[], max = 5): string {
  const shown = keys.slice(0, max).map((k) => `"${clip(k)}"`);
  return keys.length > max ? `${shown.join(', ')} and ${keys.length - max} more` : shown.join(', ');
}

function joinPath(base: string, segments: readonly PropertyKey[]): string {
  let out = base;
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else out += out === '' ? clip(String(s)) : `.${clip(String(s))}`;
  }
  return out;
}

/** Turns the first zod issue into a message that names the allowed values where zod knows them. */
function issueMessage(issue: z.core.$ZodIssue, input: unknown): string {
  switch (issue.code) {
    case 'invalid_value':
      return `must be one of ${issue.values.map(literal).join(', ')}`;
    case 'unrecognized_keys':
      return `unknown option${issue.keys.length > 1 ? 's' : ''} ${listKeys(issue.keys)}`;
    case 'too_small':
      return `must ${bound(issue.origin)} ${issue.inclusive === false ? '>' : '≥'} ${String(issue.minimum)}${unit(issue.origin)}`;
    case 'too_big':
      return `must ${bound(issue.origin)} ${issue.inclusive === false ? '<' : '≤'} ${String(issue.maximum)}${unit(issue.origin)}`;
    case 'invalid_type': {
      const got = valueAt(input, issue.path);
      // zod rejects NaN and ±Infinity as "not a number"; say what is wrong with them.
      if (issue.expected === 'number' && typeof got === 'number')
        return `expected a finite number, got ${got}`;
      return `expected ${issue.expected}, got ${got === undefined ? 'nothing' : describeValue(got)}`;
    }
    default:
      return issue.message;
  }
}

/** "must be ≥ 1" for a number, "must have ≥ 1 item" for an array, "… character" for a string. */
function bound(origin: string): string {
  return origin === 'array' || origin === 'set' || origin === 'string' ? 'have' : 'be';
}

function unit(origin: string): string {
  if (origin === 'array' || origin === 'set') return ' item(s)';
  if (origin === 'string') return ' character(s)';
  return '';
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
