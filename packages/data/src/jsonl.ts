/**
 * Streaming JSONL / JSONL.gz reading. Yields `{ value, line }` per non-blank line. Lines are split from
 * the byte stream here (LF, CRLF or a lone CR, as node:readline did), so a line longer than
 * `maxLineBytes` is refused as soon as the limit is passed, without holding the rest of it in memory;
 * a value nested deeper than `maxDepth` is refused before it is parsed. Bad lines throw a DataError
 * naming file and line, or with `onError: 'skip'` are counted in `stats` and the first few errors kept.
 */
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';
import { ConfigError, DataError, writeFileAtomic } from '@quorum/core';

/** Default longest line (8 MiB): rows of a preference or SFT file are a few KB; a runaway line is a broken file. */
export const DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024;
/** Default deepest nesting of arrays and objects in one row (rows of every built-in format nest 3 levels). */
export const DEFAULT_MAX_JSON_DEPTH = 1000;

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
  /**
   * Longest line in bytes (after gunzip, without the line break); default DEFAULT_MAX_LINE_BYTES (8 MiB).
   * A longer line is a DataError at file:line (skipped in `skip` mode), read no further than the limit.
   */
  readonly maxLineBytes?: number;
  /** Deepest nesting of `[` / `{` in one row; default DEFAULT_MAX_JSON_DEPTH (1000). Deeper is a DataError. */
  readonly maxDepth?: number;
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

/** How deep `[` and `{` nest in JSON text (brackets inside strings do not count); stops past `limit`. */
export function jsonDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/**
 * Parses one line of JSON; a syntax error, or nesting deeper than `maxDepth` (which would overflow the
 * stack of any code that walks the value), becomes a DataError at `file:line`.
 */
export function parseJsonLine(
  text: string,
  file: string,
  line: number,
  maxDepth = DEFAULT_MAX_JSON_DEPTH,
): unknown {
  if (jsonDepth(text, maxDepth) > maxDepth) {
    throw new DataError(`row nests arrays or objects more than ${maxDepth} levels deep`, {
      location: { file, line },
      hint: 'rows of a preference or SFT file are flat objects of strings; check how this line was written',
    });
  }
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

/** A line split from the byte stream: its text, or `tooLong` as soon as it passes the limit (the rest is dropped unread). */
type RawLine = { readonly text: string; readonly tooLong?: undefined } | { readonly tooLong: true };

const LF = 0x0a;
const CR = 0x0d;

/**
 * Splits a byte stream into lines at LF, CRLF or a lone CR (node:readline's rule) and decodes each as
 * UTF-8 (LF and CR never occur inside a multi-byte sequence, so this equals decoding the whole file; a
 * broken sequence becomes U+FFFD). At most `maxBytes` of a line are kept: past that it yields `tooLong`
 * once and skips to the next line break.
 */
export async function* splitLines(chunks: AsyncIterable<Buffer>, maxBytes: number): AsyncGenerator<RawLine> {
  let parts: Buffer[] = [];
  let size = 0;
  let over = false;
  let afterCr = false;
  for await (const chunk of chunks) {
    let at = afterCr && chunk[0] === LF ? 1 : 0;
    afterCr = false;
    let lf = chunk.indexOf(LF, at);
    let cr = chunk.indexOf(CR, at);
    while (at < chunk.length) {
      const end = lf === -1 ? cr : cr === -1 ? lf : Math.min(lf, cr);
      const piece = chunk.subarray(at, end === -1 ? chunk.length : end);
      if (!over) {
        if (size + piece.length > maxBytes) {
          over = true;
          parts = [];
          size = 0;
          yield { tooLong: true };
        } else if (piece.length > 0) {
          parts.push(piece);
          size += piece.length;
        }
      }
      if (end === -1) break;
      if (!over) yield { text: Buffer.concat(parts, size).toString('utf8') };
      parts = [];
      size = 0;
      over = false;
      at = end + 1;
      if (chunk[end] === CR) {
        if (at === chunk.length) afterCr = true;
        else if (chunk[at] === LF) at++;
      }
      if (lf !== -1 && lf < at) lf = chunk.indexOf(LF, at);
      if (cr !== -1 && cr < at) cr = chunk.indexOf(CR, at);
    }
  }
  if (!over && size > 0) yield { text: Buffer.concat(parts, size).toString('utf8') };
}

/** One pass over a JSONL file; iterate it with `for await`, then read `stats`. */
export class JsonlReader implements AsyncIterable<{ value: unknown; line: number }> {
  readonly path: string;
  readonly stats: ReadStats;
  private readonly onError: OnError;
  private readonly maxErrors: number;
  private readonly maxLineBytes: number;
  private readonly maxDepth: number;

  constructor(file: string | URL, options: ReadJsonlOptions = {}) {
    this.path = toPath(file);
    this.stats = newStats(this.path);
    this.onError = options.onError ?? 'throw';
    this.maxErrors = options.maxErrors ?? 10;
    this.maxLineBytes = positiveLimit(options.maxLineBytes, DEFAULT_MAX_LINE_BYTES, 'maxLineBytes');
    this.maxDepth = positiveLimit(options.maxDepth, DEFAULT_MAX_JSON_DEPTH, 'maxDepth');
  }

  async *[Symbol.asyncIterator](): AsyncIterator<{ value: unknown; line: number }> {
    if (!existsSync(this.path)) {
      throw new DataError(`file not found`, {
        location: { file: this.path },
        hint: 'check the path; shipped datasets open without a path through datasets.alpacaEval() / hhRlhf()',
      });
    }
    const raw = createReadStream(this.path);
    const stream: Readable = this.path.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
    const unreadable = (cause: unknown): DataError => {
      if (cause instanceof DataError) return cause;
      const message = cause instanceof Error ? cause.message : String(cause);
      return new DataError(`cannot read ${basename(this.path)} (${message})`, {
        location: { file: this.path },
        hint: 'the file is truncated or not gzip; re-copy it, or drop the .gz suffix if it is plain text',
        cause,
      });
    };
    // pipe() does not pass the file stream's errors on to gunzip: listen to it as well.
    const rawError = new Promise<never>((_, reject) => {
      raw.on('error', (cause) => reject(unreadable(cause)));
    });
    rawError.catch(() => undefined);
    const it = splitLines(stream, this.maxLineBytes)[Symbol.asyncIterator]();
    let line = 0;
    try {
      while (true) {
        let next: IteratorResult<RawLine>;
        try {
          next = await Promise.race([it.next(), rawError]);
        } catch (cause) {
          throw unreadable(cause);
        }
        if (next.done === true) break;
        line++;
        if (next.value.tooLong === true) {
          this.stats.rows++;
          handleRowError(this.lineTooLong(line), this.stats, this.onError, this.maxErrors);
          continue;
        }
        // A UTF-8 byte order mark (Windows editors write one; `cat` of two such files puts one mid-file,
        // re-encoding can double it) is not JSON whitespace: drop those a line starts with.
        const text = next.value.text.replace(LEADING_BOMS, '');
        if (text.trim() === '') continue;
        this.stats.rows++;
        let value: unknown;
        try {
          value = parseJsonLine(text, this.path, line, this.maxDepth);
        } catch (error) {
          handleRowError(error, this.stats, this.onError, this.maxErrors);
          continue;
        }
        yield { value, line };
      }
    } finally {
      stream.destroy();
      raw.destroy();
      await it.return?.(undefined).catch(() => undefined);
    }
  }

  private lineTooLong(line: number): DataError {
    return new DataError(`line is longer than ${formatBytes(this.maxLineBytes)} (read no further)`, {
      location: { file: this.path, line },
      hint: `one row of a JSONL file should be a few KB; if this one is meant to be that long, raise the limit with the maxLineBytes option (--max-line-bytes on the command line), e.g. ${2 * this.maxLineBytes}`,
    });
  }
}

/** `8 MiB (8388608 bytes)`. */
function formatBytes(n: number): string {
  const mib = n / (1024 * 1024);
  return Number.isInteger(mib) ? `${mib} MiB (${n} bytes)` : `${n} bytes`;
}

function positiveLimit(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new ConfigError(`${field} must be a positive integer, got ${value}`, {
      location: { field },
      hint: `leave it out for the default (${fallback})`,
    });
  }
  return value;
}

/** Streams `{ value, line }` from a .jsonl or .jsonl.gz file. */
export function readJsonl(file: string | URL, options: ReadJsonlOptions = {}): JsonlReader {
  return new JsonlReader(file, options);
}

/**
 * Rewrites a JSONL file keeping only the rows `keep` accepts (lines that are not JSON, such as a row
 * half-written when a run was killed, are dropped too), atomically: a crash leaves the old file or the
 * new one. Used on resume to cut metrics.jsonl back to the checkpoint's step. A missing file is left
 * missing. Returns how many rows were kept and dropped.
 */
export async function filterJsonlFile(
  file: string,
  keep: (row: unknown) => boolean,
): Promise<{ kept: number; dropped: number }> {
  if (!existsSync(file)) return { kept: 0, dropped: 0 };
  const lines = readFileSync(file, 'utf8').split(/\r?\n/);
  const out: string[] = [];
  let dropped = 0;
  for (const line of lines) {
    if (line.trim() === '') continue;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      dropped++;
      continue;
    }
    if (keep(row)) out.push(`${line}\n`);
    else dropped++;
  }
  if (dropped > 0) await writeFileAtomic(file, out.join(''));
  return { kept: out.length, dropped };
}
