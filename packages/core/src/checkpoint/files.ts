/**
 * Crash-safe file writes and checksums. A write goes to a temp file in the same folder, is fsynced,
 * renamed over the target (atomic on POSIX) and the folder is fsynced, so after a crash the target
 * holds either the old bytes or the new bytes, never a mix.
 */
import { createHash, randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { CheckpointError } from '../errors.js';

/** Lowercase hex SHA-256 of `data` (a string is hashed as UTF-8). */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A name for a temp sibling of `target`: hidden, unique per process and call. */
export function tempSiblingName(target: string, prefix = '.tmp-'): string {
  return path.join(
    path.dirname(target),
    `${prefix}${path.basename(target)}-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
}

/** Writes all of `data` to a new file (failing if it exists) and fsyncs it before closing. */
export async function writeFileSynced(file: string, data: Uint8Array | string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(file, 'wx');
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle?.close();
  }
}

/**
 * Fsyncs a folder so a rename or create inside it survives a power loss. Some platforms (Windows)
 * cannot open a folder for syncing; there the rename is already as durable as the OS allows.
 */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EBADF') throw err;
  } finally {
    await handle?.close();
  }
}

function ioError(action: string, file: string, err: unknown): CheckpointError {
  const code = (err as NodeJS.ErrnoException).code;
  return new CheckpointError(`could not ${action}: ${code ?? (err as Error).message}`, {
    location: { file },
    hint:
      code === 'ENOSPC'
        ? 'Free disk space and rerun; the previous file is intact.'
        : 'Check that the folder exists and is writable; the previous file is intact.',
    cause: err,
  });
}

/**
 * Replaces `file` with `data` atomically: temp file in the same folder, write, fsync, rename, fsync the
 * folder. On any failure the temp file is removed, the old `file` is untouched, and a CheckpointError
 * naming `file` is thrown.
 */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const temp = tempSiblingName(file);
  try {
    await writeFileSynced(temp, data);
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw ioError('write the file', file, err);
  }
  try {
    await fsyncDir(path.dirname(file));
  } catch (err) {
    throw ioError('sync the folder after writing', file, err);
  }
}

/** Writes `value` as pretty-printed JSON (with a final newline) through `writeFileAtomic`. */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const text = JSON.stringify(value, undefined, 2);
  if (text === undefined) {
    throw new CheckpointError(`cannot write ${typeof value} as JSON`, {
      location: { file },
      hint: 'Pass a plain object, array, string, number or boolean.',
    });
  }
  await writeFileAtomic(file, `${text}\n`);
}
