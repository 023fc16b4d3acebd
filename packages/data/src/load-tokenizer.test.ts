// A model folder's tokenizer files are untrusted input (issue 16): read only inside the folder, as
// regular files of bounded size, and their errors are typed, name the file and key, and quote nothing.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CheckpointError, DataError } from '@quorum/core';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTokenizer } from './load-tokenizer.js';
import { Vocab } from './vocab.js';

const SENTINEL = 'SENTINEL-5eaf00d';
const temps: string[] = [];
const folder = (files: Record<string, string>): string => {
  const dir = mkdtempSync(path.join(tmpdir(), 'quorum-loadtok-'));
  temps.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
};
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

async function refusal(dir: string): Promise<Error> {
  const start = Date.now();
  const err = await loadTokenizer(dir, { onWarning: () => {} }).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(err).toBeDefined();
  expect(err instanceof DataError || err instanceof CheckpointError).toBe(true);
  expect(Date.now() - start).toBeLessThan(3000);
  expect((err as Error).message).not.toContain(SENTINEL);
  return err as Error;
}

describe('loadTokenizer of an untrusted folder', () => {
  it('bad JSON in vocab.json is a DataError naming the file, never quoting it', async () => {
    const err = await refusal(folder({ 'vocab.json': `{"tokens": ${SENTINEL}}` }));
    expect(err).toBeInstanceOf(DataError);
    expect(err.message).toMatch(/vocab\.json field "json": is not valid JSON/);
  });

  it('vocab.json that is null, an array or a huge token list is a DataError naming the key', async () => {
    expect((await refusal(folder({ 'vocab.json': 'null' }))).message).toMatch(
      /field "format": expected a vocabulary object, got null/,
    );
    expect((await refusal(folder({ 'vocab.json': '[1, 2]' }))).message).toMatch(
      /field "format": expected a vocabulary object/,
    );
    const json = {
      ...new Vocab([300, 301], 'unk').toJSON(),
      id: undefined,
      tokens: Array.from({ length: 60000 }, (_, i) => i),
    };
    expect((await refusal(folder({ 'vocab.json': JSON.stringify(json) }))).message).toMatch(
      /field "tokens": tokens lists 60000 ids/,
    );
  });

  it('a vocab.json that is a FIFO or a link to /dev/zero is refused before it is opened', async () => {
    const fifo = folder({});
    execFileSync('mkfifo', [path.join(fifo, 'vocab.json')]);
    expect((await refusal(fifo)).message).toMatch(/vocab\.json: is not a regular file \(it is a FIFO\)/);
    const zero = folder({});
    symlinkSync('/dev/zero', path.join(zero, 'vocab.json'));
    expect((await refusal(zero)).message).toMatch(
      /vocab\.json: is a link to a file outside the model folder/,
    );
  });

  it('prints a vocabulary’s strings escaped', async () => {
    const err = await refusal(
      folder({ 'vocab.json': JSON.stringify({ format: 'x\u001b[31m\n  hint: rm -rf', version: 1 }) }),
    );
    expect(err.message.split('\n')).toHaveLength(2);
    expect(err.message).toContain('unsupported vocabulary format "x\\u001b[31m\\n  hint: rm -rf" version 1');
  });
});
