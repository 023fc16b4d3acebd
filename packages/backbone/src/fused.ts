/**
 * GELU, SiLU, LayerNorm and RMSNorm, each either one fused kernel of the compute backend (forward and backward,
 * see `FUSED_KERNELS` in @quorum/core) or the same math composed of stock tfjs ops. Composed, GELU is seven
 * elementwise passes over [N, F] forward and more backward, SiLU's gradient runs through tfjs's sigmoid and
 * product rules, and the norms' gradients run through tf.moments / tf.mean; a backend that offers the fused
 * kernels (`native`) does each in one pass. GPT-2 uses GELU and LayerNorm, Llama-style models SiLU (SwiGLU's
 * gate) and RMSNorm. `AdamW` (optim.ts) asks `fusedKernelsActive().adamW` the same way for its per-parameter
 * update. The exact (erf) GELU of GPT-NeoX is composed only for now, behind a function of its own so a fused
 * kernel can take its place.
 */
import { FUSED_KERNELS, hasFusedKernel } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';

let override: boolean | undefined;

/** Forces the fused kernels off (false) or back to "when the backend has them" (undefined). */
export function setFusedKernels(on: false | undefined): void {
  override = on;
}

/** Whether GELU / LayerNorm / RMSNorm / SiLU / the AdamW update run as the backend's fused kernels right now. */
export function fusedKernelsActive(): {
  gelu: boolean;
  layerNorm: boolean;
  rmsNorm: boolean;
  silu: boolean;
  adamW: boolean;
} {
  if (override === false) return { gelu: false, layerNorm: false, rmsNorm: false, silu: false, adamW: false };
  return {
    gelu: hasFusedKernel(FUSED_KERNELS.gelu) && hasFusedKernel(FUSED_KERNELS.geluGrad),
    layerNorm: hasFusedKernel(FUSED_KERNELS.layerNorm) && hasFusedKernel(FUSED_KERNELS.layerNormGrad),
    rmsNorm: hasFusedKernel(FUSED_KERNELS.rmsNorm) && hasFusedKernel(FUSED_KERNELS.rmsNormGrad),
    silu: hasFusedKernel(FUSED_KERNELS.silu) && hasFusedKernel(FUSED_KERNELS.siluGrad),
    adamW: hasFusedKernel(FUSED_KERNELS.adamW),
  };
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** GPT-2's tanh approximation of GELU from stock ops. */
export function composedGelu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => {
    const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), SQRT_2_OVER_PI); // x's shape
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1)) as T; // x's shape
  });
}

/** The exact GELU x·Φ(x) = x·(1 + erf(x/√2))/2 from stock ops (PyTorch's default, GPT-NeoX's `gelu`). */
export function composedExactGelu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)) as T); // x's shape
}

/** SiLU x·σ(x) from stock ops (the gate activation of SwiGLU). */
export function composedSilu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)) as T); // x's shape
}

/** RMSNorm over the last axis from stock ops: x / √(mean(x²) + eps) · gamma; x [..., D], gamma [D]. */
export function composedRmsNorm<T extends tf.Tensor>(x: T, gamma: tf.Tensor, eps: number): T {
  return tf.tidy(() => {
    const ms = tf.mean(tf.square(x), -1, true); // [..., 1]
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), gamma) as T; // [..., D]
  });
}

/** LayerNorm over the last axis from stock ops: x [..., D], gamma [D], beta [D] → [..., D]. */
export function composedLayerNorm<T extends tf.Tensor>(
  x: T,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  eps: number,
): T {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true); // [..., 1]
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta) as T; // [..., D]
  });
}

/** Runs a fused kernel by name; multi-output kernels give an array. */
export function runFusedKernel(
  name: string,
  inputs: tf.NamedTensorMap,
  attrs: Record<string, number> = {},
): tf.Tensor[] {
  const out = tf.engine().runKernel(name, inputs, attrs as unknown as tf.NamedAttrMap);
  return Array.isArray(out) ? (out as tf.Tensor[]) : [out as tf.Tensor];
}

const fusedGelu = tf.customGrad((x, save) => {
  (save as tf.GradSaveFunc)([x as tf.Tensor]);
  return {
    value: runFusedKernel(FUSED_KERNELS.gelu, { x: x as tf.Tensor })[0] as tf.Tensor, // x's shape
    gradFunc: (dy, saved) => {
      const [sx] = saved as [tf.Tensor];
      return runFusedKernel(FUSED_KERNELS.geluGrad, { dy: dy as tf.Tensor, x: sx })[0] as tf.Tensor; // x's shape
    },
  };
}) as (x: tf.Tensor) => tf.Tensor;

function fusedLayerNormWith(eps: number) {
  return tf.customGrad((x, gamma, beta, save) => {
    const [y, mean, rstd] = runFusedKernel(
      FUSED_KERNELS.layerNorm,
      { x: x as tf.Tensor, gamma: gamma as tf.Tensor, beta: beta as tf.Tensor },
      { epsilon: eps },
    ) as [tf.Tensor, tf.Tensor, tf.Tensor]; // [..., D], [...], [...]
    (save as tf.GradSaveFunc)([x as tf.Tensor, gamma as tf.Tensor, mean, rstd]);
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [sx, sg, sm, sr] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
        return runFusedKernel(FUSED_KERNELS.layerNormGrad, {
          dy: dy as tf.Tensor,
          x: sx,
          gamma: sg,
          mean: sm,
          rstd: sr,
        }); // [..., D], [D], [D]
      },
    };
  }) as (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor;
}

const layerNormByEps = new Map<number, (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor>();

const fusedSilu = tf.customGrad((x, save) => {
  (save as tf.GradSaveFunc)([x as tf.Tensor]);
  return {
    value: runFusedKernel(FUSED_KERNELS.silu, { x: x as tf.Tensor })[0] as tf.Tensor, // x's shape
    gradFunc: (dy, saved) => {
      const [sx] = saved as [tf.Tensor];
      return runFusedKernel(FUSED_KERNELS.siluGrad, { dy: dy as tf.Tensor, x: sx })[0] as tf.Tensor; // x's shape
    },
  };
}) as (x: tf.Tensor) => tf.Tensor;

function fusedRmsNormWith(eps: number) {
  return tf.customGrad((x, gamma, save) => {
    const [y, rstd] = runFusedKernel(
      FUSED_KERNELS.rmsNorm,
      { x: x as tf.Tensor, gamma: gamma as tf.Tensor },
      { epsilon: eps },
    ) as [tf.Tensor, tf.Tensor]; // [..., D], [...]
    (save as tf.GradSaveFunc)([x as tf.Tensor, gamma as tf.Tensor, rstd]);
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [sx, sg, sr] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        return runFusedKernel(FUSED_KERNELS.rmsNormGrad, {
          dy: dy as tf.Tensor,
          x: sx,
          gamma: sg,
          rstd: sr,
        }); // [..., D], [D]
      },
    };
  }) as (x: tf.Tensor, gamma: tf.Tensor) => tf.Tensor;
}

const rmsNormByEps = new Map<number, (x: tf.Tensor, gamma: tf.Tensor) => tf.Tensor>();

/** GPT-2's tanh GELU: the backend's fused kernel when it has one, else stock ops. */
export function gelu<T extends tf.Tensor>(x: T): T {
  return (fusedKernelsActive().gelu && x.dtype === 'float32' ? fusedGelu(x) : composedGelu(x)) as T;
}

/** LayerNorm over the last axis (biased variance): x [..., D], gamma [D], beta [D] → [..., D]. */
export function layerNorm<T extends tf.Tensor>(x: T, gamma: tf.Tensor, beta: tf.Tensor, eps: number): T {
  if (!fusedKernelsActive().layerNorm || x.dtype !== 'float32') return composedLayerNorm(x, gamma, beta, eps);
  let f = layerNormByEps.get(eps);
  if (f === undefined) {
    f = fusedLayerNormWith(eps);
    layerNormByEps.set(eps, f);
  }
  return f(x, gamma, beta) as T;
}

/** The exact (erf) GELU; composed of stock ops on every backend (no fused kernel yet). */
export function exactGelu<T extends tf.Tensor>(x: T): T {
  return composedExactGelu(x);
}

/** SiLU x·σ(x) (SwiGLU's gate): the backend's fused kernel when it has one, else stock ops. */
export function silu<T extends tf.Tensor>(x: T): T {
  return (fusedKernelsActive().silu && x.dtype === 'float32' ? fusedSilu(x) : composedSilu(x)) as T;
}

/** RMSNorm over the last axis (Llama's): x [..., D], gamma [D] → [..., D]; fused when the backend has it. */
export function rmsNorm<T extends tf.Tensor>(x: T, gamma: tf.Tensor, eps: number): T {
  if (!fusedKernelsActive().rmsNorm || x.dtype !== 'float32') return composedRmsNorm(x, gamma, eps);
  let f = rmsNormByEps.get(eps);
  if (f === undefined) {
    f = fusedRmsNormWith(eps);
    rmsNormByEps.set(eps, f);
  }
  return f(x, gamma) as T;
}
