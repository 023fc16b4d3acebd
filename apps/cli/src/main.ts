/** Entry point of the `quorum` bin: runs the program, then exits with the documented code (see errors.ts). */
import { CommanderError } from 'commander';
import { exitCodeOf, formatError } from './errors.js';
import { runCli } from './program.js';

try {
  await runCli(process.argv);
} catch (error) {
  // Commander has printed its own message (help, version, or a usage error in the same style).
  if (!(error instanceof CommanderError)) process.stderr.write(formatError(error));
  process.exit(exitCodeOf(error));
}
