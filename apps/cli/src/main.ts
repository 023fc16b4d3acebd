/** Entry point of the `quorum` bin: runs the program, then exits with the documented code (see errors.ts). */
import { debugRequested } from './errors.js';
import { exitWithError, installProcessHandlers, releaseCompute } from './exit.js';
import { runCli } from './program.js';

const options = { debug: debugRequested(process.argv.slice(2)) };
installProcessHandlers(options);
try {
  await runCli(process.argv);
} catch (error) {
  exitWithError(error, options);
}
releaseCompute();
