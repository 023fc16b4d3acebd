/**
 * Rewards for answers in any JSONL file, streamed in chunks (`quorum score`). One output row per input
 * row, in input order, every input field kept, plus `rewards` (one per member), `reward` (the aggregate)
 * and `std` (the members' spread). Every number written is finite (a NaN or infinite reward is a
 * NumericalError naming the row), and the output appears only when every row is scored.
 */
import type { AggregationRule } from '@quorum/aggregation';
import {
  assertNotSameFile,
  DataError,
  describeValue,
  NumericalError,
  openAtomicOutput,
  type StrategyRegistry,
} from '@quorum/core';
import { readJsonl } from '@quorum/data';
import { type EnsembleArchitecture, type LoadedEnsemble, scoreAnswers } from '@quorum/ensemble';
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

/** The default bound on a chunk's bytes (64 MiB): a chunk is scored early when its rows reach it. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024;

export interface ScoreRunOptions {
  /** The reward-model folder. */
  readonly model: string;
  /** Architectures the reward model may use (plugins included). */
  readonly architectures: StrategyRegistry<EnsembleArchitecture>;
  readonly rule: AggregationRule;
  /** Rows {instruction, input?, output}; other fields are kept. */
  readonly input: string;
  /** Where the scored rows go (one per input row, same order); written only when every row is scored. */
  readonly out: string;
  /** Answers per forward pass (bounds memory). */
  readonly batchSize: number;
  /** Rows read before scoring and writing them. */
  readonly chunk: number;
  /**
   * Bytes (of the rows as JSON) read before scoring and writing them, whichever of `chunk` and this comes
   * first; one row larger than this is a DataError. Default DEFAULT_CHUNK_BYTES.
   */
  readonly chunkBytes?: number | undefined;
}

export interface ScoreRunResult {
  readonly rows: number;
  readonly architecture: string;
  readonly members: number;
}

const MIB = 1024 * 1024;
/** `812 bytes`, `3.2 KiB`, `70.4 MiB`. */
function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  return bytes < MIB ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / MIB).toFixed(1)} MiB`;
}

/** One row as JSON; a row nested too deeply for JSON.stringify is a DataError at its line. */
function rowJson(value: unknown, file: string, line: number): string {
  try {
    return JSON.stringify(value);
  } catch (cause) {
    if (!(cause instanceof RangeError)) throw cause;
    throw new DataError('the row is nested too deeply to be written back', {
      location: { file, line },
      hint: 'flatten or drop its deeply nested fields (score keeps every field of a row)',
      cause,
    });
  }
}

/** Refuses a non-finite reward, aggregate or spread before anything of its chunk is written. */
function checkFinite(
  rewards: readonly number[],
  reward: number | undefined,
  std: number | undefined,
  rule: string,
  file: string,
  line: number,
): void {
  const bad = (x: number | undefined): boolean => x === undefined || !Number.isFinite(x);
  if (rewards.some(bad)) {
    throw new NumericalError(`the reward model gave a non-finite reward: [${rewards.join(', ')}]`, {
      location: { file, line },
      hint: 'the model folder may hold NaN or infinite weights: retrain it or score with another model',
    });
  }
  if (bad(reward) || bad(std)) {
    throw new NumericalError(
      `the aggregation rule "${rule}" turned the finite rewards [${rewards.join(', ')}] into reward ${reward} and std ${std}`,
      {
        location: { file, line },
        hint: "check the rule's options (--agg-opt), or choose another --agg",
      },
    );
  }
}

/**
 * Scores every row of `input` into `out`; see this file's header. `out` is written through a temp file
 * renamed at the end, so a failure (a bad row, a full disk) leaves no partial output and an earlier `out`
 * untouched; an `out` that is the input is refused before anything is read.
 */
export async function scoreFile(
  options: ScoreRunOptions,
  progress: RunProgress = silentProgress,
): Promise<ScoreRunResult> {
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  assertNotSameFile(options.input, options.out, { input: '--input', output: '--out' });
  const out = await openAtomicOutput(options.out);
  let ensemble: LoadedEnsemble['ensemble'] | undefined;
  try {
    const loaded = await loadRewardModel(options.model, options.architectures);
    ensemble = loaded.ensemble;
    const { tokenizer } = loaded;
    const model = ensemble;
    let rows = 0;
    let pending: { raw: Record<string, unknown>; row: ScoreRow; line: number }[] = [];
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      const rewards = scoreAnswers(
        model,
        tokenizer,
        pending.map((p) => ({
          prompt: { instruction: p.row.instruction, input: p.row.input },
          answer: p.row.output,
        })),
        { batchSize: options.batchSize },
      );
      const agg = options.rule.aggregateArrays(rewards);
      const text = pending
        .map((p, j) => {
          const member = rewards.map((r) => r[j] as number);
          checkFinite(member, agg.aggregate[j], agg.std[j], options.rule.name, options.input, p.line);
          return JSON.stringify({ ...p.raw, rewards: member, reward: agg.aggregate[j], std: agg.std[j] });
        })
        .join('\n');
      await out.write(`${text}\n`);
      rows += pending.length;
      progress.update(rows, rows, `${rows} rows`);
      pending = [];
      pendingBytes = 0;
    };
    for await (const { value, line } of readJsonl(options.input)) {
      const row = parseScoreRow(value, options.input, line);
      const bytes = Buffer.byteLength(rowJson(value, options.input, line));
      if (bytes > chunkBytes) {
        throw new DataError(
          `the row is ${formatBytes(bytes)}, more than a chunk may hold (${formatBytes(chunkBytes)})`,
          {
            location: { file: options.input, line },
            hint: `raise the limit with --chunk-bytes ${Math.ceil(bytes / MIB) * MIB} (chunkBytes when calling scoreFile), or shorten the row`,
          },
        );
      }
      if (pendingBytes + bytes > chunkBytes) await flush();
      pending.push({ raw: value as Record<string, unknown>, row, line });
      pendingBytes += bytes;
      if (pending.length >= options.chunk) await flush();
    }
    await flush();
    await out.commit();
    return { rows, architecture: model.architecture, members: model.members };
  } catch (error) {
    await out.abort();
    throw error;
  } finally {
    ensemble?.dispose();
  }
}
