/**
 * Reading files of a model folder, which is untrusted input, through @quorum/core's confined reads (the
 * same checks as every Quorum loader): a file is read only when its name is a plain relative name, it
 * resolves inside the folder (symlinks too) and is a regular file, and its size is checked before
 * reading. JSON errors never quote the file.
 */
import { realpath, stat } from 'node:fs/promises';
import {
  CheckpointError,
  type ConfinedFile,
  parseCheckpointJson,
  readConfinedBytes,
  statConfinedFile,
} from '@quorum/core';

/** A located file: its real path, the path to show in errors, and its size. */
export type FolderFile = ConfinedFile;

/** The folder's real path; a missing folder is a CheckpointError. */
export async function realFolder(dir: string): Promise<string> {
  try {
    const real = await realpath(dir);
    if ((await stat(real)).isDirectory()) return real;
  } catch (cause) {
    throw new CheckpointError('model folder not found', {
      location: { file: dir },
      hint: 'pass the folder that holds config.json and model.safetensors',
      cause,
    });
  }
  throw new CheckpointError('is not a folder', {
    location: { file: dir },
    hint: 'pass the folder that holds config.json and model.safetensors, not a file in it',
  });
}

/**
 * `name` (relative, from a manifest or fixed) inside the folder `dir`, or undefined when absent. Throws
 * when the name is not plain, it leaves the folder, is not a regular file, or is larger than `limit`
 * bytes. (`realDir`, the folder's real path, is kept for callers; the folder is resolved again.)
 */
export async function locate(
  _realDir: string,
  dir: string,
  name: string,
  limit = Number.MAX_SAFE_INTEGER,
  listedAt?: { file: string; field: string },
): Promise<FolderFile | undefined> {
  return statConfinedFile(dir, name, { maxBytes: limit, listedAt });
}

/** `length` bytes at `offset` of a located file (all of it by default); a short read is an error. */
export async function readBytes(
  file: FolderFile,
  offset = 0,
  length = file.bytes - offset,
): Promise<Uint8Array> {
  return readConfinedBytes(file, offset, length);
}

/** A located JSON file's value; bad JSON is a CheckpointError naming the file (never quoting it). */
export async function readJson(file: FolderFile): Promise<unknown> {
  return parseCheckpointJson(await readConfinedBytes(file), file.shown);
}
