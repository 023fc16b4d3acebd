// `runSft` stopped and resumed (issue 16): the held-out loss before training survives the resume, and a
// resume with another seed is refused unless forced (then quorum.json records both values).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { builtinBackendRegistry, ConfigError, DataError, initCompute } from '@quorum/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunProgress } from './progress.js';
import { runSft, type SftRunOptions } from './sft.js';

const dir = mkdtempSync(path.join(tmpdir(), 'quorum-runs-sft-'));
const data = path.join(dir, 'sft.jsonl');
beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  const rows = Array.from({ length: 24 }, (_, i) => ({
    instruction: `Count to ${i}.`,
    output: `${i} ${i + 1}`,
  }));
  writeFileSync(data, rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = (out: string): SftRunOptions => ({
  size: 'nano',
  contextLength: 32,
  data,
  out,
  maxSteps: 4,
  batchSize: 4,
  checkpointEvery: 2,
  seed: 0,
  resume: false,
});

/** Aborts once the run reports step `at` (the slice ends with a checkpoint, then the run stops). */
function stopAt(at: number): { signal: AbortSignal; progress: RunProgress } {
  const controller = new AbortController();
  return {
    signal: controller.signal,
    progress: { update: (done) => done >= at && controller.abort(), log: () => {} },
  };
}

describe('runSft resume', () => {
  it('keeps initialEvalLoss across a resume, refuses another seed, and records a forced resume', async () => {
    const out = path.join(dir, 'sft');
    const { signal, progress } = stopAt(2);
    const first = await runSft({ ...base(out), signal }, progress);
    expect(first.stoppedEarly).toBe(true);
    expect(first.initialEvalLoss).toBeGreaterThan(0);

    const refused = runSft({ ...base(out), resume: true, seed: 1 });
    await expect(refused).rejects.toThrow(ConfigError);
    await expect(refused).rejects.toThrow('seed: saved 0, now 1');

    const lines: string[] = [];
    const done = await runSft(
      { ...base(out), resume: true, seed: 1, forceResume: true },
      { update: () => {}, log: (m) => lines.push(m) },
    );
    expect(done.initialEvalLoss).toBe(first.initialEvalLoss);
    expect(lines.join('\n')).toMatch(
      /warning: resuming with settings that differ[\s\S]*seed: saved 0, now 1/,
    );
    const manifest = JSON.parse(readFileSync(path.join(out, 'quorum.json'), 'utf8')) as {
      training: { initialEvalLoss: number; forcedResumes: unknown };
    };
    expect(manifest.training.initialEvalLoss).toBe(first.initialEvalLoss);
    expect(manifest.training.forcedResumes).toEqual([
      { step: 2, differences: [{ setting: 'seed', saved: 0, now: 1 }] },
    ]);
  });

  it('passes maxLineBytes to the loader: a longer line is a DataError at file:line', async () => {
    await expect(runSft({ ...base(path.join(dir, 'long')), maxLineBytes: 20 })).rejects.toThrow(DataError);
    await expect(runSft({ ...base(path.join(dir, 'long')), maxLineBytes: 20 })).rejects.toThrow(`${data}:1`);
  });
});
