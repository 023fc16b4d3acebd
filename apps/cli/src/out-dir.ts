/** The rule every command that writes a run folder follows: never clobber silently. */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { ConfigError } from '@quorum/core';

export interface OutDirOptions {
  readonly resume?: boolean | undefined;
  readonly overwrite?: boolean | undefined;
  /** What --resume does for this command, for the error's hint (default: continue from the last checkpoint). */
  readonly resumeMeans?: string | undefined;
}

/**
 * A non-empty `dir` needs `--resume` (continue from its last checkpoint) or `--overwrite` (start over,
 * deleting it). Returns whether to resume.
 */
export function prepareOutDir(dir: string, options: OutDirOptions): { resume: boolean } {
  if (options.resume === true && options.overwrite === true) {
    throw new ConfigError('--resume and --overwrite contradict each other', {
      location: { field: '--out' },
      hint: 'pass one of them',
    });
  }
  const nonEmpty = existsSync(dir) && readdirSync(dir).length > 0;
  // --resume on an empty folder is allowed: the run starts fresh and says so.
  if (!nonEmpty) return { resume: options.resume === true };
  if (options.overwrite === true) {
    rmSync(dir, { recursive: true, force: true });
    return { resume: false };
  }
  if (options.resume === true) return { resume: true };
  throw new ConfigError(`output folder ${dir} is not empty`, {
    location: { field: '--out' },
    hint: `pass --resume to ${options.resumeMeans ?? 'continue its run from the last checkpoint'}, or --overwrite to delete it and start over`,
  });
}
