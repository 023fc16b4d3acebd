/**
 * AdamW (decoupled weight decay, as torch.optim.AdamW), learning-rate schedules, global-norm
 * clipping and a non-finite guard, over any Record<string, tf.Variable> — the backbone, reward
 * heads, LoRA adapters, PPO's policy. The state (moments + step) exports as named tensors for resume.
 */
import { CheckpointError, ConfigError, FUSED_KERNELS, NumericalError } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { fusedKernelsActive, runFusedKernel } from './fused.js';

export interface LrSchedule {
  /** 'cosine' decays to minLrRatio·lr at totalSteps; 'constant' stays at lr after warmup. */
  readonly kind: 'constant' | 'cosine';
  /** Linear warmup from lr/warmupSteps to lr over this many steps. */
  readonly warmupSteps: number;
  /** Length of the cosine decay (ignored by 'constant'). */
  readonly totalSteps: number;
  /** Floor of the cosine as a fraction of lr. */
  readonly minLrRatio: number;
}

/** The learning rate of update number `step` (0-based). */
export function learningRateAt(lr: number, step: number, schedule: LrSchedule | undefined): number {
  if (schedule === undefined) return lr;
  if (step < schedule.warmupSteps) return (lr * (step + 1)) / schedule.warmupSteps;
  if (schedule.kind === 'constant') return lr;
  const span = Math.max(1, schedule.totalSteps - schedule.warmupSteps);
  const progress = Math.min(1, (step - schedule.warmupSteps) / span);
  const floor = lr * schedule.minLrRatio;
  return floor + 0.5 * (lr - floor) * (1 + Math.cos(Math.PI * progress));
}

/** √(Σ‖g‖²) over all gradients, as a scalar tensor. */
export function globalNorm(grads: readonly tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))) as tf.Scalar);
}

export interface AdamWConfig {
  readonly lr: number;
  /** Default 0.9. */
  readonly beta1?: number;
  /** Default 0.999 (torch's); language models often use 0.95. */
  readonly beta2?: number;
  /** Default 1e-8. */
  readonly eps?: number;
  /** Decoupled decay: p ← p·(1 − lr·wd) each step. Default 0. */
  readonly weightDecay?: number;
  /** Clip the global gradient norm to this value (undefined or 0 = off). */
  readonly clipNorm?: number | undefined;
  readonly schedule?: LrSchedule | undefined;
  /** Which parameters decay. Default: matrices (rank ≥ 2), not biases or LayerNorm gains. */
  readonly decays?: (name: string, variable: tf.Variable) => boolean;
}

export interface StepInfo {
  /** Learning rate used by this update. */
  readonly lr: number;
  /** Global gradient norm before clipping. */
  readonly gradNorm: number;
}

export interface OptimizerState {
  /** Updates done so far. */
  readonly step: number;
  /** `m.<param>` and `v.<param>` moments. */
  readonly tensors: Record<string, tf.Tensor>;
}

/** One AdamW update's settings: the attributes of core's fused `QuorumAdamW` kernel. */
export interface AdamWHyper {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  /** Decoupled decay coefficient (0 for a parameter that does not decay). */
  readonly weightDecay: number;
  /** 1 − β1ᵗ and 1 − β2ᵗ for update number t (1-based). */
  readonly biasCorrection1: number;
  readonly biasCorrection2: number;
  /** The clipping factor applied to the gradient (1 when not clipping). */
  readonly gradScale: number;
}

/**
 * torch.optim.AdamW's update from stock ops, the reference the fused kernel matches bit for bit:
 * param, grad, m, v (one shape) → [param′, m′, v′].
 */
export function composedAdamWUpdate(
  param: tf.Tensor,
  grad: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  h: AdamWHyper,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const g = h.gradScale === 1 ? grad : tf.mul(grad, h.gradScale); // param's shape
  const m1 = tf.add(tf.mul(m, h.beta1), tf.mul(g, 1 - h.beta1)); // param's shape
  const v1 = tf.add(tf.mul(v, h.beta2), tf.mul(tf.square(g), 1 - h.beta2)); // param's shape
  const update = tf.div(
    tf.div(m1, h.biasCorrection1),
    tf.add(tf.sqrt(tf.div(v1, h.biasCorrection2)), h.epsilon),
  ); // param's shape
  const decayed = h.weightDecay > 0 ? tf.mul(param, 1 - h.lr * h.weightDecay) : param; // param's shape
  return [tf.sub(decayed, tf.mul(update, h.lr)), m1, v1];
}

export class AdamW {
  private readonly params: Record<string, tf.Variable>;
  private readonly m: Record<string, tf.Variable> = {};
  private readonly v: Record<string, tf.Variable> = {};
  private readonly cfg: Required<Omit<AdamWConfig, 'clipNorm' | 'schedule'>> &
    Pick<AdamWConfig, 'clipNorm' | 'schedule'>;
  private t = 0;

  constructor(params: Record<string, tf.Variable>, config: AdamWConfig) {
    for (const [field, value] of Object.entries({ lr: config.lr, eps: config.eps ?? 1e-8 })) {
      if (!(value > 0)) {
        throw new ConfigError(`${field} must be > 0, got ${value}`, {
          location: { field },
          hint: 'e.g. lr 3e-4',
        });
      }
    }
    this.params = params;
    this.cfg = {
      lr: config.lr,
      beta1: config.beta1 ?? 0.9,
      beta2: config.beta2 ?? 0.999,
      eps: config.eps ?? 1e-8,
      weightDecay: config.weightDecay ?? 0,
      clipNorm: config.clipNorm,
      schedule: config.schedule,
      decays: config.decays ?? ((_name, variable) => variable.rank >= 2),
    };
    for (const [name, p] of Object.entries(params)) {
      this.m[name] = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
      this.v[name] = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
    }
  }

  /** Updates done so far. */
  get step(): number {
    return this.t;
  }

  /** The learning rate the next update will use. */
  currentLr(): number {
    return learningRateAt(this.cfg.lr, this.t, this.cfg.schedule);
  }

  /**
   * One update from gradients keyed like the parameters (a missing key means a zero gradient; the
   * caller keeps ownership of `grads`). Throws NumericalError on a non-finite gradient, before any
   * parameter changes.
   */
  applyGradients(grads: Record<string, tf.Tensor>): StepInfo {
    const names = Object.keys(this.params).filter((n) => grads[n] !== undefined);
    const normT = globalNorm(names.map((n) => grads[n] as tf.Tensor));
    const gradNorm = normT.dataSync()[0] as number;
    normT.dispose();
    if (!Number.isFinite(gradNorm)) {
      const bad = names.find((n) =>
        tf.tidy(() => !Number.isFinite(tf.sum(tf.abs(grads[n] as tf.Tensor)).dataSync()[0] as number)),
      );
      throw new NumericalError(
        `gradient norm is ${gradNorm} at step ${this.t}${bad === undefined ? '' : ` (first bad: "${bad}")`}`,
        {
          hint: 'lower the learning rate, enable clipNorm, or check the inputs for NaN',
        },
      );
    }
    const lr = this.currentLr();
    const { beta1: b1, beta2: b2, eps, weightDecay: wd, clipNorm } = this.cfg;
    const scale =
      clipNorm !== undefined && clipNorm > 0 && gradNorm > clipNorm ? clipNorm / (gradNorm + 1e-6) : 1;
    this.t += 1;
    const bc1 = 1 - b1 ** this.t;
    const bc2 = 1 - b2 ** this.t;
    const fused = fusedKernelsActive().adamW;
    tf.tidy(() => {
      for (const name of names) {
        const p = this.params[name] as tf.Variable;
        const m = this.m[name] as tf.Variable;
        const v = this.v[name] as tf.Variable;
        const hyper: AdamWHyper = {
          lr,
          beta1: b1,
          beta2: b2,
          epsilon: eps,
          weightDecay: wd > 0 && this.cfg.decays(name, p) ? wd : 0,
          biasCorrection1: bc1,
          biasCorrection2: bc2,
          gradScale: scale,
        };
        const grad = grads[name] as tf.Tensor;
        // One fused kernel per parameter when the backend has it, else a dozen stock ops (same formula).
        const [p2, m2, v2] =
          fused && p.dtype === 'float32'
            ? (runFusedKernel(FUSED_KERNELS.adamW, { param: p, grad, m, v }, { ...hyper }) as [
                tf.Tensor,
                tf.Tensor,
                tf.Tensor,
              ])
            : composedAdamWUpdate(p, grad, m, v, hyper); // p's shape each
        m.assign(m2);
        v.assign(v2);
        p.assign(p2);
      }
    });
    return { lr, gradNorm };
  }

  /** A copy of the state (the caller disposes the tensors). */
  state(): OptimizerState {
    const tensors: Record<string, tf.Tensor> = {};
    for (const name of Object.keys(this.params)) {
      tensors[`m.${name}`] = (this.m[name] as tf.Variable).clone();
      tensors[`v.${name}`] = (this.v[name] as tf.Variable).clone();
    }
    return { step: this.t, tensors };
  }

  /** Restores a state written by `state()`; every moment must be present with its parameter's shape. */
  loadState(state: OptimizerState, file?: string): void {
    const loc = file === undefined ? {} : { location: { file } };
    for (const [name, p] of Object.entries(this.params)) {
      for (const kind of ['m', 'v'] as const) {
        const t = state.tensors[`${kind}.${name}`];
        if (t === undefined) {
          throw new CheckpointError(`optimizer state lacks "${kind}.${name}"`, {
            ...loc,
            hint: 'the state belongs to another set of parameters; start the optimizer fresh instead',
          });
        }
        if (!tf.util.arraysEqual(t.shape, p.shape)) {
          throw new CheckpointError(
            `optimizer tensor "${kind}.${name}" has shape [${t.shape}], the parameter [${p.shape}]`,
            {
              ...loc,
              hint: 'the state belongs to another model config',
            },
          );
        }
      }
    }
    for (const name of Object.keys(this.params)) {
      (this.m[name] as tf.Variable).assign(state.tensors[`m.${name}`] as tf.Tensor);
      (this.v[name] as tf.Variable).assign(state.tensors[`v.${name}`] as tf.Tensor);
    }
    this.t = state.step;
  }

  dispose(): void {
    for (const t of [...Object.values(this.m), ...Object.values(this.v)]) t.dispose();
  }
}

/**
 * The loss and its gradients with respect to `params`, keyed by the parameters' names. Throws
 * NumericalError when the loss is not finite (after disposing everything).
 */
export function valueAndGrads(
  lossFn: () => tf.Scalar,
  params: Record<string, tf.Variable>,
): { loss: number; grads: Record<string, tf.Tensor> } {
  const entries = Object.entries(params);
  const byVarName = new Map(entries.map(([name, v]) => [v.name, name]));
  const { value, grads } = tf.variableGrads(
    lossFn,
    entries.map(([, v]) => v),
  );
  const loss = value.dataSync()[0] as number;
  value.dispose();
  const out: Record<string, tf.Tensor> = {};
  for (const [varName, g] of Object.entries(grads)) out[byVarName.get(varName) as string] = g;
  if (!Number.isFinite(loss)) {
    tf.dispose(Object.values(out));
    throw new NumericalError(`loss is ${loss}`, {
      hint: 'lower the learning rate or check the inputs for NaN',
    });
  }
  return { loss, grads: out };
}
