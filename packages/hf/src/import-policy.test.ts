/**
 * `importPolicy` on real weights (llama2.c's stories260K): the Quorum policy folder it writes loads with
 * `loadPolicy` and gives the same token log-probs as the Hugging Face folder itself, keeps the tokenizer
 * files and records where it came from; a non-empty output or one inside the source is refused.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { disposeGpt, loadPolicy, tokenLogProbs } from '@quorum/backbone';
import { builtinBackendRegistry, ConfigError, initCompute } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportModel, quorumFolderKind } from './export-any.js';
import { importPolicy } from './import-policy.js';
import { loadHfModel } from './load.js';

const stories = new URL('../models/stories260K/', import.meta.url).pathname;
const tmp = mkdtempSync(path.join(tmpdir(), 'quorum-import-'));

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('importPolicy (stories260K)', () => {
  it('writes a policy folder that scores tokens exactly as the Hugging Face folder does', async () => {
    const out = path.join(tmp, 'policy');
    const warnings: string[] = [];
    const imported = await importPolicy(stories, out, { onWarning: (m) => warnings.push(m) });
    expect(imported.source.family).toBe('llama');
    const manifest = JSON.parse(readFileSync(path.join(out, 'quorum.json'), 'utf8'));
    expect(manifest.kind).toBe('quorum-policy');
    expect(manifest.training).toMatchObject({ kind: 'import', from: 'huggingface', modelType: 'llama' });
    expect(manifest.tokenizerFiles).toContain('tokenizer.json');
    for (const name of manifest.tokenizerFiles as string[])
      expect(existsSync(path.join(out, name))).toBe(true);
    expect(await quorumFolderKind(out)).toBe('policy');

    const policy = await loadPolicy(out);
    const hf = await loadHfModel(stories);
    expect(policy.config).toEqual(hf.config);
    const ids = tf.tensor2d([[1, 403, 407, 261, 378, 426, 270, 2]], [1, 8], 'int32'); // [1, 8]
    const mask = tf.onesLike(ids) as tf.Tensor2D; // [1, 8]
    const a = tokenLogProbs(policy.params, policy.config, ids, mask); // [1, 7]
    const b = tokenLogProbs(hf.params, hf.config, ids, mask); // [1, 7]
    expect(Array.from(await a.data())).toEqual(Array.from(await b.data()));
    tf.dispose([ids, mask, a, b]);
    disposeGpt(policy.params);
    disposeGpt(hf.params);
  });

  it('refuses a non-empty output folder unless overwrite, and an output inside the model folder', async () => {
    const out = path.join(tmp, 'taken');
    await mkdir(out, { recursive: true });
    await writeFile(path.join(out, 'keep.txt'), 'mine');
    await expect(importPolicy(stories, out, { onWarning: () => {} })).rejects.toThrow(/not empty|overwrite/);
    expect(readFileSync(path.join(out, 'keep.txt'), 'utf8')).toBe('mine');
    await importPolicy(stories, out, { overwrite: true, onWarning: () => {} });
    expect(existsSync(path.join(out, 'keep.txt'))).toBe(false);
    expect(existsSync(path.join(out, 'backbone.safetensors'))).toBe(true);

    const inside = importPolicy(stories, path.join(stories, 'quorum-out'), { onWarning: () => {} });
    await expect(inside).rejects.toBeInstanceOf(ConfigError);
    await expect(inside).rejects.toThrow(/inside/);
    expect(existsSync(path.join(stories, 'quorum-out'))).toBe(false);
  });
});

describe('exportModel', () => {
  it('exports an imported policy back as LlamaForCausalLM', async () => {
    const policy = path.join(tmp, 'policy');
    if (!existsSync(policy)) await importPolicy(stories, policy, { onWarning: () => {} });
    const out = path.join(tmp, 'hf-back');
    const result = await exportModel(policy, out, { onWarning: () => {} });
    expect(result.kind).toBe('policy');
    const config = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(config.architectures).toEqual(['LlamaForCausalLM']);
    const back = await loadHfModel(out);
    const hf = await loadHfModel(stories);
    expect(back.config).toEqual(hf.config);
    disposeGpt(back.params);
    disposeGpt(hf.params);
  });

  it('names the folder and the field for a folder that is not a Quorum model', async () => {
    await expect(exportModel(stories, path.join(tmp, 'x'))).rejects.toThrow(/has no quorum\.json/);
    const odd = path.join(tmp, 'odd');
    await mkdir(odd, { recursive: true });
    await writeFile(path.join(odd, 'quorum.json'), JSON.stringify({ kind: 'something-else' }));
    await expect(quorumFolderKind(odd)).rejects.toThrow(/kind "something-else".*cannot export/);
  });
});
