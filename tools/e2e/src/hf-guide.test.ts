// The "Start from a Hugging Face model" guide's script, run as a user would: a real pretrained Llama folder
// (llama2.c's stories260K) → a k = 3 linear-heads ensemble trained on shipped AlpacaEval pairs → a Quorum
// reward-model folder → a LlamaForSequenceClassification export, read back with the same scores.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtinBackendRegistry, initCompute } from '@quorum/core';
import { loadTokenizer } from '@quorum/data';
import { builtinArchitectureRegistry, loadEnsemble, scoreAnswers } from '@quorum/ensemble';
import { loadHfRewardModel } from '@quorum/hf';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const work = mkdtempSync(path.join(tmpdir(), 'quorum-hf-guide-'));
const cwd = process.cwd();

afterAll(() => {
  process.chdir(cwd);
  rmSync(work, { recursive: true, force: true });
});

describe('docs/guides/hugging-face.md', () => {
  it('trains an ensemble from stories260K and exports it as LlamaForSequenceClassification', async () => {
    await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
    const model = path.join(root, 'packages/hf/models/stories260K');
    process.chdir(work);
    const argv = process.argv;
    process.argv = [argv[0] as string, 'hf-ensemble.ts', model];
    try {
      await import(path.join(root, 'docs/guides/snippets/hugging-face.ts'));
    } finally {
      process.argv = argv;
    }
    const config = JSON.parse(readFileSync(path.join(work, 'runs/hf-rm-export/config.json'), 'utf8'));
    expect(config.architectures).toEqual(['LlamaForSequenceClassification']);
    expect(config.num_labels).toBe(3);

    const rows = [
      {
        prompt: { instruction: 'Tell me a story about a cat.', input: '' },
        answer: 'Once upon a time, a cat sat.',
      },
      { prompt: { instruction: 'Tell me a story about a cat.', input: '' }, answer: 'No.' },
    ];
    const saved = await loadEnsemble(path.join(work, 'runs/hf-rm'), builtinArchitectureRegistry());
    const imported = await loadHfRewardModel(path.join(work, 'runs/hf-rm-export'));
    const tokenizer = await loadTokenizer(path.join(work, 'runs/hf-rm'), { onWarning: () => {} });
    const a = scoreAnswers(saved.ensemble, tokenizer, rows);
    expect(imported.tokenizer).toBeDefined();
    const b = scoreAnswers(imported.ensemble, imported.tokenizer ?? tokenizer, rows);
    expect(a).toHaveLength(3);
    for (let m = 0; m < 3; m++)
      for (let i = 0; i < rows.length; i++)
        expect(Math.abs((a[m]?.[i] as number) - (b[m]?.[i] as number))).toBeLessThan(1e-5);
    saved.ensemble.dispose();
    imported.ensemble.dispose();
  });
});
