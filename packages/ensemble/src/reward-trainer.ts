/**
 * Bradley-Terry training of any ensemble architecture, phase by phase (see `TrainingPhase`): AdamW, a
 * warmup + cosine/constant schedule, gradient accumulation and clipping, per-member bootstrap weights for
 * members that share weights, metrics.jsonl, and resumable states (the last two kept) so a killed run
 * continues where it stopped. Randomness for step s of phase p comes from `fork('<p>/step-<s>')`, so a
 * resumed run draws exactly what an uninterrupted one would. Each state records the settings it was
 * trained with; a resume with other settings is refused (listing them) unless `forceResume`, and
 * metrics.jsonl is cut back to the state's step so no step is logged twice.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { AdamW, valueAndGrads } from '@quorum/backbone';
import {
  CheckpointError,
  CheckpointStore,
  comparedSettings,
  DataError,
  decodeSafetensors,
  encodeSafetensors,
  type ForcedResume,
  forcedResumeWarning,
  NumericalError,
  Rng,
  recordsToTensors,
  resumeRefusal,
  settingDifferences,
  tensorsToRecords,
} from '@quorum/core';
import { filterJsonlFile, type PreferencePair, type TextTokenizer, type TruncationMode } from '@quorum/data';
import * as tf from '@tensorflow/tfjs';
import type { TrainableEnsemble, TrainingPhase } from './architecture.js';
import { disposeBatch, type EncodedPair, encodePairs, pairTokenBatch } from './batches.js';
import { bradleyTerryLoss } from './loss.js';
import { defaultCheckpointEvery, RESUMABLE_CHANGES, type RewardTrainConfig } from './reward-config.js';

export interface RewardProgress {
  readonly phase: string;
  readonly phaseIndex: number;
  readonly phases: number;
  readonly step: number;
  readonly steps: number;
  readonly loss: number;
  readonly lr: number;
  readonly pairsPerSecond: number;
}

export interface RewardTrainOptions {
  readonly ensemble: TrainableEnsemble;
  readonly tokenizer: TextTokenizer;
  /** Training pairs (ties are skipped). */
  readonly pairs: readonly PreferencePair[];
  readonly config: RewardTrainConfig;
  /**
   * A pair with an answer longer than `config.maxLength`: `left` (default, as before) cuts the prompt body,
   * then the start of the answer, keeping its end and the reward token; `drop` leaves the pair out, as
   * TRL does. The result's `pairs` counts what it did.
   */
  readonly truncation?: TruncationMode | undefined;
  /** Run folder: metrics.jsonl and train-state/ go here. Undefined = no files. */
  readonly out?: string | undefined;
  /** Continue from the newest valid state in out/train-state. */
  readonly resume?: boolean | undefined;
  /**
   * The caller's settings of the run beyond `config` (data, init, architecture, …), saved with every state.
   * On resume they and `config` (all but logEvery and checkpointEvery) must equal the saved ones.
   */
  readonly settings?: Readonly<Record<string, unknown>> | undefined;
  /**
   * Resume even when the settings differ from the saved state's: the differences are noted (`onNote`),
   * kept in every later state and returned in `forcedResumes`.
   */
  readonly forceResume?: boolean | undefined;
  readonly onProgress?: ((p: RewardProgress) => void) | undefined;
  /** Called with a message when something worth saying happens (resume point, fallback to an older state). */
  readonly onNote?: ((message: string) => void) | undefined;
  /** Stop cleanly (after saving a state) when aborted, e.g. on SIGINT. */
  readonly signal?: AbortSignal | undefined;
}

/** What became of the training pairs before training (for the caller to print). */
export interface RewardPairCounts {
  /** Pairs trained on. */
  readonly used: number;
  /** Ties, skipped. */
  readonly ties: number;
  /** Pairs left out because an answer did not fit `maxLength` (`truncation: 'drop'`). */
  readonly dropped: number;
  /** Pairs trained on with at least one side cut to `maxLength` (`truncation: 'left'`). */
  readonly truncated: number;
}

export interface RewardTrainResult {
  readonly stoppedEarly: boolean;
  /** Every forced resume of this run so far (oldest first); empty when none was forced. */
  readonly forcedResumes: readonly ForcedResume[];
  readonly pairs: RewardPairCounts;
  readonly steps: Record<string, number>;
  readonly seconds: number;
  readonly finalLoss: Record<string, number>;
}

/** Knuth's Poisson(1) sampler (bootstrap counts). */
function poisson1(rng: Rng): number {
  const limit = Math.exp(-1);
  let k = 0;
  let p = rng.uniform();
  while (p > limit) {
    k++;
    p *= rng.uniform();
  }
  return k;
}

interface PhasePlan {
  readonly phase: TrainingPhase;
  readonly indices: readonly number[];
  readonly microPerEpoch: number;
  readonly steps: number;
}

function planPhases(
  ensemble: TrainableEnsemble,
  nPairs: number,
  config: RewardTrainConfig,
  counts: RewardPairCounts,
): PhasePlan[] {
  if (nPairs === 0) {
    const given = counts.ties + counts.dropped;
    throw new DataError(
      given === 0
        ? 'no training pairs were given'
        : `none of the ${given} training pairs can be trained on (${counts.ties} ties, ${counts.dropped} longer than maxLength ${config.maxLength})`,
      {
        location: { field: 'pairs' },
        hint:
          counts.dropped > 0
            ? "raise maxLength or use truncation 'left'"
            : 'pass pairs with a preferred and a rejected answer',
      },
    );
  }
  const base = new Rng(config.seed).fork('data-split').permutation(nPairs);
  return ensemble.phases().map((phase) => {
    const from = Math.floor(phase.dataShare[0] * nPairs);
    const to = Math.floor(phase.dataShare[1] * nPairs);
    const indices = base.slice(from, to);
    if (indices.length === 0) {
      throw new DataError(
        `phase "${phase.name}" gets no training pairs (share ${phase.dataShare.join('–')} of ${nPairs})`,
        {
          location: { field: 'pairs' },
          hint: 'give it more training pairs',
        },
      );
    }
    const microPerEpoch = Math.ceil(indices.length / config.batchSize);
    const byEpochs = Math.max(1, Math.ceil((microPerEpoch * config.epochs) / config.gradAccum));
    return {
      phase,
      indices,
      microPerEpoch,
      steps: config.maxSteps === undefined ? byEpochs : Math.min(byEpochs, config.maxSteps),
    };
  });
}

/** Pair indices of micro-batch `micro` (counted from the start of the phase, across epochs). */
function microBatch(
  plan: PhasePlan,
  micro: number,
  config: RewardTrainConfig,
  orders: Map<number, number[]>,
): number[] {
  const epoch = Math.floor(micro / plan.microPerEpoch);
  let order = orders.get(epoch);
  if (order === undefined) {
    order = new Rng(config.seed).fork(`${plan.phase.orderLabel}/epoch-${epoch}`).shuffle([...plan.indices]);
    orders.set(epoch, order);
  }
  const at = (micro % plan.microPerEpoch) * config.batchSize;
  return order.slice(at, at + config.batchSize);
}

const STATE_FILE = 'state.safetensors';

/** What a state records about the run, besides weights and position. */
interface RunRecord {
  /** The settings compared on resume. */
  readonly settings: Record<string, unknown>;
  readonly forcedResumes: readonly ForcedResume[];
}

async function saveState(
  store: CheckpointStore,
  ensemble: TrainableEnsemble,
  optimizer: AdamW,
  position: { phaseIndex: number; step: number },
  globalStep: number,
  run: RunRecord,
): Promise<void> {
  const tensors: Record<string, tf.Tensor> = {};
  for (const vars of Object.values(ensemble.tensorFiles()))
    for (const [name, v] of Object.entries(vars)) tensors[`model.${name}`] = v;
  const opt = optimizer.state();
  for (const [name, t] of Object.entries(opt.tensors)) tensors[`opt.${name}`] = t;
  try {
    const bytes = encodeSafetensors(await tensorsToRecords(tensors));
    await store.save(globalStep, { [STATE_FILE]: bytes }, { ...position, optimizerStep: opt.step, ...run });
  } finally {
    tf.dispose(Object.values(opt.tensors));
  }
}

/** Trains every phase of the ensemble; resumes from `out/train-state` when asked. */
export async function trainRewardEnsemble(options: RewardTrainOptions): Promise<RewardTrainResult> {
  const { ensemble, tokenizer, config } = options;
  const note = options.onNote ?? (() => {});
  const usable = options.pairs.filter((p) => p.tie !== true);
  const { encoded, dropped, truncated } = encodePairs(
    tokenizer,
    usable,
    config.maxLength,
    options.truncation ?? 'left',
  );
  const pairCounts: RewardPairCounts = {
    used: encoded.length,
    ties: options.pairs.length - usable.length,
    dropped,
    truncated,
  };
  const plans = planPhases(ensemble, encoded.length, config, pairCounts);
  const settings = comparedSettings(config, RESUMABLE_CHANGES, options.settings);
  let forcedResumes: ForcedResume[] = [];
  const store =
    options.out === undefined
      ? undefined
      : new CheckpointStore(path.join(options.out, 'train-state'), { keep: 2 });
  const metricsFile = options.out === undefined ? undefined : path.join(options.out, 'metrics.jsonl');
  if (options.out !== undefined) mkdirSync(options.out, { recursive: true });

  // Where to start: phase index, step within it, plus weights and optimizer state from the saved state.
  let start = { phaseIndex: 0, step: 0 };
  let savedOpt: { step: number; tensors: Record<string, tf.Tensor> } | undefined;
  if (options.resume === true && store !== undefined) {
    const latest = await store.latest();
    for (const w of latest?.warnings ?? []) note(w);
    if (latest === undefined) {
      note('no saved state yet: starting from the beginning');
      // Lines a killed run logged before its first state are logged again.
      if (metricsFile !== undefined) await filterJsonlFile(metricsFile, () => false);
    } else {
      const meta = latest.meta as {
        phaseIndex: number;
        step: number;
        optimizerStep: number;
        settings?: Record<string, unknown>;
        forcedResumes?: ForcedResume[];
      };
      // States written before settings were recorded have none to compare.
      const differences = meta.settings === undefined ? [] : settingDifferences(meta.settings, settings);
      if (differences.length > 0 && options.forceResume !== true) {
        throw resumeRefusal(differences, latest.dir, latest.step);
      }
      forcedResumes = [...(meta.forcedResumes ?? [])];
      if (differences.length > 0) {
        note(forcedResumeWarning(differences));
        forcedResumes.push({ step: latest.step, differences });
      }
      const contents = decodeSafetensors(
        latest.files[STATE_FILE] as Uint8Array,
        path.join(latest.dir, STATE_FILE),
      );
      const tensors = recordsToTensors(contents.tensors);
      for (const vars of Object.values(ensemble.tensorFiles())) {
        for (const [name, v] of Object.entries(vars)) {
          const t = tensors[`model.${name}`];
          if (t === undefined || !tf.util.arraysEqual(t.shape, v.shape)) {
            tf.dispose(Object.values(tensors));
            throw new CheckpointError(`saved state does not match this ensemble (tensor "${name}")`, {
              location: { file: path.join(latest.dir, STATE_FILE) },
              hint: 'resume with the same architecture, members and size, or start over with --overwrite',
            });
          }
          v.assign(t);
        }
      }
      const optTensors: Record<string, tf.Tensor> = {};
      for (const [name, t] of Object.entries(tensors)) {
        if (name.startsWith('opt.')) optTensors[name.slice(4)] = t;
        else t.dispose();
      }
      savedOpt = { step: meta.optimizerStep, tensors: optTensors };
      start = { phaseIndex: meta.phaseIndex, step: meta.step };
      // Steps after the state were logged by the run that was stopped; they are logged again.
      if (metricsFile !== undefined)
        await filterJsonlFile(
          metricsFile,
          (row) => ((row as { globalStep?: number }).globalStep ?? Number.POSITIVE_INFINITY) <= latest.step,
        );
      note(`resuming at phase ${plans[meta.phaseIndex]?.phase.name ?? meta.phaseIndex}, step ${meta.step}`);
    }
  }

  const began = Date.now();
  const stepsDone: Record<string, number> = {};
  const finalLoss: Record<string, number> = {};
  const run: RunRecord = { settings, forcedResumes };
  let globalStep = plans.slice(0, start.phaseIndex).reduce((n, p) => n + p.steps, 0) + start.step;
  for (let pi = start.phaseIndex; pi < plans.length; pi++) {
    const plan = plans[pi] as PhasePlan;
    const { phase } = plan;
    const full = phase.kind === 'full';
    const checkpointEvery = config.checkpointEvery ?? defaultCheckpointEvery(plan.steps);
    const vars = phase.variables();
    const optimizer = new AdamW(vars, {
      lr: full ? config.lr : config.loraLr,
      weightDecay: config.weightDecay,
      clipNorm: config.clipNorm > 0 ? config.clipNorm : undefined,
      schedule: {
        kind: full ? config.schedule : config.loraSchedule,
        warmupSteps: Math.ceil(config.warmupRatio * plan.steps),
        totalSteps: plan.steps,
        minLrRatio: 0,
      },
    });
    let step = 0;
    if (pi === start.phaseIndex && savedOpt !== undefined) {
      // A state saved at a phase boundary (step 0) holds the previous phase's optimizer: start fresh.
      if (start.step > 0) optimizer.loadState(savedOpt);
      tf.dispose(Object.values(savedOpt.tensors));
      savedOpt = undefined;
      step = start.step;
    }
    const orders = new Map<number, number[]>();
    let windowLoss = 0;
    let windowSteps = 0;
    let windowStart = Date.now();
    let windowPairs = 0;
    try {
      while (step < plan.steps) {
        if (options.signal?.aborted === true) {
          if (store !== undefined)
            await saveState(store, ensemble, optimizer, { phaseIndex: pi, step }, globalStep, run);
          return {
            stoppedEarly: true,
            forcedResumes,
            pairs: pairCounts,
            steps: { ...stepsDone, [phase.name]: step },
            seconds: (Date.now() - began) / 1000,
            finalLoss,
          };
        }
        const acc: Record<string, tf.Tensor> = {};
        let stepLoss = 0;
        for (let a = 0; a < config.gradAccum; a++) {
          const micro = step * config.gradAccum + a;
          const idx = microBatch(plan, micro, config, orders);
          const pairs = idx.map((i) => encoded[i] as EncodedPair);
          const rng = new Rng(config.seed).fork(`${phase.name}/step-${step}/micro-${a}`);
          const k = phase.members.length;
          const w = new Float32Array(k * pairs.length);
          for (let m = 0; m < k; m++) {
            for (let j = 0; j < pairs.length; j++) {
              const boot = phase.sharedTrunk && config.bootstrap ? poisson1(rng) : 1;
              w[m * pairs.length + j] = boot * (pairs[j] as EncodedPair).weight;
            }
          }
          const batch = pairTokenBatch(pairs, tokenizer.padId);
          const weights = tf.tensor2d(w, [k, pairs.length]); // [k, B]
          const dropoutRng = rng.fork('dropout');
          try {
            const { loss, grads } = valueAndGrads(
              () =>
                tf.tidy(() => {
                  const r = phase.rewards(batch, dropoutRng); // [k, 2B]
                  const B = pairs.length;
                  const chosen = tf.slice(r, [0, 0], [k, B]) as tf.Tensor2D; // [k, B]
                  const rejected = tf.slice(r, [0, B], [k, B]) as tf.Tensor2D; // [k, B]
                  return tf.div(
                    bradleyTerryLoss(chosen, rejected, weights, config),
                    config.gradAccum,
                  ) as tf.Scalar;
                }),
              vars,
            );
            stepLoss += loss;
            for (const [name, g] of Object.entries(grads)) {
              const prev = acc[name];
              if (prev === undefined) acc[name] = g;
              else {
                acc[name] = tf.add(prev, g);
                prev.dispose();
                g.dispose();
              }
            }
          } finally {
            disposeBatch(batch);
            weights.dispose();
          }
          windowPairs += pairs.length;
        }
        let info: { lr: number; gradNorm: number };
        try {
          info = optimizer.applyGradients(acc);
        } catch (error) {
          if (error instanceof NumericalError)
            note(`stopped: ${error.message}; the last saved state is kept`);
          throw error;
        } finally {
          tf.dispose(Object.values(acc));
        }
        step++;
        globalStep++;
        windowLoss += stepLoss;
        windowSteps++;
        finalLoss[phase.name] = stepLoss;
        const now = Date.now();
        const pairsPerSecond = windowPairs / Math.max(1e-3, (now - windowStart) / 1000);
        options.onProgress?.({
          phase: phase.name,
          phaseIndex: pi,
          phases: plans.length,
          step,
          steps: plan.steps,
          loss: stepLoss,
          lr: info.lr,
          pairsPerSecond,
        });
        if (step % config.logEvery === 0 || step === plan.steps) {
          if (metricsFile !== undefined) {
            const line = {
              phase: phase.name,
              step,
              globalStep,
              loss: windowLoss / windowSteps,
              lr: info.lr,
              gradNorm: info.gradNorm,
              pairsPerSecond,
              seconds: (now - began) / 1000,
            };
            appendFileSync(metricsFile, `${JSON.stringify(line)}\n`);
          }
          windowLoss = 0;
          windowSteps = 0;
          windowPairs = 0;
          windowStart = now;
        }
        if (
          store !== undefined &&
          ((checkpointEvery > 0 && step % checkpointEvery === 0) || step === plan.steps)
        ) {
          // A finished phase is saved as the start of the next one.
          const position = step === plan.steps ? { phaseIndex: pi + 1, step: 0 } : { phaseIndex: pi, step };
          await saveState(store, ensemble, optimizer, position, globalStep, run);
        }
      }
    } finally {
      optimizer.dispose();
    }
    stepsDone[phase.name] = plan.steps;
  }
  if (savedOpt !== undefined) tf.dispose(Object.values(savedOpt.tensors));
  ensemble.finalize?.();
  return {
    stoppedEarly: false,
    forcedResumes,
    pairs: pairCounts,
    steps: stepsDone,
    seconds: (Date.now() - began) / 1000,
    finalLoss,
  };
}
