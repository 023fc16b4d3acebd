// Crash and resume with real processes: SIGKILL a training run after its first checkpoint, rerun the
// same command with --resume, and compare the final weights with an uninterrupted run's.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = path.join(root, 'apps/cli/bin/quorum.js');
const work = mkdtempSync(path.join(tmpdir(), 'quorum-resume-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const env = { ...process.env, QUORUM_QUIET: '1', QUORUM_CACHE: path.join(work, 'cache') };

function run(args: string[]): { code: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: root,
    env,
    encoding: 'utf8',
    timeout: 900_000,
  });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

/** Starts a run and SIGKILLs it as soon as `ready()` is true. Resolves with the exit signal. */
function killWhen(args: string[], ready: () => boolean): Promise<NodeJS.Signals | null> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [bin, ...args], { cwd: root, env, stdio: 'ignore' });
    const timer = setInterval(() => {
      if (ready()) {
        clearInterval(timer);
        child.kill('SIGKILL');
      }
    }, 50);
    child.on('exit', (_code, signal) => {
      clearInterval(timer);
      resolve(signal);
    });
    child.on('error', reject);
  });
}

function stateSteps(dir: string): string[] {
  const state = path.join(dir, 'train-state');
  return existsSync(state) ? readdirSync(state).filter((d) => d.startsWith('step-')) : [];
}

const rmArgs = (out: string): string[] => [
  'train-rm',
  '--arch',
  'linear-heads',
  '--members',
  '2',
  '--init',
  'scratch',
  '--preset',
  'smoke',
  '--train-pairs',
  '96',
  '--max-steps',
  '6',
  '--checkpoint-every',
  '1',
  '--out',
  out,
];

describe('resume after SIGKILL (real processes)', () => {
  it('train-rm: a killed run resumed with --resume ends with the same weights as an uninterrupted one', async () => {
    const whole = path.join(work, 'rm-whole');
    const killed = path.join(work, 'rm-killed');
    expect(run(rmArgs(whole)).code).toBe(0);

    const signal = await killWhen(rmArgs(killed), () => stateSteps(killed).length >= 1);
    expect(signal).toBe('SIGKILL');
    expect(existsSync(path.join(killed, 'quorum.json'))).toBe(false);

    const again = run(rmArgs(killed));
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/--resume[\s\S]*--overwrite/);

    const resumed = run([...rmArgs(killed), '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    for (const file of ['backbone.safetensors', 'heads.safetensors']) {
      const a = readFileSync(path.join(whole, file));
      const b = readFileSync(path.join(killed, file));
      expect(Buffer.compare(a, b), `${file} differs`).toBe(0);
    }
  });

  it('--resume with no checkpoint yet starts fresh and says so', () => {
    const out = path.join(work, 'rm-fresh');
    const r = spawnSync(process.execPath, [bin, ...rmArgs(out), '--resume', '--max-steps', '1'], {
      cwd: root,
      env: { ...env, QUORUM_QUIET: '0' },
      encoding: 'utf8',
      timeout: 900_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/no saved state yet: starting from the beginning/);
  });

  it('Ctrl-C (SIGINT) stops cleanly after saving, and --resume finishes the run', async () => {
    const out = path.join(work, 'rm-sigint');
    const args = rmArgs(out);
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, [bin, ...args], { cwd: root, env, stdio: 'ignore' });
      const timer = setInterval(() => {
        if (stateSteps(out).length >= 1) {
          clearInterval(timer);
          child.kill('SIGINT');
        }
      }, 50);
      child.on('exit', (c) => {
        clearInterval(timer);
        resolve(c);
      });
      child.on('error', reject);
    });
    expect(code).toBe(0);
    expect(stateSteps(out).length).toBeGreaterThanOrEqual(1);
    expect(existsSync(path.join(out, 'quorum.json'))).toBe(false);
    const resumed = run([...args, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(existsSync(path.join(out, 'quorum.json'))).toBe(true);
  });
});
