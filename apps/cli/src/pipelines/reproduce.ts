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
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createAggregationRule } from '@quorum/aggregation';
import { disposeGpt, generate, loadPolicy } from '@quorum/backbone';
import { evaluateOffline, type Pool, poolsFromAlpacaEval, scorePools } from '@quorum/best-of-n';
import { type ActiveBackend, ConfigError, Rng, type StrategyRegistry, writeJsonAtomic } from '@quorum/core';
import { datasets, encodePrompt, type PreferencePair, type Prompt, Tokenizer, Vocab } from '@quorum/data';
import { type EnsembleArchitecture, loadEnsemble } from '@quorum/ensemble';
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
import { PpoTrainer, resolvePpoConfig } from '@quorum/ppo';
import * as tf from '@tensorflow/tfjs';
import type { RunPreset } from '../presets.js';
import type { ProgressLine } from '../progress.js';
import { runRewardTraining } from './reward.js';
import { runSft } from './sft.js';

export const REPRODUCE_ARCHITECTURES = ['single', 'independent', 'linear-heads', 'lora'] as const;
const MEMBERS = 3;
const RULES = [
  { label: 'mean', spec: 'mean' },
  { label: 'lcb', spec: ['lcb', { beta: 1 }] },
] as const;

export interface ReproduceOptions {
  readonly preset: RunPreset;
  readonly seeds: number;
  readonly out: string;
  readonly architectures: StrategyRegistry<EnsembleArchitecture>;
  readonly backend: ActiveBackend;
  readonly versions: Record<string, string>;
  readonly progress: ProgressLine;
  readonly signal?: AbortSignal | undefined;
}

class Interrupted extends Error {}

/**
 * The cached stages are only valid for the settings that made them: the first run records its preset and
 * seed count in <out>/reproduce.json, and a later run with other settings is refused (not silently mixed).
 */
function checkRunSettings(out: string, settings: { preset: RunPreset; seeds: number }): void {
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
  writeFileSync(file, `${wanted}\n`);
}

/** Runs `fn` once: its JSON result is kept in <out>/stages/<name>.json and read back on later runs. */
async function stage<T>(out: string, name: string, progress: ProgressLine, fn: () => Promise<T>): Promise<T> {
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

function sample<T>(items: readonly T[], limit: number | undefined, rng: Rng): T[] {
  if (limit === undefined || limit >= items.length) return [...items];
  return rng
    .permutation(items.length)
    .slice(0, limit)
    .sort((a, b) => a - b)
    .map((i) => items[i] as T);
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

/** Greedy answers of a policy to prompts, decoded to text. */
function answer(
  params: Parameters<typeof generate>[0],
  config: Parameters<typeof generate>[1],
  tokenizer: Tokenizer,
  prompts: readonly Prompt[],
  maxNewTokens: number,
): string[] {
  const out: string[] = [];
  for (let at = 0; at < prompts.length; at += 16) {
    const chunk = prompts
      .slice(at, at + 16)
      .map((p) => Array.from(encodePrompt(tokenizer, p, { maxLength: config.contextLength - maxNewTokens })));
    const r = generate(params, config, chunk, {
      maxNewTokens,
      temperature: 0,
      eosId: tokenizer.eosId,
      padId: tokenizer.padId,
    });
    for (const tokens of r.tokens) out.push(tokenizer.decode(tokens.filter((t) => t !== tokenizer.eosId)));
  }
  return out;
}

export async function reproduce(
  options: ReproduceOptions,
): Promise<{ report: Report; written: WrittenReport; interrupted: boolean }> {
  const { preset, out, progress, signal } = options;
  const timings: Record<string, number> = {};
  checkRunSettings(out, { preset, seeds: options.seeds });
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
      const r = await runSft({
        size: preset.size,
        contextLength: preset.contextLength,
        data: 'alpaca-eval',
        out: sftDir,
        maxSteps: preset.sft.maxSteps,
        batchSize: preset.sft.batchSize,
        seed: 0,
        resume: existsSync(sftDir),
        progress,
        signal,
      });
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
      for (const arch of REPRODUCE_ARCHITECTURES) {
        check(signal);
        const dir = path.join(out, 'rm', `${arch}-s${seed}`);
        const rm = await stage(out, `rm-${arch}-s${seed}`, progress, async (): Promise<RmStage> => {
          const r = await runRewardTraining({
            architecture: arch,
            architectureOptions: {},
            architectures: options.architectures,
            members: arch === 'single' ? 1 : MEMBERS,
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
            progress,
            signal,
          });
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
      for (const arch of REPRODUCE_ARCHITECTURES) {
        check(signal);
        const bon = await stage(out, `bon-${arch}-s${seed}`, progress, async (): Promise<BonStage> => {
          const loaded = await loadEnsemble(path.join(out, 'rm', `${arch}-s${seed}`), options.architectures);
          const tokenizer = new Tokenizer(Vocab.fromJSON(loaded.vocabJson));
          let peakBytes = tf.memory().numBytes;
          try {
            const scored = scorePools(loaded.ensemble, tokenizer, pools, {
              onProgress: (p) => {
                peakBytes = Math.max(peakBytes, tf.memory().numBytes);
                progress.update(p.rows, p.totalRows, `Best-of-n scoring (${arch})`);
              },
            });
            const report = evaluateOffline(
              scored,
              RULES.map((r) => ({ label: r.label, rule: createAggregationRule(r.spec as never) })),
              ns,
            );
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
      const r = await runRewardTraining({
        architecture: 'single',
        architectureOptions: {},
        architectures: options.architectures,
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
        progress,
        signal,
      });
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
      for (const arch of REPRODUCE_ARCHITECTURES) {
        check(signal);
        const ppo = await stage(
          out,
          `ppo-${arch}-s${seed}`,
          progress,
          async (): Promise<PpoStage> => runPpoStage(options, arch, seed, goldDir, trainPrompts, evalPrompts),
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
  for (const arch of REPRODUCE_ARCHITECTURES) {
    const r = rms[arch];
    if (r === undefined || r.length === 0) continue;
    const b = bons[arch] ?? [];
    const bestOfN: BestOfNRow[] = [];
    for (const rule of RULES) {
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
  for (const arch of REPRODUCE_ARCHITECTURES) {
    const runs = ppos[arch] ?? [];
    const first = runs[0]?.points ?? [];
    for (let i = 0; i < first.length; i++) {
      const pts = runs.map((r) => r.points[i]).filter((p) => p !== undefined);
      ppo.push({
        arch,
        rule: 'mean',
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
      members: MEMBERS,
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
  arch: string,
  seed: number,
  goldDir: string,
  trainPrompts: readonly Prompt[],
  evalPrompts: readonly Prompt[],
): Promise<PpoStage> {
  const { preset, out, progress, signal } = options;
  const sftDir = path.join(out, 'sft');
  const policy = await loadPolicy(sftDir);
  const reference = await loadPolicy(sftDir);
  const policyTokenizer = new Tokenizer(Vocab.fromJSON(policy.vocabJson));
  const proxy = await loadEnsemble(path.join(out, 'rm', `${arch}-s${seed}`), options.architectures);
  const goldRm = await loadEnsemble(goldDir, options.architectures);
  const goldJudge = rewardModelJudge({
    ensemble: goldRm.ensemble,
    tokenizer: new Tokenizer(Vocab.fromJSON(goldRm.vocabJson)),
    rule: createAggregationRule('mean'),
  });
  const maxNew = preset.ppo.maxNewTokens;
  const sftAnswers = answer(reference.params, reference.config, policyTokenizer, evalPrompts, maxNew);
  const trainer = new PpoTrainer({
    policy: { config: policy.config, params: policy.params, tokenizer: policyTokenizer },
    reference: reference.params,
    reward: {
      ensemble: proxy.ensemble,
      tokenizer: new Tokenizer(Vocab.fromJSON(proxy.vocabJson)),
      rule: createAggregationRule('mean'),
    },
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
    outDir: path.join(out, 'ppo', `${arch}-s${seed}`),
    onProgress: (log) =>
      progress.update(
        log.step,
        log.steps,
        `PPO ${arch}: reward ${log.reward.toFixed(3)} KL ${log.kl.toFixed(3)}`,
      ),
    signal,
  });
  const points: PpoStage['points'] = [];
  const judge = async (step: number, kl: number, reward: number): Promise<void> => {
    const answers = answer(policy.params, policy.config, policyTokenizer, evalPrompts, maxNew);
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
      kl,
      reward,
    });
  };
  try {
    if (existsSync(path.join(out, 'ppo', `${arch}-s${seed}`, 'train-state'))) await trainer.resume();
    await judge(trainer.step, 0, Number.NaN);
    while (trainer.step < preset.ppo.steps) {
      const summary = await trainer.train({
        stopAtStep: Math.min(preset.ppo.steps, trainer.step + preset.ppo.evalEvery),
      });
      if (summary.aborted) throw new Interrupted('interrupted');
      await judge(trainer.step, summary.last?.kl ?? 0, summary.last?.reward ?? Number.NaN);
    }
    return { points: points.map((p) => ({ ...p, reward: Number.isFinite(p.reward) ? p.reward : 0 })) };
  } finally {
    trainer.dispose();
    proxy.ensemble.dispose();
    goldRm.ensemble.dispose();
    disposeGpt(policy.params);
    disposeGpt(reference.params);
  }
}
