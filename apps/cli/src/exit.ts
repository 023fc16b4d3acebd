/**
 * How the `quorum` process ends: one handler for every error (a command's, an uncaught exception, an
 * unhandled rejection) prints it in the one style, frees the tensors and exits with the documented code.
 */
import { activeBackend } from '@quorum/core';
import * as tf from '@tensorflow/tfjs';
import { CommanderError } from 'commander';
import { EXIT_CODES, exitCodeOf, formatError } from './errors.js';

/**
 * Frees what TensorFlow.js holds before the process exits: every variable and tensor, and the backend's
 * own state (the wasm heap, native handles), through the engine's reset. Never throws: it runs on the way
 * out, often after another error.
 */
export function releaseCompute(): void {
  if (activeBackend() === undefined) return;
  try {
    tf.disposeVariables();
    tf.engine().reset();
  } catch {
    // The process is exiting; a backend that cannot clean up must not hide the error being reported.
  }
}

export interface ExitOptions {
  /** Print the stack and causes of every error (--debug, QUORUM_DEBUG=1). */
  readonly debug: boolean;
  readonly write?: (text: string) => void;
  readonly exit?: (code: number) => never;
}

/** Reports `error` (commander has printed its own), frees the tensors and exits with its code. */
export function exitWithError(error: unknown, options: ExitOptions): never {
  const write = options.write ?? ((text: string) => process.stderr.write(text));
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let code: number = EXIT_CODES.internal;
  try {
    code = exitCodeOf(error);
    if (!(error instanceof CommanderError)) write(formatError(error, { debug: options.debug }));
  } catch {
    write('quorum: internal error: the error could not be described (please report it)\n');
  }
  releaseCompute();
  return exit(code);
}

/** Routes uncaught exceptions and unhandled rejections (a stray promise, a plugin's timer) to `exitWithError`. */
export function installProcessHandlers(options: ExitOptions): void {
  let reporting = false;
  const handler = (error: unknown): void => {
    // An error while reporting an error: exit at once rather than loop.
    if (reporting) process.exit(EXIT_CODES.internal);
    reporting = true;
    exitWithError(error, options);
  };
  process.on('uncaughtException', handler);
  process.on('unhandledRejection', handler);
  // Ctrl-C / SIGTERM in a command that does not save-and-stop (score, generate, …): exit 130 through
  // process.exit, so uncommitted temp outputs are removed. Commands with checkpoints install their own
  // handler (signals.ts), and then this one stands aside.
  for (const name of ['SIGINT', 'SIGTERM'] as const) {
    process.on(name, () => {
      if (process.listenerCount(name) > 1) return;
      (options.write ?? ((text: string) => process.stderr.write(text)))(
        `\nquorum: ${name} received: stopped\n`,
      );
      releaseCompute();
      (options.exit ?? ((code: number) => process.exit(code)))(EXIT_CODES.interrupted);
    });
  }
}
