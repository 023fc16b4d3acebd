// `npm run bench`: engines (native / wasm / PyTorch) and ensemble architectures, measured side by side in
// one run on this machine. Every measurement runs in its own child process (tfjs has one global backend
// per process), one after another, never in parallel. See README.md.
//   npm run bench [-- --quick] [-- --only engines|archs] [-- --no-torch] [-- --members 3]
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderMarkdown, renderText } from './report.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const argv = process.argv.slice(2);
const has = (f) => argv.includes(`--${f}`);
const val = (f, d) => {
  const i = argv.indexOf(`--${f}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : d;
};
if (has('help')) {
  console.log(`usage: npm run bench [-- options]
  --quick            fewer, shorter repetitions (≈ 3× faster, noisier)
  --only engines     only the engines table (or: --only archs)
  --no-torch         skip the PyTorch column
  --members N        ensemble size k for the architectures table (default 3)
  --python PATH      python with torch 1.13 (default /usr/bin/python3)
  --threads N        threads of the native kernels and of PyTorch (default 2)
  --out DIR          where latest.json / latest.md go (default tools/bench/results)`);
  process.exit(0);
}
const quick = has('quick');
const only = val('only', 'all');
const k = Number(val('members', 3));
const python = val('python', '/usr/bin/python3');
const threads = String(val('threads', 2));
const outDir = path.resolve(val('out', path.join(here, 'results')));
const q = quick ? ['--quick'] : [];

// ---- preconditions: the built workspace packages
const needed = ['core', 'backbone', 'heads', 'lora', 'ensemble', 'kernels-native'];
const missing = needed.filter((p) => !existsSync(path.join(root, 'packages', p, 'dist', 'index.js')));
if (missing.length > 0) {
  console.error(
    `bench: packages not built: ${missing.join(', ')}\n  build them first: npx tsc -b packages/ensemble/tsconfig.json packages/kernels-native/tsconfig.json (or npm run build)`,
  );
  process.exit(1);
}

const loadSamples = [];
const sampleLoad = () => loadSamples.push(loadavg()[0]);

/** Runs one child, streams its stderr (progress), returns its @@BENCH_RESULT JSON (or an error). */
function child(cmd, args, env = {}) {
  return new Promise((resolve) => {
    sampleLoad();
    const t0 = performance.now();
    const p = spawn(cmd, args, {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.stderr.on('data', (d) => {
      err += d;
      process.stderr.write(d);
    });
    p.on('error', (e) => resolve({ error: `${cmd}: ${e.message}` }));
    p.on('close', (code) => {
      sampleLoad();
      const line = out.split('\n').find((l) => l.startsWith('@@BENCH_RESULT '));
      const seconds = (performance.now() - t0) / 1000;
      if (line === undefined) {
        const tail = err.trim().split('\n').slice(-3).join(' | ');
        resolve({ error: `${path.basename(args[0] ?? cmd)} exited ${code} without a result: ${tail}` });
      } else resolve({ ...JSON.parse(line.slice('@@BENCH_RESULT '.length)), seconds });
    });
  });
}

const started = new Date();
const gitRev = spawnSync('git', ['rev-parse', '--short', 'HEAD'], {
  cwd: root,
  encoding: 'utf8',
}).stdout?.trim();
const gitDirty =
  (spawnSync('git', ['status', '--porcelain'], { cwd: root, encoding: 'utf8' }).stdout ?? '').trim() !== '';
const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
  node: process.version,
  loadAtStart: loadavg().map((x) => Number(x.toFixed(2))),
};
console.error(
  `bench: ${quick ? 'quick' : 'full'} run on ${machine.cores} × ${machine.cpu}, load ${machine.loadAtStart.join(' ')}`,
);

const results = {
  started: started.toISOString(),
  quick,
  git: gitRev ? `${gitRev}${gitDirty ? ' (uncommitted changes)' : ''}` : undefined,
  machine,
  engines: {},
  torchNote: undefined,
  architectures: {},
  members: k,
  threads: Number(threads),
};

if (only === 'all' || only === 'engines') {
  for (const engine of ['native', 'wasm']) {
    console.error(`bench: engine ${engine}`);
    results.engines[engine] = await child(process.execPath, [
      path.join(here, 'engine.mjs'),
      '--backend',
      engine,
      ...q,
    ]);
  }
  const probe = has('no-torch')
    ? { status: 1, stderr: 'skipped (--no-torch)' }
    : spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status === 0) {
    console.error('bench: engine torch');
    // One OpenBLAS thread: torch's own 2 intra-op threads plus OpenBLAS's would oversubscribe 2 cores.
    results.engines.torch = await child(
      python,
      [path.join(here, 'torch_bench.py'), '--json', '--threads', threads, ...q],
      {
        OPENBLAS_NUM_THREADS: '1',
        OMP_NUM_THREADS: threads,
      },
    );
  } else {
    const why = (probe.stderr || probe.error?.message || 'failed').toString().trim().split('\n').pop();
    results.torchNote = `PyTorch column skipped: \`${python} -c "import torch"\` failed (${why}). Install Debian's python3-torch.`;
    console.error(`bench: ${results.torchNote}`);
  }
}

if (only === 'all' || only === 'archs') {
  for (const arch of ['single', 'independent', 'linear-heads', 'lora', 'lora-r4', 'lora-top1']) {
    console.error(`bench: architecture ${arch}`);
    results.architectures[arch] = await child(
      process.execPath,
      [path.join(here, 'arch.mjs'), '--arch', arch, '--members', String(k), ...q],
      { QUORUM_THREADS: threads },
    );
  }
}

sampleLoad();
results.finished = new Date().toISOString();
results.minutes = Number(((Date.now() - started.getTime()) / 60000).toFixed(1));
results.load = {
  min: Number(Math.min(...loadSamples).toFixed(2)),
  max: Number(Math.max(...loadSamples).toFixed(2)),
  mean: Number((loadSamples.reduce((a, b) => a + b, 0) / loadSamples.length).toFixed(2)),
};

mkdirSync(outDir, { recursive: true });
writeFileSync(path.join(outDir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(path.join(outDir, 'latest.md'), renderMarkdown(results));
console.log(renderText(results));
console.log(
  `\nwritten: ${path.relative(root, path.join(outDir, 'latest.json'))}, ${path.relative(root, path.join(outDir, 'latest.md'))}`,
);
