/**
 * Numerical parity with PyTorch: tools/parity/gpt_golden.py writes fixed weights, a padded batch, the
 * logits and the gradients of the masked next-token loss (float64); the tfjs model must match them to
 * 1e-4 relative error (max |a − b| over a tensor ≤ 1e-4 · max |b|). The key bias's gradient is zero
 * in exact arithmetic (softmax ignores a shift shared by all keys), so its scale is floored at 1e-3:
 * float32 noise of 1e-9 there is not an error.
 */
import { readFileSync } from 'node:fs';
import { builtinBackendRegistry, initCompute } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { gptParameterShapes, resolveGptConfig } from './config.js';
import { setExplicitTransposes } from './matmul.js';
import {
  disposeGpt,
  gptHidden,
  lmLogits,
  loadGptParameters,
  namedParameters,
  tokenLogProbs,
} from './model.js';
import { valueAndGrads } from './optim.js';

interface Golden {
  config: unknown;
  ids: number[][];
  mask: number[][];
  loss: number;
  weights: Record<string, number[]>;
  logits: number[];
  grads: Record<string, number[]>;
}

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
});

function relError(actual: ArrayLike<number>, expected: readonly number[]): number {
  let diff = 0;
  let scale = 0;
  expected.forEach((e, i) => {
    diff = Math.max(diff, Math.abs((actual[i] as number) - e));
    scale = Math.max(scale, Math.abs(e));
  });
  return diff / Math.max(scale, 1e-3);
}

describe.each(['learned-tied', 'rope-untied'])('PyTorch parity (%s)', (name) => {
  const golden = JSON.parse(
    readFileSync(new URL(`../fixtures/gpt-golden-${name}.json`, import.meta.url), 'utf8'),
  ) as Golden;
  const config = resolveGptConfig(golden.config);

  it.each([true, false])('matches logits and gradients to 1e-4 (explicit transposes: %s)', (explicit) => {
    setExplicitTransposes(explicit);
    const shapes = gptParameterShapes(config);
    const tensors = Object.fromEntries(
      Object.entries(golden.weights).map(([n, v]) => [n, tf.tensor(v, shapes[n] as number[])]),
    );
    const params = loadGptParameters(config, tensors);
    tf.dispose(Object.values(tensors));
    const [B, T] = [golden.ids.length, golden.ids[0]?.length as number];
    const ids = tf.tensor2d(golden.ids, [B, T], 'int32');
    const mask = tf.tensor2d(golden.mask, [B, T]);

    const logits = tf.tidy(() => lmLogits(params, gptHidden(params, config, ids, mask)));
    expect(relError(logits.dataSync(), golden.logits)).toBeLessThan(1e-4);

    const { loss, grads } = valueAndGrads(
      () =>
        tf.tidy(() => {
          const w = tf.slice(mask, [0, 1], [B, T - 1]); // [B, T-1]
          const lp = tokenLogProbs(params, config, ids, mask); // [B, T-1]
          return tf.div(tf.neg(tf.sum(tf.mul(lp, w))), tf.sum(w)) as tf.Scalar;
        }),
      namedParameters(params),
    );
    expect(Math.abs(loss - golden.loss) / golden.loss).toBeLessThan(1e-5);
    expect(Object.keys(grads).sort()).toEqual(Object.keys(golden.grads).sort());
    const worst = Object.entries(golden.grads)
      .map(([n, g]) => [n, relError((grads[n] as tf.Tensor).dataSync(), g)] as const)
      .sort((a, b) => b[1] - a[1])[0];
    expect(worst?.[1], worst?.[0]).toBeLessThan(1e-4);
    tf.dispose([logits, ids, mask, ...Object.values(grads)]);
    disposeGpt(params);
    setExplicitTransposes(undefined);
  });
});
