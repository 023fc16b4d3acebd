// Child process: forward / reward pair step of a pretrained-size model (random weights) on one tfjs backend.
//   node tools/bench/pretrained.mjs --model llama|gpt2 [--backend native] [--quick] [--modes lm_fwd,rm_fwd,rm_step]
//        [--batch 2] [--pairs 1] [--reps 3] [--layers N]
// llama: SmolLM-135M's shape (hidden 576, 30 layers, 9 query / 3 kv heads of 64, SwiGLU 1536, RMSNorm, RoPE θ 10000,
//        vocab 49,152, tied, no biases); gpt2: GPT-2 small's (768, 12 layers, 12 heads, tanh-GELU 3072, LayerNorm,
//        learned positions, vocab 50,257, tied). Context 512 for both, every sequence full length (no padding).
// Modes: lm_fwd = next-token loss over `batch` × 512 tokens, no gradients; rm_fwd = rewards of `batch` sequences
// (gptLastHidden + a linear head [D, 1]); rm_step = Bradley-Terry loss on `pairs` pairs (2·pairs sequences in one
// forward), gradients of every parameter, AdamW. --layers N builds N blocks instead of the shape's (run.mjs runs
// the step on fewer blocks: at full depth its activations do not fit tfjs-wasm's 4 GiB heap, see README.md).
// Prints one @@BENCH_RESULT JSON line on stdout.
import {
  AdamW,
  gptLastHidden,
  initGpt,
  namedParameters,
  paramCount,
  resolveGptConfig,
  tokenLogProbs,
  valueAndGrads,
} from '@quorum/backbone';
import { Rng } from '@quorum/core';
import { bradleyTerryLoss } from '@quorum/ensemble';
import * as tf from '@tensorflow/tfjs';
import { arg, emit, load1, progress, startBackend, timeIt } from './lib.mjs';

/** The two shapes, in @quorum/backbone's GptConfig fields (the Hugging Face config.json keys beside them). */
export const PRETRAINED_SHAPES = {
  llama: {
    label: 'Llama (SmolLM-135M-shaped)',
    config: {
      vocabSize: 49152, // vocab_size
      contextLength: 512, // (SmolLM: max_position_embeddings 2048; the bench reads 512)
      dModel: 576, // hidden_size
      nLayers: 30, // num_hidden_layers
      nHeads: 9, // num_attention_heads
      nKvHeads: 3, // num_key_value_heads
      headDim: 64,
      mlp: 'swiglu',
      mlpHidden: 1536, // intermediate_size
      norm: 'rmsnorm',
      layerNormEps: 1e-5, // rms_norm_eps
      positional: 'rope',
      ropeTheta: 10000, // rope_theta
      tieEmbeddings: true, // tie_word_embeddings
      attnBias: 'none',
      mlpBias: false,
    },
  },
  gpt2: {
    label: 'GPT-2 small-shaped',
    config: {
      vocabSize: 50257,
      contextLength: 512, // (GPT-2: n_positions 1024)
      dModel: 768,
      nLayers: 12,
      nHeads: 12,
      mlpRatio: 4,
      mlp: 'gelu',
      geluApprox: 'tanh', // gelu_new
      norm: 'layernorm',
      layerNormEps: 1e-5,
      positional: 'learned',
      tieEmbeddings: true,
      attnBias: 'all',
      mlpBias: true,
    },
  },
};

const modelName = String(arg('model', 'llama'));
if (!(modelName in PRETRAINED_SHAPES))
  throw new Error(`unknown --model ${modelName}; one of ${Object.keys(PRETRAINED_SHAPES).join(', ')}`);
const backendName = String(arg('backend', 'native'));
const quick = arg('quick', false) === true;
const modes = String(arg('modes', 'lm_fwd,rm_fwd,rm_step')).split(',');
const B = Number(arg('batch', 2)); // sequences of the forwards
const P = Number(arg('pairs', 1)); // pairs of the step (2·P sequences)
// One warm-up (under tf.profile, for the peak memory), then `reps` timed calls (median); --quick: 1 timed call.
const reps = Number(arg('reps', quick ? 1 : 3));

const loadBefore = load1();
const active = await startBackend(backendName);
const layers = arg('layers', undefined);
const config = resolveGptConfig({
  ...PRETRAINED_SHAPES[modelName].config,
  ...(layers === undefined ? {} : { nLayers: Number(layers) }),
});
const D = config.dModel;
const T = config.contextLength;
const rng = new Rng(4321);
const randomIds = (rows) =>
  tf.tensor2d(
    Int32Array.from({ length: rows * T }, () => rng.int(config.vocabSize)),
    [rows, T],
    'int32',
  );
const ids = randomIds(B); // [B, T]
const mask = tf.ones([B, T]); // [B, T] all real tokens
const pairIds = randomIds(2 * P); // [2P, T]: rows 0..P-1 chosen, P..2P-1 rejected
const pairMask = tf.ones([2 * P, T]);

/** Size of the wasm backend's linear memory (grows, never shrinks); undefined on other backends. */
const wasmHeapBytes = () => tf.backend().wasm?.HEAPU8?.buffer?.byteLength;
tf.tidy(() => tf.matMul(tf.ones([8, 8]), tf.ones([8, 8])).dataSync());
const bytes0 = tf.memory().numBytes;

progress(`${modelName}: initialising ${paramCount(config).toLocaleString('en-US')} parameters …`);
const tInit = performance.now();
const params = initGpt(config, rng.fork('gpt'));
// The reward head: one linear layer [D, 1] (+ bias) on the last token's final hidden state, N(0, 0.02).
const head = {
  w: tf.variable(tf.tensor2d(rng.fork('head').normalArray(D, 0.02), [D, 1], 'float32'), true, 'rm_head.w'),
  b: tf.variable(tf.zeros([1]), true, 'rm_head.b'),
};
const rmVars = { ...namedParameters(params), 'rm_head.w': head.w, 'rm_head.b': head.b };
const weightBytes = tf.memory().numBytes - bytes0;
progress(`${modelName}: initialised in ${((performance.now() - tInit) / 1000).toFixed(1)} s`);

// AdamW state (m, v) is created lazily on the first step; torch.optim.AdamW defaults as in engine.mjs.
const opt = new AdamW(rmVars, { lr: 1e-5, weightDecay: 0.01 });

const rewards = (x, m) =>
  tf.reshape(tf.add(tf.matMul(gptLastHidden(params, config, x, m), head.w), head.b), [-1]); // [rows]
const lmFwd = () => tf.tidy(() => void tf.neg(tf.mean(tokenLogProbs(params, config, ids, mask))).dataSync());
const rmFwd = () => tf.tidy(() => void rewards(ids, mask).dataSync());
const pairLoss = () => {
  const r = tf.reshape(rewards(pairIds, pairMask), [1, 2 * P]); // [1, 2P]
  return bradleyTerryLoss(tf.slice(r, [0, 0], [1, P]), tf.slice(r, [0, P], [1, P]), undefined);
};
const rmStep = () => {
  const { grads } = valueAndGrads(pairLoss, rmVars);
  opt.applyGradients(grads);
  tf.dispose(Object.values(grads));
};

// [fn, tokens per call]
const table = { lm_fwd: [lmFwd, B * T], rm_fwd: [rmFwd, B * T], rm_step: [rmStep, 2 * P * T] };
const results = {};
let failed = false;
for (const mode of modes) {
  const [fn, tokens] = table[mode];
  progress(`${modelName} ${backendName} ${mode} (${tokens} tokens/call) …`);
  try {
    // The warm-up call runs under tf.profile: its peakBytes is the tf.memory() high-water mark during one call,
    // taken above the bytes before the model was built (weights, and for the step AdamW's m and v, included).
    const prof = await tf.profile(fn);
    const t = timeIt(fn, { warmup: 0, minReps: reps, maxReps: reps, budgetMs: 0 });
    results[mode] = {
      ...t,
      tokens,
      tokensPerSec: tokens / (t.medianMs / 1000),
      tfPeakBytes: prof.peakBytes - bytes0,
      wasmHeapBytes: wasmHeapBytes(),
      kernels: prof.kernels.length,
    };
    progress(
      `${modelName} ${backendName} ${mode}: ${t.medianMs.toFixed(0)} ms median of ${t.reps}, ` +
        `tf peak ${(results[mode].tfPeakBytes / 2 ** 30).toFixed(2)} GiB (load ${load1()})`,
    );
  } catch (e) {
    const heap = wasmHeapBytes();
    const where =
      heap === undefined ? '' : ` (wasm heap at ${(heap / 2 ** 30).toFixed(2)} GiB of at most 4 GiB)`;
    results[mode] = { error: `${String(e?.message ?? e).split('\n')[0]}${where}` };
    progress(`${modelName} ${backendName} ${mode} FAILED: ${results[mode].error}`);
    // A failed allocation in the wasm heap leaves the backend unusable: report and stop here.
    failed = true;
    break;
  }
}
emit({
  engine: backendName,
  model: modelName,
  label: PRETRAINED_SHAPES[modelName].label,
  backend: { name: active.name, threads: active.threads, reason: active.reason, details: active.details },
  tfjs: tf.version.tfjs,
  config: { ...config, batch: B, pairs: P, params: paramCount(config), rmParams: paramCount(config) + D + 1 },
  modes: results,
  weightBytes,
  wasmHeapBytes: wasmHeapBytes(),
  load: { before: loadBefore, after: load1() },
  maxRssMiB: process.resourceUsage().maxRSS / 1024,
});
process.exit(failed ? 1 : 0);
