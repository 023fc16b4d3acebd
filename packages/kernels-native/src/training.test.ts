/**
 * The native backend end to end: initCompute picks it (highest priority), and a training step of a
 * tiny attention block (embedding gather, layer norm, causal softmax attention, tanh-GELU MLP,
 * fused matmuls) gives the loss and gradients of the stock wasm kernels.
 */
import { composedGelu, composedLayerNorm } from '@quorum/backbone';
import { builtinBackendRegistry, initCompute } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeVsStock, relError, useSimd } from '../test/helpers.js';
import { nativeBackendDefinition } from './backend.js';
import { nativeStatus, uninstallNativeKernels } from './install.js';

const V = 29; // vocab
const T = 9; // context
const D = 16; // model width
const H = 2; // heads
const B = 3; // batch

let params: Record<string, tf.Variable>;

beforeAll(async () => {
  const registry = builtinBackendRegistry().register(nativeBackendDefinition);
  const active = await initCompute({ registry, env: {}, warn: () => {} });
  expect(active.name).toBe('native');
  expect(active.threads).toBe(2);
  expect(active.details).toContain('BatchMatMul');
  const init = (shape: number[], seed: number, std = 0.2): tf.Variable =>
    tf.variable(tf.randomNormal(shape, 0, std, 'float32', seed));
  params = {
    tok: init([V, D], 1),
    pos: init([T, D], 2),
    ln1g: tf.variable(tf.ones([D])),
    ln1b: tf.variable(tf.zeros([D])),
    wqkv: init([D, 3 * D], 3),
    bqkv: init([3 * D], 4, 0.02),
    wo: init([D, D], 5),
    ln2g: tf.variable(tf.ones([D])),
    ln2b: tf.variable(tf.zeros([D])),
    w1: init([D, 4 * D], 6),
    b1: init([4 * D], 7, 0.02),
    w2: init([4 * D, D], 8),
    head: init([D, V], 9),
  };
});

afterAll(() => {
  uninstallNativeKernels(tf);
  tf.dispose(Object.values(params));
});

/** Next-token cross-entropy of one pre-LN attention block. */
function loss(p: Record<string, tf.Variable>, ids: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  const n = B * T;
  const dh = D / H;
  let x = tf.add(
    tf.reshape(tf.gather(p.tok as tf.Tensor, tf.reshape(ids, [n])), [B, T, D]),
    p.pos as tf.Tensor,
  ); // [B, T, D]
  x = tf.reshape(x, [n, D]); // [N, D]
  const h = composedLayerNorm(x, p.ln1g as tf.Tensor, p.ln1b as tf.Tensor, 1e-5);
  const qkv = tf.fused.matMul({ a: h as tf.Tensor2D, b: p.wqkv as tf.Tensor2D, bias: p.bqkv }); // [N, 3D]
  const heads = (z: tf.Tensor): tf.Tensor => tf.transpose(tf.reshape(z, [B, T, H, dh]), [0, 2, 1, 3]); // [B, H, T, dh]
  const [q, k, v] = tf.split(qkv, 3, 1).map(heads) as [tf.Tensor, tf.Tensor, tf.Tensor];
  const mask = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9); // [T, T]
  const att = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)), mask)); // [B, H, T, T]
  const y = tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [n, D]); // [N, D]
  x = tf.add(x, tf.matMul(y, p.wo as tf.Tensor));
  const h2 = composedLayerNorm(x, p.ln2g as tf.Tensor, p.ln2b as tf.Tensor, 1e-5);
  const m = tf.matMul(
    composedGelu(tf.fused.matMul({ a: h2 as tf.Tensor2D, b: p.w1 as tf.Tensor2D, bias: p.b1 })),
    p.w2 as tf.Tensor,
  );
  x = tf.add(x, m);
  const logits = tf.matMul(x, p.head as tf.Tensor); // [N, V]
  return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.reshape(targets, [n]), V), logits) as tf.Scalar;
}

describe('native backend', () => {
  it('is active with its kernels installed', () => {
    const status = nativeStatus();
    expect(status.loaded).toBe(true);
    expect(status.kernels).toContain('_FusedMatMul');
  });

  for (const simd of [512, 256] as const) {
    it(`a training step matches the stock kernels (loss and every gradient), ${simd}-bit matmul`, () => {
      useSimd(simd);
      const ids = tf.tensor2d(
        Array.from({ length: B * T }, (_, i) => (i * 7 + 3) % V),
        [B, T],
        'int32',
      );
      const targets = tf.tensor2d(
        Array.from({ length: B * T }, (_, i) => (i * 5 + 1) % V),
        [B, T],
        'int32',
      );
      const names = Object.keys(params);
      const step = (): tf.Tensor[] => {
        const { value, grads } = tf.variableGrads(() => loss(params, ids, targets));
        return [value, ...names.map((name) => grads[(params[name] as tf.Variable).name] as tf.Tensor)];
      };
      const { native, stock } = nativeVsStock(step);
      const lossValue = (native[0] as Float32Array)[0] as number;
      expect(lossValue).toBeGreaterThan(Math.log(V) * 0.5);
      names.forEach((name, i) => {
        const err = relError(native[i + 1] as Float32Array, stock[i + 1] as Float32Array);
        expect(err, `gradient of ${name}`).toBeLessThanOrEqual(1e-5);
      });
      expect(relError(native[0] as Float32Array, stock[0] as Float32Array)).toBeLessThanOrEqual(1e-5);
      tf.dispose([ids, targets]);
      useSimd(undefined);
    });
  }
});
