/**
 * Supervised fine-tuning over pre-tokenised sequences: next-token cross-entropy on the response
 * tokens only (the caller's loss mask), or with `objective: 'lm'` on every token of packed blocks
 * (documents joined with eos and cut into context-length blocks, GPT-2 / nanoGPT pretraining), AdamW with warmup + cosine/constant, gradient accumulation,
 * clipping, periodic eval loss, a progress callback, and resumable checkpoints. A checkpoint records the
 * settings it was trained with; resuming with other settings is refused (listing them) unless forceResume.
 */
import {
  CheckpointError,
  CheckpointStore,
  comparedSettings,
  DataError,
  type ForcedResume,
  forcedResumeWarning,
  Rng,
  resumeRefusal,
  settingDifferences,
} from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { assignNamed, decodeOptimizerState, encodeGpt, encodeOptimizerState } from './checkpoint.js';
import type { GptConfig } from './config.js';
import {
  type GptForwardOptions,
  type GptParams,
  gatherLogProbs,
  gptHidden,
  lmLogits,
  namedParameters,
} from './model.js';
import { AdamW, valueAndGrads } from './optim.js';
import { defaultSftCheckpointEvery, SFT_RESUMABLE_CHANGES, type SftConfig } from './sft-config.js';
import { checkpointFiles, decodeGptCheckpoint } from './train-state.js';

/** One training sequence: `lossMask[i] = 1` when `ids[i]` is a response token to learn (a target). */
export interface SftExample {
  readonly ids: readonly number[];
  readonly lossMask: readonly number[];
}

/** A right-padded batch; the caller disposes the tensors. */
export interface SftBatch {
  readonly ids: tf.Tensor2D; // [B, T] int32
  readonly mask: tf.Tensor2D; // [B, T] 1 = real token
  readonly lossMask: tf.Tensor2D; // [B, T] 1 = trained target
  /** Number of trained targets (positions ≥ 1 with lossMask 1). */
  readonly targets: number;
  /** Number of real tokens. */
  readonly tokens: number;
}

export function makeSftBatch(examples: readonly SftExample[], padId = 0): SftBatch {
  const B = examples.length;
  const T = Math.max(...examples.map((e) => e.ids.length));
  const ids = new Int32Array(B * T).fill(padId);
  const mask = new Float32Array(B * T);
  const lossMask = new Float32Array(B * T);
  let targets = 0;
  let tokens = 0;
  examples.forEach((e, b) => {
    e.ids.forEach((id, t) => {
      ids[b * T + t] = id;
      mask[b * T + t] = 1;
      lossMask[b * T + t] = e.lossMask[t] ? 1 : 0;
      if (t > 0 && e.lossMask[t]) targets++;
    });
    tokens += e.ids.length;
  });
  return {
    ids: tf.tensor2d(ids, [B, T], 'int32'),
    mask: tf.tensor2d(mask, [B, T]),
    lossMask: tf.tensor2d(lossMask, [B, T]),
    targets,
    tokens,
  };
}

/**
 * Sum of −log p(target) over the trained targets, divided by `normalizer` (default: their count, i.e.
 * the mean). Gradient accumulation passes the count over all micro-batches of the step.
 */
export function sftLoss(
  params: GptParams,
  config: GptConfig,
  batch: SftBatch,
  options: { normalizer?: number; forward?: GptForwardOptions } = {},
): tf.Scalar {
  return tf.tidy(() => {
    const [B, T] = batch.ids.shape;
    const hidden = gptHidden(params, config, batch.ids, batch.mask, options.forward); // [B, T, D]
    const logits = lmLogits(params, tf.slice(hidden, [0, 0, 0], [B, T - 1, -1])); // [B, T-1, V]
    const logp = gatherLogProbs(logits, tf.slice(batch.ids, [0, 1], [B, T - 1])); // [B, T-1]
    const w = tf.slice(tf.mul(batch.lossMask, batch.mask), [0, 1], [B, T - 1]); // [B, T-1]
    return tf.div(
      tf.neg(tf.sum(tf.mul(logp, w))),
      Math.max(1, options.normalizer ?? batch.targets),
    ) as tf.Scalar;
  });
}

export interface SftProgress {
  readonly step: number;
  readonly maxSteps: number;
  /** Mean training loss over the steps since the last report. */
  readonly loss: number;
  readonly lr: number;
  readonly gradNorm: number;
  /** Real tokens (prompt and response) per second since the last report. */
  readonly tokensPerSec: number;
  /** Set on the steps that evaluated. */
  readonly evalLoss?: number;
}

export interface SftSummary {
  readonly steps: number;
  readonly trainLoss: number;
  readonly evalLoss: number | undefined;
  readonly seconds: number;
}

export interface SftTrainerOptions {
  readonly config: GptConfig;
  /** Trained in place. */
  readonly params: GptParams;
  readonly sft: SftConfig;
  readonly train: readonly SftExample[];
  readonly eval?: readonly SftExample[] | undefined;
  readonly onProgress?: ((progress: SftProgress) => void) | undefined;
  /** Checkpoints (model, optimizer, data order, RNG) are written here; `resume()` reads them. */
  readonly outDir?: string | undefined;
  /** Id for right padding (masked out). Default 0. */
  readonly padId?: number;
  /**
   * The caller's settings of the run beyond `sft` (data, init, max length, …), saved with every checkpoint.
   * On resume they and `sft` (all but logEvery, evalEvery, evalMaxExamples, checkpointEvery) must equal the
   * saved ones.
   */
  readonly settings?: Readonly<Record<string, unknown>> | undefined;
  /**
   * Resume even when the settings differ from the checkpoint's: `resume()` goes on, `onNote` says what
   * differs, and `forcedResumes` (saved with later checkpoints) records it.
   */
  readonly forceResume?: boolean | undefined;
  /** Called with a line worth showing (a forced resume's differences). */
  readonly onNote?: ((message: string) => void) | undefined;
}

function validateExamples(
  examples: readonly SftExample[],
  config: GptConfig,
  field: string,
  objective: SftConfig['objective'],
): void {
  examples.forEach((e, i) => {
    const at = `${field}[${i}]`;
    const fail = (message: string, hint: string): never => {
      throw new DataError(message, { location: { field: at }, hint });
    };
    if (e.ids.length !== e.lossMask.length) {
      fail(
        `ids has ${e.ids.length} entries, lossMask ${e.lossMask.length}`,
        'give one lossMask entry per id',
      );
    }
    if (e.ids.length > config.contextLength) {
      fail(
        `sequence of length ${e.ids.length} exceeds context ${config.contextLength}`,
        'truncate when tokenising',
      );
    }
    const bad = e.ids.find((id) => !Number.isInteger(id) || id < 0 || id >= config.vocabSize);
    if (bad !== undefined)
      fail(`token id ${bad} is outside [0, ${config.vocabSize})`, 'tokenise with the model vocabulary');
    if (objective === 'lm') {
      const t = e.lossMask.findIndex((m, t) => t > 0 && !m);
      if (t > 0 || e.ids.length < 2)
        fail(
          e.ids.length < 2
            ? `a block of ${e.ids.length} token(s) has no target`
            : `position ${t} is not a target, but the lm objective learns every token after a block's first`,
          "pack documents with @quorum/data's packDocuments, or use the sft objective for a masked loss",
        );
      return;
    }
    if (!e.lossMask.some((m, t) => t > 0 && m)) {
      fail(
        'no trained target (lossMask is 0 at every position after the first)',
        'mark the response tokens with 1',
      );
    }
  });
}

export class SftTrainer {
  readonly optimizer: AdamW;
  private readonly opts: SftTrainerOptions;
  private readonly named: Record<string, tf.Variable>;
  private readonly store: CheckpointStore | undefined;
  private rng: Rng;
  private dropoutRng: Rng;
  private order: number[] = [];
  private cursor = 0;
  private forced: ForcedResume[] = [];
  /**
   * The eval loss before training (set it with `evaluateInitial()` at step 0); saved with every checkpoint
   * and restored by `resume()`, so a resumed run still reports where it started.
   */
  initialEvalLoss: number | undefined;

  constructor(options: SftTrainerOptions) {
    const { sft, config } = options;
    if (options.train.length === 0) {
      throw new DataError('the training set is empty', {
        location: { field: 'train' },
        hint: 'pass at least one example',
      });
    }
    validateExamples(options.train, config, 'train', sft.objective);
    validateExamples(options.eval ?? [], config, 'eval', sft.objective);
    this.opts = options;
    this.named = namedParameters(options.params);
    this.optimizer = new AdamW(this.named, {
      lr: sft.lr,
      beta1: sft.beta1,
      beta2: sft.beta2,
      eps: sft.eps,
      weightDecay: sft.weightDecay,
      clipNorm: sft.clipNorm,
      schedule: {
        kind: sft.schedule,
        warmupSteps: Math.round(sft.warmupRatio * sft.maxSteps),
        totalSteps: sft.maxSteps,
        minLrRatio: sft.minLrRatio,
      },
    });
    this.store = options.outDir === undefined ? undefined : new CheckpointStore(options.outDir);
    const root = new Rng(sft.seed);
    this.rng = root.fork('sft/data');
    this.dropoutRng = root.fork('sft/dropout');
  }

  /** Optimizer steps done. */
  get step(): number {
    return this.optimizer.step;
  }

  /** Steps between checkpoints: `sft.checkpointEvery`, or min(100, ⌈maxSteps / 4⌉) when it is unset. */
  get checkpointEvery(): number {
    return this.opts.sft.checkpointEvery ?? defaultSftCheckpointEvery(this.opts.sft.maxSteps);
  }

  /** Every resume of this run that went ahead with other settings (forceResume), oldest first. */
  get forcedResumes(): readonly ForcedResume[] {
    return this.forced;
  }

  /** Evaluates the untrained model and keeps the loss as `initialEvalLoss`. */
  evaluateInitial(): number | undefined {
    this.initialEvalLoss = this.evaluate();
    return this.initialEvalLoss;
  }

  /** The settings a resume compares. */
  private settings(): Record<string, unknown> {
    return comparedSettings(this.opts.sft, SFT_RESUMABLE_CHANGES, this.opts.settings);
  }

  private nextExamples(n: number): SftExample[] {
    const out: SftExample[] = [];
    while (out.length < n) {
      if (this.cursor >= this.order.length) {
        this.order = this.rng.permutation(this.opts.train.length);
        this.cursor = 0;
      }
      out.push(this.opts.train[this.order[this.cursor++] as number] as SftExample);
    }
    return out;
  }

  /** One optimizer step over gradAccumSteps micro-batches; loss is the mean over all their targets. */
  trainStep(): { loss: number; lr: number; gradNorm: number; tokens: number } {
    const { sft, config, params } = this.opts;
    const micro = Array.from({ length: sft.gradAccumSteps }, () =>
      makeSftBatch(this.nextExamples(sft.batchSize), this.opts.padId),
    );
    const normalizer = micro.reduce((a, b) => a + b.targets, 0);
    const forward = config.dropout > 0 ? { dropoutRng: this.dropoutRng } : {};
    const acc: Record<string, tf.Tensor> = {};
    let loss = 0;
    try {
      for (const batch of micro) {
        const r = valueAndGrads(() => sftLoss(params, config, batch, { normalizer, forward }), this.named);
        loss += r.loss;
        for (const [name, g] of Object.entries(r.grads)) {
          const prev = acc[name];
          if (prev === undefined) acc[name] = g;
          else {
            acc[name] = tf.add(prev, g);
            tf.dispose([prev, g]);
          }
        }
      }
      const info = this.optimizer.applyGradients(acc);
      return { loss, lr: info.lr, gradNorm: info.gradNorm, tokens: micro.reduce((a, b) => a + b.tokens, 0) };
    } finally {
      tf.dispose(Object.values(acc));
      for (const b of micro) tf.dispose([b.ids, b.mask, b.lossMask]);
    }
  }

  /** Mean loss per target over (up to evalMaxExamples of) the eval set; undefined without one. */
  evaluate(): number | undefined {
    const { sft, config, params } = this.opts;
    const examples = (this.opts.eval ?? []).slice(0, sft.evalMaxExamples);
    if (examples.length === 0) return undefined;
    let total = 0;
    let count = 0;
    for (let i = 0; i < examples.length; i += sft.batchSize) {
      const batch = makeSftBatch(examples.slice(i, i + sft.batchSize), this.opts.padId);
      const loss = tf.tidy(() => sftLoss(params, config, batch, { normalizer: 1 }));
      total += loss.dataSync()[0] as number;
      count += batch.targets;
      tf.dispose([loss, batch.ids, batch.mask, batch.lossMask]);
    }
    return total / count;
  }

  /**
   * Trains from the current step (e.g. after `resume()`) to maxSteps, or only to `stopAtStep` (the
   * schedule still spans maxSteps); a checkpoint is written at the stop when outDir is set.
   */
  async train(options: { stopAtStep?: number } = {}): Promise<SftSummary> {
    const { sft } = this.opts;
    const stopAt = Math.min(sft.maxSteps, options.stopAtStep ?? sft.maxSteps);
    const started = performance.now();
    let windowLoss = 0;
    let windowSteps = 0;
    let windowTokens = 0;
    let windowStart = performance.now();
    let lastLoss = Number.NaN;
    let evalLoss: number | undefined;
    while (this.step < stopAt) {
      const r = this.trainStep();
      lastLoss = r.loss;
      windowLoss += r.loss;
      windowSteps += 1;
      windowTokens += r.tokens;
      const step = this.step;
      const last = step === stopAt;
      const evaluates = last || (sft.evalEvery > 0 && step % sft.evalEvery === 0);
      if (evaluates) evalLoss = this.evaluate();
      if (last || step % sft.logEvery === 0 || evaluates) {
        const seconds = (performance.now() - windowStart) / 1000;
        this.opts.onProgress?.({
          step,
          maxSteps: sft.maxSteps,
          loss: windowLoss / windowSteps,
          lr: r.lr,
          gradNorm: r.gradNorm,
          tokensPerSec: windowTokens / Math.max(seconds, 1e-9),
          ...(evaluates && evalLoss !== undefined ? { evalLoss } : {}),
        });
        windowLoss = 0;
        windowSteps = 0;
        windowTokens = 0;
        windowStart = performance.now();
      }
      const every = this.checkpointEvery;
      if (this.store !== undefined && (last || (every > 0 && step % every === 0))) {
        await this.saveCheckpoint();
      }
    }
    return { steps: this.step, trainLoss: lastLoss, evalLoss, seconds: (performance.now() - started) / 1000 };
  }

  /** Writes model, optimizer and trainer state as the checkpoint of the current step. */
  async saveCheckpoint(): Promise<string> {
    if (this.store === undefined) {
      throw new CheckpointError('no output folder to save to', {
        location: { field: 'outDir' },
        hint: 'pass outDir to the SftTrainer',
      });
    }
    const state = this.optimizer.state();
    try {
      const trainer = {
        step: this.step,
        order: this.order,
        cursor: this.cursor,
        rng: this.rng.state(),
        dropoutRng: this.dropoutRng.state(),
        sft: this.opts.sft,
        settings: this.settings(),
        forcedResumes: this.forced,
        initialEvalLoss: this.initialEvalLoss,
      };
      return await this.store.save(
        this.step,
        {
          'model.safetensors': await encodeGpt(this.opts.config, this.opts.params),
          'optimizer.safetensors': await encodeOptimizerState(state),
          'trainer.json': JSON.stringify(trainer),
        },
        { kind: 'sft', config: this.opts.config },
      );
    } finally {
      tf.dispose(Object.values(state.tensors));
    }
  }

  /**
   * Loads the newest good checkpoint in outDir, if any; returns its step. A checkpoint trained with other
   * settings is a ConfigError listing them (saved and now) unless `forceResume`.
   */
  async resume(): Promise<number | undefined> {
    const loaded = await this.store?.latest();
    if (loaded === undefined) return undefined;
    const file = checkpointFiles(loaded, 'an SFT');
    const trainer = JSON.parse(new TextDecoder().decode(file('trainer.json'))) as {
      order: number[];
      cursor: number;
      rng: ReturnType<Rng['state']>;
      dropoutRng: ReturnType<Rng['state']>;
      settings?: Record<string, unknown>;
      forcedResumes?: ForcedResume[];
      initialEvalLoss?: number | null;
    };
    // Checkpoints written before settings were recorded have none to compare.
    const differences =
      trainer.settings === undefined ? [] : settingDifferences(trainer.settings, this.settings());
    if (differences.length > 0 && this.opts.forceResume !== true)
      throw resumeRefusal(differences, loaded.dir, loaded.step);
    const tensors = decodeGptCheckpoint(
      loaded,
      'model.safetensors',
      this.opts.config,
      'resume with the same --size and vocabulary, or start a new --out folder',
    );
    const opt = decodeOptimizerState(file('optimizer.safetensors'), `${loaded.dir}/optimizer.safetensors`);
    try {
      assignNamed(this.named, tensors, `${loaded.dir}/model.safetensors`);
      this.optimizer.loadState(opt, `${loaded.dir}/optimizer.safetensors`);
    } finally {
      tf.dispose([...Object.values(tensors), ...Object.values(opt.tensors)]);
    }
    this.order = trainer.order;
    this.cursor = trainer.cursor;
    this.rng = Rng.fromState(trainer.rng);
    this.dropoutRng = Rng.fromState(trainer.dropoutRng);
    this.initialEvalLoss = trainer.initialEvalLoss ?? undefined;
    this.forced = [...(trainer.forcedResumes ?? [])];
    if (differences.length > 0) {
      this.opts.onNote?.(forcedResumeWarning(differences));
      this.forced.push({ step: loaded.step, differences });
    }
    return loaded.step;
  }

  /** Frees the optimizer state (the parameters belong to the caller). */
  dispose(): void {
    this.optimizer.dispose();
  }
}
