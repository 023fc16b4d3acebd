/**
 * Crash-safe file writes and checksums. A write goes to a temp file in the same folder, is fsynced,
 * renamed over the target (atomic on POSIX) and the folder is fsynced, so after a crash or a failed run
 * the target holds either the old bytes or the new bytes, never a mix, and a failed write leaves no file.
 *
 * `writeFileAtomic` writes one buffer; `openAtomicOutput` streams (write, write, …, then `commit()` or
 * `abort()`). Both write through a symlink to its target, keep an existing file's permissions, and write a
 * device or pipe (`/dev/stdout`, `/dev/full`) directly, since it cannot be replaced. `assertNotSameFile`
 * refuses an output that is the input (same device and inode, also through a symlink or a hard link).
 */
import { createHash, randomBytes } from 'node:crypto';
import { type BigIntStats, statSync, unlinkSync } from 'node:fs';
import { type FileHandle, open, realpath, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { CheckpointError, ConfigError, DataError } from '../errors.js';

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

/** The error class a failed write raises: DataError for outputs, CheckpointError for checkpoint files. */
type WriteErrorClass = typeof DataError | typeof CheckpointError;

/** What an errno code means and what to do about it. */
const ERRNO: Readonly<Record<string, readonly [what: string, fix: string]>> = {
  ENOSPC: ['no space left on the device', 'free space on the device or write somewhere else'],
  EDQUOT: ['disk quota exceeded', 'free space within your quota or write somewhere else'],
  EFBIG: ['the file is larger than the file system allows', 'write to another file system'],
  EACCES: ['permission denied', 'check the permissions of the folder and the file, or write somewhere else'],
  EPERM: [
    'operation not permitted',
    'check the permissions of the folder and the file, or write somewhere else',
  ],
  EROFS: ['read-only file system', 'write somewhere else'],
  ENOENT: ['no such file or folder', 'check that the folder exists'],
  ENOTDIR: ['a part of the path is not a folder', 'check the path'],
  EISDIR: ['the path is a folder', 'give the path of a file'],
  EIO: ['input/output error', 'check the device and write somewhere else'],
};

function writeError(
  ErrorClass: WriteErrorClass,
  file: string,
  err: unknown,
  options: { action?: string; what?: string; fix?: string; intact?: boolean } = {},
): DataError | CheckpointError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const known = code === undefined ? undefined : ERRNO[code];
  const detail = options.what ?? known?.[0];
  const reason =
    code === undefined
      ? (err as Error | undefined)?.message || String(err)
      : `${code}${detail === undefined ? '' : ` (${detail})`}`;
  const fix = options.fix ?? known?.[1] ?? 'check that the folder exists and is writable';
  return new ErrorClass(`could not ${options.action ?? 'write the file'}: ${reason}`, {
    location: { file },
    hint: `${fix}${options.intact === false ? '' : '; the previous file, if any, is intact'}`,
    cause: err,
  });
}

/** Where the bytes go: a temp sibling renamed over `target`, or straight into a device or pipe. */
interface Target {
  /** The real path to rename over (symlinks resolved). */
  readonly path: string;
  /** A device, pipe or socket: written in place (it cannot be replaced). */
  readonly direct: boolean;
  /** Permission bits of an existing file, kept by the new one. */
  readonly mode: number | undefined;
}

async function resolveTarget(file: string, ErrorClass: WriteErrorClass): Promise<Target> {
  let real: string;
  try {
    real = await realpath(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw writeError(ErrorClass, file, err);
    // A new file (or a dangling symlink, replaced by the file): its folder must exist.
    const dir = path.dirname(path.resolve(file));
    try {
      real = path.join(await realpath(dir), path.basename(file));
    } catch (dirErr) {
      const code = (dirErr as NodeJS.ErrnoException).code;
      throw writeError(ErrorClass, file, dirErr, {
        what:
          code === 'ENOENT'
            ? `the folder ${dir} does not exist`
            : code === 'ENOTDIR'
              ? `a part of ${dir} is not a folder`
              : undefined,
        fix: code === 'ENOENT' ? `create it first (mkdir -p ${dir}) or choose another path` : undefined,
        intact: false,
      });
    }
    return { path: real, direct: false, mode: undefined };
  }
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(real);
  } catch (err) {
    throw writeError(ErrorClass, file, err);
  }
  if (info.isDirectory()) {
    throw writeError(ErrorClass, file, Object.assign(new Error('is a folder'), { code: 'EISDIR' }), {
      fix: 'give the path of a file inside it',
    });
  }
  return { path: real, direct: !info.isFile(), mode: info.isFile() ? info.mode & 0o7777 : undefined };
}

/** A file being written by `openAtomicOutput`: nothing is visible at its path until `commit()`. */
export interface AtomicOutput {
  /** The path as given. */
  readonly file: string;
  /** Appends `data` (a string as UTF-8). Await each write; a failure throws a DataError naming `file`. */
  write(data: string | Uint8Array): Promise<void>;
  /** Fsyncs, closes and renames the temp file over `file`, then fsyncs the folder. Call once. */
  commit(): Promise<void>;
  /** Closes and removes the temp file; `file` keeps what it held. A no-op after `commit()` or a second call. */
  abort(): Promise<void>;
}

/** Temp files not yet committed or aborted, removed if the process exits first (e.g. process.exit on an error). */
const liveTemps = new Set<string>();
let exitHookInstalled = false;

function trackTemp(temp: string): void {
  liveTemps.add(temp);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const t of liveTemps) {
      try {
        unlinkSync(t);
      } catch {
        // Already gone.
      }
    }
  });
}

async function openOutput(file: string, ErrorClass: WriteErrorClass): Promise<AtomicOutput> {
  const target = await resolveTarget(file, ErrorClass);
  const temp = target.direct ? undefined : tempSiblingName(target.path);
  let opened: FileHandle | undefined;
  try {
    opened = await open(temp ?? target.path, temp === undefined ? 'w' : 'wx');
    if (temp !== undefined) trackTemp(temp);
    if (target.mode !== undefined) await opened.chmod(target.mode);
  } catch (err) {
    await opened?.close().catch(() => undefined);
    if (temp !== undefined) await removeTemp(temp);
    throw writeError(ErrorClass, file, err);
  }
  const handle = opened;
  let state: 'open' | 'committed' | 'aborted' = 'open';
  const intact = !target.direct;

  const abort = async (): Promise<void> => {
    if (state !== 'open') return;
    state = 'aborted';
    await handle.close().catch(() => undefined);
    if (temp !== undefined) await removeTemp(temp);
  };
  const fail = async (err: unknown): Promise<never> => {
    await abort();
    throw writeError(ErrorClass, file, err, { intact });
  };
  const ensureOpen = (): void => {
    if (state !== 'open') throw new Error(`the output ${file} was already ${state}`);
  };

  return {
    file,
    async write(data) {
      ensureOpen();
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      try {
        let offset = 0;
        while (offset < bytes.byteLength) {
          const { bytesWritten } = await handle.write(bytes, offset, bytes.byteLength - offset, null);
          offset += bytesWritten;
        }
      } catch (err) {
        await fail(err);
      }
    },
    async commit() {
      ensureOpen();
      try {
        if (temp !== undefined) await handle.sync();
        await handle.close();
      } catch (err) {
        await fail(err);
      }
      state = 'committed';
      if (temp === undefined) return;
      try {
        await rename(temp, target.path);
        liveTemps.delete(temp);
      } catch (err) {
        state = 'aborted';
        await removeTemp(temp);
        throw writeError(ErrorClass, file, err);
      }
      try {
        await fsyncDir(path.dirname(target.path));
      } catch (err) {
        throw writeError(ErrorClass, file, err, { action: 'sync the folder after writing', intact: false });
      }
    },
    abort,
  };
}

async function removeTemp(temp: string): Promise<void> {
  liveTemps.delete(temp);
  await rm(temp, { force: true });
}

/**
 * Opens `file` for a streamed, all-or-nothing write: the bytes go to a temp file in the same folder (the
 * real folder of a symlink), which `commit()` renames over `file`; `abort()` (or any failed write) removes
 * it, leaving `file` as it was. A missing folder, a folder at `file`, a full disk or a denied permission
 * is a DataError naming `file` and the fix. A device or pipe (`/dev/stdout`) is written in place.
 */
export async function openAtomicOutput(file: string): Promise<AtomicOutput> {
  return openOutput(file, DataError);
}

/** Runs `fn` on `openAtomicOutput(file)`, commits when it resolves and aborts when it throws. */
export async function withAtomicOutput<T>(file: string, fn: (out: AtomicOutput) => Promise<T>): Promise<T> {
  const out = await openAtomicOutput(file);
  let result: T;
  try {
    result = await fn(out);
  } catch (err) {
    await out.abort();
    throw err;
  }
  await out.commit();
  return result;
}

/**
 * Replaces `file` with `data` atomically: temp file in the same folder, write, fsync, rename, fsync the
 * folder. On any failure the temp file is removed, the old `file` is untouched, and a CheckpointError
 * naming `file` is thrown.
 */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const out = await openOutput(file, CheckpointError);
  await out.write(data);
  await out.commit();
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

/** Option names for `assertNotSameFile`'s message, e.g. `{ input: '--input', output: '--out' }`. */
export interface SameFileFields {
  readonly input?: string;
  readonly output?: string;
}

/**
 * Throws a ConfigError when `output` is the same file as `input` (same device and inode after following
 * symlinks, so a symlink or a hard link to the input is caught too): writing it would destroy the input
 * it is computed from. Missing paths, devices and pipes never match.
 */
export function assertNotSameFile(input: string, output: string, fields: SameFileFields = {}): void {
  let a: BigIntStats;
  let b: BigIntStats;
  try {
    a = statSync(input, { bigint: true });
    b = statSync(output, { bigint: true });
  } catch {
    return;
  }
  if (!a.isFile() || !b.isFile() || a.dev !== b.dev || a.ino !== b.ino) return;
  const how = path.resolve(input) === path.resolve(output) ? '' : ' (through a symlink or a hard link)';
  throw new ConfigError(
    `${output} is the input file ${input}${how}; writing it would destroy the rows it is computed from`,
    {
      location: { field: fields.output ?? 'output' },
      hint: `write ${fields.output === undefined ? 'the output' : fields.output} to another file (it can replace ${fields.input ?? 'the input'} afterwards with mv)`,
    },
  );
}
