/**
 * Writing an export folder atomically: everything goes to a temporary sibling folder first (same file
 * system), which is renamed to `outDir` only when complete, so a reader never sees half an export and a
 * failed export leaves nothing behind. An existing non-empty `outDir` is refused unless `overwrite`; it is
 * then moved aside, replaced by the new folder and removed.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, encodeSafetensors, type TensorRecord, writeFileAtomic } from '@quorum/core';

/** A folder being written: files go under `root`, by names relative to the export. */
export interface StagedFolder {
  readonly root: string;
  json(name: string, value: unknown): Promise<void>;
  text(name: string, text: string): Promise<void>;
  /** A safetensors file with `format: pt` metadata (transformers refuses a file without it). */
  safetensors(name: string, tensors: Record<string, TensorRecord>): Promise<void>;
}

async function isNonEmptyFolder(dir: string): Promise<boolean> {
  const info = await stat(dir);
  if (!info.isDirectory()) {
    throw new ConfigError('exists and is not a folder', {
      location: { file: dir, field: 'outDir' },
      hint: 'choose a folder path for the export',
    });
  }
  return (await readdir(dir)).length > 0;
}

/** Refuses an outDir that is the source folder or inside it (an overwrite would delete the model). */
async function checkOutside(outDir: string, sourceDir: string): Promise<void> {
  const source = await realpath(sourceDir);
  let parent = path.resolve(outDir);
  // The nearest existing ancestor of outDir decides where it really is.
  const rest: string[] = [];
  while (!existsSync(parent)) {
    rest.unshift(path.basename(parent));
    parent = path.dirname(parent);
  }
  const real = path.join(await realpath(parent), ...rest);
  const rel = path.relative(source, real);
  if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) {
    throw new ConfigError(`is the model folder ${sourceDir} or inside it`, {
      location: { file: outDir, field: 'outDir' },
      hint: 'export to a folder outside the model folder',
    });
  }
}

/**
 * Runs `write` on a staged folder and moves it to `outDir`. `sourceDir` (the model read) may not contain
 * `outDir`.
 */
export async function writeFolderAtomically(
  outDir: string,
  options: { readonly overwrite?: boolean | undefined; readonly sourceDir: string },
  write: (folder: StagedFolder) => Promise<void>,
): Promise<void> {
  await checkOutside(outDir, options.sourceDir);
  const refuse = async (): Promise<void> => {
    if (existsSync(outDir) && options.overwrite !== true && (await isNonEmptyFolder(outDir))) {
      throw new ConfigError('exists and is not empty', {
        location: { file: outDir, field: 'overwrite' },
        hint: 'choose a new folder, or pass overwrite: true (quorum export --overwrite) to replace it',
      });
    }
  };
  await refuse();
  const parent = path.dirname(path.resolve(outDir));
  await mkdir(parent, { recursive: true });
  const tag = `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const staged = path.join(parent, `.${path.basename(outDir)}.export-${tag}`);
  await mkdir(staged);
  const place = async (name: string): Promise<string> => {
    const file = path.join(staged, name);
    if (path.relative(staged, file).startsWith('..')) {
      throw new ConfigError(`export file name ${JSON.stringify(name)} leaves the folder`, {
        location: { file: outDir },
        hint: 'tokenizer and weight files are named without folders',
      });
    }
    await mkdir(path.dirname(file), { recursive: true });
    return file;
  };
  const folder: StagedFolder = {
    root: staged,
    json: async (name, value) =>
      writeFileAtomic(await place(name), `${JSON.stringify(value, undefined, 2)}\n`),
    text: async (name, text) => writeFileAtomic(await place(name), text),
    safetensors: async (name, tensors) =>
      writeFileAtomic(await place(name), encodeSafetensors(tensors, { format: 'pt' }, name)),
  };
  try {
    await write(folder);
    await refuse(); // outDir may have appeared meanwhile
    if (existsSync(outDir)) {
      const old = path.join(parent, `.${path.basename(outDir)}.replaced-${tag}`);
      await rename(outDir, old);
      await rename(staged, outDir);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(staged, outDir);
    }
  } catch (error) {
    await rm(staged, { recursive: true, force: true });
    throw error;
  }
}
