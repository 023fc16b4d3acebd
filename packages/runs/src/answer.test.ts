import { gptPreset, initGpt } from '@quorum/backbone';
import { builtinBackendRegistry, ConfigError, initCompute, Rng } from '@quorum/core';
import { projectTokenizer } from '@quorum/data';
import { beforeAll, describe, expect, it } from 'vitest';
import { answerPrompts } from './answer.js';

const tokenizer = projectTokenizer();
const config = gptPreset('nano', {
  vocabSize: tokenizer.vocabSize,
  dModel: 16,
  nLayers: 1,
  nHeads: 2,
  contextLength: 48,
});
let policy: Parameters<typeof answerPrompts>[0];
beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  policy = { config, params: initGpt(config, new Rng(5)), tokenizer };
});

const prompts = [
  { instruction: 'Name a colour.', input: '' },
  { instruction: 'Add.', input: '2 + 2' },
  { instruction: 'Say hi.', input: '' },
];

describe('answerPrompts', () => {
  it('answers greedily, in order, the same in any batch size; trim strips white space only', () => {
    const a = answerPrompts(policy, prompts, { maxNewTokens: 6, batchSize: 16 });
    expect(a).toHaveLength(3);
    expect(answerPrompts(policy, prompts.slice(1, 2), { maxNewTokens: 6 })).toEqual([a[1]]);
    expect(answerPrompts(policy, prompts, { maxNewTokens: 6, trim: true })).toEqual(a.map((s) => s.trim()));
  });

  it('samples from seeded streams when the temperature is above 0', () => {
    const opts = { maxNewTokens: 6, temperature: 1, seed: 3, label: 'x' };
    expect(answerPrompts(policy, prompts, opts)).toEqual(answerPrompts(policy, prompts, opts));
  });

  it('rejects an answer budget that leaves no room for the prompt, naming --max-new-tokens', () => {
    expect(() => answerPrompts(policy, prompts, { maxNewTokens: 40 })).toThrow(ConfigError);
    expect(() => answerPrompts(policy, prompts, { maxNewTokens: 40 })).toThrow(
      /--max-new-tokens 40 leaves 8/,
    );
  });
});
