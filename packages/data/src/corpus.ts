/**
 * The shipped text as one pretraining corpus, and the GPT-2 / nanoGPT packing of documents into blocks.
 *
 * Documents: every AlpacaEval instruction and every answer of every generator to it, and every HH-RLHF
 * transcript (`chosen` and `rejected`, each a whole `\n\nHuman: … \n\nAssistant: …` dialogue). Exact
 * duplicates (after trimming) are kept once. By default only AlpacaEval's `train` instructions and their
 * answers are read, so nothing built from the corpus has seen an `eval` instruction or an answer to one;
 * `split: 'all'` reads both splits and says so in the counts.
 *
 * Packing (`packDocuments`): the documents' ids are joined into one stream, each document preceded and
 * followed by eos (so its first token is predicted after the separator, and its end is learned), and the stream is cut into blocks of
 * `blockLength` tokens with a stride of `blockLength − 1`: the last token of a block is the first of the
 * next, so every token of the stream but the very first is a target exactly once. The tail block is kept
 * (shorter). Cross-document attention inside a block is allowed, as in GPT-2 and nanoGPT.
 */
import { ConfigError, Rng } from '@quorum/core';
import { alpacaEval } from './alpaca-eval.js';
import { asObject, stringField } from './fields.js';
import { readJsonl } from './jsonl.js';
import { datasetPath } from './paths.js';
import type { TextTokenizer } from './tokenizer.js';

/** A shipped text source. */
export type CorpusSource = 'alpaca-eval' | 'hh-rlhf';
export const CORPUS_SOURCES: readonly CorpusSource[] = ['alpaca-eval', 'hh-rlhf'];

/** Which AlpacaEval instructions: `train` (default: the eval split stays unseen) or `all`. */
export type CorpusSplit = 'train' | 'all';

export interface CorpusDocument {
  /** Stable id: `alpaca-eval/<id>/instruction`, `alpaca-eval/<id>/<generator>`, `hh-rlhf:<line>/chosen`. */
  readonly id: string;
  readonly source: CorpusSource;
  readonly kind: 'instruction' | 'answer' | 'dialogue';
  readonly text: string;
}

export interface CorpusCounts {
  /** Distinct documents kept. */
  readonly documents: number;
  readonly characters: number;
  /** Texts left out because an identical one (after trimming) came earlier, or because they were blank. */
  readonly duplicates: number;
  readonly empty: number;
  readonly bySource: Readonly<
    Record<CorpusSource, { readonly documents: number; readonly characters: number }>
  >;
}

export interface Corpus {
  readonly sources: readonly CorpusSource[];
  readonly split: CorpusSplit;
  readonly documents: readonly CorpusDocument[];
  readonly counts: CorpusCounts;
}

export interface PretrainCorpusOptions {
  /** Default both. */
  readonly sources?: readonly CorpusSource[];
  /** Default `train`. */
  readonly split?: CorpusSplit;
}

/** Deduplicates texts (trimmed, exact match; the first one wins), drops blank ones and counts them. */
export function buildCorpus(
  texts: Iterable<CorpusDocument>,
  meta: { sources: readonly CorpusSource[]; split: CorpusSplit },
): Corpus {
  const seen = new Set<string>();
  const documents: CorpusDocument[] = [];
  const bySource = {
    'alpaca-eval': { documents: 0, characters: 0 },
    'hh-rlhf': { documents: 0, characters: 0 },
  };
  let duplicates = 0;
  let empty = 0;
  let characters = 0;
  for (const doc of texts) {
    const text = doc.text.trim();
    if (text === '') {
      empty++;
      continue;
    }
    if (seen.has(text)) {
      duplicates++;
      continue;
    }
    seen.add(text);
    documents.push(text === doc.text ? doc : { ...doc, text });
    characters += text.length;
    bySource[doc.source].documents++;
    bySource[doc.source].characters += text.length;
  }
  return {
    sources: meta.sources,
    split: meta.split,
    documents,
    counts: { documents: documents.length, characters, duplicates, empty, bySource },
  };
}

async function alpacaDocuments(split: CorpusSplit): Promise<CorpusDocument[]> {
  const ae = await alpacaEval();
  const out: CorpusDocument[] = [];
  const instructions = split === 'all' ? ae.instructions : ae.split('train');
  for (const inst of instructions) {
    const base = `alpaca-eval/${inst.id}`;
    out.push({
      id: `${base}/instruction`,
      source: 'alpaca-eval',
      kind: 'instruction',
      text: inst.instruction,
    });
    for (const generator of ae.generators) {
      const text = ae.output(inst.id, generator);
      if (text !== undefined)
        out.push({ id: `${base}/${generator}`, source: 'alpaca-eval', kind: 'answer', text });
    }
  }
  return out;
}

async function hhDocuments(): Promise<CorpusDocument[]> {
  const file = datasetPath('hh_rlhf/harmless-base-test.jsonl.gz');
  const out: CorpusDocument[] = [];
  for await (const { value, line } of readJsonl(file)) {
    const loc = { file, line };
    const r = asObject(value, loc, '{"chosen": "\\n\\nHuman: ...", "rejected": "..."}');
    for (const side of ['chosen', 'rejected'] as const)
      out.push({
        id: `hh-rlhf:${line}/${side}`,
        source: 'hh-rlhf',
        kind: 'dialogue',
        text: stringField(r, side, loc),
      });
  }
  return out;
}

/**
 * Every shipped text of `sources` (default both), deduplicated, with counts. AlpacaEval's eval split is
 * left out unless `split: 'all'`. Note that the HH-RLHF transcripts are also `eval-rm --data hh-rlhf`'s
 * test pairs: a model pretrained on them has read both answers of every pair (not the human label).
 */
export async function pretrainCorpus(options: PretrainCorpusOptions = {}): Promise<Corpus> {
  const sources = options.sources ?? CORPUS_SOURCES;
  const split = options.split ?? 'train';
  if (sources.length === 0 || sources.some((s) => !CORPUS_SOURCES.includes(s))) {
    throw new ConfigError(
      `corpus sources must be some of ${CORPUS_SOURCES.join(', ')}, got [${sources.join(', ')}]`,
      {
        location: { field: 'sources' },
        hint: 'pass alpaca-eval, hh-rlhf or both',
      },
    );
  }
  if (split !== 'train' && split !== 'all') {
    throw new ConfigError(`corpus split must be train or all, got ${String(split)}`, {
      location: { field: 'split' },
      hint: 'train keeps the AlpacaEval eval instructions and their answers out',
    });
  }
  const docs: CorpusDocument[] = [];
  for (const source of CORPUS_SOURCES) {
    if (!sources.includes(source)) continue;
    docs.push(...(source === 'alpaca-eval' ? await alpacaDocuments(split) : await hhDocuments()));
  }
  return buildCorpus(docs, { sources: CORPUS_SOURCES.filter((s) => sources.includes(s)), split });
}

/**
 * A seeded held-out slice of documents (whole documents, so no held-out text is trained on): `evalShare`
 * of them (default 1%), at least one and at most `maxEval` (default 500).
 */
export function splitCorpus<T>(
  documents: readonly T[],
  options: { seed?: number; evalShare?: number; maxEval?: number } = {},
): { train: T[]; eval: T[] } {
  const n = documents.length;
  if (n < 2) {
    throw new ConfigError(`a corpus of ${n} document(s) cannot be split into train and held-out`, {
      location: { field: 'corpus' },
      hint: 'give at least two documents',
    });
  }
  const share = options.evalShare ?? 0.01;
  const nEval = Math.min(n - 1, options.maxEval ?? 500, Math.max(1, Math.round(n * share)));
  const order = new Rng(options.seed ?? 0).fork('corpus-holdout').permutation(n);
  const held = new Set(order.slice(0, nEval));
  return {
    train: documents.filter((_, i) => !held.has(i)),
    eval: documents.filter((_, i) => held.has(i)),
  };
}

/** Tokens of the documents under `tokenizer` (plain text, no template, no eos). */
export function corpusTokenCount(documents: readonly { text: string }[], tokenizer: TextTokenizer): number {
  let n = 0;
  for (const d of documents) n += tokenizer.encode(d.text).length;
  return n;
}

/** One packed block: `lossMask[t] = 1` for every position after the first (the first is context only). */
export interface PackedBlock {
  readonly ids: readonly number[];
  readonly lossMask: readonly number[];
}

/**
 * Joins the documents' ids into one stream, `eosId` before each document and after the last, and cuts it into blocks of
 * `blockLength` tokens overlapping by one (stride `blockLength − 1`), so every token after the first is a
 * target once; see the file header. Blocks of one length share their lossMask array.
 */
export function packDocuments(
  documents: readonly ArrayLike<number>[],
  options: { blockLength: number; eosId: number },
): PackedBlock[] {
  const { blockLength, eosId } = options;
  if (!Number.isInteger(blockLength) || blockLength < 2) {
    throw new ConfigError(`blockLength must be an integer of at least 2, got ${blockLength}`, {
      location: { field: 'maxLength' },
      hint: 'pass the model context or less, e.g. 128',
    });
  }
  let total = 1;
  for (const d of documents) total += d.length + 1;
  const stream = new Int32Array(total); // [eos, ...d1, eos, ...d2, eos, …, ...dn, eos]
  let at = 0;
  for (const d of documents) {
    stream[at++] = eosId;
    stream.set(d, at);
    at += d.length;
  }
  stream[at] = eosId;
  const masks = new Map<number, number[]>();
  const maskOf = (len: number): number[] => {
    let m = masks.get(len);
    if (m === undefined) masks.set(len, (m = Array.from({ length: len }, (_, i) => (i === 0 ? 0 : 1))));
    return m;
  };
  const blocks: PackedBlock[] = [];
  for (let start = 0; start + 1 < total; start += blockLength - 1) {
    const ids = Array.from(stream.subarray(start, Math.min(total, start + blockLength)));
    blocks.push({ ids, lossMask: maskOf(ids.length) });
  }
  return blocks;
}
