// Packages that install like real ones: start a private registry (Verdaccio on 127.0.0.1, no uplinks, so
// nothing is published anywhere else), version every workspace package with changesets and publish each
// with `npm publish` (its prepack builds it) from a temporary copy of the repository, then install
// `@quorum/aggregation` alone, and `@quorum/ensemble` + `@quorum/cli`, into fresh projects outside the
// repository and use them. Third-party packages (zod, tfjs, …) come from the default npm registry: the
// projects' .npmrc sends only the @quorum scope to Verdaccio. The repository itself is not touched.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const scratch = mkdtempSync(path.join(tmpdir(), 'quorum-registry-'));
const copy = path.join(scratch, 'repo');
const MINUTE = 60_000;

/** The environment of every child: no npm_config_* inherited from `npm test`, so each .npmrc decides. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_(config|package|lifecycle)_/i.test(k)) env[k] = v;
  }
  return { ...env, QUORUM_BACKEND: '', ...extra };
}

function run(cmd: string, args: readonly string[], cwd: string, timeout = 10 * MINUTE, env = cleanEnv()) {
  try {
    return execFileSync(cmd, args, { cwd, env, encoding: 'utf8', timeout, stdio: 'pipe' });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `${cmd} ${args.join(' ')} (in ${cwd}) failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`,
    );
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

let verdaccio: ChildProcess | undefined;
let verdaccioLog = '';
let registry = '';

async function startVerdaccio(): Promise<void> {
  const dir = path.join(scratch, 'verdaccio');
  mkdirSync(dir);
  const port = await freePort();
  registry = `http://127.0.0.1:${port}/`;
  // No uplinks: an unknown package is a 404, never a request to the internet.
  writeFileSync(
    path.join(dir, 'config.yaml'),
    [
      `storage: ${JSON.stringify(path.join(dir, 'storage'))}`,
      'uplinks: {}',
      'packages:',
      "  '@quorum/*':",
      '    access: $all',
      '    publish: $anonymous $all',
      '    unpublish: $anonymous $all',
      "  '**':",
      '    access: $all',
      'max_body_size: 100mb',
      'web:',
      '  enable: false',
      'log: { type: stdout, format: pretty, level: warn }',
      '',
    ].join('\n'),
  );
  verdaccio = spawn(
    path.join(root, 'node_modules/.bin/verdaccio'),
    ['--config', path.join(dir, 'config.yaml'), '--listen', `127.0.0.1:${port}`],
    { cwd: dir, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  verdaccio.stdout?.on('data', (d: Buffer) => {
    verdaccioLog += d.toString();
  });
  verdaccio.stderr?.on('data', (d: Buffer) => {
    verdaccioLog += d.toString();
  });
  const deadline = Date.now() + MINUTE;
  while (Date.now() < deadline) {
    if (verdaccio.exitCode !== null)
      throw new Error(`verdaccio exited (${verdaccio.exitCode}):\n${verdaccioLog}`);
    try {
      const res = await fetch(`${registry}-/ping`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`verdaccio did not answer on ${registry} within a minute:\n${verdaccioLog}`);
}

async function stopVerdaccio(): Promise<void> {
  const child = verdaccio;
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** The working tree (tracked and untracked files, no ignored ones: no node_modules, dist, build). */
function copyRepository(): void {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: root,
    encoding: 'utf8',
  })
    .split('\0')
    .filter((f) => f !== '' && existsSync(path.join(root, f)));
  for (const f of files) cpSync(path.join(root, f), path.join(copy, f), { recursive: false });
  // node_modules: the workspace's third-party packages, and @quorum/* pointing at the copy's packages.
  const modules = path.join(copy, 'node_modules');
  mkdirSync(modules);
  for (const entry of readdirSync(path.join(root, 'node_modules'))) {
    if (entry === '@quorum' || entry === '@quorum-examples' || entry === '.package-lock.json') continue;
    symlinkSync(path.join(root, 'node_modules', entry), path.join(modules, entry));
  }
  for (const scope of ['@quorum', '@quorum-examples']) {
    mkdirSync(path.join(modules, scope));
    // The workspace links are relative (../../packages/core), so the same link points into the copy.
    for (const entry of readdirSync(path.join(root, 'node_modules', scope))) {
      const link = readlinkSync(path.join(root, 'node_modules', scope, entry));
      symlinkSync(link, path.join(modules, scope, entry));
    }
  }
}

// biome-ignore lint/suspicious/noExplicitAny: package.json files are read loosely
function readJson(file: string): any {
  return JSON.parse(readFileSync(file, 'utf8'));
}

function workspaces(): string[] {
  return readJson(path.join(copy, 'package.json')).workspaces as string[];
}

/** The npmrc of a consumer: @quorum from Verdaccio, everything else from the default npm registry. */
function consumer(name: string): string {
  const dir = path.join(scratch, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  writeFileSync(
    path.join(dir, '.npmrc'),
    `@quorum:registry=${registry}\nregistry=https://registry.npmjs.org/\nfund=false\naudit=false\n`,
  );
  return dir;
}

const published = new Map<string, string>();

beforeAll(async () => {
  await startVerdaccio();
  copyRepository();
  // Version with the repository's pending changesets (this rewrites package.json files: in the copy only).
  run(process.execPath, [path.join(copy, 'node_modules/@changesets/cli/bin.js'), 'version'], copy);
  const auth = `--${registry.replace(/^http:/, '')}:_authToken=anonymous`;
  for (const ws of workspaces()) {
    const pkg = readJson(path.join(copy, ws, 'package.json'));
    if (pkg.private === true) continue;
    // prepack builds the package (from a clean dist) before npm packs it.
    run(
      'npm',
      ['publish', '--registry', registry, auth, '--access', 'public'],
      path.join(copy, ws),
      15 * MINUTE,
    );
    published.set(pkg.name, pkg.version);
  }
}, 60 * MINUTE);

afterAll(async () => {
  await stopVerdaccio();
  rmSync(scratch, { recursive: true, force: true });
});

describe('publish to a registry, install from it', () => {
  it('publishes every public workspace package, built, with resolvable @quorum ranges and shipped sources', async () => {
    expect([...published.keys()].sort()).toEqual(
      expect.arrayContaining(['@quorum/aggregation', '@quorum/cli', '@quorum/core', '@quorum/ensemble']),
    );
    for (const [name, version] of published) {
      const res = await fetch(`${registry}${name.replace('/', '%2f')}`);
      expect(res.status, name).toBe(200);
      const doc = (await res.json()) as {
        versions: Record<string, { dependencies?: Record<string, string> }>;
      };
      const manifest = doc.versions[version];
      expect(manifest, `${name}@${version}`).toBeDefined();
      for (const [dep, range] of Object.entries(manifest?.dependencies ?? {})) {
        if (dep.startsWith('@quorum/')) {
          expect(published.has(dep), `${name} depends on unpublished ${dep}`).toBe(true);
          expect(range, `${name} → ${dep}`).toMatch(/^\^/);
        }
      }
    }
  });

  it('installs @quorum/aggregation alone and aggregates a row of member rewards with lcb', () => {
    const dir = consumer('uses-aggregation');
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '@quorum/aggregation'], dir);
    const installed = readJson(path.join(dir, 'node_modules/@quorum/aggregation/package.json'));
    expect(installed.version).toBe(published.get('@quorum/aggregation'));
    expect(existsSync(path.join(dir, 'node_modules/@quorum/core/dist/index.js'))).toBe(true);
    // Source maps point at sources that are shipped.
    const map = readJson(path.join(dir, 'node_modules/@quorum/aggregation/dist/builtins.js.map'));
    for (const source of map.sources as string[]) {
      expect(existsSync(path.join(dir, 'node_modules/@quorum/aggregation/dist', source)), source).toBe(true);
    }
    expect(existsSync(path.join(dir, 'node_modules/@quorum/aggregation/src/builtins.test.ts'))).toBe(false);
    writeFileSync(
      path.join(dir, 'aggregate.mjs'),
      [
        "import { createAggregationRule } from '@quorum/aggregation';",
        '// rewards [k = 2, B = 1]: mean 2, population std 1, so lcb with β = 1 is 1',
        "const { aggregate } = createAggregationRule(['lcb', { beta: 1 }]).aggregateArrays([[1], [3]]);",
        'console.log(JSON.stringify(aggregate));',
      ].join('\n'),
    );
    const printed = run(process.execPath, ['aggregate.mjs'], dir).trim().split('\n').at(-1);
    expect(JSON.parse(printed as string)).toEqual([1]);
  });

  it('installs @quorum/ensemble and @quorum/cli, runs `npx quorum info` and scores a row', () => {
    const dir = consumer('uses-cli');
    // Install scripts run: @quorum/kernels-native builds its addon (or records why not, and exits 0).
    run(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '@quorum/ensemble', '@quorum/cli'],
      dir,
      20 * MINUTE,
    );
    const info = JSON.parse(run('npx', ['--no-install', 'quorum', 'info', '--json'], dir)) as {
      backend: { name: string; reason: string };
      strategies: Record<string, string[]>;
      versions: Record<string, string>;
    };
    expect(['native', 'wasm', 'cpu']).toContain(info.backend.name);
    expect(info.backend.reason.length).toBeGreaterThan(0);
    expect(info.versions['@quorum/cli']).toBe(published.get('@quorum/cli'));
    expect(info.strategies['aggregation-rule']).toContain('lcb');
    const status = path.join(dir, 'node_modules/@quorum/kernels-native/build-status.json');
    expect(existsSync(status)).toBe(true); // the install script ran and said what happened
    const built = readJson(status) as { ok: boolean; reason?: string };
    // Built from the tarball, the addon is the chosen backend; when it could not be built, the status says why.
    if (built.ok) expect(info.backend.name).toBe('native');
    else expect(built.reason?.length).toBeGreaterThan(0);
    console.log(
      `installed CLI: backend ${info.backend.name}; native addon ${built.ok ? 'built' : `not built (${built.reason})`}`,
    );

    // A tiny untrained reward model, saved with the installed packages' public entry points.
    writeFileSync(
      path.join(dir, 'save-model.mjs'),
      [
        "import { builtinBackendRegistry, initCompute, Rng } from '@quorum/core';",
        "import { gptPreset } from '@quorum/backbone';",
        "import { projectTokenizer } from '@quorum/data';",
        "import { builtinArchitectureRegistry, saveEnsemble } from '@quorum/ensemble';",
        "await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });",
        'const tokenizer = projectTokenizer();',
        "const gptConfig = gptPreset('nano', { vocabSize: tokenizer.vocabSize, dModel: 32, nLayers: 2, nHeads: 2, contextLength: 64 });",
        "const ensemble = builtinArchitectureRegistry().create('linear-heads').build({ gptConfig, members: 3, rng: new Rng(0) });",
        "await saveEnsemble('rm', ensemble, { architectureSource: '@quorum/ensemble', tokenizer });",
      ].join('\n'),
    );
    run(process.execPath, ['save-model.mjs'], dir);
    writeFileSync(
      path.join(dir, 'answers.jsonl'),
      `${JSON.stringify({ instruction: 'Name a colour.', output: 'Red.' })}\n`,
    );
    run(
      'npx',
      [
        '--no-install',
        'quorum',
        'score',
        '--model',
        'rm',
        '--input',
        'answers.jsonl',
        '--output',
        'scored.jsonl',
        '--agg',
        'lcb',
      ],
      dir,
    );
    const rows = readFileSync(path.join(dir, 'scored.jsonl'), 'utf8').trim().split('\n');
    expect(rows).toHaveLength(1);
    const row = JSON.parse(rows[0] as string) as { output: string; rewards: number[]; reward: number };
    expect(row.output).toBe('Red.');
    expect(row.rewards).toHaveLength(3);
    expect(Number.isFinite(row.reward)).toBe(true);
  });
});
