import { builtinBackendRegistry, ConfigError, initCompute, Rng } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { type GptConfig, resolveGptConfig } from './config.js';
import { generate, sampleFromLogits } from './generate.js';
import { disposeGpt, initGpt } from './model.js';

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
});

const tiny = (over: Partial<GptConfig> = {}): GptConfig =>
  resolveGptConfig({ vocabSize: 29, contextLength: 24, dModel: 16, nLayers: 2, nHeads: 2, ...over });

// Larger init weights make a random model's predictions peaked, so sampled tokens vary with context.
const prompts = [
  [1, 2, 3, 4, 5],
  [6, 7],
  [8, 9, 10],
];

describe.each(['learned', 'rope'] as const)('generate (%s positions)', (positional) => {
  const config = tiny({ positional });

  it('gives the same tokens with and without the KV cache (greedy and sampled)', () => {
    const params = initGpt(config, new Rng(1));
    const greedyA = generate(params, config, prompts, { maxNewTokens: 8, temperature: 0 });
    const greedyB = generate(params, config, prompts, { maxNewTokens: 8, temperature: 0, useCache: false });
    expect(greedyA.tokens.map((t) => t.length)).toEqual([8, 8, 8]);
    expect(greedyA).toEqual(greedyB);
    const opts = { maxNewTokens: 10, temperature: 1, topK: 20, topP: 0.95 };
    const a = generate(params, config, prompts, { ...opts, rng: new Rng(7) });
    const b = generate(params, config, prompts, { ...opts, rng: new Rng(7), useCache: false });
    expect(a).toEqual(b);
    const c = generate(params, config, prompts, { ...opts, rng: new Rng(8) });
    expect(c).not.toEqual(a);
    disposeGpt(params);
  });

  it('does not depend on the other prompts in the batch (padding is masked)', () => {
    const params = initGpt(config, new Rng(2));
    const batch = generate(params, config, prompts, { maxNewTokens: 6, temperature: 0 });
    prompts.forEach((p, i) => {
      const alone = generate(params, config, [p], { maxNewTokens: 6, temperature: 0 });
      expect(alone.tokens[0]).toEqual(batch.tokens[i]);
    });
    disposeGpt(params);
  });
});

describe('generate', () => {
  const config = tiny();

  it('stops a row at eos and keeps the eos token', () => {
    const params = initGpt(config, new Rng(3));
    const greedy = generate(params, config, prompts, { maxNewTokens: 6, temperature: 0 });
    const eos = greedy.tokens[1]?.[2] as number; // row 1 produces this as its third token
    const out = generate(params, config, prompts, { maxNewTokens: 6, temperature: 0, eosId: eos });
    const idx = greedy.tokens[1]?.indexOf(eos) as number;
    expect(out.tokens[1]).toEqual(greedy.tokens[1]?.slice(0, idx + 1));
    expect(out.stoppedAtEos[1]).toBe(true);
    disposeGpt(params);
  });

  it('leaks no tensors over a generation loop', () => {
    const params = initGpt(config, new Rng(4));
    const before = tf.memory().numTensors;
    generate(params, config, prompts, { maxNewTokens: 5, rng: new Rng(1) });
    generate(params, config, prompts, { maxNewTokens: 5, rng: new Rng(1), useCache: false });
    expect(tf.memory().numTensors).toBe(before);
    disposeGpt(params);
  });

  it('checks its inputs', () => {
    const params = initGpt(config, new Rng(5));
    expect(() => generate(params, config, [[1]], { maxNewTokens: 30, temperature: 0 })).toThrow(
      'prompt of length 1 plus 30 new tokens exceeds context 24',
    );
    expect(() => generate(params, config, [[1]], { maxNewTokens: 3 })).toThrow(ConfigError);
    expect(() => generate(params, config, [[]], { maxNewTokens: 3, temperature: 0 })).toThrow(/empty/);
    disposeGpt(params);
  });
});

describe('sampleFromLogits', () => {
  const logits = Float32Array.from([0, 3, 1, 2.5, -1]);
  const draw = (opts: { temperature: number; topK: number; topP: number }, n = 400): Set<number> => {
    const rng = new Rng(11);
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) seen.add(sampleFromLogits(logits, 0, 5, opts, rng));
    return seen;
  };

  it('is argmax at temperature 0 and with top-k 1', () => {
    expect(draw({ temperature: 0, topK: 0, topP: 1 })).toEqual(new Set([1]));
    expect(draw({ temperature: 1, topK: 1, topP: 1 })).toEqual(new Set([1]));
  });

  it('keeps the top-k and the top-p nucleus only', () => {
    expect(draw({ temperature: 1, topK: 2, topP: 1 })).toEqual(new Set([1, 3]));
    // p = softmax = [0.028, 0.553, 0.075, 0.335, 0.010]: top-p 0.85 keeps 1, 3 (0.888); 0.9 adds 2
    expect(draw({ temperature: 1, topK: 0, topP: 0.85 })).toEqual(new Set([1, 3]));
    expect(draw({ temperature: 1, topK: 0, topP: 0.9 })).toEqual(new Set([1, 2, 3]));
    expect(draw({ temperature: 1, topK: 0, topP: 1 }, 2000)).toEqual(new Set([0, 1, 2, 3, 4]));
  });

  it('reads at an offset', () => {
    const two = Float32Array.from([5, 0, 0, 0, 9, 0]);
    expect(sampleFromLogits(two, 3, 3, { temperature: 0, topK: 0, topP: 1 }, undefined)).toBe(1);
  });
});
