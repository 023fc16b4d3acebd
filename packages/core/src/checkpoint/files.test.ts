import {
  chmodSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointError, ConfigError, DataError } from '../errors.js';
import { assertNotSameFile, openAtomicOutput, withAtomicOutput, writeFileAtomic } from './files.js';

const root = mkdtempSync(path.join(tmpdir(), 'quorum-files-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dir = '';
let n = 0;
beforeEach(() => {
  dir = path.join(root, `case-${n++}`);
  mkdirSync(dir);
});

describe('openAtomicOutput', () => {
  it('shows nothing at the path until commit, then the whole stream', async () => {
    const file = path.join(dir, 'out.jsonl');
    const out = await openAtomicOutput(file);
    await out.write('{"a":1}\n');
    await out.write(new Uint8Array([123, 125, 10]));
    expect(existsSync(file)).toBe(false);
    await out.commit();
    expect(readFileSync(file, 'utf8')).toBe('{"a":1}\n{}\n');
    expect(readdirSync(dir)).toEqual(['out.jsonl']);
    await out.abort(); // a no-op after commit
    expect(readFileSync(file, 'utf8')).toBe('{"a":1}\n{}\n');
    await expect(out.write('x')).rejects.toThrow(/already committed/);
  });

  it('abort leaves an earlier file untouched and no temp file behind', async () => {
    const file = path.join(dir, 'out.jsonl');
    writeFileSync(file, 'earlier\n');
    const out = await openAtomicOutput(file);
    await out.write('partial');
    await out.abort();
    await out.abort();
    expect(readFileSync(file, 'utf8')).toBe('earlier\n');
    expect(readdirSync(dir)).toEqual(['out.jsonl']);
  });

  it('keeps the permissions of the file it replaces', async () => {
    const file = path.join(dir, 'out.txt');
    writeFileSync(file, 'old');
    chmodSync(file, 0o640);
    await withAtomicOutput(file, (out) => out.write('new'));
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(readFileSync(file, 'utf8')).toBe('new');
  });

  it('writes through a symlink to its target and keeps the link', async () => {
    const real = path.join(dir, 'real.txt');
    const link = path.join(dir, 'link.txt');
    writeFileSync(real, 'old');
    symlinkSync(real, link);
    await withAtomicOutput(link, (out) => out.write('new'));
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(real, 'utf8')).toBe('new');
  });

  it('a missing folder is a DataError naming the path and the fix, before anything is written', async () => {
    const file = path.join(dir, 'no-such-folder', 'out.jsonl');
    const error = await openAtomicOutput(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataError);
    expect((error as Error).message).toContain(`${file}: could not write the file: ENOENT`);
    expect((error as Error).message).toContain(`the folder ${path.dirname(file)} does not exist`);
    expect((error as DataError).hint).toContain(`mkdir -p ${path.dirname(file)}`);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a folder at the path is a DataError', async () => {
    await expect(openAtomicOutput(dir)).rejects.toThrow(DataError);
    await expect(openAtomicOutput(dir)).rejects.toThrow(/EISDIR/);
  });

  it.runIf(existsSync('/dev/full'))(
    'writes a device in place: /dev/full fails with a DataError saying the device is full',
    async () => {
      const out = await openAtomicOutput('/dev/full');
      const error = await out.write('x'.repeat(1 << 16)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DataError);
      expect((error as Error).message).toMatch(
        /^\/dev\/full: could not write the file: ENOSPC \(no space left on the device\)/,
      );
      expect(statSync('/dev/full').isCharacterDevice()).toBe(true);
      await out.abort();
    },
  );

  it.runIf(existsSync('/dev/null'))('writeFileAtomic on a device writes it in place', async () => {
    await writeFileAtomic('/dev/null', 'x');
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
  });

  it('withAtomicOutput commits on success and aborts when the callback throws', async () => {
    const file = path.join(dir, 'out.txt');
    writeFileSync(file, 'old');
    await expect(
      withAtomicOutput(file, async (out) => {
        await out.write('half');
        throw new Error('row 800 is bad');
      }),
    ).rejects.toThrow('row 800 is bad');
    expect(readFileSync(file, 'utf8')).toBe('old');
    expect(readdirSync(dir)).toEqual(['out.txt']);
    const written = await withAtomicOutput(file, async (out) => {
      await out.write('new');
      return 7;
    });
    expect(written).toBe(7);
    expect(readFileSync(file, 'utf8')).toBe('new');
  });

  it('writeFileAtomic keeps raising CheckpointError for a missing folder', async () => {
    const file = path.join(dir, 'missing', 'a.json');
    await expect(writeFileAtomic(file, 'x')).rejects.toThrow(CheckpointError);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('assertNotSameFile', () => {
  it('refuses the input itself, a symlink to it and a hard link to it', () => {
    const input = path.join(dir, 'x.jsonl');
    writeFileSync(input, '{"instruction":"a","output":"b"}\n');
    const link = path.join(dir, 'link.jsonl');
    const hard = path.join(dir, 'hard.jsonl');
    symlinkSync(input, link);
    linkSync(input, hard);
    const fields = { input: '--input', output: '--out' };
    expect(() => assertNotSameFile(input, input, fields)).toThrow(ConfigError);
    expect(() => assertNotSameFile(input, input, fields)).toThrow(
      `field "--out": ${input} is the input file ${input}; writing it would destroy`,
    );
    expect(() => assertNotSameFile(input, path.join(dir, '.', 'x.jsonl'), fields)).toThrow(ConfigError);
    expect(() => assertNotSameFile(input, link, fields)).toThrow(/through a symlink or a hard link/);
    expect(() => assertNotSameFile(link, hard, fields)).toThrow(ConfigError);
    expect(() => assertNotSameFile(input, input, fields)).toThrow(/write --out to another file/);
  });

  it('accepts another file, a missing output and a device', () => {
    const input = path.join(dir, 'x.jsonl');
    const other = path.join(dir, 'y.jsonl');
    writeFileSync(input, 'a');
    writeFileSync(other, 'a');
    expect(() => assertNotSameFile(input, other)).not.toThrow();
    expect(() => assertNotSameFile(input, path.join(dir, 'new.jsonl'))).not.toThrow();
    expect(() => assertNotSameFile(path.join(dir, 'missing.jsonl'), other)).not.toThrow();
    if (existsSync('/dev/null')) expect(() => assertNotSameFile('/dev/null', '/dev/null')).not.toThrow();
  });
});
