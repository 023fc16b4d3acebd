// Real processes: the committed bin shim, the built CLI, the environment a user has after `npm ci`.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = path.join(root, 'apps/cli/bin/quorum.js');

function quorum(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [bin, ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, QUORUM_BACKEND: '', ...env },
    timeout: 120_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('quorum info (real process)', () => {
  it('prints the active backend, its reason and the registered strategies as JSON', () => {
    const { code, stdout } = quorum(['info', '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as {
      backend: { name: string; threads: number; reason: string };
      strategies: Record<string, string[]>;
      versions: Record<string, string>;
    };
    expect(['native', 'wasm']).toContain(report.backend.name);
    expect(report.backend.reason.length).toBeGreaterThan(0);
    expect(report.strategies['compute-backend']).toEqual(
      expect.arrayContaining(['wasm', 'cpu', 'tensorflow']),
    );
    expect(report.versions['@quorum/core']).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('shows a plugin given with --plugin', () => {
    const plugin = path.join(root, 'apps/cli/test-fixtures/plugin-hello');
    const { code, stdout } = quorum(['info', '--plugin', plugin]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/slowpoke\s+test plugin backend/);
  });

  it('tells the user which package to install when the tensorflow backend is asked for', () => {
    const { code, stderr } = quorum(['info'], { QUORUM_BACKEND: 'tensorflow' });
    expect(code).toBe(2);
    expect(stderr).toMatch(/npm install @tensorflow\/tfjs-node/);
  });

  it('lists the commands in --help', () => {
    const { code, stdout } = quorum(['--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/info \[options\]\s+show versions/);
  });
});
