import { DataError } from '@quorum/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { projectTokenizer, Tokenizer } from './tokenizer.js';
import { BASE_VOCAB_SIZE, buildVocab, countTokens, encodeBase, Vocab } from './vocab.js';

const corpus = ['The cat sat on the mat.', 'The dog sat on the log.', 'A cat and a dog.'];

describe('Vocab (compaction)', () => {
  it('keeps the most frequent ids plus specials; rare ids map to unk with rare = unk', () => {
    const vocab = buildVocab(corpus, 10, 'unk');
    expect(vocab.size).toBe(10);
    const counts = countTokens(corpus);
    const the = encodeBase('The')[0]!;
    const sat = encodeBase(' sat')[0]!;
    expect(counts[sat]).toBe(2);
    expect(vocab.compact(the)).toBeGreaterThanOrEqual(4);
    expect(vocab.base(vocab.compact(the))).toBe(the);
    const rare = encodeBase(' house');
    expect(rare).toHaveLength(1);
    expect(vocab.compact(rare[0]!)).toBe(vocab.unkId);
    const tok = new Tokenizer(vocab);
    expect([...tok.encode(' house')]).toEqual([vocab.unkId]);
    expect(tok.decode(tok.encode('The house'))).toBe('The\uFFFD');
  });

  it('round-trips through JSON with a stable content id, and rejects damaged JSON naming the field', () => {
    const vocab = buildVocab(corpus, 400);
    expect(vocab.size).toBe(4 + 256 + countTokens(corpus).filter((c, id) => c > 0 && id >= 256).length); // the corpus has fewer ids than asked
    const json = JSON.parse(JSON.stringify(vocab.toJSON()));
    const back = Vocab.fromJSON(json);
    expect(back.id).toBe(vocab.id);
    expect(back.id).toMatch(new RegExp(`^r50k-${vocab.size}-[0-9a-f]{12}$`));
    expect(buildVocab(corpus, 400, 'unk').id).not.toBe(vocab.id);
    const tokens = [...json.tokens];
    tokens[5] = tokens[4];
    expect(() => Vocab.fromJSON({ ...json, tokens }, 'ckpt/vocab.json')).toThrow(
      /ckpt\/vocab\.json field "tokens\[5\]"/,
    );
    expect(() => Vocab.fromJSON({ ...json, id: 'r50k-300-000000000000' })).toThrow(DataError);
    expect(() => Vocab.fromJSON({ ...json, tokens: [BASE_VOCAB_SIZE] })).toThrow('tokens[0]');
  });

  it('rare = split spells unkept tokens with kept ones, so any text survives', () => {
    const tok = new Tokenizer(buildVocab(corpus, 300));
    const text = 'Zebras — naïve 日本 🙂 <|endoftext|>';
    const ids = tok.encode(text);
    expect(ids.includes(tok.unkId)).toBe(false);
    expect(ids.length).toBeGreaterThan(encodeBase(text).length);
    expect(tok.decode(ids)).toBe(text);
  });
});

describe('projectTokenizer', () => {
  const tok = projectTokenizer();

  it('is the shipped 4,096-id vocabulary with pad 0, eos 1, unk 2, bos 3', () => {
    expect(tok.vocabSize).toBe(4096);
    expect([tok.padId, tok.eosId, tok.unkId, tok.bosId]).toEqual([0, 1, 2, 3]);
    expect(tok.id).toMatch(/^r50k-4096-/);
    expect(projectTokenizer()).toBe(tok);
  });

  it('round-trips text exactly and keeps common English whole', () => {
    const text = 'Here are some tips to help you write a good essay:\n\n1. Start with a clear plan.';
    const ids = tok.encode(text);
    expect(ids.length).toBe(encodeBase(text).length);
    const rare = 'Hugh Jackman on Broadway';
    expect(tok.encode(rare).length).toBeGreaterThan(encodeBase(rare).length);
    expect(tok.decode(tok.encode(rare))).toBe(rare);
    expect(tok.decode(ids)).toBe(text);
    expect(ids.every((id) => id >= 4 && id < tok.vocabSize)).toBe(true);
  });

  it('decode drops or shows special ids', () => {
    const ids = [tok.bosId, ...tok.encode('Hi'), tok.eosId, tok.padId];
    expect(tok.decode(ids)).toBe('Hi');
    expect(tok.decode(ids, { specials: 'show' })).toBe('<|bos|>Hi<|eos|><|pad|>');
  });

  it('decode is stateless: ids cut inside a character do not leak into the next decode', () => {
    const t = projectTokenizer();
    const smile = Array.from(t.encode('🙂 hi'));
    const cut = smile.slice(0, 1); // the first byte(s) of the emoji only
    const alone = t.decode(cut);
    expect(alone).toBe('\uFFFD');
    expect(t.decode(t.encode('a'))).toBe('a');
    expect(t.decode(cut)).toBe(alone);
    expect(t.decode(smile.slice(1))).toBe(t.decode(smile.slice(1)));
    expect(t.decode(smile)).toBe('🙂 hi');
  });

  it('property: decode(encode(s)) === s for any string, and encode returns a fresh array', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (s) => {
        const a = tok.encode(s);
        a.fill(0);
        expect(tok.decode(tok.encode(s))).toBe(s);
      }),
      { numRuns: 200, seed: 11 },
    );
  });
});
