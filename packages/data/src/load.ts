/**
 * Loading user files: JSONL(.gz) rows → `PreferencePair[]` or `SftExample[]` through a `DatasetFormat`,
 * named or detected from the first row.
 */
import { ConfigError, DataError } from '@quorum/core';
import { builtinFormats, type DatasetFormat } from './formats.js';
import { handleRowError, type ReadJsonlOptions, type ReadStats, readJsonl } from './jsonl.js';
import { isPreferencePair, type PreferencePair, type SftExample } from './types.js';

export interface LoadOptions extends ReadJsonlOptions {
  /** A format name or instance; detected from the first row when absent. */
  readonly format?: string | DatasetFormat;
  /** Formats to pick `format` from and to detect with (default: the built-ins, in detection order). */
  readonly formats?: readonly DatasetFormat[];
  /** Preference files: `skip` (default) drops draws/ties and counts them; `keep` keeps them with `tie: true`. */
  readonly ties?: 'skip' | 'keep';
}

export interface LoadStats extends ReadStats {
  /** Name of the format used (named or detected). */
  format: string;
  /** Examples returned. */
  loaded: number;
  /** Ties dropped (`ties: 'skip'`). */
  ties: number;
}

/** Keys named in a message: at most 8, each clipped to 40 characters, then how many more. */
function listKeys(keys: readonly string[], max = 8): string {
  const shown = keys.slice(0, max).map((k) => (k.length > 40 ? `${k.slice(0, 40)}…` : k));
  return keys.length > max ? `${shown.join(', ')} and ${keys.length - max} more` : shown.join(', ');
}

function pickFormat(name: string | DatasetFormat, formats: readonly DatasetFormat[]): DatasetFormat {
  if (typeof name !== 'string') return name;
  const found = formats.find((f) => f.name === name);
  if (found === undefined) {
    throw new ConfigError(
      `unknown dataset format "${name}". Known: ${formats.map((f) => f.name).join(', ')}`,
      {
        location: { field: 'format' },
        hint: 'pick a known format, or leave it out to detect the format from the first row',
      },
    );
  }
  return found;
}

/**
 * A stack overflow while a format reads a row (a plugin's parse walking a deeply nested value) is a
 * DataError at the row, not a crash; other errors pass unchanged.
 */
function asDataError(
  error: unknown,
  loc: { file: string; line: number },
  format: string | undefined,
): unknown {
  if (!(error instanceof RangeError)) return error;
  return new DataError(`format "${format ?? '?'}" could not read this row (${error.message})`, {
    location: loc,
    hint: 'the row is nested or repeated too deeply for the format; flatten it, or lower maxDepth to refuse such rows up front',
    cause: error,
  });
}

async function load(file: string | URL, kind: DatasetFormat['kind'], options: LoadOptions) {
  const formats = options.formats ?? builtinFormats;
  const onError = options.onError ?? 'throw';
  let format = options.format === undefined ? undefined : pickFormat(options.format, formats);
  if (format !== undefined && format.kind !== kind) {
    throw new ConfigError(`format "${format.name}" reads ${format.kind} rows, not ${kind} rows`, {
      location: { field: 'format' },
      hint:
        kind === 'sft' ? 'use loadPreferencePairs for preference files' : 'use loadSftExamples for SFT files',
    });
  }
  const reader = readJsonl(file, options);
  const stats: LoadStats = Object.assign(reader.stats, { format: format?.name ?? '', loaded: 0, ties: 0 });
  const items: (PreferencePair | SftExample)[] = [];
  for await (const { value, line } of reader) {
    const loc = { file: reader.path, line };
    try {
      if (format === undefined) {
        format = formats.find((f) => f.kind === kind && f.detect(value));
        if (format === undefined) {
          const keys =
            value !== null && typeof value === 'object' ? listKeys(Object.keys(value)) : typeof value;
          throw new DataError(`row matches no ${kind} format (fields: ${keys})`, {
            location: loc,
            hint: `name one with { format } — ${formats
              .filter((f) => f.kind === kind)
              .map((f) => f.name)
              .join(', ')}`,
          });
        }
        stats.format = format.name;
      }
      const example = format.parse(value, loc);
      if (
        kind === 'preference' &&
        isPreferencePair(example) &&
        example.tie === true &&
        options.ties !== 'keep'
      ) {
        stats.ties++;
        continue;
      }
      items.push(example);
    } catch (error) {
      handleRowError(asDataError(error, loc, format?.name), stats, onError, options.maxErrors);
    }
  }
  stats.loaded = items.length;
  return { items, stats };
}

/** Reads a preference file (alpaca-farm, trl, hh-rlhf, or a plugin format) into normalised pairs. */
export async function loadPreferencePairs(
  file: string | URL,
  options: LoadOptions = {},
): Promise<{ pairs: PreferencePair[]; stats: LoadStats }> {
  const { items, stats } = await load(file, 'preference', options);
  return { pairs: items as PreferencePair[], stats };
}

/** Reads an SFT file ({instruction, input, output} or a plugin format) into examples. */
export async function loadSftExamples(
  file: string | URL,
  options: LoadOptions = {},
): Promise<{ examples: SftExample[]; stats: LoadStats }> {
  const { items, stats } = await load(file, 'sft', options);
  return { examples: items as SftExample[], stats };
}
