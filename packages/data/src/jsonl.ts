/**
 * Streaming JSONL / JSONL.gz reading (node:readline over zlib gunzip). Yields `{ value, line }` per
 * non-blank line. Bad lines throw a DataError naming file and line, or with `onError: 'skip'` are
 * counted in `stats` and the first few errors kept.
 */
import { createReadStream, existsSync } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';
import { DataError } from '@quorum/core';

export type OnError = 'throw' | 'skip';

const LEADING_BOMS = /^\uFEFF+/;

/** Counts from one pass over a file. `skipped` rows were malformed and dropped (skip mode only). */
export interface ReadStats {
  readonly file: string;
  /** Non-blank lines read. */
  rows: number;
  /** Rows dropped because they were malformed. */
  skipped: number;
  /** The first `maxErrors` errors behind `skipped`, for the report. */
  readonly errors: DataError[];
}

export interface ReadJsonlOptions {
  /** `throw` (default) stops at the first bad line; `skip` drops it and counts it in `stats`. */
  readonly onError?: OnError;
  /** How many skipped errors to keep in `stats.errors` (default 10). */
  readonly maxErrors?: number;
}

export function newStats(file: string): ReadStats {
  return { file, rows: 0, skipped: 0, errors: [] };
}

/** Records `error` in `stats` (skip mode) or throws it. */
export function handleRowError(error: unknown, stats: ReadStats, onError: OnError, maxErrors = 10): void {
  if (!(error instanceof DataError) || onError === 'throw') throw error;
  stats.skipped++;
  if (stats.errors.length < maxErrors) stats.errors.push(error);
}

/** Parses one line of JSON; a syntax error becomes a DataError at `file:line`. */
export function parseJsonLine(text: string, file: string, line: number): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new DataError(`line is not valid JSON (${detail})`, {
      location: { file, line },
      hint: 'each line of a .jsonl file must be one complete JSON object, e.g. {"prompt": "...", "chosen": "..."}',
      cause,
    });
  }
}

/** A file path or a `file:` URL as a path. */
export function toPath(file: string | URL): string {
  return typeof file === 'string' ? file : fileURLToPath(file);
}

/** One pass over a JSONL file; iterate it with `for await`, then read `stats`. */
export class JsonlReader implements AsyncIterable<{ value: unknown; line: number }> {
  readonly path: string;
  readonly stats: ReadStats;
  private readonly onError: OnError;
  private readonly maxErrors: number;

  constructor(file: string | URL, options: ReadJsonlOptions = {}) {
    this.path = toPath(file);
    this.stats = newStats(this.path);
    this.onError = options.onError ?? 'throw';
    this.maxErrors = options.maxErrors ?? 10;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<{ value: unknown; line: number }> {
    if (!existsSync(this.path)) {
      throw new DataError(`file not found`, {
        location: { file: this.path },
        hint: 'check the path; shipped datasets open without a path through datasets.alpacaEval() / hhRlhf()',
      });
    }
    const raw = createReadStream(this.path);
    const stream = this.path.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
    // Decode here, not in readline: readline's own decoder is never flushed, so an incomplete UTF-8
    // sequence at the end of the file vanished instead of becoming U+FFFD like every other bad byte.
    stream.setEncoding('utf8');
    const streamError = new Promise<never>((_, reject) => {
      const fail = (cause: Error): void =>
        reject(
          new DataError(`cannot read ${basename(this.path)} (${cause.message})`, {
            location: { file: this.path },
            hint: 'the file is truncated or not gzip; re-copy it, or drop the .gz suffix if it is plain text',
            cause,
          }),
        );
      raw.on('error', fail);
      stream.on('error', fail);
    });
    streamError.catch(() => undefined);
    const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
    const it = lines[Symbol.asyncIterator]();
    let line = 0;
    try {
      while (true) {
        const next = await Promise.race([it.next(), streamError]);
        if (next.done === true) break;
        line++;
        // A UTF-8 byte order mark (Windows editors write one; `cat` of two such files puts one mid-file,
        // re-encoding can double it) is not JSON whitespace: drop those a line starts with.
        const text = next.value.replace(LEADING_BOMS, '');
        if (text.trim() === '') continue;
        this.stats.rows++;
        let value: unknown;
        try {
          value = parseJsonLine(text, this.path, line);
        } catch (error) {
          handleRowError(error, this.stats, this.onError, this.maxErrors);
          continue;
        }
        yield { value, line };
      }
    } finally {
      lines.close();
      raw.destroy();
    }
  }
}

/** Streams `{ value, line }` from a .jsonl or .jsonl.gz file. */
export function readJsonl(file: string | URL, options: ReadJsonlOptions = {}): JsonlReader {
  return new JsonlReader(file, options);
}
