/**
 * One error style and documented exit codes for every command. Every error is one `quorum: …` message on
 * stderr (a Quorum error already names where the problem is and how to fix it); only an internal error
 * (a bug) adds its stack.
 */
import { BackendError, ConfigError, QuorumError, RegistryError } from '@quorum/core';
import { RunInterrupted } from '@quorum/runs';
import { CommanderError } from 'commander';

export const EXIT_CODES = {
  /** The command did its work (or printed --help / --version). */
  ok: 0,
  /** Internal error: an unexpected exception, a bug in Quorum or a plugin. Please report it. */
  internal: 1,
  /** Usage or configuration error: an unknown command or option, a bad or missing value, a bad config or strategy option, an unusable backend choice. */
  usage: 2,
  /** Data or model error: an input file, a model folder or a judge endpoint could not be used. */
  data: 3,
  /** Interrupted: stopped by Ctrl-C before a checkpoint could finish the stage; rerun to resume. */
  interrupted: 130,
} as const;

/** The epilogue of `quorum --help`. */
export const EXIT_CODES_HELP = `Exit codes:
  0    done (also --help and --version)
  1    internal error: a bug in Quorum or a plugin (the stack is printed; please report it)
  2    usage or configuration error: unknown command or option, bad or missing option value,
       bad quorum.config.json or strategy option, a compute backend that cannot run
  3    data or model error: an input file, a model folder or a judge endpoint could not be used
  130  interrupted (Ctrl-C twice, or Ctrl-C before the first checkpoint); rerun to resume`;

/** The exit code for an error a command threw. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.usage;
  if (error instanceof RunInterrupted) return EXIT_CODES.interrupted;
  if (error instanceof ConfigError || error instanceof RegistryError || error instanceof BackendError)
    return EXIT_CODES.usage;
  if (error instanceof QuorumError) return EXIT_CODES.data;
  return EXIT_CODES.internal;
}

/** The message for an error (commander's own are printed by commander in the same style). */
export function formatError(error: unknown): string {
  if (error instanceof QuorumError || error instanceof RunInterrupted) return `quorum: ${error.message}\n`;
  const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return `quorum: internal error (please report it with the command you ran): ${stack}\n`;
}

/** Commander's `error: unknown option '--x'` in Quorum's style: `quorum: unknown option '--x'`. */
export function commanderMessage(text: string): string {
  return text.replace(/^error: /, 'quorum: ');
}
