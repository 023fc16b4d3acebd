/**
 * A reward-ensemble checkpoint folder:
 *   quorum.json          kind, architecture + resolved options, k, backbone config, vocab id, plugins, versions
 *   *.safetensors        the architecture's variables grouped by file (backbone, heads, adapters, members)
 *   vocab.json           the vocabulary the ensemble was trained with
 * quorum.json is written last (atomically), so a folder without it is an unfinished save.
 * Loading checks every piece (architecture registered, k, shapes, vocab) before assigning any weight.
 */

import { existsSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type GptConfig, resolveGptConfig } from '@quorum/backbone';
import {
  CheckpointError,
  Rng,
  readSafetensors,
  recordsToTensors,
  type StrategyRegistry,
  tensorsToRecords,
  writeFileAtomic,
  writeJsonAtomic,
  writeSafetensors,
} from '@quorum/core';
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

export interface SaveEnsembleOptions {
  readonly architectureSource: string;
  readonly vocab: { readonly id: string; readonly size: number; readonly json: unknown };
  readonly training?: Readonly<Record<string, unknown>>;
}

/** Writes the ensemble's files, then quorum.json (each file atomically). */
export async function saveEnsemble(
  dir: string,
  ensemble: TrainableEnsemble,
  options: SaveEnsembleOptions,
): Promise<EnsembleManifest> {
  mkdirSync(dir, { recursive: true });
  const files = ensemble.tensorFiles();
  for (const [file, vars] of Object.entries(files)) {
    const target = path.join(dir, file);
    mkdirSync(path.dirname(target), { recursive: true });
    await writeSafetensors(target, await tensorsToRecords(vars as Record<string, tf.Tensor>), {
      architecture: ensemble.architecture,
    });
  }
  await writeFileAtomic(path.join(dir, 'vocab.json'), JSON.stringify(options.vocab.json));
  const manifest: EnsembleManifest = {
    kind: 'quorum-reward-ensemble',
    formatVersion: 1,
    architecture: ensemble.architecture,
    architectureSource: options.architectureSource,
    options: ensemble.options,
    members: ensemble.members,
    gptConfig: ensemble.gptConfig,
    vocab: { id: options.vocab.id, size: options.vocab.size },
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
  /** The vocab.json content (build a Tokenizer from it). */
  readonly vocabJson: unknown;
}

/**
 * Loads a reward ensemble. The architecture must be registered (a plugin's architecture needs its plugin
 * loaded); every tensor must be present with the shape the architecture builds.
 */
export async function loadEnsemble(
  dir: string,
  architectures: StrategyRegistry<EnsembleArchitecture>,
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
  const vocabFile = path.join(dir, 'vocab.json');
  const vocabJson = existsSync(vocabFile) ? JSON.parse(await readFile(vocabFile, 'utf8')) : undefined;
  return { ensemble, manifest, vocabJson };
}
