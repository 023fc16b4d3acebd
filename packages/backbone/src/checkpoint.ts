/**
 * Model and optimizer state as safetensors bytes (through @quorum/core's checkpoint API). A backbone
 * file carries its GptConfig in the metadata, so it loads without any other file.
 */
import {
  CheckpointError,
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  recordsToTensors,
  tensorsToRecords,
  writeSafetensors,
} from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { type GptConfig, resolveGptConfig } from './config.js';
import { type GptParams, loadGptParameters, namedParameters } from './model.js';
import type { OptimizerState } from './optim.js';

const FORMAT = 'quorum-backbone/1';

function gptMetadata(config: GptConfig): Record<string, string> {
  return { format: FORMAT, config: JSON.stringify(config) };
}

function configFromMetadata(metadata: Record<string, string>, file: string | undefined): GptConfig {
  const text = metadata.config;
  if (metadata.format !== FORMAT || text === undefined) {
    throw new CheckpointError(`not a Quorum backbone file (format "${metadata.format ?? 'none'}")`, {
      ...(file === undefined ? {} : { location: { file } }),
      hint: 'pass a backbone.safetensors written by Quorum, or give the config explicitly',
    });
  }
  try {
    return resolveGptConfig(JSON.parse(text), 'config');
  } catch (cause) {
    throw new CheckpointError('the backbone config in the metadata is invalid', {
      ...(file === undefined ? {} : { location: { file } }),
      hint: 'the file was written by an incompatible version',
      cause,
    });
  }
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

export async function loadGpt(file: string): Promise<{ config: GptConfig; params: GptParams }> {
  const contents = await readSafetensors(file);
  return fromContents(contents.tensors, contents.metadata, file);
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
