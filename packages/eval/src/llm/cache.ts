/**
 * The `llm` judge's verdict cache: one JSON object per line, appended and fsynced as soon as a verdict
 * arrives, so a rerun never asks twice and a crash loses at most the verdict being written. A line that
 * does not parse (the torn last line of a crash, or one that a later append moved up) is skipped on load
 * and counted; the next append starts on a fresh line. Entries hold the cache key, the model, the kind
 * of prompt and the judge's reply — never the API key, headers or URL: the judge masks its key and any
 * Authorization-like value in the reply before caching it, and the cache's own `mask` (when given) runs
 * over the text fields of every entry it stores.
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { sha256Hex } from '@quorum/core';
import type { ChatMessage } from './prompts.js';

export interface CacheEntry {
  /** sha256 of the model name and the prompt messages. */
  readonly key: string;
  readonly model: string;
  readonly kind: 'pairwise' | 'single';
  /** The judge's reply text. */
  readonly content: string;
  /** Pairwise: P(first output shown) from log-probs, when the endpoint gave them. */
  readonly pFirst?: number;
  /**
   * Pairwise: the reply's text (`content`) names one output and its log-probs (`pFirst`) the other; the
   * log-probs decided. Written for readers of the file; the judge re-reads both on load.
   */
  readonly conflict?: true;
  readonly time: string;
}

/** The cache key of a request: sha256(model + "\n" + the messages as JSON). */
export function cacheKey(model: string, messages: readonly ChatMessage[]): string {
  return sha256Hex(`${model}\n${JSON.stringify(messages)}`);
}

function isEntry(v: unknown): v is CacheEntry {
  if (v === null || typeof v !== 'object') return false;
  const e = v as Record<string, unknown>;
  return (
    typeof e.key === 'string' &&
    typeof e.model === 'string' &&
    (e.kind === 'pairwise' || e.kind === 'single') &&
    typeof e.content === 'string' &&
    (e.pFirst === undefined || typeof e.pFirst === 'number') &&
    (e.conflict === undefined || e.conflict === true)
  );
}

export interface VerdictCacheOptions {
  /** Applied to the text fields (`content`, `model`) of each entry before it is kept and written. */
  readonly mask?: (text: string) => string;
}

export class VerdictCache {
  private readonly entries = new Map<string, CacheEntry>();
  /** Lines skipped on load because they did not parse (e.g. torn by a crash). */
  readonly skippedLines: number;

  private readonly mask: ((text: string) => string) | undefined;

  /** Opens (and reads) the cache at `file`; `undefined` keeps verdicts in memory only. */
  constructor(
    readonly file: string | undefined,
    options: VerdictCacheOptions = {},
  ) {
    this.mask = options.mask;
    let skipped = 0;
    if (file !== undefined && existsSync(file)) {
      const lines = readFileSync(file, 'utf8').split('\n');
      for (const line of lines) {
        if (line.trim() === '') continue;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          skipped++;
          continue;
        }
        if (isEntry(value)) this.entries.set(value.key, value);
        else skipped++;
      }
    }
    this.skippedLines = skipped;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): CacheEntry | undefined {
    return this.entries.get(key);
  }

  /** Records an entry (masked) in memory and appends it to the file (fsynced) before returning it. */
  put(input: CacheEntry): CacheEntry {
    const mask = this.mask;
    const entry =
      mask === undefined ? input : { ...input, model: mask(input.model), content: mask(input.content) };
    this.entries.set(entry.key, entry);
    if (this.file === undefined) return entry;
    mkdirSync(path.dirname(this.file), { recursive: true });
    const fd = openSync(this.file, 'a+');
    try {
      const size = fstatSync(fd).size;
      let prefix = '';
      if (size > 0) {
        const last = Buffer.alloc(1);
        readSync(fd, last, 0, 1, size - 1);
        if (last[0] !== 0x0a) prefix = '\n'; // a torn line stays alone on its line
      }
      writeSync(fd, `${prefix}${JSON.stringify(entry)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return entry;
  }
}
