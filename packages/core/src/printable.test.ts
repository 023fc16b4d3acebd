import { describe, expect, it } from 'vitest';
import { escapeUntrusted, printable } from './printable.js';

describe('printable', () => {
  it('escapes what a terminal acts on, as JSON does, on one line', () => {
    const nasty = 'arch\x1b[31mred\x07\n  hint: run rm -rf ~\r\u009b2J\u202eevil\u2028x\ud800';
    const out = escapeUntrusted(nasty);
    const acted = [...out].filter((c) => {
      const n = c.charCodeAt(0);
      return n < 0x20 || (n >= 0x7f && n <= 0x9f) || (n >= 0x2028 && n <= 0x202e);
    });
    expect(acted).toEqual([]);
    expect(out).toBe(
      'arch\\u001b[31mred\\u0007\\n  hint: run rm -rf ~\\r\\u009b2J\\u202eevil\\u2028x\\ud800',
    );
  });

  it('keeps printable text, non-ASCII letters and astral characters', () => {
    expect(escapeUntrusted('llama-3 Größe 模型 🙂')).toBe('llama-3 Größe 模型 🙂');
    expect(printable('a"b\\c')).toBe('"a\\"b\\\\c"');
  });

  it('quotes and clips strings, describes other values by their JSON', () => {
    expect(printable('x'.repeat(100), 10)).toBe(`"${'x'.repeat(10)}…"`);
    expect(printable(null)).toBe('null');
    expect(printable(undefined)).toBe('undefined');
    expect(printable({ a: '\u009b' })).toBe('{"a":"\\u009b"}');
    expect(printable(['a', 1])).toBe('["a",1]');
    expect(printable(5n)).toBe('5n');
  });
});
