// A Hugging Face model through the real CLI, as the hugging-face guide's command-line section runs it, on
// llama2.c's stories260K (real weights, its own tokenizer.json) and the shipped AlpacaEval data:
// import → generate (same text from the folder and from hf:DIR) → sft --init hf: → train-rm lora k = 3
// --init hf: → score → best-of-n offline → ppo --policy hf: → export (reward ensemble and policy), and
// the exported ensemble read back by @quorum/hf scores the rows as `quorum score` did.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtinBackendRegistry, initCompute } from '@quorum/core';
import { datasets, loadTokenizer } from '@quorum/data';
import { scoreAnswers } from '@quorum/ensemble';
import { loadHfRewardModel } from '@quorum/hf';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = path.join(root, 'apps/cli/bin/quorum.js');
const stories = 'packages/hf/models/stories260K';
const work = mkdtempSync(path.join(tmpdir(), 'quorum-hf-cli-'));
const at = (name: string): string => path.join(work, name);

/** Runs the CLI; `log` is stdout then stderr (results on stdout, progress and notes on stderr). */
function quorum(args: string[]): { stdout: string; log: string } {
  const result = spawnSync(process.execPath, [bin, ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, QUORUM_BACKEND: '' },
    timeout: 240_000,
  });
  expect(result.status, `quorum ${args.join(' ')}\n${result.stderr}`).toBe(0);
  return { stdout: result.stdout, log: result.stdout + result.stderr };
}

/** `quorum(line.split(' '))`: for long invocations without spaces inside arguments. */
function cli(line: string): { stdout: string; log: string } {
  return quorum(line.split(' '));
}

function json(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('stories260K through the CLI (real processes)', () => {
  it('imports, generates, fine-tunes, trains a lora ensemble, scores, runs Best-of-n and PPO, and exports', async () => {
    const imported = quorum(['import', stories, '--out', at('policy')]);
    expect(imported.log).toMatch(
      /imported llama \(5 layers, d 64, vocabulary 512, context 512; 47 F32 tensors\)/,
    );
    expect(json(at('policy/quorum.json')).training).toMatchObject({ kind: 'import', modelType: 'llama' });

    const greedy = ['--prompt', 'Tell a story about a cat.', '--temperature', '0', '--max-new-tokens', '16'];
    const fromFolder = quorum(['generate', '--model', at('policy'), ...greedy]).stdout;
    expect(fromFolder.trim().length).toBeGreaterThan(0);
    expect(quorum(['generate', '--model', `hf:${stories}`, ...greedy]).stdout).toBe(fromFolder);

    // SFT on 48 real AlpacaEval rows; the 8 longest do not fit in 160 tokens, so drop leaves them out and says so.
    const ae = await datasets.alpacaEval();
    const byLength = [...ae.sftExamples({ split: 'train' })].sort(
      (a, b) => a.response.length - b.response.length,
    );
    const rows = [...byLength.slice(0, 40), ...byLength.slice(-8)]; // 40 short answers, 8 that cannot fit
    writeFileSync(
      at('sft.jsonl'),
      `${rows.map((e) => JSON.stringify({ ...e.prompt, output: e.response })).join('\n')}\n`,
    );
    const sft = cli(
      `sft --init hf:${stories} --data ${at('sft.jsonl')} --max-steps 2 --max-length 160 --truncation drop --out ${at('sft')}`,
    );
    const counts = /on (\d+) examples of ≤ 160 tokens \(0 truncated, (\d+) dropped\)/.exec(sft.log);
    expect(counts, sft.log).not.toBeNull();
    expect(Number(counts?.[2])).toBeGreaterThan(0);
    expect(json(at('sft/quorum.json')).training).toMatchObject({ init: `hf:${stories}`, maxLength: 160 });

    // --max-length beyond max_position_embeddings is refused before any work.
    const tooLong = spawnSync(
      process.execPath,
      [bin, 'train-rm', '--init', `hf:${stories}`, '--max-length', '1024', '--out', at('never')],
      { cwd: root, encoding: 'utf8' },
    );
    expect(tooLong.status).toBe(2);
    expect(tooLong.stderr).toMatch(/--max-length 1024 exceeds the model's context of 512 tokens/);
    expect(existsSync(at('never'))).toBe(false);

    const rm = cli(
      `train-rm --arch lora --members 3 --init hf:${stories} --preset smoke --max-steps 2 --train-pairs 32 --max-length 160 --truncation left --out ${at('rm')}`,
    );
    expect(rm.log).toMatch(/32 pairs of ≤ 160 tokens \(\d+ truncated, 0 dropped/);
    expect(rm.log).toMatch(/accuracy \d+\.\d%/);
    const rmManifest = json(at('rm/quorum.json'));
    expect(rmManifest).toMatchObject({ architecture: 'lora', members: 3 });

    const answers = [
      {
        prompt: { instruction: 'Tell a story about a cat.', input: '' },
        answer: 'Once upon a time there was a cat.',
      },
      { prompt: { instruction: 'Tell a story about a cat.', input: '' }, answer: 'cat' },
    ];
    const lines = answers.map((r) => JSON.stringify({ ...r.prompt, output: r.answer }));
    writeFileSync(at('answers.jsonl'), `${lines.join('\n')}\n`);
    quorum(['score', '--model', at('rm'), '--input', at('answers.jsonl'), '--out', at('scored.jsonl')]);
    const scored = readFileSync(at('scored.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { rewards: number[]; reward: number });
    expect(scored).toHaveLength(2);
    for (const row of scored) expect(row.rewards).toHaveLength(3);

    const bon = cli(
      `best-of-n --reward ${at('rm')} --pool alpaca-eval --limit 2 --n 2 --agg mean,lcb --out ${at('bon')}`,
    );
    expect(bon.log).toMatch(/^lcb\s+\d+\.\d ± \d+\.\d/m);

    const ppo = cli(
      `ppo --policy hf:${stories} --reward ${at('rm')} --agg lcb --steps 2 --rollout-batch 4 --step-batch 4 --epochs 1 --max-new-tokens 12 --out ${at('ppo')}`,
    );
    expect(ppo.log).toMatch(/2 steps done/);
    expect(readFileSync(at('ppo/metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);

    // Export: the lora ensemble as base + one PEFT adapter folder per member, the PPO policy as ForCausalLM.
    quorum(['export', '--model', at('rm'), '--out', at('hf-rm')]);
    expect(json(at('hf-rm/base/config.json'))).toMatchObject({
      architectures: ['LlamaForSequenceClassification'],
      max_position_embeddings: 512,
    });
    for (const m of [0, 1, 2]) expect(existsSync(at(`hf-rm/member-${m}/adapter_config.json`))).toBe(true);
    quorum(['export', '--model', at('ppo'), '--out', at('hf-ppo')]);
    expect(json(at('hf-ppo/config.json')).architectures).toEqual(['LlamaForCausalLM']);
    const refused = spawnSync(
      process.execPath,
      [bin, 'export', '--model', at('ppo'), '--out', at('hf-ppo')],
      {
        cwd: root,
        encoding: 'utf8',
      },
    );
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/--overwrite/);

    // linear-heads exports as one folder with num_labels = k, which @quorum/hf reads back with the scores
    // `quorum score` wrote (lora's PEFT folders are checked against a merge in packages/hf's export tests).
    cli(
      `train-rm --arch linear-heads --members 3 --init hf:${stories} --preset smoke --max-steps 1 --train-pairs 16 --max-length 128 --out ${at('rm-lh')}`,
    );
    quorum(['score', '--model', at('rm-lh'), '--input', at('answers.jsonl'), '--out', at('scored-lh.jsonl')]);
    quorum(['export', '--model', at('rm-lh'), '--out', at('hf-lh')]);
    expect(json(at('hf-lh/config.json'))).toMatchObject({
      architectures: ['LlamaForSequenceClassification'],
      num_labels: 3,
    });
    const scoredLh = readFileSync(at('scored-lh.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { rewards: number[] });
    await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
    const back = await loadHfRewardModel(at('hf-lh'), { onWarning: () => {} });
    try {
      const tokenizer = back.tokenizer ?? (await loadTokenizer(at('rm-lh'), { onWarning: () => {} }));
      const members = scoreAnswers(back.ensemble, tokenizer, answers); // [k][rows]
      for (const [i, row] of scoredLh.entries())
        for (const [m, r] of row.rewards.entries())
          expect(Math.abs((members[m]?.[i] as number) - r)).toBeLessThan(1e-5);
    } finally {
      back.ensemble.dispose();
    }
  }, 600_000);
});
