// Micro-benchmark (not a test): native kernels vs the stock tfjs-wasm kernels, side by side in one
// run. Build first (`npx tsc -b tsconfig.json` and `node scripts/install.mjs`), then
//   node bench/kernels.mjs [--threads 2] [--simd 256|512] [--batch 8] [--layers 2] [--only matmul|others|fused|step]
// Prints GFLOP/s of BatchMatMul on the reference model's shapes (d=128, 4 heads, ctx 128, batch 32),
// the time of the other replaced kernels, the fused GELU / SiLU / LayerNorm / RMSNorm / AdamW kernels against
// the same math composed of stock ops, and forward+backward of a small GPT-like block stack. Every figure is
// the best of n calls (see timeMs).
import {
  gelu as backboneGelu,
  layerNorm as backboneLayerNorm,
  rmsNorm as backboneRmsNorm,
  silu as backboneSilu,
  composedAdamWUpdate,
  composedGelu,
  composedLayerNorm,
  composedRmsNorm,
  composedSilu,
  gptParameterShapes,
  gptPreset,
} from '@quorum/backbone';
import { FUSED_KERNELS, wasmBackend } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import {
  DEFAULT_NATIVE_KERNELS,
  installNativeKernels,
  NATIVE_KERNELS,
  nativeStatus,
  uninstallNativeKernels,
} from '../dist/index.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const threads = arg('threads', 2);
const stepBatch = arg('batch', 8);
const layers = arg('layers', 2);
const simd = arg('simd', undefined); // 256 or 512 (default: the widest the CPU has)
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt >= 0 ? process.argv[onlyAt + 1] : undefined;
const section = (name) => only === undefined || only === name;

await wasmBackend().activate(tf);
const status = nativeStatus();
if (!status.loaded) {
  console.error(`native kernels unavailable: ${status.reason}\n  hint: ${status.hint}`);
  process.exit(1);
}

/** The fastest of `reps` calls (ms): on a machine shared with other work the median mostly measures the load. */
function timeMs(fn, reps) {
  fn(); // warm-up
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return best;
}

/** Best ms of `make()`'s op with native kernels and with stock ones. */
function sideBySide(op, repsNative, repsStock, kernels = DEFAULT_NATIVE_KERNELS) {
  const run = () => tf.dispose(tf.tidy(op));
  installNativeKernels(tf, { threads, kernels, simd });
  const native = timeMs(run, repsNative);
  uninstallNativeKernels(tf);
  const stock = timeMs(run, repsStock);
  return { native, stock };
}

const pad = (s, n) => String(s).padEnd(n);
const num = (x, d = 1) => x.toFixed(d).padStart(8);

console.log(
  `native kernels: ${threads} threads, ${simd ?? 'widest'} bits; CPU ${JSON.stringify(status.cpu)}; tfjs ${tf.version.tfjs} wasm underneath\n`,
);
const mm = [
  ['qkv   [4096,128]x[128,384]', [4096, 128], [128, 384], false, false],
  ['mlp1  [4096,128]x[128,512]', [4096, 128], [128, 512], false, false],
  ['mlp2  [4096,512]x[512,128]', [4096, 512], [512, 128], false, false],
  ['proj  [4096,128]x[128,128]', [4096, 128], [128, 128], false, false],
  ['att   [128,128,32]x[128,32,128] (q·kᵀ)', [128, 128, 32], [128, 128, 32], false, true],
  ['att   [128,128,128]x[128,128,32] (a·v)', [128, 128, 128], [128, 128, 32], false, false],
  ['dW    [4096,128]ᵀx[4096,512] (grad)', [4096, 128], [4096, 512], true, false],
  ['dX    [4096,512]x[128,512]ᵀ (grad)', [4096, 512], [128, 512], false, true],
];
if (section('matmul')) {
  console.log('BatchMatMul (reference model shapes: d=128, 4 heads, ctx 128, batch 32 → 4096 tokens)');
  console.log(`${pad('shape', 44)}${pad('', 2)}  wasm GF/s  native GF/s   speed-up`);
}
for (const [label, as, bs, tA, tB] of section('matmul') ? mm : []) {
  const a = tf.randomNormal(as);
  const b = tf.randomNormal(bs);
  const out = tf.tidy(() => tf.matMul(a, b, tA, tB));
  const flops = 2 * out.size * (tA ? as[as.length - 2] : as[as.length - 1]);
  out.dispose();
  const { native, stock } = sideBySide(() => tf.matMul(a, b, tA, tB), 15, 3);
  console.log(
    `${pad(label, 46)}${num(flops / stock / 1e6)}${num(flops / native / 1e6, 1).padStart(13)}${num(stock / native, 1).padStart(10)}x`,
  );
  tf.dispose([a, b]);
}

if (section('others')) {
  console.log('\nOther kernels (best ms per call; reference-model shapes of a training step)');
  console.log(`${pad('op', 46)}  wasm ms  native ms   speed-up`);
}
const x = tf.randomNormal([4096, 512]);
const y = tf.randomNormal([4096, 512]);
const x1 = tf.randomNormal([4096, 128]);
const row = tf.randomNormal([512]);
const col = tf.randomNormal([4096, 1]);
const att = tf.randomNormal([32, 4, 128, 128]);
const heads = tf.randomNormal([32, 128, 4, 32]);
const keys = tf.randomNormal([32, 1, 128]);
const causal = tf.randomNormal([128, 128]);
const table = tf.randomNormal([512, 128]);
const lookupIds = tf.randomUniform([4096], 0, 512, 'int32');
const others = [
  ['Add      [4096,512]+[512]', () => tf.add(x, row)],
  ['Add      [4096,512]+[4096,512] (2+ threads)', () => tf.add(x, y)],
  ['Sub      [4096,512]-[4096,1]', () => tf.sub(x, col)],
  ['Multiply [4096,512]*[4096,512] (2+ threads)', () => tf.mul(x, y)],
  ['Multiply [4096,512]*scalar (2+ threads)', () => tf.mul(x, 0.5)],
  ['RealDiv  [4096,512]/[4096,1]', () => tf.div(x, col)],
  ['RealDiv  [4096,128]/scalar', () => tf.div(x1, 128)],
  ['Maximum  [32,1,128] vs [128,128]', () => tf.maximum(keys, causal)],
  ['Square   [4096,512] (2+ threads)', () => tf.square(x)],
  ['Exp      [4096,512]', () => tf.exp(x)],
  ['Tanh     [4096,512]', () => tf.tanh(x)],
  ['Sum      [4096,512] axis 0', () => tf.sum(x, 0)],
  ['Mean     [4096,512] axis -1 keepDims', () => tf.mean(x, -1, true)],
  ['Max      [4096,512] axis -1 keepDims', () => tf.max(x, -1, true)],
  ['Softmax  [32,4,128,128]', () => tf.softmax(att)],
  ['Identity [4096,512] (tf.clone)', () => tf.clone(x)],
  ['Cast     [4096,512] float32 → float32', () => tf.cast(x, 'float32')],
  ['Transpose [32,128,4,32] → [0,2,1,3]', () => tf.transpose(heads, [0, 2, 1, 3])],
  ['Slice    [32,4,128,128] → [:, :, :127]', () => tf.slice(att, [0, 0, 0, 0], [-1, -1, 127, -1])],
  ['Tile     [4096,1] → [4096,128] (broadcastTo)', () => tf.broadcastTo(col, [4096, 128])],
  ['GatherV2 [512,128] rows × 4096', () => tf.gather(table, lookupIds)],
  ['UnsortedSegmentSum [4096,128] → 512', () => tf.unsortedSegmentSum(x1, lookupIds, 512)],
];
for (const [label, op] of section('others') ? others : []) {
  const { native, stock } = sideBySide(op, 31, 15, NATIVE_KERNELS);
  console.log(
    `${pad(label, 46)}${num(stock, 2)}${num(native, 2).padStart(11)}${num(stock / native, 1).padStart(10)}x`,
  );
}
tf.dispose([x, y, x1, row, col, att, heads, keys, causal, table, lookupIds]);

// A small GPT-like stack: pre-LN blocks (fused qkv, causal softmax attention, tanh-GELU MLP).
const D = 128;
const H = 4;
const T = 128;
const V = 512;
const B = stepBatch;
const rn = (shape) => tf.variable(tf.randomNormal(shape, 0, 0.02));
const p = { tok: rn([V, D]), pos: rn([T, D]), head: rn([D, V]) };
for (let l = 0; l < layers; l++) {
  Object.assign(p, {
    [`ln1g${l}`]: tf.variable(tf.ones([D])),
    [`ln1b${l}`]: tf.variable(tf.zeros([D])),
    [`wqkv${l}`]: rn([D, 3 * D]),
    [`bqkv${l}`]: tf.variable(tf.zeros([3 * D])),
    [`wo${l}`]: rn([D, D]),
    [`bo${l}`]: tf.variable(tf.zeros([D])),
    [`ln2g${l}`]: tf.variable(tf.ones([D])),
    [`ln2b${l}`]: tf.variable(tf.zeros([D])),
    [`w1${l}`]: rn([D, 4 * D]),
    [`b1${l}`]: tf.variable(tf.zeros([4 * D])),
    [`w2${l}`]: rn([4 * D, D]),
    [`b2${l}`]: tf.variable(tf.zeros([D])),
  });
}
// the block stack runs the composed (stock-op) GELU and LayerNorm: it times the replaced stock kernels
const ln = (x, g, b) => composedLayerNorm(x, g, b, 1e-5);
const gelu = composedGelu;
const mask = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9);
const ids = tf.randomUniform([B, T], 0, V, 'int32');
const tgt = tf.randomUniform([B * T], 0, V, 'int32');
function lmLoss() {
  const N = B * T;
  const dh = D / H;
  let h = tf.reshape(tf.add(tf.reshape(tf.gather(p.tok, tf.reshape(ids, [N])), [B, T, D]), p.pos), [N, D]);
  for (let l = 0; l < layers; l++) {
    const a = ln(h, p[`ln1g${l}`], p[`ln1b${l}`]);
    const qkv = tf.fused.matMul({ a, b: p[`wqkv${l}`], bias: p[`bqkv${l}`] });
    const heads = (z) => tf.transpose(tf.reshape(z, [B, T, H, dh]), [0, 2, 1, 3]);
    const [q, k, v] = tf.split(qkv, 3, 1).map(heads);
    const w = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)), mask));
    const y = tf.reshape(tf.transpose(tf.matMul(w, v), [0, 2, 1, 3]), [N, D]);
    h = tf.add(h, tf.fused.matMul({ a: y, b: p[`wo${l}`], bias: p[`bo${l}`] }));
    const m = tf.fused.matMul({
      a: gelu(tf.fused.matMul({ a: ln(h, p[`ln2g${l}`], p[`ln2b${l}`]), b: p[`w1${l}`], bias: p[`b1${l}`] })),
      b: p[`w2${l}`],
      bias: p[`b2${l}`],
    });
    h = tf.add(h, m);
  }
  return tf.losses.softmaxCrossEntropy(tf.oneHot(tgt, V), tf.matMul(h, p.head));
}
// ---- fused GELU / SiLU / LayerNorm / RMSNorm (FUSED_KERNELS of @quorum/core) vs the same math composed of stock ops,
// the composed version on the stock wasm kernels and on the native ones. As @quorum/backbone runs them:
// the fused kernels through tf.customGrad, the composed ones through tfjs's autodiff.
const runKernel = (name, inputs, attrs = {}) => {
  const out = tf.engine().runKernel(name, inputs, attrs);
  return Array.isArray(out) ? out : [out];
};
// @quorum/backbone's own gelu / silu / layerNorm / rmsNorm: the fused kernels (with customGrad) while they are
// installed.
const fusedGelu = (x) => backboneGelu(x);
const fusedSilu = (x) => backboneSilu(x);
const fusedLn = (x, g, b) => backboneLayerNorm(x, g, b, 1e-5);
const fusedRms = (x, g) => backboneRmsNorm(x, g, 1e-5);
const rms = (x, g) => composedRmsNorm(x, g, 1e-5);
// AdamW: @quorum/backbone's composed update (composedAdamWUpdate) and the fused kernel.
const adamHyper = (t, weightDecay) => ({
  lr: 3e-4,
  beta1: 0.9,
  beta2: 0.95,
  epsilon: 1e-8,
  weightDecay,
  biasCorrection1: 1 - 0.9 ** t,
  biasCorrection2: 1 - 0.95 ** t,
  gradScale: 1,
});
const fusedAdamW = (param, grad, m, v, h) => runKernel(FUSED_KERNELS.adamW, { param, grad, m, v }, h); // [p′, m′, v′]
/** The reference model's parameter shapes (micro preset, vocab 512). */
const referenceShapes = () => gptParameterShapes(gptPreset('micro', { vocabSize: 512 }));
/** A whole optimizer step over `shapes` as variables, as AdamW.applyGradients updates them (decay: rank ≥ 2). */
function adamWStep(shapes, update) {
  const state = tf.tidy(() =>
    Object.values(shapes).map((shape, i) => ({
      decays: shape.length >= 2,
      p: tf.variable(tf.randomNormal(shape, 0, 0.02)), // shape
      m: tf.variable(tf.randomNormal(shape, 0, 1e-3), false), // shape
      v: tf.variable(tf.abs(tf.randomNormal(shape, 0, 1e-6)), false), // shape
      g: tf.randomNormal(shape, 0, 1e-2, 'float32', i), // shape
    })),
  );
  const step = () => {
    for (const { p, m, v, g, decays } of state) {
      const [p1, m1, v1] = update(p, g, m, v, adamHyper(10, decays ? 0.1 : 0));
      m.assign(m1);
      v.assign(v1);
      p.assign(p1);
    }
    return [];
  };
  const dispose = () => tf.dispose(state.flatMap(({ p, m, v, g }) => [p, m, v, g]));
  return { step, dispose, tensors: state.length, elements: state.reduce((n, { p }) => n + p.size, 0) };
}

if (section('fused')) {
  const gx = tf.randomNormal([4096, 512], 0, 2); // [N, 4D]: the MLP's hidden layer
  const gdy = tf.randomNormal([4096, 512]);
  const lx = tf.randomNormal([4096, 128], 0.5, 2); // [N, D]
  const ldy = tf.randomNormal([4096, 128]);
  const lg = tf.randomNormal([128], 1, 0.1);
  const lb = tf.randomNormal([128], 0, 0.1);
  installNativeKernels(tf, { threads, kernels: NATIVE_KERNELS, simd });
  const [, lmean, lrstd] = runKernel(
    FUSED_KERNELS.layerNorm,
    { x: lx, gamma: lg, beta: lb },
    { epsilon: 1e-5 },
  ); // [N], [N]
  const [, rrstd] = runKernel(FUSED_KERNELS.rmsNorm, { x: lx, gamma: lg }, { epsilon: 1e-5 }); // [N]
  const time = (fn, reps) => timeMs(() => tf.dispose(tf.tidy(fn)), reps);
  const adamIn = (shape) => [
    tf.randomNormal(shape), // param
    tf.randomNormal(shape), // grad
    tf.randomNormal(shape, 0, 0.1), // m
    tf.abs(tf.randomNormal(shape, 0, 0.1)), // v
  ];
  const aw = adamIn([128, 512]); // 4 × [128, 512]: mlp.fc.w
  const ab = adamIn([512]); // 4 × [512]: mlp.fc.b
  const fusedStep = adamWStep(referenceShapes(), fusedAdamW);
  const composedStep = adamWStep(referenceShapes(), composedAdamWUpdate);
  const rows = [
    {
      label: 'GELU      [4096,512] fwd',
      composed: () => gelu(gx),
      fused: () => runKernel(FUSED_KERNELS.gelu, { x: gx }),
    },
    {
      label: 'GELU      [4096,512] bwd',
      fused: () => runKernel(FUSED_KERNELS.geluGrad, { dy: gdy, x: gx }),
      composedBwd: [0, 2],
    },
    {
      label: 'GELU      [4096,512] fwd+bwd',
      composed: () => tf.grad(gelu)(gx, gdy),
      fused: () => tf.grad(fusedGelu)(gx, gdy),
    },
    {
      label: 'LayerNorm [4096,128] fwd',
      composed: () => ln(lx, lg, lb),
      fused: () => runKernel(FUSED_KERNELS.layerNorm, { x: lx, gamma: lg, beta: lb }, { epsilon: 1e-5 }),
    },
    {
      label: 'LayerNorm [4096,128] bwd',
      fused: () =>
        runKernel(FUSED_KERNELS.layerNormGrad, { dy: ldy, x: lx, gamma: lg, mean: lmean, rstd: lrstd }),
      composedBwd: [3, 5],
    },
    {
      label: 'LayerNorm [4096,128] fwd+bwd',
      composed: () => tf.grads(ln)([lx, lg, lb], ldy),
      fused: () => tf.grads(fusedLn)([lx, lg, lb], ldy),
    },
    // Llama's: SwiGLU's gate over [N, F] (the GELU shape), RMSNorm over [N, D] (the LayerNorm shape)
    {
      label: 'SiLU      [4096,512] fwd',
      composed: () => composedSilu(gx),
      fused: () => runKernel(FUSED_KERNELS.silu, { x: gx }),
    },
    {
      label: 'SiLU      [4096,512] bwd',
      fused: () => runKernel(FUSED_KERNELS.siluGrad, { dy: gdy, x: gx }),
      composedBwd: [6, 8],
    },
    {
      label: 'SiLU      [4096,512] fwd+bwd',
      composed: () => tf.grad(composedSilu)(gx, gdy),
      fused: () => tf.grad(fusedSilu)(gx, gdy),
    },
    {
      label: 'RMSNorm   [4096,128] fwd',
      composed: () => rms(lx, lg),
      fused: () => runKernel(FUSED_KERNELS.rmsNorm, { x: lx, gamma: lg }, { epsilon: 1e-5 }),
    },
    {
      label: 'RMSNorm   [4096,128] bwd',
      fused: () => runKernel(FUSED_KERNELS.rmsNormGrad, { dy: ldy, x: lx, gamma: lg, rstd: rrstd }),
      composedBwd: [9, 11],
    },
    {
      label: 'RMSNorm   [4096,128] fwd+bwd',
      composed: () => tf.grads(rms)([lx, lg], ldy),
      fused: () => tf.grads(fusedRms)([lx, lg], ldy),
    },
    {
      label: 'AdamW     [128,512]',
      composed: () => composedAdamWUpdate(...aw, adamHyper(10, 0.1)),
      fused: () => fusedAdamW(...aw, adamHyper(10, 0.1)),
    },
    {
      label: 'AdamW     [512]',
      composed: () => composedAdamWUpdate(...ab, adamHyper(10, 0)),
      fused: () => fusedAdamW(...ab, adamHyper(10, 0)),
    },
    {
      label: `AdamW step ${fusedStep.tensors} tensors`,
      composed: composedStep.step,
      fused: fusedStep.step,
    },
  ];
  // Interleaved rounds (best of all): load from other processes hits every variant alike.
  const best = rows.map(() => ({ stock: Infinity, native: Infinity, fused: Infinity }));
  for (let round = 0; round < 3; round++) {
    uninstallNativeKernels(tf);
    rows.forEach((row, i) => {
      if (row.composed !== undefined) best[i].stock = Math.min(best[i].stock, time(row.composed, 5));
    });
    installNativeKernels(tf, { threads, kernels: NATIVE_KERNELS, simd });
    rows.forEach((row, i) => {
      if (row.composed !== undefined) best[i].native = Math.min(best[i].native, time(row.composed, 11));
      best[i].fused = Math.min(best[i].fused, time(row.fused, 11));
    });
  }
  // A composed backward alone is not one call (autodiff runs the forward too): fwd+bwd − fwd.
  rows.forEach((row, i) => {
    if (row.composedBwd === undefined) return;
    const [f, fb] = row.composedBwd.map((j) => best[j]);
    best[i].stock = fb.stock - f.stock;
    best[i].native = fb.native - f.native;
  });
  console.log(
    '\nFused kernels vs the same math composed of stock ops (best ms per call; composed bwd = fwd+bwd − fwd)',
  );
  console.log(`${pad('op', 30)}composed: wasm ms  native ms   fused ms   vs wasm  vs native`);
  const ms = (x) => (x < 0.1 ? 4 : 2); // decimals: µs resolution for the small AdamW updates
  rows.forEach((row, i) => {
    const { stock, native, fused } = best[i];
    console.log(
      `${pad(row.label, 30)}${num(stock, ms(stock)).padStart(17)}${num(native, ms(native)).padStart(11)}${num(fused, ms(fused)).padStart(11)}${num(stock / fused, 1).padStart(9)}x${num(native / fused, 1).padStart(9)}x`,
    );
  });
  console.log(
    `(AdamW step: the reference model's parameters, micro preset with vocab 512: ${fusedStep.tensors} tensors, ${fusedStep.elements} floats, updated as variables)`,
  );
  tf.dispose([gx, gdy, lx, ldy, lg, lb, lmean, lrstd, rrstd, ...aw, ...ab]);
  fusedStep.dispose();
  composedStep.dispose();
}

const fwd = () => tf.dispose(tf.tidy(lmLoss));
const step = () => {
  const { value, grads } = tf.variableGrads(lmLoss);
  tf.dispose([value, ...Object.values(grads)]);
};
const tokens = B * T;
if (!section('step')) process.exit(0);
console.log(`\nDefault kernel set (used below): ${DEFAULT_NATIVE_KERNELS.join(', ')}`);
console.log(
  `GPT-like stack: d=${D}, ${H} heads, ctx ${T}, vocab ${V}, ${layers} layers, batch ${B} (${tokens} tokens)`,
);
console.log(`${pad('', 22)}   wasm ms  native ms   speed-up   native tok/s`);
for (const [label, fn, repsN, repsS] of [
  ['forward', fwd, 5, 2],
  ['forward+backward', step, 5, 2],
]) {
  const { native, stock } = sideBySide(fn, repsN, repsS);
  console.log(
    `${pad(label, 22)}${num(stock, 0).padStart(10)}${num(native, 0).padStart(11)}${num(stock / native, 1).padStart(10)}x${num(tokens / (native / 1000), 0).padStart(15)}`,
  );
}
