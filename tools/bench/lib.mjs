// Shared helpers of the benchmark children: arguments, backend start-up, timing, result hand-off.
import { loadavg } from 'node:os';
import { builtinBackendRegistry, initCompute } from '@quorum/core';
import { nativeBackendDefinition } from '@quorum/kernels-native';

/** `--name value` (or `--flag` → true) from argv. */
export function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const next = process.argv[i + 1];
  return next === undefined || next.startsWith('--') ? true : next;
}

/**
 * Activates the named compute backend (native or wasm) exactly as Quorum does; refuses silent fallbacks.
 * Without a name, Quorum's own choice (QUORUM_BACKEND, else the available backend of highest priority).
 */
export async function startBackend(name) {
  const registry = builtinBackendRegistry();
  registry.register(nativeBackendDefinition);
  const active = await initCompute({
    registry,
    ...(name === undefined ? {} : { backend: name }),
    warn: (m) => process.stderr.write(`${m}\n`),
  });
  if (name !== undefined && active.name !== name)
    throw new Error(`asked for backend ${name}, got ${active.name}: ${active.reason}`);
  return active;
}

/**
 * Median wall time (ms) of `fn` after `warmup` untimed calls: at least `minReps` timed calls, at most
 * `maxReps`, stopping early once `budgetMs` of timed calls have been spent.
 */
export function timeIt(fn, { warmup = 1, minReps = 3, maxReps = 7, budgetMs = 20_000 } = {}) {
  for (let i = 0; i < warmup; i++) fn();
  const times = [];
  const cpu = []; // process CPU ms (all threads) per call: less sensitive to other processes than wall time
  let spent = 0;
  while (times.length < maxReps && (times.length < minReps || spent < budgetMs)) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    const dt = performance.now() - t0;
    const c = process.cpuUsage(c0);
    times.push(dt);
    cpu.push((c.user + c.system) / 1000);
    spent += dt;
  }
  const sorted = [...times].sort((a, b) => a - b);
  return {
    medianMs: median(times),
    minMs: sorted[0],
    maxMs: sorted[sorted.length - 1],
    cpuMs: median(cpu),
    reps: times.length,
    times,
  };
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Timing options for a mode: `--quick` runs fewer, shorter repetitions. */
export function timingOptions(quick, slowScale = 1) {
  return quick
    ? { warmup: 1, minReps: 2, maxReps: 3, budgetMs: 6_000 * slowScale }
    : { warmup: 1, minReps: 3, maxReps: 7, budgetMs: 15_000 * slowScale };
}

export const load1 = () => Number(loadavg()[0].toFixed(2));

export function progress(message) {
  process.stderr.write(`  · ${message}\n`);
}

/** Hands the result to run.mjs: one marked JSON line on stdout. */
export function emit(result) {
  process.stdout.write(`@@BENCH_RESULT ${JSON.stringify(result)}\n`);
}
