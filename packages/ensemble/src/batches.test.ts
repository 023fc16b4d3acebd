import { datasets, type PreferencePair, projectTokenizer } from '@quorum/data';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodePair, encodePairs } from './batches.js';

const tok = projectTokenizer();
let pairs: PreferencePair[];

beforeAll(async () => {
  pairs = (await datasets.alpacaEval()).pairs({ split: 'train' }).slice(0, 40);
});

describe('encodePairs', () => {
  it("'left' keeps every pair, counts the cut ones, and equals encodePair", () => {
    const r = encodePairs(tok, pairs, 256);
    expect(r.encoded).toHaveLength(pairs.length);
    expect(r.dropped).toBe(0);
    expect(r.truncated).toBeGreaterThan(0);
    expect(r.truncated).toBeLessThan(pairs.length);
    expect([...r.encoded[3]!.chosen]).toEqual([...encodePair(tok, pairs[3]!, 256).chosen]);
    expect(r.encoded.every((p) => p.chosen.length <= 256 && p.rejected.length <= 256)).toBe(true);
  });

  it("'drop' leaves out exactly the pairs 'left' had to cut (TRL's rule)", () => {
    const left = encodePairs(tok, pairs, 256);
    const drop = encodePairs(tok, pairs, 256, 'drop');
    expect(drop.dropped).toBe(left.truncated);
    expect(drop.truncated).toBe(0);
    expect(drop.encoded).toHaveLength(pairs.length - left.truncated);
    expect(drop.kept).toHaveLength(drop.encoded.length);
    drop.kept.forEach((pair, i) => {
      expect([...drop.encoded[i]!.rejected]).toEqual([...encodePair(tok, pair, 256).rejected]);
    });
  });
});
