// loadEnsemble returns the tokenizer of the folder: Quorum's vocab.json or a Hugging Face tokenizer.json.
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gptPreset } from '@quorum/backbone';
import {
  builtinBackendRegistry,
  CheckpointError,
  ConfigError,
  decodeSafetensors,
  encodeSafetensors,
  initCompute,
  Rng,
} from '@quorum/core';
import { HfTokenizer, loadTokenizer, projectTokenizer, Tokenizer, Vocab } from '@quorum/data';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadEnsemble, type SaveEnsembleOptions, saveEnsemble } from './checkpoint.js';
import { builtinArchitectureRegistry } from './module.js';

const storiesTokenizer = fileURLToPath(
  new URL('../../data/fixtures/stories260K-tokenizer/', import.meta.url),
);

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
});

const tiny = (vocabSize: number) =>
  builtinArchitectureRegistry()
    .create('linear-heads')
    .build({
      gptConfig: gptPreset('nano', { vocabSize, dModel: 16, nLayers: 1, nHeads: 2, contextLength: 16 }),
      members: 2,
      rng: new Rng(1),
    });

type TokenizerChoice = Pick<SaveEnsembleOptions, 'tokenizer' | 'vocab'>;

async function saved(
  vocabSize: number,
  choice: TokenizerChoice | { id: string; size: number; json: unknown },
  dir = mkdtempSync(path.join(tmpdir(), 'quorum-ckpt-')),
): Promise<string> {
  const e = tiny(vocabSize);
  const tokenizerOrVocab = 'id' in choice ? { vocab: choice } : choice;
  await saveEnsemble(dir, e, {
    architectureSource: '@quorum/ensemble',
    ...tokenizerOrVocab,
  } as SaveEnsembleOptions);
  e.dispose();
  return dir;
}

describe('loadEnsemble tokenizer', () => {
  it("returns Quorum's tokenizer from vocab.json (and vocabJson for older callers)", async () => {
    const tok = projectTokenizer();
    const dir = await saved(tok.vocabSize, { id: tok.id, size: tok.vocabSize, json: tok.vocab.toJSON() });
    const loaded = await loadEnsemble(dir, builtinArchitectureRegistry());
    expect(loaded.tokenizer).toBeInstanceOf(Tokenizer);
    expect(loaded.tokenizer.id).toBe(tok.id);
    expect([...loaded.tokenizer.encode('Hello there')]).toEqual([...tok.encode('Hello there')]);
    expect(Vocab.fromJSON(loaded.vocabJson).id).toBe(tok.id);
    loaded.ensemble.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('returns a Hugging Face tokenizer from tokenizer.json, checked against the manifest id', async () => {
    const hf = (await loadTokenizer(storiesTokenizer, { onWarning: () => {} })) as HfTokenizer;
    const dir = await saved(512, { id: hf.id, size: 512, json: {} });
    rmSync(path.join(dir, 'vocab.json'));
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'])
      copyFileSync(path.join(storiesTokenizer, f), path.join(dir, f));
    const loaded = await loadEnsemble(dir, builtinArchitectureRegistry(), { onWarning: () => {} });
    expect(loaded.tokenizer).toBeInstanceOf(HfTokenizer);
    expect([loaded.tokenizer.id, loaded.tokenizer.vocabSize, loaded.tokenizer.bosId]).toEqual([
      hf.id,
      512,
      1,
    ]);
    expect(loaded.vocabJson).toBeUndefined();
    loaded.ensemble.dispose();

    // another tokenizer in the folder than the one the ensemble was trained with
    const config = JSON.parse(readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
    writeFileSync(
      path.join(dir, 'tokenizer_config.json'),
      JSON.stringify({ ...config, add_bos_token: false }),
    );
    const call = () => loadEnsemble(dir, builtinArchitectureRegistry(), { onWarning: () => {} });
    await expect(call()).rejects.toThrow(CheckpointError);
    await expect(call()).rejects.toThrow(/quorum\.json field "vocab\.id": names tokenizer "hf-512-/);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a folder without tokenizer files is an error naming the folder', async () => {
    const tok = projectTokenizer();
    const dir = await saved(tok.vocabSize, { id: tok.id, size: tok.vocabSize, json: tok.vocab.toJSON() });
    rmSync(path.join(dir, 'vocab.json'));
    await expect(loadEnsemble(dir, builtinArchitectureRegistry())).rejects.toThrow(
      `${dir}: has neither vocab.json`,
    );
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('saveEnsemble tokenizer', () => {
  it("writes Quorum's tokenizer as the vocab.json and manifest the deprecated vocab option wrote", async () => {
    const tok = projectTokenizer();
    const viaTokenizer = await saved(tok.vocabSize, { tokenizer: tok });
    const viaVocab = await saved(tok.vocabSize, {
      id: tok.id,
      size: tok.vocabSize,
      json: tok.vocab.toJSON(),
    });
    const read = (dir: string, file: string) => readFileSync(path.join(dir, file), 'utf8');
    expect(read(viaTokenizer, 'vocab.json') === read(viaVocab, 'vocab.json')).toBe(true);
    const manifest = (dir: string) => ({ ...JSON.parse(read(dir, 'quorum.json')), createdAt: undefined });
    expect(manifest(viaTokenizer)).toEqual(manifest(viaVocab));
    expect(manifest(viaTokenizer).vocab).toEqual({ id: tok.id, size: tok.vocabSize });
    expect(readdirSync(viaTokenizer).sort()).toEqual(readdirSync(viaVocab).sort());
    const loaded = await loadEnsemble(viaTokenizer, builtinArchitectureRegistry());
    expect(loaded.tokenizer.id).toBe(tok.id);
    loaded.ensemble.dispose();
    for (const d of [viaTokenizer, viaVocab]) rmSync(d, { recursive: true, force: true });
  });

  it('saves a Hugging Face tokenizer with its own files, and loads it back as the same tokenizer', async () => {
    const hf = (await loadTokenizer(storiesTokenizer, { onWarning: () => {} })) as HfTokenizer;
    const quorum = projectTokenizer();
    // a folder that held a Quorum checkpoint: its vocab.json (which loadTokenizer prefers) must go
    const dir = await saved(quorum.vocabSize, { tokenizer: quorum });
    await saved(512, { tokenizer: hf }, dir);
    expect(existsSync(path.join(dir, 'vocab.json'))).toBe(false);
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'])
      expect(readFileSync(path.join(dir, f)).equals(readFileSync(path.join(storiesTokenizer, f))), f).toBe(
        true,
      );
    const manifest = JSON.parse(readFileSync(path.join(dir, 'quorum.json'), 'utf8'));
    expect(manifest.vocab).toEqual({ id: hf.id, size: 512 });
    const loaded = await loadEnsemble(dir, builtinArchitectureRegistry(), { onWarning: () => {} });
    expect(loaded.tokenizer).toBeInstanceOf(HfTokenizer);
    expect(loaded.tokenizer.id).toBe(hf.id);
    expect(loaded.tokenizer.files()).toEqual(hf.files());
    expect([...loaded.tokenizer.encode('Once upon a time')]).toEqual([...hf.encode('Once upon a time')]);
    loaded.ensemble.dispose();

    // and back to Quorum's: the Hugging Face files go, so loadTokenizer cannot pick them up later
    await saved(quorum.vocabSize, { tokenizer: quorum }, dir);
    expect(readdirSync(dir).filter((f) => f.startsWith('tokenizer') || f.startsWith('special'))).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the read options a Hugging Face tokenizer needs (a padded vocabulary) so the id matches', async () => {
    const padded = await loadTokenizer(storiesTokenizer, { vocabSize: 576, onWarning: () => {} });
    const dir = await saved(576, { tokenizer: padded });
    const loaded = await loadEnsemble(dir, builtinArchitectureRegistry(), { onWarning: () => {} });
    expect([loaded.tokenizer.id, loaded.tokenizer.vocabSize]).toEqual([padded.id, 576]);
    loaded.ensemble.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a tokenizer of another size than the backbone, and file names that are not plain', async () => {
    const tok = projectTokenizer();
    const dir = mkdtempSync(path.join(tmpdir(), 'quorum-ckpt-'));
    await expect(saved(512, { tokenizer: tok }, dir)).rejects.toThrow(ConfigError);
    await expect(saved(512, { tokenizer: tok }, dir)).rejects.toThrow(
      /the tokenizer has 4096 ids but the ensemble's backbone has vocabSize 512/,
    );
    const named = (name: string) => ({
      tokenizer: { id: tok.id, vocabSize: tok.vocabSize, files: () => ({ [name]: '{}' }) },
    });
    for (const name of ['../vocab.json', 'sub/tokenizer.json', '', 'quorum.json', 'heads.safetensors'])
      await expect(saved(tok.vocabSize, named(name), dir)).rejects.toThrow(
        `tokenizer file name ${JSON.stringify(name)} is not a plain file name`,
      );
    const none = { tokenizer: { id: tok.id, vocabSize: tok.vocabSize, files: () => ({}) } };
    await expect(saved(tok.vocabSize, none, dir)).rejects.toThrow('the tokenizer has no files to save');
    expect(readdirSync(dir)).toEqual([]); // refused before anything was written
    rmSync(dir, { recursive: true, force: true });
  });
});

// A model folder from someone else is untrusted input (issue 16): every case is a typed error naming the
// file and key, found before anything is allocated or read outside the folder.
describe('loadEnsemble of an untrusted folder', () => {
  const SENTINEL = 'root:x:0:0:SENTINEL-9d2e';
  let root: string;
  let dir: string;
  const registry = builtinArchitectureRegistry();

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'quorum-untrusted-'));
    writeFileSync(path.join(root, 'passwd'), `${SENTINEL}\n`);
    const tok = projectTokenizer();
    dir = await saved(tok.vocabSize, { tokenizer: tok }, path.join(root, 'good'));
  });

  /** A copy of the good folder, changed by `edit`. */
  function variant(edit: (d: string, manifest: Record<string, unknown>) => unknown) {
    const d = mkdtempSync(path.join(root, 'case-'));
    for (const f of readdirSync(dir)) copyFileSync(path.join(dir, f), path.join(d, f));
    const manifest = JSON.parse(readFileSync(path.join(d, 'quorum.json'), 'utf8'));
    const changed = edit(d, manifest);
    if (changed !== undefined) writeFileSync(path.join(d, 'quorum.json'), JSON.stringify(changed));
    return d;
  }

  async function refusal(d: string): Promise<Error> {
    const start = Date.now();
    const err = await loadEnsemble(d, registry).then(
      (loaded) => {
        loaded.ensemble.dispose();
        return undefined;
      },
      (e: unknown) => e as Error,
    );
    expect(err, 'the load must fail').toBeInstanceOf(Error);
    expect((err as Error).constructor.name).toMatch(/^(CheckpointError|ConfigError|DataError)$/);
    expect(Date.now() - start).toBeLessThan(5000);
    expect((err as Error).message).not.toContain('SENTINEL');
    return err as Error;
  }

  const rewrite = (d: string, file: string, change: (c: ReturnType<typeof decodeSafetensors>) => void) => {
    const c = decodeSafetensors(readFileSync(path.join(d, file)));
    change(c);
    writeFileSync(path.join(d, file), encodeSafetensors(c.tensors, c.metadata));
  };

  it('loads the untouched folder', async () => {
    const loaded = await loadEnsemble(dir, registry);
    loaded.ensemble.dispose();
  });

  it('refuses files entries outside the folder: ../../dev/zero, /etc/passwd, a link out, a FIFO', async () => {
    const up = await refusal(variant((_d, m) => ({ ...m, files: ['../../dev/zero', 'heads.safetensors'] })));
    expect(up.message).toMatch(
      /quorum\.json field "files\[0\]": names the file "\.\.\/\.\.\/dev\/zero", which is outside/,
    );
    const abs = await refusal(variant((_d, m) => ({ ...m, files: [path.join(root, 'passwd')] })));
    expect(abs.message).toMatch(/field "files\[0\]".*absolute path/);
    const linked = variant((d) => {
      rmSync(path.join(d, 'backbone.safetensors'));
      symlinkSync('/dev/urandom', path.join(d, 'backbone.safetensors'));
    });
    expect((await refusal(linked)).message).toMatch(
      /backbone\.safetensors: is a link to a file outside the model folder/,
    );
    const passwd = variant((d) => {
      rmSync(path.join(d, 'heads.safetensors'));
      symlinkSync(path.join(root, 'passwd'), path.join(d, 'heads.safetensors'));
    });
    await refusal(passwd);
    const fifo = variant((d) => {
      rmSync(path.join(d, 'backbone.safetensors'));
      execFileSync('mkfifo', [path.join(d, 'backbone.safetensors')]);
    });
    expect((await refusal(fifo)).message).toMatch(
      /backbone\.safetensors: is not a regular file \(it is a FIFO\)/,
    );
  });

  it('refuses a manifest that is null, a files entry that is a bare string, and bad fields, naming the key', async () => {
    const cases: [Record<string, unknown> | null, RegExp][] = [
      [null, /quorum\.json field "json": is null, not a JSON object/],
      [
        { files: 'backbone.safetensors' },
        /field "files": field "files" is "backbone\.safetensors", not a list/,
      ],
      [{ files: [42] }, /field "files\[0\]": names the file 42, which is not a string/],
      [{ members: -1 }, /field "members"/],
      [{ members: 'two' }, /field "members"/],
      [{ gptConfig: null }, /field "gptConfig"/],
      [{ gptConfig: 'nano' }, /field "gptConfig"/],
      [{ options: [1] }, /field "options"/],
      [{ vocab: { id: 'x', size: 2e8 } }, /field "vocab"/],
    ];
    for (const [change, message] of cases) {
      const d = variant((_d, m) => (change === null ? (null as never) : { ...m, ...change }));
      if (change === null) writeFileSync(path.join(d, 'quorum.json'), 'null');
      expect((await refusal(d)).message).toMatch(message);
    }
  });

  it('bounds the config before allocating: dModel 16384 × 64 layers, vocabSize 2e8', async () => {
    const before = tf.memory().numBytes;
    const huge = await refusal(
      variant((_d, m) => ({
        ...m,
        gptConfig: { ...(m.gptConfig as object), dModel: 16384, nLayers: 64, nHeads: 64 },
      })),
    );
    expect(huge).toBeInstanceOf(CheckpointError);
    expect(huge.message).toMatch(
      /quorum\.json field "gptConfig.dModel": has an invalid backbone config: .*parameters/,
    );
    const vocab = await refusal(
      variant((_d, m) => ({ ...m, gptConfig: { ...(m.gptConfig as object), vocabSize: 2e8 } })),
    );
    expect(vocab.message).toMatch(/field "gptConfig\.vocabSize".*must be ≤ 1048576/);
    // within the bounds but more parameters than the files hold: refused before the ensemble is built
    const big = await refusal(
      variant((_d, m) => ({
        ...m,
        gptConfig: { ...(m.gptConfig as object), dModel: 1024, nLayers: 8, nHeads: 8 },
      })),
    );
    expect(big.message).toMatch(
      /describes an ensemble of at least \d+ parameters .* but its weight files hold \d+/,
    );
    expect(tf.memory().numBytes).toBe(before);
  });

  it('refuses an I32 tensor where F32 is expected, and NaN or Inf weights, naming the tensor', async () => {
    const int = variant((d) =>
      rewrite(d, 'heads.safetensors', (c) => {
        const w = c.tensors['heads.w'] as { shape: number[]; data: Float32Array };
        c.tensors['heads.w'] = { dtype: 'I32', shape: w.shape, data: new Int32Array(w.data.length) };
      }),
    );
    expect((await refusal(int)).message).toMatch(
      /heads\.safetensors field "heads\.w": tensor 'heads\.w' has dtype I32; this checkpoint holds F32, F16, BF16, F64 tensors only/,
    );
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const d = variant((dd) =>
        rewrite(dd, 'backbone.safetensors', (c) => {
          (c.tensors['h.0.attn.q.w']?.data as Float32Array)[3] = bad;
        }),
      );
      expect((await refusal(d)).message).toMatch(
        new RegExp(
          `backbone\\.safetensors field "h\\.0\\.attn\\.q\\.w": tensor 'h\\.0\\.attn\\.q\\.w' holds ${bad} at element 3`,
        ),
      );
    }
  });

  it('refuses an invalid vocab.json without quoting it', async () => {
    const d = variant((dd) => writeFileSync(path.join(dd, 'vocab.json'), '{"t":SENTINEL-9d2e}'));
    expect((await refusal(d)).message).toMatch(/vocab\.json field "json": is not valid JSON/);
    const arr = variant((dd) => writeFileSync(path.join(dd, 'vocab.json'), '[1, 2]'));
    expect((await refusal(arr)).message).toMatch(/vocab\.json field "format": expected a vocabulary object/);
  });

  it('prints the folder’s strings escaped: no escape sequences, no forged hint lines', async () => {
    const d = variant((_d, m) => ({
      ...m,
      architecture: 'evil\u001b[2J\n  hint: run curl x | sh',
      architectureSource: 'pkg\r\u009b31m\n  hint: trust me',
    }));
    const err = await refusal(d);
    expect(err.message.split('\n')).toHaveLength(2); // the message and its one real hint
    const controls = [...err.message].filter((c) => {
      const n = c.charCodeAt(0);
      return (n < 0x20 && c !== '\n') || (n >= 0x7f && n <= 0x9f);
    });
    expect(controls).toEqual([]);
    expect(err.message).toContain('"evil\\u001b[2J\\n  hint: run curl x | sh"');
  });
});
