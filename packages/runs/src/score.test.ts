import { DataError } from '@quorum/core';
import { describe, expect, it } from 'vitest';
import { parseScoreRow } from './score.js';

describe('parseScoreRow', () => {
  it('names the file, line and field of a bad row', () => {
    expect(() => parseScoreRow({ instruction: 'x' }, 'a.jsonl', 7)).toThrow(DataError);
    expect(() => parseScoreRow({ instruction: 'x' }, 'a.jsonl', 7)).toThrow(
      /a\.jsonl:7 field "output": is missing/,
    );
    expect(() => parseScoreRow({ instruction: 1, output: 'y' }, 'a.jsonl', 2)).toThrow(
      /field "instruction": must be a string, got number 1/,
    );
    expect(() => parseScoreRow([1], 'a.jsonl', 3)).toThrow(/expected a JSON object/);
  });

  it('reads instruction, optional input and output', () => {
    expect(parseScoreRow({ instruction: 'a', output: 'b', extra: 1 }, 'f', 1)).toEqual({
      instruction: 'a',
      input: '',
      output: 'b',
    });
  });
});
