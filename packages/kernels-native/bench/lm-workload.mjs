// The reference model's LM workload for the bench scripts (not a test): micro preset with vocab 512
// (d=128, 4 layers, 4 heads, context 128), a random batch of `batch` rows, and one call of `mode`:
// lm_fwd (loss only), lm_grads (loss + gradients) or lm_step (+ AdamW). Import it after the compute
// backend is up: the backbone reads the active backend's capabilities.
import * as tf from '@tensorflow/tfjs';

/** A seeded random [batch, T] int32 id batch and its all-ones mask for `config`. */
export function randomBatch(rng, config, batch) {
  const T = config.contextLength;
  const ids = tf.tensor2d(
    Int32Array.from({ length: batch * T }, () => rng.int(config.vocabSize)),
    [batch, T],
    'int32',
  );
  return { ids, mask: tf.ones([batch, T]), tokens: batch * T };
}

/** `{ fn, tokens }`: fn runs one call of `mode` on a fixed batch; tokens per call. */
export async function lmWorkload(rng, { mode, batch }) {
  const { AdamW, gptPreset, initGpt, namedParameters, tokenLogProbs, valueAndGrads } = await import(
    '@quorum/backbone'
  );
  const config = gptPreset('micro', { vocabSize: 512 });
  const { ids, mask, tokens } = randomBatch(rng, config, batch);
  const params = initGpt(config, rng.fork('lm'));
  const named = namedParameters(params);
  const opt = new AdamW(named, { lr: 1e-3, weightDecay: 0.01 });
  const loss = () => tf.neg(tf.mean(tokenLogProbs(params, config, ids, mask)));
  const fn =
    mode === 'lm_fwd'
      ? () => tf.tidy(() => void loss().dataSync())
      : () => {
          const { grads } = valueAndGrads(loss, named);
          if (mode !== 'lm_grads') opt.applyGradients(grads);
          tf.dispose(Object.values(grads));
        };
  return { fn, tokens };
}
