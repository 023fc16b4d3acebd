/**
 * A reward-ensemble checkpoint folder:
 *   quorum.json          kind, architecture + resolved options, k, backbone config, vocab id, plugins, versions
 *   *.safetensors        the architecture's variables grouped by file (backbone, heads, adapters, members)
 *   tokenizer files      the tokenizer the ensemble was trained with, its `files()`: Quorum's vocab.json,
 *                        or a Hugging Face tokenizer.json (+ tokenizer_config.json, special_tokens_map.json,
 *                        quorum-tokenizer.json); `loadTokenizer` reads either. quorum.json's `vocab`
 *                        ({id, size}) names the tokenizer (the field keeps its name for older checkpoints).
 * quorum.json is written last (atomically), so a folder without it is an unfinished save.
 * Loading checks every piece (architecture registered, k, tokenizer id, shapes) before assigning any weight.
 */

import { existsSync, mkdirSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { type GptConfig, resolveGptConfig } from '@quorum/backbone';
import {
  CheckpointError,
  ConfigError,
  Rng,
  readSafetensors,
  recordsToTensors,
  type StrategyRegistry,
  tensorsToRecords,
  writeFileAtomic,
  writeJsonAtomic,
  writeSafetensors,
} from '@quorum/core';
import { loadTokenizer, type TextTokenizer, TOKENIZER_FILE_LIMITS, Tokenizer } from '@quorum/data';
import type * as tf from '@tensorflow/tfjs';
import type { EnsembleArchitecture, TrainableEnsemble } from './architecture.js';

export const ENSEMBLE_MANIFEST = 'quorum.json';

export interface EnsembleManifest {
  readonly kind: 'quorum-reward-ensemble';
  readonly formatVersion: 1;
  readonly architecture: string;
  /** The package that registered the architecture (a plugin must be loaded to read this checkpoint). */
  readonly architectureSource: string;
  readonly options: Readonly<Record<string, unknown>>;
  readonly members: number;
  readonly gptConfig: GptConfig;
  readonly vocab: { readonly id: string; readonly size: number };
  readonly files: readonly string[];
  /** Free-form facts about training (data, steps, metrics), for reports. */
  readonly training?: Readonly<Record<string, unknown>>;
  readonly createdAt: string;
}

/** What a save needs of a tokenizer: its identity and its files (any `TextTokenizer` fits). */
export type SavedTokenizer = Pick<TextTokenizer, 'id' | 'vocabSize' | 'files'>;

interface SaveEnsembleCommon {
  readonly architectureSource: string;
  readonly training?: Readonly<Record<string, unknown>>;
}

export type SaveEnsembleOptions = SaveEnsembleCommon &
  (
    | {
        /**
         * The tokenizer the ensemble was trained with: its `files()` are written beside the weights, its id
         * and size go to quorum.json's `vocab`. Its size must be the backbone's `vocabSize`.
         */
        readonly tokenizer: SavedTokenizer;
        readonly vocab?: undefined;
      }
    | {
        /**
         * vocab.json's content with its id and size.
         * @deprecated pass `tokenizer` (this writes Quorum's vocab.json only).
         */
        readonly vocab: { readonly id: string; readonly size: number; readonly json: unknown };
        readonly tokenizer?: undefined;
      }
  );

/** The tokenizer files of a save: name → text, each name a plain file name that no other file uses. */
function tokenizerFilesOf(options: SaveEnsembleOptions, taken: ReadonlySet<string>): Record<string, string> {
  if (options.tokenizer === undefined) return { 'vocab.json': JSON.stringify(options.vocab.json) };
  const files = options.tokenizer.files();
  if (Object.keys(files).length === 0) {
    throw new ConfigError('the tokenizer has no files to save', {
      location: { field: 'tokenizer.files' },
      hint: 'pass a tokenizer of @quorum/data (Tokenizer, HfTokenizer), whose files() loadTokenizer reads',
    });
  }
  for (const name of Object.keys(files)) {
    if (name === '' || path.basename(name) !== name || name === '.' || name === '..' || taken.has(name)) {
      throw new ConfigError(
        `tokenizer file name ${JSON.stringify(name)} is not a plain file name of its own in a checkpoint`,
        {
          location: { field: 'tokenizer.files' },
          hint: `name the files without folders, other than ${[...taken].join(', ')}`,
        },
      );
    }
  }
  return { ...files };
}

/**
 * Writes the ensemble's files and its tokenizer's, then quorum.json (each file atomically). Tokenizer
 * files of another tokenizer left in the folder by an earlier save are removed (`loadTokenizer` would
 * read them).
 */
export async function saveEnsemble(
  dir: string,
  ensemble: TrainableEnsemble,
  options: SaveEnsembleOptions,
): Promise<EnsembleManifest> {
  const vocab =
    options.tokenizer === undefined
      ? { id: options.vocab.id, size: options.vocab.size }
      : { id: options.tokenizer.id, size: options.tokenizer.vocabSize };
  if (options.tokenizer !== undefined && vocab.size !== ensemble.gptConfig.vocabSize) {
    throw new ConfigError(
      `the tokenizer has ${vocab.size} ids but the ensemble's backbone has vocabSize ${ensemble.gptConfig.vocabSize}`,
      {
        location: { field: 'tokenizer' },
        hint: 'pass the tokenizer the ensemble was built and trained with',
      },
    );
  }
  const files = ensemble.tensorFiles();
  const tokenizerFiles = tokenizerFilesOf(
    options,
    new Set([ENSEMBLE_MANIFEST, 'metrics.jsonl', 'eval.json', 'train-state', ...Object.keys(files)]),
  );
  mkdirSync(dir, { recursive: true });
  for (const [file, vars] of Object.entries(files)) {
    const target = path.join(dir, file);
    mkdirSync(path.dirname(target), { recursive: true });
    await writeSafetensors(target, await tensorsToRecords(vars as Record<string, tf.Tensor>), {
      architecture: ensemble.architecture,
    });
  }
  for (const name of Object.keys(TOKENIZER_FILE_LIMITS))
    if (!(name in tokenizerFiles)) await rm(path.join(dir, name), { force: true });
  for (const [name, text] of Object.entries(tokenizerFiles))
    await writeFileAtomic(path.join(dir, name), text);
  const manifest: EnsembleManifest = {
    kind: 'quorum-reward-ensemble',
    formatVersion: 1,
    architecture: ensemble.architecture,
    architectureSource: options.architectureSource,
    options: ensemble.options,
    members: ensemble.members,
    gptConfig: ensemble.gptConfig,
    vocab,
    files: Object.keys(files),
    ...(options.training === undefined ? {} : { training: options.training }),
    createdAt: new Date().toISOString(),
  };
  await writeJsonAtomic(path.join(dir, ENSEMBLE_MANIFEST), manifest);
  return manifest;
}

/** Reads and checks quorum.json of a reward-ensemble folder. */
export async function readEnsembleManifest(dir: string): Promise<EnsembleManifest> {
  const file = path.join(dir, ENSEMBLE_MANIFEST);
  if (!existsSync(file)) {
    throw new CheckpointError(`no ${ENSEMBLE_MANIFEST} in ${dir}`, {
      location: { file },
      hint: existsSync(dir)
        ? 'the folder is not a finished reward-model checkpoint (train one with `quorum train-rm --out DIR`)'
        : 'check the path to the reward model',
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (cause) {
    throw new CheckpointError(`is not valid JSON (${(cause as Error).message})`, {
      location: { file },
      hint: 'the checkpoint is damaged; retrain or restore it',
      cause,
    });
  }
  const m = raw as Partial<EnsembleManifest>;
  if (m.kind !== 'quorum-reward-ensemble') {
    throw new CheckpointError(`kind is ${JSON.stringify(m.kind)}, expected "quorum-reward-ensemble"`, {
      location: { file, field: 'kind' },
      hint: 'pass a reward-model folder (an SFT policy folder is not a reward model)',
    });
  }
  for (const field of ['architecture', 'members', 'gptConfig', 'vocab', 'files'] as const) {
    if (m[field] === undefined)
      throw new CheckpointError(`field "${field}" is missing`, {
        location: { file, field },
        hint: 'the checkpoint is damaged; retrain it',
      });
  }
  return { ...(m as EnsembleManifest), gptConfig: resolveGptConfig(m.gptConfig, 'gptConfig') };
}

export interface LoadedEnsemble {
  readonly ensemble: TrainableEnsemble;
  readonly manifest: EnsembleManifest;
  /** The tokenizer the ensemble was trained with (`loadTokenizer` of the folder; its id is the manifest's). */
  readonly tokenizer: TextTokenizer;
  /**
   * The vocab.json content, `undefined` for a folder with a Hugging Face tokenizer.
   * @deprecated use `tokenizer`; kept for callers that build a `Tokenizer` from it.
   */
  readonly vocabJson: unknown;
}

export interface LoadEnsembleOptions {
  /** Receives the tokenizer's notes (a Hugging Face pad token falling back to eos, …); default console.warn. */
  readonly onWarning?: ((message: string) => void) | undefined;
}

/**
 * Loads a reward ensemble and its tokenizer. The architecture must be registered (a plugin's architecture
 * needs its plugin loaded); the tokenizer must be the one the manifest names; every tensor must be present
 * with the shape the architecture builds.
 */
export async function loadEnsemble(
  dir: string,
  architectures: StrategyRegistry<EnsembleArchitecture>,
  options: LoadEnsembleOptions = {},
): Promise<LoadedEnsemble> {
  const manifest = await readEnsembleManifest(dir);
  if (!architectures.has(manifest.architecture)) {
    throw new CheckpointError(
      `needs ensemble architecture "${manifest.architecture}" from ${manifest.architectureSource}, which is not loaded. Loaded: ${architectures.names().join(', ')}`,
      {
        location: { file: path.join(dir, ENSEMBLE_MANIFEST), field: 'architecture' },
        hint: `load it with --plugin ${manifest.architectureSource}`,
      },
    );
  }
  const tokenizer = await loadTokenizer(dir, {
    vocabSize: manifest.vocab.size,
    onWarning: options.onWarning,
  });
  if (tokenizer.id !== manifest.vocab.id) {
    throw new CheckpointError(
      `names tokenizer ${JSON.stringify(manifest.vocab.id)}, but the folder's tokenizer is ${JSON.stringify(tokenizer.id)}`,
      {
        location: { file: path.join(dir, ENSEMBLE_MANIFEST), field: 'vocab.id' },
        hint: 'the tokenizer files were replaced; restore the ones the ensemble was trained with',
      },
    );
  }
  const records: Record<string, Awaited<ReturnType<typeof readSafetensors>>> = {};
  for (const file of manifest.files) records[file] = await readSafetensors(path.join(dir, file));
  const arch = architectures.create([manifest.architecture, manifest.options], 'architecture');
  const ensemble = arch.build({ gptConfig: manifest.gptConfig, members: manifest.members, rng: new Rng(0) });
  try {
    const expected = ensemble.tensorFiles();
    for (const [file, vars] of Object.entries(expected)) {
      const contents = records[file];
      const where = path.join(dir, file);
      if (contents === undefined)
        throw new CheckpointError('file is missing', {
          location: { file: where },
          hint: 'the checkpoint is incomplete; retrain it',
        });
      for (const [name, v] of Object.entries(vars)) {
        const rec = contents.tensors[name];
        if (rec === undefined) {
          throw new CheckpointError(`tensor "${name}" is missing`, {
            location: { file: where },
            hint: name.includes('.head.')
              ? 'a member lost its reward head; the checkpoint is unusable'
              : 'the file belongs to another architecture or config',
          });
        }
        if (rec.shape.length !== v.shape.length || rec.shape.some((d, i) => d !== v.shape[i])) {
          throw new CheckpointError(
            `tensor "${name}" has shape [${rec.shape.join(', ')}], the architecture builds [${v.shape.join(', ')}]`,
            {
              location: { file: where },
              hint: 'the quorum.json does not match the weights; the checkpoint is damaged',
            },
          );
        }
      }
    }
    for (const [file, vars] of Object.entries(expected)) {
      const tensors = recordsToTensors(
        (records[file] as Awaited<ReturnType<typeof readSafetensors>>).tensors,
      );
      for (const [name, v] of Object.entries(vars)) v.assign(tensors[name] as tf.Tensor);
      for (const t of Object.values(tensors)) t.dispose();
    }
  } catch (error) {
    ensemble.dispose();
    throw error;
  }
  const vocabJson = tokenizer instanceof Tokenizer ? tokenizer.vocab.toJSON() : undefined;
  return { ensemble, manifest, tokenizer, vocabJson };
}
