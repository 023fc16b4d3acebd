/**
 * Reading files of a model folder, which is untrusted input: a file is read only when it is a regular
 * file inside the folder (a symlink must resolve inside it too) and its size is checked before reading.
 */
import { constants } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { CheckpointError } from '@quorum/core';

/** A located file: its real path, the path to show in errors, and its size. */
export interface FolderFile {
  readonly real: string;
  readonly shown: string;
  readonly bytes: number;
}

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
 * `name` (relative, from a manifest or fixed) inside the folder, or undefined when absent. Throws when it
 * leaves the folder, is not a regular file, or is larger than `limit` bytes.
 */
export async function locate(
  realDir: string,
  dir: string,
  name: string,
  limit = Number.POSITIVE_INFINITY,
): Promise<FolderFile | undefined> {
  const shown = path.join(dir, name);
  if (path.isAbsolute(name)) {
    throw new CheckpointError(`names the absolute path ${name}`, {
      location: { file: shown },
      hint: 'a model folder lists its files by names relative to the folder',
    });
  }
  let real: string;
  try {
    real = await realpath(path.join(realDir, name));
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CheckpointError(`cannot be read (${(cause as Error).message})`, {
      location: { file: shown },
      hint: 'check the file permissions',
      cause,
    });
  }
  const rel = path.relative(realDir, real);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new CheckpointError(`resolves to ${real}, outside the model folder`, {
      location: { file: shown },
      hint: 'copy the real file into the folder (cp -L); Quorum reads a model folder only inside it',
    });
  }
  const info = await stat(real);
  if (!info.isFile()) {
    throw new CheckpointError('is not a regular file', {
      location: { file: shown },
      hint: `replace it with the model's ${path.basename(name)}`,
    });
  }
  if (info.size > limit) {
    throw new CheckpointError(`is ${info.size} bytes, more than the ${limit} bytes such a file may have`, {
      location: { file: shown },
      hint: 'pass the folder of a real model; this file is not what its name says',
    });
  }
  return { real, shown, bytes: info.size };
}

/** `length` bytes at `offset` of a located file (all of it by default); a short read is an error. */
export async function readBytes(
  file: FolderFile,
  offset = 0,
  length = file.bytes - offset,
): Promise<Uint8Array> {
  const handle = await open(file.real, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buffer = new Uint8Array(length);
    let at = 0;
    while (at < length) {
      const { bytesRead } = await handle.read(buffer, at, length - at, offset + at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    if (at !== length) {
      throw new CheckpointError(`ended after ${offset + at} bytes, ${offset + length} expected`, {
        location: { file: file.shown },
        hint: 'the file changed while it was read or is truncated; copy it again',
      });
    }
    return buffer;
  } finally {
    await handle.close();
  }
}

/** A located JSON file's value; bad JSON is a CheckpointError naming the file. */
export async function readJson(file: FolderFile): Promise<unknown> {
  const text = new TextDecoder().decode(await readBytes(file));
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new CheckpointError(`is not valid JSON (${(cause as Error).message})`, {
      location: { file: file.shown },
      hint: 'the file is damaged; copy it again from the model',
      cause,
    });
  }
}
