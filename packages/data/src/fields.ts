/**
 * Typed field access for parsing rows: a missing field or a wrong type throws a DataError naming the
 * file, line and field, and saying what the field should hold.
 */
import { basename } from 'node:path';
import { DataError, describeValue } from '@quorum/core';
import type { RowLocation } from './types.js';

/** The row as an object, or a DataError when the line holds another JSON value. */
export function asObject(row: unknown, loc: RowLocation, expected: string): Record<string, unknown> {
  if (row === null || typeof row !== 'object' || Array.isArray(row)) {
    throw new DataError(`expected a JSON object, got ${describeValue(row)}`, {
      location: { file: loc.file, line: loc.line },
      hint: `each line must be an object like ${expected}`,
    });
  }
  return row as Record<string, unknown>;
}

export function fieldError(loc: RowLocation, field: string, message: string, hint: string): DataError {
  return new DataError(message, { location: { file: loc.file, line: loc.line, field }, hint });
}

/** A required string field. */
export function stringField(row: Record<string, unknown>, field: string, loc: RowLocation): string {
  const value = row[field];
  if (typeof value === 'string') return value;
  throw fieldError(
    loc,
    field,
    value === undefined
      ? `missing field "${field}"`
      : `"${field}" must be a string, got ${describeValue(value)}`,
    `add "${field}": "<text>" to this row`,
  );
}

/** An optional string field (`''` when absent or null). */
export function optionalStringField(row: Record<string, unknown>, field: string, loc: RowLocation): string {
  const value = row[field];
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  throw fieldError(
    loc,
    field,
    `"${field}" must be a string, got ${describeValue(value)}`,
    `write "${field}" as text, or leave it out`,
  );
}

/** A required finite number field. */
export function numberField(row: Record<string, unknown>, field: string, loc: RowLocation): number {
  const value = row[field];
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  throw fieldError(
    loc,
    field,
    value === undefined
      ? `missing field "${field}"`
      : `"${field}" must be a number, got ${describeValue(value)}`,
    `add "${field}": <number> to this row`,
  );
}

/** `prefs.jsonl:7`: a stable id for a row of a user file. */
export function rowId(loc: RowLocation): string {
  return `${basename(loc.file)}:${loc.line}`;
}
