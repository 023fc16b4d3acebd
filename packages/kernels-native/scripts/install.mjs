// Builds the native addon with node-gyp at install time. It ALWAYS exits 0: npm fails a whole
// `npm ci` when a workspace package's install script fails, and the native backend is optional.
// The outcome goes to build-status.json, which `quorum info` and the backend's probe() read.
//   QUORUM_NATIVE_SKIP=1  skip the build (recorded as the reason)
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const statusFile = path.join(root, 'build-status.json');
const addonFile = path.join(root, 'build', 'Release', 'quorum_native.node');

function tail(text, lines = 25) {
  return text.trim().split('\n').slice(-lines).join('\n');
}

function writeStatus(status) {
  const full = {
    ...status,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    at: new Date().toISOString(),
  };
  try {
    writeFileSync(statusFile, `${JSON.stringify(full, null, 2)}\n`);
  } catch (error) {
    console.warn(`@quorum/kernels-native: could not write ${statusFile}: ${error.message}`);
  }
  const line = full.ok
    ? 'native kernels built'
    : `native kernels not built (${full.reason}); Quorum will use the wasm backend`;
  console.log(`@quorum/kernels-native: ${line}`);
}

/** node-gyp's CLI: the one npm runs scripts with, else the one inside npm, else one on PATH. */
function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  if (process.env.npm_execpath) {
    candidates.push(
      path.join(
        path.dirname(process.env.npm_execpath),
        '..',
        'node_modules',
        'node-gyp',
        'bin',
        'node-gyp.js',
      ),
    );
  }
  const npmOnPath = spawnSync('sh', ['-c', 'readlink -f "$(command -v npm)"'], {
    encoding: 'utf8',
  }).stdout?.trim();
  if (npmOnPath)
    candidates.push(
      path.join(path.dirname(npmOnPath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    );
  for (const prefix of ['/usr/lib', '/usr/local/lib'])
    candidates.push(
      path.join(prefix, 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    );
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed as a package
  }
  return candidates.find((c) => existsSync(c));
}

function main() {
  if (process.env.QUORUM_NATIVE_SKIP === '1') {
    writeStatus({ ok: false, reason: 'build skipped (QUORUM_NATIVE_SKIP=1)' });
    return;
  }
  if (process.arch !== 'x64') {
    writeStatus({ ok: false, reason: `the native kernels need an x86-64 CPU (this is ${process.arch})` });
    return;
  }
  const cxx = process.env.CXX || 'c++';
  const compiler = spawnSync(cxx, ['--version'], { encoding: 'utf8' });
  if (compiler.error || compiler.status !== 0) {
    writeStatus({
      ok: false,
      reason: `no C++ compiler (${cxx} not found)`,
      hint: 'install g++ and make, then run `npm rebuild @quorum/kernels-native`',
    });
    return;
  }
  const nodeGyp = findNodeGyp();
  if (nodeGyp === undefined) {
    writeStatus({
      ok: false,
      reason: 'node-gyp not found',
      hint: 'install node-gyp (it ships with npm), then run `npm rebuild @quorum/kernels-native`',
    });
    return;
  }
  // Offline builds: use the headers installed with Node (e.g. /usr/include/node) when present.
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  const args = [nodeGyp, 'rebuild'];
  if (existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
  const build = spawnSync(process.execPath, args, {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (build.error || build.status !== 0) {
    writeStatus({
      ok: false,
      reason: `node-gyp failed (exit ${build.status ?? build.error?.message})`,
      detail: tail(`${build.stdout ?? ''}\n${build.stderr ?? ''}`),
      hint: 'fix the compiler error shown in detail, then run `npm rebuild @quorum/kernels-native`',
    });
    return;
  }
  // Load it in a child process, so a crash cannot fail the install either.
  const check = spawnSync(
    process.execPath,
    ['-e', `console.log(JSON.stringify(require(${JSON.stringify(addonFile)}).cpuFeatures()))`],
    {
      encoding: 'utf8',
    },
  );
  if (check.status !== 0) {
    writeStatus({ ok: false, reason: 'the addon built but does not load', detail: tail(check.stderr ?? '') });
    return;
  }
  writeStatus({ ok: true, addon: path.relative(root, addonFile), cpu: JSON.parse(check.stdout) });
}

try {
  main();
} catch (error) {
  writeStatus({
    ok: false,
    reason: `install script error: ${error instanceof Error ? error.message : String(error)}`,
  });
}
process.exit(0);
