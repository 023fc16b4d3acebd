/**
 * Reading the files of a checkpoint folder, which is untrusted input (a model folder from someone else).
 * Every loader reads through these functions, so that for every file a checkpoint names:
 *
 * - the name is relative and plain: no absolute path, no `..` or `.` segment, no backslash or control
 *   character (segments of letters, digits and `_ . + @ -`, joined by `/`);
 * - the path, symlinks resolved, is inside the folder (symlinks resolved too), so `../../etc/passwd` or a
 *   link to `/dev/urandom` is refused before anything is opened;
 * - it is a regular file (a FIFO would block a read forever, a device would never end) and no larger than
 *   the caller's `maxBytes`, known from `lstat` before a byte is read;
 * - it is opened with `O_NOFOLLOW | O_NONBLOCK` and checked again on the open handle (`fstat`: still a
 *   regular file, the same inode, the same size), so swapping the file after the check cannot redirect
 *   the read.
 *
 * Errors are `CheckpointError`s naming the file (as the caller shows it) and, when the name came from a
 * manifest, the manifest's key. Messages never hold bytes of a file.
 */
import { constants, type Stats } from 'node:fs';
import { type FileHandle, lstat, open, realpath } from 'node:fs/promises';
import path from 'node:path';
import { CheckpointError, type ErrorLocation } from '../errors.js';
import { printable } from '../printable.js';

/** A file located inside a checkpoint folder and checked (regular, within `maxBytes`). */
export interface ConfinedFile {
  /** The folder as the caller gave it. */
  readonly dir: string;
  /** The name inside the folder (as validated). */
  readonly name: string;
  /** `dir/name`, the path errors show. */
  readonly shown: string;
  /** The resolved path that is opened. */
  readonly real: string;
  /** Size in bytes when it was located. */
  readonly bytes: number;
  readonly dev: number;
  readonly ino: number;
}

export interface ConfinedOptions {
  /** Largest size the file may have; a larger one is refused before it is read. */
  readonly maxBytes: number;
  /**
   * Where the name came from, for errors about the name itself: e.g. `{ file: 'dir/quorum.json', field:
   * 'files[2]' }`. Default: the file's own path.
   */
  readonly listedAt?: ErrorLocation | undefined;
}

/** One segment of a file name a checkpoint may list. */
const SEGMENT = /^[A-Za-z0-9_.+@-]+$/;
/** Longest name accepted (a name is a few segments). */
const MAX_NAME_LENGTH = 1024;

const REPLACE = 'the checkpoint folder is damaged or was made to read files it does not hold';

/**
 * Checks that `name` is a relative path of plain segments inside a folder (see the file comment) and
 * returns it. `listedAt` is where the name was read, for the error.
 */
export function checkConfinedName(name: unknown, listedAt: ErrorLocation): string {
  const bad = (why: string): never => {
    throw new CheckpointError(`names the file ${printable(name)}, ${why}`, {
      location: listedAt,
      hint: `a checkpoint lists its files by plain names relative to its folder (e.g. "backbone.safetensors"); ${REPLACE}`,
    });
  };
  if (typeof name !== 'string') return bad('which is not a string');
  if (name === '' || name.length > MAX_NAME_LENGTH) return bad('which is empty or too long');
  if (path.posix.isAbsolute(name) || path.win32.isAbsolute(name) || name.includes('\\'))
    return bad('an absolute path (only names inside the folder are read)');
  const segments = name.split('/');
  if (segments.some((s) => s === '..')) return bad('which is outside the model folder (through "..")');
  if (segments.some((s) => s === '' || s === '.' || !SEGMENT.test(s)))
    return bad(
      'which is not a plain name (letters, digits, "_", ".", "+", "@", "-" and "/" between folders)',
    );
  return name;
}

function isInside(realDir: string, real: string): boolean {
  const rel = path.relative(realDir, real);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

function ioError(what: string, shown: string, cause: unknown): CheckpointError {
  const code = (cause as NodeJS.ErrnoException).code ?? 'error';
  return new CheckpointError(`${what} (${code})`, {
    location: { file: shown },
    hint: 'check that the path exists and is readable',
    cause,
  });
}

/**
 * Locates `name` inside `dir` and checks it (see the file comment). Returns undefined when the file does
 * not exist; throws a CheckpointError when the name is not plain, resolves outside the folder, is not a
 * regular file or is larger than `maxBytes`.
 */
export async function statConfinedFile(
  dir: string,
  name: string,
  options: ConfinedOptions,
): Promise<ConfinedFile | undefined> {
  const shown = path.join(dir, typeof name === 'string' ? name : '');
  checkConfinedName(name, options.listedAt ?? { file: shown });
  let realDir: string;
  try {
    realDir = await realpath(dir);
  } catch (cause) {
    throw ioError('checkpoint folder cannot be opened', dir, cause);
  }
  let real: string;
  try {
    real = await realpath(path.join(realDir, name));
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw ioError('cannot be resolved', shown, cause);
  }
  if (!isInside(realDir, real)) {
    // The resolved target is not shown: where a link points is the folder author's choice of text.
    throw new CheckpointError('is a link to a file outside the model folder', {
      location: { file: shown },
      hint: `copy the real file into the folder (cp -L) if you trust it; ${REPLACE}`,
    });
  }
  let info: Stats;
  try {
    info = await lstat(real);
  } catch (cause) {
    throw ioError('cannot be read', shown, cause);
  }
  checkStats(info, shown, options.maxBytes);
  return { dir, name, shown, real, bytes: info.size, dev: info.dev, ino: info.ino };
}

function checkStats(info: Stats, shown: string, maxBytes: number): void {
  if (!info.isFile()) {
    const kind = info.isFIFO()
      ? 'a FIFO'
      : info.isCharacterDevice() || info.isBlockDevice()
        ? 'a device'
        : info.isDirectory()
          ? 'a folder'
          : info.isSocket()
            ? 'a socket'
            : 'something else';
    throw new CheckpointError(`is not a regular file (it is ${kind})`, {
      location: { file: shown },
      hint: `replace it with the checkpoint's own file; ${REPLACE}`,
    });
  }
  if (info.size > maxBytes) {
    throw new CheckpointError(`is ${info.size} bytes, more than the ${maxBytes} bytes such a file may have`, {
      location: { file: shown },
      hint: 'the file is not what its name says; use the checkpoint as it was written',
    });
  }
}

/**
 * A file the caller named by its path (not a name read from a checkpoint): symlinks are followed (the
 * caller chose the path), but it must be a regular file of at most `maxBytes`. Undefined when missing.
 */
export async function statFile(file: string, options: ConfinedOptions): Promise<ConfinedFile | undefined> {
  let real: string;
  try {
    real = await realpath(file);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw ioError('cannot be resolved', file, cause);
  }
  let info: Stats;
  try {
    info = await lstat(real);
  } catch (cause) {
    throw ioError('cannot be read', file, cause);
  }
  checkStats(info, file, options.maxBytes);
  return {
    dir: path.dirname(file),
    name: path.basename(file),
    shown: file,
    real,
    bytes: info.size,
    dev: info.dev,
    ino: info.ino,
  };
}

/** Like `statConfinedFile`, but a missing file is a CheckpointError too. */
export async function requireConfinedFile(
  dir: string,
  name: string,
  options: ConfinedOptions & { readonly missingHint?: string },
): Promise<ConfinedFile> {
  const file = await statConfinedFile(dir, name, options);
  if (file === undefined) {
    throw new CheckpointError('file not found', {
      location: { file: path.join(dir, name) },
      hint:
        options.missingHint ?? 'the checkpoint is incomplete; copy the whole folder again or save it again',
    });
  }
  return file;
}

/**
 * `length` bytes at `offset` of a located file (all of it by default). The file is opened without
 * following links and without blocking, and must still be the regular file of the same inode and size;
 * a short read is an error.
 */
export async function readConfinedBytes(
  file: ConfinedFile,
  offset = 0,
  length = file.bytes - offset,
): Promise<Uint8Array> {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new CheckpointError(`cannot read ${length} bytes at ${offset}`, {
      location: { file: file.shown },
      hint: 'the file is corrupt',
    });
  }
  if (offset + length > file.bytes) {
    throw new CheckpointError(`is ${file.bytes} bytes; bytes ${offset}..${offset + length} do not exist`, {
      location: { file: file.shown },
      hint: 'the file is truncated or its header is corrupt; copy it again',
    });
  }
  let handle: FileHandle;
  try {
    handle = await open(file.real, constants.O_RDONLY | constants.O_NOFOLLOW | (constants.O_NONBLOCK ?? 0));
  } catch (cause) {
    throw ioError('cannot be opened', file.shown, cause);
  }
  try {
    const info = await handle.stat();
    checkStats(info, file.shown, file.bytes);
    if (info.ino !== file.ino || info.dev !== file.dev || info.size !== file.bytes) {
      throw new CheckpointError('changed while it was being read', {
        location: { file: file.shown },
        hint: 'let the program writing the folder finish, then load it again',
      });
    }
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

/** The bytes of `name` inside `dir`, located and checked first; a missing file is a CheckpointError. */
export async function readConfinedFile(
  dir: string,
  name: string,
  options: ConfinedOptions & { readonly missingHint?: string },
): Promise<Uint8Array> {
  return readConfinedBytes(await requireConfinedFile(dir, name, options));
}

/**
 * Parses `bytes` as UTF-8 JSON. A parse failure is a CheckpointError naming the file and the position,
 * never quoting the file (the engine's own message quotes the text around the error).
 */
export function parseCheckpointJson(bytes: Uint8Array, shown: string): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch (cause) {
    throw new CheckpointError(`is not UTF-8 text (${bytes.length} bytes)`, {
      location: { file: shown, field: 'json' },
      hint: 'the file is damaged or is not what its name says; copy it again',
      cause,
    });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    const at = /position (\d+)/.exec((cause as Error).message)?.[1];
    throw new CheckpointError(
      `is not valid JSON${at === undefined ? '' : ` (error at character ${at} of ${text.length})`}`,
      {
        location: { file: shown, field: 'json' },
        hint: 'the file is damaged or is not what its name says; copy it again',
      },
    );
  }
}

/** The JSON value of `name` inside `dir` (located, size-checked, parsed; see `parseCheckpointJson`). */
export async function readConfinedJson(
  dir: string,
  name: string,
  options: ConfinedOptions & { readonly missingHint?: string },
): Promise<unknown> {
  const file = await requireConfinedFile(dir, name, options);
  return parseCheckpointJson(await readConfinedBytes(file), file.shown);
}
