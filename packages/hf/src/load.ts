/**
 * `loadHfModel(dir)`: a Hugging Face model folder (config.json, model.safetensors or a sharded index,
 * generation_config.json) → Quorum's config and parameters. Nothing is downloaded. Every needed tensor's
 * presence, dtype (F32, F16, BF16) and shape are checked against config.json from the headers alone,
 * before any tensor data is read or any weight assigned.
 */
import { existsSync } from 'node:fs';
import { type GptConfig, type GptParams, loadGptParameters } from '@quorum/backbone';
import {
  CheckpointError,
  ConfigError,
  checkFiniteTensors,
  escapeUntrusted,
  printable,
  recordsToTensors,
  type TensorRecord,
} from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { type HfFamily, type HfModelConfig, hfModelConfig } from './config.js';
import { locate, readJson, realFolder } from './files.js';
import { hfMapping } from './mapping.js';
import { HF_WEIGHT_DTYPES, type HfWeightIndex, indexHfWeights, readHfWeights } from './weights.js';

export const HF_CONFIG_FILE = 'config.json';
export const HF_GENERATION_CONFIG_FILE = 'generation_config.json';

/** What generation_config.json (else config.json) says about decoding. */
export interface HfGeneration {
  readonly bosTokenId: number | undefined;
  /** Ids that end a sequence (a model may have several). */
  readonly eosTokenIds: readonly number[];
  readonly padTokenId: number | undefined;
}

/** Where a loaded model came from. */
export interface HfSource {
  readonly dir: string;
  readonly modelType: string;
  readonly family: HfFamily;
  /** The weight files read. */
  readonly files: readonly string[];
  /** How many of the model's tensors had each stored dtype (all became float32). */
  readonly dtypes: Readonly<Record<string, number>>;
}

export interface HfModel {
  readonly config: GptConfig;
  /** New variables; the caller disposes them (backbone's disposeGpt). */
  readonly params: GptParams;
  readonly generation: HfGeneration;
  readonly source: HfSource;
}

const JSON_LIMIT = 16 * 1024 * 1024;

/** `org/name` (or `name`) that is not a folder: what a hub id looks like. */
const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

function tokenIds(v: unknown): number[] {
  const all = Array.isArray(v) ? v : [v];
  return all.filter((x): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0);
}

async function readGeneration(
  realDir: string,
  dir: string,
  fallback: { bos: number | undefined; eos: unknown; pad: number | undefined },
): Promise<HfGeneration> {
  const file = await locate(realDir, dir, HF_GENERATION_CONFIG_FILE, JSON_LIMIT);
  const json = file === undefined ? {} : await readJson(file);
  const g = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  const id = (key: string, other: number | undefined): number | undefined => tokenIds(g[key])[0] ?? other;
  return {
    bosTokenId: id('bos_token_id', fallback.bos),
    eosTokenIds:
      g.eos_token_id === undefined || g.eos_token_id === null
        ? tokenIds(fallback.eos)
        : tokenIds(g.eos_token_id),
    padTokenId: id('pad_token_id', fallback.pad),
  };
}

/** A shape from a header for a message: `[2, 16]`, or escaped when it is not a list of numbers. */
export function shapeText(shape: unknown): string {
  return Array.isArray(shape) && shape.every((d) => typeof d === 'number')
    ? `[${shape.join(', ')}]`
    : printable(shape, 60);
}

/** Refuses NaN and ±Infinity weights, naming the tensor and its file (a model with them scores NaN). */
export function checkFiniteRecords(index: HfWeightIndex, records: Record<string, TensorRecord>): void {
  for (const [name, record] of Object.entries(records)) {
    checkFiniteTensors({ [name]: record }, index.tensors.get(name)?.file ?? index.files.join(', '));
  }
}

/**
 * Reads and checks a Hugging Face folder's config.json alone (no weights): a hub id, a missing folder or
 * config.json, an unknown model_type or an unsupported setting is an error here. `loadTokenizer(dir, {
 * vocabSize: config.vocabSize })` can then check the tokenizer before any weight is read.
 */
export async function readHfModelConfig(dir: string): Promise<HfModelConfig> {
  return (await readConfigFile(dir)).hf;
}

async function readConfigFile(dir: string): Promise<{ realDir: string; hf: HfModelConfig; shown: string }> {
  if (!existsSync(dir) && HUB_ID.test(dir)) {
    throw new ConfigError(
      `"${dir}" looks like a Hugging Face hub id, not a folder; Quorum does not download models`,
      {
        location: { file: dir },
        hint: `download the folder first, e.g. huggingface-cli download ${dir} --local-dir models/${dir.split('/')[1]}, and pass that folder`,
      },
    );
  }
  const realDir = await realFolder(dir);
  const configFile = await locate(realDir, dir, HF_CONFIG_FILE, JSON_LIMIT);
  if (configFile === undefined) {
    throw new CheckpointError(`has no ${HF_CONFIG_FILE}`, {
      location: { file: dir },
      hint: 'pass a Hugging Face model folder (config.json, model.safetensors, tokenizer.json)',
    });
  }
  const hf = hfModelConfig(await readJson(configFile), configFile.shown);
  return { realDir, hf, shown: configFile.shown };
}

export async function loadHfModel(dir: string): Promise<HfModel> {
  const { realDir, hf, shown: configShown } = await readConfigFile(dir);
  const { config, family } = hf;
  const index = await indexHfWeights(realDir, dir);
  const gpt2Prefix =
    family === 'gpt2' && !index.tensors.has('transformer.wte.weight') && index.tensors.has('wte.weight')
      ? ''
      : 'transformer.';
  const mapping = hfMapping(family, config, { gpt2Prefix });

  // Names, dtypes and shapes against config.json before any data is read.
  const dtypes = checkTensorHeaders(index, mapping.hfShapes, {
    modelType: hf.modelType,
    shapeHint: `config.json (${configShown}) and the weights come from different models`,
  });
  const unexpected = [...index.tensors.keys()].filter(
    (n) => !(n in mapping.hfShapes) && !mapping.isIgnorable(n),
  );
  if (unexpected.length > 0) {
    throw new CheckpointError(
      `holds tensors a ${hf.modelType} model of this config.json does not have: ${unexpected
        .slice(0, 5)
        .map((n) => printable(n))
        .join(', ')}${unexpected.length > 5 ? ` and ${unexpected.length - 5} more` : ''}`,
      {
        location: {
          file: index.tensors.get(unexpected[0] as string)?.file ?? dir,
          field: escapeUntrusted(unexpected[0] as string),
        },
        hint: 'the model has parts Quorum does not run (another architecture or a head); it would not compute the same function',
      },
    );
  }

  const records = await readHfWeights(index, Object.keys(mapping.hfShapes));
  checkFiniteRecords(index, records);
  const hfTensors = recordsToTensors(records);
  let params: GptParams;
  try {
    const quorum = mapping.toQuorum(hfTensors);
    try {
      params = loadGptParameters(config, quorum, { file: dir });
    } finally {
      tf.dispose(Object.values(quorum));
    }
  } finally {
    tf.dispose(Object.values(hfTensors));
  }
  return {
    config,
    params,
    generation: await readGeneration(realDir, dir, {
      bos: hf.bosTokenId,
      eos: hf.eosTokenId,
      pad: hf.padTokenId,
    }),
    source: { dir, modelType: hf.modelType, family, files: index.files, dtypes },
  };
}

/**
 * Checks that every tensor of `expected` is in the folder's weights with a dtype Quorum loads and the
 * shape config.json implies, from the headers alone. Returns how many tensors each dtype holds.
 */
export function checkTensorHeaders(
  index: HfWeightIndex,
  expected: Readonly<Record<string, readonly number[]>>,
  about: { readonly modelType: string; readonly shapeHint: string },
): Record<string, number> {
  const dtypes: Record<string, number> = {};
  for (const [name, shape] of Object.entries(expected)) {
    const info = index.tensors.get(name);
    if (info === undefined) {
      throw new CheckpointError(`tensor "${name}" [${shape.join(', ')}] is missing`, {
        location: { file: index.files.join(', '), field: name },
        hint: `config.json describes a ${about.modelType} model with this tensor; the weights belong to another model`,
      });
    }
    if (!(HF_WEIGHT_DTYPES as readonly string[]).includes(info.dtype)) {
      throw new CheckpointError(
        `tensor ${printable(name)} has dtype ${escapeUntrusted(String(info.dtype))}, which Quorum does not load`,
        {
          location: { file: info.file, field: name },
          hint: `Quorum loads weights stored as ${HF_WEIGHT_DTYPES.join(', ')} (converted to float32); convert the model first`,
        },
      );
    }
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new CheckpointError(
        `tensor ${printable(name)} has shape ${shapeText(info.shape)}, config.json implies [${shape.join(', ')}]`,
        { location: { file: info.file, field: name }, hint: about.shapeHint },
      );
    }
    dtypes[info.dtype] = (dtypes[info.dtype] ?? 0) + 1;
  }
  return dtypes;
}
