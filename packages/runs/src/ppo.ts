/** PPO of a policy against a frozen reward ensemble whose k rewards an aggregation rule combines (`quorum ppo`). */
import path from 'node:path';
import type { AggregationRule } from '@quorum/aggregation';
import { disposeGpt } from '@quorum/backbone';
import type { StrategyRegistry } from '@quorum/core';
import type { Prompt } from '@quorum/data';
import type { EnsembleArchitecture } from '@quorum/ensemble';
import { type PpoConfig, type PpoStepLog, type PpoSummary, PpoTrainer } from '@quorum/ppo';
import { loadPolicyWithTokenizer, loadRewardModel, type PolicyWithTokenizer } from './load.js';
import { type RunProgress, silentProgress } from './progress.js';

/** The policy between two slices of training, handed to `PpoRunOptions.evaluate`. */
export interface PpoCheckpointView {
  readonly step: number;
  /** The policy as trained so far (do not dispose it). */
  readonly policy: PolicyWithTokenizer;
  /** The last step's log; undefined before the first step. */
  readonly last: PpoStepLog | undefined;
}

export interface PpoRunOptions {
  /** The SFT policy folder to start from; also the frozen KL reference. */
  readonly policy: string;
  /** The reward-model folder, loaded once and frozen. */
  readonly reward: string;
  /** Architectures the reward model may use (plugins included). */
  readonly architectures: StrategyRegistry<EnsembleArchitecture>;
  /** Combines the k member rewards into the reward PPO maximises. */
  readonly rule: AggregationRule;
  readonly prompts: readonly Prompt[];
  /** Resolved with @quorum/ppo's `resolvePpoConfig`. */
  readonly ppo: PpoConfig;
  /** Run folder: metrics.jsonl, train-state/, then the final policy. */
  readonly out: string;
  /**
   * Continue from the newest state in `<out>/train-state` (a fresh start when there is none). The state's
   * settings must equal this run's: the PPO config (but checkpointEvery), policy, reward model, rule and
   * the number of prompts.
   */
  readonly resume: boolean;
  /** Resume even when the settings differ (warned through progress, recorded in quorum.json). */
  readonly forceResume?: boolean | undefined;
  /** The rule as the user named it, options included (`lcb(beta=0.5)`), for the resume check; default its name. */
  readonly ruleLabel?: string | undefined;
  /** Stops after the current step (a checkpoint is saved); the result says `aborted`. */
  readonly signal?: AbortSignal | undefined;
  /**
   * Called before the first step (after a resume) and after every `every` steps, with the policy as
   * trained so far; `quorum reproduce` judges it there.
   */
  readonly evaluate?:
    | { readonly every: number; readonly run: (view: PpoCheckpointView) => Promise<void> }
    | undefined;
}

/**
 * The line shown after each step. `kl` is what the penalty used (its estimator named), `full` the
 * full-distribution KL; both nats per answer: the mean over answers of the sum over answer tokens.
 */
export function formatPpoStep(l: PpoStepLog): string {
  const members = l.memberRewards.map((r) => r.toFixed(3)).join('/');
  return `reward ${l.reward.toFixed(4)} (members ${members})  kl ${l.kl.toFixed(4)} (${l.klEstimator}; full ${l.klFull.toFixed(4)})  entropy ${l.entropy.toFixed(3)}  loss ${l.policyLoss.toFixed(4)}/${l.valueLoss.toFixed(4)}  clip ${l.clipFraction.toFixed(3)}  ${l.seconds.toFixed(1)}s`;
}

/** Trains to `ppo.steps` (or until `signal`), writing the policy to `out` when all steps are done. */
export async function runPpo(
  options: PpoRunOptions,
  progress: RunProgress = silentProgress,
): Promise<PpoSummary> {
  const policy = await loadPolicyWithTokenizer(options.policy);
  let reward: Awaited<ReturnType<typeof loadRewardModel>> | undefined;
  let trainer: PpoTrainer | undefined;
  try {
    reward = await loadRewardModel(options.reward, options.architectures);
    trainer = new PpoTrainer({
      policy: { config: policy.config, params: policy.params, tokenizer: policy.tokenizer },
      reward: { ensemble: reward.ensemble, tokenizer: reward.tokenizer, rule: options.rule },
      prompts: options.prompts,
      ppo: options.ppo,
      outDir: options.out,
      signal: options.signal,
      settings: {
        policy: options.policy,
        reward: options.reward,
        rule: options.ruleLabel ?? options.rule.name,
        prompts: options.prompts.length,
      },
      forceResume: options.forceResume,
      onNote: (m) => progress.log(m),
      onProgress: (l) => progress.update(l.step, l.steps, formatPpoStep(l)),
    });
    if (options.resume) {
      const step = await trainer.resume();
      progress.log(
        step === undefined
          ? `ppo: no checkpoint in ${path.join(options.out, 'train-state')}; starting at step 0`
          : `ppo: resuming at step ${step}`,
      );
    }
    const { evaluate } = options;
    if (evaluate === undefined) return await trainer.train();
    await evaluate.run({ step: trainer.step, policy, last: undefined });
    let summary: PpoSummary = { steps: trainer.step, aborted: false, last: undefined };
    while (trainer.step < options.ppo.steps) {
      summary = await trainer.train({
        stopAtStep: Math.min(options.ppo.steps, trainer.step + evaluate.every),
      });
      if (summary.aborted) return summary;
      await evaluate.run({ step: trainer.step, policy, last: summary.last });
    }
    return summary;
  } finally {
    trainer?.dispose();
    reward?.ensemble.dispose();
    disposeGpt(policy.params);
  }
}
