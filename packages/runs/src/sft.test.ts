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

describe('runSft with objective lm', () => {
  const lm = (out: string): SftRunOptions => ({
    ...base(out),
    objective: 'lm',
    data: 'corpus',
    maxDocuments: 150,
    contextLength: 32,
    maxSteps: 12,
    batchSize: 8,
    checkpointEvery: 6,
  });

  it('pretrains a nano model on packed corpus blocks: the held-out loss falls and quorum.json says what it read', async () => {
    const out = path.join(dir, 'lm');
    const lines: string[] = [];
    const r = await runSft(
      { ...lm(out), command: 'quorum sft --objective lm' },
      { update: () => {}, log: (m) => lines.push(m) },
    );
    expect(r.corpus).toMatchObject({ documents: 148, evalDocuments: 2 });
    expect(r.corpus?.tokens).toBeGreaterThan(10_000);
    expect(r.corpus?.blocks).toBe(r.examples.used);
    expect(r.corpus?.blocks).toBeGreaterThanOrEqual(Math.ceil((r.corpus?.tokens ?? 0) / 31));
    expect(r.tokensTrained).toBe(12 * 8 * 31);
    expect(r.evalLoss as number).toBeLessThan((r.initialEvalLoss as number) - 0.3);
    expect(lines.join('\n')).toMatch(/lm corpus: 148 documents \(2 held out\)/);
    const manifest = JSON.parse(readFileSync(path.join(out, 'quorum.json'), 'utf8')) as {
      training: Record<string, unknown>;
    };
    expect(manifest.training).toMatchObject({
      objective: 'lm',
      corpusSources: ['alpaca-eval', 'hh-rlhf'],
      corpusSplit: 'train',
      command: 'quorum sft --objective lm',
      tokensTrained: 12 * 8 * 31,
    });
  });

  it('reads a JSONL file of {text}, sets the steps from maxTokens, and refuses another sample on resume', async () => {
    const file = path.join(dir, 'text.jsonl');
    const texts = Array.from({ length: 40 }, (_, i) => ({
      text: `Document ${i}: one two three four five six.`,
    }));
    writeFileSync(file, texts.map((t) => `${JSON.stringify(t)}\n`).join(''));
    const out = path.join(dir, 'lm-file');
    const opts: SftRunOptions = { ...lm(out), data: file, maxDocuments: undefined, maxTokens: 1000 };
    const { signal, progress } = stopAt(3);
    const first = await runSft({ ...opts, checkpointEvery: 3, signal }, progress);
    expect(first.stoppedEarly).toBe(true);
    expect(first.corpus).toMatchObject({ source: file, documents: 39, evalDocuments: 1 });
    const refused = runSft({ ...opts, checkpointEvery: 3, maxTokens: 2000, resume: true });
    await expect(refused).rejects.toThrow(/maxTokens: saved 1000, now 2000[\s\S]*maxSteps: saved 5, now 9/);
    const done = await runSft({ ...opts, checkpointEvery: 3, resume: true });
    expect(done.steps).toBe(Math.ceil(1000 / (8 * 31)));
  });

  it('refuses data of the other kind and lm flags without the lm objective', async () => {
    await expect(runSft({ ...base(path.join(dir, 'x')), data: 'corpus' })).rejects.toThrow(
      'needs the lm objective',
    );
    await expect(runSft({ ...lm(path.join(dir, 'x')), data: 'alpaca-eval' })).rejects.toThrow(
      '--data corpus --corpus alpaca-eval',
    );
    await expect(runSft({ ...base(path.join(dir, 'x')), maxTokens: 10 })).rejects.toThrow(
      '--max-tokens applies to the lm objective only',
    );
  });
});
