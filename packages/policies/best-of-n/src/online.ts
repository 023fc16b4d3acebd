/**
 * Online Best-of-n: for each prompt, sample n answers from a policy and keep the one the ensemble +
 * aggregation rule scores highest.
 *
 * Per prompt, chunks of `chunkSize` samples are generated in one batched, KV-cached `generate` call,
 * decoded to text, re-encoded with the reward model's tokenizer (the two vocabularies may differ) and
 * scored with `scoreAnswers`; only numbers (and the best answer's text so far) outlive a chunk, so
 * memory does not grow with n. Prompt i samples from `new Rng(seed).fork('prompt/i')`: the same seed,
 * config and prompt position give the same answers.
 */
import type { AggregationRule } from '@quorum/aggregation';
import { type GptConfig, type GptParams, generate, type LinearHook } from '@quorum/backbone';
import { ConfigError, Rng } from '@quorum/core';
import { encodePrompt, type Prompt, type TextTokenizer } from '@quorum/data';
import { type RewardEnsemble, scoreAnswers } from '@quorum/ensemble';
import { type BestOfNConfig, type BestOfNConfigInput, resolveBestOfNConfig } from './config.js';

/** The policy to sample from. */
export interface SamplingPolicy {
  readonly params: GptParams;
  readonly config: GptConfig;
  readonly tokenizer: TextTokenizer;
  /** The adapter hook, e.g. a LoRA policy. */
  readonly linearHook?: LinearHook | undefined;
}

/** The reward side: a frozen ensemble, its tokenizer, and the rule that makes one score of k. */
export interface RewardScorer {
  readonly ensemble: RewardEnsemble;
  readonly tokenizer: TextTokenizer;
  readonly rule: AggregationRule;
}

/** The chosen answer with its scores. */
export interface BestAnswer {
  /** Which sample (0 … n−1): the highest aggregate, the first one on a tie. */
  readonly index: number;
  readonly answer: string;
  readonly aggregate: number;
  readonly mean: number;
  readonly std: number;
  /** Each member's reward. `[k]` */
  readonly members: number[];
  /** New tokens generated (eos included when it stopped there). */
  readonly tokens: number;
  readonly stoppedAtEos: boolean;
}

/** Every sample's scores, in sampling order. */
export interface SampleScores {
  /** `[n]` */
  readonly aggregate: number[];
  readonly mean: number[];
  readonly std: number[];
  /** members[m][i]: member m's reward for sample i. `[k][n]` */
  readonly members: number[][];
}

export interface BestOfNResult {
  /** Position of the prompt in the input list. */
  readonly promptIndex: number;
  readonly prompt: Prompt;
  readonly rule: string;
  readonly n: number;
  readonly best: BestAnswer;
  readonly scores: SampleScores;
  /** Every sampled answer, only with `keepAnswers: true`. */
  readonly answers?: string[];
}

/** Reported after each chunk of one prompt. */
export interface ChunkProgress {
  readonly promptIndex: number;
  readonly prompts: number;
  /** Samples of this prompt generated and scored so far. */
  readonly done: number;
  readonly n: number;
}

export interface BestOfNHooks {
  /** Called after each chunk is generated and scored (its tensors are already freed). */
  readonly onChunk?: (progress: ChunkProgress) => void;
}

function promptIds(policy: SamplingPolicy, prompt: Prompt, config: BestOfNConfig): number[] {
  const tok = policy.tokenizer;
  const room = policy.config.contextLength - config.maxNewTokens;
  const template = encodePrompt(tok, { instruction: '', input: '' }).length;
  if (room <= template) {
    throw new ConfigError(
      `maxNewTokens ${config.maxNewTokens} leaves ${room} of the policy's ${policy.config.contextLength}-token context for the prompt, whose template alone takes ${template}`,
      {
        location: { field: 'maxNewTokens' },
        hint: `use maxNewTokens ≤ ${policy.config.contextLength - template - 16}`,
      },
    );
  }
  return Array.from(encodePrompt(tok, prompt, { maxLength: room }));
}

/** Best-of-n for one prompt (see the file header). */
export function bestOfNForPrompt(
  policy: SamplingPolicy,
  reward: RewardScorer,
  prompt: Prompt,
  config: BestOfNConfig,
  rng: Rng,
  onChunk?: (done: number) => void,
): Omit<BestOfNResult, 'promptIndex'> {
  const ids = promptIds(policy, prompt, config);
  const k = reward.ensemble.members;
  const scores: SampleScores = {
    aggregate: [],
    mean: [],
    std: [],
    members: Array.from({ length: k }, () => []),
  };
  const answers: string[] = [];
  let best: BestAnswer | undefined;
  for (let done = 0; done < config.n; ) {
    const m = Math.min(config.chunkSize, config.n - done);
    const out = generate(
      policy.params,
      policy.config,
      Array.from({ length: m }, () => ids),
      {
        maxNewTokens: config.maxNewTokens,
        temperature: config.temperature,
        topK: config.topK,
        topP: config.topP,
        eosId: policy.tokenizer.eosId,
        padId: policy.tokenizer.padId,
        rng,
        linearHook: policy.linearHook,
      },
    );
    const texts = out.tokens.map((t, j) =>
      policy.tokenizer.decode(out.stoppedAtEos[j] === true ? t.slice(0, -1) : t),
    );
    const members = scoreAnswers(
      reward.ensemble,
      reward.tokenizer,
      texts.map((answer) => ({ prompt, answer })),
      { batchSize: config.chunkSize },
    ); // [k][m]
    const agg = reward.rule.aggregateArrays(members);
    for (let j = 0; j < m; j++) {
      const a = agg.aggregate[j] as number;
      scores.aggregate.push(a);
      scores.mean.push(agg.mean[j] as number);
      scores.std.push(agg.std[j] as number);
      for (let r = 0; r < k; r++) (scores.members[r] as number[]).push((members[r] as number[])[j] as number);
      if (config.keepAnswers) answers.push(texts[j] as string);
      if (best === undefined || a > best.aggregate) {
        best = {
          index: done + j,
          answer: texts[j] as string,
          aggregate: a,
          mean: agg.mean[j] as number,
          std: agg.std[j] as number,
          members: members.map((row) => row[j] as number),
          tokens: (out.tokens[j] as number[]).length,
          stoppedAtEos: out.stoppedAtEos[j] === true,
        };
      }
    }
    done += m;
    onChunk?.(done);
  }
  return {
    prompt,
    rule: reward.rule.name,
    n: config.n,
    best: best as BestAnswer,
    scores,
    ...(config.keepAnswers ? { answers } : {}),
  };
}

/** Online Best-of-n over prompts, one result at a time (write each as it comes; memory stays flat). */
export function* bestOfNStream(
  policy: SamplingPolicy,
  reward: RewardScorer,
  prompts: readonly Prompt[],
  options: BestOfNConfigInput = {},
  hooks: BestOfNHooks = {},
): Generator<BestOfNResult> {
  const config = resolveBestOfNConfig(options);
  const root = new Rng(config.seed);
  for (let i = 0; i < prompts.length; i++) {
    const result = bestOfNForPrompt(
      policy,
      reward,
      prompts[i] as Prompt,
      config,
      root.fork(`prompt/${i}`),
      (done) => hooks.onChunk?.({ promptIndex: i, prompts: prompts.length, done, n: config.n }),
    );
    yield { promptIndex: i, ...result };
  }
}

/** Online Best-of-n over prompts (all results in an array). */
export function bestOfN(
  policy: SamplingPolicy,
  reward: RewardScorer,
  prompts: readonly Prompt[],
  options: BestOfNConfigInput = {},
  hooks: BestOfNHooks = {},
): BestOfNResult[] {
  return [...bestOfNStream(policy, reward, prompts, options, hooks)];
}
