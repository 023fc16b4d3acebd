/**
 * The name and layout mapping in both directions: Hugging Face tensors → Quorum → Hugging Face gives back
 * every tensor exactly (the export direction is the inverse of the load direction), and NeoX's fused
 * query_key_value splits per head as transformers reads it.
 */

import { readFileSync } from 'node:fs';
import { resolveGptConfig } from '@quorum/backbone';
import { builtinBackendRegistry, initCompute, recordsToTensors } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { type HfFamily, hfModelConfig } from './config.js';
import { realFolder } from './files.js';
import { hfMapping } from './mapping.js';
import { indexHfWeights, readHfWeights } from './weights.js';

const fixture = (name: string): string => new URL(`../fixtures/${name}/`, import.meta.url).pathname;

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
});

describe.each(['gpt2', 'gpt-neox', 'llama', 'qwen2'])('the %s mapping', (name) => {
  it('maps every tensor to Quorum and back unchanged', async () => {
    const dir = fixture(name);
    const { family, config } = hfModelConfig(
      JSON.parse(readFileSync(`${dir}config.json`, 'utf8')),
      'config.json',
    );
    const mapping = hfMapping(family, config);
    const index = await indexHfWeights(await realFolder(dir), dir);
    const hf = recordsToTensors(await readHfWeights(index, Object.keys(mapping.hfShapes)));
    const before = tf.memory().numTensors;
    const quorum = mapping.toQuorum(hf);
    const back = mapping.toHf(quorum);
    expect(Object.keys(back).sort()).toEqual(Object.keys(hf).sort());
    for (const [n, t] of Object.entries(hf)) {
      expect(back[n]?.shape, n).toEqual(t.shape);
      expect(Array.from(back[n]?.dataSync() ?? []), n).toEqual(Array.from(t.dataSync()));
    }
    tf.dispose([...Object.values(quorum), ...Object.values(back)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(Object.values(hf));
  });
});

describe('layouts', () => {
  const config = resolveGptConfig({
    vocabSize: 4,
    contextLength: 4,
    dModel: 4,
    nLayers: 1,
    nHeads: 2,
    positional: 'rope',
    tieEmbeddings: false,
  });
  const gpt2 = resolveGptConfig({ ...config, positional: 'learned' });
  const weights = (family: HfFamily): Record<string, tf.Tensor> =>
    Object.fromEntries(
      Object.entries(hfMapping(family, family === 'gpt2' ? gpt2 : config).hfShapes).map(([n, shape]) => [
        n,
        tf.reshape(
          tf.range(
            0,
            shape.reduce((a, b) => a * b, 1),
          ),
          [...shape],
        ),
      ]),
    );

  it("splits NeoX's query_key_value per head: rows [H, 3, Dh], each head's q, k, v in turn", () => {
    const hf = weights('gpt_neox');
    const q = hfMapping('gpt_neox', config).toQuorum(hf);
    // row r of the fused [12, 4] weight holds 4r … 4r+3; head h's q rows are 6h, 6h+1, its k rows 6h+2, 6h+3
    const rowsOf = (t: tf.Tensor | undefined): number[] =>
      (tf.transpose(t as tf.Tensor).arraySync() as number[][]).map((r) => (r[0] as number) / 4);
    expect(rowsOf(q['h.0.attn.q.w'])).toEqual([0, 1, 6, 7]);
    expect(rowsOf(q['h.0.attn.k.w'])).toEqual([2, 3, 8, 9]);
    expect(rowsOf(q['h.0.attn.v.w'])).toEqual([4, 5, 10, 11]);
    expect(Array.from(q['h.0.attn.k.b']?.dataSync() ?? [])).toEqual([2, 3, 8, 9]);
    tf.dispose([...Object.values(hf), ...Object.values(q)]);
  });

  it("splits GPT-2's c_attn into q | k | v columns and keeps Conv1D [in, out]; transposes nn.Linear", () => {
    const hf = weights('gpt2');
    const q = hfMapping('gpt2', gpt2).toQuorum(hf);
    // row 1 of c_attn [4, 12] holds 12 … 23; k is its columns 4 … 7
    expect(((q['h.0.attn.k.w'] as tf.Tensor).arraySync() as number[][])[1]).toEqual([16, 17, 18, 19]);
    expect(q['h.0.mlp.fc.w']?.shape).toEqual([4, 16]);
    expect(hfMapping('gpt2', gpt2).hfShapes['transformer.h.0.mlp.c_fc.weight']).toEqual([4, 16]);
    expect(
      hfMapping('llama', resolveGptConfig({ ...config, mlp: 'swiglu', norm: 'rmsnorm' })).hfShapes[
        'model.layers.0.mlp.up_proj.weight'
      ],
    ).toEqual([16, 4]);
    const bare = hfMapping('gpt2', gpt2, { gpt2Prefix: '' });
    expect(Object.keys(bare.hfShapes)).toContain('h.0.attn.c_attn.weight');
    expect(bare.isIgnorable('h.1.attn.masked_bias')).toBe(true);
    expect(bare.isIgnorable('h.1.attn.c_attn.weight')).toBe(false);
    tf.dispose([...Object.values(hf), ...Object.values(q)]);
  });
});
