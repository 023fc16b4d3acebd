// Leak soak: runs the three loops a long job repeats — SFT training steps, KV-cached generation and
// reward-ensemble scoring — many times each on one backend, and checks that tf.memory() stays flat.
//   node tools/bench/soak.mjs [--quick] [--iterations N] [--backend native|wasm|cpu] [--only generate,…]
// Default: 1,000 iterations per phase on Quorum's default backend (the one `quorum info` shows), a
// sample of tf.memory() every 100. --quick: 100 iterations, a sample every 10. Each phase builds its
// model first, so the samples see only what the loop leaves behind; "leaked tensors" is the change in
// numTensors between the first and the last sample. Exits 1 when any phase leaked a tensor or a byte.
import { disposeGpt, generate, gptPreset, initGpt, resolveSftConfig, SftTrainer } from '@quorum/backbone';
import { Rng } from '@quorum/core';
import { builtinArchitectureRegistry, scoreSequences } from '@quorum/ensemble';
import * as tf from '@tensorflow/tfjs';
import { arg, load1, progress, startBackend } from './lib.mjs';

const quick = arg('quick', false) === true;
const iterations = Number(arg('iterations', quick ? 100 : 1000));
const every = Math.max(1, Math.round(iterations / 10));
const backendArg = arg('backend', undefined);
if (!Number.isInteger(iterations) || iterations < 2 * every) {
  throw new Error(`--iterations must be an integer ≥ 2, got ${arg('iterations')}`);
}

const loadBefore = load1();
const active = await startBackend(backendArg === undefined ? undefined : String(backendArg));
const config = gptPreset('nano'); // vocab 4096, context 128: the shipped nano model
const rng = new Rng(2024);

/** Random token ids of a length in [min, max]. */
const randomIds = (min, max) =>
  Array.from({ length: min + rng.int(max - min + 1) }, () => 1 + rng.int(config.vocabSize - 1));

/** SFT examples: a prompt, then an answer whose tokens are the trained targets. */
const sftExamples = Array.from({ length: 64 }, () => {
  const prompt = randomIds(8, 24);
  const answer = randomIds(4, 24);
  return { ids: [...prompt, ...answer], lossMask: [...prompt.map(() => 0), ...answer.map(() => 1)] };
});

/**
 * The phases. `setup` builds what the loop needs (before the first sample) and returns the step and a
 * teardown; the step must leave nothing behind.
 */
const phases = [
  {
    name: 'sft-step',
    what: 'SftTrainer.trainStep(): loss + gradients + AdamW, nano, batch 4',
    setup() {
      const params = initGpt(config, rng.fork('sft'));
      const sft = resolveSftConfig({
        maxSteps: iterations,
        batchSize: 4,
        seed: 0,
        evalEvery: 0,
        checkpointEvery: 0,
      });
      const trainer = new SftTrainer({ config, params, sft, train: sftExamples });
      let lastLoss = Number.NaN;
      return {
        step: () => {
          lastLoss = trainer.trainStep().loss;
        },
        detail: () => `loss ${lastLoss.toFixed(3)}`,
        teardown: () => {
          trainer.dispose();
          disposeGpt(params);
        },
      };
    },
  },
  {
    name: 'generate',
    what: 'generate() with the KV cache: 2 prompts, 8 new tokens, temperature 0.7, top-p 0.9',
    setup() {
      const params = initGpt(config, rng.fork('generate'));
      const sampling = rng.fork('sampling');
      let produced = 0;
      return {
        step: () => {
          const out = generate(params, config, [randomIds(4, 32), randomIds(4, 32)], {
            maxNewTokens: 8,
            temperature: 0.7,
            topP: 0.9,
            rng: sampling,
            useCache: true,
          });
          produced += out.tokens.reduce((n, t) => n + t.length, 0);
        },
        detail: () => `${produced} tokens`,
        teardown: () => disposeGpt(params),
      };
    },
  },
  {
    name: 'rm-score',
    what: 'scoreSequences() of a linear-heads ensemble, k = 3, nano: 8 answers of 8–64 tokens, batch 4',
    setup() {
      const ensemble = builtinArchitectureRegistry()
        .create('linear-heads')
        .build({ gptConfig: config, members: 3, rng: rng.fork('rm') });
      let last = 0;
      return {
        step: () => {
          const seqs = Array.from({ length: 8 }, () => Int32Array.from(randomIds(8, 64)));
          const rewards = scoreSequences(ensemble, seqs, 0, 4); // [k][8]
          last = rewards[0][0];
        },
        detail: () => `reward ${last.toFixed(3)}`,
        teardown: () => ensemble.dispose(),
      };
    },
  },
];

const mb = (bytes) => (bytes / 2 ** 20).toFixed(1);
/** Size of the wasm backends' linear memory (it grows and is never returned to the OS); undefined on cpu. */
const wasmHeapBytes = () => tf.backend().wasm?.HEAPU8?.buffer?.byteLength;
const rows = [];
const verdicts = [];
process.stderr.write(
  `soak: ${iterations} iterations per phase on ${active.name} (${active.threads ?? 1} threads), a sample every ${every}\n`,
);
const only = arg('only', undefined);
for (const phase of phases.filter((p) => only === undefined || String(only).split(',').includes(p.name))) {
  progress(`${phase.name}: ${phase.what}`);
  const { step, detail, teardown } = phase.setup();
  const samples = [];
  const started = performance.now();
  for (let i = 1; i <= iterations; i++) {
    step();
    if (i % every === 0) {
      const m = tf.memory();
      const sample = {
        phase: phase.name,
        iteration: i,
        numTensors: m.numTensors,
        numBytes: m.numBytes,
        rssMb: mb(process.memoryUsage().rss),
        heapMb: mb(process.memoryUsage().heapUsed),
        wasmMb: wasmHeapBytes() === undefined ? 'n/a' : mb(wasmHeapBytes()),
      };
      samples.push(sample);
      rows.push(sample);
      progress(`${phase.name} ${i}/${iterations}  tensors ${m.numTensors}  ${detail()}`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  teardown();
  const first = samples[0];
  const last = samples[samples.length - 1];
  verdicts.push({
    phase: phase.name,
    from: first.iteration,
    to: last.iteration,
    tensors: last.numTensors - first.numTensors,
    bytes: last.numBytes - first.numBytes,
    seconds,
  });
}
const leftAfter = tf.memory().numTensors;

// ---- report
const header = ['phase', 'iteration', 'numTensors', 'numBytes', 'rss MB', 'js heap MB', 'wasm heap MB'];
const table = [
  header,
  ...rows.map((r) =>
    [r.phase, r.iteration, r.numTensors, r.numBytes, r.rssMb, r.heapMb, r.wasmMb].map(String),
  ),
];
const widths = header.map((_, c) => Math.max(...table.map((r) => r[c].length)));
const line = (r) =>
  r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
console.log(
  `backend ${active.name}; load ${loadBefore} → ${load1()} (1-min average, ${iterations} iterations per phase)`,
);
console.log(line(table[0]));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of table.slice(1)) console.log(line(r));
console.log('');
let leaked = false;
for (const v of verdicts) {
  const bad = v.tensors !== 0 || v.bytes !== 0;
  leaked ||= bad;
  console.log(
    `${v.phase}: leaked tensors: ${v.tensors} (bytes: ${v.bytes}; iteration ${v.from} → ${v.to}, ${v.seconds.toFixed(0)} s)${bad ? '  ← LEAK' : ''}`,
  );
}
console.log(`tensors left after every phase's teardown: ${leftAfter}`);
process.exitCode = leaked ? 1 : 0;
