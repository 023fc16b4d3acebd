import { ConfigError } from '@quorum/core';
import { encodePromptResponse, projectTokenizer } from '@quorum/data';
import { describe, expect, it } from 'vitest';
import {
  chooseMaxLength,
  lengthQuantiles,
  maxLengthFromLengths,
  pairLengths,
  truncatedShare,
} from './length.js';

// 10 pairs: 10, 20, …, 100 tokens.
const lengths = [100, 20, 30, 40, 50, 60, 70, 80, 90, 10];

describe('lengthQuantiles', () => {
  it('takes nearest-rank quantiles', () => {
    expect(lengthQuantiles(lengths, [0.5, 0.9, 0.95, 1])).toEqual([50, 90, 100, 100]);
    expect(lengthQuantiles([7], [0.01])).toEqual([7]);
    expect(() => lengthQuantiles([], [0.5])).toThrow(ConfigError);
    expect(() => lengthQuantiles(lengths, [0])).toThrow('quantile must be in (0, 1]');
  });

  it('counts the share longer than a length', () => {
    expect(truncatedShare(lengths, 90)).toBe(0.1);
    expect(truncatedShare(lengths, 9)).toBe(1);
    expect(truncatedShare(lengths, 100)).toBe(0);
  });
});

describe('maxLengthFromLengths', () => {
  it('proposes the quantile, rounded up to a multiple of 8, with the share it truncates', () => {
    const exact = maxLengthFromLengths(lengths, { quantile: 0.9, contextLength: 512, multipleOf: 1 });
    expect(exact).toMatchObject({
      maxLength: 90,
      quantileLength: 90,
      truncatedShare: 0.1,
      boundedByContext: false,
    });
    expect(exact.summary).toBe('max length 90 (p90 of pair lengths); 10.0% of pairs truncated');
    const rounded = maxLengthFromLengths(lengths, { quantile: 0.9, contextLength: 512 });
    expect(rounded.maxLength).toBe(96);
    expect(rounded.summary).toBe(
      'max length 96 (p90 of pair lengths 90, rounded up to a multiple of 8); 10.0% of pairs truncated',
    );
    expect(maxLengthFromLengths(lengths, { contextLength: 512 })).toMatchObject({
      maxLength: 104,
      quantile: 0.95,
      truncatedShare: 0,
      p50: 50,
      longest: 100,
    });
  });

  it('is bounded by the context and never below 8', () => {
    const bounded = maxLengthFromLengths(lengths, { quantile: 0.9, contextLength: 64 });
    expect(bounded).toMatchObject({ maxLength: 64, boundedByContext: true, truncatedShare: 0.4 });
    expect(bounded.summary).toBe(
      "max length 64 (the model's context; the p90 of pair lengths is 90); 40.0% of pairs truncated",
    );
    expect(maxLengthFromLengths([3, 4], { contextLength: 64 }).maxLength).toBe(8);
  });
});

describe('chooseMaxLength', () => {
  it('measures prompt template + the longer answer + eos per pair', () => {
    const tok = projectTokenizer();
    const prompt = { instruction: 'Name a colour.', input: '' };
    const pairs = [
      { prompt, chosen: 'Blue.', rejected: 'I think that a nice colour is a deep, dark shade of green.' },
      { prompt, chosen: 'Red, the colour of blood and roses.', rejected: 'Red.' },
    ];
    const full = (answer: string): number =>
      encodePromptResponse(tok, prompt, answer, { maxLength: 1000 }).ids.length;
    const expected = [full(pairs[0]!.rejected), full(pairs[1]!.chosen)];
    expect(pairLengths(pairs, tok)).toEqual(expected);
    const choice = chooseMaxLength(pairs, tok, { quantile: 0.5, contextLength: 128, multipleOf: 1 });
    expect(choice.maxLength).toBe(Math.min(...expected));
    expect(choice.truncatedShare).toBe(0.5);
  });
});
