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
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { type GptConfig, paramCount, resolveGptConfig } from '@quorum/backbone';
import {
  CheckpointError,
  ConfigError,
  type ConfinedFile,
  checkConfinedName,
  checkFiniteTensors,
  checkTensorDTypes,
  decodeSafetensors,
  escapedMessage,
  escapeUntrusted,
  MAX_SAFETENSORS_BYTES,
  printable,
  QuorumError,
  Rng,
  readConfinedBytes,
  readConfinedJson,
  readSafetensorsHeader,
  recordsToTensors,
  requireConfinedFile,
  type SafetensorsContents,
  type SafetensorsDType,
  type SafetensorsHeader,
  type StrategyRegistry,
  tensorsToRecords,
  writeFileAtomic,
  writeJsonAtomic,
  writeSafetensors,
} from '@quorum/core';
import { loadTokenizer, type TextTokenizer, TOKENIZER_FILE_LIMITS, Tokenizer } from '@quorum/data';
import { adapterParamCount, resolveLoraConfig } from '@quorum/lora';
import type * as tf from '@tensorflow/tfjs';
import type { EnsembleArchitecture, TrainableEnsemble } from './architecture.js';
import { loraArchitectureOptions } from './architectures/lora.js';

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

/** quorum.json is small; a larger one is refused before it is read. */
const MANIFEST_LIMIT = 16 * 1024 * 1024;
/** Most members a checkpoint may declare (the paper uses up to 10; each member costs memory). */
export const MAX_ENSEMBLE_MEMBERS = 1024;
/** Most weight files quorum.json may list. */
const MAX_FILES = 4096;
/** Element types of an ensemble's weights (each becomes float32); integer tensors are refused. */
const WEIGHT_DTYPES: readonly SafetensorsDType[] = ['F32', 'F16', 'BF16', 'F64'];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads and checks quorum.json of a reward-ensemble folder. The folder is untrusted input: every field
 * is checked (types, `members` and the backbone config bounded, each `files` entry a plain name inside
 * the folder), and every problem is a CheckpointError naming the file and key, with the folder's
 * strings escaped.
 */
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
  const raw = await readConfinedJson(dir, ENSEMBLE_MANIFEST, { maxBytes: MANIFEST_LIMIT });
  const damaged = 'the checkpoint is damaged; retrain or restore it';
  const bad = (field: string, message: string, hint = damaged): never => {
    throw new CheckpointError(message, { location: { file, field }, hint });
  };
  if (!isObject(raw)) return bad('json', `is ${printable(raw, 40)}, not a JSON object`);
  const m = raw;
  if (m.kind !== 'quorum-reward-ensemble') {
    return bad(
      'kind',
      `kind is ${printable(m.kind, 60)}, expected "quorum-reward-ensemble"`,
      'pass a reward-model folder (an SFT policy folder is not a reward model)',
    );
  }
  for (const field of ['architecture', 'members', 'gptConfig', 'vocab', 'files'] as const) {
    if (m[field] === undefined) return bad(field, `field "${field}" is missing`);
  }
  if (m.formatVersion !== undefined && m.formatVersion !== 1) {
    return bad(
      'formatVersion',
      `formatVersion is ${printable(m.formatVersion, 20)}; this version of Quorum reads format 1`,
      'upgrade @quorum/ensemble to read this checkpoint',
    );
  }
  if (typeof m.architecture !== 'string' || m.architecture === '' || m.architecture.length > 200) {
    return bad(
      'architecture',
      `field "architecture" is ${printable(m.architecture, 60)}, not an architecture name`,
    );
  }
  if (typeof m.architectureSource !== 'string' || m.architectureSource.length > 500) {
    return bad(
      'architectureSource',
      `field "architectureSource" is ${printable(m.architectureSource, 60)}, not a package name`,
    );
  }
  if (m.options !== undefined && !isObject(m.options)) {
    return bad(
      'options',
      `field "options" is ${printable(m.options, 60)}, not an object of architecture options`,
    );
  }
  const members = m.members;
  if (
    typeof members !== 'number' ||
    !Number.isSafeInteger(members) ||
    members < 1 ||
    members > MAX_ENSEMBLE_MEMBERS
  ) {
    return bad(
      'members',
      `field "members" is ${printable(members, 30)}, not a whole number from 1 to ${MAX_ENSEMBLE_MEMBERS}`,
    );
  }
  const gptConfig = gptConfigOf(m.gptConfig, file);
  const vocab = m.vocab;
  if (
    !isObject(vocab) ||
    typeof vocab.id !== 'string' ||
    typeof vocab.size !== 'number' ||
    !Number.isSafeInteger(vocab.size) ||
    vocab.size < 1 ||
    vocab.size > GPT_MAX_VOCAB
  ) {
    return bad(
      'vocab',
      `field "vocab" is ${printable(vocab, 80)}, not {id: string, size: a whole number from 1 to ${GPT_MAX_VOCAB}}`,
    );
  }
  const files = m.files;
  if (!Array.isArray(files) || files.length === 0 || files.length > MAX_FILES) {
    return bad('files', `field "files" is ${printable(files, 60)}, not a list of the weight files' names`);
  }
  const seen = new Set<string>();
  files.forEach((name, i) => {
    checkConfinedName(name, { file, field: `files[${i}]` });
    if (!(name as string).endsWith('.safetensors') || seen.has(name as string)) {
      bad(
        `files[${i}]`,
        `names ${printable(name)}, ${seen.has(name as string) ? 'listed twice' : 'not a .safetensors file'}`,
      );
    }
    seen.add(name as string);
  });
  if (m.training !== undefined && !isObject(m.training)) {
    return bad('training', `field "training" is ${printable(m.training, 40)}, not an object`);
  }
  return {
    ...(m as unknown as EnsembleManifest),
    options: (m.options ?? {}) as Record<string, unknown>,
    members,
    gptConfig,
    vocab: { id: vocab.id, size: vocab.size },
    files: files as string[],
  };
}

/** The largest vocabulary a checkpoint may name (the backbone's bound on vocabSize). */
const GPT_MAX_VOCAB = 2 ** 20;

/** quorum.json's backbone config, validated and bounded; a problem names the file and the key. */
function gptConfigOf(raw: unknown, file: string): GptConfig {
  if (!isObject(raw)) {
    throw new CheckpointError(`field "gptConfig" is ${printable(raw, 40)}, not a model config object`, {
      location: { file, field: 'gptConfig' },
      hint: 'the checkpoint is damaged; retrain or restore it',
    });
  }
  try {
    return resolveGptConfig(raw, 'gptConfig');
  } catch (cause) {
    if (!(cause instanceof QuorumError)) throw cause;
    throw new CheckpointError(`has an invalid backbone config: ${escapedMessage(cause)}`, {
      location: { file, field: escapeUntrusted(cause.location?.field ?? 'gptConfig') },
      hint: 'the checkpoint is damaged or was edited; retrain or restore it',
    });
  }
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

/** One listed weight file, located and its header checked, before any tensor data is read. */
interface CheckedFile {
  readonly located: ConfinedFile;
  readonly header: SafetensorsHeader;
}

/**
 * The fewest parameters the ensemble `build` allocates for this manifest, from the config alone:
 * a built-in architecture's exact count of backbones and adapters, else one backbone (every
 * architecture stores at least one). Compared with what the files hold before anything is built.
 */
function parametersToBuild(manifest: EnsembleManifest, builtin: boolean): number {
  const M = paramCount(manifest.gptConfig);
  const k = manifest.members;
  if (!builtin) return M;
  if (manifest.architecture === 'independent') return k * M;
  if (manifest.architecture === 'lora') {
    const parsed = loraArchitectureOptions.safeParse(manifest.options);
    if (!parsed.success) return M;
    const { rank, alpha, dropout, targets, layers } = parsed.data;
    return (
      M +
      k * adapterParamCount(manifest.gptConfig, resolveLoraConfig({ rank, alpha, dropout, targets, layers }))
    );
  }
  return M;
}

function elementsOf(header: SafetensorsHeader): number {
  let n = 0;
  for (const t of header.tensors) n += t.shape.reduce((a, b) => a * b, 1);
  return n;
}

/**
 * Loads a reward ensemble and its tokenizer. The architecture must be registered (a plugin's architecture
 * needs its plugin loaded); the tokenizer must be the one the manifest names; every tensor must be present
 * with the shape the architecture builds.
 *
 * The folder is untrusted input: quorum.json is checked field by field (`readEnsembleManifest`), every
 * file it names is read only inside the folder as a regular file, each weight file's header is checked
 * against its size and the config's parameter count against what the files hold before the ensemble is
 * built, tensors must be float and finite, and every problem is a CheckpointError naming the file and
 * key, the folder's strings escaped.
 */
export async function loadEnsemble(
  dir: string,
  architectures: StrategyRegistry<EnsembleArchitecture>,
  options: LoadEnsembleOptions = {},
): Promise<LoadedEnsemble> {
  const manifest = await readEnsembleManifest(dir);
  const manifestFile = path.join(dir, ENSEMBLE_MANIFEST);
  if (!architectures.has(manifest.architecture)) {
    const source = manifest.architectureSource;
    // A package name or path is printed as is (so the hint can be pasted); anything else escaped.
    const plain = /^[@A-Za-z0-9._/+-]{1,200}$/.test(source);
    throw new CheckpointError(
      `needs ensemble architecture ${printable(manifest.architecture, 60)} from ${printable(source, 120)}, which is not loaded. Loaded: ${architectures.names().join(', ')}`,
      {
        location: { file: manifestFile, field: 'architecture' },
        hint: plain
          ? `load it with --plugin ${source}`
          : `load the plugin that registers it with --plugin (quorum.json names the package ${printable(source, 120)})`,
      },
    );
  }
  const tokenizer = await loadTokenizer(dir, {
    vocabSize: manifest.vocab.size,
    onWarning: options.onWarning,
  });
  if (tokenizer.id !== manifest.vocab.id) {
    throw new CheckpointError(
      `names tokenizer ${printable(manifest.vocab.id)}, but the folder's tokenizer is ${printable(tokenizer.id)}`,
      {
        location: { file: manifestFile, field: 'vocab.id' },
        hint: 'the tokenizer files were replaced; restore the ones the ensemble was trained with',
      },
    );
  }

  // Headers first: each file located, a regular file whose size its header explains, float tensors only.
  const checked = new Map<string, CheckedFile>();
  for (const [i, name] of manifest.files.entries()) {
    const located = await requireConfinedFile(dir, name, {
      maxBytes: MAX_SAFETENSORS_BYTES,
      listedAt: { file: manifestFile, field: `files[${i}]` },
      missingHint: 'the checkpoint is incomplete; copy the whole folder again or retrain it',
    });
    const header = await readSafetensorsHeader(located);
    checkTensorDTypes(header, WEIGHT_DTYPES, located.shown);
    checked.set(name, { located, header });
  }
  const held = [...checked.values()].reduce((n, f) => n + elementsOf(f.header), 0);
  const builtin = architectures.get(manifest.architecture).source === '@quorum/ensemble';
  const needed = parametersToBuild(manifest, builtin);
  if (needed > held) {
    throw new CheckpointError(
      `describes an ensemble of at least ${needed} parameters (${manifest.members} member(s) of a ${paramCount(manifest.gptConfig)}-parameter backbone), but its weight files hold ${held}`,
      {
        location: { file: manifestFile, field: 'gptConfig' },
        hint: 'quorum.json does not match the weights; the checkpoint is damaged or was edited',
      },
    );
  }

  let arch: EnsembleArchitecture;
  try {
    arch = architectures.create([manifest.architecture, manifest.options], 'options');
  } catch (cause) {
    if (!(cause instanceof QuorumError)) throw cause;
    throw new CheckpointError(
      `has options the architecture ${printable(manifest.architecture, 60)} refuses: ${escapedMessage(cause)}`,
      {
        location: { file: manifestFile, field: escapeUntrusted(cause.location?.field ?? 'options') },
        hint: 'the checkpoint was written by another version of the architecture, or edited',
      },
    );
  }
  const ensemble = wrapBuild(
    () => arch.build({ gptConfig: manifest.gptConfig, members: manifest.members, rng: new Rng(0) }),
    manifestFile,
  );
  try {
    const expected = ensemble.tensorFiles();
    for (const [file, vars] of Object.entries(expected)) {
      const contents = checked.get(file);
      const where = path.join(dir, file);
      if (contents === undefined)
        throw new CheckpointError(`file is missing (quorum.json does not list it)`, {
          location: { file: where },
          hint: 'the checkpoint is incomplete; retrain it',
        });
      const tensors = new Map(contents.header.tensors.map((t) => [t.name, t]));
      for (const [name, v] of Object.entries(vars)) {
        const rec = tensors.get(name);
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
      const extra = contents.header.tensors.find((t) => !Object.hasOwn(vars, t.name));
      if (extra !== undefined) {
        throw new CheckpointError(
          `holds tensor ${printable(extra.name)}, which the architecture does not build`,
          {
            location: { file: where },
            hint: 'the quorum.json does not match the weights; the checkpoint is damaged',
          },
        );
      }
    }
    const unused = manifest.files.find((name) => !Object.hasOwn(expected, name));
    if (unused !== undefined) {
      throw new CheckpointError(`lists ${printable(unused)}, which the architecture does not read`, {
        location: { file: manifestFile, field: 'files' },
        hint: 'the quorum.json does not match the architecture; the checkpoint is damaged',
      });
    }
    // Only now the data: sizes are known to match the headers and the headers the architecture.
    const records: Record<string, SafetensorsContents> = {};
    for (const [file, { located }] of checked) {
      const contents = decodeSafetensors(await readConfinedBytes(located), located.shown);
      checkFiniteTensors(contents.tensors, located.shown);
      records[file] = contents;
    }
    for (const [file, vars] of Object.entries(expected)) {
      const tensors = recordsToTensors((records[file] as SafetensorsContents).tensors, path.join(dir, file));
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

/** Runs an architecture's build; a QuorumError (a config it refuses) names quorum.json. */
function wrapBuild(build: () => TrainableEnsemble, manifestFile: string): TrainableEnsemble {
  try {
    return build();
  } catch (cause) {
    if (!(cause instanceof QuorumError)) throw cause;
    throw new CheckpointError(
      `describes an ensemble the architecture cannot build: ${escapedMessage(cause)}`,
      {
        location: { file: manifestFile },
        hint: 'the checkpoint is damaged or was written by another version of the architecture',
      },
    );
  }
}
