// `quorum eval` end to end: a tiny saved policy, the project tokenizer, and a real local fake LLM judge.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gptPreset, initGpt, savePolicy } from '@quorum/backbone';
import { builtinBackendRegistry, initCompute, Rng } from '@quorum/core';
import { projectTokenizer } from '@quorum/data';
import { type FakeLlmServer, startFakeLlmServer } from '@quorum/eval/testing';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerEval } from './eval.js';

let server: FakeLlmServer;
const tmp = mkdtempSync(path.join(tmpdir(), 'quorum-eval-cli-'));
const policyDir = path.join(tmp, 'policy');
const KEY = 'sk-cli-SECRET-42';

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  server = await startFakeLlmServer();
  const tokenizer = projectTokenizer();
  const config = gptPreset('nano', {
    vocabSize: tokenizer.vocabSize,
    dModel: 16,
    nLayers: 1,
    nHeads: 2,
    contextLength: 96,
  });
  await savePolicy(policyDir, {
    config,
    params: initGpt(config, new Rng(1)),
    vocab: { id: tokenizer.id, size: tokenizer.vocabSize, json: tokenizer.vocab.toJSON() },
  });
});
afterAll(async () => {
  await server.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function run(args: string[]): Promise<string> {
  const program = new Command('quorum')
    .option('--backend <name>')
    .option('--plugin <p>')
    .option('--config <file>')
    .exitOverride();
  registerEval(program);
  const printed: string[] = [];
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    printed.push(String(s));
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    await program.parseAsync(['node', 'quorum', '--backend', 'wasm', 'eval', ...args]);
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  return printed.join('');
}

const judgeArgs = () => [
  '--judge',
  'llm',
  '--judge-opt',
  `baseUrl=${server.url}`,
  '--judge-opt',
  'model=fake-gpt',
  '--judge-opt',
  `apiKey=${KEY}`,
  '--judge-opt',
  'backoffMs=1',
];

describe('quorum eval', () => {
  it('grades a policy on AlpacaEval with --limit 2 and caches the verdicts', async () => {
    const out = path.join(tmp, 'alpaca');
    const printed = await run([
      '--bench',
      'alpaca-eval',
      '--policy',
      policyDir,
      ...judgeArgs(),
      '--limit',
      '2',
      '--max-new-tokens',
      '8',
      '--out',
      out,
    ]);
    expect(printed).toMatch(/AlpacaEval win rate vs text_davinci_003: \d+\.\d ± \S+ \(n=2: /);
    expect(server.requests).toHaveLength(2);
    const summary = JSON.parse(readFileSync(path.join(out, 'eval.json'), 'utf8')) as {
      n: number;
      failed: number;
    };
    expect(summary).toMatchObject({ n: 2, failed: 0 });
    expect(readFileSync(path.join(out, 'answers.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);
    for (const f of ['eval.json', 'answers.jsonl', 'judge-cache.jsonl'])
      expect(readFileSync(path.join(out, f), 'utf8')).not.toContain(KEY);
    // a non-empty --out needs --resume (which asks the judge nothing twice) or --overwrite
    await expect(
      run([
        '--bench',
        'alpaca-eval',
        '--policy',
        policyDir,
        ...judgeArgs(),
        '--limit',
        '2',
        '--max-new-tokens',
        '8',
        '--out',
        out,
      ]),
    ).rejects.toThrow(/--resume/);
    server.requests.length = 0;
    const again = await run([
      '--bench',
      'alpaca-eval',
      '--policy',
      policyDir,
      ...judgeArgs(),
      '--limit',
      '2',
      '--max-new-tokens',
      '8',
      '--out',
      out,
      '--resume',
    ]);
    expect(again).toBe(printed);
    expect(server.requests).toHaveLength(0);
  });

  it('grades both MT-Bench turns with the 1–10 prompt', async () => {
    server.requests.length = 0;
    const out = path.join(tmp, 'mt');
    const printed = await run([
      '--bench',
      'mt-bench',
      '--policy',
      policyDir,
      ...judgeArgs(),
      '--limit',
      '2',
      '--max-new-tokens',
      '8',
      '--out',
      out,
    ]);
    expect(printed).toMatch(
      /MT-Bench mean score: \d+\.\d\d ± \S+ \(turn 1 \d+\.\d\d, turn 2 \d+\.\d\d; 4 answers\)/,
    );
    expect(server.requests).toHaveLength(4);
    const turn2 = JSON.parse(server.requests[1]!.body) as { messages: { content: string }[] };
    expect(turn2.messages[1]!.content).toContain('### Assistant A:');
    expect(existsSync(path.join(out, 'judge-cache.jsonl'))).toBe(true);
  });

  it('sends --judge-opt apiKey=000123 as typed (was Bearer 123)', async () => {
    server.requests.length = 0;
    const args = judgeArgs().map((a) => (a === `apiKey=${KEY}` ? 'apiKey=000123' : a));
    await run([
      '--bench',
      'alpaca-eval',
      '--policy',
      policyDir,
      ...args,
      '--limit',
      '1',
      '--max-new-tokens',
      '4',
    ]);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.headers.authorization).toBe('Bearer 000123');
  });
});
