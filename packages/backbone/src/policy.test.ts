// A policy folder stores its tokenizer's files as text (the backbone knows no tokenizer) and reports them.
import { execFileSync } from 'node:child_process';
import {
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
import {
  builtinBackendRegistry,
  CheckpointError,
  ConfigError,
  decodeSafetensors,
  encodeSafetensors,
  initCompute,
  Rng,
} from '@quorum/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GptConfig, resolveGptConfig } from './config.js';
import { disposeGpt, type GptParams, initGpt, namedParameters } from './model.js';
import { loadPolicy, savePolicy } from './policy.js';

const config: GptConfig = resolveGptConfig({
  vocabSize: 32,
  contextLength: 16,
  dModel: 16,
  nLayers: 1,
  nHeads: 2,
});
let params: GptParams;
const temps: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(path.join(tmpdir(), 'quorum-policy-'));
  temps.push(dir);
  return dir;
};

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  params = initGpt(config, new Rng(1));
});
afterAll(() => {
  disposeGpt(params);
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

// Stand-ins for what @quorum/data's tokenizer.files() gives (the text is stored as is).
const hfFiles = {
  'tokenizer.json': '{"model": {"type": "BPE"},\n "added_tokens": []}\n',
  'tokenizer_config.json': '{ "eos_token": "</s>" }',
  'special_tokens_map.json': '{"eos_token":"</s>"}',
};
const vocabJson = { format: 'quorum-vocab', tokens: [1, 2, 3] };
const vocab = { id: 'tok-32', size: 32 };

describe('policy folders and their tokenizer files', () => {
  it('writes the tokenizer files byte for byte, lists them, and loads the weights back', async () => {
    const dir = tempDir();
    const manifest = await savePolicy(dir, { config, params, vocab, tokenizerFiles: hfFiles });
    expect(manifest.tokenizerFiles).toEqual(Object.keys(hfFiles));
    for (const [name, text] of Object.entries(hfFiles))
      expect(readFileSync(path.join(dir, name), 'utf8') === text, name).toBe(true);
    expect(existsSync(path.join(dir, 'vocab.json'))).toBe(false);
    const loaded = await loadPolicy(dir);
    expect(loaded.tokenizerFiles).toEqual(Object.keys(hfFiles));
    expect(loaded.vocabJson).toBeUndefined();
    expect(loaded.manifest.vocab).toEqual(vocab);
    const a = namedParameters(params);
    for (const [name, v] of Object.entries(namedParameters(loaded.params)))
      expect(Array.from(v.dataSync()), name).toEqual(Array.from((a[name] as typeof v).dataSync()));
    disposeGpt(loaded.params);
  });

  it('keeps the deprecated vocab.json option, and reads folders written before tokenizerFiles', async () => {
    const dir = tempDir();
    await savePolicy(dir, { config, params, vocab: { ...vocab, json: vocabJson } });
    expect(readFileSync(path.join(dir, 'vocab.json'), 'utf8')).toBe(JSON.stringify(vocabJson));
    const loaded = await loadPolicy(dir);
    expect([loaded.tokenizerFiles, loaded.vocabJson]).toEqual([['vocab.json'], vocabJson]);
    disposeGpt(loaded.params);

    // an older folder: quorum.json without tokenizerFiles, beside vocab.json
    const manifestFile = path.join(dir, 'quorum.json');
    const { tokenizerFiles: _, ...old } = JSON.parse(readFileSync(manifestFile, 'utf8'));
    writeFileSync(manifestFile, JSON.stringify(old));
    const legacy = await loadPolicy(dir);
    expect([legacy.tokenizerFiles, legacy.vocabJson]).toEqual([['vocab.json'], vocabJson]);
    disposeGpt(legacy.params);
    rmSync(path.join(dir, 'vocab.json'));
    await expect(loadPolicy(dir)).rejects.toThrow(CheckpointError);
    await expect(loadPolicy(dir)).rejects.toThrow(/lists tokenizer file vocab\.json, which is missing/);
  });

  it("removes the previous save's tokenizer files that the new tokenizer does not have", async () => {
    const dir = tempDir();
    await savePolicy(dir, { config, params, vocab: { ...vocab, json: vocabJson } });
    await savePolicy(dir, { config, params, vocab, tokenizerFiles: hfFiles });
    expect(readdirSync(dir).sort()).toEqual(
      ['backbone.safetensors', 'quorum.json', ...Object.keys(hfFiles)].sort(),
    );
    await savePolicy(dir, {
      config,
      params,
      vocab,
      tokenizerFiles: { 'vocab.json': JSON.stringify(vocabJson) },
    });
    expect(readdirSync(dir).sort()).toEqual(['backbone.safetensors', 'quorum.json', 'vocab.json']);
  });

  it('refuses file names that are not plain, no files, and a tokenizer of another size', async () => {
    const dir = tempDir();
    for (const name of ['../tokenizer.json', 'sub/tokenizer.json', 'quorum.json', 'backbone.safetensors'])
      await expect(
        savePolicy(dir, { config, params, vocab, tokenizerFiles: { [name]: '{}' } }),
      ).rejects.toThrow(`tokenizer file name ${JSON.stringify(name)} is not a plain file name`);
    await expect(savePolicy(dir, { config, params, vocab, tokenizerFiles: {} })).rejects.toThrow(ConfigError);
    await expect(
      savePolicy(dir, { config, params, vocab: { id: 'x', size: 64 }, tokenizerFiles: hfFiles }),
    ).rejects.toThrow('the tokenizer has 64 ids but the policy has vocabSize 32');
    expect(readdirSync(dir)).toEqual([]);

    await savePolicy(dir, { config, params, vocab, tokenizerFiles: hfFiles });
    const manifestFile = path.join(dir, 'quorum.json');
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
    writeFileSync(manifestFile, JSON.stringify({ ...manifest, tokenizerFiles: ['../../etc/passwd'] }));
    await expect(loadPolicy(dir)).rejects.toThrow(
      /field "tokenizerFiles" must list the tokenizer's file names/,
    );
  });
});

// A policy folder from someone else is untrusted input (issue 16).
describe('loadPolicy of an untrusted folder', () => {
  const SENTINEL = 'SENTINEL-c0ffee';
  async function folder(): Promise<string> {
    const dir = tempDir();
    await savePolicy(dir, { config, params, vocab: { id: 'v', size: 32 }, tokenizerFiles: hfFiles });
    return dir;
  }
  async function refusal(dir: string): Promise<CheckpointError> {
    const start = Date.now();
    const err = await loadPolicy(dir).then(
      (p) => {
        disposeGpt(p.params);
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CheckpointError);
    expect(Date.now() - start).toBeLessThan(3000);
    expect((err as Error).message).not.toContain(SENTINEL);
    return err as CheckpointError;
  }
  const manifestOf = (dir: string) => JSON.parse(readFileSync(path.join(dir, 'quorum.json'), 'utf8'));
  const weights = (dir: string) => path.join(dir, 'backbone.safetensors');
  const rewrite = (dir: string, change: (c: ReturnType<typeof decodeSafetensors>) => void) => {
    const c = decodeSafetensors(readFileSync(weights(dir)));
    change(c);
    writeFileSync(weights(dir), encodeSafetensors(c.tensors, c.metadata));
  };

  it('refuses a quorum.json that is null or not JSON, without quoting it', async () => {
    const dir = await folder();
    writeFileSync(path.join(dir, 'quorum.json'), 'null');
    expect((await refusal(dir)).message).toMatch(/quorum\.json field "json": is null, not a JSON object/);
    writeFileSync(path.join(dir, 'quorum.json'), `{"kind": ${SENTINEL}}`);
    expect((await refusal(dir)).message).toMatch(/quorum\.json field "json": is not valid JSON/);
  });

  it('refuses tokenizerFiles outside the folder and a backbone that is a FIFO or a link to /dev/zero', async () => {
    const dir = await folder();
    writeFileSync(
      path.join(dir, 'quorum.json'),
      JSON.stringify({ ...manifestOf(dir), tokenizerFiles: ['../../etc/passwd'] }),
    );
    expect((await refusal(dir)).message).toMatch(/field "tokenizerFiles"/);
    const fifo = await folder();
    rmSync(weights(fifo));
    execFileSync('mkfifo', [weights(fifo)]);
    expect((await refusal(fifo)).message).toMatch(
      /backbone\.safetensors: is not a regular file \(it is a FIFO\)/,
    );
    const zero = await folder();
    rmSync(weights(zero));
    symlinkSync('/dev/zero', weights(zero));
    expect((await refusal(zero)).message).toMatch(/outside the model folder/);
  });

  it('bounds the config (quorum.json and the weights metadata) before allocating', async () => {
    const dir = await folder();
    const m = manifestOf(dir);
    writeFileSync(
      path.join(dir, 'quorum.json'),
      JSON.stringify({ ...m, gptConfig: { ...m.gptConfig, dModel: 16384, nLayers: 64, nHeads: 64 } }),
    );
    expect((await refusal(dir)).message).toMatch(/field "gptConfig.dModel": has an invalid model config/);
    const meta = await folder();
    rewrite(meta, (c) => {
      c.metadata.config = JSON.stringify({ ...config, dModel: 16384, nLayers: 64, nHeads: 64 });
    });
    expect((await refusal(meta)).message).toMatch(/backbone\.safetensors field "config\.dModel"/);
    // a config within the bounds whose tensors the file does not hold: refused from the header alone
    const shape = await folder();
    rewrite(shape, (c) => {
      c.metadata.config = JSON.stringify({ ...config, dModel: 1024, nHeads: 8 });
    });
    expect((await refusal(shape)).message).toMatch(
      /tensor "wte" has shape \[32, 16\], the config in its metadata needs \[32, 1024\]/,
    );
  });

  it('refuses an I32 tensor, and NaN or Inf weights, naming the tensor', async () => {
    const dir = await folder();
    rewrite(dir, (c) => {
      const w = c.tensors.wte as { shape: number[]; data: Float32Array };
      c.tensors.wte = { dtype: 'I32', shape: w.shape, data: new Int32Array(w.data.length) };
    });
    expect((await refusal(dir)).message).toMatch(/field "wte": tensor 'wte' has dtype I32/);
    const nan = await folder();
    rewrite(nan, (c) => {
      (c.tensors['ln_f.g']?.data as Float32Array)[1] = Number.NaN;
    });
    expect((await refusal(nan)).message).toMatch(/field "ln_f\.g": tensor 'ln_f\.g' holds NaN at element 1/);
  });

  it('refuses an invalid vocab.json with a typed error instead of a SyntaxError', async () => {
    const dir = tempDir();
    await savePolicy(dir, { config, params, vocab: { id: 'v', size: 32, json: { a: 1 } } });
    writeFileSync(path.join(dir, 'vocab.json'), `{${SENTINEL}`);
    expect((await refusal(dir)).message).toMatch(/vocab\.json field "json": is not valid JSON/);
  });

  it('escapes the strings it prints (kind)', async () => {
    const dir = await folder();
    writeFileSync(
      path.join(dir, 'quorum.json'),
      JSON.stringify({ ...manifestOf(dir), kind: 'x\u001b[2J\n  hint: run this' }),
    );
    const err = await refusal(dir);
    expect(err.message.split('\n')).toHaveLength(2);
    expect(err.message).toContain('kind is "x\\u001b[2J\\n  hint: run this"');
  });
});
