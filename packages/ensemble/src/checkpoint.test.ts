// loadEnsemble returns the tokenizer of the folder: Quorum's vocab.json or a Hugging Face tokenizer.json.
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gptPreset } from '@quorum/backbone';
import { builtinBackendRegistry, CheckpointError, ConfigError, initCompute, Rng } from '@quorum/core';
import { HfTokenizer, loadTokenizer, projectTokenizer, Tokenizer, Vocab } from '@quorum/data';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadEnsemble, type SaveEnsembleOptions, saveEnsemble } from './checkpoint.js';
import { builtinArchitectureRegistry } from './module.js';

const storiesTokenizer = fileURLToPath(
  new URL('../../data/fixtures/stories260K-tokenizer/', import.meta.url),
);

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
});

const tiny = (vocabSize: number) =>
  builtinArchitectureRegistry()
    .create('linear-heads')
    .build({
      gptConfig: gptPreset('nano', { vocabSize, dModel: 16, nLayers: 1, nHeads: 2, contextLength: 16 }),
      members: 2,
      rng: new Rng(1),
    });

type TokenizerChoice = Pick<SaveEnsembleOptions, 'tokenizer' | 'vocab'>;

async function saved(
  vocabSize: number,
  choice: TokenizerChoice | { id: string; size: number; json: unknown },
  dir = mkdtempSync(path.join(tmpdir(), 'quorum-ckpt-')),
): Promise<string> {
  const e = tiny(vocabSize);
  const tokenizerOrVocab = 'id' in choice ? { vocab: choice } : choice;
  await saveEnsemble(dir, e, {
    architectureSource: '@quorum/ensemble',
    ...tokenizerOrVocab,
  } as SaveEnsembleOptions);
  e.dispose();
  return dir;
}

describe('loadEnsemble tokenizer', () => {
  it("returns Quorum's tokenizer from vocab.json (and vocabJson for older callers)", async () => {
    const tok = projectTokenizer();
    const dir = await saved(tok.vocabSize, { id: tok.id, size: tok.vocabSize, json: tok.vocab.toJSON() });
    const loaded = await loadEnsemble(dir, builtinArchitectureRegistry());
    expect(loaded.tokenizer).toBeInstanceOf(Tokenizer);
    expect(loaded.tokenizer.id).toBe(tok.id);
    expect([...loaded.tokenizer.encode('Hello there')]).toEqual([...tok.encode('Hello there')]);
    expect(Vocab.fromJSON(loaded.vocabJson).id).toBe(tok.id);
    loaded.ensemble.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('returns a Hugging Face tokenizer from tokenizer.json, checked against the manifest id', async () => {
    const hf = (await loadTokenizer(storiesTokenizer, { onWarning: () => {} })) as HfTokenizer;
    const dir = await saved(512, { id: hf.id, size: 512, json: {} });
    rmSync(path.join(dir, 'vocab.json'));
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'])
      copyFileSync(path.join(storiesTokenizer, f), path.join(dir, f));
    const loaded = await loadEnsemble(dir, builtinArchitectureRegistry(), { onWarning: () => {} });
    expect(loaded.tokenizer).toBeInstanceOf(HfTokenizer);
    expect([loaded.tokenizer.id, loaded.tokenizer.vocabSize, loaded.tokenizer.bosId]).toEqual([
      hf.id,
      512,
      1,
    ]);
    expect(loaded.vocabJson).toBeUndefined();
    loaded.ensemble.dispose();

    // another tokenizer in the folder than the one the ensemble was trained with
    const config = JSON.parse(readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
    writeFileSync(
      path.join(dir, 'tokenizer_config.json'),
      JSON.stringify({ ...config, add_bos_token: false }),
    );
    const call = () => loadEnsemble(dir, builtinArchitectureRegistry(), { onWarning: () => {} });
    await expect(call()).rejects.toThrow(CheckpointError);
    await expect(call()).rejects.toThrow(/quorum\.json field "vocab\.id": names tokenizer "hf-512-/);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a folder without tokenizer files is an error naming the folder', async () => {
    const tok = projectTokenizer();
    const dir = await saved(tok.vocabSize, { id: tok.id, size: tok.vocabSize, json: tok.vocab.toJSON() });
    rmSync(path.join(dir, 'vocab.json'));
    await expect(loadEnsemble(dir, builtinArchitectureRegistry())).rejects.toThrow(
      `${dir}: has neither vocab.json`,
    );
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('saveEnsemble tokenizer', () => {
  it("writes Quorum's tokenizer as the vocab.json and manifest the deprecated vocab option wrote", async () => {
    const tok = projectTokenizer();
    const viaTokenizer = await saved(tok.vocabSize, { tokenizer: tok });
    const viaVocab = await saved(tok.vocabSize, {
      id: tok.id,
      size: tok.vocabSize,
      json: tok.vocab.toJSON(),
    });
    const read = (dir: string, file: string) => readFileSync(path.join(dir, file), 'utf8');
    expect(read(viaTokenizer, 'vocab.json') === read(viaVocab, 'vocab.json')).toBe(true);
    const manifest = (dir: string) => ({ ...JSON.parse(read(dir, 'quorum.json')), createdAt: undefined });
    expect(manifest(viaTokenizer)).toEqual(manifest(viaVocab));
    expect(manifest(viaTokenizer).vocab).toEqual({ id: tok.id, size: tok.vocabSize });
    expect(readdirSync(viaTokenizer).sort()).toEqual(readdirSync(viaVocab).sort());
    const loaded = await loadEnsemble(viaTokenizer, builtinArchitectureRegistry());
    expect(loaded.tokenizer.id).toBe(tok.id);
    loaded.ensemble.dispose();
    for (const d of [viaTokenizer, viaVocab]) rmSync(d, { recursive: true, force: true });
  });

  it('saves a Hugging Face tokenizer with its own files, and loads it back as the same tokenizer', async () => {
    const hf = (await loadTokenizer(storiesTokenizer, { onWarning: () => {} })) as HfTokenizer;
    const quorum = projectTokenizer();
    // a folder that held a Quorum checkpoint: its vocab.json (which loadTokenizer prefers) must go
    const dir = await saved(quorum.vocabSize, { tokenizer: quorum });
    await saved(512, { tokenizer: hf }, dir);
    expect(existsSync(path.join(dir, 'vocab.json'))).toBe(false);
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'])
      expect(readFileSync(path.join(dir, f)).equals(readFileSync(path.join(storiesTokenizer, f))), f).toBe(
        true,
      );
    const manifest = JSON.parse(readFileSync(path.join(dir, 'quorum.json'), 'utf8'));
    expect(manifest.vocab).toEqual({ id: hf.id, size: 512 });
    const loaded = await loadEnsemble(dir, builtinArchitectureRegistry(), { onWarning: () => {} });
    expect(loaded.tokenizer).toBeInstanceOf(HfTokenizer);
    expect(loaded.tokenizer.id).toBe(hf.id);
    expect(loaded.tokenizer.files()).toEqual(hf.files());
    expect([...loaded.tokenizer.encode('Once upon a time')]).toEqual([...hf.encode('Once upon a time')]);
    loaded.ensemble.dispose();

    // and back to Quorum's: the Hugging Face files go, so loadTokenizer cannot pick them up later
    await saved(quorum.vocabSize, { tokenizer: quorum }, dir);
    expect(readdirSync(dir).filter((f) => f.startsWith('tokenizer') || f.startsWith('special'))).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the read options a Hugging Face tokenizer needs (a padded vocabulary) so the id matches', async () => {
    const padded = await loadTokenizer(storiesTokenizer, { vocabSize: 576, onWarning: () => {} });
    const dir = await saved(576, { tokenizer: padded });
    const loaded = await loadEnsemble(dir, builtinArchitectureRegistry(), { onWarning: () => {} });
    expect([loaded.tokenizer.id, loaded.tokenizer.vocabSize]).toEqual([padded.id, 576]);
    loaded.ensemble.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a tokenizer of another size than the backbone, and file names that are not plain', async () => {
    const tok = projectTokenizer();
    const dir = mkdtempSync(path.join(tmpdir(), 'quorum-ckpt-'));
    await expect(saved(512, { tokenizer: tok }, dir)).rejects.toThrow(ConfigError);
    await expect(saved(512, { tokenizer: tok }, dir)).rejects.toThrow(
      /the tokenizer has 4096 ids but the ensemble's backbone has vocabSize 512/,
    );
    const named = (name: string) => ({
      tokenizer: { id: tok.id, vocabSize: tok.vocabSize, files: () => ({ [name]: '{}' }) },
    });
    for (const name of ['../vocab.json', 'sub/tokenizer.json', '', 'quorum.json', 'heads.safetensors'])
      await expect(saved(tok.vocabSize, named(name), dir)).rejects.toThrow(
        `tokenizer file name ${JSON.stringify(name)} is not a plain file name`,
      );
    const none = { tokenizer: { id: tok.id, vocabSize: tok.vocabSize, files: () => ({}) } };
    await expect(saved(tok.vocabSize, none, dir)).rejects.toThrow('the tokenizer has no files to save');
    expect(readdirSync(dir)).toEqual([]); // refused before anything was written
    rmSync(dir, { recursive: true, force: true });
  });
});
