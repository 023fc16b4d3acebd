// A config is bounded before anything is allocated (issue 16): a checkpoint's config is untrusted.
import { ConfigError } from '@quorum/core';
import { describe, expect, it } from 'vitest';
import { GPT_CONFIG_LIMITS, gptPreset, gptPresetNames, paramCount, resolveGptConfig } from './config.js';

describe('resolveGptConfig bounds', () => {
  it.each([
    [{ vocabSize: 2e8 }, /vocabSize.*must be ≤ 1048576/],
    [
      { dModel: 16384, nLayers: 64, nHeads: 64 },
      /field "model\.dModel".*parameters, more than the 2147483648/,
    ],
    [{ nLayers: 100000 }, /nLayers.*must be ≤ 1024/],
    [{ contextLength: 2 ** 30 }, /contextLength.*must be ≤/],
    [{ dModel: -1 }, /dModel.*must be ≥ 1/],
    [{ mlpHidden: 2 ** 40 }, /mlpHidden.*must be ≤/],
    [{ layerNormEps: 10 }, /layerNormEps.*must be ≤ 1/],
  ])('refuses %j with a ConfigError naming the field', (input, message) => {
    let err: unknown;
    try {
      resolveGptConfig(input, 'model');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(message);
  });

  it('keeps every preset and real model sizes within the bounds', () => {
    for (const name of gptPresetNames)
      expect(paramCount(gptPreset(name))).toBeLessThan(GPT_CONFIG_LIMITS.parameters);
    const qwen = resolveGptConfig({
      vocabSize: 151936,
      dModel: 896,
      nLayers: 24,
      nHeads: 14,
      nKvHeads: 2,
      mlpHidden: 4864,
      contextLength: 32768,
      positional: 'rope',
    });
    expect(paramCount(qwen)).toBeGreaterThan(3e8); // Qwen2-0.5B;
  });
});
