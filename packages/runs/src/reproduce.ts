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
import type { EnsembleArchitecture } from '@quorum/ensemble';
import {
  type ArchitectureReport,
  type BestOfNRow,
  type Outcome,
  outcomeOf,
  type PpoPoint,
  type Report,
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

interface BonStage {
  curves: Record<string, { n: number; winRate: number; stderr: number }[]>;
  peakBytes: number;
  baselines: {
    random: { winRate: number; stderr: number };
    longest: { n: number; winRate: number; stderr: number }[];
  };
}

interface PpoStage {
  points: { step: number; goldWinRate: number; stderr: number; kl: number; reward: number }[];
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
            return {
              curves: Object.fromEntries(
                report.rules.map((r) => [
                  r.label,
                  r.curve.map((c) => ({ n: c.n, winRate: c.winRate, stderr: c.stderr })),
                ]),
              ),
              peakBytes,
              baselines: {
                random: { winRate: report.baselines.random.winRate, stderr: report.baselines.random.stderr },
                longest: report.baselines.longest.map((c) => ({
                  n: c.n,
                  winRate: c.winRate,
                  stderr: c.stderr,
                })),
              },
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
    for (const seed of seeds.slice(0, preset.ppo.seeds)) {
      for (const arch of archNames) {
        check(signal);
        const ppo = await stage(
          out,
          `ppo-${arch}-s${seed}`,
          progress,
          async (): Promise<PpoStage> =>
            runPpoStage(options, progress, arch, seed, goldDir, trainPrompts, evalPrompts),
        );
        (ppos[arch] ??= []).push(ppo);
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
        const perSeed = b.map(
          (s) => s.curves[rule.label]?.[i] as { n: number; winRate: number; stderr: number },
        );
        bestOfN.push({
          n: (first[i] as { n: number }).n,
          rule: rule.label,
          winRate: meanOf(perSeed.map((p) => p.winRate)),
          stderr: meanOf(perSeed.map((p) => p.stderr)),
          ...(perSeed.length > 1 ? { seedSpread: stdOf(perSeed.map((p) => p.winRate)) } : {}),
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
  const ppo: PpoPoint[] = [];
  for (const arch of archNames) {
    const runs = ppos[arch] ?? [];
    const first = runs[0]?.points ?? [];
    for (let i = 0; i < first.length; i++) {
      const pts = runs.map((r) => r.points[i]).filter((p) => p !== undefined);
      ppo.push({
        arch,
        rule: strategies.ppoRule.label,
        step: (first[i] as { step: number }).step,
        goldWinRate: meanOf(pts.map((p) => p.goldWinRate)),
        stderr: meanOf(pts.map((p) => p.stderr)),
        kl: meanOf(pts.map((p) => p.kl)),
      });
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
            random: { ...firstBon.baselines.random, description: 'a random candidate (n = 1)' },
            ...Object.fromEntries(
              firstBon.baselines.longest.map((c) => [
                `longest-n${c.n}`,
                { winRate: c.winRate, stderr: c.stderr, description: `the longest of ${c.n} candidates` },
              ]),
            ),
          },
        }),
  };
  const written = await writeReport(out, report);
  return { report, written, interrupted };
}

async function runPpoStage(
  options: ReproduceOptions,
  progress: RunProgress,
  arch: string,
  seed: number,
  goldDir: string,
  trainPrompts: readonly Prompt[],
  evalPrompts: readonly Prompt[],
): Promise<PpoStage> {
  const { preset, out, signal, strategies } = options;
  const sftDir = path.join(out, 'sft');
  const maxNew = preset.ppo.maxNewTokens;
  const greedy = { maxNewTokens: maxNew, batchSize: 16 };
  // The SFT policy's answers: what every PPO policy is judged against.
  const reference = await loadPolicyWithTokenizer(sftDir);
  let sftAnswers: string[];
  try {
    sftAnswers = answerPrompts(reference, evalPrompts, greedy);
  } finally {
    disposeGpt(reference.params);
  }
  const goldRm = await loadRewardModel(goldDir, strategies.architectureRegistry);
  const goldJudge = rewardModelJudge({
    ensemble: goldRm.ensemble,
    tokenizer: goldRm.tokenizer,
    rule: strategies.ppoRule.rule,
  });
  const points: PpoStage['points'] = [];
  const runDir = path.join(out, 'ppo', `${arch}-s${seed}`);
  try {
    const summary = await runPpo(
      {
        policy: sftDir,
        reward: path.join(out, 'rm', `${arch}-s${seed}`),
        architectures: strategies.architectureRegistry,
        rule: strategies.ppoRule.rule,
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
            const answers = answerPrompts(policy, evalPrompts, greedy);
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
            points.push({
              step,
              goldWinRate: w.winRate,
              stderr: Number.isFinite(w.stderr) ? w.stderr : 0,
              kl: last?.kl ?? 0,
              reward: last?.reward ?? Number.NaN,
            });
          },
        },
      },
      {
        update: (done, total, detail) => progress.update(done, total, `PPO ${arch}: ${detail ?? ''}`),
        log: (message) => progress.log(message),
      },
    );
    if (summary.aborted) throw new Interrupted('interrupted');
    return { points: points.map((p) => ({ ...p, reward: Number.isFinite(p.reward) ? p.reward : 0 })) };
  } finally {
    goldRm.ensemble.dispose();
  }
}
