/**
 * Best-of-n (`quorum best-of-n`):
 *   online:  sample n answers per prompt from a policy, keep the one with the highest aggregate;
 *   offline: choose among pre-generated answers and estimate the gold win rate of Best-of-n for every n
 *            from one pool (unbiased estimator), with the random and longest-answer baselines; with the
 *            pools' reference answers, also the length-controlled win rate of every point and each rule's
 *            reward–length correlation of the picks.
 */
import { disposeGpt } from '@quorum/backbone';
import {
  type BaselinePoint,
  type BestOfNConfig,
  bestOfNStream,
  type CurvePoint,
  evaluateOffline,
  type LabelledRule,
  type OfflineReport,
  type Pool,
  poolsFromAlpacaEval,
  readPoolFile,
  readPromptFile,
  type ScoredPool,
  scorePools,
  selectFromPool,
} from '@quorum/best-of-n';
import { type AtomicOutput, openAtomicOutput, type StrategyRegistry } from '@quorum/core';
import { datasets, type Prompt } from '@quorum/data';
import type { EnsembleArchitecture, LoadedEnsemble } from '@quorum/ensemble';
import { loadPolicyWithTokenizer, loadRewardModel, type PolicyWithTokenizer } from './load.js';
import { type RunProgress, silentProgress } from './progress.js';

/** The shipped dataset's name where a pool or prompt file is expected. */
export const ALPACA_EVAL = 'alpaca-eval';

/** Candidate pools: the shipped AlpacaEval answers of `split` (51 judged per instruction) or a JSONL file. */
export async function loadPools(
  source: string,
  split: 'eval' | 'train' = 'eval',
  limit?: number,
): Promise<Pool[]> {
  const pools =
    source === ALPACA_EVAL
      ? poolsFromAlpacaEval((await datasets.alpacaEval()).candidatePools(split))
      : await readPoolFile(source);
  return limit === undefined ? pools : pools.slice(0, limit);
}

/** Prompts: the shipped AlpacaEval instructions of `split`, or a JSONL of {instruction, input?}. */
export async function loadPrompts(
  source: string,
  split: 'eval' | 'train' = 'eval',
  limit?: number,
): Promise<Prompt[]> {
  let prompts: Prompt[];
  if (source === ALPACA_EVAL) {
    const data = await datasets.alpacaEval();
    prompts = data.split(split).map((i) => data.prompt(i.id));
  } else prompts = await readPromptFile(source);
  return limit === undefined ? prompts : prompts.slice(0, limit);
}

interface BestOfNCommon {
  /** The reward-model folder. */
  readonly reward: string;
  /** Architectures the reward model may use (plugins included). */
  readonly architectures: StrategyRegistry<EnsembleArchitecture>;
}

export interface OfflineBestOfNOptions extends BestOfNCommon {
  readonly mode: 'offline';
  readonly pools: readonly Pool[];
  /** Names the pools in the report, e.g. `alpaca-eval:eval` or the file. */
  readonly poolSource: string;
  /** The rules compared, each with its label. */
  readonly rules: readonly LabelledRule[];
  /** The curve's n values. */
  readonly ns: readonly number[];
  /** Answers per reward forward pass. */
  readonly batchSize: number;
  /** Writes the report (JSON) here when given: its folder is checked first, the file written at the end. */
  readonly out?: string | undefined;
}

export interface OnlineBestOfNOptions extends BestOfNCommon {
  readonly mode: 'online';
  /** The policy folder to sample from. */
  readonly policy: string;
  readonly prompts: readonly Prompt[];
  /** The one rule that chooses. */
  readonly rule: LabelledRule;
  /** n, sampling and chunking, resolved with @quorum/best-of-n's `resolveBestOfNConfig`. */
  readonly config: BestOfNConfig;
  /** One JSON row per prompt, streamed to a temp file renamed here once every prompt is done. */
  readonly out: string;
}

export type BestOfNRunOptions = OfflineBestOfNOptions | OnlineBestOfNOptions;

/** What the offline report file holds before the curves. */
interface OfflineHeader {
  readonly kind: 'quorum-best-of-n-offline';
  readonly pool: string;
  readonly reward: { readonly dir: string; readonly architecture: string; readonly members: number };
  readonly rules: readonly { readonly label: string; readonly rule: string }[];
}

export type OfflineBestOfNResult =
  | {
      readonly mode: 'offline';
      readonly gold: true;
      readonly header: OfflineHeader;
      readonly report: OfflineReport;
      readonly answers: number;
    }
  | {
      readonly mode: 'offline';
      readonly gold: false;
      readonly header: OfflineHeader;
      /** Each rule's pick per pool (no verdicts, so no win rate). */
      readonly perPrompt: readonly Record<string, unknown>[];
      readonly answers: number;
    };

export interface OnlineBestOfNResult {
  readonly mode: 'online';
  readonly prompts: number;
  readonly n: number;
  /** Mean over prompts of the chosen answer's aggregate. */
  readonly meanBest: number;
  /** Mean over prompts of the mean aggregate of all n samples. */
  readonly meanSample: number;
}

export type BestOfNRunResult = OfflineBestOfNResult | OnlineBestOfNResult;

/** Runs Best-of-n online or offline (see this file's header). */
export async function runBestOfN(
  options: OfflineBestOfNOptions,
  progress?: RunProgress,
): Promise<OfflineBestOfNResult>;
export async function runBestOfN(
  options: OnlineBestOfNOptions,
  progress?: RunProgress,
): Promise<OnlineBestOfNResult>;
export async function runBestOfN(
  options: BestOfNRunOptions,
  progress?: RunProgress,
): Promise<BestOfNRunResult>;
export async function runBestOfN(
  options: BestOfNRunOptions,
  progress: RunProgress = silentProgress,
): Promise<BestOfNRunResult> {
  return options.mode === 'offline' ? runOffline(options, progress) : runOnline(options, progress);
}

/** Every candidate of every pool scored once by each member (the ensemble is disposed by the caller). */
export function scoreCandidates(
  reward: Pick<LoadedEnsemble, 'ensemble' | 'tokenizer'>,
  pools: readonly Pool[],
  batchSize: number | undefined,
  progress: RunProgress,
  detail?: () => string,
): ScoredPool[] {
  return scorePools(reward.ensemble, reward.tokenizer, pools, {
    ...(batchSize === undefined ? {} : { batchSize }),
    onProgress: (p) =>
      progress.update(p.rows, p.totalRows, detail?.() ?? `${p.pools}/${p.totalPools} prompts`),
  });
}

/** Opens `file` for an all-or-nothing write when given (so a bad path fails before any scoring). */
async function openOut(file: string | undefined): Promise<AtomicOutput | undefined> {
  return file === undefined ? undefined : openAtomicOutput(file);
}

async function runOffline(
  options: OfflineBestOfNOptions,
  progress: RunProgress,
): Promise<OfflineBestOfNResult> {
  const out = await openOut(options.out);
  try {
    const result = await offlineResult(options, progress);
    if (out !== undefined) {
      const body = result.gold
        ? { ...result.header, ...result.report }
        : { ...result.header, ns: [], perPrompt: result.perPrompt };
      await out.write(`${JSON.stringify(body, null, 2)}\n`);
      await out.commit();
    }
    return result;
  } catch (error) {
    await out?.abort();
    throw error;
  }
}

async function offlineResult(
  options: OfflineBestOfNOptions,
  progress: RunProgress,
): Promise<OfflineBestOfNResult> {
  const loaded = await loadRewardModel(options.reward, options.architectures);
  const { ensemble } = loaded;
  let scored: ScoredPool[];
  try {
    scored = scoreCandidates(loaded, options.pools, options.batchSize, progress);
  } finally {
    ensemble.dispose();
  }
  const answers = scored.reduce((n, p) => n + p.candidates.length, 0);
  const header: OfflineHeader = {
    kind: 'quorum-best-of-n-offline',
    pool: options.poolSource,
    reward: { dir: options.reward, architecture: ensemble.architecture, members: ensemble.members },
    rules: options.rules.map((r) => ({ label: r.label, rule: r.rule.name })),
  };
  const hasGold = scored.every((p) => p.candidates.every((c) => c.gold !== undefined));
  if (!hasGold) {
    const perPrompt = scored.map((p) => ({
      id: p.id,
      instruction: p.prompt.instruction,
      input: p.prompt.input,
      candidates: p.candidates.length,
      best: Object.fromEntries(
        options.rules.map(({ label, rule }) => {
          const { aggregates: _, ...choice } = selectFromPool(p, rule);
          return [label, { ...choice, output: p.candidates[choice.index]?.output }];
        }),
      ),
    }));
    return { mode: 'offline', gold: false, header, perPrompt, answers };
  }
  const report = evaluateOffline(scored, options.rules, options.ns);
  return { mode: 'offline', gold: true, header, report, answers };
}

async function runOnline(options: OnlineBestOfNOptions, progress: RunProgress): Promise<OnlineBestOfNResult> {
  const { rule, config, prompts } = options;
  const out = await openAtomicOutput(options.out);
  let policy: PolicyWithTokenizer | undefined;
  let reward: LoadedEnsemble | undefined;
  let sumBest = 0;
  let sumAll = 0;
  try {
    policy = await loadPolicyWithTokenizer(options.policy);
    reward = await loadRewardModel(options.reward, options.architectures);
    const stream = bestOfNStream(
      policy,
      { ensemble: reward.ensemble, tokenizer: reward.tokenizer, rule: rule.rule },
      prompts,
      config,
      {
        onChunk: (p) =>
          progress.update(
            p.promptIndex * p.n + p.done,
            p.prompts * p.n,
            `prompt ${p.promptIndex + 1}/${p.prompts}`,
          ),
      },
    );
    for (const result of stream) {
      sumBest += result.best.aggregate;
      sumAll += result.scores.aggregate.reduce((a, b) => a + b, 0) / result.n;
      await out.write(`${JSON.stringify({ ...result, label: rule.label })}\n`);
    }
    await out.commit();
  } catch (error) {
    await out.abort();
    throw error;
  } finally {
    reward?.ensemble.dispose();
    if (policy !== undefined) disposeGpt(policy.params);
  }
  const P = Math.max(prompts.length, 1);
  return {
    mode: 'online',
    prompts: prompts.length,
    n: config.n,
    meanBest: sumBest / P,
    meanSample: sumAll / P,
  };
}

const cell = (p: CurvePoint | undefined): string =>
  p === undefined ? '' : `${p.winRate.toFixed(1)} ± ${p.stderr.toFixed(1)}`;

const lcCell = (p: BaselinePoint | undefined): string => cell(p?.lc as CurvePoint | undefined);

const corr = (v: number | null): string => (v === null || !Number.isFinite(v) ? '–' : v.toFixed(2));

/**
 * The table of an offline run: win rate ± stderr per (rule, n), each rule's length-controlled win rate
 * (AlpacaEval 2 LC) on the line below it, then the baselines (raw and LC), then each rule's reward–length
 * correlation of the picks (Pearson / Spearman).
 */
export function renderOfflineTable(report: OfflineReport): string {
  const hasLc = report.baselines.random.lc !== undefined;
  const width = Math.max(16, ...report.rules.map((r) => r.label.length + 5));
  const head = ['rule'.padEnd(width), ...report.ns.map((n) => `n=${n}`.padEnd(13))].join('');
  const line = (label: string, cells: readonly string[]): string =>
    [label.padEnd(width), ...cells.map((c) => c.padEnd(13))].join('').trimEnd();
  const row = (label: string, points: readonly (CurvePoint | undefined)[]): string =>
    line(label, points.map(cell));
  const lcRow = (label: string, points: readonly (BaselinePoint | undefined)[]): string[] =>
    hasLc ? [line(`${label} LC`, points.map(lcCell))] : [];
  return [
    `gold win rate against the reference answer (%, mean over ${report.prompts} prompts ± standard error)`,
    ...(hasLc
      ? [
          'LC: length-controlled win rate (AlpacaEval 2: logistic fit on tanh(Δlength / sd), read at Δlength = 0)',
        ]
      : []),
    head.trimEnd(),
    ...report.rules.flatMap((r) => [row(r.label, r.curve), ...lcRow(r.label, r.curve)]),
    row('random', [report.baselines.random]),
    ...lcRow('random', [report.baselines.random]),
    row('longest', report.baselines.longest),
    ...lcRow('longest', report.baselines.longest),
    '',
    'reward–length correlation of the picked answers (Pearson / Spearman)',
    ...report.rules.map((r) =>
      // JSON written NaN as null: accept both
      line(
        r.label,
        r.curve.map(
          (p) =>
            `${corr(p.rewardLength.pearson as number | null)} / ${corr(p.rewardLength.spearman as number | null)}`,
        ),
      ),
    ),
  ].join('\n');
}
