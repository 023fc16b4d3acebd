/**
 * Bradley-Terry training of any ensemble architecture, phase by phase (see `TrainingPhase`): AdamW, a
 * warmup + cosine/constant schedule, gradient accumulation and clipping, per-member bootstrap weights for
 * members that share weights, metrics.jsonl, and resumable states (the last two kept) so a killed run
 * continues where it stopped. Randomness for step s of phase p comes from `fork('<p>/step-<s>')`, so a
 * resumed run draws exactly what an uninterrupted one would. Each state records the settings it was
 * trained with; a resume with other settings is refused (listing them) unless `forceResume`, and
 * metrics.jsonl is cut back to the state's step so no step is logged twice.
 *
 * Opt-in parts of the recipe (all off by default; see RewardTrainConfig): ODIN's length head and its two
 * losses, an agreement penalty and per-member data subsets for diversity, a wall-clock budget that sizes
 * each phase's steps and schedule to the time left, and early stopping on a held-out slice that keeps the
 * best weights.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { AdamW, valueAndGrads } from '@quorum/backbone';
import {
  CheckpointError,
  CheckpointStore,
  ConfigError,
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
import { initMultiHead, memberHeadRewards, multiHeadRewards } from '@quorum/heads';
import * as tf from '@tensorflow/tfjs';
import type { TokenBatch, TrainableEnsemble, TrainingPhase } from './architecture.js';
import { disposeBatch, type EncodedPair, encodePairs, pairTokenBatch } from './batches.js';
import { agreementLoss, bradleyTerryLoss, odinCorrelationLoss, odinOrthogonalityLoss } from './loss.js';
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
  /** Milliseconds now, for the time budget (default `Date.now`; tests inject a fake one). */
  readonly clock?: (() => number) | undefined;
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

/** How one phase went: its planned and done steps, and why it ended early when it did. */
export interface PhaseSummary {
  /** Steps planned (by epochs and maxSteps, or sized to the time budget). */
  readonly plannedSteps: number;
  /** Optimizer steps done. */
  readonly steps: number;
  /** `budget`: the phase's share of the time budget ran out; `patience`: early stopping. */
  readonly stoppedBy?: 'budget' | 'patience' | undefined;
  /** Early stopping: the step whose weights were kept and its held-out BT loss (per member and pair). */
  readonly bestStep?: number | undefined;
  readonly bestValidationLoss?: number | undefined;
  /** Time budget: the measured seconds per step the steps were sized with. */
  readonly secondsPerStep?: number | undefined;
}

export interface RewardTrainResult {
  /** Interrupted (`signal`): a state was saved and the run can resume. Not set by early stopping. */
  readonly stoppedEarly: boolean;
  /** Per phase (the phases this call ran), its steps and why it stopped. */
  readonly phases: Record<string, PhaseSummary>;
  /** Pairs held out for early stopping (0 when it is off). */
  readonly validationPairs: number;
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

/** Where a state stands (saved in its meta). */
interface StatePosition {
  readonly phaseIndex: number;
  readonly step: number;
  /** Time budget: the current phase's sized steps and the budget seconds used before this state. */
  readonly phaseSteps?: number | undefined;
  readonly budgetUsed?: number | undefined;
}

/** ODIN's length heads (one per member, [D, k] like the reward heads): trained, never scored or exported. */
const LENGTH_HEAD_W = 'odin.length.w';
const LENGTH_HEAD_B = 'odin.length.b';

async function saveState(
  store: CheckpointStore,
  ensemble: TrainableEnsemble,
  extra: Record<string, tf.Variable>,
  optimizer: AdamW,
  position: StatePosition,
  globalStep: number,
  run: RunRecord,
): Promise<void> {
  const tensors: Record<string, tf.Tensor> = {};
  for (const vars of [...Object.values(ensemble.tensorFiles()), extra])
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

/** Inputs of one micro-batch's loss. */
interface MicroBatchLoss {
  readonly phase: TrainingPhase;
  readonly batch: TokenBatch;
  /** [k, B] per-member pair weights. */
  readonly weights: tf.Tensor2D;
  /** [2B] answer lengths in tokens (chosen then rejected), for ODIN. */
  readonly lengths: tf.Tensor1D | undefined;
  /** ODIN's length heads of all k members: w [D, k], b [k]. */
  readonly lengthHeads: { readonly w: tf.Tensor2D; readonly b: tf.Tensor1D } | undefined;
  readonly config: RewardTrainConfig;
  readonly dropoutRng: Rng;
  /** Pairs in the batch. */
  readonly pairs: number;
}

/**
 * The loss of one micro-batch, divided by gradAccum: the members' weighted BT loss (on r_q + r_l with
 * ODIN, plus its correlation and orthogonality terms), plus the agreement penalty when `diversity` is set.
 */
function microBatchLoss(input: MicroBatchLoss): tf.Scalar {
  const { phase, batch, config, pairs: B } = input;
  return tf.tidy(() => {
    const k = phase.members.length;
    let quality: tf.Tensor2D; // [k, 2B] the scored rewards
    let trained: tf.Tensor2D; // [k, 2B] what the BT loss sees
    let extra: tf.Scalar | undefined;
    const odin = config.odin;
    if (odin !== undefined && input.lengthHeads !== undefined && phase.features !== undefined) {
      const f = phase.features(batch, input.dropoutRng);
      const members = tf.tensor1d(phase.members as number[], 'int32'); // [k]
      const wl = tf.gather(input.lengthHeads.w, members, 1) as tf.Tensor2D; // [D, k]
      const bl = tf.gather(input.lengthHeads.b, members) as tf.Tensor1D; // [k]
      const rl =
        f.hidden.shape[0] === 2 * B
          ? multiHeadRewards(wl, bl, f.hidden) // [k, 2B]
          : memberHeadRewards(wl, bl, f.hidden); // [k, 2B]
      quality = f.rewards;
      trained = tf.add(f.rewards, rl) as tf.Tensor2D; // [k, 2B]
      const correlation = odinCorrelationLoss(f.rewards, rl, input.lengths as tf.Tensor1D);
      const orthogonality = odinOrthogonalityLoss(f.headWeights, wl);
      extra = tf.add(
        tf.mul(correlation, odin.lengthWeight),
        tf.mul(orthogonality, odin.orthWeight),
      ) as tf.Scalar;
    } else {
      quality = phase.rewards(batch, input.dropoutRng); // [k, 2B]
      trained = quality;
    }
    const chosen = tf.slice(trained, [0, 0], [k, B]) as tf.Tensor2D; // [k, B]
    const rejected = tf.slice(trained, [0, B], [k, B]) as tf.Tensor2D; // [k, B]
    let loss = bradleyTerryLoss(chosen, rejected, input.weights, config);
    if (extra !== undefined) loss = tf.add(loss, extra) as tf.Scalar;
    if ((config.diversity ?? 0) > 0) {
      const agreement = agreementLoss(
        tf.slice(quality, [0, 0], [k, B]) as tf.Tensor2D, // [k, B]
        tf.slice(quality, [0, B], [k, B]) as tf.Tensor2D, // [k, B]
      );
      loss = tf.add(loss, tf.mul(agreement, config.diversity as number)) as tf.Scalar;
    }
    return tf.div(loss, config.gradAccum) as tf.Scalar;
  });
}

/** The plain BT loss of the phase's rewards on held-out pairs, per member and pair (no dropout, no weights). */
export function validationLoss(
  phase: TrainingPhase,
  pairs: readonly EncodedPair[],
  padId: number,
  batchSize: number,
): number {
  let total = 0;
  for (let at = 0; at < pairs.length; at += batchSize) {
    const chunk = pairs.slice(at, at + batchSize);
    const batch = pairTokenBatch(chunk, padId);
    try {
      const loss = tf.tidy(() => {
        const r = phase.rewards(batch, undefined); // [k, 2B]
        const [k, twoB] = r.shape;
        const B = twoB / 2;
        return bradleyTerryLoss(
          tf.slice(r, [0, 0], [k, B]) as tf.Tensor2D, // [k, B]
          tf.slice(r, [0, B], [k, B]) as tf.Tensor2D, // [k, B]
          undefined,
        );
      });
      total += (loss.dataSync()[0] as number) * chunk.length;
      loss.dispose();
    } finally {
      disposeBatch(batch);
    }
  }
  return total / (pairs.length * phase.members.length);
}

/**
 * Steps that fit `remainingMs` at `msPerStep` (at least 1), capped by `maxSteps`: how a time budget sizes
 * a phase and its schedule.
 */
export function stepsForBudget(remainingMs: number, msPerStep: number, maxSteps?: number): number {
  const fit = Math.max(1, Math.floor(remainingMs / Math.max(msPerStep, 1e-3)));
  return maxSteps === undefined ? fit : Math.min(fit, maxSteps);
}

/**
 * `memberSubsets`: splits pair indices into k disjoint seeded subsets of equal size (±1) → pair index → the
 * one member that trains on it.
 */
export function memberSubsets(indices: readonly number[], k: number, rng: Rng): Map<number, number> {
  const owners = new Map<number, number>();
  rng.permutation(indices.length).forEach((at, i) => {
    owners.set(indices[at] as number, i % k);
  });
  return owners;
}

/** The member subsets of a phase when `config.memberSubsets` applies to it (members trained on their own weights in one pass). */
function memberSubsetOwners(plan: PhasePlan, config: RewardTrainConfig): Map<number, number> | undefined {
  const k = plan.phase.members.length;
  if (config.memberSubsets !== true || plan.phase.sharedTrunk || k < 2) return undefined;
  return memberSubsets(plan.indices, k, new Rng(config.seed).fork(`${plan.phase.name}/member-subsets`));
}

/** The early-stopping slice: a seeded `fraction` of the pairs (1 … maxPairs), and the rest to train on. */
export function holdOut(
  encoded: readonly EncodedPair[],
  config: RewardTrainConfig,
): { train: EncodedPair[]; validation: EncodedPair[] } {
  const es = config.earlyStopping;
  if (es === undefined) return { train: [...encoded], validation: [] };
  const n = Math.min(es.maxPairs, Math.max(1, Math.floor(es.fraction * encoded.length)));
  if (n >= encoded.length) {
    throw new DataError(
      `early stopping holds out ${n} of ${encoded.length} training pairs, leaving none to train on`,
      { location: { field: 'earlyStopping' }, hint: 'give more training pairs, or turn early stopping off' },
    );
  }
  const order = new Rng(config.seed).fork('validation').permutation(encoded.length);
  return {
    validation: order.slice(0, n).map((i) => encoded[i] as EncodedPair),
    train: order.slice(n).map((i) => encoded[i] as EncodedPair),
  };
}

/** Trains every phase of the ensemble; resumes from `out/train-state` when asked. */
export async function trainRewardEnsemble(options: RewardTrainOptions): Promise<RewardTrainResult> {
  const { ensemble, tokenizer, config } = options;
  const note = options.onNote ?? (() => {});
  const clock = options.clock ?? Date.now;
  const usable = options.pairs.filter((p) => p.tie !== true);
  const all = encodePairs(tokenizer, usable, config.maxLength, options.truncation ?? 'left');
  const { dropped, truncated } = all;
  const pairCounts: RewardPairCounts = {
    used: all.encoded.length,
    ties: options.pairs.length - usable.length,
    dropped,
    truncated,
  };
  if (all.encoded.length > 0 && config.odin !== undefined) {
    const missing = ensemble.phases().find((p) => p.features === undefined);
    if (missing !== undefined) {
      throw new ConfigError(
        `the ODIN objective needs the heads' input, which phase "${missing.name}" of ${ensemble.architecture} does not expose`,
        {
          location: { field: 'odin' },
          hint: 'implement TrainingPhase.features in the architecture, or train without odin',
        },
      );
    }
  }
  const { train: encoded, validation } =
    all.encoded.length === 0 ? { train: [], validation: [] } : holdOut(all.encoded, config);
  const plans = planPhases(ensemble, encoded.length, config, pairCounts);
  const settings = comparedSettings(config, RESUMABLE_CHANGES, options.settings);
  let forcedResumes: ForcedResume[] = [];
  const store =
    options.out === undefined
      ? undefined
      : new CheckpointStore(path.join(options.out, 'train-state'), { keep: 2 });
  const metricsFile = options.out === undefined ? undefined : path.join(options.out, 'metrics.jsonl');
  if (options.out !== undefined) mkdirSync(options.out, { recursive: true });

  // Trainer-owned variables: ODIN's length heads, seeded apart from everything else.
  const extraVars: Record<string, tf.Variable> = {};
  let lengthHeads: { w: tf.Tensor2D; b: tf.Tensor1D } | undefined;
  if (config.odin !== undefined) {
    lengthHeads = initMultiHead(
      ensemble.gptConfig.dModel,
      ensemble.members,
      new Rng(config.seed).fork('odin'),
      {
        variable: true,
      },
    );
    extraVars[LENGTH_HEAD_W] = lengthHeads.w as tf.Variable;
    extraVars[LENGTH_HEAD_B] = lengthHeads.b as tf.Variable;
  }
  try {
    // Where to start: phase index, step within it, plus weights and optimizer state from the saved state.
    let start: StatePosition = { phaseIndex: 0, step: 0 };
    let savedOpt: { step: number; tensors: Record<string, tf.Tensor> } | undefined;
    let globalStep = 0;
    if (options.resume === true && store !== undefined) {
      const latest = await store.latest();
      for (const w of latest?.warnings ?? []) note(w);
      if (latest === undefined) {
        note('no saved state yet: starting from the beginning');
        // Lines a killed run logged before its first state are logged again.
        if (metricsFile !== undefined) await filterJsonlFile(metricsFile, () => false);
      } else {
        const meta = latest.meta as unknown as StatePosition & {
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
        for (const vars of [...Object.values(ensemble.tensorFiles()), extraVars]) {
          for (const [name, v] of Object.entries(vars)) {
            const t = tensors[`model.${name}`];
            if (t === undefined || !tf.util.arraysEqual(t.shape, v.shape)) {
              tf.dispose(Object.values(tensors));
              throw new CheckpointError(`saved state does not match this ensemble (tensor "${name}")`, {
                location: { file: path.join(latest.dir, STATE_FILE) },
                hint: 'resume with the same architecture, members, size and objective, or start over with --overwrite',
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
        globalStep = latest.step;
        start = {
          phaseIndex: meta.phaseIndex,
          step: meta.step,
          phaseSteps: meta.phaseSteps,
          budgetUsed: meta.budgetUsed,
        };
        // Steps after the state were logged by the run that was stopped; they are logged again.
        if (metricsFile !== undefined)
          await filterJsonlFile(
            metricsFile,
            (row) => ((row as { globalStep?: number }).globalStep ?? Number.POSITIVE_INFINITY) <= latest.step,
          );
        note(`resuming at phase ${plans[meta.phaseIndex]?.phase.name ?? meta.phaseIndex}, step ${meta.step}`);
        if (config.earlyStopping !== undefined && meta.step > 0)
          note('early stopping starts its patience and best weights afresh from the resumed step');
      }
    }

    const began = Date.now();
    const clockStart = clock();
    const budgetMs = config.timeBudget === undefined ? undefined : config.timeBudget * 1000;
    const usedBefore = (start.budgetUsed ?? 0) * 1000;
    const budgetUsed = (): number => (usedBefore + clock() - clockStart) / 1000;
    const deadline = budgetMs === undefined ? undefined : clockStart + budgetMs - usedBefore;
    const stepsDone: Record<string, number> = {};
    const finalLoss: Record<string, number> = {};
    const summaries: Record<string, PhaseSummary> = {};
    const run: RunRecord = { settings, forcedResumes };

    for (let pi = start.phaseIndex; pi < plans.length; pi++) {
      const plan = plans[pi] as PhasePlan;
      const { phase } = plan;
      const full = phase.kind === 'full';
      const vars = { ...phase.variables(), ...extraVars };
      const k = phase.members.length;
      const owners = memberSubsetOwners(plan, config);
      const orders = new Map<number, number[]>();
      const resumed = pi === start.phaseIndex && savedOpt !== undefined;

      /** Loss and gradients of micro-batch `micro` (randomness from `label`). */
      const microGrads = (
        micro: number,
        label: string,
      ): { loss: number; grads: Record<string, tf.Tensor>; n: number } => {
        const idx = microBatch(plan, micro, config, orders);
        const pairs = idx.map((i) => encoded[i] as EncodedPair);
        const rng = new Rng(config.seed).fork(label);
        const w = new Float32Array(k * pairs.length);
        for (let m = 0; m < k; m++) {
          for (let j = 0; j < pairs.length; j++) {
            const boot = phase.sharedTrunk && config.bootstrap ? poisson1(rng) : 1;
            const own = owners === undefined || owners.get(idx[j] as number) === m ? 1 : 0;
            w[m * pairs.length + j] = boot * own * (pairs[j] as EncodedPair).weight;
          }
        }
        const batch = pairTokenBatch(pairs, tokenizer.padId);
        const weights = tf.tensor2d(w, [k, pairs.length]); // [k, B]
        const lengths =
          lengthHeads === undefined
            ? undefined
            : tf.tensor1d([...pairs.map((p) => p.chosenLength), ...pairs.map((p) => p.rejectedLength)]); // [2B]
        const dropoutRng = rng.fork('dropout');
        try {
          const { loss, grads } = valueAndGrads(
            () =>
              microBatchLoss({
                phase,
                batch,
                weights,
                lengths,
                lengthHeads,
                config,
                dropoutRng,
                pairs: pairs.length,
              }),
            vars,
          );
          return { loss, grads, n: pairs.length };
        } finally {
          disposeBatch(batch);
          weights.dispose();
          lengths?.dispose();
        }
      };

      // Steps: planned, or sized to the phase's share of the time left (measured on probe steps).
      let steps = plan.steps;
      let phaseDeadline: number | undefined;
      let msPerStep: number | undefined;
      if (deadline !== undefined) {
        const pairsLeft = plans.slice(pi).reduce((n, p) => n + p.indices.length, 0);
        const now = clock();
        phaseDeadline = now + Math.max(0, deadline - now) * (plan.indices.length / pairsLeft);
        if (resumed && start.phaseSteps !== undefined) steps = start.phaseSteps;
        else {
          // Two probe steps (no update): the first pays for kernel set-up, the second is timed.
          let probeMs = 0;
          for (let p = 0; p < 2; p++) {
            const t0 = clock();
            for (let a = 0; a < config.gradAccum; a++) {
              const { grads } = microGrads(p * config.gradAccum + a, `${phase.name}/probe-${p}/micro-${a}`);
              tf.dispose(Object.values(grads));
            }
            probeMs = clock() - t0;
          }
          let evalMs = 0;
          if (config.earlyStopping !== undefined) {
            const t0 = clock();
            validationLoss(phase, validation, tokenizer.padId, config.batchSize);
            evalMs = (clock() - t0) / config.earlyStopping.every;
          }
          msPerStep = probeMs + evalMs;
          steps = stepsForBudget(phaseDeadline - clock(), msPerStep, config.maxSteps);
          note(
            `${phase.name}: ${(msPerStep / 1000).toFixed(3)} s per step → ${steps} steps in its ${((phaseDeadline - now) / 1000).toFixed(0)} s of the budget`,
          );
        }
      }
      const checkpointEvery = config.checkpointEvery ?? defaultCheckpointEvery(steps);
      const warmupSteps = Math.ceil(config.warmupRatio * steps);
      const makeOptimizer = (totalSteps: number): AdamW =>
        new AdamW(vars, {
          lr: full ? config.lr : config.loraLr,
          weightDecay: config.weightDecay,
          clipNorm: config.clipNorm > 0 ? config.clipNorm : undefined,
          schedule: {
            kind: full ? config.schedule : config.loraSchedule,
            warmupSteps,
            totalSteps,
            minLrRatio: 0,
          },
        });
      let optimizer = makeOptimizer(steps);
      let step = 0;
      if (resumed && savedOpt !== undefined) {
        // A state saved at a phase boundary (step 0) holds the previous phase's optimizer: start fresh.
        if (start.step > 0) optimizer.loadState(savedOpt);
        tf.dispose(Object.values(savedOpt.tensors));
        savedOpt = undefined;
        step = start.step;
      }
      const position = (at: number, done: boolean): StatePosition => ({
        ...(done ? { phaseIndex: pi + 1, step: 0 } : { phaseIndex: pi, step: at, phaseSteps: steps }),
        ...(deadline === undefined ? {} : { budgetUsed: budgetUsed() }),
      });
      let windowLoss = 0;
      let windowSteps = 0;
      let windowStart = Date.now();
      let windowPairs = 0;
      let stoppedBy: PhaseSummary['stoppedBy'];
      // Early stopping: the best held-out loss, its step and a copy of the weights then.
      let best: { loss: number; step: number; weights: Record<string, tf.Tensor> } | undefined;
      let badEvals = 0;
      let lastEval = -1;
      const evaluate = (): boolean => {
        lastEval = step;
        const loss = validationLoss(phase, validation, tokenizer.padId, config.batchSize);
        const improved = best === undefined || loss < best.loss;
        if (improved) {
          if (best !== undefined) tf.dispose(Object.values(best.weights));
          const weights: Record<string, tf.Tensor> = {};
          for (const [name, v] of Object.entries(vars)) weights[name] = v.clone();
          best = { loss, step, weights };
          badEvals = 0;
        } else badEvals++;
        if (metricsFile !== undefined) {
          const line = { phase: phase.name, step, globalStep, validationLoss: loss, bestStep: best?.step };
          appendFileSync(metricsFile, `${JSON.stringify(line)}\n`);
        }
        return badEvals >= (config.earlyStopping?.patience ?? Number.POSITIVE_INFINITY);
      };
      const loopStart = clock();
      const loopFirstStep = step;
      const resizeEvery = Math.max(3, Math.ceil(steps / 10));
      try {
        while (step < steps) {
          if (options.signal?.aborted === true) {
            if (store !== undefined)
              await saveState(store, ensemble, extraVars, optimizer, position(step, false), globalStep, run);
            return {
              stoppedEarly: true,
              phases: { ...summaries, [phase.name]: { plannedSteps: steps, steps: step } },
              validationPairs: validation.length,
              forcedResumes,
              pairs: pairCounts,
              steps: { ...stepsDone, [phase.name]: step },
              seconds: (Date.now() - began) / 1000,
              finalLoss,
            };
          }
          if (phaseDeadline !== undefined) {
            // Stop when the next step would end past the phase's deadline (half a step of slack).
            const now = clock();
            const done = step - loopFirstStep;
            const avg = done > 0 ? (now - loopStart) / done : (msPerStep ?? 0);
            if (now + avg / 2 >= phaseDeadline) {
              stoppedBy = 'budget';
              break;
            }
            // Re-size the schedule to the measured step time now and then (the first estimate is one step).
            if (done >= 3 && done % resizeEvery === 0) {
              const resized = Math.max(step + 1, stepsForBudget(phaseDeadline - now, avg, undefined) + step);
              const capped = config.maxSteps === undefined ? resized : Math.min(resized, config.maxSteps);
              if (Math.abs(capped - steps) > Math.max(1, 0.02 * steps)) {
                const state = optimizer.state();
                const next = makeOptimizer(capped);
                next.loadState(state);
                tf.dispose(Object.values(state.tensors));
                optimizer.dispose();
                optimizer = next;
                steps = capped;
              }
            }
          }
          const acc: Record<string, tf.Tensor> = {};
          let stepLoss = 0;
          for (let a = 0; a < config.gradAccum; a++) {
            const { loss, grads, n } = microGrads(
              step * config.gradAccum + a,
              `${phase.name}/step-${step}/micro-${a}`,
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
            windowPairs += n;
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
            steps,
            loss: stepLoss,
            lr: info.lr,
            pairsPerSecond,
          });
          if (step % config.logEvery === 0 || step === steps) {
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
            config.earlyStopping !== undefined &&
            (step % config.earlyStopping.every === 0 || step === steps)
          ) {
            if (evaluate()) {
              stoppedBy = 'patience';
              break;
            }
          }
          if (store !== undefined && checkpointEvery > 0 && step % checkpointEvery === 0 && step < steps) {
            await saveState(store, ensemble, extraVars, optimizer, position(step, false), globalStep, run);
          }
        }
        if (config.earlyStopping !== undefined && lastEval < step && step > 0) evaluate();
        const kept = best as { loss: number; step: number; weights: Record<string, tf.Tensor> } | undefined;
        if (kept !== undefined && kept.step !== step) {
          for (const [name, v] of Object.entries(vars)) v.assign(kept.weights[name] as tf.Tensor);
          note(
            `${phase.name}: kept the weights of step ${kept.step} (held-out loss ${kept.loss.toFixed(4)})`,
          );
        }
        // A finished phase is saved as the start of the next one.
        if (store !== undefined)
          await saveState(store, ensemble, extraVars, optimizer, position(step, true), globalStep, run);
        summaries[phase.name] = {
          plannedSteps: steps,
          steps: step,
          ...(stoppedBy === undefined ? {} : { stoppedBy }),
          ...(kept === undefined ? {} : { bestStep: kept.step, bestValidationLoss: kept.loss }),
          ...(msPerStep === undefined ? {} : { secondsPerStep: msPerStep / 1000 }),
        };
        if (stoppedBy === 'budget')
          note(`${phase.name}: its share of the time budget ran out after ${step} steps`);
        if (stoppedBy === 'patience')
          note(
            `${phase.name}: stopped early after ${step} steps (no held-out improvement in ${badEvals} evaluations)`,
          );
      } finally {
        optimizer.dispose();
        const held = best as { weights: Record<string, tf.Tensor> } | undefined;
        if (held !== undefined) tf.dispose(Object.values(held.weights));
      }
      stepsDone[phase.name] = step;
    }
    if (savedOpt !== undefined) tf.dispose(Object.values(savedOpt.tensors));
    ensemble.finalize?.();
    return {
      stoppedEarly: false,
      phases: summaries,
      validationPairs: validation.length,
      forcedResumes,
      pairs: pairCounts,
      steps: stepsDone,
      seconds: (Date.now() - began) / 1000,
      finalLoss,
    };
  } finally {
    for (const v of Object.values(extraVars)) v.dispose();
  }
}
