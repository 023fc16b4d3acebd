/**
 * Matmuls with hand-written gradients that use only untransposed matmuls.
 *
 * On stock tfjs-wasm a matmul with transposeA or transposeB runs 10–16× slower than the plain one
 * (measured: [4096,128]ᵀ·[4096,512] 412 ms, explicit transpose + plain matmul 26 ms), and every
 * matmul gradient is such a transposed matmul. Here the backward pass transposes explicitly (a cheap
 * copy) and multiplies untransposed. A backend whose transposed matmul is fast (the native kernels)
 * reports it (`fastTransposedMatMul`) and this turns off by itself.
 */
import { activeBackend } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';

let override: boolean | undefined;

/** Forces explicit transposes on or off; `undefined` goes back to asking the active backend. */
export function setExplicitTransposes(on: boolean | undefined): void {
  override = on;
}

/**
 * Whether matmul gradients transpose explicitly: the override if set, else true unless the active
 * compute backend reports fast transposed matmuls (`fastTransposedMatMul`, e.g. `native`).
 */
export function explicitTransposes(): boolean {
  return override ?? activeBackend()?.fastTransposedMatMul !== true;
}

/** Swaps the last two axes. */
function t(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i);
  perm[perm.length - 1] = perm.length - 2;
  perm[perm.length - 2] = perm.length - 1;
  return tf.transpose(x, perm);
}

const plainMatMul = tf.customGrad((a, b, save) => {
  (save as tf.GradSaveFunc)([a as tf.Tensor, b as tf.Tensor]);
  return {
    value: tf.matMul(a as tf.Tensor, b as tf.Tensor), // [..., M, N]
    gradFunc: (dy, saved) => {
      const [sa, sb] = saved as [tf.Tensor, tf.Tensor];
      return [tf.matMul(dy as tf.Tensor, t(sb)), tf.matMul(t(sa), dy as tf.Tensor)]; // [..., M, K], [..., K, N]
    },
  };
}) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

/** a [..., M, K] · b [..., K, N] → [..., M, N] (same batch dims), gradients via untransposed matmuls. */
export function matMul<R extends tf.Rank>(a: tf.Tensor<R>, b: tf.Tensor<R>): tf.Tensor<R> {
  return (explicitTransposes() ? plainMatMul(a, b) : tf.matMul(a, b)) as tf.Tensor<R>;
}

/** a · bᵀ, with bᵀ made explicitly (on the tape) when explicit transposes are on. */
export function matMulT<R extends tf.Rank>(a: tf.Tensor<R>, b: tf.Tensor<R>): tf.Tensor<R> {
  return (explicitTransposes() ? plainMatMul(a, t(b)) : tf.matMul(a, b, false, true)) as tf.Tensor<R>;
}

const plainLinear = tf.customGrad((x, w, bias, save) => {
  (save as tf.GradSaveFunc)([x as tf.Tensor, w as tf.Tensor]);
  return {
    value: tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), bias as tf.Tensor1D), // [N, out]
    gradFunc: (dy, saved) => {
      const [sx, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
      const g = dy as tf.Tensor2D;
      // the bias gradient Σ_rows dy as ones[1, N]·dy: wasm's column Sum is slower than this matmul
      const db = tf.reshape(tf.matMul(tf.ones([1, g.shape[0]]), g), [g.shape[1]]); // [out]
      return [tf.matMul(g, tf.transpose(sw)), tf.matMul(tf.transpose(sx), g), db]; // [N, in], [in, out], [out]
    },
  };
}) as (x: tf.Tensor2D, w: tf.Tensor2D, bias: tf.Tensor1D) => tf.Tensor2D;

/** x [N, in] · w [in, out] (+ bias [out]) → [N, out]. */
export function linearMatMul(x: tf.Tensor2D, w: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor2D {
  if (!explicitTransposes()) return tf.fused.matMul({ a: x, b: w, bias }) as tf.Tensor2D;
  return bias === undefined ? (plainMatMul(x, w) as tf.Tensor2D) : plainLinear(x, w, bias); // [N, out]
}
