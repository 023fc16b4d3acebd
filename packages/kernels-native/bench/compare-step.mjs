// A/B benchmark (not a test): one LM training step of the reference model (d=128, 4 layers, 4 heads,
// context 128, vocab 512, batch 32) with different sets of native kernels, interleaved call by call in
// one process so that load from other processes hits every set alike. Build first, then
//   node packages/kernels-native/bench/compare-step.mjs [--sets "default;all;default+Identity,Cast"]
//        [--reps 5] [--mode lm_step|lm_fwd] [--threads 2] [--batch 32]
// A set is `default`, `all`, `none` or `stock`, optionally followed by `+A,B` (add kernels) or `-A,B`
// (drop kernels), by ` nograd` to keep tfjs's own gradients (see gradients.ts), by `@N` for N
// threads instead of --threads, and by `%256` or `%512` for the matmul vector width. Prints per set: min and median wall ms, median CPU ms (all threads), tokens/s at min.
import { builtinBackendRegistry, initCompute } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import {
  DEFAULT_NATIVE_KERNELS,
  installNativeKernels,
  NATIVE_KERNELS,
  nativeBackendDefinition,
  uninstallNativeKernels,
} from '../dist/index.js';

const argv = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i < 0 || argv[i + 1] === undefined ? fallback : argv[i + 1];
};
const threads = Number(arg('threads', 2));
const reps = Number(arg('reps', 5));
const mode = String(arg('mode', 'lm_step'));
const B = Number(arg('batch', 32));
const setSpecs = String(arg('sets', 'default;all')).split(';');

function parseSet(spec) {
  const m = /^(default|all|none|stock)([+-])?(.*)$/.exec(spec.trim().replace(/ nograd$/, ''));
  if (m === null) throw new Error(`bad set "${spec}"`);
  const base = m[1] === 'all' ? [...NATIVE_KERNELS] : m[1] === 'default' ? [...DEFAULT_NATIVE_KERNELS] : [];
  const names = m[3] === '' ? [] : m[3].split(',');
  if (m[2] === '+') return [...new Set([...base, ...names])];
  if (m[2] === '-') return base.filter((k) => !names.includes(k));
  return base;
}
const sets = setSpecs.map((full) => {
  const [rest, bits] = full.split('%');
  const [spec, at] = rest.split('@');
  return {
    spec: full,
    kernels: parseSet(spec),
    gradients: spec.trim().endsWith(' nograd') ? [] : undefined,
    threads: at === undefined ? threads : Number(at),
    simd: bits === undefined ? undefined : Number(bits),
    wall: [],
    cpu: [],
  };
});

const registry = builtinBackendRegistry();
registry.register(nativeBackendDefinition);
const active = await initCompute({ registry, backend: 'native', env: {}, warn: () => {} });
if (active.name !== 'native') throw new Error(`native backend unavailable: ${active.reason}`);

const { Rng } = await import('@quorum/core');
const { lmWorkload } = await import('./lm-workload.mjs');
const { fn, tokens } = await lmWorkload(new Rng(1234), { mode, batch: B });

const use = (set) => {
  if (set.kernels.length === 0) uninstallNativeKernels(tf);
  else
    installNativeKernels(tf, {
      threads: set.threads,
      kernels: set.kernels,
      gradients: set.gradients,
      simd: set.simd,
    });
};
for (const set of sets) {
  use(set);
  fn(); // warm-up
}
for (let r = 0; r < reps; r++) {
  for (const set of sets) {
    use(set);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    set.wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    set.cpu.push((c.user + c.system) / 1000);
  }
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
console.log(`${mode}, batch ${B}, ${threads} threads, ${reps} interleaved reps`);
console.log(
  `${'set'.padEnd(48)}${'min ms'.padStart(9)}${'median'.padStart(9)}${'CPU ms'.padStart(9)}${'tok/s'.padStart(9)}`,
);
for (const set of sets) {
  const min = Math.min(...set.wall);
  console.log(
    `${set.spec.padEnd(48)}${min.toFixed(0).padStart(9)}${median(set.wall).toFixed(0).padStart(9)}` +
      `${median(set.cpu).toFixed(0).padStart(9)}${(tokens / (min / 1000)).toFixed(0).padStart(9)}`,
  );
}
uninstallNativeKernels(tf);
