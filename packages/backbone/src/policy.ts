/**
 * A policy checkpoint folder (what `quorum sft` writes and Best-of-n / PPO / eval read):
 *   quorum.json            kind "quorum-policy", the backbone config, the vocabulary id, training facts
 *   backbone.safetensors   the weights (config also in its metadata)
 *   vocab.json             the vocabulary (build the tokenizer with @quorum/data's Vocab.fromJSON)
 * quorum.json is written last, so a folder without it is an unfinished save.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CheckpointError, writeFileAtomic, writeJsonAtomic } from '@quorum/core';
import { loadGpt, saveGpt } from './checkpoint.js';
import type { GptConfig } from './config.js';
import type { GptParams } from './model.js';

export const POLICY_MANIFEST = 'quorum.json';
export const POLICY_WEIGHTS = 'backbone.safetensors';

export interface PolicyManifest {
  readonly kind: 'quorum-policy';
  readonly formatVersion: 1;
  readonly gptConfig: GptConfig;
  readonly vocab: { readonly id: string; readonly size: number };
  readonly training?: Readonly<Record<string, unknown>>;
  readonly createdAt: string;
}

export interface SavePolicyOptions {
  readonly config: GptConfig;
  readonly params: GptParams;
  readonly vocab: { readonly id: string; readonly size: number; readonly json: unknown };
  readonly training?: Readonly<Record<string, unknown>>;
}

export async function savePolicy(dir: string, options: SavePolicyOptions): Promise<PolicyManifest> {
  mkdirSync(dir, { recursive: true });
  await saveGpt(path.join(dir, POLICY_WEIGHTS), options.config, options.params);
  await writeFileAtomic(path.join(dir, 'vocab.json'), JSON.stringify(options.vocab.json));
  const manifest: PolicyManifest = {
    kind: 'quorum-policy',
    formatVersion: 1,
    gptConfig: options.config,
    vocab: { id: options.vocab.id, size: options.vocab.size },
    ...(options.training === undefined ? {} : { training: options.training }),
    createdAt: new Date().toISOString(),
  };
  await writeJsonAtomic(path.join(dir, POLICY_MANIFEST), manifest);
  return manifest;
}

export interface LoadedPolicy {
  readonly manifest: PolicyManifest;
  readonly config: GptConfig;
  readonly params: GptParams;
  /** vocab.json's content. */
  readonly vocabJson: unknown;
}

export async function loadPolicy(dir: string): Promise<LoadedPolicy> {
  const file = path.join(dir, POLICY_MANIFEST);
  if (!existsSync(file)) {
    throw new CheckpointError(`no ${POLICY_MANIFEST} in ${dir}`, {
      location: { file },
      hint: existsSync(dir)
        ? 'the folder is not a finished policy (train one with `quorum sft --out DIR`)'
        : 'check the path to the policy',
    });
  }
  const manifest = JSON.parse(await readFile(file, 'utf8')) as PolicyManifest;
  if (manifest.kind !== 'quorum-policy') {
    throw new CheckpointError(`kind is ${JSON.stringify(manifest.kind)}, expected "quorum-policy"`, {
      location: { file, field: 'kind' },
      hint: 'pass a policy folder written by `quorum sft` (a reward model is not a policy)',
    });
  }
  const { config, params } = await loadGpt(path.join(dir, POLICY_WEIGHTS));
  const vocabJson = JSON.parse(await readFile(path.join(dir, 'vocab.json'), 'utf8')) as unknown;
  if (config.vocabSize !== manifest.vocab.size) {
    throw new CheckpointError(
      `the weights have vocabSize ${config.vocabSize} but quorum.json names a vocabulary of ${manifest.vocab.size}`,
      {
        location: { file },
        hint: 'the folder mixes files from two runs; retrain the policy',
      },
    );
  }
  return { manifest, config, params, vocabJson };
}
