/** A policy's answers to prompts: the one prompt → answer loop of `eval`, `reproduce` and `generate`. */
import { type GenerateResult, type GptConfig, type GptParams, generate } from '@quorum/backbone';
import { ConfigError, Rng } from '@quorum/core';
import { encodePrompt, type Prompt, type TextTokenizer } from '@quorum/data';
import { type RunProgress, silentProgress } from './progress.js';

/** What answering needs of a policy (a loaded policy folder fits). */
export interface AnsweringPolicy {
  readonly config: GptConfig;
  readonly params: GptParams;
  readonly tokenizer: TextTokenizer;
}

export interface AnswerOptions {
  /** Answer length budget in tokens; the prompt keeps the rest of the context. */
  readonly maxNewTokens: number;
  /** 0 (the default) = greedy. */
  readonly temperature?: number | undefined;
  /** Nucleus sampling mass (default 1: off). */
  readonly topP?: number | undefined;
  /** Keep the k most likely tokens (default 0: off). */
  readonly topK?: number | undefined;
  /** Prompts generated together (default 16). */
  readonly batchSize?: number | undefined;
  /** Seed of sampling (unused when greedy); chunk c samples from `new Rng(seed).fork(`${label}/${start of c}`)`. */
  readonly seed?: number | undefined;
  /** Names the prompts in progress and in the sampling streams (default `answers`). */
  readonly label?: string | undefined;
  /**
   * Strip leading and trailing white space from each answer. `quorum eval` does; `quorum reproduce`'s gold
   * judge scores the answers as decoded (default false), so its numbers stay as they were.
   */
  readonly trim?: boolean | undefined;
}

/** Context tokens left for the prompt; a ConfigError naming --max-new-tokens when fewer than 16. */
export function promptRoom(config: GptConfig, maxNewTokens: number): number {
  const room = config.contextLength - maxNewTokens;
  if (room < 16) {
    throw new ConfigError(
      `--max-new-tokens ${maxNewTokens} leaves ${room} prompt tokens in a context of ${config.contextLength}`,
      { location: { field: '--max-new-tokens' }, hint: `use at most ${config.contextLength - 16}` },
    );
  }
  return room;
}

/** One answer per prompt, in order, decoded to text (eos removed). */
export function answerPrompts(
  policy: AnsweringPolicy,
  prompts: readonly Prompt[],
  options: AnswerOptions,
  progress: RunProgress = silentProgress,
): string[] {
  const { config, params, tokenizer } = policy;
  const temperature = options.temperature ?? 0;
  const batchSize = options.batchSize ?? 16;
  const label = options.label ?? 'answers';
  const rng = new Rng(options.seed ?? 0);
  const maxLength = promptRoom(config, options.maxNewTokens);
  const out: string[] = [];
  for (let at = 0; at < prompts.length; at += batchSize) {
    const chunk = prompts
      .slice(at, at + batchSize)
      .map((p) => Array.from(encodePrompt(tokenizer, p, { maxLength })));
    const result: GenerateResult = generate(params, config, chunk, {
      maxNewTokens: options.maxNewTokens,
      temperature,
      ...(options.topP === undefined ? {} : { topP: options.topP }),
      ...(options.topK === undefined ? {} : { topK: options.topK }),
      eosId: tokenizer.eosId,
      padId: tokenizer.padId,
      rng: temperature === 0 ? undefined : rng.fork(`${label}/${at}`),
    });
    for (const tokens of result.tokens) {
      const text = tokenizer.decode(tokens.filter((t) => t !== tokenizer.eosId));
      out.push(options.trim === true ? text.trim() : text);
    }
    progress.update(Math.min(at + batchSize, prompts.length), prompts.length, `generated (${label})`);
  }
  return out;
}
