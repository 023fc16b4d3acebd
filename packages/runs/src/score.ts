/**
 * Rewards for answers in any JSONL file, streamed in chunks (`quorum score`). One output row per input
 * row, in input order, every input field kept, plus `rewards` (one per member), `reward` (the aggregate)
 * and `std` (the members' spread).
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { AggregationRule } from '@quorum/aggregation';
import { DataError, describeValue, type StrategyRegistry } from '@quorum/core';
import { readJsonl } from '@quorum/data';
import { type EnsembleArchitecture, scoreAnswers } from '@quorum/ensemble';
import { loadRewardModel } from './load.js';
import { type RunProgress, silentProgress } from './progress.js';

export interface ScoreRow {
  readonly instruction: string;
  readonly input: string;
  readonly output: string;
}

/** Checks one input row; errors name the file, line and field. */
export function parseScoreRow(value: unknown, file: string, line: number): ScoreRow {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new DataError(`expected a JSON object, got ${describeValue(value)}`, {
      location: { file, line },
      hint: 'write one {"instruction", "output"} object per line',
    });
  }
  const row = value as Record<string, unknown>;
  for (const field of ['instruction', 'output'] as const) {
    if (typeof row[field] !== 'string') {
      throw new DataError(
        row[field] === undefined ? 'is missing' : `must be a string, got ${describeValue(row[field])}`,
        {
          location: { file, line, field },
          hint: 'each row needs "instruction" and "output" strings ("input" is optional)',
        },
      );
    }
  }
  if (row.input !== undefined && typeof row.input !== 'string') {
    throw new DataError(`must be a string, got ${describeValue(row.input)}`, {
      location: { file, line, field: 'input' },
      hint: 'omit "input" or make it a string',
    });
  }
  return {
    instruction: row.instruction as string,
    input: (row.input as string | undefined) ?? '',
    output: row.output as string,
  };
}

export interface ScoreRunOptions {
  /** The reward-model folder. */
  readonly model: string;
  /** Architectures the reward model may use (plugins included). */
  readonly architectures: StrategyRegistry<EnsembleArchitecture>;
  readonly rule: AggregationRule;
  /** Rows {instruction, input?, output}; other fields are kept. */
  readonly input: string;
  /** Where the scored rows go (one per input row, same order). */
  readonly out: string;
  /** Answers per forward pass (bounds memory). */
  readonly batchSize: number;
  /** Rows read before scoring and writing them. */
  readonly chunk: number;
}

export interface ScoreRunResult {
  readonly rows: number;
  readonly architecture: string;
  readonly members: number;
}

/** Scores every row of `input` into `out`; see this file's header. */
export async function scoreFile(
  options: ScoreRunOptions,
  progress: RunProgress = silentProgress,
): Promise<ScoreRunResult> {
  const { ensemble, tokenizer } = await loadRewardModel(options.model, options.architectures);
  const out = createWriteStream(options.out);
  let rows = 0;
  let pending: { raw: Record<string, unknown>; row: ScoreRow }[] = [];
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const rewards = scoreAnswers(
      ensemble,
      tokenizer,
      pending.map((p) => ({
        prompt: { instruction: p.row.instruction, input: p.row.input },
        answer: p.row.output,
      })),
      { batchSize: options.batchSize },
    );
    const agg = options.rule.aggregateArrays(rewards);
    const text = pending
      .map((p, j) =>
        JSON.stringify({
          ...p.raw,
          rewards: rewards.map((r) => r[j]),
          reward: agg.aggregate[j],
          std: agg.std[j],
        }),
      )
      .join('\n');
    if (!out.write(`${text}\n`)) await once(out, 'drain');
    rows += pending.length;
    progress.update(rows, rows, `${rows} rows`);
    pending = [];
  };
  try {
    for await (const { value, line } of readJsonl(options.input)) {
      pending.push({ raw: value as Record<string, unknown>, row: parseScoreRow(value, options.input, line) });
      if (pending.length >= options.chunk) await flush();
    }
    await flush();
  } finally {
    out.end();
    await once(out, 'close');
    ensemble.dispose();
  }
  return { rows, architecture: ensemble.architecture, members: ensemble.members };
}
