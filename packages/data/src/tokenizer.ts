/**
 * `Tokenizer`: GPT-2 BPE (r50k) followed by vocabulary compaction. encode(text) → compact ids,
 * decode(ids) → text. Encodings are cached (LRU by text), so re-encoding a dataset is cheap.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
// gpt-tokenizer decodes bytes with one module-wide TextDecoder in stream mode and never flushes it, so
// the incomplete UTF-8 bytes a decode ends with (a sampled answer cut inside a character) leak into the
// next decode anywhere in the process: decode() was stateful. We flush that decoder around each call.
import { decoder as baseDecoder } from 'gpt-tokenizer/BytePairEncodingCore';
import { decode as decodeBase } from 'gpt-tokenizer/encoding/r50k_base';
import { datasetPath } from './paths.js';
import { encodeBase, Vocab } from './vocab.js';

export interface DecodeOptions {
  /** `drop` (default): leave out pad/eos/bos, write unk as U+FFFD. `show`: write `<|pad|>`, `<|eos|>`, `<|unk|>`, `<|bos|>`. */
  readonly specials?: 'drop' | 'show';
}

export class Tokenizer {
  readonly vocab: Vocab;
  private readonly cache = new Map<string, Int32Array>();
  private readonly cacheSize: number;

  /** `cacheSize`: texts whose encodings are kept (default 100,000; 0 turns the cache off). */
  constructor(vocab: Vocab, options: { cacheSize?: number } = {}) {
    this.vocab = vocab;
    this.cacheSize = options.cacheSize ?? 100_000;
  }

  get vocabSize(): number {
    return this.vocab.size;
  }
  get padId(): number {
    return this.vocab.padId;
  }
  get eosId(): number {
    return this.vocab.eosId;
  }
  get unkId(): number {
    return this.vocab.unkId;
  }
  get bosId(): number {
    return this.vocab.bosId;
  }
  /** The vocabulary id saved with checkpoints. */
  get id(): string {
    return this.vocab.id;
  }

  /** Compact ids of `text` (no specials added). The result is a fresh array the caller may modify. */
  encode(text: string): Int32Array {
    const hit = this.cache.get(text);
    if (hit !== undefined) {
      this.cache.delete(text);
      this.cache.set(text, hit);
      return hit.slice();
    }
    const ids = this.vocab.fromBase(encodeBase(text));
    if (this.cacheSize > 0) {
      if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(text, ids);
    }
    return ids.slice();
  }

  /** Text of compact ids; see `DecodeOptions` for specials. */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const show = options.specials === 'show';
    let out = '';
    let run: number[] = [];
    const flush = (): void => {
      if (run.length > 0) {
        baseDecoder.decode(); // drop bytes someone else's decode left pending
        out += decodeBase(run);
        out += baseDecoder.decode(); // our own trailing incomplete bytes: U+FFFD, as a one-shot decode
      }
      run = [];
    };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const base = this.vocab.base(id);
      if (base >= 0) {
        run.push(base);
        continue;
      }
      flush();
      if (id === this.unkId) out += show ? '<|unk|>' : '\uFFFD';
      else if (show)
        out +=
          id === this.padId
            ? '<|pad|>'
            : id === this.eosId
              ? '<|eos|>'
              : id === this.bosId
                ? '<|bos|>'
                : `<|${id}|>`;
    }
    flush();
    return out;
  }
}

let project: Tokenizer | undefined;

/** The project vocabulary shipped in `datasets/vocab/project-vocab.json.gz`: the default for every model. */
export function projectVocab(): Vocab {
  return projectTokenizer().vocab;
}

/** A tokenizer over the project vocabulary (one shared instance per process). */
export function projectTokenizer(): Tokenizer {
  if (project === undefined) {
    const file = datasetPath('vocab/project-vocab.json.gz');
    project = new Tokenizer(
      Vocab.fromJSON(JSON.parse(gunzipSync(readFileSync(file)).toString('utf8')), file),
    );
  }
  return project;
}
