/**
 * Resumable-run checkpoints (issue 9): one folder per step, `dir/step-00000123/`, holding the caller's
 * files and a `checkpoint.json` manifest with each file's size and SHA-256.
 *
 * A save stages the whole folder under a hidden temp name in `dir`, fsyncs every file and the folder,
 * renames it into place (atomic) and fsyncs `dir`; a crash at any point leaves the previous checkpoints
 * intact and at worst a temp folder, which readers ignore and the next save removes. Loading verifies
 * every file's size and checksum; `latest()` falls back to the newest checkpoint that verifies and says
 * what was wrong with the newer ones. One store (one writer) per folder.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { CheckpointError, ConfigError } from '../errors.js';
import { readConfinedBytes, statFile } from './confined.js';
import { fsyncDir, sha256Hex, writeFileSynced } from './files.js';

/** The manifest file inside every checkpoint folder. */
export const CHECKPOINT_MANIFEST = 'checkpoint.json';

const STEP_FOLDER = /^step-(\d{8,})$/;
const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const STAGING_PREFIX = '.tmp-step-';
const REPLACED_PREFIX = '.old-step-';

export interface CheckpointStoreOptions {
  /** How many checkpoints to keep (default 2: the newest and the previous good one). */
  readonly keep?: number;
}

/** One file's entry in `checkpoint.json`. */
export interface CheckpointFileEntry {
  readonly sha256: string;
  readonly bytes: number;
}

/** The contents of `checkpoint.json`. */
export interface CheckpointManifest {
  readonly step: number;
  readonly files: Record<string, CheckpointFileEntry>;
  readonly meta: Record<string, unknown>;
  /** ISO 8601 time of the save. */
  readonly createdAt: string;
}

/** A checkpoint whose files all verified. */
export interface LoadedCheckpoint {
  readonly step: number;
  /** The checkpoint's folder. */
  readonly dir: string;
  readonly meta: Record<string, unknown>;
  readonly createdAt: string;
  /** Every file listed in the manifest, verified against its size and SHA-256. */
  readonly files: Record<string, Uint8Array>;
  /** Problems with newer checkpoints that were skipped to reach this one (empty from `load`). */
  readonly warnings: string[];
}

/** The folder name for `step`: `step-` and the step padded to 8 digits. */
export function checkpointFolderName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

/** The message of a QuorumError without its hint line, for one-line warnings. */
function firstLine(err: Error): string {
  return err.message.split('\n')[0];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkStep(step: number): void {
  if (!Number.isSafeInteger(step) || step < 0) {
    throw new ConfigError(`checkpoint step must be a non-negative integer, got ${step}`, {
      location: { field: 'step' },
      hint: 'Pass the training step count, e.g. 1200.',
    });
  }
}

export class CheckpointStore {
  readonly dir: string;
  readonly keep: number;
  /** Saves run one after another, even when a caller does not await them. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(dir: string, options: CheckpointStoreOptions = {}) {
    const keep = options.keep ?? 2;
    if (!Number.isSafeInteger(keep) || keep < 1) {
      throw new ConfigError(`keep must be a whole number ≥ 1, got ${keep}`, {
        location: { field: 'keep' },
        hint: 'Keep at least 1 checkpoint; 2 (the default) keeps a good one while the next is written.',
      });
    }
    this.dir = dir;
    this.keep = keep;
  }

  /** The folder of the checkpoint of `step` (whether or not it exists). */
  folderFor(step: number): string {
    return path.join(this.dir, checkpointFolderName(step));
  }

  /**
   * Saves `files` (strings are written as UTF-8) and `meta` as the checkpoint of `step`, atomically,
   * then prunes: checkpoints with a later step are removed (the run has left that timeline) and of the
   * earlier ones the newest `keep - 1` stay. Saving a step that exists replaces it. Returns the folder.
   */
  save(step: number, files: Record<string, Uint8Array | string>, meta: object): Promise<string> {
    const run = this.queue.then(
      () => this.saveNow(step, files, meta),
      () => this.saveNow(step, files, meta),
    );
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async saveNow(
    step: number,
    files: Record<string, Uint8Array | string>,
    meta: object,
  ): Promise<string> {
    checkStep(step);
    const target = this.folderFor(step);
    for (const [name, data] of Object.entries(files)) {
      if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
        throw new CheckpointError(`file "${name}" is ${typeof data}, not bytes or a string`, {
          location: { file: target, field: name },
          hint: 'Pass each file as a Uint8Array (e.g. from encodeSafetensors) or a string.',
        });
      }
      if (!FILE_NAME.test(name) || name === CHECKPOINT_MANIFEST) {
        throw new CheckpointError(`cannot save a file named "${name}" in a checkpoint`, {
          location: { file: target, field: name },
          hint: `Use a plain file name of letters, digits, '.', '_' and '-' (not "${CHECKPOINT_MANIFEST}").`,
        });
      }
    }
    if (!isPlainObject(meta)) {
      throw new CheckpointError('checkpoint meta must be a plain object', {
        location: { file: target, field: 'meta' },
        hint: 'Pass an object such as { seed, config }.',
      });
    }
    let manifestText: string;
    const contents: [string, Uint8Array][] = Object.entries(files).map(([name, data]) => [
      name,
      typeof data === 'string' ? new TextEncoder().encode(data) : data,
    ]);
    const entries: Record<string, CheckpointFileEntry> = Object.fromEntries(
      contents.map(([name, data]) => [name, { sha256: sha256Hex(data), bytes: data.byteLength }]),
    );
    try {
      const manifest: CheckpointManifest = {
        step,
        files: entries,
        meta,
        createdAt: new Date().toISOString(),
      };
      manifestText = `${JSON.stringify(manifest, undefined, 2)}\n`;
    } catch (err) {
      throw new CheckpointError(`checkpoint meta cannot be written as JSON: ${(err as Error).message}`, {
        location: { file: target, field: 'meta' },
        hint: 'Keep meta to plain JSON values (convert bigint and typed arrays first).',
        cause: err,
      });
    }

    const suffix = `${checkpointFolderName(step)}-${process.pid}-${randomBytes(4).toString('hex')}`;
    const staging = path.join(this.dir, STAGING_PREFIX + suffix);
    const replaced = path.join(this.dir, REPLACED_PREFIX + suffix);
    let movedAside = false;
    try {
      await mkdir(this.dir, { recursive: true });
      await this.removeLeftovers();
      await mkdir(staging);
      for (const [name, data] of contents) await writeFileSynced(path.join(staging, name), data);
      await writeFileSynced(path.join(staging, CHECKPOINT_MANIFEST), manifestText);
      await fsyncDir(staging);
      const existing = (await this.list()).includes(step);
      if (existing) {
        await rename(target, replaced);
        movedAside = true;
      }
      await rename(staging, target);
      movedAside = false;
      await fsyncDir(this.dir);
      if (existing) await rm(replaced, { recursive: true, force: true });
    } catch (err) {
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
      // Put back the checkpoint this save was replacing, so a failed save never loses one.
      if (movedAside) await rename(replaced, target).catch(() => undefined);
      const code = (err as NodeJS.ErrnoException).code;
      throw new CheckpointError(`could not save the checkpoint: ${code ?? (err as Error).message}`, {
        location: { file: target },
        hint:
          code === 'ENOSPC'
            ? 'Free disk space and rerun with --resume; the previous checkpoints are intact.'
            : 'Check that the folder is writable; the previous checkpoints are intact.',
        cause: err,
      });
    }
    await this.prune(step);
    return target;
  }

  /** Removes checkpoints after `savedStep` and all but the newest `keep - 1` before it. */
  private async prune(savedStep: number): Promise<void> {
    const steps = await this.list();
    const earlier = steps.filter((s) => s < savedStep);
    const doomed = [
      ...steps.filter((s) => s > savedStep),
      ...earlier.slice(0, Math.max(0, earlier.length - (this.keep - 1))),
    ];
    if (doomed.length === 0) return;
    for (const s of doomed) await rm(this.folderFor(s), { recursive: true, force: true });
    await fsyncDir(this.dir);
  }

  /** Deletes temp folders a crashed save left behind. */
  private async removeLeftovers(): Promise<void> {
    for (const entry of await readdir(this.dir)) {
      if (entry.startsWith(STAGING_PREFIX) || entry.startsWith(REPLACED_PREFIX)) {
        await rm(path.join(this.dir, entry), { recursive: true, force: true });
      }
    }
  }

  /** The steps of the committed checkpoints, ascending (not verified; temp folders are ignored). */
  async list(): Promise<number[]> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(this.dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new CheckpointError(
        `could not list the checkpoint folder: ${(err as NodeJS.ErrnoException).code}`,
        {
          location: { file: this.dir },
          hint: 'Check that the path is a readable folder.',
          cause: err,
        },
      );
    }
    const steps: number[] = [];
    for (const entry of entries) {
      const match = STEP_FOLDER.exec(entry.name);
      if (match !== null && entry.isDirectory()) {
        const step = Number(match[1]);
        if (Number.isSafeInteger(step) && checkpointFolderName(step) === entry.name) steps.push(step);
      }
    }
    return steps.sort((a, b) => a - b);
  }

  /** Loads and verifies the checkpoint of `step`; throws CheckpointError naming the bad file. */
  async load(step: number): Promise<LoadedCheckpoint> {
    checkStep(step);
    const folder = this.folderFor(step);
    const manifestFile = path.join(folder, CHECKPOINT_MANIFEST);
    const manifest = parseManifest(
      await readBytes(manifestFile, step, MANIFEST_LIMIT, (bytes) =>
        damaged(
          manifestFile,
          `manifest is ${bytes} bytes, more than the ${MANIFEST_LIMIT} a manifest may have`,
        ),
      ),
      manifestFile,
      step,
    );
    const files: [string, Uint8Array][] = [];
    for (const [name, entry] of Object.entries(manifest.files)) {
      const file = path.join(folder, name);
      // The size is checked before the file is read (a FIFO or a device is refused unread).
      const data = await readBytes(file, step, entry.bytes, (bytes) =>
        damaged(
          file,
          `file is ${bytes} bytes but ${CHECKPOINT_MANIFEST} records ${entry.bytes} (truncated or overwritten)`,
        ),
      );
      if (data.byteLength !== entry.bytes) {
        throw new CheckpointError(
          `file is ${data.byteLength} bytes but ${CHECKPOINT_MANIFEST} records ${entry.bytes} (truncated or overwritten)`,
          {
            location: { file },
            hint: 'This checkpoint is damaged; resume from an earlier one or start fresh.',
          },
        );
      }
      const sha = sha256Hex(data);
      if (sha !== entry.sha256) {
        throw new CheckpointError(
          `file's sha256 is ${sha.slice(0, 12)}… but ${CHECKPOINT_MANIFEST} records ${entry.sha256.slice(0, 12)}… (corrupted)`,
          {
            location: { file },
            hint: 'This checkpoint is damaged; resume from an earlier one or start fresh.',
          },
        );
      }
      files.push([name, data]);
    }
    return {
      step,
      dir: folder,
      meta: manifest.meta,
      createdAt: manifest.createdAt,
      files: Object.fromEntries(files),
      warnings: [],
    };
  }

  /**
   * The newest checkpoint whose files all verify, with `warnings` naming each newer one skipped and why;
   * undefined when there is none. When checkpoints exist but none verifies, throws (never a silent
   * fresh start).
   */
  async latest(): Promise<LoadedCheckpoint | undefined> {
    const steps = (await this.list()).reverse();
    const warnings: string[] = [];
    for (const step of steps) {
      try {
        const loaded = await this.load(step);
        return { ...loaded, warnings };
      } catch (err) {
        if (!(err instanceof CheckpointError)) throw err;
        warnings.push(`skipped checkpoint step ${step}: ${firstLine(err)}`);
      }
    }
    if (steps.length === 0) return undefined;
    throw new CheckpointError(
      `none of the ${steps.length} checkpoints verifies:\n  ${warnings.join('\n  ')}`,
      {
        location: { file: this.dir },
        hint: 'Every saved checkpoint is damaged: start fresh with --overwrite, or restore the folder from a backup.',
      },
    );
  }
}

/** checkpoint.json is small; a larger one is refused unread. */
const MANIFEST_LIMIT = 64 * 1024 * 1024;

/**
 * A checkpoint file's bytes, read only when it is a regular file (not a FIFO or a device) of at most
 * `expected` bytes; a larger one is refused unread with `tooLarge(size)`.
 */
async function readBytes(
  file: string,
  step: number,
  expected: number,
  tooLarge: (bytes: number) => CheckpointError,
): Promise<Uint8Array> {
  let located: Awaited<ReturnType<typeof statFile>>;
  try {
    located = await statFile(file, { maxBytes: Number.MAX_SAFE_INTEGER });
  } catch (err) {
    if (err instanceof CheckpointError) throw err;
    throw missingOrUnreadable(file, step, err);
  }
  if (located === undefined) throw missingOrUnreadable(file, step, undefined);
  if (located.bytes > expected) throw tooLarge(located.bytes);
  return readConfinedBytes(located);
}

function damaged(file: string, message: string): CheckpointError {
  return new CheckpointError(message, {
    location: { file },
    hint: 'This checkpoint is damaged; resume from an earlier one or start fresh.',
  });
}

function missingOrUnreadable(file: string, step: number, err: unknown): CheckpointError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? 'ENOENT';
  return new CheckpointError(
    code === 'ENOENT' ? `file of checkpoint step ${step} is missing` : `could not read the file: ${code}`,
    {
      location: { file },
      hint: 'This checkpoint is incomplete; resume from an earlier one or start fresh.',
      ...(err === undefined ? {} : { cause: err }),
    },
  );
}

function parseManifest(bytes: Uint8Array, file: string, step: number): CheckpointManifest {
  const bad = (what: string, cause?: unknown): never => {
    throw new CheckpointError(what, {
      location: { file },
      hint: 'This checkpoint is damaged; resume from an earlier one or start fresh.',
      cause,
    });
  };
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    return bad(
      `manifest is not valid JSON (${bytes.byteLength} bytes; truncated?): ${(err as Error).message}`,
      err,
    );
  }
  if (!isPlainObject(json)) return bad('manifest is not a JSON object');
  if (json.step !== step)
    return bad(`manifest records step ${JSON.stringify(json.step)} but its folder is step ${step}`);
  if (!isPlainObject(json.meta)) return bad('manifest has no "meta" object');
  if (typeof json.createdAt !== 'string') return bad('manifest has no "createdAt" string');
  if (!isPlainObject(json.files)) return bad('manifest has no "files" object');
  const files: [string, CheckpointFileEntry][] = [];
  for (const [name, entry] of Object.entries(json.files)) {
    if (!FILE_NAME.test(name) || name === CHECKPOINT_MANIFEST)
      return bad(`manifest lists an invalid file name "${name}"`);
    if (
      !isPlainObject(entry) ||
      typeof entry.sha256 !== 'string' ||
      !/^[0-9a-f]{64}$/.test(entry.sha256) ||
      !Number.isSafeInteger(entry.bytes) ||
      (entry.bytes as number) < 0
    ) {
      return bad(`manifest entry for "${name}" is not {sha256: 64 hex digits, bytes: integer ≥ 0}`);
    }
    files.push([name, { sha256: entry.sha256, bytes: entry.bytes as number }]);
  }
  return { step, files: Object.fromEntries(files), meta: json.meta, createdAt: json.createdAt };
}
