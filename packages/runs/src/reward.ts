/**
 * Reward-model training: preference data → a trained ensemble folder with metrics (`quorum train-rm`,
 * and every reward model of `quorum reproduce`).
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { disposeGpt, type GptPresetName, gptPreset, namedParameters } from '@quorum/backbone';
import { ConfigError, Rng, type StrategyRegistry, type StrategySpec } from '@quorum/core';
import {
  datasets,
  loadPreferencePairs,
  type PreferencePair,
  projectTokenizer,
  type TextTokenizer,
  type TruncationMode,
} from '@quorum/data';
import {
  type EnsembleArchitecture,
  evaluatePairs,
  type RewardMetrics,
  type RewardTrainConfig,
  type RewardTrainResult,
  resolveRewardTrainConfig,
  saveEnsemble,
  type TrainableEnsemble,
  trainRewardEnsemble,
} from '@quorum/ensemble';
import type * as tf from '@tensorflow/tfjs';
import { resolveMaxLength } from './length.js';
import { loadPolicyWithTokenizer } from './load.js';
import { type RunProgress, silentProgress } from './progress.js';
import { seededSubset } from './subset.js';

export interface PairSource {
  /** `alpaca-eval` or a JSONL path. */
  readonly data: string;
  readonly format?: string | undefined;
  /** AlpacaEval pair options. */
  readonly pairs?: 'reference' | 'derived' | 'both' | undefined;
  readonly balance?: 'none' | 'weights' | 'sample' | undefined;
  /** A user's held-out file, or a fraction of the data to hold out. */
  readonly evalData?: string | undefined;
  readonly evalFraction?: number | undefined;
  /** Seeded subset sizes. */
  readonly trainLimit?: number | undefined;
  readonly evalLimit?: number | undefined;
  readonly seed: number;
}

/** Train and eval pairs. AlpacaEval keeps its fixed split: nothing from an eval instruction is trained on. */
export async function loadPairs(
  source: PairSource,
): Promise<{ train: PreferencePair[]; eval: PreferencePair[]; description: string }> {
  const rng = new Rng(source.seed).fork('pairs');
  // The subsets keep the order drawn (as `train-rm` always has).
  const drawn = { keepOrder: false };
  if (source.data === 'alpaca-eval') {
    const ae = await datasets.alpacaEval();
    const train = ae.pairs({
      split: 'train',
      source: source.pairs ?? 'reference',
      balance: source.balance ?? 'none',
      seed: source.seed,
    });
    const evalPairs = ae.pairs({ split: 'eval', source: 'reference' });
    return {
      train: seededSubset(train, source.trainLimit, rng.fork('train'), drawn),
      eval: seededSubset(evalPairs, source.evalLimit, rng.fork('eval'), drawn),
      description: `alpaca-eval (${source.pairs ?? 'reference'} pairs, balance ${source.balance ?? 'none'})`,
    };
  }
  if (!existsSync(source.data)) {
    throw new ConfigError(`data file ${source.data} does not exist`, {
      location: { field: '--data' },
      hint: 'pass alpaca-eval or a JSONL preference file',
    });
  }
  const { pairs } = await loadPreferencePairs(
    source.data,
    source.format === undefined ? {} : { format: source.format },
  );
  let train = pairs;
  let evalPairs: PreferencePair[] = [];
  if (source.evalData !== undefined) {
    evalPairs = (
      await loadPreferencePairs(source.evalData, source.format === undefined ? {} : { format: source.format })
    ).pairs;
  } else {
    const fraction = source.evalFraction ?? 0.1;
    const order = rng.fork('holdout').permutation(pairs.length);
    const nEval = Math.max(1, Math.floor(pairs.length * fraction));
    evalPairs = order.slice(0, nEval).map((i) => pairs[i] as PreferencePair);
    train = order.slice(nEval).map((i) => pairs[i] as PreferencePair);
  }
  return {
    train: seededSubset(train, source.trainLimit, rng.fork('train'), drawn),
    eval: seededSubset(evalPairs, source.evalLimit, rng.fork('eval'), drawn),
    description: source.data,
  };
}

/** An architecture named in a registry, its options checked and the strategy created. */
export interface ResolvedArchitecture {
  readonly name: string;
  /** The package that registered it (saved in quorum.json, so loading can name the plugin). */
  readonly source: string;
  /** The resolved options (defaults filled in). */
  readonly options: unknown;
  readonly architecture: EnsembleArchitecture;
}

/**
 * Resolves `spec` (`'lora'` or `['lora', { rank: 4 }]`) through `registry`, plugins included: an unknown
 * name or a bad option is a ConfigError naming `path`, before any work.
 */
export function resolveArchitecture(
  registry: StrategyRegistry<EnsembleArchitecture>,
  spec: StrategySpec,
  path = 'architecture',
): ResolvedArchitecture {
  const { name, options } = registry.resolve(spec, path);
  return { name, source: registry.get(name).source, options, architecture: registry.create(spec, path) };
}

export interface RewardRunOptions {
  readonly architecture: ResolvedArchitecture;
  /** k: the ensemble's members (1 for `single`). */
  readonly members: number;
  /** Model size when starting from scratch (a policy folder brings its own config). */
  readonly size: GptPresetName;
  readonly contextLength: number;
  /**
   * What the transformer starts from: a Quorum policy folder (the paper starts reward models from its SFT
   * model), `hf:DIR` (a Hugging Face model folder, with its tokenizer), or `scratch`.
   */
  readonly init: string;
  /** Tokens per sequence (prompt + answer); default: the model's context, capped at DEFAULT_MAX_LENGTH. */
  readonly maxLength?: number | undefined;
  /** Pairs longer than maxLength: `left` (default) keeps each answer's end, `drop` leaves the pair out (TRL). */
  readonly truncation?: TruncationMode | undefined;
  readonly train: readonly PreferencePair[];
  readonly eval: readonly PreferencePair[];
  /** Where the pairs came from, as saved in quorum.json. */
  readonly dataDescription: string;
  readonly config: Partial<RewardTrainConfig>;
  /** The reward-model folder to write. */
  readonly out: string;
  /** Continue from the newest state in `<out>/train-state` (a fresh start when there is none). */
  readonly resume: boolean;
  /** Stops after the next checkpoint; the result says `stoppedEarly`. */
  readonly signal?: AbortSignal | undefined;
}

export interface RewardRunResult {
  readonly stoppedEarly: boolean;
  /** Training pairs used, tied (skipped), dropped (`drop`) and truncated (`left`). */
  readonly pairs: RewardTrainResult['pairs'];
  readonly maxLength: number;
  readonly metrics: RewardMetrics | undefined;
  readonly params: { total: number; trainable: number };
  readonly trainSeconds: number;
}

/** The metrics saved in eval.json and quorum.json. */
export function metricsSummary(m: RewardMetrics): Record<string, unknown> {
  return {
    accuracy: m.accuracy,
    memberAccuracy: m.memberAccuracy,
    ece: m.ece,
    disagreement: m.disagreement,
    memberCorrelation: m.memberCorrelation,
    lengthCorrelation: m.lengthCorrelation,
    longerWinsAccuracy: m.longerWinsAccuracy,
    pairs: m.pairs,
  };
}

/**
 * Trains a reward ensemble with the Bradley-Terry loss, scores the held-out pairs and writes the folder
 * (quorum.json, weights, tokenizer, metrics.jsonl, eval.json).
 */
export async function runRewardTraining(
  options: RewardRunOptions,
  progress: RunProgress = silentProgress,
): Promise<RewardRunResult> {
  let tokenizer: TextTokenizer;
  let init: Record<string, tf.Tensor> | undefined;
  let gptConfig = gptPreset(options.size, {
    vocabSize: projectTokenizer().vocabSize,
    contextLength: options.contextLength,
  });
  let disposeInit = (): void => {};
  if (options.init === 'scratch') {
    tokenizer = projectTokenizer();
  } else {
    const policy = await loadPolicyWithTokenizer(options.init);
    tokenizer = policy.tokenizer;
    gptConfig = policy.config;
    init = namedParameters(policy.params);
    disposeInit = () => disposeGpt(policy.params);
  }
  let ensemble: TrainableEnsemble;
  try {
    ensemble = options.architecture.architecture.build({
      gptConfig,
      members: options.members,
      rng: new Rng(options.config.seed ?? 0).fork('ensemble'),
      initBackbone: init,
    });
  } finally {
    disposeInit();
  }
  try {
    const maxLength = resolveMaxLength(gptConfig, options.maxLength ?? options.config.maxLength, 'maxLength');
    const config = resolveRewardTrainConfig({ ...options.config, maxLength });
    const truncation = options.truncation ?? 'left';
    const began = Date.now();
    const result = await trainRewardEnsemble({
      ensemble,
      tokenizer,
      pairs: options.train,
      config,
      truncation,
      out: options.out,
      resume: options.resume,
      signal: options.signal,
      onNote: (m) => progress.log(m),
      onProgress: (p) =>
        progress.update(
          p.step,
          p.steps,
          `${p.phase} (${p.phaseIndex + 1}/${p.phases}) loss ${p.loss.toFixed(3)}  ${p.pairsPerSecond.toFixed(1)} pairs/s`,
        ),
    });
    const trainSeconds = (Date.now() - began) / 1000;
    const counts = ensemble.paramCounts();
    const done = { pairs: result.pairs, maxLength, params: counts, trainSeconds };
    if (result.stoppedEarly) return { ...done, stoppedEarly: true, metrics: undefined };
    progress.log(`scoring ${options.eval.length} held-out pairs`);
    const metrics =
      options.eval.length === 0 ? undefined : evaluatePairs(ensemble, tokenizer, options.eval, { maxLength });
    const training = {
      data: options.dataDescription,
      trainPairs: options.train.length,
      evalPairs: options.eval.length,
      init: options.init,
      truncation,
      pairs: result.pairs,
      steps: result.steps,
      trainSeconds,
      config,
      ...(metrics === undefined ? {} : { eval: metricsSummary(metrics) }),
    };
    await saveEnsemble(options.out, ensemble, {
      architectureSource: options.architecture.source,
      tokenizer,
      training,
    });
    if (metrics !== undefined)
      writeFileSync(
        path.join(options.out, 'eval.json'),
        `${JSON.stringify(metricsSummary(metrics), null, 2)}\n`,
      );
    return { ...done, stoppedEarly: false, metrics };
  } finally {
    ensemble.dispose();
  }
}

/** One line per metric group, as `quorum train-rm` and `quorum eval-rm` print them. */
export function formatMetrics(m: RewardMetrics): string {
  const pct = (x: number | undefined): string =>
    x === undefined || Number.isNaN(x) ? 'n/a' : `${(100 * x).toFixed(1)}%`;
  const num = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(3));
  return [
    `accuracy ${pct(m.accuracy)} (members ${m.memberAccuracy.map(pct).join(', ')}; "longer wins" baseline ${pct(m.longerWinsAccuracy)})`,
    `ECE ${num(m.ece)}  member correlation ${num(m.memberCorrelation)}  disagreement ${num(m.disagreement)}  reward–length correlation ${num(m.lengthCorrelation)}  (${m.pairs} pairs)`,
  ].join('\n');
}
