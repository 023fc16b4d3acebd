/** Loading the artefacts commands share: policies and reward ensembles with their tokenizers. */
import { AggregationRule, type AggregationRule as Rule } from '@quorum/aggregation';
import { type LoadedPolicy, loadPolicy } from '@quorum/backbone';
import { ConfigError, describeValue, requireRegistry } from '@quorum/core';
import { Tokenizer, Vocab } from '@quorum/data';
import { EnsembleArchitecture, type LoadedEnsemble, loadEnsemble } from '@quorum/ensemble';
import type { CliContext } from './context.js';

export async function loadPolicyWithTokenizer(dir: string): Promise<LoadedPolicy & { tokenizer: Tokenizer }> {
  const policy = await loadPolicy(dir);
  return { ...policy, tokenizer: new Tokenizer(Vocab.fromJSON(policy.vocabJson, `${dir}/vocab.json`)) };
}

export async function loadRewardModel(
  ctx: CliContext,
  dir: string,
): Promise<LoadedEnsemble & { tokenizer: Tokenizer }> {
  const loaded = await loadEnsemble(dir, requireRegistry(ctx.registries, EnsembleArchitecture));
  return { ...loaded, tokenizer: new Tokenizer(Vocab.fromJSON(loaded.vocabJson, `${dir}/vocab.json`)) };
}

/** The aggregation rule named on the command line (`--agg NAME`, options from `--agg-opt k=v`, `--beta`, `--lambda`). */
export function aggregationFromArgs(ctx: CliContext, name: string, options: Record<string, unknown>): Rule {
  return requireRegistry(ctx.registries, AggregationRule).create([name, options], '--agg');
}

/** A value from the command line: `true`/`false` → boolean, a number → number, else the string as given. */
export function parseOptionValue(raw: string): unknown {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  // Number('') and Number('  ') are 0: blank stays a string, so the option's schema reports it.
  return raw.trim() !== '' && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
}

/** Parses repeated `key=value` options into an object (numbers and booleans converted; the last value wins). */
export function parseKeyValues(pairs: readonly string[] | undefined, flag: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0)
      throw new ConfigError(`expects key=value, got ${describeValue(pair)}`, {
        location: { field: flag },
        hint: `write ${flag} beta=0.5`,
      });
    // Defined, not assigned: `__proto__=1` becomes an own key (which the schema rejects as unknown)
    // instead of a silently ignored prototype write.
    Object.defineProperty(out, pair.slice(0, eq), {
      value: parseOptionValue(pair.slice(eq + 1)),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
