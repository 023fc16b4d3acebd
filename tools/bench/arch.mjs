// Child process: parameters, peak memory and scoring throughput of one ensemble architecture.
//   node tools/bench/arch.mjs --arch single|independent|linear-heads|lora|lora-r4|lora-top1 [--members 3]
//        [--backend native] [--batch 32] [--quick]
// Model: the `micro` preset as shipped (d 128, 4 layers, 4 heads, context 128, vocab 4096); a batch of
// `batch` sequences of full length (no padding). Prints one @@BENCH_RESULT JSON line on stdout.
import { gptPreset } from '@quorum/backbone';
import { Rng } from '@quorum/core';
import { builtinArchitectureRegistry } from '@quorum/ensemble';
import * as tf from '@tensorflow/tfjs';
import { arg, emit, load1, progress, startBackend, timeIt, timingOptions } from './lib.mjs';

/** Bench label → [registry spec, members]. */
const SPECS = {
  single: (k) => ['single', 1, k],
  independent: (k) => ['independent', k],
  'linear-heads': (k) => ['linear-heads', k],
  lora: (k) => [['lora', { layers: 'all' }], k],
  'lora-r4': (k) => [['lora', { layers: 'all', rank: 4, alpha: 8 }], k],
  'lora-top1': (k) => [['lora', { layers: { top: 1 } }], k],
};

const label = String(arg('arch', 'single'));
const k = Number(arg('members', 3));
const backendName = String(arg('backend', 'native'));
const B = Number(arg('batch', 32));
const quick = arg('quick', false) === true;
if (!(label in SPECS)) throw new Error(`unknown --arch ${label}; one of ${Object.keys(SPECS).join(', ')}`);
const [spec, members] = SPECS[label](k);

const loadBefore = load1();
const active = await startBackend(backendName);
const config = gptPreset('micro');
const T = config.contextLength;
const rng = new Rng(99);
const batch = {
  ids: tf.tensor2d(
    Int32Array.from({ length: B * T }, () => rng.int(config.vocabSize)),
    [B, T],
    'int32',
  ),
  mask: tf.ones([B, T]),
};
// Baselines after the backend, the batch and one op (so wasm's heap and kernels exist) but before the model.
tf.tidy(() => tf.matMul(tf.ones([8, 8]), tf.ones([8, 8])).dataSync());
const bytes0 = tf.memory().numBytes;
const rss0 = process.memoryUsage().rss;

const ens = builtinArchitectureRegistry()
  .create(spec)
  .build({ gptConfig: config, members, rng: rng.fork('ens') });
const weightBytes = tf.memory().numBytes - bytes0;
const score = () => {
  const r = ens.score(batch); // [k, B]
  r.dataSync();
  r.dispose();
};
const shape = tf.tidy(() => ens.score(batch).shape);

progress(`${label} (k=${members}) scoring …`);
// Scoring calls are short (50–200 ms) and their wall time on 2 shared cores is bimodal (whether the pool's
// second thread is running): many repetitions keep the median steady.
const t = timeIt(
  score,
  quick ? timingOptions(quick) : { warmup: 3, minReps: 15, maxReps: 25, budgetMs: 6_000 },
);
// RSS high-water mark of the process since the model was built, minus the RSS before it.
const maxRss = process.resourceUsage().maxRSS * 1024;
const rssAfter = process.memoryUsage().rss;
// tf.memory() high-water mark during one scoring call (tf.profile's peakBytes: largest numBytes after
// any kernel). Done after the timed calls: profiling copies outputs and must not disturb the RSS figure.
const prof = await tf.profile(score);
progress(`${label}: ${t.medianMs.toFixed(0)} ms median of ${t.reps} (load ${load1()})`);

emit({
  arch: label,
  spec,
  backend: active.name,
  members,
  batch: B,
  seqLen: T,
  model: { ...config },
  outputShape: shape,
  params: ens.paramCounts(),
  memory: {
    weightBytes,
    tfPeakBytes: prof.peakBytes - bytes0,
    tfPeakAboveWeightsBytes: prof.peakBytes - bytes0 - weightBytes,
    rssHighWaterDeltaBytes: Math.max(0, maxRss - rss0),
    rssDeltaBytes: rssAfter - rss0,
  },
  timing: { ...t, seqPerSec: B / (t.medianMs / 1000) },
  load: { before: loadBefore, after: load1() },
});
ens.dispose();
