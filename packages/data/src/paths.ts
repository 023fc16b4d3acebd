/** Where the shipped data lives: `<package>/datasets/`, resolved from this file (src/ or dist/). */
import { fileURLToPath } from 'node:url';

/** Absolute path of a file under the package's `datasets/` folder, e.g. `datasetPath('hh_rlhf/x.jsonl.gz')`. */
export function datasetPath(relative: string): string {
  return fileURLToPath(new URL(`../datasets/${relative}`, import.meta.url));
}
