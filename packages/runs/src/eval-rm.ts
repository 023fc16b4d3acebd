/** A reward model's accuracy, calibration and correlations on preference pairs (`quorum eval-rm`). */
import type { AggregationRule } from '@quorum/aggregation';
import type { StrategyRegistry } from '@quorum/core';
import { datasets, loadPreferencePairs, type PreferencePair } from '@quorum/data';
import { type EnsembleArchitecture, evaluatePairs, type RewardMetrics } from '@quorum/ensemble';
import { loadRewardModel } from './load.js';

export interface EvalRmRunOptions {
  /** The reward-model folder. */
  readonly model: string;
  readonly architectures: StrategyRegistry<EnsembleArchitecture>;
  /** Combines the members' rewards for the ensemble accuracy. */
  readonly rule: AggregationRule;
  /** `alpaca-eval` (eval split), `hh-rlhf` (shipped human pairs) or a JSONL preference file. */
  readonly data: string;
  /** Format of a data file (detected when omitted). */
  readonly format?: string | undefined;
  /** Only the first n pairs. */
  readonly limit?: number | undefined;
}

/** The preference pairs `data` names. */
export async function evalPairs(data: string, format?: string): Promise<PreferencePair[]> {
  if (data === 'alpaca-eval') return (await datasets.alpacaEval()).pairs({ split: 'eval' });
  if (data === 'hh-rlhf') return datasets.hhRlhf();
  return (await loadPreferencePairs(data, format === undefined ? {} : { format })).pairs;
}

/** Scores the pairs with the reward model and returns its metrics. */
export async function evaluateRewardModel(options: EvalRmRunOptions): Promise<RewardMetrics> {
  const { ensemble, tokenizer } = await loadRewardModel(options.model, options.architectures);
  try {
    let pairs = await evalPairs(options.data, options.format);
    if (options.limit !== undefined) pairs = pairs.slice(0, options.limit);
    return evaluatePairs(ensemble, tokenizer, pairs, {
      aggregate: (r) => options.rule.aggregateArrays(r).aggregate,
      maxLength: ensemble.gptConfig.contextLength,
    });
  } finally {
    ensemble.dispose();
  }
}
