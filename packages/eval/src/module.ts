/** The built-in judges as registry entries, and eval's ContainerModule (the DI edge). */

import type { AggregationRule } from '@quorum/aggregation';
import { aggregationRegistry } from '@quorum/aggregation';
import {
  type ContainerModule,
  defineStrategy,
  StrategyRegistry as Registry,
  type StrategyRegistry,
  strategyModule,
} from '@quorum/core';
import { builtinArchitectureRegistry, type EnsembleArchitecture, loadEnsemble } from '@quorum/ensemble';
import { z } from 'zod';
import { Judge, type JudgeContext } from './judge.js';
import { llmJudge, llmJudgeOptions } from './llm/llm-judge.js';
import { shippedPreferenceTableJudge } from './preference-table.js';
import { rewardModelJudge } from './reward-model-judge.js';

export const preferenceTableJudgeDefinition = defineStrategy({
  name: 'preference-table',
  description:
    'GPT-4 verdicts shipped with AlpacaEval: judges a shipped answer against text-davinci-003, offline',
  source: '@quorum/eval',
  options: z.object({}).strict(),
  create: (): Judge => shippedPreferenceTableJudge(),
});

export const rewardModelJudgeOptions = z
  .object({
    /** A reward-model folder written by `quorum train-rm`. */
    model: z.string().min(1),
    /** Aggregation rule over the members: a name or [name, options]. */
    rule: z.union([z.string(), z.tuple([z.string(), z.record(z.string(), z.unknown())])]).default('mean'),
    /** Answers per forward pass. */
    batchSize: z.number().int().positive().default(16),
  })
  .strict();

export interface LoadRewardModelJudgeOptions {
  /** Registered architectures (default: the built-ins; pass the CLI's to read a plugin's checkpoint). */
  readonly architectures?: StrategyRegistry<EnsembleArchitecture>;
  /** The aggregation rule (default: `mean` from the built-in rules). */
  readonly rule?: AggregationRule;
  readonly batchSize?: number;
}

/** Loads a reward-model folder and returns it as a judge. */
export async function loadRewardModelJudge(
  dir: string,
  options: LoadRewardModelJudgeOptions = {},
): Promise<Judge> {
  const loaded = await loadEnsemble(dir, options.architectures ?? builtinArchitectureRegistry());
  return rewardModelJudge({
    ensemble: loaded.ensemble,
    tokenizer: loaded.tokenizer,
    rule: options.rule ?? aggregationRegistry().create('mean'),
    scoring: { batchSize: options.batchSize ?? 16 },
  });
}

export const rewardModelJudgeDefinition = defineStrategy({
  name: 'reward-model',
  description: 'a gold reward model or ensemble as judge: p = σ(r_a − r_b); score = aggregate reward',
  source: '@quorum/eval',
  options: rewardModelJudgeOptions,
  create: (o): Judge => {
    // The folder is read on first use (creation stays synchronous, as for every strategy).
    const rule = aggregationRegistry().create(o.rule, 'judge(reward-model).rule');
    let judge: Promise<Judge> | undefined;
    const get = (): Promise<Judge> => {
      judge ??= loadRewardModelJudge(o.model, { rule, batchSize: o.batchSize });
      return judge;
    };
    return {
      name: 'reward-model',
      compare: async (item) => (await get()).compare(item),
      score: async (item) => {
        const j = await get();
        return (j.score as NonNullable<Judge['score']>)(item);
      },
    };
  },
});

export const llmJudgeDefinition = defineStrategy({
  name: 'llm',
  description:
    'an OpenAI-compatible chat endpoint (AlpacaEval pairwise, MT-Bench 1–10); env QUORUM_JUDGE_* or OPENAI_BASE_URL / OPENAI_API_KEY',
  source: '@quorum/eval',
  options: llmJudgeOptions,
  create: (o, context?: JudgeContext): Judge =>
    llmJudge(o, context?.log === undefined ? {} : { log: context.log }),
});

/** The built-in judge definitions, in registration order. */
export const builtinJudgeDefinitions = [
  preferenceTableJudgeDefinition,
  rewardModelJudgeDefinition,
  llmJudgeDefinition,
] as const;

/** A registry holding the built-in judges (no container needed). */
export function judgeRegistry(): StrategyRegistry<Judge, JudgeContext> {
  const registry = new Registry<Judge, JudgeContext>(Judge);
  for (const d of builtinJudgeDefinitions) registry.register(d);
  return registry;
}

/** Eval's ContainerModule: owns the `judge` point and contributes the built-in judges. */
export function evalModule(): ContainerModule {
  return strategyModule({
    points: [Judge],
    strategies: [{ point: Judge, definitions: builtinJudgeDefinitions }],
  });
}
