/** Loading the artefacts commands share: policies and reward ensembles with their tokenizers. */
import { AggregationRule, type AggregationRule as Rule } from '@quorum/aggregation';
import { type LoadedPolicy, loadPolicy } from '@quorum/backbone';
import { ConfigError, requireRegistry } from '@quorum/core';
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

/** Parses repeated `key=value` options into an object (numbers and booleans converted). */
export function parseKeyValues(pairs: readonly string[] | undefined, flag: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0)
      throw new ConfigError(`expects key=value, got "${pair}"`, {
        location: { field: flag },
        hint: `write ${flag} beta=0.5`,
      });
    const key = pair.slice(0, eq);
    const raw = pair.slice(eq + 1);
    out[key] =
      raw === 'true'
        ? true
        : raw === 'false'
          ? false
          : raw !== '' && !Number.isNaN(Number(raw))
            ? Number(raw)
            : raw;
  }
  return out;
}
