// `npm run bench`: engines (native / wasm / PyTorch) and ensemble architectures, measured side by side in
// one run on this machine. Every measurement runs in its own child process (tfjs has one global backend
// per process), one after another, never in parallel. See README.md.
//   npm run bench [-- --quick] [-- --only engines|archs|pretrained] [-- --no-torch] [-- --members 3]
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PRETRAINED_STEP_LAYERS, renderMarkdown, renderText } from './report.mjs';

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
  --only engines     only the engines table (or: --only archs, --only pretrained)
  --no-torch         skip the PyTorch column
  --members N        ensemble size k for the architectures table (default 3)
  --python PATH      python with torch 1.13 (default /usr/bin/python3)
  --threads N        threads of the native kernels and of PyTorch (default 2)
  --out DIR          where latest.json / latest.md go (default tools/bench/results)
  --torch-lib DIR    put DIR first on PyTorch's LD_LIBRARY_PATH (e.g. an unpacked libopenblas0-pthread's
                     usr/lib/x86_64-linux-gnu/openblas-pthread, so torch runs on OpenBLAS without installing it)
  --models LIST      pretrained rows: llama,gpt2 (default both)
  --step-layers N    pretrained pair step on N blocks (default llama 8, gpt2 6: the deepest that fit the
                     4 GiB wasm heap with AdamW state; 30 / 12 tries the full depth)`);
  process.exit(0);
}
const quick = has('quick');
const only = val('only', 'all');
const k = Number(val('members', 3));
const python = val('python', '/usr/bin/python3');
const threads = String(val('threads', 2));
const outDir = path.resolve(val('out', path.join(here, 'results')));
const q = quick ? ['--quick'] : [];
const torchLib = val('torch-lib', undefined);
const torchEnv = {
  // One OpenBLAS thread: torch's own 2 intra-op threads plus OpenBLAS's would oversubscribe 2 cores.
  OPENBLAS_NUM_THREADS: '1',
  OMP_NUM_THREADS: threads,
  ...(torchLib === undefined
    ? {}
    : {
        LD_LIBRARY_PATH: [path.resolve(torchLib), process.env.LD_LIBRARY_PATH]
          .filter((x) => x !== undefined && x !== '')
          .join(':'),
      }),
};

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
  pretrained: {},
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
    results.engines.torch = await child(
      python,
      [path.join(here, 'torch_bench.py'), '--json', '--threads', threads, ...q],
      torchEnv,
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

if (only === 'all' || only === 'pretrained') {
  // Pretrained-size rows (pretrained.mjs and torch_bench.py --model): per model, one child for the two forwards
  // (full depth) and one for the pair step (on fewer blocks: see --step-layers), per engine.
  const models = String(val('models', 'llama,gpt2')).split(',');
  const stepLayers = (m) => String(val('step-layers', PRETRAINED_STEP_LAYERS[m]));
  const free = spawnSync('free', ['-g'], { encoding: 'utf8' }).stdout ?? '';
  results.pretrainedMemory = {
    free: free
      .split('\n')
      .find((l) => l.startsWith('Mem:'))
      ?.replace(/\s+/g, ' '),
    availableGiB: Number((freemem() / 2 ** 30).toFixed(1)),
  };
  // Reps: one warm-up (the native one under tf.profile for the peak memory), then n timed calls, the median kept.
  const reps = { fwd: quick ? '1' : '5', step: quick ? '1' : '3' };
  results.pretrainedReps = reps;
  let torchOk = false;
  if (has('no-torch')) results.pretrainedTorchNote = 'PyTorch column skipped (--no-torch).';
  else {
    const probe = spawnSync(python, [path.join(here, 'torch_bench.py'), '--blas-only'], {
      encoding: 'utf8',
      env: { ...process.env, ...torchEnv },
    });
    if (probe.status !== 0) {
      const why = (probe.stderr || probe.error?.message || 'failed').toString().trim().split('\n').pop();
      results.pretrainedTorchNote = `PyTorch column skipped: ${python} cannot run torch_bench.py (${why}).`;
    } else {
      const blas = JSON.parse(probe.stdout.trim().split('\n').pop());
      if (/openblas|mkl|blis/.test(blas.kind)) torchOk = true;
      else
        results.pretrainedTorchNote =
          `PyTorch column skipped: torch runs on the ${blas.kind} BLAS (${blas.libs.join(', ')}), on which one ` +
          'pretrained-size row takes over 10 minutes and the ratio says nothing. Install libopenblas0-pthread, or ' +
          'unpack its .deb (dpkg-deb -x libopenblas0-pthread_*.deb DIR) and pass --torch-lib ' +
          'DIR/usr/lib/x86_64-linux-gnu/openblas-pthread.';
    }
  }
  if (results.pretrainedTorchNote) console.error(`bench: ${results.pretrainedTorchNote}`);
  for (const m of models) {
    const entry = { native: {}, torch: {} };
    results.pretrained[m] = entry;
    const runs = [
      ['fwd', 'lm_fwd,rm_fwd', []],
      ['step', 'rm_step', ['--layers', stepLayers(m)]],
    ];
    for (const [part, modes, extra] of runs) {
      console.error(`bench: pretrained ${m} ${part} native`);
      entry.native[part] = await child(
        process.execPath,
        [path.join(here, 'pretrained.mjs'), '--model', m, '--modes', modes, '--reps', reps[part], ...extra],
        { QUORUM_THREADS: threads },
      );
      if (!torchOk) continue;
      console.error(`bench: pretrained ${m} ${part} torch`);
      entry.torch[part] = await child(
        python,
        [
          path.join(here, 'torch_bench.py'),
          '--json',
          '--threads',
          threads,
          '--model',
          m,
          '--modes',
          modes,
          '--reps',
          reps[part],
          ...extra,
        ],
        // OpenBLAS on `threads` threads here: these rows are matmul-bound and ATen hands each GEMM to the BLAS
        // whole, so a 1-thread OpenBLAS would leave a core idle (measured 1.2–1.6× slower on GPT-2's forwards).
        { ...torchEnv, OPENBLAS_NUM_THREADS: threads },
      );
    }
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
