/**
 * Strings from untrusted input (a checkpoint's architecture name, a tensor name, a file name listed in a
 * manifest) are printed escaped, so that they cannot move the cursor, recolour the terminal, hide text or
 * forge a line of their own (a fake `hint:`). The escaping is JSON's, extended to every character a
 * terminal may act on: C0 and C1 controls, DEL, the line and paragraph separators, bidirectional
 * overrides and isolates, zero-width and BOM characters, and lone surrogates.
 */
import { formatLocation, type QuorumError } from './errors.js';

/** Code points escaped besides `"` and `\`: controls, separators, bidi and invisible formatting. */
function needsEscape(code: number): boolean {
  return (
    code < 0x20 ||
    (code >= 0x7f && code <= 0x9f) ||
    code === 0x00ad ||
    (code >= 0x200b && code <= 0x200f) ||
    (code >= 0x2028 && code <= 0x202e) ||
    (code >= 0x2060 && code <= 0x206f) ||
    code === 0xfeff ||
    (code >= 0xfff9 && code <= 0xfffb) ||
    (code >= 0xd800 && code <= 0xdfff)
  );
}

const SHORT: Readonly<Record<number, string>> = {
  8: '\\b',
  9: '\\t',
  10: '\\n',
  12: '\\f',
  13: '\\r',
};

/**
 * `text` with backslash escapes for `\`, `"` and every character a terminal could act on (see the file
 * comment); printable characters, including non-ASCII letters, are kept. The result is one line.
 */
export function escapeUntrusted(text: string): string {
  return escapeText(text, true);
}

/** The escaping of `escapeUntrusted`; `quotes: false` keeps `"` and `\` (text that is JSON already). */
function escapeText(text: string, quotes: boolean): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += text[i] + text[i + 1]; // a well-formed surrogate pair: an astral character
        i++;
        continue;
      }
    }
    if (quotes && code === 0x22) out += '\\"';
    else if (quotes && code === 0x5c) out += '\\\\';
    else if (needsEscape(code)) out += SHORT[code] ?? `\\u${code.toString(16).padStart(4, '0')}`;
    else out += text[i];
  }
  return out;
}

/** Cuts `text` to `max` UTF-16 units (not splitting a surrogate pair), marking the cut with `…`. */
function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max);
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

/**
 * An untrusted value for a message: a string quoted and escaped, clipped to `max` characters of the
 * original (default 80); another value described by its JSON (escaped and clipped the same way).
 * `printable('a\nb')` is `"a\nb"` with a backslash, never a line break.
 */
export function printable(value: unknown, max = 80): string {
  if (typeof value === 'string') return `"${escapeUntrusted(clip(value, max))}"`;
  if (value === undefined) return 'undefined';
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function' || typeof value === 'symbol') return typeof value;
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    text = undefined;
  }
  // JSON text has its quotes and backslashes escaped already, and C0 controls inside strings.
  return text === undefined ? escapeText(clip(String(value), max), true) : escapeText(clip(text, max), false);
}

/**
 * The message of a QuorumError without its location prefix and hint line, escaped (see
 * `escapeUntrusted`): for wrapping an error about untrusted input, whose message may quote that input,
 * into one that names where the input came from.
 */
export function escapedMessage(err: QuorumError): string {
  const where = formatLocation(err.location);
  let text = err.message;
  if (where !== '' && text.startsWith(`${where}: `)) text = text.slice(where.length + 2);
  const hint = err.hint === undefined ? '' : `\n  hint: ${err.hint}`;
  if (hint !== '' && text.endsWith(hint)) text = text.slice(0, -hint.length);
  return escapeUntrusted(text.length > 300 ? `${text.slice(0, 300)}…` : text);
}
