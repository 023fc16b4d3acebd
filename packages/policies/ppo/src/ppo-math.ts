/**
 * PPO's math as plain functions: GAE, KL estimators, reward shaping, whitening (on JS arrays, one
 * trajectory or one batch at a time) and the clipped policy / value losses (on tensors, inside the
 * gradient). Conventions follow TRL's PPOTrainer and Schulman et al. (2017).
 */
import { ConfigError } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';

export type KlEstimator = 'k1' | 'k3';

/**
 * Generalised advantage estimation over one trajectory (Schulman et al. 2016): the value after the last
 * step is 0 (the episode ends). δ_t = r_t + γ·V_{t+1} − V_t, A_t = δ_t + γλ·A_{t+1}, returns = A + V.
 */
export function gae(
  rewards: ArrayLike<number>,
  values: ArrayLike<number>,
  gamma: number,
  lam: number,
): { advantages: number[]; returns: number[] } {
  const n = rewards.length;
  if (values.length !== n) {
    throw new ConfigError(`gae got ${n} rewards but ${values.length} values`, {
      location: { field: 'values' },
      hint: 'pass one value per generated token',
    });
  }
  const advantages = new Array<number>(n).fill(0);
  let next = 0;
  let nextValue = 0;
  for (let t = n - 1; t >= 0; t--) {
    const v = values[t] as number;
    const delta = (rewards[t] as number) + gamma * nextValue - v;
    next = delta + gamma * lam * next;
    advantages[t] = next;
    nextValue = v;
  }
  return { advantages, returns: advantages.map((a, t) => a + (values[t] as number)) };
}

/**
 * Per-token KL estimate of the policy p against the reference q from the sampled tokens' log-probs:
 * k1 = log p − log q (unbiased, can be negative); k3 = (r − 1) − log r with r = q/p (unbiased, ≥ 0,
 * lower variance; Schulman, "Approximating KL divergence"). Both are 0 where p = q.
 */
export function klPerToken(
  logp: ArrayLike<number>,
  logq: ArrayLike<number>,
  estimator: KlEstimator,
): number[] {
  return Array.from({ length: logp.length }, (_, t) => {
    const d = (logq[t] as number) - (logp[t] as number); // log r
    return estimator === 'k1' ? (logp[t] as number) - (logq[t] as number) : Math.expm1(d) - d;
  });
}

/**
 * The KL of one answer batch as the step log reports it: the mean over sequences of the sum over answer
 * tokens of the per-token estimate (nats per answer). `logp[i]` / `logq[i]` are answer i's sampled
 * tokens' log-probs under the policy and the reference (answer tokens only: eos included when produced,
 * never the prompt or padding). 0 for an empty batch.
 */
export function sequenceKl(
  logp: readonly ArrayLike<number>[],
  logq: readonly ArrayLike<number>[],
  estimator: KlEstimator,
): number {
  if (logp.length === 0) return 0;
  let total = 0;
  for (const [i, p] of logp.entries()) {
    const q = logq[i];
    if (q === undefined || q.length !== p.length) {
      throw new ConfigError(
        `answer ${i} has ${p.length} policy log-probs but ${q?.length ?? 0} reference ones`,
        {
          location: { field: 'logq' },
          hint: 'pass one reference log-prob per answer token, read with the same mask',
        },
      );
    }
    for (const k of klPerToken(p, q, estimator)) total += k;
  }
  return total / logp.length;
}

/**
 * The full-distribution KL at every position, Σ_v p(v)·(log p(v) − log q(v)) with p = softmax(logitsP),
 * q = softmax(logitsQ) over the last axis ([..., V] → [...]). ≥ 0 at every position, 0 where p = q.
 * Summed over an answer's positions it is the Rao-Blackwellised estimate of the sequence KL: unbiased
 * when the answer is sampled from p itself, with far less variance than k1 or k3.
 */
export function fullKl(logitsP: tf.Tensor, logitsQ: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const logP = tf.logSoftmax(logitsP, -1); // [..., V]
    const logQ = tf.logSoftmax(logitsQ, -1); // [..., V]
    // max(·, 0) removes float rounding below 0 where p ≈ q; the exact sum is never negative.
    return tf.relu(tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logQ)), -1)); // [...]
  });
}

/** Per-token rewards of one answer: −β·kl_t at every token, plus the sequence score on the last one. */
export function tokenRewards(score: number, kl: readonly number[], klCoef: number): number[] {
  const r = kl.map((k) => -klCoef * k);
  if (r.length > 0) r[r.length - 1] = (r[r.length - 1] as number) + score;
  return r;
}

/** Mean and (unbiased, as torch.var) variance of all numbers in `rows`. */
export function moments(rows: readonly (readonly number[])[]): {
  mean: number;
  variance: number;
  count: number;
} {
  let count = 0;
  let sum = 0;
  for (const row of rows)
    for (const x of row) {
      sum += x;
      count++;
    }
  const mean = count === 0 ? 0 : sum / count;
  let sq = 0;
  for (const row of rows) for (const x of row) sq += (x - mean) ** 2;
  return { mean, variance: count > 1 ? sq / (count - 1) : 0, count };
}

/** (x − mean)/√(var + 1e-8) over every number of a ragged batch; `shiftMean: false` adds the mean back (TRL's whiten). */
export function whiten(rows: readonly (readonly number[])[], shiftMean = true): number[][] {
  const { mean, variance } = moments(rows);
  const scale = 1 / Math.sqrt(variance + 1e-8);
  return rows.map((row) => row.map((x) => (x - mean) * scale + (shiftMean ? 0 : mean)));
}

function maskedMean(x: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.div(tf.sum(tf.mul(x, mask)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
}

export interface PolicyLossResult {
  /** mean over masked tokens of max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε)) */
  readonly loss: tf.Scalar;
  /** Share of masked tokens where the clipped term was the larger one. */
  readonly clipFraction: tf.Scalar;
  /** mean of ½(log p − log p_old)², TRL's approxkl. */
  readonly approxKl: tf.Scalar;
}

/**
 * PPO's clipped surrogate (to minimise). All inputs share a shape (e.g. [B, T−1]); `mask` is 1 on
 * generated tokens. ρ = exp(logp − oldLogp).
 */
export function clippedPolicyLoss(
  logp: tf.Tensor,
  oldLogp: tf.Tensor,
  advantages: tf.Tensor,
  mask: tf.Tensor,
  clipRange: number,
): PolicyLossResult {
  return tf.tidy(() => {
    const logRatio = tf.sub(logp, oldLogp); // [B, T-1]
    const ratio = tf.exp(logRatio); // [B, T-1]
    const unclipped = tf.mul(tf.neg(advantages), ratio); // [B, T-1]
    const clipped = tf.mul(tf.neg(advantages), tf.clipByValue(ratio, 1 - clipRange, 1 + clipRange)); // [B, T-1]
    const result = {
      loss: maskedMean(tf.maximum(unclipped, clipped), mask),
      clipFraction: maskedMean(tf.cast(tf.greater(clipped, unclipped), 'float32'), mask),
      approxKl: maskedMean(tf.mul(tf.square(logRatio), 0.5), mask),
    };
    return result as unknown as Record<string, tf.Tensor>;
  }) as unknown as PolicyLossResult;
}

export interface ValueLossResult {
  /** ½ · mean over masked tokens of max((V − R)², (V_clipped − R)²) */
  readonly loss: tf.Scalar;
  /** Share of masked tokens where the clipped error was the larger one. */
  readonly clipFraction: tf.Scalar;
}

/** PPO's clipped value loss: V_clipped = V_old + clip(V − V_old, −ε, ε) (TRL's cliprange_value). */
export function clippedValueLoss(
  values: tf.Tensor,
  oldValues: tf.Tensor,
  returns: tf.Tensor,
  mask: tf.Tensor,
  clipRange: number,
): ValueLossResult {
  return tf.tidy(() => {
    const clippedValues = tf.add(oldValues, tf.clipByValue(tf.sub(values, oldValues), -clipRange, clipRange)); // [B, T-1]
    const err = tf.square(tf.sub(values, returns)); // [B, T-1]
    const errClipped = tf.square(tf.sub(clippedValues, returns)); // [B, T-1]
    const result = {
      loss: tf.mul(maskedMean(tf.maximum(err, errClipped), mask), 0.5),
      clipFraction: maskedMean(tf.cast(tf.greater(errClipped, err), 'float32'), mask),
    };
    return result as unknown as Record<string, tf.Tensor>;
  }) as unknown as ValueLossResult;
}

/** The KL coefficient over training. Called after each rollout with its mean sequence KL. */
export interface KlController {
  readonly value: number;
  /** Called when a rollout's KL is known: `kl` per sequence (mean over the batch), `samples` answers. */
  update(kl: number, samples: number): void;
}

/** A constant coefficient. */
export class FixedKlController implements KlController {
  constructor(public value: number) {}
  update(): void {}
}

/**
 * Ziegler et al. (2019)'s proportional controller: e = clip(KL/target − 1, −0.2, 0.2),
 * β ← β·(1 + e·samples/horizon). KL above target raises β; below lowers it.
 */
export class AdaptiveKlController implements KlController {
  constructor(
    public value: number,
    readonly target: number,
    readonly horizon: number,
  ) {}
  update(kl: number, samples: number): void {
    const error = Math.min(0.2, Math.max(-0.2, kl / this.target - 1));
    this.value *= 1 + (error * samples) / this.horizon;
  }
}
