// Times the `micro` preset on the active backend: forward (hidden, and LM logits) and one SFT training
// step (forward + backward + AdamW) at batch 32, context 128, vocab 4096.
// Usage (after `npx tsc -b`): node bench/micro.mjs [--backend wasm] [--batch 32] [--iters 3] [--transposes flags]

import { loadavg } from 'node:os';
import { builtinBackendRegistry, initCompute, Rng } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import {
  gptHidden,
  gptPreset,
  initGpt,
  lmLogits,
  makeSftBatch,
  paramCount,
  resolveSftConfig,
  SftTrainer,
  setExplicitTransposes,
} from '../dist/index.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
};
const backend = await initCompute({ registry: builtinBackendRegistry(), backend: arg('backend', 'wasm') });
const B = Number(arg('batch', 32));
const iters = Number(arg('iters', 3));
setExplicitTransposes(arg('transposes', 'explicit') === 'explicit');
const config = gptPreset('micro', { vocabSize: 4096, contextLength: 128 });
const T = config.contextLength;
const rng = new Rng(0);
const params = initGpt(config, rng);
const examples = Array.from({ length: B }, () => {
  const ids = Array.from({ length: T }, () => rng.int(config.vocabSize));
  return { ids, lossMask: ids.map(() => 1) };
});
const batch = makeSftBatch(examples);

// Wall time is inflated when other processes share the cores; CPU time (wasm is single-threaded here)
// is close to the wall time of an idle machine.
function time(name, fn) {
  fn();
  const walls = [];
  const cpus = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    walls.push(performance.now() - t0);
    cpus.push((c.user + c.system) / 1000);
  }
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const wall = median(walls);
  const cpu = median(cpus);
  console.log(
    `${name.padEnd(14)} wall ${wall.toFixed(0).padStart(6)} ms  cpu ${cpu.toFixed(0).padStart(6)} ms  ${((B * T) / (cpu / 1000)).toFixed(0).padStart(7)} tok/s (cpu)`,
  );
}

console.log(
  `micro: ${paramCount(config)} params, backend ${backend.name} (${backend.reason}), B=${B} T=${T} V=${config.vocabSize}, load ${loadavg()[0].toFixed(1)}`,
);
time('forward hidden', () => tf.tidy(() => void gptHidden(params, config, batch.ids, batch.mask).dataSync()));
time('forward logits', () =>
  tf.tidy(() => void lmLogits(params, gptHidden(params, config, batch.ids, batch.mask)).dataSync()),
);
const trainer = new SftTrainer({
  config,
  params,
  sft: resolveSftConfig({ batchSize: B, maxSteps: 1000 }),
  train: examples,
});
time('train step', () => trainer.trainStep());
console.log(`tensors alive: ${tf.memory().numTensors}, load ${loadavg()[0].toFixed(1)}`);
