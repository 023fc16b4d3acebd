// A policy folder stores its tokenizer's files as text (the backbone knows no tokenizer) and reports them.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { builtinBackendRegistry, CheckpointError, ConfigError, initCompute, Rng } from '@quorum/core';
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
