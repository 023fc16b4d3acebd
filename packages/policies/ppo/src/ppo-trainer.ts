/**
 * PPO for a causal-LM policy against a frozen reward ensemble (TRL's PPOTrainer, one file).
 *
 * One step: sample `rolloutBatch` prompts → generate answers (KV cache, temperature/top-p) → score the
 * decoded text, re-tokenised with the reward model's own tokenizer, with the ensemble and aggregate the
 * k rewards with an AggregationRule (e.g. `lcb`) → per-token rewards −β·KL(policy‖reference) plus the
 * score on the last token → GAE with the value head's values → `ppoEpochs` passes of clipped policy +
 * clipped value loss over minibatches of `stepBatch`, AdamW over the policy and its value head.
 *
 * The value head reads the policy's final hidden states (a shared trunk, as TRL's
 * AutoModelForCausalLMWithValueHead), so the value loss also shapes the trunk (weighted by vfCoef).
 * Step s draws all its randomness from `new Rng(seed).fork('step-s')`: a resumed run equals an
 * uninterrupted one. A checkpoint records the settings it was trained with; resuming with others is refused
 * (listing them) unless `forceResume`, and metrics.jsonl is cut back to the checkpoint's step.
 *
 * Per-row layout: a sequence is prompt (P ids) + response (R ids, eos included when produced). In the
 * next-token frame [B, T−1], position t predicts ids[t+1], so the response's actions sit at positions
 * P−1 … P+R−2, and the value at position t is the hidden state of ids[t] (the state before the action).
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { AggregationRule } from '@quorum/aggregation';
import {
  AdamW,
  assignNamed,
  checkpointFiles,
  decodeGptCheckpoint,
  decodeOptimizerState,
  encodeGpt,
  encodeOptimizerState,
  type GptConfig,
  type GptParams,
  gatherLogProbs,
  generate,
  gptHidden,
  lmLogits,
  loadGptParameters,
  namedParameters,
  savePolicy,
  tokenEntropy,
  valueAndGrads,
} from '@quorum/backbone';
import {
  CheckpointError,
  CheckpointStore,
  ConfigError,
  DataError,
  decodeSafetensors,
  encodeSafetensors,
  type ForcedResume,
  forcedResumeWarning,
  Rng,
  recordsToTensors,
  resumeRefusal,
  settingDifferences,
  tensorsToRecords,
  writeSafetensors,
} from '@quorum/core';
import { encodePrompt, filterJsonlFile, type Prompt, type TextTokenizer } from '@quorum/data';
import { encodeAnswer, type RewardEnsemble, scoreSequences } from '@quorum/ensemble';
import { disposeHead, initValueHead, type ValueHead, valueHeadForward } from '@quorum/heads';
import * as tf from '@tensorflow/tfjs';
import {
  defaultPpoCheckpointEvery,
  PPO_RESUMABLE_CHANGES,
  type PpoConfig,
  updatesPerStep,
} from './ppo-config.js';
import {
  AdaptiveKlController,
  clippedPolicyLoss,
  clippedValueLoss,
  FixedKlController,
  fullKl,
  gae,
  type KlController,
  type KlEstimator,
  klPerToken,
  sequenceKl,
  tokenRewards,
  whiten,
} from './ppo-math.js';

/** A frozen reward ensemble scores the decoded answers, re-tokenised with its own tokenizer. */
export interface EnsembleReward {
  readonly ensemble: RewardEnsemble;
  readonly tokenizer: TextTokenizer;
  readonly rule: AggregationRule;
}

/** Scores decoded answers directly: returns k member rewards per answer, as k arrays of length B. */
export interface FunctionReward {
  readonly score: (prompts: readonly Prompt[], answers: readonly string[]) => number[][];
  readonly rule: AggregationRule;
}

/** What is logged after every PPO step (one metrics.jsonl line). */
export interface PpoStepLog {
  readonly step: number;
  readonly steps: number;
  /** Mean aggregated reward of the rollout (before the missing-eos penalty). */
  readonly reward: number;
  /** Mean reward of each ensemble member. */
  readonly memberRewards: number[];
  /** Mean over members of the members' std per answer (their disagreement). */
  readonly rewardStd: number;
  /**
   * The KL to the reference that the penalty used: the mean over sequences of the sum over answer tokens
   * (eos included, prompt and padding never) of the `klEstimator` estimate on the rollout's sampled tokens,
   * in nats per answer. Exactly 0 at the first step (the policy is the reference). With k1 a batch can
   * come out below 0 (sampling noise; also a bias when topP < 1, see the README).
   */
  readonly kl: number;
  /** Which per-token estimator `kl` is: `k1` (log p − log q) or `k3` ((r − 1) − log r, r = q/p). */
  readonly klEstimator: KlEstimator;
  /** The same sum with k1: unbiased when sampling from the policy, can be negative for a batch. */
  readonly klK1: number;
  /** The same sum with k3: never negative, unbiased when sampling from the policy. */
  readonly klK3: number;
  /**
   * The same sum of the full-distribution KL at each answer position, Σ_v π(v)·log(π(v)/π_ref(v)) given the
   * sampled prefix: never negative, lowest variance; what `quorum reproduce` plots.
   */
  readonly klFull: number;
  /** Mean next-token entropy over generated tokens (nats). */
  readonly entropy: number;
  readonly policyLoss: number;
  readonly valueLoss: number;
  /** Share of tokens where the policy ratio was clipped. */
  readonly clipFraction: number;
  readonly valueClipFraction: number;
  /** ½·mean (log p − log p_old)² over the updates. */
  readonly approxKl: number;
  /** The KL coefficient used for this rollout. */
  readonly klCoef: number;
  readonly lr: number;
  readonly responseLength: number;
  /** Share of answers that ended with eos. */
  readonly eosRate: number;
  readonly seconds: number;
}

export interface PpoSummary {
  readonly steps: number;
  /** True when the run stopped on the abort signal (a checkpoint was saved when outDir is set). */
  readonly aborted: boolean;
  readonly last: PpoStepLog | undefined;
}

export interface PpoTrainerOptions {
  /** The policy, trained in place; its tokenizer encodes prompts and decodes answers. */
  readonly policy: {
    readonly config: GptConfig;
    readonly params: GptParams;
    readonly tokenizer: TextTokenizer;
  };
  /** The frozen reference (the SFT policy). Default: a copy of `policy.params` taken now (owned by the trainer). */
  readonly reference?: GptParams | undefined;
  /**
   * The reward: a frozen reward ensemble with its own tokenizer, or any function scoring decoded
   * answers (a rule-based reward, a remote judge, a toy reward in a test); either way the k member
   * rewards are combined by `rule`.
   */
  readonly reward: EnsembleReward | FunctionReward;
  readonly prompts: readonly Prompt[];
  readonly ppo: PpoConfig;
  /** metrics.jsonl, train-state/ (checkpoints) and the final policy go here. */
  readonly outDir?: string | undefined;
  /** Called after every step. */
  readonly onProgress?: ((log: PpoStepLog) => void) | undefined;
  /** Stops before the next step; a checkpoint is saved first when outDir is set. */
  readonly signal?: AbortSignal | undefined;
  /**
   * The caller's settings of the run beyond `ppo` (policy, reward model, rule, …), saved with every
   * checkpoint. On resume they and `ppo` (all but checkpointEvery) must equal the saved ones.
   */
  readonly settings?: Readonly<Record<string, unknown>> | undefined;
  /**
   * Resume even when the settings differ from the checkpoint's: `onNote` says what differs, and
   * `forcedResumes` (saved with later checkpoints and in the final quorum.json) records it.
   */
  readonly forceResume?: boolean | undefined;
  /** Called with a line worth showing (a forced resume's differences). */
  readonly onNote?: ((message: string) => void) | undefined;
}

/** One answered prompt of a rollout, with everything the updates need (arrays of length R). */
interface Row {
  readonly ids: number[];
  readonly promptLength: number;
  oldLogp: number[];
  values: number[];
  advantages: number[];
  returns: number[];
}

/** A minibatch of rows as right-padded tensors; per-action tensors are [b, T−1]. */
interface Minibatch {
  readonly ids: tf.Tensor2D; // [b, T] int32
  readonly mask: tf.Tensor2D; // [b, T]
  readonly actionMask: tf.Tensor2D; // [b, T-1]
  readonly oldLogp: tf.Tensor2D; // [b, T-1]
  readonly oldValues: tf.Tensor2D; // [b, T-1]
  readonly advantages: tf.Tensor2D; // [b, T-1]
  readonly returns: tf.Tensor2D; // [b, T-1]
}

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Right-pads rows into a minibatch; per-action arrays land at positions P−1 … P+R−2. */
function makeMinibatch(rows: readonly Row[], padId: number, withTargets: boolean): Minibatch {
  const b = rows.length;
  const T = Math.max(...rows.map((r) => r.ids.length));
  const ids = new Int32Array(b * T).fill(padId);
  const mask = new Float32Array(b * T);
  const per = (): Float32Array => new Float32Array(b * (T - 1));
  const [actionMask, oldLogp, oldValues, advantages, returns] = [per(), per(), per(), per(), per()];
  rows.forEach((row, i) => {
    row.ids.forEach((id, t) => {
      ids[i * T + t] = id;
      mask[i * T + t] = 1;
    });
    const start = i * (T - 1) + row.promptLength - 1;
    const R = row.ids.length - row.promptLength;
    actionMask.fill(1, start, start + R);
    if (withTargets) {
      oldLogp.set(row.oldLogp, start);
      oldValues.set(row.values, start);
      advantages.set(row.advantages, start);
      returns.set(row.returns, start);
    }
  });
  const t2 = (data: Float32Array): tf.Tensor2D => tf.tensor2d(data, [b, T - 1]);
  return {
    ids: tf.tensor2d(ids, [b, T], 'int32'),
    mask: tf.tensor2d(mask, [b, T]),
    actionMask: t2(actionMask),
    oldLogp: t2(oldLogp),
    oldValues: t2(oldValues),
    advantages: t2(advantages),
    returns: t2(returns),
  };
}

function disposeMinibatch(mb: Minibatch): void {
  tf.dispose(Object.values(mb));
}

/**
 * Log-probs of the taken tokens [b, T−1], values [b, T−1] and (optionally) entropies from one forward.
 * The log-probs are those of the sampling distribution, softmax(logits / temperature), as in TRL: the
 * answers were drawn at that temperature, so the ratio ρ, the KL estimate on the samples and the
 * entropy must be of the same distribution, or the importance weights are wrong from the first update
 * and the k1 KL estimate drifts negative. top-p is not modelled, so rollouts sample the whole distribution
 * (topP 1, as TRL) unless a user sets topP < 1.
 */
function policyForward(
  params: GptParams,
  config: GptConfig,
  head: ValueHead | undefined,
  ids: tf.Tensor2D,
  mask: tf.Tensor2D,
  withEntropy: boolean,
  temperature: number,
): {
  logp: tf.Tensor2D;
  values: tf.Tensor2D | undefined;
  entropy: tf.Tensor2D | undefined;
  logits: tf.Tensor3D;
} {
  const [b, T] = ids.shape;
  const hidden = gptHidden(params, config, ids, mask); // [b, T, D]
  const states = tf.slice(hidden, [0, 0, 0], [b, T - 1, -1]) as tf.Tensor3D; // [b, T-1, D]
  const raw = lmLogits(params, states); // [b, T-1, V]
  const logits = temperature === 1 ? raw : (tf.div(raw, temperature) as tf.Tensor3D); // [b, T-1, V]
  const logp = gatherLogProbs(logits, tf.slice(ids, [0, 1], [b, T - 1])) as tf.Tensor2D; // [b, T-1]
  return {
    logp,
    values: head === undefined ? undefined : valueHeadForward(head, states), // [b, T-1]
    entropy: withEntropy ? tokenEntropy(logits) : undefined, // [b, T-1]
    logits, // [b, T-1, V], at the sampling temperature
  };
}

/** Row i's R entries starting at column P−1 of a flat [b, T−1] array. */
function rowSlice(data: Float32Array, i: number, width: number, promptLength: number, R: number): number[] {
  const start = i * width + promptLength - 1;
  return Array.from(data.subarray(start, start + R));
}

/** k member rewards (k arrays of length B) for decoded answers, from either form of reward. */
function scoreAnswers(
  reward: EnsembleReward | FunctionReward,
  prompts: readonly Prompt[],
  answers: readonly string[],
  batchSize: number,
): number[][] {
  if ('score' in reward) {
    const out = reward.score(prompts, answers);
    if (
      out.length === 0 ||
      out.some((m) => m.length !== answers.length || m.some((x) => !Number.isFinite(x)))
    ) {
      throw new ConfigError(`the reward function returned no finite k × ${answers.length} member rewards`, {
        location: { field: 'reward.score' },
        hint: 'return one array per member, each with one finite reward per answer',
      });
    }
    return out;
  }
  const rtok = reward.tokenizer;
  const context = reward.ensemble.gptConfig.contextLength;
  const seqs = prompts.map((p, i) => encodeAnswer(rtok, p, answers[i] as string, context));
  return scoreSequences(reward.ensemble, seqs, rtok.padId, batchSize); // k × B
}

export class PpoTrainer {
  readonly optimizer: AdamW;
  readonly valueHead: ValueHead;
  private readonly opts: PpoTrainerOptions;
  private readonly reference: GptParams;
  private readonly ownsReference: boolean;
  private readonly named: Record<string, tf.Variable>;
  private readonly store: CheckpointStore | undefined;
  private readonly kl: KlController;
  private stepsDone = 0;
  private forced: ForcedResume[] = [];

  constructor(options: PpoTrainerOptions) {
    const { ppo, policy, reward } = options;
    if (options.prompts.length === 0) {
      throw new DataError('there are no prompts to train on', {
        location: { field: 'prompts' },
        hint: 'pass at least one {instruction, input} prompt (e.g. the AlpacaEval train split)',
      });
    }
    if (ppo.maxNewTokens >= policy.config.contextLength - 8) {
      throw new ConfigError(
        `maxNewTokens ${ppo.maxNewTokens} leaves no room for a prompt in context ${policy.config.contextLength}`,
        {
          location: { field: 'ppo.maxNewTokens' },
          hint: `use at most ${Math.floor(policy.config.contextLength / 2)}`,
        },
      );
    }
    if (policy.tokenizer.vocabSize !== policy.config.vocabSize) {
      throw new ConfigError(
        `the policy tokenizer has ${policy.tokenizer.vocabSize} ids but the policy ${policy.config.vocabSize}`,
        {
          location: { field: 'policy.tokenizer' },
          hint: "pass the policy's own tokenizer (loadTokenizer of the policy folder)",
        },
      );
    }
    if ('ensemble' in reward && reward.tokenizer.vocabSize !== reward.ensemble.gptConfig.vocabSize) {
      throw new ConfigError(
        `the reward tokenizer has ${reward.tokenizer.vocabSize} ids but the reward model ${reward.ensemble.gptConfig.vocabSize}`,
        {
          location: { field: 'reward.tokenizer' },
          hint: "pass the reward model's own tokenizer (loadEnsemble returns it)",
        },
      );
    }
    this.opts = options;
    this.ownsReference = options.reference === undefined;
    this.reference = options.reference ?? loadGptParameters(policy.config, namedParameters(policy.params));
    this.valueHead = initValueHead(policy.config.dModel, new Rng(ppo.seed).fork('value-head'), {
      variable: true,
    });
    this.named = {};
    for (const [name, v] of Object.entries(namedParameters(policy.params))) this.named[`policy.${name}`] = v;
    this.named['value_head.w'] = this.valueHead.w as unknown as tf.Variable;
    this.named['value_head.b'] = this.valueHead.b as unknown as tf.Variable;
    const perStep = updatesPerStep(ppo);
    this.optimizer = new AdamW(this.named, {
      lr: ppo.lr,
      beta1: ppo.beta1,
      beta2: ppo.beta2,
      eps: ppo.eps,
      weightDecay: ppo.weightDecay,
      clipNorm: ppo.clipNorm,
      schedule: {
        kind: 'constant',
        warmupSteps: ppo.warmupSteps * perStep,
        totalSteps: ppo.steps * perStep,
        minLrRatio: 1,
      },
    });
    this.kl =
      ppo.klControl === 'adaptive'
        ? new AdaptiveKlController(ppo.klCoef, ppo.klTarget, ppo.klHorizon)
        : new FixedKlController(ppo.klCoef);
    this.store =
      options.outDir === undefined
        ? undefined
        : new CheckpointStore(path.join(options.outDir, 'train-state'));
  }

  /** PPO steps done. */
  get step(): number {
    return this.stepsDone;
  }

  /** Steps between checkpoints: `ppo.checkpointEvery`, or min(25, ⌈steps / 4⌉) when it is unset. */
  get checkpointEvery(): number {
    return this.opts.ppo.checkpointEvery ?? defaultPpoCheckpointEvery(this.opts.ppo.steps);
  }

  /** Every resume of this run that went ahead with other settings (forceResume), oldest first. */
  get forcedResumes(): readonly ForcedResume[] {
    return this.forced;
  }

  /** The settings a resume compares: the caller's, then `ppo` but for checkpointEvery. */
  private settings(): Record<string, unknown> {
    const out: Record<string, unknown> = { ...this.opts.settings };
    for (const [key, value] of Object.entries(this.opts.ppo))
      if (!(PPO_RESUMABLE_CHANGES as readonly string[]).includes(key)) out[key] = value;
    return out;
  }

  /** The KL coefficient the next rollout uses. */
  get klCoef(): number {
    return this.kl.value;
  }

  /** policyForward on a minibatch at the sampling temperature, with this trainer's value head if asked. */
  private forward(
    params: GptParams,
    mb: Minibatch,
    want: { value: boolean; entropy: boolean },
  ): ReturnType<typeof policyForward> {
    const { policy, ppo } = this.opts;
    const head = want.value ? this.valueHead : undefined;
    return policyForward(params, policy.config, head, mb.ids, mb.mask, want.entropy, ppo.temperature);
  }

  /** One PPO step: rollout, rewards, GAE, then ppoEpochs × minibatch updates. */
  trainStep(): PpoStepLog {
    const started = performance.now();
    const { ppo, policy, reward } = this.opts;
    const rng = new Rng(ppo.seed).fork(`step-${this.stepsDone}`);
    const pick = rng.fork('prompts');
    const prompts = Array.from(
      { length: ppo.rolloutBatch },
      () => this.opts.prompts[pick.int(this.opts.prompts.length)] as Prompt,
    );

    // 1. Answer the prompts.
    const tok = policy.tokenizer;
    const promptIds = prompts.map((p) =>
      Array.from(encodePrompt(tok, p, { maxLength: policy.config.contextLength - ppo.maxNewTokens })),
    );
    const gen = generate(policy.params, policy.config, promptIds, {
      maxNewTokens: ppo.maxNewTokens,
      temperature: ppo.temperature,
      topP: ppo.topP,
      eosId: tok.eosId,
      padId: tok.padId,
      rng: rng.fork('generate'),
    });

    // 2. Score the text (an ensemble re-tokenises it with its own tokenizer), aggregate the k members.
    const answers = gen.tokens.map((t) => tok.decode(t.filter((id) => id !== tok.eosId)));
    const memberRewards = scoreAnswers(reward, prompts, answers, ppo.stepBatch); // k × B
    const agg = reward.rule.aggregateArrays(memberRewards);
    const scores = agg.aggregate.map((s, i) =>
      ppo.missingEosPenalty !== undefined && !gen.stoppedAtEos[i] ? s - ppo.missingEosPenalty : s,
    );

    // 3. Old log-probs, values, entropies; reference log-probs (no gradients), in stepBatch chunks.
    const rows: Row[] = promptIds.map((p, i) => ({
      ids: [...p, ...(gen.tokens[i] as number[])],
      promptLength: p.length,
      oldLogp: [],
      values: [],
      advantages: [],
      returns: [],
    }));
    const refLogp: number[][] = [];
    const fullKls: number[] = [];
    const entropies: number[] = [];
    for (let at = 0; at < rows.length; at += ppo.stepBatch) {
      const chunk = rows.slice(at, at + ppo.stepBatch);
      const mb = makeMinibatch(chunk, tok.padId, false);
      const out = tf.tidy(() => {
        const cur = this.forward(policy.params, mb, { value: true, entropy: true });
        const ref = this.forward(this.reference, mb, { value: false, entropy: false });
        const full = fullKl(cur.logits, ref.logits); // [b, T-1]
        return [cur.logp, cur.values as tf.Tensor2D, cur.entropy as tf.Tensor2D, ref.logp, full];
      });
      const [logp, values, entropy, rlogp, full] = out.map((t) => t.dataSync() as Float32Array);
      tf.dispose(out);
      disposeMinibatch(mb);
      const width = mb.ids.shape[1] - 1;
      chunk.forEach((row, i) => {
        const R = row.ids.length - row.promptLength;
        const cut = (d: Float32Array | undefined): number[] =>
          rowSlice(d as Float32Array, i, width, row.promptLength, R);
        row.oldLogp = cut(logp);
        row.values = cut(values);
        refLogp.push(cut(rlogp));
        fullKls.push(cut(full).reduce((a, b) => a + b, 0));
        entropies.push(...cut(entropy));
      });
    }

    // 4. Per-token rewards (KL penalty + score on the last token), GAE.
    const klCoef = this.kl.value;
    const kls = rows.map((row, i) => klPerToken(row.oldLogp, refLogp[i] as number[], ppo.klEstimator));
    let rewards = rows.map((_, i) => tokenRewards(scores[i] as number, kls[i] as number[], klCoef));
    if (ppo.whitenRewards) rewards = whiten(rewards, false);
    for (const [i, row] of rows.entries()) {
      const g = gae(rewards[i] as number[], row.values, ppo.gamma, ppo.lam);
      row.advantages = g.advantages;
      row.returns = g.returns;
    }
    if (ppo.whitenAdvantages) {
      const w = whiten(rows.map((r) => r.advantages));
      rows.forEach((r, i) => {
        r.advantages = w[i] as number[];
      });
    }
    // Nats per answer: mean over sequences of the sum over answer tokens, with each estimator.
    const oldLogps = rows.map((r) => r.oldLogp);
    const klK1 = sequenceKl(oldLogps, refLogp, 'k1');
    const klK3 = sequenceKl(oldLogps, refLogp, 'k3');
    const meanKl = ppo.klEstimator === 'k1' ? klK1 : klK3;

    // 5. ppoEpochs passes of minibatch updates.
    const stats = {
      policyLoss: [] as number[],
      valueLoss: [] as number[],
      clip: [] as number[],
      vclip: [] as number[],
      approxKl: [] as number[],
    };
    let lr = this.optimizer.currentLr();
    const shuffle = rng.fork('minibatches');
    for (let epoch = 0; epoch < ppo.ppoEpochs; epoch++) {
      const order = shuffle.permutation(rows.length);
      for (let at = 0; at < order.length; at += ppo.stepBatch) {
        const mb = makeMinibatch(
          order.slice(at, at + ppo.stepBatch).map((j) => rows[j] as Row),
          tok.padId,
          true,
        );
        let kept: tf.Scalar[] = [];
        try {
          const { grads } = valueAndGrads(() => {
            const cur = this.forward(policy.params, mb, { value: true, entropy: false });
            const pl = clippedPolicyLoss(cur.logp, mb.oldLogp, mb.advantages, mb.actionMask, ppo.clipRange);
            const vl = clippedValueLoss(
              cur.values as tf.Tensor2D,
              mb.oldValues,
              mb.returns,
              mb.actionMask,
              ppo.clipRangeValue,
            );
            kept = [pl.loss, vl.loss, pl.clipFraction, vl.clipFraction, pl.approxKl].map((t) => tf.keep(t));
            return tf.add(pl.loss, tf.mul(vl.loss, ppo.vfCoef)) as tf.Scalar; // []
          }, this.named);
          try {
            lr = this.optimizer.applyGradients(grads).lr;
          } finally {
            tf.dispose(Object.values(grads));
          }
          const [p, v, c, vc, ak] = kept.map((t) => t.dataSync()[0] as number);
          stats.policyLoss.push(p as number);
          stats.valueLoss.push(v as number);
          stats.clip.push(c as number);
          stats.vclip.push(vc as number);
          stats.approxKl.push(ak as number);
        } finally {
          tf.dispose(kept);
          disposeMinibatch(mb);
        }
      }
    }

    this.kl.update(meanKl, rows.length);
    this.stepsDone += 1;
    return {
      step: this.stepsDone,
      steps: ppo.steps,
      reward: mean(agg.aggregate),
      memberRewards: memberRewards.map((m) => mean(m)),
      rewardStd: mean(agg.std),
      kl: meanKl,
      klEstimator: ppo.klEstimator,
      klK1,
      klK3,
      klFull: mean(fullKls),
      entropy: mean(entropies),
      policyLoss: mean(stats.policyLoss),
      valueLoss: mean(stats.valueLoss),
      clipFraction: mean(stats.clip),
      valueClipFraction: mean(stats.vclip),
      approxKl: mean(stats.approxKl),
      klCoef,
      lr,
      responseLength: mean(gen.tokens.map((t) => t.length)),
      eosRate: mean(gen.stoppedAtEos.map((s) => (s ? 1 : 0))),
      seconds: (performance.now() - started) / 1000,
    };
  }

  /**
   * Trains from the current step (e.g. after `resume()`) to ppo.steps, or only to `stopAtStep`. With an
   * outDir: one metrics.jsonl line per step, a checkpoint every checkpointEvery steps and at the stop,
   * and, when all ppo.steps are done, the policy (savePolicy) and its value head in outDir.
   */
  async train(options: { stopAtStep?: number } = {}): Promise<PpoSummary> {
    const { ppo, outDir } = this.opts;
    const stopAt = Math.min(ppo.steps, options.stopAtStep ?? ppo.steps);
    const every = this.checkpointEvery;
    let last: PpoStepLog | undefined;
    let savedAt = -1;
    if (outDir !== undefined) mkdirSync(outDir, { recursive: true });
    while (this.stepsDone < stopAt) {
      if (this.opts.signal?.aborted === true) {
        if (this.store !== undefined && savedAt !== this.stepsDone) await this.saveCheckpoint();
        return { steps: this.stepsDone, aborted: true, last };
      }
      last = this.trainStep();
      if (outDir !== undefined)
        appendFileSync(path.join(outDir, 'metrics.jsonl'), `${JSON.stringify(last)}\n`);
      this.opts.onProgress?.(last);
      const at = this.stepsDone;
      if (this.store !== undefined && (at === stopAt || (every > 0 && at % every === 0))) {
        await this.saveCheckpoint();
        savedAt = at;
      }
    }
    if (outDir !== undefined && this.stepsDone === ppo.steps) await this.savePolicy(outDir);
    return { steps: this.stepsDone, aborted: false, last };
  }

  /**
   * Writes the policy (quorum.json, backbone.safetensors, the tokenizer's files) and value-head.safetensors
   * to `dir`.
   */
  async savePolicy(dir: string): Promise<void> {
    const { policy, ppo } = this.opts;
    await writeSafetensors(
      path.join(dir, 'value-head.safetensors'),
      await tensorsToRecords(this.valueHeadTensors()),
      {
        format: 'quorum-value-head/1',
      },
    );
    await savePolicy(dir, {
      config: policy.config,
      params: policy.params,
      vocab: { id: policy.tokenizer.id, size: policy.tokenizer.vocabSize },
      tokenizerFiles: policy.tokenizer.files(),
      training: {
        kind: 'ppo',
        steps: this.stepsDone,
        rule: this.opts.reward.rule.name,
        ppo,
        ...(this.opts.settings === undefined ? {} : { settings: this.opts.settings }),
        ...(this.forced.length === 0 ? {} : { forcedResumes: this.forced }),
      },
    });
  }

  private valueHeadTensors(): Record<string, tf.Tensor> {
    return { 'value_head.w': this.valueHead.w, 'value_head.b': this.valueHead.b };
  }

  /** Writes policy, value head, optimizer and trainer state as the checkpoint of the current step. */
  async saveCheckpoint(): Promise<string> {
    if (this.store === undefined) {
      throw new CheckpointError('no output folder to save to', {
        location: { field: 'outDir' },
        hint: 'pass outDir to the PpoTrainer',
      });
    }
    const state = this.optimizer.state();
    try {
      const trainer = {
        step: this.stepsDone,
        klCoef: this.kl.value,
        seed: this.opts.ppo.seed,
        ppo: this.opts.ppo,
        settings: this.settings(),
        forcedResumes: this.forced,
      };
      return await this.store.save(
        this.stepsDone,
        {
          'policy.safetensors': await encodeGpt(this.opts.policy.config, this.opts.policy.params),
          'value-head.safetensors': encodeSafetensors(await tensorsToRecords(this.valueHeadTensors()), {
            format: 'quorum-value-head/1',
          }),
          'optimizer.safetensors': await encodeOptimizerState(state),
          'trainer.json': JSON.stringify(trainer),
        },
        { kind: 'ppo', config: this.opts.policy.config },
      );
    } finally {
      tf.dispose(Object.values(state.tensors));
    }
  }

  /**
   * Loads the newest good checkpoint in outDir/train-state, if any, and drops metrics.jsonl lines past
   * it (all of them when there is none: a run killed before its first checkpoint logged them); returns its
   * step. A checkpoint trained with other settings is a ConfigError listing them unless `forceResume`.
   */
  async resume(): Promise<number | undefined> {
    const metrics = this.opts.outDir === undefined ? undefined : path.join(this.opts.outDir, 'metrics.jsonl');
    const loaded = await this.store?.latest();
    if (loaded === undefined) {
      if (metrics !== undefined) await filterJsonlFile(metrics, () => false);
      return undefined;
    }
    const file = checkpointFiles(loaded, 'a PPO');
    const trainer = JSON.parse(new TextDecoder().decode(file('trainer.json'))) as {
      step: number;
      klCoef: number;
      seed: number;
      settings?: Record<string, unknown>;
      forcedResumes?: ForcedResume[];
    };
    // Checkpoints written before settings were recorded name only their seed.
    const now = trainer.settings === undefined ? { seed: this.opts.ppo.seed } : this.settings();
    const differences = settingDifferences(trainer.settings ?? { seed: trainer.seed }, now);
    if (differences.length > 0 && this.opts.forceResume !== true) {
      throw resumeRefusal(differences, loaded.dir, loaded.step);
    }
    const policyTensors = decodeGptCheckpoint(
      loaded,
      'policy.safetensors',
      this.opts.policy.config,
      'resume with the same --policy, or start a new --out folder',
    );
    const head = recordsToTensors(
      decodeSafetensors(file('value-head.safetensors'), `${loaded.dir}/value-head.safetensors`).tensors,
    );
    const opt = decodeOptimizerState(file('optimizer.safetensors'), `${loaded.dir}/optimizer.safetensors`);
    try {
      const named: Record<string, tf.Tensor> = { ...head };
      for (const [name, t] of Object.entries(policyTensors)) named[`policy.${name}`] = t;
      assignNamed(this.named, named, loaded.dir);
      this.optimizer.loadState(opt, `${loaded.dir}/optimizer.safetensors`);
    } finally {
      tf.dispose([...Object.values(policyTensors), ...Object.values(head), ...Object.values(opt.tensors)]);
    }
    this.stepsDone = trainer.step;
    (this.kl as { value: number }).value = trainer.klCoef;
    this.forced = [...(trainer.forcedResumes ?? [])];
    if (differences.length > 0) {
      this.opts.onNote?.(forcedResumeWarning(differences));
      this.forced.push({ step: loaded.step, differences });
    }
    if (metrics !== undefined)
      await filterJsonlFile(metrics, (row) => ((row as { step?: number }).step ?? Infinity) <= trainer.step);
    return loaded.step;
  }

  /** Frees the value head, the optimizer state and the reference copy (if the trainer made it). */
  dispose(): void {
    this.optimizer.dispose();
    disposeHead(this.valueHead);
    if (this.ownsReference) for (const v of Object.values(namedParameters(this.reference))) v.dispose();
  }
}
