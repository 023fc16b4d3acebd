/**
 * Reward-model training: preference data → a trained ensemble folder with metrics (`quorum train-rm`,
 * and every reward model of `quorum reproduce`).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { disposeGpt, type GptConfig, type GptPresetName, gptPreset, namedParameters } from '@quorum/backbone';
import {
  CheckpointStore,
  ConfigError,
  DataError,
  Rng,
  type StrategyRegistry,
  type StrategySpec,
  writeJsonAtomic,
} from '@quorum/core';
import {
  balanceLength,
  datasets,
  type LoadStats,
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
import {
  DEFAULT_MAX_LENGTH,
  type MaxLengthChoice,
  maxLengthFromLengths,
  pairLengths,
  resolveMaxLength,
  truncatedShare,
} from './length.js';
import { loadPolicyWithTokenizer } from './load.js';
import { type RunProgress, silentProgress } from './progress.js';
import { seededSubset } from './subset.js';

export interface PairSource {
  /** `alpaca-eval` or a JSONL path. */
  readonly data: string;
  readonly format?: string | undefined;
  /** AlpacaEval pair options. */
  readonly pairs?: 'reference' | 'derived' | 'both' | undefined;
  /**
   * Length balancing of the training pairs (@quorum/data's `balanceLength`, answer lengths in characters):
   * `weights` up-weights pairs where the shorter answer won so both kinds carry half the weight; `sample`
   * keeps an equal number of each (a seeded subset of the larger kind). For a file too, after the split.
   */
  readonly balance?: 'none' | 'weights' | 'sample' | undefined;
  /** A user's held-out file, or a fraction of the data to hold out. */
  readonly evalData?: string | undefined;
  readonly evalFraction?: number | undefined;
  /** Seeded subset sizes. */
  readonly trainLimit?: number | undefined;
  readonly evalLimit?: number | undefined;
  readonly seed: number;
  /** Longest line of a JSONL file, in bytes (default: @quorum/data's 8 MiB). */
  readonly maxLineBytes?: number | undefined;
}

/** What became of a preference file's rows before the split (recorded in quorum.json). */
export interface PairFileCounts {
  /** Non-blank rows read. */
  readonly rows: number;
  /** Ties (draws) left out. */
  readonly ties: number;
  /** Pairs whose chosen and rejected answers are the same text, left out (nothing to learn). */
  readonly identical: number;
  /** Repeats of an earlier pair (same prompt, chosen and rejected), left out. */
  readonly duplicates: number;
  /** Training pairs also in --eval-data, left out of training (they would leak into the eval). */
  readonly inEval: number;
}

/** The key two pairs share when they are the same pair: prompt, chosen and rejected. */
function pairKey(p: PreferencePair): string {
  return JSON.stringify([p.prompt.instruction, p.prompt.input, p.chosen, p.rejected]);
}

/**
 * Leaves out pairs whose chosen and rejected answers are the same text and repeats of an earlier pair
 * (the same prompt, chosen and rejected; the first is kept), counting both.
 */
export function dedupePairs(pairs: readonly PreferencePair[]): {
  pairs: PreferencePair[];
  identical: number;
  duplicates: number;
} {
  const seen = new Set<string>();
  const out: PreferencePair[] = [];
  let identical = 0;
  let duplicates = 0;
  for (const p of pairs) {
    if (p.chosen === p.rejected) {
      identical++;
      continue;
    }
    const key = pairKey(p);
    if (seen.has(key)) {
      duplicates++;
      continue;
    }
    seen.add(key);
    out.push(p);
  }
  return { pairs: out, identical, duplicates };
}

/** A user's preference file, deduplicated; no usable pair is a DataError naming the file and the counts. */
async function loadPairFile(
  file: string,
  source: PairSource,
): Promise<{ pairs: PreferencePair[]; stats: LoadStats; identical: number; duplicates: number }> {
  const { pairs, stats } = await loadPreferencePairs(file, {
    ...(source.format === undefined ? {} : { format: source.format }),
    ...(source.maxLineBytes === undefined ? {} : { maxLineBytes: source.maxLineBytes }),
  });
  const unique = dedupePairs(pairs);
  if (unique.pairs.length === 0) {
    const what =
      stats.rows === 0
        ? 'the file has no rows'
        : `all ${stats.rows} rows were left out: ${stats.ties} ties, ${unique.identical} with chosen = rejected, ${unique.duplicates} duplicates`;
    throw new DataError(`no usable preference pairs (${what})`, {
      location: { file },
      hint: 'a preference file needs rows with a preferred and a different rejected answer, e.g. {"prompt": "...", "chosen": "...", "rejected": "..."}',
    });
  }
  return { ...unique, stats };
}

/**
 * Train and eval pairs. AlpacaEval keeps its fixed split: nothing from an eval instruction is trained on.
 * A user's file is deduplicated before it is split (so no pair lands in both halves), pairs with chosen =
 * rejected are left out, and so are training pairs that are also in `evalData`; `progress` is warned of
 * each and `counts` says how many.
 */
export async function loadPairs(
  source: PairSource,
  progress: RunProgress = silentProgress,
): Promise<{
  train: PreferencePair[];
  eval: PreferencePair[];
  description: string;
  /** For a file: what was left out before the split. */
  counts?: PairFileCounts | undefined;
}> {
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
  const loaded = await loadPairFile(source.data, source);
  const { pairs } = loaded;
  let train = pairs;
  let evalPairs: PreferencePair[] = [];
  let inEval = 0;
  if (source.evalData !== undefined) {
    evalPairs = (await loadPairFile(source.evalData, source)).pairs;
    const held = new Set(evalPairs.map(pairKey));
    train = pairs.filter((p) => !held.has(pairKey(p)));
    inEval = pairs.length - train.length;
    if (train.length === 0) {
      throw new DataError(
        `every one of the ${pairs.length} pairs is also in --eval-data ${source.evalData}`,
        {
          location: { file: source.data },
          hint: 'train and evaluate on different pairs',
        },
      );
    }
  } else {
    const fraction = source.evalFraction ?? 0.1;
    const order = rng.fork('holdout').permutation(pairs.length);
    const nEval = Math.max(1, Math.floor(pairs.length * fraction));
    if (nEval >= pairs.length) {
      throw new DataError(
        `only ${pairs.length} distinct pair${pairs.length === 1 ? '' : 's'}: holding out ${nEval} for eval leaves none to train on`,
        {
          location: { file: source.data },
          hint: 'add pairs, lower --eval-fraction, or pass a held-out file with --eval-data',
        },
      );
    }
    evalPairs = order.slice(0, nEval).map((i) => pairs[i] as PreferencePair);
    train = order.slice(nEval).map((i) => pairs[i] as PreferencePair);
  }
  const counts: PairFileCounts = {
    rows: loaded.stats.rows,
    ties: loaded.stats.ties,
    identical: loaded.identical,
    duplicates: loaded.duplicates,
    inEval,
  };
  if (counts.identical + counts.duplicates + counts.inEval > 0) {
    progress.log(
      `warning: ${source.data}: left out ${counts.duplicates} duplicate pairs (same prompt, chosen and rejected), ${counts.identical} with chosen = rejected${source.evalData === undefined ? '' : ` and ${counts.inEval} also in --eval-data`}; ${pairs.length - inEval} of ${counts.rows} rows remain`,
    );
  }
  const balance = source.balance ?? 'none';
  if (balance !== 'none') train = balanceLength(train, { method: balance, seed: source.seed });
  return {
    train: seededSubset(train, source.trainLimit, rng.fork('train'), drawn),
    eval: seededSubset(evalPairs, source.evalLimit, rng.fork('eval'), drawn),
    description: balance === 'none' ? source.data : `${source.data} (balance ${balance})`,
    counts,
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
  /** Context of a model built from scratch; with `maxLength: 'auto'` the chosen length is used instead. */
  readonly contextLength: number;
  /**
   * What the transformer starts from: a Quorum policy folder (the paper starts reward models from its SFT
   * model), `hf:DIR` (a Hugging Face model folder, with its tokenizer), or `scratch`.
   */
  readonly init: string;
  /**
   * Tokens per sequence (prompt + answer); default: the model's context, capped at DEFAULT_MAX_LENGTH.
   * `auto` chooses it from the data (`chooseMaxLength`): the `maxLengthQuantile` of the training pairs'
   * token lengths, rounded up to a multiple of 8 and bounded by the model's context; the choice is logged
   * with the share of pairs it truncates and recorded in quorum.json (`training.maxLengthChoice`). From
   * scratch the data also sizes the model: its context is the chosen length (bounded by
   * DEFAULT_MAX_LENGTH, not by `contextLength`). A resume of an `auto` run uses the saved state's length.
   */
  readonly maxLength?: number | 'auto' | undefined;
  /** With `maxLength: 'auto'`: the share of training pairs that should fit (default 0.95). */
  readonly maxLengthQuantile?: number | undefined;
  /** Pairs longer than maxLength: `left` (default) keeps each answer's end, `drop` leaves the pair out (TRL). */
  readonly truncation?: TruncationMode | undefined;
  readonly train: readonly PreferencePair[];
  readonly eval: readonly PreferencePair[];
  /** Where the pairs came from, as saved in quorum.json. */
  readonly dataDescription: string;
  readonly config: Partial<RewardTrainConfig>;
  /** The reward-model folder to write. */
  readonly out: string;
  /**
   * Continue from the newest state in `<out>/train-state` (a fresh start when there is none). The state's
   * settings must equal this run's: the training config (but logEvery, checkpointEvery; maxLength is the
   * resolved number), architecture and its options, members, size, init, data, truncation, the number of
   * training pairs and, with `maxLength: 'auto'`, its quantile.
   */
  readonly resume: boolean;
  /** Resume even when the settings differ (warned through progress, recorded in quorum.json). */
  readonly forceResume?: boolean | undefined;
  /** What loadPairs left out of the data, recorded in quorum.json. */
  readonly dataCounts?: PairFileCounts | undefined;
  /** Stops after the next checkpoint; the result says `stoppedEarly`. */
  readonly signal?: AbortSignal | undefined;
}

export interface RewardRunResult {
  readonly stoppedEarly: boolean;
  /** Resumes that went ahead with other settings (forceResume), with the saved and current values. */
  readonly forcedResumes: RewardTrainResult['forcedResumes'];
  /** Training pairs used, tied (skipped), dropped (`drop`) and truncated (`left`). */
  readonly pairs: RewardTrainResult['pairs'];
  readonly maxLength: number;
  /** With `maxLength: 'auto'`: how the length was chosen (`truncatedShare` at the length used). */
  readonly maxLengthChoice?: MaxLengthChoice | undefined;
  readonly metrics: RewardMetrics | undefined;
  readonly params: { total: number; trainable: number };
  readonly trainSeconds: number;
  /** Per phase: planned and done steps, and why it stopped early (time budget, early stopping). */
  readonly phases: RewardTrainResult['phases'];
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
 * The largest context `maxLength: 'auto'` gives a model built from scratch: TRL's default max_length (a
 * from-scratch model's position table grows with it, so very long data is cut here rather than trained on).
 */
const AUTO_SCRATCH_CONTEXT = DEFAULT_MAX_LENGTH;

/** The newest saved state's max length when that run chose it by `auto` (its settings hold the quantile). */
async function savedAutoMaxLength(out: string): Promise<number | undefined> {
  const latest = await new CheckpointStore(path.join(out, 'train-state'), { keep: 2 }).latest();
  const settings = latest?.meta.settings as Record<string, unknown> | undefined;
  if (settings?.maxLengthQuantile === undefined) return undefined;
  return typeof settings.maxLength === 'number' ? settings.maxLength : undefined;
}

/**
 * `maxLength: 'auto'`: the length chosen from the training pairs (ties, never trained on, left out) within
 * `contextLength`, logged with the share truncated. A resume uses the saved state's length when that run
 * chose its own by `auto`, so a resumed run keeps its length (and a from-scratch model its shape) even
 * when the data or the quantile would now choose another (a forced resume).
 */
async function autoMaxLength(
  options: RewardRunOptions,
  tokenizer: TextTokenizer,
  contextLength: number,
  progress: RunProgress,
): Promise<MaxLengthChoice> {
  const pairs = options.train.filter((p) => p.tie !== true);
  if (pairs.length === 0) {
    throw new DataError(
      `maxLength auto has no pairs to measure: all ${options.train.length} training pairs are ties`,
      {
        location: { field: 'maxLength' },
        hint: 'train on pairs with a preferred answer, or pass a number of tokens',
      },
    );
  }
  const lengths = pairLengths(pairs, tokenizer);
  const choice = maxLengthFromLengths(lengths, {
    contextLength,
    ...(options.maxLengthQuantile === undefined ? {} : { quantile: options.maxLengthQuantile }),
  });
  const saved = options.resume ? await savedAutoMaxLength(options.out) : undefined;
  if (saved === undefined || saved === choice.maxLength) {
    progress.log(choice.summary);
    return choice;
  }
  resolveMaxLength({ contextLength }, saved, 'maxLength');
  const share = truncatedShare(lengths, saved);
  const summary = `max length ${saved} (the saved state's; auto now chooses ${choice.maxLength}); ${(share * 100).toFixed(1)}% of pairs truncated`;
  progress.log(summary);
  return { ...choice, maxLength: saved, boundedByContext: false, truncatedShare: share, summary };
}

/**
 * Trains a reward ensemble with the Bradley-Terry loss, scores the held-out pairs and writes the folder
 * (quorum.json, weights, tokenizer, metrics.jsonl, eval.json).
 */
export async function runRewardTraining(
  options: RewardRunOptions,
  progress: RunProgress = silentProgress,
): Promise<RewardRunResult> {
  const requested = options.maxLength ?? options.config.maxLength;
  if (options.maxLengthQuantile !== undefined && requested !== 'auto') {
    throw new ConfigError(`maxLengthQuantile ${options.maxLengthQuantile} needs maxLength 'auto'`, {
      location: { field: 'maxLengthQuantile' },
      hint: "pass maxLength 'auto' (--max-length auto), or drop the quantile",
    });
  }
  const scratch = options.init === 'scratch';
  let tokenizer: TextTokenizer;
  let init: Record<string, tf.Tensor> | undefined;
  let gptConfig: GptConfig | undefined;
  let disposeInit = (): void => {};
  let ensemble: TrainableEnsemble;
  let maxLength: number;
  let choice: MaxLengthChoice | undefined;
  try {
    if (scratch) {
      tokenizer = projectTokenizer();
    } else {
      const policy = await loadPolicyWithTokenizer(options.init);
      tokenizer = policy.tokenizer;
      gptConfig = policy.config;
      init = namedParameters(policy.params);
      disposeInit = () => disposeGpt(policy.params);
    }
    if (requested === 'auto') {
      // From scratch the data sizes the model too: its context is the chosen length.
      const bound = gptConfig === undefined ? AUTO_SCRATCH_CONTEXT : gptConfig.contextLength;
      choice = await autoMaxLength(options, tokenizer, bound, progress);
    }
    gptConfig ??= gptPreset(options.size, {
      vocabSize: tokenizer.vocabSize,
      contextLength: choice?.maxLength ?? options.contextLength,
    });
    maxLength =
      choice?.maxLength ??
      resolveMaxLength(gptConfig, requested === 'auto' ? undefined : requested, 'maxLength');
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
      forceResume: options.forceResume,
      settings: {
        architecture: options.architecture.name,
        architectureOptions: options.architecture.options,
        members: options.members,
        ...(options.init === 'scratch' ? { size: options.size } : {}),
        init: options.init,
        data: options.dataDescription,
        truncation,
        trainPairs: options.train.length,
        // An auto length is compared as the number it resolved to (config.maxLength) and its quantile.
        ...(choice === undefined ? {} : { maxLengthQuantile: choice.quantile }),
      },
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
    const done = {
      pairs: result.pairs,
      maxLength,
      ...(choice === undefined ? {} : { maxLengthChoice: choice }),
      params: counts,
      trainSeconds,
      forcedResumes: result.forcedResumes,
      phases: result.phases,
    };
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
      ...(choice === undefined
        ? {}
        : {
            maxLengthChoice: {
              quantile: choice.quantile,
              quantileLength: choice.quantileLength,
              truncatedShare: choice.truncatedShare,
              p50: choice.p50,
              p90: choice.p90,
              p99: choice.p99,
              longest: choice.longest,
            },
          }),
      pairs: result.pairs,
      ...(options.dataCounts === undefined ? {} : { dataCounts: options.dataCounts }),
      steps: result.steps,
      phases: result.phases,
      ...(result.validationPairs === 0 ? {} : { validationPairs: result.validationPairs }),
      trainSeconds,
      config,
      ...(result.forcedResumes.length === 0 ? {} : { forcedResumes: result.forcedResumes }),
      ...(metrics === undefined ? {} : { eval: metricsSummary(metrics) }),
    };
    await saveEnsemble(options.out, ensemble, {
      architectureSource: options.architecture.source,
      tokenizer,
      training,
    });
    if (metrics !== undefined)
      await writeJsonAtomic(path.join(options.out, 'eval.json'), metricsSummary(metrics));
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
    `ECE ${num(m.ece)}  member correlation ${m.memberAccuracy.length === 1 ? '1 (one member)' : num(m.memberCorrelation)}  disagreement ${num(m.disagreement)}  reward–length correlation ${num(m.lengthCorrelation)}  (${m.pairs} pairs)`,
  ].join('\n');
}
