/**
 * One error style and documented exit codes for every command. Every error is one `quorum: …` message on
 * stderr (a Quorum error already names where the problem is and how to fix it); an internal error (a bug)
 * is one line `quorum: internal error: <message>`, with its stack only under --debug or QUORUM_DEBUG=1.
 */
import { inspect } from 'node:util';
import { BackendError, ConfigError, QuorumError, RegistryError } from '@quorum/core';
import { RunInterrupted } from '@quorum/runs';
import { CommanderError } from 'commander';

export const EXIT_CODES = {
  /** The command did its work (or printed --help / --version). */
  ok: 0,
  /** Internal error: an unexpected exception, a bug in Quorum or a plugin (one line; the stack with --debug). Please report it. */
  internal: 1,
  /** Usage or configuration error: an unknown command or option, a bad or missing value, a bad config or strategy option, an unusable backend choice, an output that is the input. */
  usage: 2,
  /** Data or model error: an input file, a model folder, an output path or a judge endpoint could not be used. */
  data: 3,
  /** Interrupted: stopped by Ctrl-C before a checkpoint could finish the stage; rerun to resume. */
  interrupted: 130,
} as const;

/** The epilogue of `quorum --help`. */
export const EXIT_CODES_HELP = `Exit codes:
  0    done (also --help and --version)
  1    internal error: a bug in Quorum or a plugin; rerun with --debug (or QUORUM_DEBUG=1) for the
       stack and please report it
  2    usage or configuration error: unknown command or option, bad or missing option value,
       bad quorum.config.json or strategy option, a compute backend that cannot run, an output
       that is the input
  3    data or model error: an input file, a model folder, an output path or a judge endpoint
       could not be used
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

/** True when `--debug` is among the arguments (before a `--`) or QUORUM_DEBUG is set to anything but 0. */
export function debugRequested(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): boolean {
  const flag = env.QUORUM_DEBUG;
  if (flag !== undefined && flag !== '' && flag !== '0' && flag.toLowerCase() !== 'false') return true;
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--debug');
}

/**
 * What went wrong, in one line, for any thrown value: `TypeError: x is not a function`; an error with an
 * empty or missing message by its class and code (`Error (no message, code E_X)`); a thrown string as
 * itself; anything else (a number from a wasm abort, `undefined`, an object) by its kind and value.
 */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    // A subclass that does not set `name` still says which class it is.
    const name = (error.name && error.name !== 'Error' ? error.name : error.constructor?.name) || 'Error';
    const code = (error as { code?: unknown }).code;
    const message = typeof error.message === 'string' ? oneLine(error.message) : '';
    const codeText = code === undefined || code === null ? '' : String(code);
    if (message === '') return `${name} (no message${codeText === '' ? '' : `, code ${codeText}`})`;
    const named = name === 'Error' ? message : `${name}: ${message}`;
    return codeText === '' || message.includes(codeText) ? named : `${named} (code ${codeText})`;
  }
  if (typeof error === 'string') return error.trim() === '' ? 'an empty string was thrown' : oneLine(error);
  if (error === undefined || error === null) return `${error} was thrown instead of an error`;
  const kind = typeof error === 'object' ? 'an object' : `a ${typeof error}`;
  return `${kind} was thrown instead of an error: ${inspect(error, { depth: 2, breakLength: Number.POSITIVE_INFINITY })}`;
}

function oneLine(text: string): string {
  return text.trim().replace(/\s*\n\s*/g, ' ');
}

/**
 * The message for an error (commander's own are printed by commander in the same style). With `debug`,
 * every error is followed by its stack and causes.
 */
export function formatError(error: unknown, options: { readonly debug?: boolean } = {}): string {
  const debug = options.debug === true;
  const details = debug ? `${inspect(error, { depth: 4 })}\n` : '';
  if (error instanceof QuorumError || error instanceof RunInterrupted)
    return `quorum: ${error.message}\n${details}`;
  const help = debug ? 'please report it' : 'rerun with --debug for the stack, and please report it';
  return `quorum: internal error: ${describeError(error)} (${help})\n${details}`;
}

/** Commander's `error: unknown option '--x'` in Quorum's style: `quorum: unknown option '--x'`. */
export function commanderMessage(text: string): string {
  return text.replace(/^error: /, 'quorum: ');
}
