/**
 * A policy checkpoint folder (what `quorum sft` writes and Best-of-n / PPO / eval read):
 *   quorum.json            kind "quorum-policy", the backbone config, the tokenizer id (`vocab`), the names
 *                          of the tokenizer files (`tokenizerFiles`), training facts
 *   backbone.safetensors   the weights (config also in its metadata)
 *   tokenizer files        the tokenizer's files as @quorum/data's `TextTokenizer.files()` gives them:
 *                          vocab.json (Quorum's tokenizer), or tokenizer.json, tokenizer_config.json, …
 *                          (a Hugging Face tokenizer). Folders written before `tokenizerFiles` have vocab.json.
 * The backbone knows no tokenizer: it stores the files as text and reports which are present; the caller
 * builds the tokenizer with @quorum/data's `loadTokenizer(dir)` and checks its id against `manifest.vocab.id`.
 * quorum.json is written last, so a folder without it is an unfinished save.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import {
  CheckpointError,
  ConfigError,
  checkConfinedName,
  printable,
  readConfinedJson,
  statConfinedFile,
  writeFileAtomic,
  writeJsonAtomic,
} from '@quorum/core';
import { gptConfigFromCheckpoint, loadGptFromFolder, saveGpt } from './checkpoint.js';
import type { GptConfig } from './config.js';
import { disposeGpt, type GptParams } from './model.js';

export const POLICY_MANIFEST = 'quorum.json';
export const POLICY_WEIGHTS = 'backbone.safetensors';
/** The tokenizer file of folders written before quorum.json listed `tokenizerFiles`. */
const LEGACY_TOKENIZER_FILES: readonly string[] = ['vocab.json'];
/** Largest tokenizer file a policy folder may hold (a Hugging Face tokenizer.json is tens of MB). */
const TOKENIZER_FILE_LIMIT = 64 * 1024 * 1024;

export interface PolicyManifest {
  readonly kind: 'quorum-policy';
  readonly formatVersion: 1;
  readonly gptConfig: GptConfig;
  /** The tokenizer's identity: its id and its size (the embedding rows). */
  readonly vocab: { readonly id: string; readonly size: number };
  /** The tokenizer's files in the folder; absent in older folders, which hold vocab.json. */
  readonly tokenizerFiles?: readonly string[];
  readonly training?: Readonly<Record<string, unknown>>;
  readonly createdAt: string;
}

interface SavePolicyCommon {
  readonly config: GptConfig;
  readonly params: GptParams;
  readonly training?: Readonly<Record<string, unknown>>;
}

export type SavePolicyOptions = SavePolicyCommon &
  (
    | {
        /** The tokenizer's id and size (`tokenizer.id`, `tokenizer.vocabSize`). */
        readonly vocab: { readonly id: string; readonly size: number; readonly json?: undefined };
        /** The tokenizer's files, name → text (`tokenizer.files()` of @quorum/data), written beside the weights. */
        readonly tokenizerFiles: Readonly<Record<string, string>>;
      }
    | {
        /**
         * The tokenizer's id and size with vocab.json's content.
         * @deprecated pass `vocab: {id, size}` and `tokenizerFiles: tokenizer.files()`.
         */
        readonly vocab: { readonly id: string; readonly size: number; readonly json: unknown };
        readonly tokenizerFiles?: undefined;
      }
  );

/** A name quorum.json may list as a tokenizer file: a plain file name that is not the folder's own. */
function isTokenizerFileName(name: unknown): name is string {
  return (
    typeof name === 'string' &&
    name !== '' &&
    path.basename(name) === name &&
    name !== '.' &&
    name !== '..' &&
    name !== POLICY_MANIFEST &&
    name !== POLICY_WEIGHTS
  );
}

/** The tokenizer files an earlier save left in `dir` (read from its quorum.json; vocab.json for older ones). */
async function previousTokenizerFiles(dir: string): Promise<readonly string[]> {
  try {
    const old = JSON.parse(
      await readFile(path.join(dir, POLICY_MANIFEST), 'utf8'),
    ) as Partial<PolicyManifest>;
    const listed = Array.isArray(old.tokenizerFiles) ? old.tokenizerFiles.filter(isTokenizerFileName) : [];
    return [...LEGACY_TOKENIZER_FILES, ...listed];
  } catch {
    return LEGACY_TOKENIZER_FILES;
  }
}

/**
 * Writes the weights and the tokenizer files, then quorum.json (each file atomically). Tokenizer files
 * of an earlier save into the same folder that the new tokenizer does not have are removed, so that
 * `loadTokenizer(dir)` cannot pick them up.
 */
export async function savePolicy(dir: string, options: SavePolicyOptions): Promise<PolicyManifest> {
  const files: Readonly<Record<string, string>> = options.tokenizerFiles ?? {
    'vocab.json': JSON.stringify(options.vocab.json),
  };
  const names = Object.keys(files);
  if (names.length === 0) {
    throw new ConfigError('tokenizerFiles is empty', {
      location: { field: 'tokenizerFiles' },
      hint: 'pass the files of the tokenizer the policy was trained with (`tokenizer.files()` of @quorum/data)',
    });
  }
  for (const name of names) {
    if (!isTokenizerFileName(name)) {
      throw new ConfigError(
        `tokenizer file name ${JSON.stringify(name)} is not a plain file name of its own`,
        {
          location: { field: 'tokenizerFiles' },
          hint: `name the files without folders, other than ${POLICY_MANIFEST} and ${POLICY_WEIGHTS}`,
        },
      );
    }
  }
  if (options.vocab.size !== options.config.vocabSize) {
    throw new ConfigError(
      `the tokenizer has ${options.vocab.size} ids but the policy has vocabSize ${options.config.vocabSize}`,
      {
        location: { field: 'vocab.size' },
        hint: 'pass the tokenizer the policy was built and trained with',
      },
    );
  }
  mkdirSync(dir, { recursive: true });
  const stale = (await previousTokenizerFiles(dir)).filter((name) => !(name in files));
  await saveGpt(path.join(dir, POLICY_WEIGHTS), options.config, options.params);
  for (const name of stale) await rm(path.join(dir, name), { force: true });
  for (const name of names) await writeFileAtomic(path.join(dir, name), files[name] as string);
  const manifest: PolicyManifest = {
    kind: 'quorum-policy',
    formatVersion: 1,
    gptConfig: options.config,
    vocab: { id: options.vocab.id, size: options.vocab.size },
    tokenizerFiles: names,
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
  /**
   * The tokenizer files in the folder (each checked to be present): build the tokenizer with
   * @quorum/data's `loadTokenizer(dir, { vocabSize: manifest.vocab.size })` and compare its id with
   * `manifest.vocab.id`.
   */
  readonly tokenizerFiles: readonly string[];
  /**
   * vocab.json's content, `undefined` when the tokenizer is not Quorum's (a Hugging Face one).
   * @deprecated build the tokenizer with @quorum/data's `loadTokenizer(dir)`.
   */
  readonly vocabJson: unknown;
}

/** quorum.json, vocab.json: JSON files of a policy folder are small; larger ones are refused unread. */
const POLICY_JSON_LIMIT = 16 * 1024 * 1024;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** quorum.json of a policy folder, every field checked (it is untrusted input). */
async function readPolicyManifest(dir: string): Promise<PolicyManifest> {
  const file = path.join(dir, POLICY_MANIFEST);
  if (!existsSync(file)) {
    throw new CheckpointError(`no ${POLICY_MANIFEST} in ${dir}`, {
      location: { file },
      hint: existsSync(dir)
        ? 'the folder is not a finished policy (train one with `quorum sft --out DIR`)'
        : 'check the path to the policy',
    });
  }
  const raw = await readConfinedJson(dir, POLICY_MANIFEST, { maxBytes: POLICY_JSON_LIMIT });
  const bad = (
    field: string,
    message: string,
    hint = 'the checkpoint is damaged; save the policy again',
  ): never => {
    throw new CheckpointError(message, { location: { file, field }, hint });
  };
  if (!isObject(raw)) return bad('json', `is ${printable(raw, 40)}, not a JSON object`);
  if (raw.kind !== 'quorum-policy') {
    return bad(
      'kind',
      `kind is ${printable(raw.kind, 60)}, expected "quorum-policy"`,
      'pass a policy folder written by `quorum sft` (a reward model is not a policy)',
    );
  }
  const vocab = raw.vocab;
  if (!isObject(vocab) || typeof vocab.id !== 'string' || !Number.isSafeInteger(vocab.size)) {
    return bad('vocab', `field "vocab" is ${printable(vocab, 60)}, not {id: string, size: integer}`);
  }
  const gptConfig = gptConfigFromCheckpoint(raw.gptConfig, file, 'gptConfig');
  if (vocab.size !== gptConfig.vocabSize) {
    return bad(
      'vocab.size',
      `vocab.size is ${vocab.size} but gptConfig.vocabSize is ${gptConfig.vocabSize}`,
      'the folder mixes files from two runs; save the policy again',
    );
  }
  const listed = raw.tokenizerFiles ?? LEGACY_TOKENIZER_FILES;
  if (
    !Array.isArray(listed) ||
    listed.length === 0 ||
    listed.length > 64 ||
    !listed.every(isTokenizerFileName)
  ) {
    return bad(
      'tokenizerFiles',
      `field "tokenizerFiles" must list the tokenizer's file names, got ${printable(listed, 80)}`,
    );
  }
  listed.forEach((name, i) => {
    checkConfinedName(name, { file, field: `tokenizerFiles[${i}]` });
  });
  return {
    ...(raw as unknown as PolicyManifest),
    gptConfig,
    vocab: { id: vocab.id, size: vocab.size as number },
    tokenizerFiles: listed,
  };
}

/**
 * Loads a policy folder, which is untrusted input: quorum.json is checked field by field (its config
 * bounded), every file is read only inside the folder, as a regular file whose size is checked before
 * it is read, and the weights' header must match the config (float dtypes, finite values) before a
 * weight is allocated. Every problem is a CheckpointError naming the file and field.
 */
export async function loadPolicy(dir: string): Promise<LoadedPolicy> {
  const file = path.join(dir, POLICY_MANIFEST);
  const manifest = await readPolicyManifest(dir);
  const listed = manifest.tokenizerFiles as readonly string[];
  for (const [i, name] of listed.entries()) {
    const found = await statConfinedFile(dir, name, {
      maxBytes: TOKENIZER_FILE_LIMIT,
      listedAt: { file, field: `tokenizerFiles[${i}]` },
    });
    if (found === undefined) {
      throw new CheckpointError(`lists tokenizer file ${name}, which is missing`, {
        location: { file, field: 'tokenizerFiles' },
        hint: `copy ${name} back from where the policy was trained, or save the policy again`,
      });
    }
  }
  const { config, params } = await loadGptFromFolder(dir, POLICY_WEIGHTS);
  if (config.vocabSize !== manifest.vocab.size) {
    disposeGpt(params);
    throw new CheckpointError(
      `the weights have vocabSize ${config.vocabSize} but quorum.json names a vocabulary of ${manifest.vocab.size}`,
      {
        location: { file },
        hint: 'the folder mixes files from two runs; retrain the policy',
      },
    );
  }
  let vocabJson: unknown;
  try {
    vocabJson = listed.includes('vocab.json')
      ? await readConfinedJson(dir, 'vocab.json', { maxBytes: POLICY_JSON_LIMIT })
      : undefined;
  } catch (error) {
    disposeGpt(params);
    throw error;
  }
  return { manifest, config, params, tokenizerFiles: listed, vocabJson };
}
