/**
 * `quorum reproduce`: the paper's study on the shipped data, stage by stage, each stage's result cached
 * in `<out>/stages/*.json` so a rerun continues where it stopped.
 *   1. an SFT policy per seed (everything starts from it, as in the paper);
 *   2. reward models — single and the three ensembles (k = 3) — on the proxy part of the train split;
 *      accuracy and ECE on the eval split;
 *   3. Best-of-n over the shipped eval-split answer pools, n ∈ ns, rules mean and lcb, judged by GPT-4's
 *      shipped verdicts (the preference table) — Figure 2(a);
 *   4. PPO from the SFT policy with each reward model, judged against the SFT policy's answers by a gold
 *      reward model trained on the gold part of the train split (which no proxy sees) — Figure 2(b);
 *   5. costs: parameters, peak tensor memory, training time per architecture.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { AggregationRule } from '@quorum/aggregation';
import { disposeGpt } from '@quorum/backbone';
import { evaluateOffline, type LabelledRule, type Pool, poolsFromAlpacaEval } from '@quorum/best-of-n';
import {
  ConfigError,
  Rng,
  type StrategyRegistry,
  type StrategySpec,
  writeFileAtomic,
  writeJsonAtomic,
} from '@quorum/core';
import { datasets, type PreferencePair, type Prompt } from '@quorum/data';
import { type EnsembleArchitecture, scoreAnswers } from '@quorum/ensemble';
import {
  type ArchitectureReport,
  type BaselineCurve,
  type BaselineCurvePoint,
  type BestOfNRow,
  lengthControlledWinRate,
  type Outcome,
  outcomeOf,
  type PpoPoint,
  type Report,
  rewardLengthCorrelation,
  rewardModelJudge,
  type WrittenReport,
  winRate,
  writeReport,
} from '@quorum/eval';
import { resolvePpoConfig } from '@quorum/ppo';
import * as tf from '@tensorflow/tfjs';
import { answerPrompts } from './answer.js';
import { scoreCandidates } from './best-of-n.js';
import { loadPolicyWithTokenizer, loadRewardModel } from './load.js';
import { runPpo } from './ppo.js';
import type { RunPreset } from './presets.js';
import { type RunProgress, silentProgress } from './progress.js';
import { type ResolvedArchitecture, resolveArchitecture, runRewardTraining } from './reward.js';
import { runSft } from './sft.js';
import { seededSubset } from './subset.js';

/** The architectures the paper compares, in the report's order. */
export const REPRODUCE_ARCHITECTURES: readonly string[] = ['single', 'independent', 'linear-heads', 'lora'];
/** The rules Best-of-n compares: mean and lcb (β = 1). */
export const REPRODUCE_RULES: readonly { readonly label: string; readonly spec: StrategySpec }[] = [
  { label: 'mean', spec: 'mean' },
  { label: 'lcb', spec: ['lcb', { beta: 1 }] },
];
/** k of every ensemble (the single architecture has 1). */
export const REPRODUCE_MEMBERS = 3;

/** The strategies a study uses, each resolved through a registry (plugins included) before any work. */
export interface ReproduceStrategies {
  /** Loads the saved reward models. */
  readonly architectureRegistry: StrategyRegistry<EnsembleArchitecture>;
  /** The architectures compared, in order. */
  readonly architectures: readonly ResolvedArchitecture[];
  /** The gold reward model's architecture (`single`). */
  readonly gold: ResolvedArchitecture;
  /** The rules Best-of-n compares, each with its label. */
  readonly rules: readonly LabelledRule[];
  /** The rule PPO maximises and the gold judge aggregates with (`mean`). */
  readonly ppoRule: LabelledRule;
}

/**
 * Resolves a study's architectures and rules by name through the registries (a plugin's too); unknown
 * names and bad options are ConfigErrors before anything trains. Defaults: the paper's four architectures,
 * mean and lcb.
 */
export function resolveReproduceStrategies(
  registries: {
    readonly architectures: StrategyRegistry<EnsembleArchitecture>;
    readonly rules: StrategyRegistry<AggregationRule>;
  },
  choice: {
    readonly architectures?: readonly StrategySpec[] | undefined;
    readonly rules?: readonly { readonly label: string; readonly spec: StrategySpec }[] | undefined;
  } = {},
): ReproduceStrategies {
  const architectures = (choice.architectures ?? REPRODUCE_ARCHITECTURES).map((spec) =>
    resolveArchitecture(registries.architectures, spec, 'architectures'),
  );
  const twice = architectures.find((a, i) => architectures.findIndex((b) => b.name === a.name) !== i);
  if (twice !== undefined) {
    throw new ConfigError(`architecture "${twice.name}" is named twice`, {
      location: { field: 'architectures' },
      hint: 'name each architecture once',
    });
  }
  return {
    architectureRegistry: registries.architectures,
    architectures,
    gold: resolveArchitecture(registries.architectures, 'single', 'gold'),
    rules: (choice.rules ?? REPRODUCE_RULES).map((r) => ({
      label: r.label,
      rule: registries.rules.create(r.spec, 'rules'),
    })),
    ppoRule: { label: 'mean', rule: registries.rules.create('mean', 'ppo.rule') },
  };
}

export interface ReproduceOptions {
  readonly preset: RunPreset;
  readonly seeds: number;
  /** The run folder: models, stage results and report.{json,md,html}. */
  readonly out: string;
  readonly strategies: ReproduceStrategies;
  /** The compute backend's name, for the report. */
  readonly backend: { readonly name: string };
  /** Package versions, for the report. */
  readonly versions: Record<string, string>;
  /** Stops after the current stage's next checkpoint; the report then says `complete: false`. */
  readonly signal?: AbortSignal | undefined;
}

class Interrupted extends Error {}

/** k for an architecture of the study: 1 for `single`, else REPRODUCE_MEMBERS. */
function membersOf(arch: string): number {
  return arch === 'single' ? 1 : REPRODUCE_MEMBERS;
}

/**
 * The cached stages are only valid for the settings that made them: the first run records its preset and
 * seed count in <out>/reproduce.json, and a later run with other settings is refused (not silently mixed).
 */
async function checkRunSettings(
  out: string,
  settings: { preset: RunPreset; seeds: number; architectures?: string[]; rules?: string[] },
): Promise<void> {
  const file = path.join(out, 'reproduce.json');
  const wanted = JSON.stringify(settings);
  if (existsSync(file)) {
    const had = readFileSync(file, 'utf8').trim();
    if (had !== wanted) {
      const prev = JSON.parse(had) as { preset: { name: string }; seeds: number };
      throw new ConfigError(
        `${out} holds a run with preset ${prev.preset.name} and ${prev.seeds} seed(s) (or other preset values); this run asks for ${settings.preset.name} with ${settings.seeds}`,
        {
          location: { field: '--out' },
          hint: 'rerun with the same --preset and --seeds to continue it, pass --overwrite to start over, or choose another --out',
        },
      );
    }
    return;
  }
  mkdirSync(out, { recursive: true });
  await writeFileAtomic(file, `${wanted}\n`);
}

/** Runs `fn` once: its JSON result is kept in <out>/stages/<name>.json and read back on later runs. */
async function stage<T>(out: string, name: string, progress: RunProgress, fn: () => Promise<T>): Promise<T> {
  const file = path.join(out, 'stages', `${name}.json`);
  if (existsSync(file)) {
    progress.log(`✓ ${name} (cached)`);
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  }
  progress.log(`▶ ${name}`);
  const began = Date.now();
  const value = await fn();
  mkdirSync(path.dirname(file), { recursive: true });
  await writeJsonAtomic(file, { ...value, seconds: (Date.now() - began) / 1000 });
  return { ...value, seconds: (Date.now() - began) / 1000 } as T;
}

interface RmStage {
  accuracy: number;
  ece: number;
  memberCorrelation: number;
  lengthCorrelation: number | undefined;
  params: { total: number; trainable: number };
  trainSeconds: number;
  dir: string;
}

/** A Best-of-n point of a stage file; the LC and correlation fields are absent in stages cached before them. */
interface BonStagePoint {
  n: number;
  winRate: number;
  stderr: number;
  /** Length-controlled win rate (AlpacaEval 2) of the same picks. */
  lc?: { winRate: number; stderr: number };
  /** Reward–length correlation of the picks; a constant side is left out (NaN is not JSON). */
  rewardLength?: { pearson?: number; spearman?: number };
}

interface BonStage {
  curves: Record<string, BonStagePoint[]>;
  peakBytes: number;
  baselines: {
    random: Omit<BonStagePoint, 'n' | 'rewardLength'>;
    longest: Omit<BonStagePoint, 'rewardLength'>[];
  };
}

/** A curve point of @quorum/best-of-n's offline report as a stage point (finite numbers only). */
function bonStagePoint(p: {
  n: number;
  winRate: number;
  stderr: number;
  lc?: { winRate: number; stderr: number } | undefined;
  rewardLength?: { pearson: number; spearman: number } | undefined;
}): BonStagePoint {
  const finite = (k: 'pearson' | 'spearman'): { pearson?: number; spearman?: number } => {
    const v = p.rewardLength?.[k];
    return v !== undefined && Number.isFinite(v) ? { [k]: v } : {};
  };
  return {
    n: p.n,
    winRate: p.winRate,
    stderr: p.stderr,
    ...(p.lc === undefined ? {} : { lc: { winRate: p.lc.winRate, stderr: p.lc.stderr } }),
    ...(p.rewardLength === undefined
      ? {}
      : { rewardLength: { ...finite('pearson'), ...finite('spearman') } }),
  };
}

/** One evaluation of a PPO policy: step s is the policy after s PPO steps (step 0 is the SFT policy). */
interface PpoStagePoint {
  step: number;
  /** Gold win rate (%) of the policy's sampled eval answers against the SFT policy's, and its standard error. */
  goldWinRate: number;
  stderr: number;
  /** Mean gold reward of the policy's eval answers. */
  goldReward: number;
  /** The proxy ensemble's reward of the same eval answers: the PPO rule's aggregate, and each member's mean. */
  proxyReward: number;
  proxyMembers: number[];
  /** The last rollout's (training prompts) mean aggregate and member rewards; absent at step 0. */
  rolloutReward?: number;
  rolloutMembers?: number[];
  /**
   * KL to the SFT policy in nats per answer (the mean over the last rollout's answers of the sum over answer
   * tokens), estimator `klEstimator`: `full` = Σ_v π·log(π/π_SFT) at each answer position (≥ 0). The
   * rollout of step s is drawn before its update, so this is the KL of the policy after s − 1 steps; 0 at
   * step 0. `klPenalty` is the estimate the penalty used (`klPenaltyEstimator`), `klK1`/`klK3` both samples.
   */
  kl: number;
  klEstimator: 'full';
  klPenalty: number;
  klPenaltyEstimator: 'k1' | 'k3';
  klK1: number;
  klK3: number;
  /**
   * Length-controlled gold win rate (AlpacaEval 2) of the same outcomes, regressed on the answers' length
   * difference to the SFT answers (characters), clustered by prompt. Absent in stages cached before it.
   */
  lc?: { winRate: number; stderr: number };
  /** Correlation of the eval answers' gold reward with their length; a constant side is left out (NaN is not JSON). */
  rewardLength?: { pearson?: number; spearman?: number };
}

interface PpoStage {
  /** The rule PPO maximised (its label in the study's rules). */
  rule?: string;
  points: PpoStagePoint[];
}

/** Train instructions split once (seed 0): the proxy part trains the compared reward models, the gold part the judge. */
function splitTrainPairs(pairs: readonly PreferencePair[]): {
  proxy: PreferencePair[];
  gold: PreferencePair[];
} {
  const ids = [...new Set(pairs.map((p) => p.meta?.instructionId ?? -1))].sort((a, b) => a - b);
  const order = new Rng(0).fork('proxy-gold').shuffle([...ids]);
  const goldIds = new Set(order.slice(0, Math.floor(order.length * 0.3)));
  return {
    proxy: pairs.filter((p) => !goldIds.has(p.meta?.instructionId ?? -1)),
    gold: pairs.filter((p) => goldIds.has(p.meta?.instructionId ?? -1)),
  };
}

/** Seeded subsets in the original order, as the study has always drawn them. */
function sample<T>(items: readonly T[], limit: number | undefined, rng: Rng): T[] {
  return seededSubset(items, limit, rng, { keepOrder: true });
}

function check(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new Interrupted('interrupted');
}

/**
 * The LC win rate (mean over seeds, with its spread) when every seed has it, and the mean reward–length
 * correlation over the seeds that have a finite one: the optional fields of a report's Best-of-n row.
 */
function lengthFields(
  perSeed: readonly BonStagePoint[],
): Pick<
  BestOfNRow,
  'lcWinRate' | 'lcStderr' | 'lcSeedSpread' | 'rewardLengthPearson' | 'rewardLengthSpearman'
> {
  const lcs = perSeed.map((p) => p.lc).filter((l) => l !== undefined);
  const corr = (k: 'pearson' | 'spearman'): number[] =>
    perSeed.flatMap((p) => {
      const v = p.rewardLength?.[k];
      return typeof v === 'number' && Number.isFinite(v) ? [v] : [];
    });
  const pearson = corr('pearson');
  const spearman = corr('spearman');
  return {
    ...(lcs.length === perSeed.length && lcs.length > 0
      ? {
          lcWinRate: meanOf(lcs.map((l) => l.winRate)),
          lcStderr: meanOf(lcs.map((l) => l.stderr)),
          ...(lcs.length > 1 ? { lcSeedSpread: stdOf(lcs.map((l) => l.winRate)) } : {}),
        }
      : {}),
    ...(pearson.length > 0 ? { rewardLengthPearson: meanOf(pearson) } : {}),
    ...(spearman.length > 0 ? { rewardLengthSpearman: meanOf(spearman) } : {}),
  };
}

/**
 * The longest-answer and random baseline curves over n on the study's pools, from one architecture's
 * stages (every architecture of a seed sees the same pools), averaged over seeds. A random pick does not
 * depend on n: its point is repeated at every n, so each chart draws it as a line.
 */
function baselineCurves(stages: readonly BonStage[]): Record<string, BaselineCurve> {
  const longest = (stages[0]?.baselines.longest ?? []).map((first, i) => {
    const perSeed = stages.map((s) => s.baselines.longest[i]).filter((p) => p !== undefined);
    return { n: first.n, ...baselinePoint(perSeed) };
  });
  const random = baselinePoint(stages.map((s) => s.baselines.random));
  return {
    longest: {
      description: 'the longest of the n candidates (length in characters as the score)',
      points: longest,
    },
    random: {
      description: 'a random candidate, at any n',
      points: longest.map(({ n }) => ({ n, ...random })),
    },
  };
}

function baselinePoint(
  perSeed: readonly Omit<BonStagePoint, 'n' | 'rewardLength'>[],
): Omit<BaselineCurvePoint, 'n'> {
  const lcs = perSeed.map((p) => p.lc).filter((l) => l !== undefined);
  return {
    winRate: meanOf(perSeed.map((p) => p.winRate)),
    stderr: meanOf(perSeed.map((p) => p.stderr)),
    ...(lcs.length === perSeed.length && lcs.length > 0
      ? { lcWinRate: meanOf(lcs.map((l) => l.winRate)), lcStderr: meanOf(lcs.map((l) => l.stderr)) }
      : {}),
  };
}

function meanOf(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
}

function stdOf(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = meanOf(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

/**
 * The paper's study (see this file's header), each stage cached in `<out>/stages/`, with the same run
 * functions the commands use. Returns the report (also written as report.json, .md and .html).
 */
export async function reproduce(
  options: ReproduceOptions,
  progress: RunProgress = silentProgress,
): Promise<{ report: Report; written: WrittenReport; interrupted: boolean }> {
  const { preset, out, signal, strategies } = options;
  const archNames = strategies.architectures.map((a) => a.name);
  const ruleLabels = strategies.rules.map((r) => r.label);
  const timings: Record<string, number> = {};
  const isDefault =
    archNames.join() === REPRODUCE_ARCHITECTURES.join() &&
    ruleLabels.join() === REPRODUCE_RULES.map((r) => r.label).join();
  // A study of other architectures or rules records them; the paper's study keeps the settings it always had.
  await checkRunSettings(out, {
    preset,
    seeds: options.seeds,
    ...(isDefault ? {} : { architectures: archNames, rules: ruleLabels }),
  });
  const ae = await datasets.alpacaEval();
  const { proxy, gold } = splitTrainPairs(ae.pairs({ split: 'train' }));
  const evalPairs = ae.pairs({ split: 'eval' });
  const seeds = Array.from({ length: options.seeds }, (_, s) => s);
  const rms: Record<string, RmStage[]> = {};
  const bons: Record<string, BonStage[]> = {};
  const ppos: Record<string, PpoStage[]> = {};
  let interrupted = false;
  try {
    // One SFT policy, as in the paper: every reward model and PPO run starts from it; seeds vary the rest.
    const sftDir = path.join(out, 'sft');
    const sft = await stage(out, 'sft', progress, async () => {
      const r = await runSft(
        {
          size: preset.size,
          contextLength: preset.contextLength,
          data: 'alpaca-eval',
          out: sftDir,
          maxSteps: preset.sft.maxSteps,
          batchSize: preset.sft.batchSize,
          seed: 0,
          resume: existsSync(sftDir),
          signal,
        },
        progress,
      );
      if (r.stoppedEarly) throw new Interrupted('interrupted');
      return {
        steps: r.steps,
        evalLoss: r.evalLoss,
        initialEvalLoss: r.initialEvalLoss,
        trainSeconds: r.seconds,
      };
    });
    timings.sft = (sft as { seconds?: number }).seconds ?? 0;
    for (const seed of seeds) {
      // --- reward models on the proxy part
      const rng = new Rng(seed).fork('reproduce');
      const trainPairs = sample(proxy, preset.rm.trainPairs, rng.fork('train-pairs'));
      const heldOut = sample(evalPairs, preset.rm.evalPairs, rng.fork('eval-pairs'));
      for (const resolved of strategies.architectures) {
        const arch = resolved.name;
        check(signal);
        const dir = path.join(out, 'rm', `${arch}-s${seed}`);
        const rm = await stage(out, `rm-${arch}-s${seed}`, progress, async (): Promise<RmStage> => {
          const r = await runRewardTraining(
            {
              architecture: resolved,
              members: membersOf(arch),
              size: preset.size,
              contextLength: preset.contextLength,
              init: sftDir,
              train: trainPairs,
              eval: heldOut,
              dataDescription: 'alpaca-eval train split, proxy part',
              config: {
                batchSize: preset.rm.batchSize,
                gradAccum: preset.rm.gradAccum,
                epochs: preset.rm.epochs,
                ...(preset.rm.maxSteps === undefined ? {} : { maxSteps: preset.rm.maxSteps }),
                seed,
              },
              out: dir,
              resume: existsSync(dir),
              signal,
            },
            progress,
          );
          if (r.stoppedEarly || r.metrics === undefined) throw new Interrupted('interrupted');
          return {
            accuracy: r.metrics.accuracy,
            ece: r.metrics.ece,
            memberCorrelation: r.metrics.memberCorrelation,
            lengthCorrelation: r.metrics.lengthCorrelation,
            params: r.params,
            trainSeconds: r.trainSeconds,
            dir,
          };
        });
        (rms[arch] ??= []).push(rm);
        timings[`rm-${arch}-s${seed}`] = rm.trainSeconds;
      }

      // --- Best-of-n over the shipped pools, judged by GPT-4's verdicts
      const poolRng = rng.fork('pools');
      const allPools = poolsFromAlpacaEval(ae.candidatePools('eval'));
      const pools: Pool[] = sample(allPools, preset.bestOfN.instructions, poolRng.fork('instructions')).map(
        (p, i) => ({
          ...p,
          candidates: sample(p.candidates, preset.bestOfN.candidates, poolRng.fork(`candidates-${i}`)),
        }),
      );
      const ns = preset.bestOfN.ns.filter((n) => pools.every((p) => p.candidates.length >= n));
      for (const arch of archNames) {
        check(signal);
        const bon = await stage(out, `bon-${arch}-s${seed}`, progress, async (): Promise<BonStage> => {
          const loaded = await loadRewardModel(
            path.join(out, 'rm', `${arch}-s${seed}`),
            strategies.architectureRegistry,
          );
          let peakBytes = tf.memory().numBytes;
          try {
            const scored = scoreCandidates(loaded, pools, undefined, progress, () => {
              peakBytes = Math.max(peakBytes, tf.memory().numBytes);
              return `Best-of-n scoring (${arch})`;
            });
            const report = evaluateOffline(scored, strategies.rules, ns);
            const { n: _, ...random } = bonStagePoint(report.baselines.random);
            return {
              curves: Object.fromEntries(report.rules.map((r) => [r.label, r.curve.map(bonStagePoint)])),
              peakBytes,
              baselines: { random, longest: report.baselines.longest.map(bonStagePoint) },
            };
          } finally {
            loaded.ensemble.dispose();
          }
        });
        (bons[arch] ??= []).push(bon);
      }
    }

    // --- gold reward model (the PPO judge), trained on the gold part only
    const goldDir = path.join(out, 'rm', 'gold');
    await stage(out, 'gold-rm', progress, async () => {
      const r = await runRewardTraining(
        {
          architecture: strategies.gold,
          members: 1,
          size: preset.size,
          contextLength: preset.contextLength,
          init: sftDir,
          train: sample(gold, preset.rm.trainPairs, new Rng(1000).fork('gold')),
          eval: sample(evalPairs, preset.rm.evalPairs, new Rng(1000).fork('gold-eval')),
          dataDescription: 'alpaca-eval train split, gold part (disjoint from the proxy part)',
          config: {
            batchSize: preset.rm.batchSize,
            gradAccum: preset.rm.gradAccum,
            epochs: preset.rm.epochs,
            ...(preset.rm.maxSteps === undefined ? {} : { maxSteps: preset.rm.maxSteps * 2 }),
            seed: 1000,
          },
          out: goldDir,
          resume: existsSync(goldDir),
          signal,
        },
        progress,
      );
      if (r.stoppedEarly || r.metrics === undefined) throw new Interrupted('interrupted');
      return { accuracy: r.metrics.accuracy, ece: r.metrics.ece };
    });

    // --- PPO with each proxy reward model, judged by the gold model against the SFT policy
    const evalPrompts = sample(
      ae.split('eval').map((i) => ae.prompt(i.id)),
      preset.ppo.evalPrompts,
      new Rng(7).fork('ppo-eval'),
    );
    const trainPrompts = ae.split('train').map((i) => ae.prompt(i.id));
    const ppoRules = ppoRulesOf(options);
    for (const seed of seeds.slice(0, preset.ppo.seeds)) {
      for (const arch of archNames) {
        for (const rule of ppoRules) {
          check(signal);
          const ppo = await stage(
            out,
            `ppo-${ppoRunName(arch, rule.label, seed)}`,
            progress,
            async (): Promise<PpoStage> =>
              runPpoStage(options, progress, arch, rule, seed, goldDir, trainPrompts, evalPrompts),
          );
          (ppos[`${arch}/${rule.label}`] ??= []).push(ppo);
        }
      }
    }
  } catch (error) {
    if (!(error instanceof Interrupted)) throw error;
    interrupted = true;
  }

  // --- the report (from whatever stages have finished)
  const architectures: Record<string, ArchitectureReport> = {};
  for (const arch of archNames) {
    const r = rms[arch];
    if (r === undefined || r.length === 0) continue;
    const b = bons[arch] ?? [];
    const bestOfN: BestOfNRow[] = [];
    for (const rule of strategies.rules) {
      const first = b[0]?.curves[rule.label] ?? [];
      for (let i = 0; i < first.length; i++) {
        const perSeed = b.map((s) => s.curves[rule.label]?.[i] as BonStagePoint);
        bestOfN.push({
          n: (first[i] as { n: number }).n,
          rule: rule.label,
          winRate: meanOf(perSeed.map((p) => p.winRate)),
          stderr: meanOf(perSeed.map((p) => p.stderr)),
          ...(perSeed.length > 1 ? { seedSpread: stdOf(perSeed.map((p) => p.winRate)) } : {}),
          ...lengthFields(perSeed),
        });
      }
    }
    architectures[arch] = {
      accuracy: meanOf(r.map((x) => x.accuracy)),
      ece: meanOf(r.map((x) => x.ece)),
      params: { total: (r[0] as RmStage).params.total, trainable: (r[0] as RmStage).params.trainable },
      trainSeconds: meanOf(r.map((x) => x.trainSeconds)),
      ...(b.length > 0 ? { peakMemoryBytes: Math.max(...b.map((x) => x.peakBytes)) } : {}),
      bestOfN,
    };
  }
  // PPO: one series per architecture and rule, each point the mean over seeds (kl: the `full` estimate). A
  // field is reported when every seed has it (stages cached before a field existed lack it), the spread
  // over seeds with more than one seed, and the reward–length correlation over the seeds with a finite one.
  const ppo: PpoPoint[] = [];
  for (const arch of archNames) {
    for (const label of preset.ppo.rules) {
      const runs = ppos[`${arch}/${label}`] ?? [];
      const first = runs[0]?.points ?? [];
      for (let i = 0; i < first.length; i++) {
        const pts = runs.map((r) => r.points[i]).filter((p) => p !== undefined);
        const every = <T>(f: (p: PpoStagePoint) => T | undefined): T[] | undefined => {
          const vs = pts.map(f).filter((v) => v !== undefined);
          return vs.length === pts.length && vs.length > 0 ? vs : undefined;
        };
        const meanField = (k: 'proxyReward' | 'goldReward'): number | undefined => {
          const vs = every((p) => (Number.isFinite(p[k]) ? p[k] : undefined));
          return vs === undefined ? undefined : meanOf(vs);
        };
        const proxyReward = meanField('proxyReward');
        const goldReward = meanField('goldReward');
        const members = every((p) => p.proxyMembers);
        const k = members?.[0]?.length ?? 0;
        const proxyMembers =
          members !== undefined && k > 0 && members.every((m) => m.length === k)
            ? Array.from({ length: k }, (_, j) => meanOf(members.map((m) => m[j] as number)))
            : undefined;
        const estimators = [...new Set(pts.map((p) => p.klEstimator as string | undefined))];
        const klEstimator = estimators.length === 1 ? estimators[0] : undefined;
        const lcs = every((p) => p.lc);
        const corr = (key: 'pearson' | 'spearman'): number[] =>
          pts.flatMap((p) => {
            const v = p.rewardLength?.[key];
            return typeof v === 'number' && Number.isFinite(v) ? [v] : [];
          });
        const pearson = corr('pearson');
        const spearman = corr('spearman');
        ppo.push({
          arch,
          rule: label,
          step: (first[i] as { step: number }).step,
          goldWinRate: meanOf(pts.map((p) => p.goldWinRate)),
          stderr: meanOf(pts.map((p) => p.stderr)),
          ...(pts.length > 1 ? { seedSpread: stdOf(pts.map((p) => p.goldWinRate)) } : {}),
          kl: meanOf(pts.map((p) => p.kl)),
          ...(klEstimator === undefined ? {} : { klEstimator }),
          ...(proxyReward === undefined ? {} : { proxyReward }),
          ...(proxyMembers === undefined ? {} : { proxyMembers }),
          ...(goldReward === undefined ? {} : { goldReward }),
          ...(lcs === undefined
            ? {}
            : {
                lcWinRate: meanOf(lcs.map((l) => l.winRate)),
                lcStderr: meanOf(lcs.map((l) => l.stderr)),
                ...(lcs.length > 1 ? { lcSeedSpread: stdOf(lcs.map((l) => l.winRate)) } : {}),
              }),
          ...(pearson.length > 0 ? { rewardLengthPearson: meanOf(pearson) } : {}),
          ...(spearman.length > 0 ? { rewardLengthSpearman: meanOf(spearman) } : {}),
        });
      }
    }
  }
  const firstBon = Object.values(bons)[0]?.[0];
  const report: Report = {
    schemaVersion: 1,
    meta: {
      createdAt: new Date().toISOString(),
      preset: preset.name,
      seeds: options.seeds,
      backend: options.backend.name,
      judge:
        'Best-of-n: GPT-4 verdicts shipped with AlpacaEval (preference table); PPO: a gold reward model trained on a disjoint part of the train split',
      versions: options.versions,
      complete: !interrupted,
      members: REPRODUCE_MEMBERS,
    },
    architectures,
    ppo,
    timings,
    ...(firstBon === undefined
      ? {}
      : {
          baselines: {
            random: {
              ...baselinePoint([firstBon.baselines.random]),
              description: 'a random candidate (n = 1)',
            },
            ...Object.fromEntries(
              firstBon.baselines.longest.map((c) => [
                `longest-n${c.n}`,
                { ...baselinePoint([c]), description: `the longest of ${c.n} candidates` },
              ]),
            ),
          },
          bestOfNBaselines: baselineCurves(Object.values(bons)[0] ?? []),
        }),
  };
  const written = await writeReport(out, report);
  return { report, written, interrupted };
}

/**
 * How the PPO stage decodes eval answers: the paper's decoding (Table 6: temperature 0.7, top-p 0.9), not
 * greedy. A nano policy's greedy answers are runs of one token ("\n\n…", ", , ,", "and and …"), and the
 * argmax of a near-flat distribution flips with any update, so a greedy gold win rate measures which run
 * the argmax lands on (measured: 50% → 6% after 2 steps at a KL of 0.01 nats; packages/policies/ppo/README.md).
 * The SFT and the PPO answers share the seed (common random numbers): at step 0 they are the same answers
 * (exactly 50%), later differences come from the policy.
 */
export const PPO_EVAL_DECODING = { temperature: 0.7, topP: 0.9, batchSize: 16 } as const;

/** The rules the preset's PPO runs maximise, looked up by label among the study's rules (plus `mean`). */
function ppoRulesOf(options: ReproduceOptions): LabelledRule[] {
  const known = [options.strategies.ppoRule, ...options.strategies.rules];
  return options.preset.ppo.rules.map((label) => {
    const found = known.find((r) => r.label === label);
    if (found === undefined) {
      throw new ConfigError(
        `preset ${options.preset.name} asks PPO to maximise rule "${label}", which this study does not compare`,
        {
          location: { field: 'preset.ppo.rules' },
          hint: `use one of ${[...new Set(known.map((r) => r.label))].join(', ')}, or add it with --agg`,
        },
      );
    }
    return found;
  });
}

/** Stage and run-folder name of one PPO run: `mean` keeps the name it always had (`independent-s0`). */
export function ppoRunName(arch: string, rule: string, seed: number): string {
  return rule === 'mean' ? `${arch}-s${seed}` : `${arch}-${rule}-s${seed}`;
}

async function runPpoStage(
  options: ReproduceOptions,
  progress: RunProgress,
  arch: string,
  rule: LabelledRule,
  seed: number,
  goldDir: string,
  trainPrompts: readonly Prompt[],
  evalPrompts: readonly Prompt[],
): Promise<PpoStage> {
  const { preset, out, signal, strategies } = options;
  const sftDir = path.join(out, 'sft');
  const maxNew = preset.ppo.maxNewTokens;
  const decoding = { ...PPO_EVAL_DECODING, maxNewTokens: maxNew, seed: 9000 + seed, label: 'ppo-eval' };
  // The SFT policy's answers: what every PPO policy is judged against.
  const reference = await loadPolicyWithTokenizer(sftDir);
  let sftAnswers: string[];
  try {
    sftAnswers = answerPrompts(reference, evalPrompts, decoding);
  } finally {
    disposeGpt(reference.params);
  }
  const rmDir = path.join(out, 'rm', `${arch}-s${seed}`);
  const goldRm = await loadRewardModel(goldDir, strategies.architectureRegistry);
  let proxyRm: Awaited<ReturnType<typeof loadRewardModel>> | undefined;
  const points: PpoStagePoint[] = [];
  const runDir = path.join(out, 'ppo', ppoRunName(arch, rule.label, seed));
  try {
    proxyRm = await loadRewardModel(rmDir, strategies.architectureRegistry);
    const proxy = proxyRm;
    // The gold model is `single` (k = 1): the rule it aggregates with does not matter; `mean`.
    const goldJudge = rewardModelJudge({
      ensemble: goldRm.ensemble,
      tokenizer: goldRm.tokenizer,
      rule: strategies.ppoRule.rule,
    });
    const rewardsOf = (
      rm: Awaited<ReturnType<typeof loadRewardModel>>,
      answers: readonly string[],
    ): number[][] =>
      scoreAnswers(
        rm.ensemble,
        rm.tokenizer,
        evalPrompts.map((prompt, i) => ({ prompt, answer: answers[i] as string })),
      ); // [k][N]
    const summary = await runPpo(
      {
        policy: sftDir,
        reward: rmDir,
        architectures: strategies.architectureRegistry,
        rule: rule.rule,
        ruleLabel: rule.label,
        prompts: trainPrompts,
        ppo: resolvePpoConfig({
          steps: preset.ppo.steps,
          rolloutBatch: preset.ppo.rolloutBatch,
          stepBatch: preset.ppo.stepBatch,
          maxNewTokens: maxNew,
          seed,
          lr: 1e-4,
          warmupSteps: Math.min(5, Math.floor(preset.ppo.steps / 4)),
        }),
        out: runDir,
        resume: existsSync(path.join(runDir, 'train-state')),
        signal,
        evaluate: {
          every: preset.ppo.evalEvery,
          run: async ({ step, policy, last }) => {
            const answers = answerPrompts(policy, evalPrompts, decoding);
            const outcomes: Outcome[] = [];
            for (let i = 0; i < evalPrompts.length; i++) {
              const p = evalPrompts[i] as Prompt;
              outcomes.push(
                outcomeOf(
                  await goldJudge.compare({
                    instruction: p.instruction,
                    input: p.input,
                    a: answers[i] as string,
                    b: sftAnswers[i] as string,
                  }),
                ),
              );
            }
            const w = winRate(outcomes);
            const members = rewardsOf(proxy, answers);
            const gold = rewardsOf(goldRm, answers)[0] ?? [];
            const lc = lengthControlledWinRate(
              outcomes.map((outcome, i) => ({
                outcome,
                lengthDelta: (answers[i] as string).length - (sftAnswers[i] as string).length,
                group: i,
              })),
            );
            const corr = rewardLengthCorrelation(
              gold,
              answers.map((a) => a.length),
            );
            points.push({
              step,
              goldWinRate: w.winRate,
              stderr: Number.isFinite(w.stderr) ? w.stderr : 0,
              goldReward: meanOf(gold),
              proxyReward: meanOf(rule.rule.aggregateArrays(members).aggregate),
              proxyMembers: members.map((m) => meanOf(m)),
              ...(last === undefined
                ? {}
                : { rolloutReward: last.reward, rolloutMembers: [...last.memberRewards] }),
              kl: last?.klFull ?? 0,
              klEstimator: 'full',
              klPenalty: last?.kl ?? 0,
              klPenaltyEstimator: last?.klEstimator ?? 'k1',
              klK1: last?.klK1 ?? 0,
              klK3: last?.klK3 ?? 0,
              lc: { winRate: lc.winRate, stderr: Number.isFinite(lc.stderr) ? lc.stderr : 0 },
              rewardLength: {
                ...(Number.isFinite(corr.pearson) ? { pearson: corr.pearson } : {}),
                ...(Number.isFinite(corr.spearman) ? { spearman: corr.spearman } : {}),
              },
            });
          },
        },
      },
      {
        update: (done, total, detail) =>
          progress.update(done, total, `PPO ${arch}/${rule.label}: ${detail ?? ''}`),
        log: (message) => progress.log(message),
      },
    );
    if (summary.aborted) throw new Interrupted('interrupted');
    return { rule: rule.label, points };
  } finally {
    proxyRm?.ensemble.dispose();
    goldRm.ensemble.dispose();
  }
}
