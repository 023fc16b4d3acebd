import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointError, ConfigError } from '../errors.js';
import { CHECKPOINT_MANIFEST, CheckpointStore, checkpointFolderName } from './checkpoint-store.js';
import { sha256Hex } from './files.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'quorum-ckpt-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const weights = (step: number): Uint8Array => new Uint8Array(64).fill(step);
const filesFor = (step: number) => ({
  'weights.safetensors': weights(step),
  'state.json': `{"step":${step}}`,
});

describe('CheckpointStore', () => {
  it('saves a verified folder with a manifest of sizes and checksums', async () => {
    const store = new CheckpointStore(dir);
    const folder = await store.save(123, filesFor(123), { seed: 7 });
    expect(folder).toBe(path.join(dir, 'step-00000123'));
    expect((await readdir(folder)).sort()).toEqual([
      CHECKPOINT_MANIFEST,
      'state.json',
      'weights.safetensors',
    ]);
    const manifest = JSON.parse(await readFile(path.join(folder, CHECKPOINT_MANIFEST), 'utf8'));
    expect(manifest.step).toBe(123);
    expect(manifest.meta).toEqual({ seed: 7 });
    expect(manifest.files['weights.safetensors']).toEqual({ sha256: sha256Hex(weights(123)), bytes: 64 });
    expect(manifest.files['state.json'].bytes).toBe(12);
    expect(new Date(manifest.createdAt).toISOString()).toBe(manifest.createdAt);

    const loaded = await store.load(123);
    expect(loaded.step).toBe(123);
    expect(loaded.dir).toBe(folder);
    expect(loaded.meta).toEqual({ seed: 7 });
    expect(loaded.files['weights.safetensors']).toEqual(weights(123));
    expect(new TextDecoder().decode(loaded.files['state.json'])).toBe('{"step":123}');
    expect(loaded.warnings).toEqual([]);
  });

  it('keeps only the newest two of three saves', async () => {
    const store = new CheckpointStore(dir);
    for (const step of [10, 20, 30]) await store.save(step, filesFor(step), { step });
    expect(await store.list()).toEqual([20, 30]);
    expect((await readdir(dir)).sort()).toEqual(['step-00000020', 'step-00000030']);
    const latest = await store.latest();
    expect(latest?.step).toBe(30);
    expect(latest?.warnings).toEqual([]);
  });

  it('honours keep', async () => {
    const store = new CheckpointStore(dir, { keep: 3 });
    for (const step of [1, 2, 3, 4, 5]) await store.save(step, filesFor(step), {});
    expect(await store.list()).toEqual([3, 4, 5]);
    expect(() => new CheckpointStore(dir, { keep: 0 })).toThrow(ConfigError);
    expect(() => new CheckpointStore(dir, { keep: 0 })).toThrow(/keep must be a whole number ≥ 1, got 0/);
  });

  it('falls back to the previous checkpoint when the latest is truncated, naming the file', async () => {
    const store = new CheckpointStore(dir);
    await store.save(1, filesFor(1), {});
    await store.save(2, filesFor(2), {});
    const bad = path.join(store.folderFor(2), 'weights.safetensors');
    await truncate(bad, 10);
    const latest = await store.latest();
    expect(latest?.step).toBe(1);
    expect(latest?.files['weights.safetensors']).toEqual(weights(1));
    expect(latest?.warnings).toHaveLength(1);
    expect(latest?.warnings[0]).toContain(bad);
    expect(latest?.warnings[0]).toMatch(
      /step 2: .*file is 10 bytes but checkpoint.json records 64 \(truncated/,
    );
    await expect(store.load(2)).rejects.toThrow(CheckpointError);
    await expect(store.load(2)).rejects.toThrow(`${bad}: file is 10 bytes`);
  });

  it('falls back when a file of the latest is corrupted with its size unchanged', async () => {
    const store = new CheckpointStore(dir);
    await store.save(1, filesFor(1), {});
    await store.save(2, filesFor(2), {});
    const bad = path.join(store.folderFor(2), 'weights.safetensors');
    const bytes = weights(2);
    bytes[40] ^= 0x01;
    await writeFile(bad, bytes);
    const latest = await store.latest();
    expect(latest?.step).toBe(1);
    expect(latest?.warnings[0]).toContain(bad);
    expect(latest?.warnings[0]).toMatch(
      /sha256 is [0-9a-f]{12}… but checkpoint.json records [0-9a-f]{12}… \(corrupted\)/,
    );
  });

  it('falls back when the manifest is damaged or a file is missing', async () => {
    const store = new CheckpointStore(dir, { keep: 3 });
    await store.save(1, filesFor(1), {});
    await store.save(2, filesFor(2), {});
    await store.save(3, filesFor(3), {});
    const manifest3 = path.join(store.folderFor(3), CHECKPOINT_MANIFEST);
    await writeFile(manifest3, '{"step": 3, "fil');
    const missing2 = path.join(store.folderFor(2), 'state.json');
    await rm(missing2);
    const latest = await store.latest();
    expect(latest?.step).toBe(1);
    expect(latest?.warnings).toHaveLength(2);
    expect(latest?.warnings[0]).toContain(`${manifest3}: manifest is not valid JSON`);
    expect(latest?.warnings[1]).toContain(`${missing2}: file of checkpoint step 2 is missing`);
  });

  it('refuses a file that is a FIFO, or larger than its manifest says, before reading it (issue 16)', async () => {
    const store = new CheckpointStore(dir, { keep: 3 });
    await store.save(1, filesFor(1), {});
    await store.save(2, filesFor(2), {});
    await store.save(3, filesFor(3), {});
    const fifo = path.join(store.folderFor(3), 'state.json');
    await rm(fifo);
    execFileSync('mkfifo', [fifo]);
    const grown = path.join(store.folderFor(2), 'state.json');
    await writeFile(grown, 'x'.repeat(10_000));
    const start = Date.now();
    const latest = await store.latest();
    expect(Date.now() - start).toBeLessThan(2000);
    expect(latest?.step).toBe(1);
    expect(latest?.warnings[0]).toContain(`${fifo}: is not a regular file (it is a FIFO)`);
    expect(latest?.warnings[1]).toMatch(/state\.json: file is 10000 bytes but checkpoint\.json records \d+/);
  });

  it('rejects a manifest whose file names escape the folder', async () => {
    const store = new CheckpointStore(dir);
    await store.save(1, filesFor(1), {});
    const manifestFile = path.join(store.folderFor(1), CHECKPOINT_MANIFEST);
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8'));
    manifest.files['../../etc/passwd'] = { sha256: '0'.repeat(64), bytes: 1 };
    await writeFile(manifestFile, JSON.stringify(manifest));
    await expect(store.load(1)).rejects.toThrow(/manifest lists an invalid file name "..\/..\/etc\/passwd"/);
  });

  it('throws when checkpoints exist but none verifies, and returns undefined when there are none', async () => {
    const empty = new CheckpointStore(path.join(dir, 'not-yet-created'));
    expect(await empty.list()).toEqual([]);
    expect(await empty.latest()).toBeUndefined();

    const store = new CheckpointStore(dir);
    await store.save(1, filesFor(1), {});
    await truncate(path.join(store.folderFor(1), 'weights.safetensors'), 0);
    await expect(store.latest()).rejects.toThrow(
      /none of the 1 checkpoints verifies:\n.*weights.safetensors: file is 0 bytes/,
    );
  });

  it('a crash mid-save leaves the previous checkpoint intact; the staged folder is ignored, then cleaned', async () => {
    const store = new CheckpointStore(dir);
    await store.save(1, filesFor(1), { ok: true });
    // What a save killed before its rename leaves behind: a staged folder with partial files.
    const staged = path.join(dir, `.tmp-step-${checkpointFolderName(2)}-4242-deadbeef`);
    await mkdir(staged);
    await writeFile(path.join(staged, 'weights.safetensors'), new Uint8Array(7));
    expect(await store.list()).toEqual([1]);
    const latest = await store.latest();
    expect(latest?.step).toBe(1);
    expect(latest?.meta).toEqual({ ok: true });
    expect(latest?.warnings).toEqual([]);

    await store.save(2, filesFor(2), {});
    expect((await readdir(dir)).sort()).toEqual(['step-00000001', 'step-00000002']);
  });

  it('ignores stray entries that are not checkpoint folders', async () => {
    const store = new CheckpointStore(dir);
    await writeFile(path.join(dir, 'step-00000009'), 'a file, not a folder');
    await mkdir(path.join(dir, 'step-12'));
    await mkdir(path.join(dir, 'notes'));
    expect(await store.list()).toEqual([]);
  });

  it('replaces a checkpoint saved again at the same step', async () => {
    const store = new CheckpointStore(dir);
    await store.save(1, filesFor(1), {});
    await store.save(2, filesFor(2), { try: 1 });
    await store.save(2, { 'weights.safetensors': weights(9) }, { try: 2 });
    expect(await store.list()).toEqual([1, 2]);
    const latest = await store.latest();
    expect(latest?.meta).toEqual({ try: 2 });
    expect(Object.keys(latest?.files ?? {})).toEqual(['weights.safetensors']);
    expect(latest?.files['weights.safetensors']).toEqual(weights(9));
    expect((await readdir(dir)).sort()).toEqual(['step-00000001', 'step-00000002']);
  });

  it('drops later checkpoints when a run resumed from an earlier one saves again', async () => {
    const store = new CheckpointStore(dir);
    await store.save(100, filesFor(100), {});
    await store.save(200, filesFor(200), {});
    await truncate(path.join(store.folderFor(200), 'state.json'), 1);
    const resumed = await store.latest();
    expect(resumed?.step).toBe(100);
    await store.save(150, filesFor(150), {});
    expect(await store.list()).toEqual([100, 150]);
  });

  it('runs saves one after another even when not awaited', async () => {
    const store = new CheckpointStore(dir);
    await Promise.all([1, 2, 3, 4].map((step) => store.save(step, filesFor(step), {})));
    expect(await store.list()).toEqual([3, 4]);
    expect((await store.latest())?.step).toBe(4);
  });

  it('refuses bad steps, file names and meta', async () => {
    const store = new CheckpointStore(dir);
    await expect(store.save(-1, {}, {})).rejects.toThrow(/step must be a non-negative integer, got -1/);
    await expect(store.save(1.5, {}, {})).rejects.toThrow(ConfigError);
    await expect(store.save(1, { '../escape': 'x' }, {})).rejects.toThrow(
      /cannot save a file named "..\/escape"/,
    );
    await expect(store.save(1, { [CHECKPOINT_MANIFEST]: 'x' }, {})).rejects.toThrow(
      /cannot save a file named "checkpoint.json"/,
    );
    await expect(store.save(1, {}, [] as unknown as object)).rejects.toThrow(/meta must be a plain object/);
    await expect(store.save(1, {}, { big: 1n })).rejects.toThrow(/meta cannot be written as JSON/);
    await expect(store.save(1, { w: 5 as unknown as string }, {})).rejects.toThrow(
      /file "w" is number, not bytes/,
    );
    expect(await store.list()).toEqual([]);
  });

  it('wraps an I/O failure during save in a CheckpointError and keeps earlier checkpoints', async () => {
    const store = new CheckpointStore(dir);
    await store.save(1, filesFor(1), {});
    const blocked = path.join(dir, 'blocked');
    await writeFile(blocked, 'a file where the store wants a folder');
    const broken = new CheckpointStore(path.join(blocked, 'sub'));
    await expect(broken.save(2, filesFor(2), {})).rejects.toThrow(
      /step-00000002: could not save the checkpoint: (ENOTDIR|EEXIST)/,
    );
    expect((await store.latest())?.step).toBe(1);
  });
});
