import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DataError } from '@quorum/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DatasetFormat } from './formats.js';
import { DEFAULT_MAX_LINE_BYTES, filterJsonlFile, jsonDepth, readJsonl } from './jsonl.js';
import { loadPreferencePairs, loadSftExamples } from './load.js';
import { datasetPath } from './paths.js';

const dir = mkdtempSync(join(tmpdir(), 'quorum-data-'));
let n = 0;
function file(lines: string[], gz = false): string {
  const path = join(dir, `f${n++}.jsonl${gz ? '.gz' : ''}`);
  const text = `${lines.join('\n')}\n`;
  writeFileSync(path, gz ? gzipSync(text) : text);
  return path;
}

async function rejection(promise: Promise<unknown>): Promise<DataError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DataError);
  return error as DataError;
}

const good =
  '{"instruction": "Say hi", "input": "", "output_1": "hi", "output_2": "hello there", "preference": 2}';

describe('readJsonl', () => {
  it('streams the shipped gzipped instructions with 1-based line numbers', async () => {
    const rows: { value: unknown; line: number }[] = [];
    const reader = readJsonl(datasetPath('alpaca_eval/instructions.jsonl.gz'));
    for await (const row of reader) rows.push(row);
    expect(rows).toHaveLength(805);
    expect(rows[0]).toEqual({ value: expect.objectContaining({ id: 0, split: 'train' }), line: 1 });
    expect(reader.stats).toMatchObject({ rows: 805, skipped: 0 });
  });

  it('names file and line of a line that is not JSON, or skips and counts it', async () => {
    const path = file([good, '{"instruction": "oops",', '', good]);
    const error = await rejection(loadPreferencePairs(path));
    expect(error.message).toContain(`${path}:2`);
    expect(error.message).toContain('not valid JSON');
    expect(error.hint).toBeDefined();
    const { pairs, stats } = await loadPreferencePairs(path, { onError: 'skip' });
    expect(pairs).toHaveLength(2);
    expect(stats).toMatchObject({ rows: 3, skipped: 1, loaded: 2, format: 'alpaca-farm' });
    expect(stats.errors[0]?.location?.line).toBe(2);
  });

  it('names the missing field and the wrongly typed field', async () => {
    const missing = file([good, '{"instruction": "x", "output_1": "a", "preference": 1}']);
    const e1 = await rejection(loadPreferencePairs(missing, { format: 'alpaca-farm' }));
    expect(e1.location).toEqual({ file: missing, line: 2, field: 'output_2' });
    expect(e1.message).toContain('missing field "output_2"');
    const wrong = file([good, good.replace('"preference": 2', '"preference": "2"')]);
    const e2 = await rejection(loadPreferencePairs(wrong));
    expect(e2.message).toContain(`${wrong}:2 field "preference"`);
    expect(e2.message).toContain('must be a number');
    const badLabel = file([good.replace('"preference": 2', '"preference": 3')]);
    expect((await rejection(loadPreferencePairs(badLabel))).message).toContain('must be 1 or 2');
  });

  it('reports unreadable files as DataErrors', async () => {
    const notGz = join(dir, 'plain.jsonl.gz');
    writeFileSync(notGz, good);
    expect((await rejection(loadPreferencePairs(notGz))).message).toContain('not gzip');
    expect((await rejection(loadPreferencePairs(join(dir, 'missing.jsonl')))).message).toContain(
      'file not found',
    );
  });

  it('drops byte order marks at the start of lines (they used to make line 1 "not valid JSON")', async () => {
    const path = join(dir, 'bom.jsonl');
    writeFileSync(path, `\uFEFF${good}\r\n\uFEFF\uFEFF${good}\r\n\uFEFF\r\n`);
    const { pairs, stats } = await loadPreferencePairs(path);
    expect(pairs.map((p) => p.id)).toEqual(['bom.jsonl:1', 'bom.jsonl:2']);
    expect(stats.rows).toBe(2);
  });

  it('reads a UTF-8 sequence cut at the end of the file as U+FFFD, not as nothing', async () => {
    // readline never flushed its decoder: `{...}\xE2` at EOF used to load as if the byte were absent
    const path = join(dir, 'cut-utf8.jsonl');
    const row = '{"instruction": "x", "output": "y"}';
    writeFileSync(path, Buffer.concat([Buffer.from(`${row}\n${row}`), Buffer.from([0xe2, 0x82])]));
    const error = await rejection(loadSftExamples(path));
    expect(error.location).toEqual({ file: path, line: 2 });
    const { examples, stats } = await loadSftExamples(path, { onError: 'skip' });
    expect(examples).toHaveLength(1);
    expect(stats).toMatchObject({ rows: 2, skipped: 1 });
  });

  it('clips the field list of a row that matches no format', async () => {
    const keys = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`${'k'.repeat(1000)}${i}`, i]));
    const path = file([JSON.stringify(keys)]);
    const error = await rejection(loadSftExamples(path));
    expect(error.message).toContain('and 12 more');
    expect(error.message.length).toBeLessThan(1000);
  });

  it('keeps ties only when asked and counts the dropped ones', async () => {
    const path = file(
      [
        good,
        good.replace('"preference": 2', '"preference": 0'),
        good.replace('"preference": 2', '"preference": 1.5'),
      ],
      true,
    );
    const skipped = await loadPreferencePairs(path);
    expect(skipped.pairs).toHaveLength(1);
    expect(skipped.stats.ties).toBe(2);
    const kept = await loadPreferencePairs(path, { ties: 'keep' });
    expect(kept.pairs.map((p) => p.tie ?? false)).toEqual([false, true, true]);
  });

  it('reads SFT files with the format detected, and TRL/HH files likewise', async () => {
    const sft = file(
      [
        '{"instruction": "Name a colour.", "output": "Blue."}',
        '{"instruction": "Add", "input": "2+2", "output": "4"}',
      ],
      true,
    );
    const { examples, stats } = await loadSftExamples(sft);
    expect(stats.format).toBe('sft');
    expect(examples.map((e) => e.response)).toEqual(['Blue.', '4']);
    const trl = file(['{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}']);
    expect((await loadPreferencePairs(trl)).stats.format).toBe('trl');
    const hh = file([
      JSON.stringify({
        chosen: '\n\nHuman: Hi\n\nAssistant: Hello!',
        rejected: '\n\nHuman: Hi\n\nAssistant: No.',
      }),
    ]);
    expect((await loadPreferencePairs(hh)).pairs[0]).toMatchObject({
      prompt: { instruction: 'Hi' },
      chosen: 'Hello!',
    });
    const unknown = file(['{"question": "?", "answer": "!"}']);
    await expect(loadPreferencePairs(unknown)).rejects.toThrow(
      'row matches no preference format (fields: question, answer)',
    );
  });

  it('refuses a format of the wrong kind and unknown names', async () => {
    const path = file([good]);
    await expect(loadSftExamples(path, { format: 'alpaca-farm' })).rejects.toThrow('reads preference rows');
    await expect(loadPreferencePairs(path, { format: 'alpaca' })).rejects.toThrow(
      'Known: alpaca-farm, trl, hh-rlhf, sft',
    );
  });

  it('property: random lines give values or typed DataErrors, never anything else', async () => {
    const line = fc.oneof(
      fc.string(),
      fc.json(),
      fc
        .record({
          instruction: fc.oneof(fc.string(), fc.integer()),
          output_1: fc.oneof(fc.string(), fc.constant(null)),
          output_2: fc.string(),
          preference: fc.oneof(fc.constantFrom(1, 2, 0, 1.5), fc.double(), fc.string()),
        })
        .map((r) => JSON.stringify(r)),
      fc
        .record({ prompt: fc.anything(), chosen: fc.anything(), rejected: fc.anything() })
        .map((r) => JSON.stringify(r)),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          line.map((l) => l.replace(/[\r\n]/g, ' ')),
          { maxLength: 8 },
        ),
        async (lines) => {
          const path = file(lines);
          try {
            const { pairs, stats } = await loadPreferencePairs(path, { onError: 'skip' });
            expect(pairs.length + stats.skipped + stats.ties).toBe(stats.rows);
          } catch (error) {
            expect(error).toBeInstanceOf(DataError);
          }
          await loadPreferencePairs(path).catch((error: unknown) => expect(error).toBeInstanceOf(DataError));
        },
      ),
      { numRuns: 60, seed: 7 },
    );
  });
});

const trlRow = (extra = ''): string => `{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."${extra}}`;

describe('line length and nesting limits (issue 16)', () => {
  it('refuses a line over maxLineBytes (default 8 MiB) at file:line, naming the limit and how to raise it', async () => {
    // A valid row of 9 MiB: it used to load (and a 50 MB one peaked at 1.3 GB RSS).
    const long = trlRow(`, "note": "${'x'.repeat(9 * 1024 * 1024)}"`);
    for (const gz of [false, true]) {
      const path = file([trlRow(), long, trlRow()], gz);
      const error = await rejection(loadPreferencePairs(path));
      expect(error.location).toEqual({ file: path, line: 2 });
      expect(error.message).toContain('longer than 8 MiB (8388608 bytes)');
      expect(error.hint).toContain('maxLineBytes');
      expect(error.hint).toContain('--max-line-bytes');
      const skipped = await loadPreferencePairs(path, { onError: 'skip' });
      expect(skipped.pairs.map((p) => p.id)).toEqual([
        `${path.split('/').pop()}:1`,
        `${path.split('/').pop()}:3`,
      ]);
      expect(skipped.stats).toMatchObject({ rows: 3, skipped: 1 });
      expect((await loadPreferencePairs(path, { maxLineBytes: 16 * 1024 * 1024 })).pairs).toHaveLength(3);
    }
    expect(DEFAULT_MAX_LINE_BYTES).toBe(8 * 1024 * 1024);
  });

  it('counts the limit in bytes, not characters, and without the line break (LF, CRLF, CR)', async () => {
    const row = trlRow(', "n": "é"'); // é is 2 bytes
    const bytes = Buffer.byteLength(row);
    for (const eol of ['\n', '\r\n', '\r']) {
      const path = join(dir, `eol-${n++}.jsonl`);
      writeFileSync(path, `${row}${eol}${row}${eol}`);
      expect((await loadPreferencePairs(path, { maxLineBytes: bytes })).pairs).toHaveLength(2);
      const error = await rejection(loadPreferencePairs(path, { maxLineBytes: bytes - 1 }));
      expect(error.location?.line).toBe(1);
    }
  });

  it.skipIf(!existsSync('/dev/zero'))(
    'stops reading an endless line at the limit instead of holding it in memory',
    async () => {
      const reader = readJsonl('/dev/zero', { maxLineBytes: 1024 * 1024 });
      const error = await rejection(
        (async () => {
          for await (const _ of reader) expect.fail('no row');
        })(),
      );
      expect(error.location).toEqual({ file: '/dev/zero', line: 1 });
    },
    10_000,
  );

  it('refuses a row nested deeper than maxDepth (default 1000) at file:line, before parsing it', async () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    // A valid row with a deep extra field used to load; 100k open brackets are refused the same way.
    const path = file([trlRow(), trlRow(`, "meta": ${deep}`), '['.repeat(100_000)]);
    const error = await rejection(loadPreferencePairs(path));
    expect(error.location).toEqual({ file: path, line: 2 });
    expect(error.message).toContain('more than 1000 levels deep');
    const { pairs, stats } = await loadPreferencePairs(path, { onError: 'skip' });
    expect(pairs).toHaveLength(1);
    expect(stats.errors.map((e) => [e.location?.line, e.message.includes('levels deep')])).toEqual([
      [2, true],
      [3, true],
    ]);
    const shallow = file([trlRow(`, "meta": ${'['.repeat(999)}${']'.repeat(999)}`)]);
    expect((await loadPreferencePairs(shallow)).pairs).toHaveLength(1);
  });

  it('turns a stack overflow inside a format (a plugin walking a deep row) into a DataError at file:line', async () => {
    const depthOf = (v: unknown): number => (Array.isArray(v) ? 1 + Math.max(0, ...v.map(depthOf)) : 0);
    const walking: DatasetFormat = {
      name: 'walking',
      kind: 'preference',
      detect: () => true,
      parse: (row, loc) => ({
        id: String(depthOf(row)),
        prompt: { instruction: 'x', input: '' },
        chosen: 'a',
        rejected: String(loc.line),
      }),
    };
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    const path = file(['[[1]]', deep]);
    const error = await rejection(loadPreferencePairs(path, { format: walking, maxDepth: 300_000 }));
    expect(error.location).toEqual({ file: path, line: 2 });
    expect(error.message).toContain('format "walking" could not read this row');
    // With the default depth limit the row never reaches the format.
    expect((await rejection(loadPreferencePairs(path, { format: walking }))).message).toContain(
      'levels deep',
    );
  });

  it('property: jsonDepth is the nesting of any JSON value, brackets inside strings not counted', () => {
    fc.assert(
      fc.property(fc.jsonValue({ depthSize: 'large' }), fc.integer({ min: 0, max: 40 }), (value, wrap) => {
        let text = JSON.stringify(value);
        for (let i = 0; i < wrap; i++) text = i % 2 === 0 ? `[${text}]` : `{"a\\"[{": ${text}}`;
        const depthOfValue = (v: unknown): number =>
          v !== null && typeof v === 'object'
            ? 1 + Math.max(0, ...Object.values(v as Record<string, unknown>).map(depthOfValue))
            : 0;
        expect(jsonDepth(text)).toBe(depthOfValue(JSON.parse(text)));
      }),
      { numRuns: 300, seed: 16 },
    );
  });
});

describe('filterJsonlFile', () => {
  it('keeps the rows asked for, drops a half-written last line, and replaces the file atomically', async () => {
    const sub = mkdtempSync(join(dir, 'metrics-'));
    const path = join(sub, 'metrics.jsonl');
    writeFileSync(path, '{"step": 1}\n{"step": 2}\n\n{"step": 3}\n{"step": 4}\n{"st');
    expect(await filterJsonlFile(path, (r) => (r as { step: number }).step <= 2)).toEqual({
      kept: 2,
      dropped: 3,
    });
    expect(readFileSync(path, 'utf8')).toBe('{"step": 1}\n{"step": 2}\n');
    expect(readdirSync(sub)).toEqual(['metrics.jsonl']);
    expect(await filterJsonlFile(join(sub, 'none.jsonl'), () => true)).toEqual({ kept: 0, dropped: 0 });
    expect(existsSync(join(sub, 'none.jsonl'))).toBe(false);
  });
});
