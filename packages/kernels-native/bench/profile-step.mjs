// Profiler (not a test): where the time of one LM training step of the reference model goes, per tfjs
// kernel. Every kernel registered on the wasm backend is wrapped with a timer (wall ms and calls per
// step); the rest of the step (tape bookkeeping, tidy, op-level JS) shows as "outside kernels".
// Build first (`npx tsc -b packages/backbone/tsconfig.json packages/kernels-native/tsconfig.json`), then
//   node packages/kernels-native/bench/profile-step.mjs [--backend native|wasm] [--steps 3] [--batch 32]
//        [--mode lm_step|lm_grads|lm_fwd|score [--arch single|lora|lora-top1|…]] [--kernels Exp,Tanh,...|all|none] [--threads 2] [--shapes] [--top 25]
// --kernels picks the native kernel set (default: DEFAULT_NATIVE_KERNELS); --shapes also lists the
// heaviest (kernel, input shapes) pairs. --mode score profiles one ensemble score() of 32 sequences (the
// `micro` preset, vocab 4096, k = 3 unless --members), built as tools/bench/arch.mjs builds it.
import { builtinBackendRegistry, initCompute } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import {
  DEFAULT_NATIVE_KERNELS,
  NATIVE_KERNELS,
  nativeBackend,
  nativeBackendDefinition,
} from '../dist/index.js';

const argv = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const next = argv[i + 1];
  return next === undefined || next.startsWith('--') ? true : next;
};
const backendName = String(arg('backend', 'native'));
const steps = Number(arg('steps', 3));
const B = Number(arg('batch', 32));
const mode = String(arg('mode', 'lm_step'));
const showShapes = arg('shapes', false) === true;
const top = Number(arg('top', 25));
const kernelsArg = arg('kernels', undefined);
const kernels =
  kernelsArg === undefined || kernelsArg === true
    ? DEFAULT_NATIVE_KERNELS
    : kernelsArg === 'none'
      ? []
      : kernelsArg === 'all'
        ? NATIVE_KERNELS
        : String(kernelsArg).split(',');

const registry = builtinBackendRegistry();
registry.register({
  ...nativeBackendDefinition,
  create: () => nativeBackend({ kernels, threads: Number(arg('threads', 2)) }),
});
const active = await initCompute({ registry, backend: backendName, env: {}, warn: () => {} });
if (active.name !== backendName)
  throw new Error(`asked for ${backendName}, got ${active.name}: ${active.reason}`);

// Imported after the backend is up (the backbone reads the active backend's capabilities).
const { Rng } = await import('@quorum/core');
const { lmWorkload, randomBatch } = await import('./lm-workload.mjs');

const rng = new Rng(1234);
let fn;
let tokens;
if (mode === 'score') {
  const { builtinArchitectureRegistry } = await import('@quorum/ensemble');
  const { gptPreset } = await import('@quorum/backbone');
  const config = gptPreset('micro');
  const batch = randomBatch(rng, config, B);
  const { ids, mask } = batch;
  // as tools/bench/arch.mjs builds them
  const specs = {
    single: ['single', 1],
    independent: ['independent', 3],
    'linear-heads': ['linear-heads', 3],
    lora: [['lora', { layers: 'all' }], 3],
    'lora-top1': [['lora', { layers: { top: 1 } }], 3],
  };
  const [spec, members] = specs[String(arg('arch', 'lora'))];
  const ens = builtinArchitectureRegistry()
    .create(spec)
    .build({ gptConfig: config, members: Number(arg('members', members)), rng: rng.fork('rm') });
  fn = () => tf.tidy(() => void ens.score({ ids, mask }).dataSync());
  tokens = batch.tokens;
} else {
  ({ fn, tokens } = await lmWorkload(rng, { mode, batch: B }));
}

// ---- wrap every wasm kernel with a timer
const stats = new Map(); // name -> { ms, calls }
const shapeStats = new Map(); // name + shapes -> { ms, calls }
let recording = false;
for (const config of tf.getKernelsForBackend('wasm')) {
  const inner = config.kernelFunc;
  const name = config.kernelName;
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({
    ...config,
    kernelFunc: (args) => {
      if (!recording) return inner(args);
      const t0 = performance.now();
      const out = inner(args);
      const dt = performance.now() - t0;
      const s = stats.get(name) ?? { ms: 0, calls: 0 };
      s.ms += dt;
      s.calls += 1;
      stats.set(name, s);
      if (showShapes) {
        const shapes = Object.values(args.inputs)
          .filter((t) => t != null)
          .map((t) => `[${t.shape}]${t.dtype === 'float32' ? '' : t.dtype}`)
          .join(' ');
        const attrs = args.attrs === undefined ? '' : JSON.stringify(args.attrs);
        const key = `${name} ${shapes} ${attrs.length > 80 ? `${attrs.slice(0, 77)}...` : attrs}`;
        const ss = shapeStats.get(key) ?? { ms: 0, calls: 0, min: Number.POSITIVE_INFINITY };
        ss.ms += dt;
        ss.calls += 1;
        ss.min = Math.min(ss.min, dt);
        shapeStats.set(key, ss);
      }
      return out;
    },
  });
}

fn(); // warm-up
let wall = 0;
let cpu = 0;
recording = true;
for (let i = 0; i < steps; i++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  fn();
  wall += performance.now() - t0;
  const c = process.cpuUsage(c0);
  cpu += (c.user + c.system) / 1000;
}
recording = false;

const perStep = (x) => x / steps;
const total = perStep(wall);
const inKernels = perStep([...stats.values()].reduce((a, s) => a + s.ms, 0));
const pad = (s, n) => String(s).padEnd(n);
const num = (x, w, d = 1) => x.toFixed(d).padStart(w);
console.log(
  `${mode} on ${active.name} (${active.details ?? ''})\nbatch ${B}, ${steps} steps: ${num(total, 0, 0)} ms/step wall, ` +
    `${num(perStep(cpu), 0, 0)} ms/step CPU, ${num(tokens / (total / 1000), 0, 0)} tokens/s; ` +
    `inside kernels ${num(inKernels, 0, 0)} ms (${num((100 * inKernels) / total, 0, 1)}%)`,
);
console.log(`${pad('kernel', 26)}${'calls'.padStart(7)}${'ms/step'.padStart(10)}${'share'.padStart(8)}`);
const rows = [...stats.entries()].sort((a, b) => b[1].ms - a[1].ms);
for (const [name, s] of rows.slice(0, top)) {
  console.log(
    `${pad(name, 26)}${num(perStep(s.calls), 7, 0)}${num(perStep(s.ms), 10)}${num((100 * perStep(s.ms)) / total, 7)}%`,
  );
}
console.log(
  `${pad('(outside kernels)', 26)}${''.padStart(7)}${num(total - inKernels, 10)}${num((100 * (total - inKernels)) / total, 7)}%`,
);
if (showShapes) {
  console.log('\nheaviest kernel calls by input shapes (ms per step, calls per step, fastest call in ms):');
  const srows = [...shapeStats.entries()].sort((a, b) => b[1].ms - a[1].ms);
  for (const [key, s] of srows.slice(0, top * 2)) {
    console.log(`${num(perStep(s.ms), 8)} ms ${num(perStep(s.calls), 4, 0)}× ${num(s.min, 7, 2)}  ${key}`);
  }
}
