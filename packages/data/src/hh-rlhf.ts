/** The shipped HH-RLHF harmless-base test split (2,312 human preference pairs), parsed once per process. */
import { loadPreferencePairs } from './load.js';
import { datasetPath } from './paths.js';
import type { PreferencePair } from './types.js';

let cache: Promise<PreferencePair[]> | undefined;

/** HH-RLHF harmless-base test pairs; the shared transcript prefix is the prompt. */
export function hhRlhf(): Promise<PreferencePair[]> {
  cache ??= loadPreferencePairs(datasetPath('hh_rlhf/harmless-base-test.jsonl.gz'), {
    format: 'hh-rlhf',
  }).then(
    (r) => r.pairs,
    (error: unknown) => {
      cache = undefined;
      throw error;
    },
  );
  return cache;
}
