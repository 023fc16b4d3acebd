// The one confined-read path every loader uses: names, symlinks, FIFOs, devices and sizes.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../errors.js';
import {
  checkConfinedName,
  parseCheckpointJson,
  readConfinedFile,
  readConfinedJson,
  statConfinedFile,
} from './confined.js';
import { encodeSafetensors, readConfinedSafetensors, readSafetensors } from './safetensors.js';

let root: string;
let dir: string;
const SECRET = 'SENTINEL-4f1c outside the folder';

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'quorum-confined-'));
  dir = path.join(root, 'model');
  mkdirSync(path.join(dir, 'sub'), { recursive: true });
  writeFileSync(path.join(root, 'secret.json'), JSON.stringify({ secret: SECRET }));
  writeFileSync(path.join(dir, 'ok.json'), '{"a": 1}');
  writeFileSync(path.join(dir, 'sub', 'inner.json'), '[1]');
  writeFileSync(path.join(dir, 'bad.json'), `{"x": ${SECRET}}`);
  symlinkSync(path.join(root, 'secret.json'), path.join(dir, 'out.json'));
  symlinkSync('ok.json', path.join(dir, 'in.json'));
  symlinkSync('/dev/zero', path.join(dir, 'zero.bin'));
  execFileSync('mkfifo', [path.join(dir, 'fifo.json')]);
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

async function failure(run: () => Promise<unknown>): Promise<CheckpointError> {
  const err = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CheckpointError);
  expect((err as Error).message).not.toContain('SENTINEL');
  return err as CheckpointError;
}

describe('checkConfinedName', () => {
  const at = { file: 'm/quorum.json', field: 'files[0]' };
  it.each([
    ['/etc/passwd', /absolute/],
    ['../../dev/zero', /"\.\."/],
    ['sub/../../x', /"\.\."/],
    ['C:\\x', /absolute/],
    ['a//b', /plain name/],
    ['./a', /plain name/],
    ['a\n  hint: x', /plain name/],
    ['', /empty/],
  ])('refuses %j', (name, why) => {
    let err: unknown;
    try {
      checkConfinedName(name, at);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(why);
    expect((err as Error).message).toMatch(/^m\/quorum\.json field "files\[0\]"/);
    expect((err as Error).message.split('\n')).toHaveLength(2); // the message and its one hint
  });

  it('refuses a value that is not a string, and accepts plain relative names', () => {
    expect(() => checkConfinedName(42, at)).toThrow(/not a string/);
    expect(checkConfinedName('member-0/backbone.safetensors', at)).toBe('member-0/backbone.safetensors');
  });
});

describe('statConfinedFile / readConfinedFile', () => {
  it('reads regular files inside the folder, links that stay inside included', async () => {
    expect(await readConfinedJson(dir, 'ok.json', { maxBytes: 100 })).toEqual({ a: 1 });
    expect(await readConfinedJson(dir, 'in.json', { maxBytes: 100 })).toEqual({ a: 1 });
    expect(await readConfinedJson(dir, 'sub/inner.json', { maxBytes: 100 })).toEqual([1]);
    expect(await statConfinedFile(dir, 'absent.json', { maxBytes: 100 })).toBeUndefined();
  });

  it('refuses a link out of the folder without showing where it points', async () => {
    const err = await failure(() => readConfinedFile(dir, 'out.json', { maxBytes: 1e6 }));
    expect(err.message).toMatch(/outside the model folder/);
    expect(err.message).not.toContain('secret.json');
  });

  it('refuses a link to /dev/zero and a FIFO before opening them (no endless read, no hang)', async () => {
    const start = Date.now();
    expect((await failure(() => readConfinedFile(dir, 'zero.bin', { maxBytes: 1e6 }))).message).toMatch(
      /outside the model folder/,
    );
    expect((await failure(() => readConfinedFile(dir, 'fifo.json', { maxBytes: 1e6 }))).message).toMatch(
      /is not a regular file \(it is a FIFO\)/,
    );
    expect((await failure(() => readConfinedFile(dir, 'sub', { maxBytes: 1e6 }))).message).toMatch(
      /is not a regular file \(it is a folder\)/,
    );
    expect(Date.now() - start).toBeLessThan(2000);
  });

  it('refuses a file larger than maxBytes before reading it', async () => {
    const err = await failure(() => readConfinedFile(dir, 'ok.json', { maxBytes: 3 }));
    expect(err.message).toMatch(/is 8 bytes, more than the 3 bytes/);
  });

  it('names a missing file, and bad JSON without quoting the file', async () => {
    expect((await failure(() => readConfinedFile(dir, 'absent.json', { maxBytes: 9 }))).message).toMatch(
      /absent\.json: file not found/,
    );
    const err = await failure(() => readConfinedJson(dir, 'bad.json', { maxBytes: 1000 }));
    expect(err.message).toMatch(/bad\.json field "json": is not valid JSON/);
    expect(() => parseCheckpointJson(new Uint8Array([0xff, 0xfe, 0x00]), 'x.json')).toThrow(/not UTF-8/);
  });
});

describe('safetensors reads check the file before its data', () => {
  const good = (): Uint8Array =>
    encodeSafetensors({ w: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } });

  it('readSafetensors refuses a FIFO and a device instead of blocking or reading forever', async () => {
    const start = Date.now();
    await failure(() => readSafetensors(path.join(dir, 'fifo.json')));
    expect((await failure(() => readSafetensors('/dev/zero'))).message).toMatch(/it is a device/);
    expect(Date.now() - start).toBeLessThan(2000);
  });

  it('readConfinedSafetensors checks dtypes, the header against the size, and finiteness', async () => {
    writeFileSync(path.join(dir, 'w.safetensors'), good());
    const ok = await readConfinedSafetensors(dir, 'w.safetensors', { maxBytes: 1e6, dtypes: ['F32'] });
    expect([...(ok.tensors.w as { data: Float32Array }).data]).toEqual([1, 2]);

    const int = encodeSafetensors({ w: { dtype: 'I32', shape: [2], data: new Int32Array([1, 2]) } });
    writeFileSync(path.join(dir, 'i.safetensors'), int);
    expect(
      (await failure(() => readConfinedSafetensors(dir, 'i.safetensors', { maxBytes: 1e6, dtypes: ['F32'] })))
        .message,
    ).toMatch(/i\.safetensors field "w": tensor 'w' has dtype I32; this checkpoint holds F32 tensors only/);

    const nan = encodeSafetensors({
      'h.0\n  hint: x': { dtype: 'F32', shape: [2], data: new Float32Array([1, Number.NaN]) },
    });
    writeFileSync(path.join(dir, 'nan.safetensors'), nan);
    const err = await failure(() => readConfinedSafetensors(dir, 'nan.safetensors', { maxBytes: 1e6 }));
    expect(err.message).toMatch(/tensor 'h\.0\\n {2}hint: x' holds NaN at element 1/);
    expect(err.message.split('\n')).toHaveLength(2);

    const bf16 = encodeSafetensors({ b: { dtype: 'BF16', shape: [1], data: new Uint16Array([0x7f80]) } });
    writeFileSync(path.join(dir, 'inf.safetensors'), bf16);
    await failure(() => readConfinedSafetensors(dir, 'inf.safetensors', { maxBytes: 1e6 }));

    const padded = new Uint8Array(good().length + 1000);
    padded.set(good());
    writeFileSync(path.join(dir, 'long.safetensors'), padded);
    expect(
      (await failure(() => readConfinedSafetensors(dir, 'long.safetensors', { maxBytes: 1e6 }))).message,
    ).toMatch(/the tensors cover 8 bytes of data but the file holds 1008/);
  });
});
