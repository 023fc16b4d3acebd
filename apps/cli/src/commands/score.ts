/**
 * `quorum score`: rewards for answers from any JSONL file, streamed in chunks. One output row per input
 * row, in input order, every input field kept, plus `rewards` (one per member), `reward` (the aggregate)
 * and `std` (the members' spread).
 */

import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { DataError, describeValue } from '@quorum/core';
import { readJsonl } from '@quorum/data';
import { scoreAnswers } from '@quorum/ensemble';
import { type Command, Option } from 'commander';
import { collect, finiteNumber, positiveInt } from '../args.js';
import { createContext, type GlobalOptions, startCompute } from '../context.js';
import { aggregationFromArgs, loadRewardModel, parseKeyValues } from '../load.js';
import { progressLine } from '../progress.js';

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

interface ScoreOptions {
  model: string;
  input: string;
  output: string;
  agg: string;
  aggOpt?: string[];
  beta?: number;
  lambda?: number;
  batchSize: number;
  chunk: number;
}

export function registerScore(program: Command): void {
  program
    .command('score')
    .description('score answers in a JSONL file with a reward model or ensemble (streams large files)')
    .requiredOption('--model <dir>', 'reward-model folder written by `quorum train-rm`')
    .requiredOption('--input <file.jsonl>', 'rows {instruction, input?, output}; other fields are kept')
    .requiredOption('--output <file.jsonl>', 'where to write the scored rows (one per input row, same order)')
    .option('--agg <rule>', 'aggregation rule: mean, lcb, min, uwo, median, or a plugin rule', 'mean')
    .addOption(
      new Option(
        '--agg-opt <key=value>',
        'an option of the rule (repeatable), e.g. --agg-opt beta=0.5',
      ).argParser(collect),
    )
    .addOption(new Option('--beta <number>', 'shorthand for --agg-opt beta=… (lcb)').argParser(finiteNumber))
    .addOption(
      new Option('--lambda <number>', 'shorthand for --agg-opt lambda=… (uwo)').argParser(finiteNumber),
    )
    .addOption(
      new Option('--batch-size <n>', 'answers per forward pass (memory is bounded by this)')
        .default(32)
        .argParser(positiveInt),
    )
    .addOption(
      new Option('--chunk <n>', 'rows read before scoring and writing them')
        .default(512)
        .argParser(positiveInt),
    )
    .addHelpText(
      'after',
      `
Each output row is the input row plus:
  rewards  one reward per ensemble member (k numbers)
  reward   the aggregate chosen with --agg (default: mean)
  std      the members' population std (0 for a single model, never NaN)

Examples:
  $ quorum score --model runs/rm-lora --input answers.jsonl --output scored.jsonl
  $ quorum score --model runs/rm-lora --input answers.jsonl --output scored.jsonl --agg lcb --beta 0.5
  $ quorum score --model runs/rm --input a.jsonl --output b.jsonl --agg uwo --agg-opt lambda=0.2`,
    )
    .action(async (opts: ScoreOptions, cmd: Command) => {
      const ctx = await createContext(cmd.optsWithGlobals<GlobalOptions>());
      await startCompute(ctx);
      const aggOptions = parseKeyValues(opts.aggOpt, '--agg-opt');
      if (opts.beta !== undefined) aggOptions.beta = opts.beta;
      if (opts.lambda !== undefined) aggOptions.lambda = opts.lambda;
      const rule = aggregationFromArgs(ctx, opts.agg, aggOptions);
      const { ensemble, tokenizer } = await loadRewardModel(ctx, opts.model);
      const out = createWriteStream(opts.output);
      const progress = progressLine('score');
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
          { batchSize: opts.batchSize },
        );
        const agg = rule.aggregateArrays(rewards);
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
        for await (const { value, line } of readJsonl(opts.input)) {
          pending.push({
            raw: value as Record<string, unknown>,
            row: parseScoreRow(value, opts.input, line),
          });
          if (pending.length >= opts.chunk) await flush();
        }
        await flush();
      } finally {
        out.end();
        await once(out, 'close');
        ensemble.dispose();
      }
      progress.done(
        `scored ${rows} rows with ${ensemble.architecture} (k = ${ensemble.members}, ${rule.name}) → ${opts.output}`,
      );
    });
}
