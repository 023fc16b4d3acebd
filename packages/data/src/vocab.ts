/**
 * Vocabulary compaction over GPT-2 BPE (r50k_base): keep the K most frequent token ids of a corpus
 * plus the special ids; every other token maps to `unk`. Tiny models then need a K-row embedding
 * table instead of 50,257. The map is saved with every checkpoint and has a stable id (a hash).
 */
import { createHash } from 'node:crypto';
import { DataError, printable } from '@quorum/core';
import bpeRanks from 'gpt-tokenizer/bpeRanks/r50k_base';
import { encode } from 'gpt-tokenizer/encoding/r50k_base';

/** Size of the r50k_base id space (50,256 merges + `<|endoftext|>`). */
export const BASE_VOCAB_SIZE = 50257;
/** Special tokens in compact-id order: pad = 0, eos = 1, unk = 2, bos = 3. */
export const SPECIALS = ['pad', 'eos', 'unk', 'bos'] as const;

/**
 * What happens to a token that was not kept: `unk` maps it to the unknown id; `split` (the project
 * default) spells it with kept tokens (greedy longest match on its bytes; the 256 byte tokens are
 * always kept), so no text is lost: decode(encode(text)) === text for every text.
 */
export type RarePolicy = 'unk' | 'split';

/** The JSON form of a `Vocab` (saved as `vocab.json` in checkpoints). */
export interface VocabJson {
  readonly format: 'quorum-vocab';
  readonly version: 1;
  readonly base: 'r50k_base';
  readonly specials: readonly string[];
  readonly rare: RarePolicy;
  /** r50k ids of compact ids `specials.length`, `specials.length + 1`, … in order. */
  readonly tokens: readonly number[];
  readonly id: string;
}

const BASE_OPTIONS = { disallowedSpecial: new Set<string>() };

/** GPT-2 BPE ids of `text`; special-token strings in user text are encoded as plain text. */
export function encodeBase(text: string): number[] {
  return encode(text, BASE_OPTIONS);
}

/** r50k ids 0..255 are the 256 single-byte tokens: keeping them lets any text be spelled without unk. */
const BYTE_TOKENS: readonly number[] = Array.from({ length: 256 }, (_, i) => i);

const utf8 = new TextEncoder();

/** The bytes of an r50k token as a latin1 string (one char per byte), a cheap Map key. */
function byteKey(baseId: number): string {
  const entry = bpeRanks[baseId];
  const bytes = typeof entry === 'string' ? utf8.encode(entry) : (entry ?? []);
  let out = '';
  for (const b of bytes) out += String.fromCharCode(b);
  return out;
}

function vocabId(tokens: readonly number[], rare: RarePolicy): string {
  const hash = createHash('sha256')
    .update(JSON.stringify({ base: 'r50k_base', specials: SPECIALS, rare, tokens }))
    .digest('hex');
  return `r50k-${tokens.length + SPECIALS.length}-${hash.slice(0, 12)}`;
}

export class Vocab {
  readonly padId = 0;
  readonly eosId = 1;
  readonly unkId = 2;
  readonly bosId = 3;
  /** Compact ids in use: specials + kept tokens. */
  readonly size: number;
  /** Stable id, `r50k-<size>-<sha256 prefix>`: two vocabularies agree exactly when their ids do. */
  readonly id: string;
  readonly rare: RarePolicy;
  private readonly tokens: readonly number[];
  private readonly toCompact: Int32Array;
  private readonly expansions = new Map<number, readonly number[]>();
  /** Kept tokens by their bytes (as a latin1 string), for spelling rare tokens. */
  private pieces: { map: Map<string, number>; longest: number } | undefined;

  constructor(tokens: readonly number[], rare: RarePolicy = 'split') {
    this.tokens = tokens;
    this.rare = rare;
    this.size = SPECIALS.length + tokens.length;
    this.id = vocabId(tokens, rare);
    this.toCompact = new Int32Array(BASE_VOCAB_SIZE).fill(this.unkId);
    tokens.forEach((t, i) => {
      this.toCompact[t] = SPECIALS.length + i;
    });
  }

  /**
   * Keeps the `size - 4` most frequent ids of `counts` (ties: lower id first). With `rare: 'split'`
   * the 256 single-byte tokens are always kept, so every text is spelled exactly and nothing is `unk`.
   */
  static fromCounts(counts: ArrayLike<number>, size: number, rare: RarePolicy = 'split'): Vocab {
    const room = size - SPECIALS.length;
    const ids = Array.from({ length: counts.length }, (_, i) => i).filter((i) => counts[i]! > 0);
    ids.sort((a, b) => counts[b]! - counts[a]! || a - b);
    const must = rare === 'split' ? BYTE_TOKENS : [];
    if (!Number.isInteger(size) || room < must.length + 1) {
      throw new RangeError(
        `vocab size must be an integer ≥ ${SPECIALS.length + must.length + 1}, got ${size}`,
      );
    }
    const kept = new Set(must);
    for (const id of ids) {
      if (kept.size >= room) break;
      kept.add(id);
    }
    const order = [...kept].sort((a, b) => (counts[b] ?? 0) - (counts[a] ?? 0) || a - b);
    return new Vocab(order, rare);
  }

  /** Compact ids for one r50k id: itself when kept, else `[unk]` or (rare = split) its spelling in kept tokens. */
  expand(baseId: number): readonly number[] {
    const id = this.toCompact[baseId] ?? this.unkId;
    if (id !== this.unkId || this.rare === 'unk') return [id];
    let out = this.expansions.get(baseId);
    if (out === undefined) {
      out = this.spell(baseId);
      this.expansions.set(baseId, out);
    }
    return out;
  }

  /** Greedy longest-match spelling of a token's bytes in kept tokens (every single byte is kept). */
  private spell(baseId: number): number[] {
    if (this.pieces === undefined) {
      const map = new Map<string, number>();
      let longest = 1;
      this.tokens.forEach((t, i) => {
        const key = byteKey(t);
        map.set(key, SPECIALS.length + i);
        longest = Math.max(longest, key.length);
      });
      this.pieces = { map, longest };
    }
    const { map, longest } = this.pieces;
    const text = byteKey(baseId);
    const out: number[] = [];
    let i = 0;
    while (i < text.length) {
      let len = Math.min(longest, text.length - i);
      while (len > 0 && !map.has(text.slice(i, i + len))) len--;
      if (len === 0) {
        out.push(this.unkId); // only when the single-byte tokens were not kept (a hand-made vocabulary)
        i++;
        continue;
      }
      out.push(map.get(text.slice(i, i + len))!);
      i += len;
    }
    return out;
  }

  /** Compact ids of a sequence of r50k ids, each replaced by `expand` (spellings are cached per id). */
  fromBase(baseIds: ArrayLike<number>): Int32Array {
    const out: number[] = [];
    for (let i = 0; i < baseIds.length; i++) {
      const id = this.toCompact[baseIds[i]!] ?? this.unkId;
      if (id !== this.unkId || this.rare === 'unk') out.push(id);
      else for (const piece of this.expand(baseIds[i]!)) out.push(piece);
    }
    return Int32Array.from(out);
  }

  /** Compact id of an r50k id (`unkId` when not kept). */
  compact(baseId: number): number {
    return this.toCompact[baseId] ?? this.unkId;
  }

  /** r50k id of a compact id, or -1 for a special id. */
  base(compactId: number): number {
    return compactId >= SPECIALS.length && compactId < this.size
      ? this.tokens[compactId - SPECIALS.length]!
      : -1;
  }

  /**
   * How well this vocabulary fits a corpus, given its r50k token counts: `coverage` = share of r50k
   * tokens kept whole; `lengthRatio` = compact ids per r50k token (rare tokens spelled in pieces);
   * `unkRate` = share of compact ids that are unk.
   */
  measure(counts: ArrayLike<number>): { coverage: number; lengthRatio: number; unkRate: number } {
    let total = 0;
    let kept = 0;
    let ids = 0;
    let unk = 0;
    for (let i = 0; i < counts.length; i++) {
      const c = counts[i]!;
      if (c === 0) continue;
      total += c;
      const e = this.expand(i);
      if (e.length === 1 && e[0] !== this.unkId) kept += c;
      ids += c * e.length;
      unk += c * e.filter((x) => x === this.unkId).length;
    }
    return total === 0
      ? { coverage: 1, lengthRatio: 1, unkRate: 0 }
      : { coverage: kept / total, lengthRatio: ids / total, unkRate: unk / ids };
  }

  toJSON(): VocabJson {
    return {
      format: 'quorum-vocab',
      version: 1,
      base: 'r50k_base',
      specials: [...SPECIALS],
      rare: this.rare,
      tokens: [...this.tokens],
      id: this.id,
    };
  }

  /** Reads `toJSON()` output; `file` names the source in errors. Checks the stored id against the content. */
  static fromJSON(json: unknown, file = 'vocab.json'): Vocab {
    const fail = (field: string, message: string): DataError =>
      new DataError(message, {
        location: { file, field },
        hint: 'the vocabulary file is damaged or not a Quorum vocabulary; rebuild it with scripts/build-vocab.mjs',
      });
    if (json === null || typeof json !== 'object' || Array.isArray(json))
      throw fail('format', `expected a vocabulary object, got ${printable(json, 40)}`);
    const j = json as Record<string, unknown>;
    if (j.format !== 'quorum-vocab' || j.version !== 1)
      throw fail(
        'format',
        `unsupported vocabulary format ${printable(j.format)} version ${printable(j.version)}`,
      );
    if (j.base !== 'r50k_base') throw fail('base', `unsupported base tokenizer ${printable(j.base)}`);
    if (JSON.stringify(j.specials) !== JSON.stringify(SPECIALS))
      throw fail('specials', `specials must be ${JSON.stringify(SPECIALS)}`);
    if (j.rare !== 'unk' && j.rare !== 'split')
      throw fail('rare', `rare must be "unk" or "split", got ${printable(j.rare)}`);
    if (!Array.isArray(j.tokens)) throw fail('tokens', 'tokens must be a list of r50k ids');
    if (j.tokens.length > BASE_VOCAB_SIZE)
      throw fail('tokens', `tokens lists ${j.tokens.length} ids; r50k_base has ${BASE_VOCAB_SIZE}`);
    const seen = new Set<number>();
    j.tokens.forEach((t, i) => {
      if (
        !Number.isInteger(t) ||
        (t as number) < 0 ||
        (t as number) >= BASE_VOCAB_SIZE ||
        seen.has(t as number)
      ) {
        throw fail(
          `tokens[${i}]`,
          `tokens[${i}] must be a distinct r50k id in 0..${BASE_VOCAB_SIZE - 1}, got ${printable(t)}`,
        );
      }
      seen.add(t as number);
    });
    const vocab = new Vocab(j.tokens as number[], j.rare);
    if (j.id !== undefined && j.id !== vocab.id)
      throw fail('id', `stored id ${printable(j.id)} does not match the content (${vocab.id})`);
    return vocab;
  }
}

/** r50k token frequencies of `texts`. */
export function countTokens(texts: Iterable<string>): Uint32Array {
  const counts = new Uint32Array(BASE_VOCAB_SIZE);
  for (const text of texts) for (const id of encodeBase(text)) counts[id]!++;
  return counts;
}

/** A vocabulary of `size` ids (4 specials + the most frequent tokens of `texts`). */
export function buildVocab(texts: Iterable<string>, size = 4096, rare: RarePolicy = 'split'): Vocab {
  return Vocab.fromCounts(countTokens(texts), size, rare);
}
