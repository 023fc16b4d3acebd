/**
 * Bad model folders: each is a typed error naming the file and the key (or tensor) and what is supported,
 * raised before any weight is assigned (no variable is left behind).
 */
import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  builtinBackendRegistry,
  CheckpointError,
  ConfigError,
  decodeSafetensors,
  encodeSafetensors,
  initCompute,
  type TensorRecord,
} from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadHfModel } from './load.js';

const fixture = (name: string): string => new URL(`../fixtures/${name}/`, import.meta.url).pathname;
let root: string;

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  root = await mkdtemp(path.join(tmpdir(), 'quorum-hf-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let count = 0;
/** A copy of a fixture folder to damage. */
async function copyOf(name: string): Promise<string> {
  const dir = path.join(root, `${name}-${count++}`);
  await cp(fixture(name), dir, { recursive: true });
  return dir;
}

async function editJson(file: string, edit: (json: Record<string, unknown>) => void): Promise<void> {
  const json = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  edit(json);
  await writeFile(file, JSON.stringify(json));
}

async function editWeights(
  file: string,
  edit: (tensors: Record<string, TensorRecord>) => void,
): Promise<void> {
  const { tensors } = decodeSafetensors(await readFile(file), file);
  edit(tensors);
  await writeFile(file, encodeSafetensors(tensors));
}

/** The error `loadHfModel(dir)` throws; no tensor may be left allocated. */
async function failure(
  dir: string,
): Promise<Error & { location?: { file?: string; field?: string }; hint?: string }> {
  const before = tf.memory().numTensors;
  const err = await loadHfModel(dir).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(tf.memory().numTensors).toBe(before);
  if (err === undefined) throw new Error(`loading ${dir} succeeded`);
  return err;
}

describe('loadHfModel rejects', () => {
  it('an unknown model_type, listing the supported ones', async () => {
    const dir = await copyOf('qwen2');
    await editJson(path.join(dir, 'config.json'), (j) => {
      j.model_type = 'mamba';
    });
    const err = await failure(dir);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.location).toEqual({ file: path.join(dir, 'config.json'), field: 'model_type' });
    expect(err.message).toContain('model_type "mamba" is not supported');
    expect(err.hint).toBe('Quorum loads model_type "llama", "qwen2", "gpt2", "gpt_neox"');
  });

  it('rope scaling, a sliding window and an activation the backbone lacks', async () => {
    const dir = await copyOf('llama');
    const config = path.join(dir, 'config.json');
    await editJson(config, (j) => {
      j.rope_scaling = { rope_type: 'linear', factor: 2 };
    });
    let err = await failure(dir);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.location).toEqual({ file: config, field: 'rope_scaling' });
    expect(err.message).toMatch(/rope scaling is not supported/);

    await editJson(config, (j) => {
      j.rope_scaling = null;
      j.hidden_act = 'gelu';
    });
    err = await failure(dir);
    expect(err.location?.field).toBe('hidden_act');
    expect(err.hint).toBe('Quorum supports "silu"');

    const qwen = await copyOf('qwen2');
    await editJson(path.join(qwen, 'config.json'), (j) => {
      j.use_sliding_window = true;
    });
    err = await failure(qwen);
    expect(err.location?.field).toBe('use_sliding_window');
  });

  it('bad values in config.json, naming the key', async () => {
    const dir = await copyOf('gpt2');
    await editJson(path.join(dir, 'config.json'), (j) => {
      j.n_embd = '16';
    });
    const err = await failure(dir);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.location?.field).toBe('n_embd');
    expect(err.message).toContain('"n_embd" must be a positive integer, got "16"');
  });

  it('a missing tensor, naming it and the weight files', async () => {
    const dir = await copyOf('qwen2');
    const file = path.join(dir, 'model.safetensors');
    await editWeights(file, (t) => {
      delete t['model.layers.1.mlp.up_proj.weight'];
    });
    const err = await failure(dir);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.location).toEqual({ file, field: 'model.layers.1.mlp.up_proj.weight' });
    expect(err.message).toContain('tensor "model.layers.1.mlp.up_proj.weight" [20, 16] is missing');
  });

  it('a shape that disagrees with config.json', async () => {
    const dir = await copyOf('qwen2');
    await editJson(path.join(dir, 'config.json'), (j) => {
      j.intermediate_size = 21;
    });
    const err = await failure(dir);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.location).toEqual({
      file: path.join(dir, 'model.safetensors'),
      field: 'model.layers.0.mlp.gate_proj.weight',
    });
    expect(err.message).toContain('has shape [20, 16], config.json implies [21, 16]');
  });

  it('an unsupported dtype (I32), naming the tensor and the dtypes Quorum loads', async () => {
    const dir = await copyOf('qwen2');
    const file = path.join(dir, 'model.safetensors');
    await editWeights(file, (t) => {
      const rec = t['model.norm.weight'] as TensorRecord;
      t['model.norm.weight'] = { dtype: 'I32', shape: rec.shape, data: new Int32Array(rec.data.length) };
    });
    const err = await failure(dir);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.location).toEqual({ file, field: 'model.norm.weight' });
    expect(err.message).toContain('has dtype I32, which Quorum does not load');
    expect(err.hint).toMatch(/F32, F16, BF16/);
  });

  it('tensors of another architecture (a bias Qwen2 does not have)', async () => {
    const dir = await copyOf('qwen2');
    await editWeights(path.join(dir, 'model.safetensors'), (t) => {
      t['model.layers.0.self_attn.o_proj.bias'] = { dtype: 'F32', shape: [16], data: new Float32Array(16) };
    });
    const err = await failure(dir);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toContain('"model.layers.0.self_attn.o_proj.bias"');
  });

  it('NaN or Inf weights, naming the tensor (issue 16)', async () => {
    for (const bad of [Number.NaN, Number.NEGATIVE_INFINITY]) {
      const dir = await copyOf('qwen2');
      const file = path.join(dir, 'model.safetensors');
      await editWeights(file, (t) => {
        ((t['model.norm.weight'] as TensorRecord).data as Float32Array)[2] = bad;
      });
      const err = await failure(dir);
      expect(err).toBeInstanceOf(CheckpointError);
      expect(err.location).toEqual({ file, field: 'model.norm.weight' });
      expect(err.message).toContain(`tensor 'model.norm.weight' holds ${bad} at element 2`);
    }
  });

  it('prints tensor names and dtypes from the headers escaped, and never quotes a bad config.json (issue 16)', async () => {
    const dir = await copyOf('qwen2');
    await editWeights(path.join(dir, 'model.safetensors'), (t) => {
      t['evil\u001b[2J\n  hint: run this'] = { dtype: 'F32', shape: [1], data: new Float32Array(1) };
    });
    const err = await failure(dir);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message.split('\n')).toHaveLength(2);
    expect(err.message).toContain('"evil\\u001b[2J\\n  hint: run this"');
    const json = await copyOf('qwen2');
    await writeFile(path.join(json, 'config.json'), '{"model_type": SENTINEL-77}');
    const bad = await failure(json);
    expect(bad).toBeInstanceOf(CheckpointError);
    expect(bad.message).toMatch(/config\.json field "json": is not valid JSON/);
    expect(bad.message).not.toContain('SENTINEL');
  });

  it('a weight file that is a FIFO or a link to /dev/zero, before opening it (issue 16)', async () => {
    const dir = await copyOf('qwen2');
    await rm(path.join(dir, 'model.safetensors'));
    await symlink('/dev/zero', path.join(dir, 'model.safetensors'));
    expect((await failure(dir)).message).toContain('outside the model folder');
    const fifo = await copyOf('qwen2');
    await rm(path.join(fifo, 'model.safetensors'));
    execFileSync('mkfifo', [path.join(fifo, 'model.safetensors')]);
    const start = Date.now();
    expect((await failure(fifo)).message).toContain('is not a regular file (it is a FIFO)');
    expect(Date.now() - start).toBeLessThan(3000);
  });

  it('a hub id, saying to download the folder first; a missing folder', async () => {
    let err = await failure('Qwen/Qwen2-0.5B');
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain('"Qwen/Qwen2-0.5B" looks like a Hugging Face hub id');
    expect(err.hint).toContain('download the folder first');
    err = await failure(path.join(root, 'nowhere'));
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toContain('model folder not found');
  });

  it('a folder without weights, or a truncated weight file, before reading its data', async () => {
    const dir = await copyOf('qwen2');
    const file = path.join(dir, 'model.safetensors');
    await truncate(file, 5000);
    let err = await failure(dir);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.location?.file).toBe(file);
    expect(err.message).toMatch(/is 5000 bytes but its header describes \d+/);
    await rm(file);
    err = await failure(dir);
    expect(err.location?.file).toBe(file);
    expect(err.message).toContain('is missing');
    expect(err.hint).toContain('safetensors');
  });

  it('an index whose shard is missing, leaves the folder, or is not a regular file', async () => {
    const dir = await copyOf('llama');
    const index = path.join(dir, 'model.safetensors.index.json');
    const shard = 'model-00002-of-00002.safetensors';
    await editJson(index, (j) => {
      const map = j.weight_map as Record<string, string>;
      for (const n of Object.keys(map)) if (map[n] === shard) map[n] = '../elsewhere.safetensors';
    });
    await cp(path.join(dir, shard), path.join(root, 'elsewhere.safetensors'));
    let err = await failure(dir);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toContain('outside the model folder');

    await editJson(index, (j) => {
      const map = j.weight_map as Record<string, string>;
      for (const n of Object.keys(map))
        if (map[n] === '../elsewhere.safetensors') map[n] = 'gone.safetensors';
    });
    err = await failure(dir);
    expect(err.location?.file).toBe(path.join(dir, 'gone.safetensors'));
    expect(err.message).toContain(`is missing (model.safetensors.index.json lists it)`);

    await symlink(path.join(root, 'elsewhere.safetensors'), path.join(dir, 'gone.safetensors'));
    err = await failure(dir);
    expect(err.message).toContain('outside the model folder');
  });
});

describe('loadHfModel reads', () => {
  it('a sharded BF16 folder and generation_config.json', async () => {
    const model = await loadHfModel(fixture('llama'));
    expect(model.source.files.map((f) => path.basename(f))).toEqual([
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
    ]);
    expect(model.generation).toEqual({ bosTokenId: 1, eosTokenIds: [2], padTokenId: undefined });
    expect(model.config).toMatchObject({ nKvHeads: 2, ropeTheta: 500000, tieEmbeddings: false });
    for (const v of Object.values(model.params.blocks[0] ?? {})) expect(v).toBeDefined();
    const { disposeGpt } = await import('@quorum/backbone');
    disposeGpt(model.params);
  });
});
