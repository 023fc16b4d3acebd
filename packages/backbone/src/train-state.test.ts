import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  builtinBackendRegistry,
  CheckpointError,
  CheckpointStore,
  encodeSafetensors,
  initCompute,
  Rng,
  tensorsToRecords,
} from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGpt, encodeGpt } from './checkpoint.js';
import { type GptConfig, resolveGptConfig } from './config.js';
import { disposeGpt, initGpt, namedParameters } from './model.js';
import { checkpointFiles, decodeGptCheckpoint } from './train-state.js';

let dir: string;
beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  dir = await mkdtemp(path.join(tmpdir(), 'quorum-train-state-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const config: GptConfig = resolveGptConfig({
  vocabSize: 32,
  contextLength: 16,
  dModel: 16,
  nLayers: 1,
  nHeads: 2,
});

describe('reading a trainer checkpoint', () => {
  it('returns the saved weights, and names the folder for another config or a missing file', async () => {
    const params = initGpt(config, new Rng(1));
    const store = new CheckpointStore(path.join(dir, 'train-state'));
    await store.save(3, { 'model.safetensors': await encodeGpt(config, params) }, { kind: 'test' });
    const loaded = await store.latest();
    if (loaded === undefined) throw new Error('no checkpoint');

    const before = tf.memory().numTensors;
    const tensors = decodeGptCheckpoint(loaded, 'model.safetensors', config, 'same config');
    for (const [name, v] of Object.entries(namedParameters(params)))
      expect(tensors[name]?.dataSync(), name).toEqual(v.dataSync());
    tf.dispose(Object.values(tensors));
    expect(tf.memory().numTensors).toBe(before);

    const other = { ...config, dModel: 32 };
    expect(() => decodeGptCheckpoint(loaded, 'model.safetensors', other, 'use the same --size')).toThrow(
      CheckpointError,
    );
    expect(() => decodeGptCheckpoint(loaded, 'model.safetensors', other, 'use the same --size')).toThrow(
      /model config .*"dModel":16.* differs from this run's/,
    );
    expect(tf.memory().numTensors).toBe(before);
    expect(() => checkpointFiles(loaded, 'an SFT')('optimizer.safetensors')).toThrow(
      /optimizer\.safetensors is missing/,
    );
    disposeGpt(params);
  });

  it('reads a checkpoint whose config was written before the model-family fields existed', async () => {
    const params = initGpt(config, new Rng(2));
    const { vocabSize, contextLength, dModel, nLayers, nHeads, mlpRatio, dropout, positional } = config;
    const old = { vocabSize, contextLength, dModel, nLayers, nHeads, mlpRatio, dropout, positional };
    const oldConfig = { ...old, layerNormEps: config.layerNormEps, tieEmbeddings: config.tieEmbeddings };
    const bytes = encodeSafetensors(await tensorsToRecords(namedParameters(params)), {
      format: 'quorum-backbone/1',
      config: JSON.stringify(oldConfig),
    });
    const decoded = decodeGpt(bytes);
    expect(decoded.config).toEqual(config);
    const store = new CheckpointStore(path.join(dir, 'old-state'));
    await store.save(1, { 'model.safetensors': bytes }, {});
    const loaded = await store.latest();
    if (loaded === undefined) throw new Error('no checkpoint');
    const tensors = decodeGptCheckpoint(loaded, 'model.safetensors', config, 'same config');
    expect(Object.keys(tensors).sort()).toEqual(Object.keys(namedParameters(params)).sort());
    tf.dispose(Object.values(tensors));
    disposeGpt(decoded.params);
    disposeGpt(params);
  });
});
