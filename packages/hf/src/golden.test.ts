/**
 * Golden logits: tools/parity/hf_golden.py writes tiny random checkpoints under the exact Hugging Face
 * tensor names and config keys (GPT-2 F32 with its mask buffers, GPT-NeoX F16, Llama BF16 in two shards,
 * Qwen2 F32) and the logits of a plain-PyTorch forward that follows transformers' modeling code. Loaded
 * through loadHfModel, the backbone must match them to 1e-4 (max |a − b| ≤ 1e-4 · max |b|), each row alone
 * and in left- and right-padded batches.
 */
import { readFileSync } from 'node:fs';
import { disposeGpt, gptHidden, lmLogits } from '@quorum/backbone';
import { builtinBackendRegistry, initCompute } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadHfModel } from './load.js';

interface Golden {
  dtype: string;
  ids: number[][];
  logits: number[][][];
}

const fixture = (name: string): string => new URL(`../fixtures/${name}/`, import.meta.url).pathname;

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
});

function relError(actual: ArrayLike<number>, expected: readonly number[]): number {
  let diff = 0;
  let scale = 0;
  expected.forEach((e, i) => {
    diff = Math.max(diff, Math.abs((actual[i] as number) - e));
    scale = Math.max(scale, Math.abs(e));
  });
  return diff / scale;
}

describe.each([
  ['gpt2', 'gpt2', 'F32'],
  ['gpt-neox', 'gpt_neox', 'F16'],
  ['llama', 'llama', 'BF16'],
  ['qwen2', 'qwen2', 'F32'],
])('the %s checkpoint', (name, modelType, dtype) => {
  const golden = JSON.parse(readFileSync(`${fixture(name)}golden.json`, 'utf8')) as Golden;

  it(`loads (${dtype}) and matches PyTorch's logits to 1e-4, alone and in padded batches`, async () => {
    const model = await loadHfModel(fixture(name));
    expect(model.source.modelType).toBe(modelType);
    expect(Object.keys(model.source.dtypes)).toEqual([dtype]);
    const { config, params } = model;
    const before = tf.memory().numTensors;
    const V = config.vocabSize;
    const rows = golden.ids;
    const T = Math.max(...rows.map((r) => r.length));
    for (const padding of ['none', 'left', 'right'] as const) {
      const batch = padding === 'none' ? rows.map((r) => [r]) : [rows];
      let at = 0;
      for (const group of batch) {
        const width = padding === 'none' ? (group[0] as number[]).length : T;
        const pad = (r: number[]): number[] => Array<number>(width - r.length).fill(0);
        const ids = group.map((r) => (padding === 'right' ? [...r, ...pad(r)] : [...pad(r), ...r]));
        const mask = group.map((r) =>
          padding === 'right' ? [...r.map(() => 1), ...pad(r)] : [...pad(r), ...r.map(() => 1)],
        );
        const logits = tf.tidy(() => {
          const m = tf.tensor2d(mask, [group.length, width]);
          return lmLogits(
            params,
            gptHidden(params, config, tf.tensor2d(ids, [group.length, width], 'int32'), m),
          );
        });
        const data = logits.dataSync();
        logits.dispose();
        group.forEach((r, b) => {
          const offset = padding === 'right' ? 0 : width - r.length;
          const actual = r.flatMap((_, t) =>
            Array.from(data.subarray((b * width + offset + t) * V, (b * width + offset + t + 1) * V)),
          );
          const expected = (golden.logits[at + b] as number[][]).flat();
          expect(relError(actual, expected), `${padding} padding, row ${at + b}`).toBeLessThan(1e-4);
        });
        at += group.length;
      }
    }
    expect(tf.memory().numTensors).toBe(before);
    disposeGpt(params);
  });
});
