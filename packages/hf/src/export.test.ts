/**
 * Export to Hugging Face folders and read them back: a policy gives the same logits through loadHfModel,
 * a reward model the same member rewards through loadHfRewardModel (1e-5), on real AlpacaEval rows, for
 * the three families a Quorum config exports as (gpt2, gpt_neox, llama via stories260K). LoRA members are
 * checked by merging each PEFT adapter into the base the way PEFT does (in HF names and layouts).
 *
 * Set QUORUM_HF_EXPORT_KEEP=DIR to keep the exported folders and their rows (ids + Quorum's scores) in DIR
 * for tools/parity/hf_export_check.py.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type GptConfig,
  type GptConfigInput,
  gptDims,
  gptHidden,
  gptPreset,
  initGpt,
  lmLogits,
  namedParameters,
  resolveGptConfig,
  savePolicy,
} from '@quorum/backbone';
import {
  builtinBackendRegistry,
  ConfigError,
  decodeSafetensors,
  encodeSafetensors,
  initCompute,
  Rng,
  type TensorRecord,
} from '@quorum/core';
import {
  datasets,
  encodePromptResponse,
  loadTokenizer,
  type Prompt,
  projectTokenizer,
  type TextTokenizer,
} from '@quorum/data';
import {
  builtinArchitectureRegistry,
  saveEnsemble,
  scoreAnswers,
  type TrainableEnsemble,
} from '@quorum/ensemble';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hfConfigFor, hfModelConfig } from './config.js';
import { exportPolicy, exportRewardModel } from './export.js';
import { loadHfRewardModel } from './import-reward.js';
import { loadHfModel } from './load.js';

const stories = new URL('../models/stories260K/', import.meta.url).pathname;
const keep = process.env.QUORUM_HF_EXPORT_KEEP;
let root: string;
let rows: { prompt: Prompt; answer: string }[];
const quiet = { onWarning: (): void => {} };

beforeAll(async () => {
  await initCompute({ registry: builtinBackendRegistry(), backend: 'wasm' });
  root = await mkdtemp(path.join(tmpdir(), 'quorum-hf-export-'));
  // Four pairs of four different instructions (an instruction's pairs share answers).
  const seen = new Set<string>();
  const pairs = (await datasets.alpacaEval())
    .pairs()
    .filter((p) => !seen.has(p.prompt.instruction) && seen.add(p.prompt.instruction) !== undefined)
    .slice(0, 4);
  rows = pairs.flatMap((p) => [
    { prompt: p.prompt, answer: p.chosen },
    { prompt: p.prompt, answer: p.rejected },
  ]);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let count = 0;
const fresh = (name: string): string => path.join(root, `${name}-${count++}`);

/** Random weights large enough that a wrong layout moves every reward: N(0, 0.2), gains 1 ± 0.1. */
function scramble(
  vars: Readonly<Record<string, tf.Variable>>,
  seed: number,
  skip: (n: string) => boolean = () => false,
): void {
  const rng = new Rng(seed);
  for (const [name, v] of Object.entries(vars)) {
    if (skip(name)) continue;
    const gain = name.endsWith('.g');
    const values = rng.normalArray(v.size, gain ? 0.1 : 0.2, gain ? 1 : 0);
    v.assign(tf.tensor(values, v.shape, 'float32'));
  }
}

function allVars(e: TrainableEnsemble): Record<string, tf.Variable> {
  return Object.assign({}, ...Object.values(e.tensorFiles()));
}

const nano = (overrides: GptConfigInput = {}): GptConfig =>
  gptPreset('nano', { vocabSize: projectTokenizer().vocabSize, ...overrides });

async function savedEnsemble(
  arch: string,
  config: GptConfig,
  k: number,
  tokenizer: TextTokenizer,
  options: {
    seed?: number;
    archOptions?: object;
    initBackbone?: Record<string, tf.Tensor>;
    scrambleBackbone?: boolean;
  } = {},
): Promise<{ dir: string; scores: number[][] }> {
  const ensemble = builtinArchitectureRegistry()
    .create(options.archOptions === undefined ? arch : [arch, options.archOptions])
    .build({
      gptConfig: config,
      members: k,
      rng: new Rng(options.seed ?? 1),
      initBackbone: options.initBackbone,
    });
  const scrambleBackbone = options.scrambleBackbone ?? true;
  // Head biases stay zero (what Bradley-Terry training leaves them); backbones scrambled unless pretrained.
  scramble(
    allVars(ensemble),
    options.seed ?? 1,
    (n) => n.endsWith('heads.b') || n.endsWith('head.b') || (!scrambleBackbone && !/head|lora_/.test(n)),
  );
  const dir = fresh(`rm-${arch}`);
  await saveEnsemble(dir, ensemble, { architectureSource: '@quorum/ensemble', tokenizer });
  const scores = scoreAnswers(ensemble, tokenizer, rows);
  ensemble.dispose();
  return { dir, scores };
}

function maxDiff(a: number[][], b: number[][]): number {
  expect(b.length).toBe(a.length);
  let d = 0;
  for (const [i, row] of a.entries())
    for (const [j, x] of row.entries()) d = Math.max(d, Math.abs(x - (b[i]?.[j] as number)));
  return d;
}

function spread(a: number[][]): number {
  const all = a.flat();
  return Math.max(...all) - Math.min(...all);
}

async function importedScores(
  dir: string,
): Promise<{ scores: number[][]; pad: number | undefined; labels: readonly string[] }> {
  const model = await loadHfRewardModel(dir, quiet);
  try {
    expect(model.tokenizer).toBeDefined();
    return {
      scores: scoreAnswers(model.ensemble, model.tokenizer as TextTokenizer, rows),
      pad: model.padTokenId,
      labels: model.labels,
    };
  } finally {
    model.ensemble.dispose();
  }
}

async function json(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
}

async function header(file: string): Promise<Record<string, TensorRecord>> {
  return decodeSafetensors(await readFile(file), file).tensors;
}

/** Keeps an export and its rows (ids as Quorum encodes them, Quorum's scores) for the Python check. */
async function keepForPython(
  name: string,
  outDir: string,
  tokenizer: TextTokenizer,
  config: GptConfig,
  scores: number[][],
): Promise<void> {
  if (keep === undefined) return;
  const dir = path.join(keep, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(keep, { recursive: true });
  await cp(outDir, dir, { recursive: true });
  const ids = rows.map((r) => [
    ...encodePromptResponse(tokenizer, r.prompt, r.answer, { maxLength: config.contextLength }).ids,
  ]);
  await writeFile(path.join(dir, 'quorum-rows.json'), JSON.stringify({ ids, scores }));
}

// ---------------------------------------------------------------- config

describe('hfConfigFor', () => {
  /** What decides the function a config computes (optional sizes resolved). */
  const fn = (c: GptConfig): Record<string, unknown> => ({
    ...c,
    ...gptDims(c),
    mlpRatio: undefined,
    mlpHidden: undefined,
    headDim: undefined,
    nKvHeads: undefined,
    rotaryDims: undefined,
    ropeTheta: c.positional === 'rope' ? c.ropeTheta : undefined,
    geluApprox: c.mlp === 'gelu' ? c.geluApprox : undefined,
  });

  it('exports the Quorum GPT as gpt2 (learned) or gpt_neox (RoPE), Llama configs as llama/qwen2, and reads back the same model', () => {
    const cases: [GptConfig, string, Record<string, unknown>][] = [
      [nano(), 'gpt2', { activation_function: 'gelu_new', n_inner: null, tie_word_embeddings: true }],
      [
        nano({ positional: 'rope', tieEmbeddings: false }),
        'gpt_neox',
        { use_parallel_residual: false, rotary_pct: 1, hidden_act: 'gelu_new', attention_bias: true },
      ],
      [
        nano({ positional: 'rope', rotaryDims: 8, geluApprox: 'none', parallelResidual: true }),
        'gpt_neox',
        { rotary_pct: 0.25, hidden_act: 'gelu' },
      ],
      [
        hfModelConfig(JSON.parse(JSON.stringify(storiesConfig)), 'c').config,
        'llama',
        { num_key_value_heads: 4, head_dim: 8, intermediate_size: 172, attention_bias: false },
      ],
      [
        resolveGptConfig({ ...storiesConfigQuorum(), attnBias: 'qkv', mlpBias: false }),
        'qwen2',
        { use_sliding_window: false },
      ],
    ];
    for (const [config, type, keys] of cases) {
      const out = hfConfigFor(config);
      expect(out.modelType).toBe(type);
      expect(out.json).toMatchObject({ model_type: type, ...keys });
      expect(fn(hfModelConfig(out.json, 'config.json').config)).toEqual(fn(config));
    }
  });

  it('refuses a config no family expresses, naming the field', () => {
    const cases: [GptConfigInput, string][] = [
      [{ norm: 'rmsnorm' }, 'gptConfig.mlp'],
      [{ mlp: 'swiglu', positional: 'rope' }, 'gptConfig.norm'],
      [{ nKvHeads: 1 }, 'gptConfig.nKvHeads'],
      [{ mlpBias: false }, 'gptConfig.mlpBias'],
      [{ attnBias: 'none' }, 'gptConfig.attnBias'],
      [
        { norm: 'rmsnorm', mlp: 'swiglu', positional: 'rope', parallelResidual: true },
        'gptConfig.parallelResidual',
      ],
      [{ positional: 'rope', attnBias: 'qkv' }, 'gptConfig.attnBias'],
    ];
    for (const [input, field] of cases) {
      const err = (() => {
        try {
          hfConfigFor(nano(input));
        } catch (e) {
          return e as ConfigError;
        }
        throw new Error(`${JSON.stringify(input)} exported`);
      })();
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.location?.field).toBe(field);
    }
  });
});

const storiesConfig = {
  model_type: 'llama',
  vocab_size: 512,
  hidden_size: 64,
  intermediate_size: 172,
  num_hidden_layers: 5,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  head_dim: 8,
  max_position_embeddings: 512,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: true,
};
const storiesConfigQuorum = (): GptConfig => hfModelConfig(storiesConfig, 'c').config;

// ---------------------------------------------------------------- policies

describe('exportPolicy', () => {
  async function roundTrip(
    config: GptConfig,
    params: ReturnType<typeof initGpt>,
    tokenizer: TextTokenizer,
    type: string,
  ): Promise<void> {
    const dir = fresh('policy');
    await savePolicy(dir, {
      config,
      params,
      vocab: { id: tokenizer.id, size: tokenizer.vocabSize },
      tokenizerFiles: tokenizer.files(),
    });
    const out = fresh('policy-hf');
    const result = await exportPolicy(dir, out, quiet);
    expect(result.modelType).toBe(type);
    const cfg = await json(path.join(out, 'config.json'));
    expect(cfg.architectures).toEqual([result.architecture]);
    expect(result.architecture).toMatch(/ForCausalLM$/);
    expect(await json(path.join(out, 'generation_config.json'))).toMatchObject({
      bos_token_id: tokenizer.bosId ?? null,
      eos_token_id: tokenizer.eosId,
    });
    for (const f of Object.keys(tokenizer.files())) expect(existsSync(path.join(out, f))).toBe(true);
    const loaded = await loadHfModel(out);
    expect(loaded.source.modelType).toBe(type);
    const ids = rows
      .slice(0, 3)
      .map((r) => [...encodePromptResponse(tokenizer, r.prompt, r.answer, { maxLength: 48 }).ids]);
    const T = Math.max(...ids.map((r) => r.length));
    const flat = ids.flatMap((r) => [...r, ...new Array(T - r.length).fill(tokenizer.padId)]);
    const mask = ids.flatMap((r) => [...r.map(() => 1), ...new Array(T - r.length).fill(0)]);
    const logits = (p: typeof params, c: GptConfig): Float32Array =>
      tf.tidy(() => {
        const x = tf.tensor2d(flat, [ids.length, T], 'int32');
        const m = tf.tensor2d(mask, [ids.length, T], 'float32');
        return lmLogits(p, gptHidden(p, c, x, m)).dataSync() as Float32Array;
      });
    const a = logits(params, config);
    const b = logits(loaded.params, loaded.config);
    let d = 0;
    for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
    expect(d).toBeLessThan(1e-5);
    for (const v of Object.values(namedParameters(loaded.params))) v.dispose();
    for (const v of Object.values(namedParameters(params))) v.dispose();
  }

  it('a Quorum GPT with learned positions becomes GPT2ForCausalLM with the same logits', async () => {
    const config = nano();
    const params = initGpt(config, new Rng(3));
    scramble(namedParameters(params), 3);
    await roundTrip(config, params, projectTokenizer(), 'gpt2');
  });

  it('a Quorum GPT with RoPE and its own LM head becomes GPTNeoXForCausalLM with the same logits', async () => {
    const config = nano({ positional: 'rope', tieEmbeddings: false });
    const params = initGpt(config, new Rng(4));
    scramble(namedParameters(params), 4);
    await roundTrip(config, params, projectTokenizer(), 'gpt_neox');
  });

  it('stories260K (Llama, real weights, its Hugging Face tokenizer) exports as LlamaForCausalLM', async () => {
    const model = await loadHfModel(stories);
    const tokenizer = await loadTokenizer(stories, quiet);
    await roundTrip(model.config, model.params, tokenizer, 'llama');
  });
});

// ---------------------------------------------------------------- reward models

describe('exportRewardModel → loadHfRewardModel', () => {
  it('linear-heads (k = 3, nano, GPT-2 layout): one folder, num_labels 3, the same rewards on AlpacaEval rows', async () => {
    const tok = projectTokenizer();
    const config = nano();
    const { dir, scores } = await savedEnsemble('linear-heads', config, 3, tok);
    const out = fresh('lh-hf');
    const result = await exportRewardModel(dir, out, { ...quiet, aggregation: 'lcb' });
    expect(result).toMatchObject({
      modelType: 'gpt2',
      architecture: 'GPT2ForSequenceClassification',
      folders: ['.'],
      padTokenId: tok.padId,
    });
    const cfg = await json(path.join(out, 'config.json'));
    expect(cfg).toMatchObject({
      architectures: ['GPT2ForSequenceClassification'],
      num_labels: 3,
      id2label: { 0: 'member_0', 1: 'member_1', 2: 'member_2' },
      pad_token_id: 0,
      eos_token_id: tok.eosId,
      quorum: { architecture: 'linear-heads', members: 3, aggregation: 'lcb', padding: 'right' },
    });
    const tensors = await header(path.join(out, 'model.safetensors'));
    expect(tensors['score.weight']?.shape).toEqual([3, 64]);
    expect(tensors['transformer.h.0.attn.c_attn.weight']?.shape).toEqual([64, 192]);
    expect(Object.keys(tensors).filter((n) => n.includes('lm_head'))).toEqual([]);
    expect(existsSync(path.join(out, 'vocab.json'))).toBe(true);
    const card = await readFile(path.join(out, 'README.md'), 'utf8');
    expect(card).toContain('AutoModelForSequenceClassification');
    expect(card).toContain('`lcb`');
    const back = await importedScores(out);
    expect(back.labels).toEqual(['member_0', 'member_1', 'member_2']);
    expect(spread(scores)).toBeGreaterThan(0.1);
    expect(maxDiff(scores, back.scores)).toBeLessThan(1e-5);
    await keepForPython('linear-heads-gpt2', out, tok, config, scores);
  });

  it('linear-heads on the RoPE Quorum GPT (GPT-NeoX layout) reads back the same rewards', async () => {
    const tok = projectTokenizer();
    const config = nano({ positional: 'rope', nLayers: 1 });
    const { dir, scores } = await savedEnsemble('linear-heads', config, 2, tok, { seed: 5 });
    const out = fresh('neox-hf');
    expect((await exportRewardModel(dir, out, quiet)).architecture).toBe('GPTNeoXForSequenceClassification');
    expect(Object.keys(await header(path.join(out, 'model.safetensors')))).toContain(
      'gpt_neox.layers.0.attention.query_key_value.weight',
    );
    expect(maxDiff(scores, (await importedScores(out)).scores)).toBeLessThan(1e-5);
    await keepForPython('linear-heads-neox', out, tok, config, scores);
  });

  it('independent (k = 3): member-0/ … member-2/, each one label, each the same member', async () => {
    const tok = projectTokenizer();
    const config = nano({ nLayers: 1 });
    const { dir, scores } = await savedEnsemble('independent', config, 3, tok, { seed: 7 });
    const out = fresh('ind-hf');
    const result = await exportRewardModel(dir, out, quiet);
    expect(result.folders).toEqual(['member-0', 'member-1', 'member-2']);
    expect(existsSync(path.join(out, 'README.md'))).toBe(true);
    for (let m = 0; m < 3; m++) {
      const member = path.join(out, `member-${m}`);
      expect(await json(path.join(member, 'config.json'))).toMatchObject({
        num_labels: 1,
        id2label: { 0: `member_${m}` },
      });
      const back = await importedScores(member);
      expect(maxDiff([scores[m] as number[]], back.scores)).toBeLessThan(1e-5);
    }
    await keepForPython('independent-gpt2', out, tok, config, scores);
  });

  it('stories260K with a fresh k = 3 head set: Llama layout, pad_token_id is unk (its tokenizer pads with eos)', async () => {
    const model = await loadHfModel(stories);
    const tokenizer = await loadTokenizer(stories, quiet);
    expect(tokenizer.padId).toBe(tokenizer.eosId);
    const init = namedParameters(model.params);
    const { dir, scores } = await savedEnsemble('linear-heads', model.config, 3, tokenizer, {
      initBackbone: init,
      scrambleBackbone: false,
      seed: 11,
    });
    for (const v of Object.values(init)) v.dispose();
    const out = fresh('stories-hf');
    const notes: string[] = [];
    const result = await exportRewardModel(dir, out, { onWarning: (m) => notes.push(m) });
    expect(result).toMatchObject({
      modelType: 'llama',
      architecture: 'LlamaForSequenceClassification',
      padTokenId: 0,
    });
    expect(notes.some((n) => n.includes("config.json's pad_token_id is 0"))).toBe(true);
    const cfg = await json(path.join(out, 'config.json'));
    expect(cfg).toMatchObject({ pad_token_id: 0, eos_token_id: 2, bos_token_id: 1, num_labels: 3 });
    const tensors = await header(path.join(out, 'model.safetensors'));
    expect(tensors['model.layers.0.self_attn.k_proj.weight']?.shape).toEqual([32, 64]);
    for (const f of ['tokenizer.json', 'tokenizer_config.json'])
      expect(existsSync(path.join(out, f))).toBe(true);
    const back = await importedScores(out);
    expect(spread(scores)).toBeGreaterThan(0.1);
    expect(maxDiff(scores, back.scores)).toBeLessThan(1e-5);
    await keepForPython('stories260K-linear-heads', out, tokenizer, model.config, scores);
    for (const v of Object.values(namedParameters(model.params))) v.dispose();
  });
});

// ---------------------------------------------------------------- LoRA

/**
 * PEFT's merge of one adapter into the base folder, in HF names and layouts: W += (α'/r')·Bᵀ… i.e. for an
 * nn.Linear [out, in] W += s·(B @ A); for GPT-2's Conv1D [in, out] (fan_in_fan_out) W += s·(B @ A)ᵀ; score
 * from modules_to_save. Writes a plain sequence-classification folder.
 */
async function mergePeft(base: string, adapter: string, out: string): Promise<void> {
  await cp(base, out, { recursive: true });
  const cfg = await json(path.join(adapter, 'adapter_config.json'));
  const lora = await header(path.join(adapter, 'adapter_model.safetensors'));
  const weights = await header(path.join(base, 'model.safetensors'));
  const pattern = (p: unknown, leaf: string, fallback: number): number =>
    ((p as Record<string, number>)[leaf] as number | undefined) ?? fallback;
  const asTensor = (r: TensorRecord): tf.Tensor => tf.tensor(r.data as Float32Array, r.shape, 'float32');
  for (const name of Object.keys(lora)) {
    if (name === 'base_model.model.score.modules_to_save.weight') {
      weights['score.weight'] = lora[name] as TensorRecord;
      continue;
    }
    if (!name.endsWith('.lora_A.weight')) continue;
    const module = name.slice('base_model.model.'.length, -'.lora_A.weight'.length);
    const leaf = module.split('.').pop() as string;
    const r = pattern(cfg.rank_pattern, leaf, cfg.r as number);
    const s = pattern(cfg.alpha_pattern, leaf, cfg.lora_alpha as number) / r;
    const a = asTensor(lora[name] as TensorRecord); // [r, in]
    const b = asTensor(lora[name.replace('lora_A', 'lora_B')] as TensorRecord); // [out, r]
    expect(a.shape[0]).toBe(r);
    const w = weights[`${module}.weight`] as TensorRecord;
    const merged = tf.tidy(() => {
      const delta = tf.mul(tf.matMul(b, a), s); // [out, in]
      return tf.add(asTensor(w), cfg.fan_in_fan_out === true ? tf.transpose(delta) : delta);
    });
    weights[`${module}.weight`] = { dtype: 'F32', shape: w.shape, data: merged.dataSync() as Float32Array };
    tf.dispose([a, b, merged]);
  }
  await writeFile(path.join(out, 'model.safetensors'), encodeSafetensors(weights, { format: 'pt' }));
}

describe('exportRewardModel: lora → base + PEFT adapters', () => {
  for (const [family, overrides, modules] of [
    ['gpt2', {}, ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj']],
    [
      'gpt_neox',
      { positional: 'rope' },
      ['attention.dense', 'attention.query_key_value', 'mlp.dense_4h_to_h', 'mlp.dense_h_to_4h'],
    ],
  ] as const) {
    it(`${family}: adapter_config.json, PEFT tensor names, each member's head saved with its adapter, the same rewards`, async () => {
      const tok = projectTokenizer();
      const config = nano({ nLayers: 2, ...overrides });
      const { dir, scores } = await savedEnsemble('lora', config, 3, tok, {
        seed: 13,
        archOptions: { rank: 4, alpha: 8 },
      });
      const out = fresh(`lora-${family}`);
      const result = await exportRewardModel(dir, out, quiet);
      expect(result.folders).toEqual(['base', 'member-0', 'member-1', 'member-2']);
      expect(await json(path.join(out, 'base', 'config.json'))).toMatchObject({ num_labels: 1 });
      const fused = family === 'gpt2' ? 'c_attn' : 'query_key_value';
      const prefix = family === 'gpt2' ? 'transformer.h' : 'gpt_neox.layers';
      for (let m = 0; m < 3; m++) {
        const member = path.join(out, `member-${m}`);
        expect(await json(path.join(member, 'adapter_config.json'))).toMatchObject({
          peft_type: 'LORA',
          task_type: 'SEQ_CLS',
          r: 4,
          lora_alpha: 8,
          target_modules: [...modules],
          modules_to_save: ['score'],
          fan_in_fan_out: family === 'gpt2',
          rank_pattern: { [fused]: 12 },
          alpha_pattern: { [fused]: 24 },
        });
        const tensors = await header(path.join(member, 'adapter_model.safetensors'));
        expect(
          tensors[
            `base_model.model.${prefix}.1.${family === 'gpt2' ? 'attn.c_attn' : 'attention.query_key_value'}.lora_A.weight`
          ]?.shape,
        ).toEqual([12, 64]);
        expect(
          tensors[
            `base_model.model.${prefix}.1.${family === 'gpt2' ? 'attn.c_attn' : 'attention.query_key_value'}.lora_B.weight`
          ]?.shape,
        ).toEqual([192, 12]);
        expect(
          tensors[
            `base_model.model.${prefix}.0.${family === 'gpt2' ? 'mlp.c_fc' : 'mlp.dense_h_to_4h'}.lora_B.weight`
          ]?.shape,
        ).toEqual([256, 4]);
        expect(tensors['base_model.model.score.modules_to_save.weight']?.shape).toEqual([1, 64]);
        const merged = fresh(`lora-merged-${m}`);
        await mergePeft(path.join(out, 'base'), member, merged);
        expect(maxDiff([scores[m] as number[]], (await importedScores(merged)).scores)).toBeLessThan(1e-5);
      }
      // The base alone is no member: its head is zero.
      expect((await importedScores(path.join(out, 'base'))).scores.flat().every((x) => x === 0)).toBe(true);
      await keepForPython(`lora-${family}`, out, tok, config, scores);
    });
  }
});

// ---------------------------------------------------------------- untrusted input

describe('export folders', () => {
  it('refuses an existing non-empty outDir unless overwrite, and replaces it atomically with overwrite', async () => {
    const tok = projectTokenizer();
    const { dir } = await savedEnsemble('linear-heads', nano({ nLayers: 1 }), 2, tok);
    const out = fresh('taken');
    await mkdir(out);
    await writeFile(path.join(out, 'keep.txt'), 'mine');
    const err = await exportRewardModel(dir, out, quiet).catch((e: unknown) => e as ConfigError);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).location).toEqual({ file: out, field: 'overwrite' });
    expect(await readdir(out)).toEqual(['keep.txt']);
    await exportRewardModel(dir, out, { ...quiet, overwrite: true });
    expect((await readdir(out)).sort()).toEqual([
      'README.md',
      'config.json',
      'model.safetensors',
      'vocab.json',
    ]);
    expect((await readdir(root)).filter((n) => n.includes('.export-') || n.includes('.replaced-'))).toEqual(
      [],
    );
    const inside = await exportRewardModel(dir, path.join(dir, 'hf'), quiet).catch(
      (e: unknown) => e as ConfigError,
    );
    expect((inside as ConfigError).location?.field).toBe('outDir');
  });

  it('refuses a non-zero head bias unless headBias "config", which writes it to config.json and reads it back', async () => {
    const tok = projectTokenizer();
    const config = nano({ nLayers: 1 });
    const ensemble = builtinArchitectureRegistry()
      .create('linear-heads')
      .build({ gptConfig: config, members: 2, rng: new Rng(2) });
    scramble(allVars(ensemble), 2);
    const dir = fresh('biased');
    await saveEnsemble(dir, ensemble, { architectureSource: '@quorum/ensemble', tokenizer: tok });
    const scores = scoreAnswers(ensemble, tok, rows);
    ensemble.dispose();
    const out = fresh('biased-hf');
    const err = await exportRewardModel(dir, out, quiet).catch((e: unknown) => e as ConfigError);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).location?.field).toBe('heads.b');
    expect((err as ConfigError).hint).toContain("headBias: 'config'");
    expect(existsSync(out)).toBe(false);
    await exportRewardModel(dir, out, { ...quiet, headBias: 'config' });
    expect((await json(path.join(out, 'config.json'))).quorum_score_bias).toHaveLength(2);
    expect(maxDiff(scores, (await importedScores(out)).scores)).toBeLessThan(1e-5);
  });

  it('refuses a backbone no Hugging Face family expresses, naming the field, and writes nothing', async () => {
    const tok = projectTokenizer();
    const { dir } = await savedEnsemble('single', nano({ nLayers: 1, norm: 'rmsnorm' }), 1, tok);
    const out = fresh('nofamily');
    const err = await exportRewardModel(dir, out, quiet).catch((e: unknown) => e as ConfigError);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).location?.field).toBe('gptConfig.mlp');
    expect(existsSync(out)).toBe(false);
  });
});
