/**
 * `adapters.safetensors`: every member's adapter tensors AND its reward head in one file, apart from the
 * base weights. Names are split per member (`member-2.h.0.attn.q.lora_A` [in, r], `member-2.head.w` [D, 1]);
 * the metadata records k, rank, alpha, dropout, targets, layers and a fingerprint of the base model config.
 *
 * Loading checks everything before a tensor is allocated: the format, the base fingerprint (adapters on
 * another base are a CheckpointError naming the differing fields), every adapter tensor's shape, and every
 * member's head — an adapter without its head is an error naming the missing `member-<m>.head.*` tensors.
 */
import type { GptConfig } from '@quorum/backbone';
import {
  CheckpointError,
  ConfigError,
  readSafetensors,
  recordsToTensors,
  type TensorRecord,
  tensorsToRecords,
  writeSafetensors,
} from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { type LoraAdapters, type LoraSiteAdapter, memberAdapterName, toVariable } from './adapters.js';
import { adaptedSites, firstAdaptedLayer, type LoraConfig, resolveLoraConfig } from './config.js';

/** The file's name inside a reward-model checkpoint folder. */
export const ADAPTERS_FILE = 'adapters.safetensors';
/** `__metadata__.format` of an adapters file. */
export const ADAPTERS_FORMAT = 'quorum.lora-adapters/1';
/**
 * A member's reward head tensors: `member-<m>.head.w` [D, 1] and `member-<m>.head.b` [1]. (@quorum/heads had no
 * per-member naming yet when this was written; this is the naming it is asked to use.)
 */
export const HEAD_TENSORS: readonly string[] = ['w', 'b'];

/** Name of member m's head tensor, e.g. `member-2.head.w`. */
export function memberHeadName(member: number, part: string): string {
  return `member-${member}.head.${part}`;
}

/** The facts of a base model that adapters depend on (all of GptConfig's shape fields). */
export interface BaseFingerprint {
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly dModel: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly mlpRatio: number;
  readonly positional: string;
  readonly tieEmbeddings: boolean;
}

export function baseFingerprint(gpt: GptConfig): BaseFingerprint {
  const { vocabSize, contextLength, dModel, nLayers, nHeads, mlpRatio, positional, tieEmbeddings } = gpt;
  return { vocabSize, contextLength, dModel, nLayers, nHeads, mlpRatio, positional, tieEmbeddings };
}

export interface SaveAdaptersMeta {
  /** The base model the adapters were trained on; its fingerprint is stored and checked on load. */
  readonly base: GptConfig;
  /** Extra string facts to keep (e.g. the training step); stored as `user.<key>`. */
  readonly extra?: Readonly<Record<string, string>> | undefined;
  /** Head tensor suffixes every member must have (default HEAD_TENSORS: w, b). */
  readonly headTensors?: readonly string[] | undefined;
}

const HEAD_NAME = /^member-(\d+)\.head\.(.+)$/;

function checkHeads(
  heads: Record<string, tf.Tensor>,
  k: number,
  parts: readonly string[],
  file: string,
): void {
  const unknown = Object.keys(heads).filter((name) => {
    const match = HEAD_NAME.exec(name);
    return match === null || Number(match[1]) >= k || !parts.includes(match[2] as string);
  });
  if (unknown.length > 0) {
    throw new ConfigError(`heads holds tensors that are not a member's head: ${quoteList(unknown)}`, {
      location: { file, field: 'heads' },
      hint: `name them member-<m>.head.<${parts.join('|')}> for m in 0…${k - 1}`,
    });
  }
  const missing = missingHeads(new Set(Object.keys(heads)), k, parts);
  if (missing.length > 0) {
    throw new ConfigError(`refusing to save adapters without their heads: missing ${quoteList(missing)}`, {
      location: { file, field: 'heads' },
      hint: 'pass every member’s head with its adapter; an adapter without its head scores nothing',
    });
  }
}

function missingHeads(names: ReadonlySet<string>, k: number, parts: readonly string[]): string[] {
  const missing: string[] = [];
  for (let m = 0; m < k; m++) {
    for (const p of parts) if (!names.has(memberHeadName(m, p))) missing.push(memberHeadName(m, p));
  }
  return missing;
}

function quoteList(names: readonly string[], max = 8): string {
  const shown = names.slice(0, max).map((n) => `"${n}"`);
  return names.length > max ? `${shown.join(', ')} and ${names.length - max} more` : shown.join(', ');
}

/** Copies one member's [in, r] / [r, out] block out of a stacked [k, …] variable's values. */
function memberRecord(values: Float32Array, member: number, shape: [number, number]): TensorRecord {
  const size = shape[0] * shape[1];
  return { dtype: 'F32', shape, data: values.slice(member * size, (member + 1) * size) };
}

/**
 * Writes every member's adapter and head to `file` (atomically). `heads` maps `member-<m>.head.*` names to
 * tensors; every member must have every head tensor. Nothing is disposed.
 */
export async function saveAdapters(
  file: string,
  adapters: LoraAdapters,
  heads: Record<string, tf.Tensor>,
  meta: SaveAdaptersMeta,
): Promise<void> {
  const k = adapters.members;
  const parts = meta.headTensors ?? HEAD_TENSORS;
  checkHeads(heads, k, parts, file);
  const expected = adaptedSites(meta.base, adapters.config);
  if (
    expected.length !== adapters.sites.length ||
    firstAdaptedLayer(meta.base, adapters.config) !== adapters.firstLayer
  ) {
    throw new ConfigError('the adapters do not fit meta.base', {
      location: { file, field: 'meta.base' },
      hint: 'pass the config of the base model the adapters were trained on',
    });
  }
  const records: Record<string, TensorRecord> = {};
  for (const s of adapters.sites) {
    const a = (await s.a.data()) as Float32Array; // [k, in, r]
    const b = (await s.b.data()) as Float32Array; // [k, r, out]
    for (let m = 0; m < k; m++) {
      records[memberAdapterName(m, s.layer, s.module, 'A')] = memberRecord(a, m, [
        s.inDim,
        adapters.config.rank,
      ]);
      records[memberAdapterName(m, s.layer, s.module, 'B')] = memberRecord(b, m, [
        adapters.config.rank,
        s.outDim,
      ]);
    }
  }
  Object.assign(records, await tensorsToRecords(heads));
  const c = adapters.config;
  const metadata: Record<string, string> = {
    format: ADAPTERS_FORMAT,
    members: String(k),
    rank: String(c.rank),
    alpha: String(c.alpha),
    dropout: String(c.dropout),
    targets: JSON.stringify(c.targets),
    layers: JSON.stringify(c.layers),
    head_tensors: JSON.stringify(parts),
    base: JSON.stringify(baseFingerprint(meta.base)),
  };
  for (const [key, value] of Object.entries(meta.extra ?? {})) metadata[`user.${key}`] = value;
  await writeSafetensors(file, records, metadata);
}

export interface LoadedAdapters {
  readonly adapters: LoraAdapters;
  /** Every member's head, by name (`member-<m>.head.w` …), as trainable variables. */
  readonly heads: Record<string, tf.Variable>;
  /** The `extra` facts given to saveAdapters. */
  readonly extra: Record<string, string>;
}

function metaJson(metadata: Record<string, string>, key: string, file: string): unknown {
  const text = metadata[key];
  if (text === undefined) {
    throw new CheckpointError(`metadata "${key}" is missing`, {
      location: { file, field: `__metadata__.${key}` },
      hint: 'the file was not written by saveAdapters; save the adapters again',
    });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new CheckpointError(`metadata "${key}" is not JSON: ${text.slice(0, 60)}`, {
      location: { file, field: `__metadata__.${key}` },
      hint: 'the file is corrupt; save the adapters again',
      cause,
    });
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Reads `file` and makes the adapters (stacked [k, …] variables) and every member's head, for the base model
 * `base`. Every check runs before the first tensor is made, so a failed load leaks nothing.
 */
export async function loadAdapters(file: string, base: GptConfig): Promise<LoadedAdapters> {
  const { tensors: records, metadata } = await readSafetensors(file);
  if (metadata.format !== ADAPTERS_FORMAT) {
    throw new CheckpointError(`not an adapters file (format ${JSON.stringify(metadata.format ?? null)})`, {
      location: { file },
      hint: `expected __metadata__.format "${ADAPTERS_FORMAT}", written by saveAdapters`,
    });
  }
  const k = Number(metaJson(metadata, 'members', file));
  if (!Number.isInteger(k) || k < 1) {
    throw new CheckpointError(`metadata "members" is ${metadata.members}, not a positive integer`, {
      location: { file, field: '__metadata__.members' },
      hint: 'the file is corrupt; save the adapters again',
    });
  }
  let config: LoraConfig;
  try {
    config = resolveLoraConfig({
      rank: metaJson(metadata, 'rank', file),
      alpha: metaJson(metadata, 'alpha', file),
      dropout: metaJson(metadata, 'dropout', file),
      targets: metaJson(metadata, 'targets', file),
      layers: metaJson(metadata, 'layers', file),
    });
  } catch (cause) {
    if (cause instanceof CheckpointError) throw cause;
    throw new CheckpointError(`the stored LoRA config is invalid: ${(cause as Error).message}`, {
      location: { file, field: '__metadata__' },
      hint: 'the file is corrupt or from a newer Quorum; save the adapters again',
      cause,
    });
  }

  const stored = metaJson(metadata, 'base', file) as Record<string, unknown>;
  const current = baseFingerprint(base) as unknown as Record<string, unknown>;
  const differ = Object.keys(current).filter((key) => stored?.[key] !== current[key]);
  if (differ.length > 0) {
    const was = differ.map((key) => `${key} ${JSON.stringify(stored?.[key])}`).join(', ');
    const now = differ.map((key) => `${key} ${JSON.stringify(current[key])}`).join(', ');
    throw new CheckpointError(
      `the adapters were trained on another base model: they need ${was}, this base has ${now}`,
      {
        location: { file },
        hint: 'load them onto the backbone they were trained with (the same checkpoint folder’s backbone.safetensors)',
      },
    );
  }

  const rank = config.rank;
  const sites = adaptedSites(base, config);
  const expected = new Map<string, number[]>();
  for (const s of sites) {
    for (let m = 0; m < k; m++) {
      expected.set(memberAdapterName(m, s.layer, s.module, 'A'), [s.inDim, rank]);
      expected.set(memberAdapterName(m, s.layer, s.module, 'B'), [rank, s.outDim]);
    }
  }
  const missing = [...expected.keys()].filter((name) => records[name] === undefined);
  if (missing.length > 0) {
    throw new CheckpointError(`adapter tensors are missing: ${quoteList(missing)}`, {
      location: { file },
      hint: 'the file is truncated or was written for another LoRA config; save the adapters again',
    });
  }
  for (const [name, shape] of expected) {
    const r = records[name] as TensorRecord;
    if (!sameShape(r.shape, shape)) {
      throw new CheckpointError(
        `tensor "${name}" has shape [${r.shape.join(', ')}], expected [${shape.join(', ')}]`,
        {
          location: { file, field: name },
          hint: 'the file was written for another LoRA config or base model; save the adapters again',
        },
      );
    }
  }

  const partsMeta =
    metadata.head_tensors === undefined ? HEAD_TENSORS : metaJson(metadata, 'head_tensors', file);
  const parts = Array.isArray(partsMeta) && partsMeta.length > 0 ? (partsMeta as string[]) : HEAD_TENSORS;
  const headsMissing = missingHeads(new Set(Object.keys(records)), k, parts);
  if (headsMissing.length > 0) {
    throw new CheckpointError(`adapters without their reward heads: missing ${quoteList(headsMissing)}`, {
      location: { file },
      hint: 'each member’s head must be saved with its adapter (saveAdapters does); retrain or save the heads again',
    });
  }
  const headNames = missingHeads(new Set(), k, parts);
  for (const p of parts) {
    const first = records[memberHeadName(0, p)] as TensorRecord;
    if (p === 'w' && first.shape[0] !== base.dModel) {
      throw new CheckpointError(
        `tensor "${memberHeadName(0, p)}" has shape [${first.shape.join(', ')}], expected [${base.dModel}, …]`,
        {
          location: { file, field: memberHeadName(0, p) },
          hint: 'the head was trained on another base model',
        },
      );
    }
    for (let m = 1; m < k; m++) {
      const r = records[memberHeadName(m, p)] as TensorRecord;
      if (!sameShape(r.shape, first.shape)) {
        throw new CheckpointError(
          `tensor "${memberHeadName(m, p)}" has shape [${r.shape.join(', ')}], member 0's [${first.shape.join(', ')}]`,
          {
            location: { file, field: memberHeadName(m, p) },
            hint: 'the file is corrupt; save the adapters again',
          },
        );
      }
    }
  }
  const known = new Set([...expected.keys(), ...headNames]);
  const extra = Object.keys(records).filter((name) => !known.has(name));
  if (extra.length > 0) {
    throw new CheckpointError(`unexpected tensors ${quoteList(extra, 5)}`, {
      location: { file },
      hint: 'the file holds more than k adapters and heads; it was written for another config',
    });
  }

  const wanted: Record<string, TensorRecord> = {};
  for (const name of known) wanted[name] = records[name] as TensorRecord;
  const tensors = recordsToTensors(wanted, file);
  const loadedSites = sites.map((s): LoraSiteAdapter => {
    const stack = (part: 'A' | 'B'): tf.Variable =>
      toVariable(
        tf.tidy(() => {
          const parts = Array.from(
            { length: k },
            (_, m) => tensors[memberAdapterName(m, s.layer, s.module, part)],
          );
          return tf.cast(tf.stack(parts as tf.Tensor[]), 'float32'); // [k, in, r] or [k, r, out]
        }),
      );
    return { ...s, a: stack('A'), b: stack('B') };
  });
  const heads: Record<string, tf.Variable> = {};
  for (const name of headNames) {
    const t = tensors[name] as tf.Tensor;
    heads[name] = toVariable(tf.cast(t, 'float32'));
  }
  for (const t of Object.values(tensors)) t.dispose();
  const extraMeta: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata))
    if (key.startsWith('user.')) extraMeta[key.slice(5)] = value;
  return {
    adapters: { members: k, config, firstLayer: firstAdaptedLayer(base, config), sites: loadedSites },
    heads,
    extra: extraMeta,
  };
}
