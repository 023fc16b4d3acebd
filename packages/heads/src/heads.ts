/**
 * Reward and value heads: linear maps from the transformer's hidden size D to one number, as plain
 * functions over `{ w, b }` tensors. A multi-head holds k reward heads as one `[D, k]` matrix so that
 * the k members of a shared-transformer ensemble cost one matmul. Every function that returns a
 * tensor returns a new one the caller disposes; inputs are never disposed.
 */
import { QuorumError, type Rng } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';

/** A scalar reward head D→1 (also the value head's shape). */
export interface RewardHead {
  /** `[D, 1]` */
  readonly w: tf.Tensor2D;
  /** `[1]` */
  readonly b: tf.Tensor1D;
}

/** k reward heads as one D→k map; column m is member m's head. */
export interface MultiHead {
  /** `[D, k]` */
  readonly w: tf.Tensor2D;
  /** `[k]` */
  readonly b: tf.Tensor1D;
}

/** A value head for PPO: D→1 applied at every token. Same parameters as a reward head. */
export type ValueHead = RewardHead;

export interface HeadInitOptions {
  /**
   * Std of the normal weight init. Default 1/√(D+1), the reward-head init of OpenAI's
   * lm-human-preferences (also used by TRL's value head): initial rewards then have unit scale when the
   * hidden states do. Biases start at 0.
   */
  readonly std?: number;
  /** Make `w` and `b` trainable `tf.Variable`s (default false: plain tensors). */
  readonly variable?: boolean;
}

function shapeError(message: string, hint: string): QuorumError {
  return new QuorumError(message, { code: 'E_SHAPE', hint });
}

function wrap<T extends tf.Tensor>(t: T, variable: boolean | undefined): T {
  if (variable !== true) return t;
  const v = tf.variable(t, true); // shares t's data; keeps its own reference
  t.dispose();
  return v as unknown as T;
}

/** A new reward head D→1, initialised from `rng` (normal weights, zero bias). */
export function initRewardHead(dModel: number, rng: Rng, options: HeadInitOptions = {}): RewardHead {
  if (!Number.isInteger(dModel) || dModel < 1) {
    throw shapeError(
      `head input size must be a positive integer, got ${dModel}`,
      'pass the model width d_model',
    );
  }
  const std = options.std ?? 1 / Math.sqrt(dModel + 1);
  const w = tf.tensor2d(rng.normalArray(dModel, std), [dModel, 1]); // [D, 1]
  const b = tf.zeros([1]) as tf.Tensor1D; // [1]
  return { w: wrap(w, options.variable), b: wrap(b, options.variable) };
}

/** A new value head D→1 (same init as a reward head). */
export function initValueHead(dModel: number, rng: Rng, options: HeadInitOptions = {}): ValueHead {
  return initRewardHead(dModel, rng, options);
}

/**
 * k new reward heads as one multi-head. Member m's head is drawn from `rng.fork('member-m/head')`, so
 * it is the same whatever k is, and equals `initRewardHead(dModel, rng.fork('member-m/head'))`.
 */
export function initMultiHead(dModel: number, k: number, rng: Rng, options: HeadInitOptions = {}): MultiHead {
  if (!Number.isInteger(k) || k < 1) {
    throw shapeError(
      `a multi-head needs k ≥ 1 members, got ${k}`,
      'set the ensemble size (members) to at least 1',
    );
  }
  const heads = Array.from({ length: k }, (_, m) =>
    initRewardHead(dModel, rng.fork(`member-${m}/head`), { ...options, variable: false }),
  );
  const joined = joinHeads(heads);
  for (const h of heads) disposeHead(h);
  return { w: wrap(joined.w, options.variable), b: wrap(joined.b, options.variable) };
}

function checkHidden(h: tf.Tensor, rank: number, dModel: number, what: string, layout: string): void {
  if (h.rank !== rank || h.shape[rank - 1] !== dModel) {
    throw shapeError(
      `${what} expects hidden states ${layout} with D = ${dModel}, got shape [${h.shape.join(', ')}]`,
      'pass the last hidden states of the transformer (after the final layer norm)',
    );
  }
}

/** One reward per sequence: `h [B, D]` → `[B]`. */
export function rewardHeadForward(head: RewardHead, h: tf.Tensor2D): tf.Tensor1D {
  const dModel = head.w.shape[0];
  checkHidden(h, 2, dModel, 'rewardHeadForward', '[B, D]');
  return tf.tidy(() => {
    const r = tf.add(tf.matMul(h, head.w), head.b); // [B, 1]
    return tf.reshape(r, [h.shape[0]]) as tf.Tensor1D; // [B]
  });
}

/**
 * k members' rewards with one matmul: `W [D, k]`, `b [k]`, `h [B, D]` → `[k, B]` (members first, the
 * layout aggregation rules take).
 */
export function multiHeadRewards(w: tf.Tensor2D, b: tf.Tensor1D, h: tf.Tensor2D): tf.Tensor2D {
  const [dModel, k] = w.shape;
  checkHidden(h, 2, dModel, 'multiHeadRewards', '[B, D]');
  if (b.rank !== 1 || b.shape[0] !== k) {
    throw shapeError(
      `multiHeadRewards: bias has shape [${b.shape.join(', ')}], expected [${k}]`,
      'b must be [k]',
    );
  }
  return tf.tidy(() => {
    const r = tf.matMul(w, h, true, true); // [k, D] × [D, B] = [k, B]
    return tf.add(r, tf.reshape(b, [k, 1])) as tf.Tensor2D; // [k, B]
  });
}

/** A value per token: `h [B, T, D]` → `[B, T]`. */
export function valueHeadForward(head: ValueHead, h: tf.Tensor3D): tf.Tensor2D {
  const dModel = head.w.shape[0];
  checkHidden(h, 3, dModel, 'valueHeadForward', '[B, T, D]');
  const [batch, time] = h.shape;
  return tf.tidy(() => {
    const flat = tf.reshape(h, [batch * time, dModel]); // [B·T, D]
    const v = tf.add(tf.matMul(flat, head.w), head.b); // [B·T, 1]
    return tf.reshape(v, [batch, time]) as tf.Tensor2D; // [B, T]
  });
}

/**
 * Each member's head on its own hidden states, for member-expanded activations (e.g. k LoRA members
 * run in one batch): `W [D, k]`, `b [k]`, `h [k·B, D]` member-major (rows m·B … m·B + B − 1 belong to
 * member m) → `[k, B]`. Row block m meets column m of W only.
 */
export function memberHeadRewards(w: tf.Tensor2D, b: tf.Tensor1D, h: tf.Tensor2D): tf.Tensor2D {
  const [dModel, k] = w.shape;
  checkHidden(h, 2, dModel, 'memberHeadRewards', '[k·B, D]');
  if (h.shape[0] % k !== 0) {
    throw shapeError(
      `memberHeadRewards: ${h.shape[0]} rows of hidden states do not split into k = ${k} members`,
      'pass member-major hidden states [k·B, D], member 0 first',
    );
  }
  if (b.rank !== 1 || b.shape[0] !== k) {
    throw shapeError(
      `memberHeadRewards: bias has shape [${b.shape.join(', ')}], expected [${k}]`,
      'b must be [k]',
    );
  }
  const batch = h.shape[0] / k;
  return tf.tidy(() => {
    const hm = tf.reshape(h, [k, batch, dModel]); // [k, B, D]
    const wm = tf.reshape(tf.transpose(w), [k, 1, dModel]); // [k, 1, D]
    const r = tf.matMul(hm, wm, false, true); // [k, B, 1]
    return tf.add(tf.reshape(r, [k, batch]), tf.reshape(b, [k, 1])) as tf.Tensor2D; // [k, B]
  });
}

/** The k single heads of a multi-head (new tensors; the multi-head is left as is). */
export function splitMultiHead(multi: MultiHead): RewardHead[] {
  const [dModel, k] = multi.w.shape;
  return Array.from({ length: k }, (_, m) => ({
    w: tf.slice(multi.w, [0, m], [dModel, 1]) as tf.Tensor2D, // [D, 1]
    b: tf.slice(multi.b, [m], [1]) as tf.Tensor1D, // [1]
  }));
}

/** One multi-head from k single heads (new tensors; the heads are left as they are). */
export function joinHeads(heads: readonly RewardHead[]): MultiHead {
  if (heads.length === 0) throw shapeError('joinHeads needs at least one head, got none', 'pass k ≥ 1 heads');
  const dModel = (heads[0] as RewardHead).w.shape[0];
  heads.forEach((h, m) => {
    if (h.w.shape[0] !== dModel || h.w.shape[1] !== 1 || h.b.shape[0] !== 1) {
      throw shapeError(
        `joinHeads: head ${m} has w [${h.w.shape.join(', ')}] and b [${h.b.shape.join(', ')}], expected [${dModel}, 1] and [1]`,
        'every member head must map the same D to one reward',
      );
    }
  });
  return {
    w: tf.concat(
      heads.map((h) => h.w),
      1,
    ) as tf.Tensor2D, // [D, k]
    b: tf.concat(
      heads.map((h) => h.b),
      0,
    ) as tf.Tensor1D, // [k]
  };
}

/** Disposes a head's tensors (variables included). */
export function disposeHead(head: RewardHead | MultiHead): void {
  head.w.dispose();
  head.b.dispose();
}

/**
 * A head's parameters by name for a checkpoint: `{ 'head.w': [D, 1], 'head.b': [1] }`, or under
 * `prefix` (e.g. `member-2.head`, as the `independent` architecture names its members' heads). Returns new handles the caller disposes after saving.
 */
export function headParams(head: RewardHead, prefix = 'head'): Record<string, tf.Tensor> {
  return { [`${prefix}.w`]: tf.clone(head.w), [`${prefix}.b`]: tf.clone(head.b) };
}

function take(
  params: Readonly<Record<string, tf.Tensor>>,
  key: string,
  shape: readonly (number | undefined)[],
): tf.Tensor {
  const t = params[key];
  const names = Object.keys(params);
  if (t === undefined) {
    throw new QuorumError(`head parameter "${key}" is missing`, {
      code: 'E_CHECKPOINT',
      hint: `found: ${names.length === 0 ? '(none)' : names.slice(0, 8).join(', ')}${names.length > 8 ? ', …' : ''}`,
    });
  }
  const ok = t.rank === shape.length && shape.every((s, i) => s === undefined || s === t.shape[i]);
  if (!ok) {
    throw new QuorumError(
      `head parameter "${key}" has shape [${t.shape.join(', ')}], expected [${shape.map((s) => s ?? 'D').join(', ')}]`,
      { code: 'E_CHECKPOINT', hint: 'the checkpoint belongs to a model of another width or ensemble size' },
    );
  }
  return t;
}

/** A reward head from named parameters (`<prefix>.w [D, 1]`, `<prefix>.b [1]`); new tensors. */
export function headFromParams(params: Readonly<Record<string, tf.Tensor>>, prefix = 'head'): RewardHead {
  const w = take(params, `${prefix}.w`, [undefined, 1]);
  const b = take(params, `${prefix}.b`, [1]);
  return { w: tf.clone(w) as tf.Tensor2D, b: tf.clone(b) as tf.Tensor1D };
}
