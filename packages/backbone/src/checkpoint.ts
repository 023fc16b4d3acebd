/**
 * Model and optimizer state as safetensors bytes (through @quorum/core's checkpoint API). A backbone
 * file carries its GptConfig in the metadata, so it loads without any other file.
 */
import {
  CheckpointError,
  type ConfinedFile,
  checkFiniteTensors,
  checkTensorDTypes,
  decodeSafetensors,
  encodeSafetensors,
  escapedMessage,
  escapeUntrusted,
  MAX_SAFETENSORS_BYTES,
  printable,
  QuorumError,
  readConfinedBytes,
  readSafetensorsHeader,
  recordsToTensors,
  requireConfinedFile,
  type SafetensorsDType,
  type SafetensorsHeader,
  statFile,
  type TensorRecord,
  tensorsToRecords,
  writeSafetensors,
} from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { type GptConfig, gptParameterShapes, resolveGptConfig } from './config.js';
import { type GptParams, loadGptParameters, namedParameters } from './model.js';
import type { OptimizerState } from './optim.js';

const FORMAT = 'quorum-backbone/1';

function gptMetadata(config: GptConfig): Record<string, string> {
  return { format: FORMAT, config: JSON.stringify(config) };
}

/** The float dtypes a backbone's weights may be stored in (each becomes float32). */
export const GPT_WEIGHT_DTYPES: readonly SafetensorsDType[] = ['F32', 'F16', 'BF16', 'F64'];

/**
 * A GptConfig read from a checkpoint (`raw` is untrusted JSON): validated and bounded by
 * `resolveGptConfig`, with any problem a CheckpointError naming `file` and the field (values escaped).
 */
export function gptConfigFromCheckpoint(raw: unknown, file: string, field: string): GptConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new CheckpointError(`field "${field}" is ${printable(raw, 40)}, not a model config object`, {
      location: { file, field },
      hint: 'the checkpoint is damaged; save it again',
    });
  }
  try {
    return resolveGptConfig(raw, field);
  } catch (cause) {
    if (!(cause instanceof QuorumError)) throw cause;
    throw new CheckpointError(`has an invalid model config: ${escapedMessage(cause)}`, {
      location: { file, field: escapeUntrusted(cause.location?.field ?? field) },
      hint:
        cause.hint === undefined
          ? 'the checkpoint is damaged or was written for another model; save it again'
          : escapeUntrusted(cause.hint),
    });
  }
}

function configFromMetadata(metadata: Record<string, string>, file: string | undefined): GptConfig {
  const text = metadata.config;
  if (metadata.format !== FORMAT || text === undefined) {
    throw new CheckpointError(
      `not a Quorum backbone file (format ${metadata.format === undefined ? 'none' : printable(metadata.format, 40)})`,
      {
        ...(file === undefined ? {} : { location: { file } }),
        hint: 'pass a backbone.safetensors written by Quorum, or give the config explicitly',
      },
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new CheckpointError('the backbone config in the metadata is not valid JSON', {
      location: { file: file ?? '<backbone bytes>', field: '__metadata__.config' },
      hint: 'the file was written by an incompatible version or is damaged',
    });
  }
  return gptConfigFromCheckpoint(raw, file ?? '<backbone bytes>', 'config');
}

/**
 * Checks a backbone file's header against its config before any tensor data is read: exactly the
 * config's tensors (no more), each with its shape and a float dtype. With the header's check that the
 * tensors cover the file, this bounds what a load allocates by the file's size.
 */
function checkGptHeader(config: GptConfig, header: SafetensorsHeader, file: string): void {
  checkTensorDTypes(header, GPT_WEIGHT_DTYPES, file);
  const shapes = gptParameterShapes(config);
  const held = new Map(header.tensors.map((t) => [t.name, t]));
  for (const [name, shape] of Object.entries(shapes)) {
    const t = held.get(name);
    if (t === undefined) {
      throw new CheckpointError(`tensor "${name}" [${shape.join(', ')}] is missing`, {
        location: { file, field: name },
        hint: 'the file was written for another model config (its metadata and tensors disagree)',
      });
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new CheckpointError(
        `tensor "${name}" has shape [${t.shape.join(', ')}], the config in its metadata needs [${shape.join(', ')}]`,
        { location: { file, field: name }, hint: 'the file is damaged; save the model again' },
      );
    }
  }
  const extra = header.tensors.find((t) => !Object.hasOwn(shapes, t.name));
  if (extra !== undefined) {
    throw new CheckpointError(
      `holds tensor ${printable(extra.name)}, which the config in its metadata does not have`,
      { location: { file }, hint: 'the file is damaged or is not a Quorum backbone; save the model again' },
    );
  }
}

/** Reads a located backbone file: header and config checked against each other, then the data. */
async function loadLocatedGpt(located: ConfinedFile): Promise<{ config: GptConfig; params: GptParams }> {
  const header = await readSafetensorsHeader(located);
  const config = configFromMetadata(header.metadata, located.shown);
  checkGptHeader(config, header, located.shown);
  const contents = decodeSafetensors(await readConfinedBytes(located), located.shown);
  return fromContents(contents.tensors, contents.metadata, located.shown);
}

/**
 * `name` of the checkpoint folder `dir` (a name inside it: see @quorum/core's confined reads) as a
 * backbone. Everything is checked before a weight is allocated.
 */
export async function loadGptFromFolder(
  dir: string,
  name: string,
  options: { readonly listedAt?: { file: string; field: string }; readonly missingHint?: string } = {},
): Promise<{ config: GptConfig; params: GptParams }> {
  const located = await requireConfinedFile(dir, name, {
    maxBytes: MAX_SAFETENSORS_BYTES,
    listedAt: options.listedAt,
    ...(options.missingHint === undefined ? {} : { missingHint: options.missingHint }),
  });
  return loadLocatedGpt(located);
}

/** The backbone as safetensors bytes (config in the metadata). */
export async function encodeGpt(config: GptConfig, params: GptParams): Promise<Uint8Array> {
  return encodeSafetensors(await tensorsToRecords(namedParameters(params)), gptMetadata(config));
}

/** Parameters and config from bytes written by `encodeGpt`. */
export function decodeGpt(bytes: Uint8Array, file?: string): { config: GptConfig; params: GptParams } {
  const contents = decodeSafetensors(bytes, file);
  return fromContents(contents.tensors, contents.metadata, file);
}

function fromContents(
  records: Parameters<typeof recordsToTensors>[0],
  metadata: Record<string, string>,
  file: string | undefined,
): { config: GptConfig; params: GptParams } {
  const config = configFromMetadata(metadata, file);
  const source = file ?? '<backbone bytes>';
  checkGptHeader(
    config,
    {
      tensors: Object.entries(records).map(([name, r]) => ({
        name,
        dtype: r.dtype,
        shape: r.shape,
        begin: 0,
        end: 0,
      })),
      metadata,
      dataStart: 0,
      fileBytes: 0,
    },
    source,
  );
  checkFiniteTensors(records as Record<string, TensorRecord>, source);
  const tensors = recordsToTensors(records, file);
  try {
    return { config, params: loadGptParameters(config, tensors, file === undefined ? {} : { file }) };
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

/** Writes `file` atomically. */
export async function saveGpt(file: string, config: GptConfig, params: GptParams): Promise<void> {
  await writeSafetensors(file, await tensorsToRecords(namedParameters(params)), gptMetadata(config));
}

/**
 * Reads a backbone file. It must be a regular file whose header explains its size, holding exactly
 * the tensors of the config in its metadata (float dtypes, finite values); all of this is checked
 * before a weight is allocated.
 */
export async function loadGpt(file: string): Promise<{ config: GptConfig; params: GptParams }> {
  const located = await statFile(file, { maxBytes: MAX_SAFETENSORS_BYTES });
  if (located === undefined) {
    throw new CheckpointError('file not found', {
      location: { file },
      hint: 'Check the path, or train/save the model first.',
    });
  }
  return loadLocatedGpt(located);
}

/**
 * Copies named tensors into existing variables (e.g. when resuming). Every variable needs its tensor
 * with the same shape; checked before any assignment.
 */
export function assignNamed(
  target: Record<string, tf.Variable>,
  tensors: Record<string, tf.Tensor>,
  file?: string,
): void {
  const loc = file === undefined ? {} : { location: { file } };
  for (const [name, v] of Object.entries(target)) {
    const t = tensors[name];
    if (t === undefined)
      throw new CheckpointError(`tensor "${name}" is missing`, {
        ...loc,
        hint: 'the checkpoint belongs to another model',
      });
    if (!tf.util.arraysEqual(t.shape, v.shape)) {
      throw new CheckpointError(
        `tensor "${name}" has shape [${t.shape.join(', ')}], expected [${v.shape.join(', ')}]`,
        {
          ...loc,
          hint: 'the checkpoint belongs to another model config',
        },
      );
    }
  }
  for (const [name, v] of Object.entries(target)) v.assign(tensors[name] as tf.Tensor);
}

/** Optimizer state as safetensors bytes; the step goes into the metadata. */
export async function encodeOptimizerState(state: OptimizerState): Promise<Uint8Array> {
  return encodeSafetensors(await tensorsToRecords(state.tensors), {
    format: 'quorum-adamw/1',
    step: String(state.step),
  });
}

/** The caller disposes the returned tensors (e.g. after `AdamW.loadState`). */
export function decodeOptimizerState(bytes: Uint8Array, file?: string): OptimizerState {
  const contents = decodeSafetensors(bytes, file);
  const step = Number(contents.metadata.step);
  if (contents.metadata.format !== 'quorum-adamw/1' || !Number.isSafeInteger(step)) {
    throw new CheckpointError('not a Quorum optimizer state file', {
      ...(file === undefined ? {} : { location: { file } }),
      hint: 'pass the optimizer.safetensors of a Quorum checkpoint',
    });
  }
  return { step, tensors: recordsToTensors(contents.tensors, file) };
}
