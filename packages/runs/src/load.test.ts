// Policy sources (a Quorum folder or hf:DIR), the sequence length a run uses, and SFT's truncation counts,
// on the real stories260K folder (llama2.c, MIT) that @quorum/hf ships.
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { disposeGpt } from '@quorum/backbone';
import { builtinBackendRegistry, ConfigError, initCompute } from '@quorum/core';
import type { SftExample } from '@quorum/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_LENGTH, resolveMaxLength } from './length.js';
import { checkPolicySource, hfSourceDir, loadPolicyWithTokenizer } from './load.js';
import { toTokenExamples } from './sft.js';

const stories = fileURLToPath(new URL('../../hf/models/stories260K', import.meta.url));
const tmp = mkdtempSync(path.join(tmpdir(), 'quorum-load-'));

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('resolveMaxLength', () => {
  it("defaults to the model's context capped at TRL's 1024, and refuses more than the context", () => {
    expect(resolveMaxLength({ contextLength: 512 }, undefined)).toBe(512);
    expect(resolveMaxLength({ contextLength: 8192 }, undefined)).toBe(DEFAULT_MAX_LENGTH);
    expect(resolveMaxLength({ contextLength: 512 }, 256)).toBe(256);
    expect(() => resolveMaxLength({ contextLength: 512 }, 1024, '--max-length')).toThrow(
      /--max-length 1024 exceeds the model's context of 512 tokens \(max_position_embeddings\)/,
    );
    expect(() => resolveMaxLength({ contextLength: 512 }, 4)).toThrow(ConfigError);
  });
});

describe('policy sources', () => {
  it('reads hf:DIR and refuses hf: without a folder', () => {
    expect(hfSourceDir('hf:models/x')).toBe('models/x');
    expect(hfSourceDir('runs/policy')).toBeUndefined();
    expect(() => hfSourceDir('hf:')).toThrow(/hf: names no folder/);
  });

  it('checks a source before any work, with a hint for a Hugging Face folder passed without hf:', async () => {
    await checkPolicySource(`hf:${stories}`, '--init', 256);
    await expect(checkPolicySource(`hf:${stories}`, '--init', 1024)).rejects.toThrow(
      /exceeds the model's context/,
    );
    const missing = checkPolicySource(stories, '--init');
    await expect(missing).rejects.toBeInstanceOf(ConfigError);
    await expect(missing).rejects.toThrow(`pass hf:${stories}`);
    const empty = path.join(tmp, 'empty');
    await mkdir(empty);
    await expect(checkPolicySource(empty, '--policy')).rejects.toThrow(/quorum sft.*quorum import.*hf:DIR/);
    const hub = path.join(tmp, 'hub');
    await mkdir(hub);
    await writeFile(path.join(hub, 'config.json'), JSON.stringify({ model_type: 'mamba' }));
    await expect(checkPolicySource(`hf:${hub}`, '--init')).rejects.toThrow(/model_type/);
  });

  it("loads hf:DIR with the model's own tokenizer, and counts what truncation cuts or drops", async () => {
    const policy = await loadPolicyWithTokenizer(`hf:${stories}`);
    try {
      expect(policy.origin.kind).toBe('hf');
      expect(policy.config.contextLength).toBe(512);
      expect(policy.tokenizer.vocabSize).toBe(512);
      const examples: SftExample[] = [
        {
          id: 'short',
          prompt: { instruction: 'Once upon a time', input: '' },
          response: ' there was a cat.',
        },
        {
          id: 'long',
          prompt: { instruction: 'Tell a story.', input: '' },
          response: ' Lily went to the park and played with her ball all day long.'.repeat(8),
        },
      ];
      const long = policy.tokenizer.encode(examples[1]?.response ?? '').length;
      expect(long).toBeGreaterThan(64);
      const all = toTokenExamples(policy.tokenizer, examples, 512, 'left');
      expect(all).toMatchObject({ truncated: 0, dropped: 0 });
      const cut = toTokenExamples(policy.tokenizer, examples, 96, 'left');
      expect(cut).toMatchObject({ truncated: 1, dropped: 0 });
      expect(cut.examples[1]?.ids).toHaveLength(96);
      const dropped = toTokenExamples(policy.tokenizer, examples, 96, 'drop');
      expect(dropped).toMatchObject({ truncated: 0, dropped: 1 });
      expect(dropped.examples).toHaveLength(1);
    } finally {
      disposeGpt(policy.params);
    }
  });
});
