/** Samples from a policy for one instruction (`quorum generate`). */
import { disposeGpt, generate } from '@quorum/backbone';
import { Rng } from '@quorum/core';
import { encodePrompt, type Prompt } from '@quorum/data';
import { loadPolicyWithTokenizer } from './load.js';

export interface SampleRunOptions {
  /** The policy folder. */
  readonly policy: string;
  readonly prompt: Prompt;
  /** How many answers (sampled together from one stream). */
  readonly samples: number;
  readonly maxNewTokens: number;
  /** 0 = greedy. */
  readonly temperature: number;
  readonly topP: number;
  /** 0 = off. */
  readonly topK: number;
  readonly seed: number;
}

/** `samples` answers to one prompt, decoded (eos removed). */
export async function sampleAnswers(options: SampleRunOptions): Promise<string[]> {
  const { config, params, tokenizer } = await loadPolicyWithTokenizer(options.policy);
  try {
    const prompt = Array.from(
      encodePrompt(tokenizer, options.prompt, { maxLength: config.contextLength - options.maxNewTokens }),
    );
    const result = generate(
      params,
      config,
      Array.from({ length: options.samples }, () => prompt),
      {
        maxNewTokens: Math.min(options.maxNewTokens, config.contextLength - prompt.length),
        temperature: options.temperature,
        topP: options.topP,
        topK: options.topK,
        eosId: tokenizer.eosId,
        padId: tokenizer.padId,
        rng: new Rng(options.seed),
      },
    );
    return result.tokens.map((tokens) => tokenizer.decode(tokens.filter((t) => t !== tokenizer.eosId)));
  } finally {
    disposeGpt(params);
  }
}
