/**
 * Checks a report against schemas/report.schema.json. No JSON-Schema library is available here, so this
 * is a small hand-written checker for the keywords that schema uses (type, const, enum, required,
 * properties, additionalProperties, items, minimum, maximum, minLength, local $ref); it refuses a schema
 * with any other keyword, so the schema and the checks cannot drift apart silently. Numbers must be
 * finite (NaN and Infinity are not JSON). Beyond the schema: no architecture lists the same (n, rule) twice.
 */
import { readFileSync } from 'node:fs';
import { DataError } from '@quorum/core';

/** The committed schema file (shipped in the package as `schemas/report.schema.json`). */
export const REPORT_SCHEMA_URL: URL = new URL('../../schemas/report.schema.json', import.meta.url);

type Schema = Record<string, unknown>;

const KNOWN = new Set([
  '$schema',
  '$id',
  '$defs',
  '$ref',
  'title',
  'description',
  'type',
  'const',
  'enum',
  'required',
  'properties',
  'additionalProperties',
  'items',
  'minimum',
  'maximum',
  'minLength',
]);

let cached: Schema | undefined;

/** The report schema, parsed once. */
export function reportSchema(): Schema {
  cached ??= JSON.parse(readFileSync(REPORT_SCHEMA_URL, 'utf8')) as Schema;
  return cached;
}

function typeOk(type: string, v: unknown): boolean {
  switch (type) {
    case 'object':
      return v !== null && typeof v === 'object' && !Array.isArray(v);
    case 'array':
      return Array.isArray(v);
    case 'string':
      return typeof v === 'string';
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'null':
      return v === null;
    default:
      throw new Error(`report schema: unsupported type "${type}"`);
  }
}

const describe = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'number' ? String(v) : typeof v;

/** Checks `value` against `schema`; pushes "path: problem" lines onto `errors`. */
export function checkSchema(
  value: unknown,
  schema: Schema,
  root: Schema,
  path: string,
  errors: string[],
): void {
  for (const key of Object.keys(schema)) {
    if (!KNOWN.has(key))
      throw new Error(`report schema: keyword "${key}" at ${path} is not supported by the checker`);
  }
  if (typeof schema.$ref === 'string') {
    const ref = schema.$ref;
    if (!ref.startsWith('#/$defs/'))
      throw new Error(`report schema: only local #/$defs refs are supported, got ${ref}`);
    const target = (root.$defs as Record<string, Schema> | undefined)?.[ref.slice('#/$defs/'.length)];
    if (target === undefined) throw new Error(`report schema: ${ref} is not defined`);
    checkSchema(value, target, root, path, errors);
  }
  if ('const' in schema && value !== schema.const) {
    errors.push(`${path}: must be ${JSON.stringify(schema.const)}, got ${JSON.stringify(value)}`);
    return;
  }
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) {
    errors.push(`${path}: must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}`);
    return;
  }
  if (typeof schema.type === 'string' && !typeOk(schema.type, value)) {
    errors.push(`${path}: expected ${schema.type}, got ${describe(value)}`);
    return;
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum)
      errors.push(`${path}: must be ≥ ${schema.minimum}, got ${value}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum)
      errors.push(`${path}: must be ≤ ${schema.maximum}, got ${value}`);
  }
  if (typeof value === 'string' && typeof schema.minLength === 'number' && value.length < schema.minLength) {
    errors.push(`${path}: must have at least ${schema.minLength} character(s)`);
  }
  if (Array.isArray(value) && schema.items !== undefined) {
    for (const [i, item] of value.entries())
      checkSchema(item, schema.items as Schema, root, `${path}[${i}]`, errors);
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const req of (schema.required ?? []) as string[]) {
      if (obj[req] === undefined) errors.push(`${path}: "${req}" is required`);
    }
    for (const [k, v] of Object.entries(obj)) {
      if (v === undefined) continue;
      const sub = props[k];
      if (sub !== undefined) checkSchema(v, sub, root, `${path}.${k}`, errors);
      else if (schema.additionalProperties === false) errors.push(`${path}: unknown field "${k}"`);
      else if (typeof schema.additionalProperties === 'object' && schema.additionalProperties !== null)
        checkSchema(v, schema.additionalProperties as Schema, root, `${path}.${k}`, errors);
    }
  }
}

/** Every problem of `value` as a report, one "path: problem" line each; empty when valid. */
export function validateReport(value: unknown): string[] {
  const schema = reportSchema();
  const errors: string[] = [];
  checkSchema(value, schema, schema, '$', errors);
  if (errors.length > 0) return errors;
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
