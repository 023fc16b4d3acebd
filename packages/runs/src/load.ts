/**
 * Loading the artefacts runs share: policies and reward ensembles, each with its own tokenizer.
 *
 * Wherever a run reads a policy (`init` of SFT and reward training, the policy of PPO, Best-of-n, eval and
 * generate), the source is either a Quorum policy folder (quorum.json, from `quorum sft`/`ppo`/`import`) or
 * `hf:DIR`, a Hugging Face model folder (config.json + safetensors + tokenizer.json) read by @quorum/hf.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { GptConfig, GptParams, PolicyManifest } from '@quorum/backbone';
import { loadPolicy, POLICY_MANIFEST } from '@quorum/backbone';
import { CheckpointError, ConfigError, type StrategyRegistry } from '@quorum/core';
import { loadTokenizer, type TextTokenizer } from '@quorum/data';
import { type EnsembleArchitecture, type LoadedEnsemble, loadEnsemble } from '@quorum/ensemble';
import { type HfSource, loadHfModel, readHfModelConfig } from '@quorum/hf';
import { resolveMaxLength } from './length.js';

/** The prefix that marks a Hugging Face model folder: `hf:models/SmolLM-135M`. */
export const HF_SOURCE_PREFIX = 'hf:';

/** Where a loaded policy came from. */
export type PolicyOrigin =
  | { readonly kind: 'quorum'; readonly dir: string; readonly manifest: PolicyManifest }
  | { readonly kind: 'hf'; readonly dir: string; readonly hf: HfSource };

/** A policy's weights with its tokenizer. The caller disposes `params` (backbone's disposeGpt). */
export interface PolicyWithTokenizer {
  readonly config: GptConfig;
  readonly params: GptParams;
  readonly tokenizer: TextTokenizer;
  readonly origin: PolicyOrigin;
}

/** The folder of `hf:DIR`, or undefined when `source` is a Quorum folder. */
export function hfSourceDir(source: string): string | undefined {
  if (!source.startsWith(HF_SOURCE_PREFIX)) return undefined;
  const dir = source.slice(HF_SOURCE_PREFIX.length);
  if (dir === '') {
    throw new ConfigError('hf: names no folder', {
      location: { field: source },
      hint: 'write hf:DIR, e.g. hf:packages/hf/models/stories260K (a Hugging Face model folder on disk)',
    });
  }
  return dir;
}

/**
 * Checks a policy source before any work, without reading weights: `hf:DIR`'s config.json and tokenizer
 * (against its vocab_size), or a Quorum folder's quorum.json being there. With `maxLength`, also that it
 * fits the model's context. `field` names the flag or option in errors.
 */
export async function checkPolicySource(
  source: string,
  field: string,
  maxLength?: number | undefined,
): Promise<void> {
  const hfDir = hfSourceDir(source);
  if (hfDir !== undefined) {
    const { config } = await readHfModelConfig(hfDir);
    await loadTokenizer(hfDir, { vocabSize: config.vocabSize, onWarning: () => {} });
    if (maxLength !== undefined) resolveMaxLength(config, maxLength, '--max-length');
    return;
  }
  if (!existsSync(path.join(source, POLICY_MANIFEST))) {
    const hf = existsSync(path.join(source, 'config.json'));
    throw new ConfigError(`${source} is not a Quorum policy folder (no ${POLICY_MANIFEST})`, {
      location: { field, file: source },
      hint: hf
        ? `it looks like a Hugging Face model folder: pass hf:${source}`
        : 'pass a folder written by `quorum sft`, `quorum ppo` or `quorum import`, or hf:DIR for a Hugging Face model',
    });
  }
}

/**
 * The tokenizer of a model folder (vocab.json or tokenizer.json), checked against the id its quorum.json
 * names. The one place runs build a tokenizer from a folder.
 */
export async function folderTokenizer(
  dir: string,
  vocab: { readonly id: string; readonly size: number },
): Promise<TextTokenizer> {
  const tokenizer = await loadTokenizer(dir, { vocabSize: vocab.size });
  if (tokenizer.id !== vocab.id) {
    throw new CheckpointError(`its tokenizer has id ${tokenizer.id}, but quorum.json names ${vocab.id}`, {
      location: { file: dir },
      hint: 'the tokenizer files belong to another model: copy the folder again from where it was trained',
    });
  }
  return tokenizer;
}

/**
 * Loads a policy: a Quorum policy folder (`quorum sft`, `quorum ppo`, `quorum import`) or `hf:DIR`, a
 * Hugging Face *ForCausalLM folder with its tokenizer. The caller disposes `params`.
 */
export async function loadPolicyWithTokenizer(source: string): Promise<PolicyWithTokenizer> {
  const hfDir = hfSourceDir(source);
  if (hfDir !== undefined) {
    // config.json, then the tokenizer against its vocab_size, all before any weight is read.
    const { config } = await readHfModelConfig(hfDir);
    const tokenizer = await loadTokenizer(hfDir, { vocabSize: config.vocabSize });
    const model = await loadHfModel(hfDir);
    return {
      config: model.config,
      params: model.params,
      tokenizer,
      origin: { kind: 'hf', dir: hfDir, hf: model.source },
    };
  }
  const policy = await loadPolicy(source);
  return {
    config: policy.config,
    params: policy.params,
    tokenizer: await folderTokenizer(source, policy.manifest.vocab),
    origin: { kind: 'quorum', dir: source, manifest: policy.manifest },
  };
}

/** Loads a reward-model folder (`quorum train-rm`); its tokenizer comes with it. The caller disposes `ensemble`. */
export function loadRewardModel(
  dir: string,
  architectures: StrategyRegistry<EnsembleArchitecture>,
): Promise<LoadedEnsemble> {
  return loadEnsemble(dir, architectures);
}
