/**
 * Checks a report against schemas/report.schema.json with zod's JSON Schema support: `z.fromJSONSchema`
 * turns the committed schema (the single source of truth, also published as docs/schemas/) into a zod
 * schema once, and its issues are written as "path: problem" lines. Numbers must be finite (zod's numbers
 * refuse NaN and Infinity, which are not JSON). Beyond the schema: no architecture lists the same
 * (n, rule) twice.
 */
import { readFileSync } from 'node:fs';
import { DataError } from '@quorum/core';
import { z } from 'zod';

/** The committed schema file (shipped in the package as `schemas/report.schema.json`). */
export const REPORT_SCHEMA_URL: URL = new URL('../../schemas/report.schema.json', import.meta.url);

type Schema = Record<string, unknown>;

let cached: { json: Schema; zod: z.ZodType } | undefined;

function load(): { json: Schema; zod: z.ZodType } {
  if (cached === undefined) {
    const json = JSON.parse(readFileSync(REPORT_SCHEMA_URL, 'utf8')) as Schema;
    cached = { json, zod: z.fromJSONSchema(json as Parameters<typeof z.fromJSONSchema>[0]) };
  }
  return cached;
}

/** The report schema (JSON Schema 2020-12), parsed once. */
export function reportSchema(): Schema {
  return load().json;
}

/** `$.architectures.lora.bestOfN[3]` for the path `['architectures', 'lora', 'bestOfN', 3]`. */
function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`))
    .join('')
    .replace(/^/, '$');
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const k of path)
    v = v === null || typeof v !== 'object' ? undefined : (v as Record<PropertyKey, unknown>)[k];
  return v;
}

const describe = (v: unknown): string =>
  v === null
    ? 'null'
    : Array.isArray(v)
      ? 'an array'
      : typeof v === 'number'
        ? String(v)
        : typeof v === 'string'
          ? JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)
          : typeof v;

/** One zod issue as "path: problem" lines, in the words the report's readers know. */
function issueLines(issue: z.core.$ZodIssue, value: unknown): string[] {
  const at = formatPath(issue.path);
  const got = valueAt(value, issue.path);
  switch (issue.code) {
    case 'invalid_type': {
      if (got === undefined && issue.path.length > 0) {
        const parent = formatPath(issue.path.slice(0, -1));
        return [`${parent}: "${String(issue.path.at(-1))}" is required`];
      }
      const expected = issue.expected === 'int' ? 'integer' : issue.expected;
      return [`${at}: expected ${expected}, got ${describe(got)}`];
    }
    case 'invalid_value':
      return issue.values.length === 1
        ? [`${at}: must be ${JSON.stringify(issue.values[0])}, got ${JSON.stringify(got)}`]
        : [`${at}: must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`];
    case 'too_big':
      return [
        `${at}: must be ${issue.inclusive === false ? '<' : '≤'} ${String(issue.maximum)}, got ${describe(got)}`,
      ];
    case 'too_small':
      return issue.origin === 'string'
        ? [`${at}: must have at least ${String(issue.minimum)} character(s)`]
        : [
            `${at}: must be ${issue.inclusive === false ? '>' : '≥'} ${String(issue.minimum)}, got ${describe(got)}`,
          ];
    case 'unrecognized_keys':
      return issue.keys.map((k) => `${at}: unknown field "${k}"`);
    default:
      return [`${at}: ${issue.message}`];
  }
}

/** Every problem of `value` as a report, one "path: problem" line each; empty when valid. */
export function validateReport(value: unknown): string[] {
  const result = load().zod.safeParse(value);
  if (!result.success) return result.error.issues.flatMap((issue) => issueLines(issue, value));
  const errors: string[] = [];
  const archs = (value as { architectures: Record<string, { bestOfN: { n: number; rule: string }[] }> })
    .architectures;
  for (const [name, arch] of Object.entries(archs)) {
    const seen = new Set<string>();
    arch.bestOfN.forEach((row, i) => {
      const key = `${row.n}/${row.rule}`;
      if (seen.has(key))
        errors.push(
          `$.architectures.${name}.bestOfN[${i}]: n = ${row.n} with rule "${row.rule}" is listed twice`,
        );
      seen.add(key);
    });
  }
  return errors;
}

/** Throws a DataError listing the first problems when `value` is not a valid report. */
export function assertValidReport(value: unknown, file = 'report.json'): void {
  const errors = validateReport(value);
  if (errors.length === 0) return;
  const shown = errors.slice(0, 8).join('\n  ');
  throw new DataError(
    `the report does not follow report.schema.json (${errors.length} problem${errors.length === 1 ? '' : 's'}):\n  ${shown}`,
    {
      location: { file },
      hint: 'fix the fields named above (win rates are percentages 0–100; accuracy and ece are 0–1)',
    },
  );
}
