import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { disposeGpt, type GptParams, gptHidden, initGpt, resolveGptConfig } from '@quorum/backbone';
import {
  builtinBackendRegistry,
  CheckpointError,
  ConfigError,
  initCompute,
  Rng,
  readSafetensors,
  writeSafetensors,
} from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disposeLoraAdapters, initLoraAdapters, type LoraAdapters, loraLinearHook } from './adapters.js';
import { ADAPTERS_FILE, ADAPTERS_FORMAT, loadAdapters, memberHeadName, saveAdapters } from './checkpoint.js';
import { resolveLoraConfig } from './config.js';

const gpt = resolveGptConfig({ vocabSize: 50, contextLength: 8, dModel: 16, nLayers: 2, nHeads: 2 });
const lora = resolveLoraConfig({ rank: 4, alpha: 8, targets: ['q', 'v', 'fc'], layers: { top: 1 } });
const K = 3;
let dir: string;
let base: GptParams;
let adapters: LoraAdapters;
let heads: Record<string, tf.Tensor>;

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  dir = await mkdtemp(join(tmpdir(), 'quorum-lora-'));
  base = initGpt(gpt, new Rng(7));
  adapters = initLoraAdapters(gpt, lora, K, new Rng(1));
  const rng = new Rng(2);
  for (const s of adapters.sites) {
    const t = tf.tensor(rng.normalArray(s.b.size, 0.2), s.b.shape);
    s.b.assign(t);
    t.dispose();
  }
  heads = {};
  for (let m = 0; m < K; m++) {
    heads[memberHeadName(m, 'w')] = tf.tensor(rng.normalArray(16, 0.1), [16, 1]);
    heads[memberHeadName(m, 'b')] = tf.tensor([m + 0.5], [1]);
  }
});

afterAll(async () => {
  disposeGpt(base);
  disposeLoraAdapters(adapters);
  tf.dispose(Object.values(heads));
  await rm(dir, { recursive: true, force: true });
});

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] as number);
}

describe('saveAdapters / loadAdapters', () => {
  it('round-trips every member’s adapter together with its head', async () => {
    const file = join(dir, ADAPTERS_FILE);
    await saveAdapters(file, adapters, heads, { base: gpt, extra: { step: '42' } });
    const { tensors, metadata } = await readSafetensors(file);
    expect(metadata.format).toBe(ADAPTERS_FORMAT);
    expect(metadata.members).toBe('3');
    expect(JSON.parse(metadata.layers as string)).toEqual({ top: 1 });
    expect(JSON.parse(metadata.base as string)).toMatchObject({ dModel: 16, nLayers: 2, vocabSize: 50 });
    expect(tensors['member-2.h.1.attn.q.lora_A']?.shape).toEqual([16, 4]);
    expect(tensors['member-0.h.1.mlp.fc.lora_B']?.shape).toEqual([4, 64]);
    expect(tensors['member-1.head.w']?.shape).toEqual([16, 1]);
    expect(Object.keys(tensors)).toHaveLength(K * 3 * 2 + K * 2);

    const before = tf.memory().numTensors;
    const loaded = await loadAdapters(file, gpt);
    expect(loaded.adapters.members).toBe(K);
    expect(loaded.adapters.config).toEqual(lora);
    expect(loaded.adapters.firstLayer).toBe(1);
    expect(loaded.extra).toEqual({ step: '42' });
    loaded.adapters.sites.forEach((s, i) => {
      const o = adapters.sites[i];
      expect({ layer: s.layer, module: s.module }).toEqual({ layer: o?.layer, module: o?.module });
      expect(maxAbsDiff(s.a, o?.a as tf.Tensor)).toBe(0);
      expect(maxAbsDiff(s.b, o?.b as tf.Tensor)).toBe(0);
    });
    expect(Object.keys(loaded.heads).sort()).toEqual(Object.keys(heads).sort());
    for (const [name, t] of Object.entries(heads))
      expect(maxAbsDiff(loaded.heads[name] as tf.Tensor, t)).toBe(0);

    // the loaded adapters compute the same ensemble forward
    const ids = tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32');
    const mask = tf.ones([1, 4], 'int32') as tf.Tensor2D;
    const run = (a: LoraAdapters): tf.Tensor3D =>
      gptHidden(base, gpt, ids, mask, {
        linearHook: loraLinearHook(a),
        expand: { members: K, atLayer: a.firstLayer },
      });
    const x = run(adapters);
    const y = run(loaded.adapters);
    expect(maxAbsDiff(x, y)).toBe(0);
    tf.dispose([ids, mask, x, y]);

    disposeLoraAdapters(loaded.adapters);
    tf.dispose(Object.values(loaded.heads));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses to save an adapter without its head', async () => {
    const file = join(dir, 'no-head.safetensors');
    const partial = { ...heads };
    delete partial[memberHeadName(1, 'w')];
    await expect(saveAdapters(file, adapters, partial, { base: gpt })).rejects.toThrow(ConfigError);
    await expect(saveAdapters(file, adapters, partial, { base: gpt })).rejects.toThrow(/"member-1\.head\.w"/);
    const stray = { ...heads, 'member-3.head.w': heads[memberHeadName(0, 'w')] as tf.Tensor };
    await expect(saveAdapters(file, adapters, stray, { base: gpt })).rejects.toThrow(/member-3\.head\.w/);
  });

  it('rejects a file whose heads are missing, naming them', async () => {
    const good = join(dir, 'good.safetensors');
    await saveAdapters(good, adapters, heads, { base: gpt });
    const { tensors, metadata } = await readSafetensors(good);
    delete tensors['member-2.head.w'];
    delete tensors['member-2.head.b'];
    const bad = join(dir, 'lost-head.safetensors');
    await writeSafetensors(bad, tensors, metadata);
    const before = tf.memory().numTensors;
    await expect(loadAdapters(bad, gpt)).rejects.toThrow(CheckpointError);
    await expect(loadAdapters(bad, gpt)).rejects.toThrow(/missing "member-2\.head\.w", "member-2\.head\.b"/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects adapters built for another base, naming the differing fields', async () => {
    const file = join(dir, 'base.safetensors');
    await saveAdapters(file, adapters, heads, { base: gpt });
    const wider = resolveGptConfig({ ...gpt, dModel: 32 });
    const deeper = resolveGptConfig({ ...gpt, nLayers: 3 });
    const before = tf.memory().numTensors;
    await expect(loadAdapters(file, wider)).rejects.toThrow(CheckpointError);
    await expect(loadAdapters(file, wider)).rejects.toThrow(/need dModel 16.*this base has dModel 32/);
    await expect(loadAdapters(file, deeper)).rejects.toThrow(/nLayers/);
    await expect(loadAdapters(file, resolveGptConfig({ ...gpt, vocabSize: 51 }))).rejects.toThrow(
      /vocabSize/,
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects missing adapter tensors, wrong shapes, foreign files and missing files', async () => {
    const good = join(dir, 'good2.safetensors');
    await saveAdapters(good, adapters, heads, { base: gpt });
    const { tensors, metadata } = await readSafetensors(good);

    const noA = { ...tensors };
    delete noA['member-1.h.1.attn.v.lora_A'];
    await writeSafetensors(join(dir, 'no-a.safetensors'), noA, metadata);
    await expect(loadAdapters(join(dir, 'no-a.safetensors'), gpt)).rejects.toThrow(
      /member-1\.h\.1\.attn\.v\.lora_A/,
    );

    await writeSafetensors(join(dir, 'rank.safetensors'), tensors, { ...metadata, rank: '2' });
    await expect(loadAdapters(join(dir, 'rank.safetensors'), gpt)).rejects.toThrow(
      /shape \[16, 4\], expected \[16, 2\]/,
    );

    await writeSafetensors(join(dir, 'foreign.safetensors'), tensors, {});
    await expect(loadAdapters(join(dir, 'foreign.safetensors'), gpt)).rejects.toThrow(/not an adapters file/);

    await expect(loadAdapters(join(dir, 'absent.safetensors'), gpt)).rejects.toThrow(CheckpointError);
  });
});
