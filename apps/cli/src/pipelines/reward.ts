/**
 * Reward-model training from the CLI: preference data → a trained ensemble folder with metrics.
 * Shared by `quorum train-rm` and `quorum reproduce`.
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { disposeGpt, type GptPresetName, gptPreset, loadPolicy, namedParameters } from '@quorum/backbone';
import { ConfigError, Rng, type StrategyRegistry } from '@quorum/core';
import {
  datasets,
  loadPreferencePairs,
  type PreferencePair,
  projectTokenizer,
  Tokenizer,
  Vocab,
} from '@quorum/data';
import {
  type EnsembleArchitecture,
  evaluatePairs,
  type RewardMetrics,
  type RewardTrainConfig,
  resolveRewardTrainConfig,
  saveEnsemble,
  type TrainableEnsemble,
  trainRewardEnsemble,
} from '@quorum/ensemble';
import type * as tf from '@tensorflow/tfjs';
import type { ProgressLine } from '../progress.js';

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

function subset<T>(items: readonly T[], limit: number | undefined, rng: Rng): T[] {
  if (limit === undefined || limit >= items.length) return [...items];
  return rng
    .permutation(items.length)
    .slice(0, limit)
    .map((i) => items[i] as T);
}

/** Train and eval pairs. AlpacaEval keeps its fixed split: nothing from an eval instruction is trained on. */
export async function loadPairs(
  source: PairSource,
): Promise<{ train: PreferencePair[]; eval: PreferencePair[]; description: string }> {
  const rng = new Rng(source.seed).fork('pairs');
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
      train: subset(train, source.trainLimit, rng.fork('train')),
      eval: subset(evalPairs, source.evalLimit, rng.fork('eval')),
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
    train: subset(train, source.trainLimit, rng.fork('train')),
    eval: subset(evalPairs, source.evalLimit, rng.fork('eval')),
    description: source.data,
  };
}

export interface RewardRunOptions {
  readonly architecture: string;
  readonly architectureOptions: Record<string, unknown>;
  readonly architectures: StrategyRegistry<EnsembleArchitecture>;
  readonly members: number;
  readonly size: GptPresetName;
  readonly contextLength: number;
  /** A policy folder to start from (the paper starts reward models from its SFT model), or `scratch`. */
  readonly init: string;
  readonly train: readonly PreferencePair[];
  readonly eval: readonly PreferencePair[];
  readonly dataDescription: string;
  readonly config: Partial<RewardTrainConfig>;
  readonly out: string;
  readonly resume: boolean;
  readonly progress?: ProgressLine | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface RewardRunResult {
  readonly stoppedEarly: boolean;
  readonly metrics: RewardMetrics | undefined;
  readonly params: { total: number; trainable: number };
  readonly trainSeconds: number;
}

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

export async function runRewardTraining(options: RewardRunOptions): Promise<RewardRunResult> {
  let tokenizer: Tokenizer;
  let init: Record<string, tf.Tensor> | undefined;
  let gptConfig = gptPreset(options.size, {
    vocabSize: projectTokenizer().vocabSize,
    contextLength: options.contextLength,
  });
  let disposeInit = (): void => {};
  if (options.init === 'scratch') {
    tokenizer = projectTokenizer();
  } else {
    const policy = await loadPolicy(options.init);
    tokenizer = new Tokenizer(Vocab.fromJSON(policy.vocabJson, path.join(options.init, 'vocab.json')));
    gptConfig = policy.config;
    init = namedParameters(policy.params);
    disposeInit = () => disposeGpt(policy.params);
  }
  const arch = options.architectures.create([options.architecture, options.architectureOptions], '--arch');
  let ensemble: TrainableEnsemble;
  try {
    ensemble = arch.build({
      gptConfig,
      members: options.members,
      rng: new Rng(options.config.seed ?? 0).fork('ensemble'),
      initBackbone: init,
    });
  } finally {
    disposeInit();
  }
  try {
    const config = resolveRewardTrainConfig({ maxLength: gptConfig.contextLength, ...options.config });
    const began = Date.now();
    const result = await trainRewardEnsemble({
      ensemble,
      tokenizer,
      pairs: options.train,
      config,
      out: options.out,
      resume: options.resume,
      signal: options.signal,
      onNote: (m) => options.progress?.log(m),
      onProgress: (p) =>
        options.progress?.update(
          p.step,
          p.steps,
          `${p.phase} (${p.phaseIndex + 1}/${p.phases}) loss ${p.loss.toFixed(3)}  ${p.pairsPerSecond.toFixed(1)} pairs/s`,
        ),
    });
    const trainSeconds = (Date.now() - began) / 1000;
    const counts = ensemble.paramCounts();
    if (result.stoppedEarly) return { stoppedEarly: true, metrics: undefined, params: counts, trainSeconds };
    options.progress?.log(`scoring ${options.eval.length} held-out pairs`);
    const metrics =
      options.eval.length === 0
        ? undefined
        : evaluatePairs(ensemble, tokenizer, options.eval, { maxLength: gptConfig.contextLength });
    const training = {
      data: options.dataDescription,
      trainPairs: options.train.length,
      evalPairs: options.eval.length,
      init: options.init,
      steps: result.steps,
      trainSeconds,
      config,
      ...(metrics === undefined ? {} : { eval: metricsSummary(metrics) }),
    };
    await saveEnsemble(options.out, ensemble, {
      architectureSource: options.architectures.get(options.architecture).source,
      vocab: { id: tokenizer.id, size: tokenizer.vocabSize, json: tokenizer.vocab.toJSON() },
      training,
    });
    if (metrics !== undefined)
      writeFileSync(
        path.join(options.out, 'eval.json'),
        `${JSON.stringify(metricsSummary(metrics), null, 2)}\n`,
      );
    return { stoppedEarly: false, metrics, params: counts, trainSeconds };
  } finally {
    ensemble.dispose();
  }
}

export function formatMetrics(m: RewardMetrics): string {
  const pct = (x: number | undefined): string =>
    x === undefined || Number.isNaN(x) ? 'n/a' : `${(100 * x).toFixed(1)}%`;
  const num = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(3));
  return [
    `accuracy ${pct(m.accuracy)} (members ${m.memberAccuracy.map(pct).join(', ')}; "longer wins" baseline ${pct(m.longerWinsAccuracy)})`,
    `ECE ${num(m.ece)}  member correlation ${num(m.memberCorrelation)}  disagreement ${num(m.disagreement)}  reward–length correlation ${num(m.lengthCorrelation)}  (${m.pairs} pairs)`,
  ].join('\n');
}
