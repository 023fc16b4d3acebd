import { beforeAll, describe, expect, it } from 'vitest';
import { alpacaEval } from './alpaca-eval.js';
import { buildCorpus, type Corpus, packDocuments, pretrainCorpus, splitCorpus } from './corpus.js';
import { projectTokenizer } from './tokenizer.js';

let corpus: Corpus;
beforeAll(async () => {
  corpus = await pretrainCorpus();
});

describe('pretrainCorpus (shipped data)', () => {
  it('holds the train instructions, their answers and the HH-RLHF dialogues, counted', () => {
    const { counts } = corpus;
    expect(counts.documents).toBe(corpus.documents.length);
    expect(counts.bySource['alpaca-eval'].documents).toBeGreaterThan(30_000);
    expect(counts.bySource['hh-rlhf'].documents).toBeGreaterThan(4_000);
    expect(counts.characters).toBe(corpus.documents.reduce((n, d) => n + d.text.length, 0));
    expect(counts.characters).toBeGreaterThan(40_000_000);
    expect(counts.duplicates).toBeGreaterThan(0);
    const kinds = new Set(corpus.documents.map((d) => d.kind));
    expect([...kinds].sort()).toEqual(['answer', 'dialogue', 'instruction']);
  });

  it('keeps the eval instructions and every answer to them out by default', async () => {
    const ae = await alpacaEval();
    const evalIds = new Set(ae.split('eval').map((i) => i.id));
    const texts = new Set(corpus.documents.map((d) => d.text));
    for (const inst of ae.split('eval')) expect(texts.has(inst.instruction.trim())).toBe(false);
    for (const d of corpus.documents) {
      if (d.source !== 'alpaca-eval') continue;
      expect(evalIds.has(Number(d.id.split('/')[1]))).toBe(false);
    }
    const all = await pretrainCorpus({ sources: ['alpaca-eval'], split: 'all' });
    expect(all.counts.documents).toBeGreaterThan(corpus.counts.bySource['alpaca-eval'].documents);
    expect(all.documents.some((d) => d.text === ae.split('eval')[0]?.instruction.trim())).toBe(true);
    expect(all.counts.bySource['hh-rlhf'].documents).toBe(0);
  });

  it('has no two documents with the same text', () => {
    expect(new Set(corpus.documents.map((d) => d.text)).size).toBe(corpus.documents.length);
  });

  it('counts tokens under a tokenizer (~3.3 characters per token with the project vocabulary)', async () => {
    const tok = projectTokenizer();
    const sample = corpus.documents.slice(0, 300);
    const chars = sample.reduce((n, d) => n + d.text.length, 0);
    const tokens = sample.reduce((n, d) => n + tok.encode(d.text).length, 0);
    expect(chars / tokens).toBeGreaterThan(2);
    expect(chars / tokens).toBeLessThan(6);
  });
});

describe('buildCorpus', () => {
  it('keeps the first of identical texts (after trimming) and drops blank ones', () => {
    const c = buildCorpus(
      [
        { id: 'a', source: 'alpaca-eval', kind: 'answer', text: 'Hello.' },
        { id: 'b', source: 'hh-rlhf', kind: 'dialogue', text: '  Hello.\n' },
        { id: 'c', source: 'hh-rlhf', kind: 'dialogue', text: ' \n' },
        { id: 'd', source: 'hh-rlhf', kind: 'dialogue', text: 'Bye.' },
      ],
      { sources: ['alpaca-eval', 'hh-rlhf'], split: 'train' },
    );
    expect(c.documents.map((d) => d.id)).toEqual(['a', 'd']);
    expect(c.counts).toMatchObject({ documents: 2, characters: 10, duplicates: 1, empty: 1 });
    expect(c.counts.bySource['hh-rlhf']).toEqual({ documents: 1, characters: 4 });
  });
});

describe('splitCorpus', () => {
  it('holds out whole documents, seeded, at least one', () => {
    const docs = Array.from({ length: 50 }, (_, i) => i);
    const a = splitCorpus(docs, { seed: 3 });
    expect(a.eval).toHaveLength(1);
    expect([...a.train, ...a.eval].sort((x, y) => x - y)).toEqual(docs);
    expect(splitCorpus(docs, { seed: 3 })).toEqual(a);
    expect(splitCorpus(docs, { evalShare: 0.2 }).eval).toHaveLength(10);
    expect(() => splitCorpus([1])).toThrow('cannot be split');
  });
});

describe('packDocuments', () => {
  it('joins [a b], [c d e] with eos and cuts blocks of 4 overlapping by one', () => {
    const [a, b, c, d, e, eos] = [10, 11, 12, 13, 14, 1];
    const blocks = packDocuments(
      [
        [a, b],
        [c, d, e],
      ] as number[][],
      { blockLength: 4, eosId: eos as number },
    );
    // stream: eos a b eos c d e eos — 8 tokens, 7 targets, each trained once
    expect(blocks.map((x) => x.ids)).toEqual([
      [eos, a, b, eos],
      [eos, c, d, e],
      [e, eos],
    ]);
    expect(blocks.map((x) => x.lossMask)).toEqual([
      [0, 1, 1, 1],
      [0, 1, 1, 1],
      [0, 1],
    ]);
    const targets = blocks.reduce((n, x) => n + x.lossMask.reduce((s, m) => s + m, 0), 0);
    expect(targets).toBe(7);
  });

  it('refuses a block of fewer than 2 tokens', () => {
    expect(() => packDocuments([[1]], { blockLength: 1, eosId: 0 })).toThrow('at least 2');
  });
});
