// Child process: forward / training-step speed of the reference model on one tfjs backend.
//   node tools/bench/engine.mjs --backend native|wasm [--quick] [--modes lm_fwd,lm_step,rm_fwd,rm_step]
// Reference model: d=128, 4 layers, 4 heads, context 128, vocab 512 (the `micro` preset with vocab 512;
// tied embeddings, as Quorum builds it), batch 32. Prints one @@BENCH_RESULT JSON line on stdout.
import {
  AdamW,
  gptPreset,
  initGpt,
  namedParameters,
  paramCount,
  tokenLogProbs,
  valueAndGrads,
} from '@quorum/backbone';
import { Rng } from '@quorum/core';
import { bradleyTerryLoss, builtinArchitectureRegistry } from '@quorum/ensemble';
import * as tf from '@tensorflow/tfjs';
import { arg, emit, load1, progress, startBackend, timeIt, timingOptions } from './lib.mjs';

const backendName = String(arg('backend', 'native'));
const quick = arg('quick', false) === true;
const modes = String(arg('modes', 'lm_fwd,lm_step,rm_fwd,rm_step')).split(',');
const B = Number(arg('batch', 32));

const loadBefore = load1();
const active = await startBackend(backendName);
const config = gptPreset('micro', { vocabSize: 512 });
const T = config.contextLength;
const rng = new Rng(1234);
const randomIds = (rows) =>
  tf.tensor2d(
    Int32Array.from({ length: rows * T }, () => rng.int(config.vocabSize)),
    [rows, T],
    'int32',
  );
const ids = randomIds(B); // [B, T]
const mask = tf.ones([B, T]); // [B, T] all real tokens
const pairIds = randomIds(2 * B); // [2B, T]: rows 0..B-1 chosen, B..2B-1 rejected
const pairMask = tf.ones([2 * B, T]);

// ---- LM: forward = the LM loss without gradients; step = loss + gradients + AdamW update.
const params = initGpt(config, rng.fork('lm'));
const named = namedParameters(params);
const lmOpt = new AdamW(named, { lr: 1e-3, weightDecay: 0.01 }); // torch.optim.AdamW defaults
const lmLoss = () => tf.neg(tf.mean(tokenLogProbs(params, config, ids, mask)));
const lmFwd = () => tf.tidy(() => void lmLoss().dataSync());
const lmStep = () => {
  const { grads } = valueAndGrads(lmLoss, named);
  lmOpt.applyGradients(grads);
  tf.dispose(Object.values(grads));
};

// ---- Reward model: Quorum's `single` architecture (transformer + one linear head on the last token).
const ens = builtinArchitectureRegistry()
  .create('single')
  .build({ gptConfig: config, members: 1, rng: rng.fork('rm') });
const phase = ens.phases()[0];
const rmVars = phase.variables();
const rmOpt = new AdamW(rmVars, { lr: 1e-3, weightDecay: 0.01 });
const rmFwd = () => tf.tidy(() => void ens.score({ ids, mask }).dataSync());
const pairLoss = () => {
  const r = phase.rewards({ ids: pairIds, mask: pairMask }, undefined); // [1, 2B]
  return bradleyTerryLoss(tf.slice(r, [0, 0], [1, B]), tf.slice(r, [0, B], [1, B]), undefined);
};
const rmStep = () => {
  const { grads } = valueAndGrads(pairLoss, rmVars);
  rmOpt.applyGradients(grads);
  tf.dispose(Object.values(grads));
};

// [fn, tokens per call, relative slowness (scales the time budget)]
const table = {
  lm_fwd: [lmFwd, B * T, 1],
  lm_step: [lmStep, B * T, 2],
  rm_fwd: [rmFwd, B * T, 1],
  rm_step: [rmStep, 2 * B * T, 2],
};
const results = {};
for (const mode of modes) {
  const [fn, tokens, scale] = table[mode];
  progress(`${backendName} ${mode} …`);
  try {
    const t = timeIt(fn, timingOptions(quick, scale));
    results[mode] = { ...t, tokens, tokensPerSec: tokens / (t.medianMs / 1000) };
    progress(`${backendName} ${mode}: ${t.medianMs.toFixed(0)} ms median of ${t.reps} (load ${load1()})`);
  } catch (e) {
    results[mode] = { error: String(e?.message ?? e).split('\n')[0] };
    progress(`${backendName} ${mode} FAILED: ${results[mode].error}`);
  }
}
const leaked = tf.memory().numTensors;
emit({
  engine: backendName,
  backend: { name: active.name, threads: active.threads, reason: active.reason, details: active.details },
  tfjs: tf.version.tfjs,
  model: { ...config, batch: B, params: paramCount(config), rmParams: ens.paramCounts().total },
  modes: results,
  load: { before: loadBefore, after: load1() },
  tensorsAlive: leaked,
  maxRssMiB: process.resourceUsage().maxRSS / 1024,
});
