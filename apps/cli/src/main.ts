/** Entry point of the `quorum` bin: runs the program and turns Quorum errors into one clear message. */
import { QuorumError } from '@quorum/core';
import { buildProgram } from './program.js';

try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  if (error instanceof QuorumError) {
    process.stderr.write(`quorum: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
}
