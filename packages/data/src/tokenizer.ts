/**
 * `TextTokenizer`: what every package needs of a tokenizer (ids of text, text of ids, the special ids,
 * an identity for checkpoints and the prompt format the model expects). Two implementations:
 *
 * - `Tokenizer` (this file), Quorum's own: GPT-2 BPE (r50k) followed by vocabulary compaction, for models
 *   trained from scratch. Encodings are cached (LRU by text), so re-encoding a dataset is cheap.
 * - `HfTokenizer` (hf-tokenizer.ts): a Hugging Face `tokenizer.json` with its `tokenizer_config.json`.
 *
 * `loadTokenizer(dir)` (load-tokenizer.ts) picks the one a model folder holds.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
// gpt-tokenizer decodes bytes with one module-wide TextDecoder in stream mode and never flushes it, so
// the incomplete UTF-8 bytes a decode ends with (a sampled answer cut inside a character) leak into the
// next decode anywhere in the process: decode() was stateful. We flush that decoder around each call.
import { decoder as baseDecoder } from 'gpt-tokenizer/BytePairEncodingCore';
import { decode as decodeBase } from 'gpt-tokenizer/encoding/r50k_base';
import { datasetPath } from './paths.js';
import { INSTRUCTION_FORMAT, type PromptFormat } from './template.js';
import { encodeBase, Vocab } from './vocab.js';

export interface DecodeOptions {
  /**
   * `drop` (default): leave out the special tokens (Quorum writes unk as U+FFFD; a Hugging Face tokenizer
   * drops every special token, unk included, as `skip_special_tokens`). `show`: write them (Quorum:
   * `<|pad|>`, `<|eos|>`, `<|unk|>`, `<|bos|>`; Hugging Face: the token strings such as `</s>`).
   */
  readonly specials?: 'drop' | 'show';
}

/** A tokenizer as every package uses it: Quorum's `Tokenizer` and `HfTokenizer` implement it. */
export interface TextTokenizer {
  /** Identity saved with checkpoints: two tokenizers give the same ids for every text when their ids agree. */
  readonly id: string;
  /** Size of the id space (the embedding rows a model needs): every id is in 0..vocabSize-1. */
  readonly vocabSize: number;
  /** Fills batches; the mask hides it. A Hugging Face tokenizer without a pad token uses eos (as TRL). */
  readonly padId: number;
  /** Ends an answer; generation stops at it. */
  readonly eosId: number;
  /** `undefined` when the tokenizer has no begin-of-sequence token (GPT-2 style). */
  readonly bosId: number | undefined;
  /** `undefined` when the tokenizer has no unknown token (byte-level BPE spells every text). */
  readonly unkId: number | undefined;
  /** Ids of `text` as the start of a sequence, no special ids added. A fresh array the caller may modify. */
  encode(text: string): Int32Array;
  /**
   * Ids of `text` when it continues a sequence (after other text): a tokenizer that puts a dummy prefix
   * space before the start of a text (sentencepiece's `▁`) leaves it out here. Equal to `encode` for Quorum.
   */
  encodeContinuation(text: string): Int32Array;
  /** Text of ids; see `DecodeOptions` for special ids. */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** How `encodePrompt` / `encodePromptResponse` lay out an instruction and its answer for this model. */
  readonly promptFormat: PromptFormat;
  /**
   * The files that rebuild this tokenizer (file name → UTF-8 text), to write beside a model's weights:
   * `loadTokenizer` of a folder holding them gives a tokenizer with the same `id` and the same ids for
   * every text. Quorum: `vocab.json`. Hugging Face: `tokenizer.json`, and `tokenizer_config.json` /
   * `special_tokens_map.json` when it was read with them, byte for byte as read (see `HfTokenizer.files`).
   */
  files(): Readonly<Record<string, string>>;
}

export class Tokenizer implements TextTokenizer {
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

  /** Quorum's `### Instruction:` template (see template.ts). */
  get promptFormat(): PromptFormat {
    return INSTRUCTION_FORMAT;
  }

  /** `{ 'vocab.json': … }`: the vocabulary as every Quorum checkpoint stores it (`Vocab.toJSON`). */
  files(): Readonly<Record<string, string>> {
    return { 'vocab.json': JSON.stringify(this.vocab.toJSON()) };
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

  /** GPT-2 BPE has no dummy prefix: the same ids as `encode`. */
  encodeContinuation(text: string): Int32Array {
    return this.encode(text);
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
