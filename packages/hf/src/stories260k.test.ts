/**
 * Real pretrained weights: Karpathy's llama2.c stories260K (models/stories260K, MIT) through loadHfModel and
 * the backbone. Greedy decoding from BOS must reproduce llama2.c's own expected text exactly, and the model's
 * loss on TinyStories-like sentences must be far below a random initialisation's.
 *
 * The ids are turned into text with a minimal decoder of tokenizer.json's vocabulary (its decoder is
 * Replace ▁ → space, ByteFallback for <0xNN>, Strip one leading space), kept here so the test depends on no
 * tokenizer library.
 */
import { readFileSync } from 'node:fs';
import { disposeGpt, generate, initGpt, tokenLogProbs } from '@quorum/backbone';
import { builtinBackendRegistry, initCompute, Rng } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadHfModel } from './load.js';

const dir = new URL('../models/stories260K/', import.meta.url).pathname;

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
});

function decoder(): (ids: readonly number[]) => string {
  const vocab = (
    JSON.parse(readFileSync(`${dir}tokenizer.json`, 'utf8')) as { model: { vocab: Record<string, number> } }
  ).model.vocab;
  const pieces: string[] = [];
  for (const [piece, id] of Object.entries(vocab)) pieces[id] = piece;
  return (ids) => {
    const bytes: number[] = [];
    for (const id of ids) {
      const piece = pieces[id] as string;
      const byte = /^<0x([0-9A-F]{2})>$/.exec(piece);
      if (byte !== null) bytes.push(Number.parseInt(byte[1] as string, 16));
      else bytes.push(...new TextEncoder().encode(piece.replaceAll('▁', ' ')));
    }
    const text = new TextDecoder().decode(new Uint8Array(bytes));
    return text.startsWith(' ') ? text.slice(1) : text;
  };
}

describe('stories260K (llama2.c, real weights)', () => {
  it('loads as a Llama model with grouped-query attention and SwiGLU', async () => {
    const model = await loadHfModel(dir);
    expect(model.config).toMatchObject({
      vocabSize: 512,
      contextLength: 512,
      dModel: 64,
      nLayers: 5,
      nHeads: 8,
      nKvHeads: 4,
      headDim: 8,
      mlp: 'swiglu',
      mlpHidden: 172,
      norm: 'rmsnorm',
      positional: 'rope',
      ropeTheta: 10000,
      attnBias: 'none',
      mlpBias: false,
      tieEmbeddings: true,
    });
    expect(model.generation).toEqual({ bosTokenId: 1, eosTokenIds: [2], padTokenId: undefined });
    expect(model.source).toMatchObject({ modelType: 'llama', family: 'llama', dtypes: { F32: 47 } });
    disposeGpt(model.params);
  });

  it('decodes 200 tokens greedily from BOS exactly as llama2.c does', async () => {
    const model = await loadHfModel(dir);
    const before = tf.memory().numTensors;
    const out = generate(model.params, model.config, [[1]], { maxNewTokens: 200, temperature: 0 });
    expect(tf.memory().numTensors).toBe(before);
    expect(out.tokens[0]).toHaveLength(200);
    const expected = readFileSync(`${dir}checks/greedy-200-from-bos.txt`, 'utf8');
    expect(decoder()(out.tokens[0] as number[])).toBe(expected);
    disposeGpt(model.params);
  });

  it('has a loss on TinyStories-like sentences far below a random initialisation', async () => {
    const model = await loadHfModel(dir);
    // lines 1, 2 and 7 of checks/tokenizer-samples.txt, as llama2.c's encoder gives them (tokenizer-ids.txt)
    const lines = readFileSync(`${dir}checks/tokenizer-ids.txt`, 'utf8').trim().split('\n');
    const rows = [0, 1, 6].map((i) => (lines[i] as string).split(' ').map(Number));
    const T = Math.max(...rows.map((r) => r.length));
    const lossOf = (params: typeof model.params): number =>
      tf.tidy(() => {
        const ids = tf.tensor2d(
          rows.map((r) => [...r, ...Array<number>(T - r.length).fill(0)]),
          [rows.length, T],
          'int32',
        );
        const mask = tf.tensor2d(
          rows.map((r) => Array.from({ length: T }, (_, i) => (i < r.length ? 1 : 0))),
        );
        const w = tf.slice(mask, [0, 1], [-1, -1]); // [B, T-1]: real targets
        const lp = tokenLogProbs(params, model.config, ids, mask); // [B, T-1]
        return tf.div(tf.neg(tf.sum(tf.mul(lp, w))), tf.sum(w)).dataSync()[0] as number;
      });
    const random = initGpt(model.config, new Rng(0));
    const trained = lossOf(model.params);
    const untrained = lossOf(random);
    expect(untrained).toBeGreaterThan(0.9 * Math.log(512));
    expect(trained).toBeLessThan(2.5);
    expect(trained).toBeLessThan(0.4 * untrained);
    disposeGpt(random);
    disposeGpt(model.params);
  });
});
