/**
 * `loadHfRewardModel(dir)`: a Hugging Face `*ForSequenceClassification` folder (llama/qwen2, gpt2, gpt_neox:
 * transformer under `model.` / `transformer.` / `gpt_neox.`, `score.weight` [k, D]) → a Quorum `linear-heads`
 * ensemble of k members (one head per label), with the folder's tokenizer when it has one. config.json's
 * `quorum_score_bias` (written by `exportRewardModel` with `headBias: 'config'`) becomes the heads' bias.
 *
 * A sequence-classification model has no LM head, so the backbone is built with tied embeddings whatever
 * config.json's tie_word_embeddings says (the reward never reads the LM head). Every tensor's presence,
 * dtype and shape is checked from the headers before any data is read.
 */

import { resolveGptConfig } from '@quorum/backbone';
import {
  CheckpointError,
  ConfigError,
  escapeUntrusted,
  printable,
  Rng,
  recordsToTensors,
} from '@quorum/core';
import { loadTokenizer, type TextTokenizer } from '@quorum/data';
import { builtinArchitectureRegistry, type TrainableEnsemble } from '@quorum/ensemble';
import * as tf from '@tensorflow/tfjs';
import { hfModelConfig } from './config.js';
import { locate, readJson, realFolder } from './files.js';
import { checkFiniteRecords, checkTensorHeaders, HF_CONFIG_FILE } from './load.js';
import { hfMapping } from './mapping.js';
import { indexHfWeights, readHfWeights } from './weights.js';

const JSON_LIMIT = 16 * 1024 * 1024;
const SCORE = 'score.weight';
const LM_HEADS = new Set(['lm_head.weight', 'embed_out.weight']);

export interface HfRewardModel {
  /** A `linear-heads` ensemble with one member per label; the caller disposes it. */
  readonly ensemble: TrainableEnsemble;
  /** The folder's tokenizer, undefined when it has no tokenizer files. */
  readonly tokenizer: TextTokenizer | undefined;
  /** config.json's pad_token_id: the id transformers treats as padding (Quorum uses the mask). */
  readonly padTokenId: number | undefined;
  readonly modelType: string;
  readonly labels: readonly string[];
}

export interface LoadHfRewardOptions {
  /** Receives the tokenizer's notes; default console.warn. */
  readonly onWarning?: ((message: string) => void) | undefined;
}

function labelNames(json: Record<string, unknown>, k: number): string[] {
  const id2label = json.id2label;
  return Array.from({ length: k }, (_, i) => {
    const name =
      typeof id2label === 'object' && id2label !== null
        ? (id2label as Record<string, unknown>)[String(i)]
        : undefined;
    return typeof name === 'string' ? name : `LABEL_${i}`;
  });
}

/** Loads a `*ForSequenceClassification` folder as a Quorum reward ensemble (see the file comment). */
export async function loadHfRewardModel(
  dir: string,
  options: LoadHfRewardOptions = {},
): Promise<HfRewardModel> {
  const realDir = await realFolder(dir);
  const configFile = await locate(realDir, dir, HF_CONFIG_FILE, JSON_LIMIT);
  if (configFile === undefined) {
    throw new CheckpointError(`has no ${HF_CONFIG_FILE}`, {
      location: { file: dir },
      hint: 'pass a Hugging Face *ForSequenceClassification folder (config.json, model.safetensors)',
    });
  }
  const json = (await readJson(configFile)) as Record<string, unknown>;
  const hf = hfModelConfig(json, configFile.shown);
  const archs = json.architectures;
  if (
    Array.isArray(archs) &&
    !archs.some((a) => typeof a === 'string' && a.endsWith('ForSequenceClassification'))
  ) {
    throw new ConfigError(`architectures ${printable(archs, 120)} has no *ForSequenceClassification`, {
      location: { file: configFile.shown, field: 'architectures' },
      hint: 'a causal LM folder loads with loadHfModel; a reward model is a sequence-classification folder',
    });
  }
  const config = resolveGptConfig({ ...hf.config, tieEmbeddings: true });
  const mapping = hfMapping(hf.family, config);
  const index = await indexHfWeights(realDir, dir);
  const score = index.tensors.get(SCORE);
  if (score === undefined) {
    throw new CheckpointError(`tensor "${SCORE}" is missing`, {
      location: { file: index.files.join(', '), field: SCORE },
      hint: 'the folder is not a sequence-classification model (a reward model has a score layer)',
    });
  }
  const k = score.shape[0] as number;
  const expected: Record<string, readonly number[]> = { ...mapping.hfShapes, [SCORE]: [k, config.dModel] };
  checkTensorHeaders(index, expected, {
    modelType: hf.modelType,
    shapeHint: 'config.json and the weights come from different models',
  });
  const labelCount =
    json.num_labels ??
    (typeof json.id2label === 'object' && json.id2label !== null
      ? Object.keys(json.id2label).length
      : undefined);
  if (labelCount !== undefined && labelCount !== k) {
    throw new CheckpointError(
      `score.weight has ${k} rows but config.json names ${printable(labelCount, 20)} labels`,
      {
        location: { file: configFile.shown, field: 'num_labels' },
        hint: 'config.json and the weights come from different exports',
      },
    );
  }
  const unexpected = [...index.tensors.keys()].filter(
    (n) => !(n in expected) && !mapping.isIgnorable(n) && !LM_HEADS.has(n),
  );
  if (unexpected.length > 0) {
    throw new CheckpointError(
      `holds tensors a ${hf.modelType} reward model does not have: ${unexpected
        .slice(0, 5)
        .map((n) => printable(n))
        .join(', ')}`,
      {
        location: {
          file: index.tensors.get(unexpected[0] as string)?.file ?? dir,
          field: escapeUntrusted(unexpected[0] as string),
        },
        hint: 'a PEFT adapter folder is not a model: load its base, or merge the adapter first',
      },
    );
  }
  const rawBias = json.quorum_score_bias;
  if (
    rawBias !== undefined &&
    (!Array.isArray(rawBias) ||
      rawBias.length !== k ||
      rawBias.some((b) => typeof b !== 'number' || !Number.isFinite(b)))
  ) {
    throw new ConfigError(`"quorum_score_bias" must be ${k} numbers, got ${printable(rawBias, 80)}`, {
      location: { file: configFile.shown, field: 'quorum_score_bias' },
      hint: 'remove it, or write one bias per label',
    });
  }
  const tokenizer = await readTokenizer(dir, config.vocabSize, options);

  const records = await readHfWeights(index, Object.keys(expected));
  checkFiniteRecords(index, records);
  const hfTensors = recordsToTensors(records);
  let ensemble: TrainableEnsemble | undefined;
  try {
    const quorum = mapping.toQuorum(hfTensors);
    try {
      ensemble = builtinArchitectureRegistry()
        .create('linear-heads')
        .build({ gptConfig: config, members: k, rng: new Rng(0), initBackbone: quorum });
    } finally {
      tf.dispose(Object.values(quorum));
    }
    const heads = ensemble.tensorFiles()['heads.safetensors'] as Record<string, tf.Variable>;
    tf.tidy(() => {
      (heads['heads.w'] as tf.Variable).assign(tf.transpose(hfTensors[SCORE] as tf.Tensor)); // [D, k]
      (heads['heads.b'] as tf.Variable).assign(
        rawBias === undefined ? tf.zeros([k]) : tf.tensor1d(rawBias as number[]),
      ); // [k]
    });
  } catch (error) {
    ensemble?.dispose();
    throw error;
  } finally {
    tf.dispose(Object.values(hfTensors));
  }
  const pad = json.pad_token_id;
  return {
    ensemble,
    tokenizer,
    padTokenId: typeof pad === 'number' ? pad : undefined,
    modelType: hf.modelType,
    labels: labelNames(json, k),
  };
}

async function readTokenizer(
  dir: string,
  vocabSize: number,
  options: LoadHfRewardOptions,
): Promise<TextTokenizer | undefined> {
  const realDir = await realFolder(dir);
  for (const name of ['tokenizer.json', 'vocab.json']) {
    if ((await locate(realDir, dir, name)) !== undefined) {
      return loadTokenizer(dir, { vocabSize, onWarning: options.onWarning });
    }
  }
  return undefined;
}
