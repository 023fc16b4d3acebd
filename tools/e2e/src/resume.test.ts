// Crash and resume with real processes: SIGKILL a training run (train-rm, sft, ppo) after its first
// checkpoint, rerun the same command with --resume, and compare the final weights with an uninterrupted
// run's, byte for byte.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = path.join(root, 'apps/cli/bin/quorum.js');
const work = mkdtempSync(path.join(tmpdir(), 'quorum-resume-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * Every run uses the backend this machine picks now, named explicitly: weights from two backends differ in
 * the last bits, so if that backend stops loading mid-file (e.g. the native addon being rebuilt) a run fails
 * saying so instead of a comparison failing for no visible reason.
 */
function defaultBackend(): string {
  const r = spawnSync(process.execPath, [bin, 'info', '--json'], {
    cwd: root,
    env: { ...process.env, QUORUM_BACKEND: '' },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`quorum info failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { backend: { name: string } }).backend.name;
}

const env = {
  ...process.env,
  QUORUM_QUIET: '1',
  QUORUM_CACHE: path.join(work, 'cache'),
  QUORUM_BACKEND: defaultBackend(),
};

function run(
  args: string[],
  childEnv: NodeJS.ProcessEnv = env,
): { code: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: root,
    env: childEnv,
    encoding: 'utf8',
    timeout: 900_000,
  });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

interface Stopped {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/** Starts a run and sends it `kill` as soon as `ready()` is true. Resolves with how it ended and its stderr. */
function signalWhen(
  args: string[],
  ready: () => boolean,
  kill: NodeJS.Signals,
  childEnv: NodeJS.ProcessEnv = env,
): Promise<Stopped> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [bin, ...args], {
      cwd: root,
      env: childEnv,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setInterval(() => {
      if (ready()) {
        clearInterval(timer);
        child.kill(kill);
      }
    }, 50);
    child.on('close', (code, signal) => {
      clearInterval(timer);
      resolve({ code, signal, stderr });
    });
    child.on('error', reject);
  });
}

/** Starts a run and SIGKILLs it as soon as `ready()` is true. Resolves with the exit signal. */
async function killWhen(args: string[], ready: () => boolean): Promise<NodeJS.Signals | null> {
  return (await signalWhen(args, ready, 'SIGKILL')).signal;
}

/** Fails unless every file is byte-identical in the two folders. */
function expectSameFiles(a: string, b: string, files: readonly string[]): void {
  for (const file of files) {
    const x = readFileSync(path.join(a, file));
    const y = readFileSync(path.join(b, file));
    expect(x.length, `${file} is empty`).toBeGreaterThan(0);
    expect(Buffer.compare(x, y), `${file} differs`).toBe(0);
  }
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
    expectSameFiles(whole, killed, ['backbone.safetensors', 'heads.safetensors']);
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

// SFT and PPO read small files written here (the shipped AlpacaEval data takes ~10 s to tokenise), so each
// run spends its time training: nano models, 12 steps, a resumable state after every step.
const sftData = path.join(work, 'sft.jsonl');
const prefData = path.join(work, 'prefs.jsonl');
const promptData = path.join(work, 'prompts.jsonl');

beforeAll(() => {
  const colours = ['red', 'green', 'blue', 'yellow', 'purple', 'orange', 'black', 'white'];
  const rows = (n: number, row: (colour: string, i: number) => object): string =>
    Array.from(
      { length: n },
      (_, i) => `${JSON.stringify(row(colours[i % colours.length] as string, i))}\n`,
    ).join('');
  writeFileSync(
    sftData,
    rows(48, (c, i) => ({
      instruction: `Name a thing that is ${c}.`,
      input: i % 2 === 0 ? `Example ${i}` : '',
      output: `A ${c} thing is number ${i}, for instance a ${c} ball.`,
    })),
  );
  writeFileSync(
    prefData,
    rows(40, (c, i) => ({
      prompt: `Name a thing that is ${c}.`,
      chosen: `A ${c} ball, number ${i}.`,
      rejected: 'I do not know.',
    })),
  );
  writeFileSync(
    promptData,
    rows(16, (c) => ({ instruction: `Name a thing that is ${c}.` })),
  );
});

/** SFT's start and resume messages are progress lines, which QUORUM_QUIET=1 silences. */
const loud = { ...env, QUORUM_QUIET: '0' };

const sftArgs = (out: string): string[] => [
  'sft',
  '--size',
  'nano',
  '--preset',
  'smoke',
  '--data',
  sftData,
  '--max-steps',
  '12',
  '--batch-size',
  '4',
  '--checkpoint-every',
  '1',
  '--out',
  out,
];

/** The uninterrupted SFT run, made once: the reference weights and PPO's starting policy. */
let sftWholeDir: string | undefined;
function sftWhole(): string {
  if (sftWholeDir === undefined) {
    const dir = path.join(work, 'sft-whole');
    const r = run(sftArgs(dir));
    expect(r.code, r.stderr).toBe(0);
    sftWholeDir = dir;
  }
  return sftWholeDir;
}

describe('sft: SIGKILL, Ctrl-C and --resume (real processes)', () => {
  it('a killed run resumed with --resume ends with the same weights as an uninterrupted one', async () => {
    const whole = sftWhole();
    const killed = path.join(work, 'sft-killed');

    const signal = await killWhen(sftArgs(killed), () => stateSteps(killed).length >= 1);
    expect(signal).toBe('SIGKILL');
    expect(existsSync(path.join(killed, 'quorum.json'))).toBe(false);

    const again = run(sftArgs(killed));
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/--resume[\s\S]*--overwrite/);

    const resumed = run([...sftArgs(killed), '--resume'], loud);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming from step [1-9]/);
    expectSameFiles(whole, killed, ['backbone.safetensors']);
  });

  it('--resume in an empty --out starts fresh and says so; Ctrl-C stops after a checkpoint; --resume finishes identically', async () => {
    const whole = sftWhole();
    const out = path.join(work, 'sft-sigint');
    const args = [...sftArgs(out), '--resume'];

    const stopped = await signalWhen(args, () => stateSteps(out).length >= 1, 'SIGINT', loud);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stderr).toMatch(/no checkpoint yet: starting fresh/);
    expect(stopped.stderr).toMatch(/SIGINT received: saving a checkpoint/);
    expect(stateSteps(out).length).toBeGreaterThanOrEqual(1);
    expect(existsSync(path.join(out, 'quorum.json'))).toBe(false);

    const resumed = run(args, loud);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming from step [1-9]/);
    expect(existsSync(path.join(out, 'quorum.json'))).toBe(true);
    expectSameFiles(whole, out, ['backbone.safetensors']);
  });
});

describe('ppo: SIGKILL and --resume (real processes)', () => {
  const reward = path.join(work, 'ppo-reward');
  const rewardArgs = (out: string): string[] => [
    'train-rm',
    '--arch',
    'linear-heads',
    '--members',
    '2',
    '--init',
    'scratch',
    '--preset',
    'smoke',
    '--data',
    prefData,
    '--format',
    'trl',
    '--eval-fraction',
    '0.2',
    '--max-steps',
    '2',
    '--out',
    out,
  ];
  beforeAll(() => {
    const r = run(rewardArgs(reward));
    expect(r.code, r.stderr).toBe(0);
  });

  it('train-rm --resume with another --seed is refused, listing saved and new values; --force-resume goes on and records both', () => {
    const out = path.join(work, 'rm-seed');
    cpSync(reward, out, { recursive: true });
    const refused = run([...rewardArgs(out), '--resume', '--seed', '1']);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(/other settings; resuming would mix two runs:\s+seed: saved 0, now 1/);
    expect(refused.stderr).toMatch(/--force-resume/);
    const forced = run([...rewardArgs(out), '--force-resume', '--seed', '1'], loud);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/warning: resuming with settings that differ[\s\S]*seed: saved 0, now 1/);
    const manifest = JSON.parse(readFileSync(path.join(out, 'quorum.json'), 'utf8')) as {
      training: { forcedResumes: { differences: { setting: string; saved: unknown; now: unknown }[] }[] };
    };
    expect(manifest.training.forcedResumes[0]?.differences).toContainEqual({
      setting: 'seed',
      saved: 0,
      now: 1,
    });
  });

  const ppoArgs = (out: string): string[] => [
    'ppo',
    '--policy',
    sftWhole(),
    '--reward',
    reward,
    '--prompts',
    promptData,
    '--steps',
    '8',
    '--rollout-batch',
    '4',
    '--step-batch',
    '2',
    '--max-new-tokens',
    '8',
    '--lr',
    '1e-4',
    '--ppo-opt',
    'checkpointEvery=1',
    '--out',
    out,
  ];

  it('a killed run (started with --resume in an empty --out) resumes to the same weights as an uninterrupted one', async () => {
    const whole = path.join(work, 'ppo-whole');
    const killed = path.join(work, 'ppo-killed');
    const first = run(ppoArgs(whole));
    expect(first.code, first.stderr).toBe(0);

    // The resume messages are progress lines, which QUORUM_QUIET=1 silences.
    const stopped = await signalWhen(
      [...ppoArgs(killed), '--resume'],
      () => stateSteps(killed).length >= 1,
      'SIGKILL',
      loud,
    );
    expect(stopped.signal).toBe('SIGKILL');
    expect(stopped.stderr).toMatch(/no checkpoint in \S+; starting at step 0/);
    expect(existsSync(path.join(killed, 'quorum.json'))).toBe(false);

    const again = run(ppoArgs(killed));
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/--resume[\s\S]*--overwrite/);

    const resumed = run([...ppoArgs(killed), '--resume'], loud);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/ppo: resuming at step [1-9]/);
    expectSameFiles(whole, killed, ['backbone.safetensors', 'value-head.safetensors']);
    // metrics.jsonl: the steps past the checkpoint that the killed run logged were dropped and redone, so
    // both runs logged the same steps with the same figures (all but the wall time).
    expect(metricsWithoutTime(killed)).toEqual(metricsWithoutTime(whole));
    expect(metricsWithoutTime(whole).map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
});

/** metrics.jsonl rows without `seconds`. */
function metricsWithoutTime(dir: string): { step: number }[] {
  return readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const { seconds: _, ...rest } = JSON.parse(line) as { step: number; seconds: number };
      return rest;
    });
}
