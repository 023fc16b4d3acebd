/**
 * Batched sampling with a KV cache. Prompts are ragged token-id arrays; they are left-padded so every
 * row's next token sits in the last column, and the mask keeps padding out of attention and positions.
 * The next token is drawn on the JS side from the last position's logits with a seeded Rng.
 */
import { ConfigError, type Rng } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import type { GptConfig } from './config.js';
import {
  type GptParams,
  gptForward,
  type KvLayer,
  type LinearHook,
  lmLogits,
  positionsFromMask,
} from './model.js';

export interface GenerateOptions {
  /** Most tokens to add to each prompt. */
  readonly maxNewTokens: number;
  /** Softmax temperature; 0 means greedy (argmax). Default 1. */
  readonly temperature?: number;
  /** Keep only the k most likely tokens (0 = off). Default 0. */
  readonly topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = off). Default 1. */
  readonly topP?: number;
  /** A row stops after producing this id (it is included in the output). */
  readonly eosId?: number | undefined;
  /** Id used for left padding; masked out, so any valid id works. Default 0. */
  readonly padId?: number;
  /** Source of the samples; required unless temperature is 0. */
  readonly rng?: Rng | undefined;
  /** Reuse keys and values of earlier tokens (default true); false recomputes the whole sequence each step. */
  readonly useCache?: boolean;
  /** The adapter hook, e.g. a LoRA policy. */
  readonly linearHook?: LinearHook | undefined;
}

export interface GenerateResult {
  /** The new tokens of each row (the eos id included when the row stopped on it). */
  readonly tokens: number[][];
  /** Whether each row stopped at eos (false: it reached maxNewTokens). */
  readonly stoppedAtEos: boolean[];
}

export interface SamplingOptions {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
}

/** Draws one token id from `logits[offset … offset+V)` with temperature, top-k and top-p. */
export function sampleFromLogits(
  logits: Float32Array,
  offset: number,
  V: number,
  opts: SamplingOptions,
  rng: Rng | undefined,
): number {
  if (opts.temperature === 0 || rng === undefined) {
    let best = 0;
    for (let i = 1; i < V; i++)
      if ((logits[offset + i] as number) > (logits[offset + best] as number)) best = i;
    return best;
  }
  let order = Array.from({ length: V }, (_, i) => i);
  const scaled = new Float64Array(V);
  for (let i = 0; i < V; i++) scaled[i] = (logits[offset + i] as number) / opts.temperature;
  const filter = opts.topK > 0 && opts.topK < V;
  if (filter || opts.topP < 1) {
    order.sort((a, b) => (scaled[b] as number) - (scaled[a] as number));
    if (filter) order = order.slice(0, opts.topK);
  }
  let max = Number.NEGATIVE_INFINITY;
  for (const i of order) max = Math.max(max, scaled[i] as number);
  const probs = order.map((i) => Math.exp((scaled[i] as number) - max));
  let total = probs.reduce((a, b) => a + b, 0);
  if (opts.topP < 1) {
    // order is sorted by probability: keep the shortest prefix reaching topP
    let acc = 0;
    let keep = 0;
    while (keep < order.length && acc < opts.topP * total) acc += probs[keep++] as number;
    order = order.slice(0, keep);
    probs.length = keep;
    total = acc;
  }
  let u = rng.uniform() * total;
  for (let j = 0; j < order.length; j++) {
    u -= probs[j] as number;
    if (u < 0) return order[j] as number;
  }
  return order[order.length - 1] as number;
}

/** Logits of the last position: [B, D] rows → Float32Array of B·V. */
function lastLogits(params: GptParams, hidden: tf.Tensor3D): Float32Array {
  const t = hidden.shape[1];
  const logits = tf.tidy(() => lmLogits(params, tf.slice(hidden, [0, t - 1, 0], [-1, 1, -1]))); // [B, 1, V]
  const data = logits.dataSync() as Float32Array;
  logits.dispose();
  return data;
}

/** Samples up to `maxNewTokens` after each prompt. */
export function generate(
  params: GptParams,
  config: GptConfig,
  prompts: readonly (readonly number[])[],
  options: GenerateOptions,
): GenerateResult {
  const temperature = options.temperature ?? 1;
  const sampling: SamplingOptions = { temperature, topK: options.topK ?? 0, topP: options.topP ?? 1 };
  const padId = options.padId ?? 0;
  const maxNew = options.maxNewTokens;
  const B = prompts.length;
  const lens = prompts.map((p) => p.length);
  const longest = Math.max(0, ...lens);
  if (!Number.isInteger(maxNew) || maxNew < 0) {
    throw new ConfigError(`maxNewTokens must be a non-negative integer, got ${maxNew}`, {
      location: { field: 'maxNewTokens' },
      hint: 'e.g. 64',
    });
  }
  if (temperature > 0 && options.rng === undefined) {
    throw new ConfigError(`sampling at temperature ${temperature} needs an rng`, {
      location: { field: 'rng' },
      hint: 'pass rng: new Rng(seed), or temperature 0 for greedy decoding',
    });
  }
  if (lens.some((n) => n === 0)) {
    throw new ConfigError(`prompt ${lens.indexOf(0)} is empty`, {
      location: { field: 'prompts' },
      hint: 'start every prompt with at least one token (e.g. a BOS or the template prefix)',
    });
  }
  if (longest + maxNew > config.contextLength) {
    throw new ConfigError(
      `prompt of length ${longest} plus ${maxNew} new tokens exceeds context ${config.contextLength}`,
      { location: { field: 'maxNewTokens' }, hint: 'lower maxNewTokens or truncate the prompt' },
    );
  }
  const tokens: number[][] = prompts.map(() => []);
  const stopped = prompts.map(() => false);
  if (B === 0 || maxNew === 0) return { tokens, stoppedAtEos: stopped };

  // Left-padded ids and mask, as JS rows that grow by one column per step.
  const idRows = prompts.map((p) => [...Array<number>(longest - p.length).fill(padId), ...p]);
  const maskRows = prompts.map((p) => [...Array<number>(longest - p.length).fill(0), ...p.map(() => 1)]);
  const V = config.vocabSize;
  const hook = options.linearHook;
  const useCache = options.useCache ?? true;
  let cache: KvLayer[] | undefined;
  const disposeCache = (): void => {
    for (const kv of cache ?? []) tf.dispose([kv.k, kv.v]);
    cache = undefined;
  };

  try {
    for (let step = 0; step < maxNew; step++) {
      const width = longest + step;
      let logits: Float32Array;
      if (!useCache || step === 0) {
        const out = tf.tidy(() => {
          const ids = tf.tensor2d(idRows.flat(), [B, width], 'int32');
          const mask = tf.tensor2d(maskRows.flat(), [B, width]);
          const r = gptForward(params, config, ids, mask, positionsFromMask(mask), {
            linearHook: hook,
            cache: useCache,
          });
          return [r.hidden, ...(r.cache ?? []).flatMap((kv) => [kv.k, kv.v])];
        });
        logits = lastLogits(params, out[0] as tf.Tensor3D);
        out[0]?.dispose();
        if (useCache) {
          cache = [];
          for (let i = 1; i < out.length; i += 2)
            cache.push({ k: out[i] as tf.Tensor4D, v: out[i + 1] as tf.Tensor4D });
        }
      } else {
        const past = cache as KvLayer[];
        const r = tf.tidy(() => {
          const ids = tf.tensor2d(
            idRows.map((row) => row[width - 1] as number),
            [B, 1],
            'int32',
          ); // [B, 1]
          const mask = tf.tensor2d(maskRows.flat(), [B, width]); // [B, Tp + 1]
          const positions = tf.tensor2d(
            lens.map((n) => n + step - 1),
            [B, 1],
            'int32',
          ); // [B, 1]
          const f = gptForward(params, config, ids, mask, positions, { linearHook: hook, past, cache: true });
          return [f.hidden, ...(f.cache ?? []).flatMap((kv) => [kv.k, kv.v])];
        });
        disposeCache();
        logits = lastLogits(params, r[0] as tf.Tensor3D);
        r[0]?.dispose();
        cache = [];
        for (let i = 1; i < r.length; i += 2)
          cache.push({ k: r[i] as tf.Tensor4D, v: r[i + 1] as tf.Tensor4D });
      }
      if (!useCache) disposeCache();
      for (let b = 0; b < B; b++) {
        let next = padId;
        if (!stopped[b]) {
          next = sampleFromLogits(logits, b * V, V, sampling, options.rng);
          (tokens[b] as number[]).push(next);
          if (next === options.eosId) stopped[b] = true;
        }
        (idRows[b] as number[]).push(next);
        (maskRows[b] as number[]).push(1);
      }
      if (stopped.every(Boolean)) break;
    }
  } finally {
    disposeCache();
  }
  return { tokens, stoppedAtEos: stopped };
}
