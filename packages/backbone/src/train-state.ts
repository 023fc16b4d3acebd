/**
 * Reading a trainer's checkpoint (from core's CheckpointStore) back: the pieces the SFT and PPO trainers
 * share. Files are looked up by name with an error naming the checkpoint folder, and a GPT's weights are
 * checked against the run's config before any tensor is made.
 */
import { CheckpointError, decodeSafetensors, type LoadedCheckpoint, recordsToTensors } from '@quorum/core';
import type * as tf from '@tensorflow/tfjs';
import { type GptConfig, resolveGptConfig } from './config.js';

/** The config in resolved form, so one written before a field existed equals its resolved self. */
function canonicalConfig(text: string | undefined): string | undefined {
  try {
    return JSON.stringify(resolveGptConfig(JSON.parse(text ?? '')));
  } catch {
    return undefined;
  }
}

/** A getter for the checkpoint's files; a missing one is a CheckpointError saying it is not a `kind` checkpoint. */
export function checkpointFiles(loaded: LoadedCheckpoint, kind: string): (name: string) => Uint8Array {
  return (name) => {
    const bytes = loaded.files[name];
    if (bytes === undefined) {
      throw new CheckpointError(`${name} is missing`, {
        location: { file: loaded.dir },
        hint: `the checkpoint is not ${kind} checkpoint; start a new --out folder`,
      });
    }
    return bytes;
  };
}

/**
 * The GPT weights saved (by encodeGpt) as `name` in the checkpoint, as tensors the caller disposes.
 * A checkpoint written for another model config is an error naming both configs.
 */
export function decodeGptCheckpoint(
  loaded: LoadedCheckpoint,
  name: string,
  config: GptConfig,
  hint: string,
): Record<string, tf.Tensor> {
  const file = `${loaded.dir}/${name}`;
  const decoded = decodeSafetensors(checkpointFiles(loaded, 'a model')(name), file);
  if (canonicalConfig(decoded.metadata.config) !== JSON.stringify(resolveGptConfig(config))) {
    throw new CheckpointError(
      `the checkpoint's model config ${decoded.metadata.config} differs from this run's`,
      {
        location: { file },
        hint,
      },
    );
  }
  return recordsToTensors(decoded.tensors, file);
}
