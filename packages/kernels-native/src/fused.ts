/**
 * The fused kernels of @quorum/core's contract (`FUSED_KERNELS`, packages/core/src/fused-kernels.ts):
 * GELU, SiLU, LayerNorm and RMSNorm, forward and backward, and the AdamW update, each one pass of the addon. These names are not stock
 * tfjs kernels: install.ts registers them on the wasm backend while the native kernels are installed
 * (there is no stock kernel to fall back to) and unregisters them on uninstall. float32 only: any
 * other dtype, or inputs whose shapes do not fit together, is an error (the model sends float32 and
 * composes the same math from stock ops for anything else).
 */
import { BackendError, FUSED_KERNELS } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import type { NativeAddon } from './addon.js';
import { asWasm, f32, withOutput, withOutputs } from './wasm-heap.js';

/** The fused kernels this package registers (part of NATIVE_KERNELS). */
export const NATIVE_FUSED_KERNELS = [
  FUSED_KERNELS.gelu,
  FUSED_KERNELS.geluGrad,
  FUSED_KERNELS.layerNorm,
  FUSED_KERNELS.layerNormGrad,
  FUSED_KERNELS.silu,
  FUSED_KERNELS.siluGrad,
  FUSED_KERNELS.rmsNorm,
  FUSED_KERNELS.rmsNormGrad,
  FUSED_KERNELS.adamW,
] as const;
export type NativeFusedKernelName = (typeof NATIVE_FUSED_KERNELS)[number];

export function isFusedKernel(name: string): name is NativeFusedKernelName {
  return (NATIVE_FUSED_KERNELS as readonly string[]).includes(name);
}

function invalid(kernel: string, message: string): BackendError {
  return new BackendError(`${kernel}: ${message}`, {
    hint: 'the fused kernels take float32 tensors shaped as FUSED_KERNELS in @quorum/core describes',
  });
}

/** The named inputs, each present and float32. */
function float32Inputs<K extends string>(
  kernel: string,
  inputs: tf.NamedTensorInfoMap,
  names: readonly K[],
): Record<K, tf.TensorInfo> {
  const out = {} as Record<K, tf.TensorInfo>;
  for (const name of names) {
    const t = inputs[name];
    if (t === undefined) throw invalid(kernel, `input "${name}" is missing`);
    if (t.dtype !== 'float32') throw invalid(kernel, `${name} must be float32, got ${t.dtype}`);
    out[name] = t;
  }
  return out;
}

const sizeOf = (shape: readonly number[]): number => tf.util.sizeFromShape(shape as number[]);

/** x as [N, D] (D its last axis): rows N, and the shape of the per-row outputs (x's without the last axis). */
function rowsOf(kernel: string, x: tf.TensorInfo): { rows: number; cols: number; rowShape: number[] } {
  if (x.shape.length < 1) throw invalid(kernel, 'x must have rank 1 or more');
  const cols = x.shape[x.shape.length - 1] as number;
  const rowShape = x.shape.slice(0, -1);
  return { rows: sizeOf(rowShape), cols, rowShape };
}

function expectSize(kernel: string, name: string, t: tf.TensorInfo, size: number, what: string): void {
  if (sizeOf(t.shape) !== size)
    throw invalid(kernel, `${name} must have ${size} elements (${what}), got shape [${t.shape.join(', ')}]`);
}

/** An elementwise kernel { x } → x's shape, computed by `run(x, out)` on float32 views. */
function elementwiseKernel(name: string, run: (x: Float32Array, out: Float32Array) => void): tf.KernelFunc {
  return (args) => {
    const { x } = float32Inputs(name, args.inputs, ['x']);
    const backend = asWasm(args.backend);
    return withOutput(backend, [...x.shape], (out) => {
      if (sizeOf(x.shape) === 0) return;
      run(f32(backend, x), f32(backend, out)); // x's shape
    });
  };
}

/** The gradient of an elementwise kernel: { dy, x } (one shape) → dy · f′(x), computed by `run(dy, x, out)`. */
function elementwiseGradKernel(
  name: string,
  run: (dy: Float32Array, x: Float32Array, out: Float32Array) => void,
): tf.KernelFunc {
  return (args) => {
    const { dy, x } = float32Inputs(name, args.inputs, ['dy', 'x']);
    if (!tf.util.arraysEqual(dy.shape, x.shape))
      throw invalid(name, `dy [${dy.shape.join(', ')}] and x [${x.shape.join(', ')}] differ in shape`);
    const backend = asWasm(args.backend);
    return withOutput(backend, [...x.shape], (out) => {
      if (sizeOf(x.shape) === 0) return;
      run(f32(backend, dy), f32(backend, x), f32(backend, out)); // x's shape
    });
  };
}

/** QuorumGelu: { x } → ½x(1 + tanh(√(2/π)(x + 0.044715x³))), x's shape. */
export function geluKernel(addon: NativeAddon): tf.KernelFunc {
  return elementwiseKernel(FUSED_KERNELS.gelu, (x, out) => addon.gelu(x, out));
}

/** QuorumGeluGrad: { dy, x } → dy · gelu′(x), x's shape. */
export function geluGradKernel(addon: NativeAddon): tf.KernelFunc {
  return elementwiseGradKernel(FUSED_KERNELS.geluGrad, (dy, x, out) => addon.geluGrad(dy, x, out));
}

/**
 * QuorumLayerNorm: { x [..., D], gamma [D], beta [D] }, { epsilon } → [y [..., D], mean [...], rstd [...]]
 * over the last axis (biased variance, rstd = 1/√(var + ε)).
 */
export function layerNormKernel(addon: NativeAddon): tf.KernelFunc {
  const name = FUSED_KERNELS.layerNorm;
  return (args) => {
    const { x, gamma, beta } = float32Inputs(name, args.inputs, ['x', 'gamma', 'beta']);
    const epsilon = epsilonAttr(name, args.attrs);
    const { rows, cols, rowShape } = rowsOf(name, x);
    expectSize(name, 'gamma', gamma, cols, "x's last axis");
    expectSize(name, 'beta', beta, cols, "x's last axis");
    const backend = asWasm(args.backend);
    return withOutputs(backend, [[...x.shape], rowShape, rowShape], ([y, mean, rstd]) => {
      if (rows === 0) return;
      const meanView = f32(backend, mean as tf.TensorInfo); // [...]
      const rstdView = f32(backend, rstd as tf.TensorInfo); // [...]
      if (cols === 0) {
        // the mean and variance of nothing, as tf.moments gives them
        meanView.fill(Number.NaN);
        rstdView.fill(Number.NaN);
        return;
      }
      addon.layerNorm(
        f32(backend, x), // [N, D]
        f32(backend, gamma), // [D]
        f32(backend, beta), // [D]
        f32(backend, y as tf.TensorInfo), // [N, D]
        meanView,
        rstdView,
        rows,
        cols,
        epsilon,
      );
    });
  };
}

/**
 * QuorumLayerNormGrad: { dy [..., D], x [..., D], gamma [D], mean [...], rstd [...] } →
 * [dx [..., D], dgamma (gamma's shape, [D]), dbeta (the same)].
 */
export function layerNormGradKernel(addon: NativeAddon): tf.KernelFunc {
  const name = FUSED_KERNELS.layerNormGrad;
  return (args) => {
    const { dy, x, gamma, mean, rstd } = float32Inputs(name, args.inputs, [
      'dy',
      'x',
      'gamma',
      'mean',
      'rstd',
    ]);
    if (!tf.util.arraysEqual(dy.shape, x.shape))
      throw invalid(name, `dy [${dy.shape.join(', ')}] and x [${x.shape.join(', ')}] differ in shape`);
    const { rows, cols } = rowsOf(name, x);
    expectSize(name, 'gamma', gamma, cols, "x's last axis");
    expectSize(name, 'mean', mean, rows, "x's rows");
    expectSize(name, 'rstd', rstd, rows, "x's rows");
    const backend = asWasm(args.backend);
    return withOutputs(backend, [[...x.shape], [...gamma.shape], [...gamma.shape]], ([dx, dgamma, dbeta]) => {
      if (cols === 0) return;
      addon.layerNormGrad(
        f32(backend, dy), // [N, D]
        f32(backend, x), // [N, D]
        f32(backend, gamma), // [D]
        f32(backend, mean), // [N]
        f32(backend, rstd), // [N]
        f32(backend, dx as tf.TensorInfo), // [N, D]
        f32(backend, dgamma as tf.TensorInfo), // [D]
        f32(backend, dbeta as tf.TensorInfo), // [D]
        rows,
        cols,
      );
    });
  };
}

/** The epsilon attribute of the norms: a finite number >= 0. */
function epsilonAttr(kernel: string, attrs: tf.NamedAttrMap | undefined): number {
  const { epsilon } = (attrs ?? {}) as { epsilon?: unknown };
  if (typeof epsilon !== 'number' || !Number.isFinite(epsilon) || epsilon < 0)
    throw invalid(kernel, `attribute epsilon must be a finite number >= 0, got ${String(epsilon)}`);
  return epsilon;
}

/** QuorumSilu: { x } → x·σ(x), x's shape. */
export function siluKernel(addon: NativeAddon): tf.KernelFunc {
  return elementwiseKernel(FUSED_KERNELS.silu, (x, out) => addon.silu(x, out));
}

/** QuorumSiluGrad: { dy, x } → dy · σ(x)·(1 + x·(1 − σ(x))), x's shape. */
export function siluGradKernel(addon: NativeAddon): tf.KernelFunc {
  return elementwiseGradKernel(FUSED_KERNELS.siluGrad, (dy, x, out) => addon.siluGrad(dy, x, out));
}

/**
 * QuorumRmsNorm: { x [..., D], gamma [D] }, { epsilon } → [y [..., D], rstd [...]] over the last axis
 * (rstd = 1/√(mean(x²) + ε), y = x·rstd·gamma).
 */
export function rmsNormKernel(addon: NativeAddon): tf.KernelFunc {
  const name = FUSED_KERNELS.rmsNorm;
  return (args) => {
    const { x, gamma } = float32Inputs(name, args.inputs, ['x', 'gamma']);
    const epsilon = epsilonAttr(name, args.attrs);
    const { rows, cols, rowShape } = rowsOf(name, x);
    expectSize(name, 'gamma', gamma, cols, "x's last axis");
    const backend = asWasm(args.backend);
    return withOutputs(backend, [[...x.shape], rowShape], ([y, rstd]) => {
      if (rows === 0) return;
      const rstdView = f32(backend, rstd as tf.TensorInfo); // [...]
      if (cols === 0) {
        rstdView.fill(Number.NaN); // the mean of nothing, as tf.mean gives it
        return;
      }
      addon.rmsNorm(
        f32(backend, x), // [N, D]
        f32(backend, gamma), // [D]
        f32(backend, y as tf.TensorInfo), // [N, D]
        rstdView, // [N]
        rows,
        cols,
        epsilon,
      );
    });
  };
}

/** QuorumRmsNormGrad: { dy [..., D], x [..., D], gamma [D], rstd [...] } → [dx [..., D], dgamma (gamma's shape, [D])]. */
export function rmsNormGradKernel(addon: NativeAddon): tf.KernelFunc {
  const name = FUSED_KERNELS.rmsNormGrad;
  return (args) => {
    const { dy, x, gamma, rstd } = float32Inputs(name, args.inputs, ['dy', 'x', 'gamma', 'rstd']);
    if (!tf.util.arraysEqual(dy.shape, x.shape))
      throw invalid(name, `dy [${dy.shape.join(', ')}] and x [${x.shape.join(', ')}] differ in shape`);
    const { rows, cols } = rowsOf(name, x);
    expectSize(name, 'gamma', gamma, cols, "x's last axis");
    expectSize(name, 'rstd', rstd, rows, "x's rows");
    const backend = asWasm(args.backend);
    return withOutputs(backend, [[...x.shape], [...gamma.shape]], ([dx, dgamma]) => {
      if (cols === 0) return;
      addon.rmsNormGrad(
        f32(backend, dy), // [N, D]
        f32(backend, x), // [N, D]
        f32(backend, gamma), // [D]
        f32(backend, rstd), // [N]
        f32(backend, dx as tf.TensorInfo), // [N, D]
        f32(backend, dgamma as tf.TensorInfo), // [D]
        rows,
        cols,
      );
    });
  };
}

/** QuorumAdamW's attributes (the addon takes them in this order). */
const ADAMW_ATTRS = [
  'lr',
  'beta1',
  'beta2',
  'epsilon',
  'weightDecay',
  'biasCorrection1',
  'biasCorrection2',
  'gradScale',
] as const;

type AdamWAttrs = Record<(typeof ADAMW_ATTRS)[number], number>;

/** QuorumAdamW's attributes: each a finite number, the bias corrections > 0. */
function adamWAttrs(kernel: string, attrs: tf.NamedAttrMap | undefined): AdamWAttrs {
  const out = {} as AdamWAttrs;
  for (const key of ADAMW_ATTRS) {
    const value = (attrs as Record<string, unknown> | undefined)?.[key];
    if (typeof value !== 'number' || !Number.isFinite(value))
      throw invalid(kernel, `attribute ${key} must be a finite number, got ${String(value)}`);
    if ((key === 'biasCorrection1' || key === 'biasCorrection2') && !(value > 0))
      throw invalid(kernel, `attribute ${key} must be > 0 (it is 1 − βᵗ), got ${value}`);
    out[key] = value;
  }
  return out;
}

/**
 * QuorumAdamW: { param, grad, m, v } (one shape), { lr, beta1, beta2, epsilon, weightDecay,
 * biasCorrection1, biasCorrection2, gradScale } → [param′, m′, v′], each param's shape, new tensors
 * (the inputs are left as they are). The float32 operations of @quorum/backbone's composed AdamW, in
 * its order (see native/fused.cc): the same values as the ~12 stock ops it replaces.
 */
export function adamWKernel(addon: NativeAddon): tf.KernelFunc {
  const name = FUSED_KERNELS.adamW;
  return (args) => {
    const { param, grad, m, v } = float32Inputs(name, args.inputs, ['param', 'grad', 'm', 'v']);
    for (const [key, t] of [
      ['grad', grad],
      ['m', m],
      ['v', v],
    ] as const) {
      if (!tf.util.arraysEqual(t.shape, param.shape))
        throw invalid(
          name,
          `${key} [${t.shape.join(', ')}] and param [${param.shape.join(', ')}] differ in shape`,
        );
    }
    const h = adamWAttrs(name, args.attrs);
    const backend = asWasm(args.backend);
    const shape = [...param.shape];
    return withOutputs(backend, [shape, shape, shape], ([paramOut, mOut, vOut]) => {
      if (sizeOf(shape) === 0) return;
      addon.adamW(
        f32(backend, param), // param's shape
        f32(backend, grad), // param's shape
        f32(backend, m), // param's shape
        f32(backend, v), // param's shape
        f32(backend, paramOut as tf.TensorInfo), // param's shape
        f32(backend, mOut as tf.TensorInfo), // param's shape
        f32(backend, vOut as tf.TensorInfo), // param's shape
        h.lr,
        h.beta1,
        h.beta2,
        h.epsilon,
        h.weightDecay,
        h.biasCorrection1,
        h.biasCorrection2,
        h.gradScale,
      );
    });
  };
}

/** The kernel function for one of NATIVE_FUSED_KERNELS. */
export function fusedKernel(name: NativeFusedKernelName, addon: NativeAddon): tf.KernelFunc {
  switch (name) {
    case FUSED_KERNELS.gelu:
      return geluKernel(addon);
    case FUSED_KERNELS.geluGrad:
      return geluGradKernel(addon);
    case FUSED_KERNELS.layerNorm:
      return layerNormKernel(addon);
    case FUSED_KERNELS.layerNormGrad:
      return layerNormGradKernel(addon);
    case FUSED_KERNELS.silu:
      return siluKernel(addon);
    case FUSED_KERNELS.siluGrad:
      return siluGradKernel(addon);
    case FUSED_KERNELS.rmsNorm:
      return rmsNormKernel(addon);
    case FUSED_KERNELS.rmsNormGrad:
      return rmsNormGradKernel(addon);
    case FUSED_KERNELS.adamW:
      return adamWKernel(addon);
  }
}
