import { ConfigError } from '@quorum/core';
import { describe, expect, it } from 'vitest';
import { collate } from './collate.js';
import { encodePrompt, encodePromptResponse, formatPrompt } from './template.js';
import { projectTokenizer } from './tokenizer.js';

const tok = projectTokenizer();
const prompt = { instruction: 'List three primary colours.', input: '' };
const long = (n: number): string => Array.from({ length: n }, (_, i) => `word${i}`).join(' ');

describe('prompt template', () => {
  it('formats instruction, optional input and the response marker', () => {
    expect(formatPrompt(prompt)).toBe('### Instruction:\nList three primary colours.\n\n### Response:\n');
    expect(formatPrompt({ instruction: 'Translate', input: 'chat' })).toBe(
      '### Instruction:\nTranslate\n\n### Input:\nchat\n\n### Response:\n',
    );
  });

  it('encodes prompt then response then eos; the prompt ids equal encodePrompt', () => {
    const seq = encodePromptResponse(tok, prompt, 'Red, yellow and blue.', { maxLength: 256 });
    const p = encodePrompt(tok, prompt);
    expect([...seq.ids.subarray(0, seq.promptLength)]).toEqual([...p]);
    expect(seq.ids[seq.ids.length - 1]).toBe(tok.eosId);
    expect(tok.decode(seq.ids)).toBe(`${formatPrompt(prompt)}Red, yellow and blue.`);
    expect(seq.truncated).toEqual({ prompt: 0, response: 0 });
    expect(seq.promptLength + seq.responseLength).toBe(seq.ids.length);
  });

  it('truncates the instruction first, then keeps the END of the response', () => {
    const longPrompt = { instruction: long(200), input: '' };
    const a = encodePromptResponse(tok, longPrompt, 'Short answer.', { maxLength: 96 });
    expect(a.ids.length).toBe(96);
    expect(a.truncated.response).toBe(0);
    expect(a.truncated.prompt).toBeGreaterThan(0);
    expect(tok.decode(a.ids)).toMatch(/^### Instruction:\nword0 word1 .*\n\n### Response:\nShort answer\.$/s);

    const b = encodePromptResponse(tok, longPrompt, long(300), { maxLength: 96 });
    expect(b.ids.length).toBe(96);
    const text = tok.decode(b.ids);
    expect(text.endsWith('word299')).toBe(true);
    expect(text).toContain('### Response:\n');
    expect(b.promptLength).toBe(
      encodePrompt(tok, { instruction: long(200), input: '' }).length - b.truncated.prompt,
    );
    expect(b.ids[b.ids.length - 1]).toBe(tok.eosId);

    const tiny = encodePromptResponse(tok, longPrompt, long(300), {
      maxLength: 20,
      minInstructionTokens: 32,
    });
    expect(tiny.ids.length).toBe(20);
    expect(tok.decode(tiny.ids).endsWith('word299')).toBe(true);
    expect(() => encodePromptResponse(tok, prompt, 'x', { maxLength: 4 })).toThrow(
      'maxLength 4 leaves no room',
    );
  });

  it('refuses a minInstructionTokens that is not a count (it used to overrun maxLength)', () => {
    const longPrompt = { instruction: long(200), input: '' };
    for (const minInstructionTokens of [-5, Number.NaN, 2.5]) {
      const call = () =>
        encodePromptResponse(tok, longPrompt, long(300), { maxLength: 40, minInstructionTokens });
      expect(call).toThrow(ConfigError);
      expect(call).toThrow('field "minInstructionTokens"');
    }
    for (const minInstructionTokens of [0, 8, Number.POSITIVE_INFINITY]) {
      const seq = encodePromptResponse(tok, longPrompt, long(300), { maxLength: 40, minInstructionTokens });
      expect(seq.ids.length).toBe(40);
      expect(Number.isInteger(seq.promptLength)).toBe(true);
    }
  });
});

describe('collate', () => {
  const seqs = [
    [5, 6, 7],
    [8, 9],
  ];

  it('right-pads by default: real tokens start at 0, lastIndex = length - 1', () => {
    const b = collate(seqs, { padId: 0 });
    expect([b.batch, b.time, b.padSide]).toEqual([2, 3, 'right']);
    expect([...b.ids]).toEqual([5, 6, 7, 8, 9, 0]);
    expect([...b.mask]).toEqual([1, 1, 1, 1, 1, 0]);
    expect([...b.lengths]).toEqual([3, 2]);
    expect([...b.lastIndex]).toEqual([2, 1]);
  });

  it('left-pads for generation: every row ends in the last column', () => {
    const b = collate(seqs, { padId: 0, padSide: 'left', length: 4 });
    expect([...b.ids]).toEqual([0, 5, 6, 7, 0, 0, 8, 9]);
    expect([...b.mask]).toEqual([0, 1, 1, 1, 0, 0, 1, 1]);
    expect([...b.lastIndex]).toEqual([3, 3]);
  });

  it('the last real token is the same id whatever the padding side', () => {
    const ids = [
      encodePromptResponse(tok, prompt, 'Red.', { maxLength: 64 }).ids,
      encodePromptResponse(tok, prompt, 'Red, yellow, blue.', { maxLength: 64 }).ids,
    ];
    const r = collate(ids, { padId: tok.padId });
    const l = collate(ids, { padId: tok.padId, padSide: 'left' });
    for (let b = 0; b < 2; b++) {
      expect(r.ids[b * r.time + r.lastIndex[b]!]).toBe(tok.eosId);
      expect(l.ids[b * l.time + l.lastIndex[b]!]).toBe(tok.eosId);
    }
  });

  it('rejects sequences longer than the batch length and empty batches', () => {
    expect(() => collate(seqs, { padId: 0, length: 2 })).toThrow('length 3 exceeds the batch length 2');
    expect(() => collate([], { padId: 0 })).toThrow('empty batch');
  });

  it('refuses a batch length that is not a whole number, or too large to allocate, with a ConfigError', () => {
    // NaN and 2.5 used to give a batch with time NaN / 2.5; 1e12 a RangeError from Int32Array
    for (const length of [Number.NaN, 2.5, Number.POSITIVE_INFINITY, -1, 1e12]) {
      expect(() => collate(seqs, { padId: 0, length })).toThrow(ConfigError);
    }
  });

  it('collates a very wide batch (Math.max(...lengths) overflowed the stack)', () => {
    const wide = Array.from({ length: 200_000 }, (_, i) => [i % 7]);
    const b = collate(wide, { padId: 0 });
    expect([b.batch, b.time]).toEqual([200_000, 1]);
  });
});

describe('truncation modes', () => {
  const longPrompt = { instruction: long(200), input: '' };

  it("'left' (default) cuts and reports the overflow; 'drop' returns undefined for what does not fit", () => {
    const left = encodePromptResponse(tok, longPrompt, long(300), { maxLength: 96 });
    expect(left.ids.length).toBe(96);
    expect(left.overflow).toBe(
      encodePromptResponse(tok, longPrompt, long(300), { maxLength: 4096 }).ids.length - 96,
    );
    expect(left.overflow).toBe(left.truncated.prompt + left.truncated.response);
    expect(
      encodePromptResponse(tok, longPrompt, long(300), { maxLength: 96, truncation: 'drop' }),
    ).toBeUndefined();
    const fits = encodePromptResponse(tok, prompt, 'Red.', { maxLength: 96, truncation: 'drop' });
    expect(fits?.overflow).toBe(0);
    expect([...(fits?.ids ?? [])]).toEqual([
      ...encodePromptResponse(tok, prompt, 'Red.', { maxLength: 96 }).ids,
    ]);
  });

  it('refuses an unknown truncation mode', () => {
    const call = () =>
      encodePromptResponse(tok, prompt, 'Red.', { maxLength: 96, truncation: 'right' as unknown as 'left' });
    expect(call).toThrow(ConfigError);
    expect(call).toThrow('field "truncation"');
  });
});
