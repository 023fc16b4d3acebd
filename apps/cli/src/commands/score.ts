/**
 * `quorum score`: rewards for answers from any JSONL file, streamed in chunks. One output row per input
 * row, in input order, every input field kept, plus `rewards` (one per member), `reward` (the aggregate)
 * and `std` (the members' spread).
 */
import { existsSync, statSync } from 'node:fs';
import { assertNotSameFile, ConfigError } from '@quorum/core';
import { scoreFile } from '@quorum/runs';
import { type Command, Option } from 'commander';
import { positiveInt } from '../args.js';
import {
  architectureRegistry,
  createContext,
  type GlobalOptions,
  ruleRegistry,
  startCompute,
} from '../context.js';
import {
  aggOption,
  aggOptOption,
  betaOption,
  lambdaOption,
  outOption,
  overwriteOption,
  ruleFromFlags,
} from '../options.js';
import { progressLine } from '../progress.js';

interface ScoreOptions {
  model: string;
  input: string;
  out: string;
  agg: string;
  aggOpt?: string[];
  beta?: number;
  lambda?: number;
  batchSize: number;
  chunk: number;
  chunkBytes?: number;
  overwrite?: boolean;
}

export function registerScore(program: Command): void {
  const command = program.command('score');
  command.on('option:output', (value: string) => command.setOptionValueWithSource('out', value, 'cli'));
  command
    .description('score answers in a JSONL file with a reward model or ensemble (streams large files)')
    .addOption(
      new Option('--model <dir>', 'reward-model folder written by `quorum train-rm`').makeOptionMandatory(),
    )
    .addOption(
      new Option(
        '--input <file.jsonl>',
        'rows {instruction, input?, output}; other fields are kept',
      ).makeOptionMandatory(),
    )
    .addOption(outOption('where to write the scored rows (one per input row, same order)', 'file.jsonl'))
    // The old name of --out, still accepted (not shown in the help).
    .addOption(new Option('--output <file.jsonl>').hideHelp())
    .addOption(overwriteOption('replace a non-empty --out'))
    .addOption(aggOption())
    .addOption(aggOptOption())
    .addOption(betaOption())
    .addOption(lambdaOption())
    .addOption(
      new Option('--batch-size <n>', 'answers per forward pass (memory is bounded by this)')
        .default(32)
        .argParser(positiveInt),
    )
    .addOption(
      new Option('--chunk <n>', 'rows read before scoring them (memory is bounded by this and --chunk-bytes)')
        .default(512)
        .argParser(positiveInt),
    )
    .addOption(
      new Option(
        '--chunk-bytes <n>',
        'bytes of rows (as JSON) read before scoring them; a longer row is an error (default: 67108864, 64 MiB)',
      ).argParser(positiveInt),
    )
    .addHelpText(
      'after',
      `
Each output row is the input row plus:
  rewards  one reward per ensemble member (k numbers)
  reward   the aggregate chosen with --agg (default: mean)
  std      the members' population std (0 for a single model, never NaN)

--out appears only when every row is scored: a bad row, a non-finite reward or a full disk leaves no
partial file and an earlier --out untouched. An --out that is the --input (also through a link) is refused.
--output is accepted as the old name of --out.

Examples:
  $ quorum score --model runs/rm-lora --input answers.jsonl --out scored.jsonl
  $ quorum score --model runs/rm-lora --input answers.jsonl --out scored.jsonl --agg lcb --beta 0.5
  $ quorum score --model runs/rm --input a.jsonl --out b.jsonl --agg uwo --agg-opt lambda=0.2`,
    )
    .action(async (opts: ScoreOptions, cmd: Command) => {
      assertNotSameFile(opts.input, opts.out, { input: '--input', output: '--out' });
      if (opts.overwrite !== true && existsSync(opts.out) && statSync(opts.out).size > 0) {
        throw new ConfigError(`${opts.out} exists and is not empty`, {
          location: { field: '--out' },
          hint: 'pass --overwrite to replace it, or choose another --out',
        });
      }
      const ctx = await createContext(cmd.optsWithGlobals<GlobalOptions>());
      const { rule } = ruleFromFlags(ruleRegistry(ctx), opts);
      await startCompute(ctx);
      const progress = progressLine('score');
      const result = await scoreFile(
        {
          model: opts.model,
          architectures: architectureRegistry(ctx),
          rule,
          input: opts.input,
          out: opts.out,
          batchSize: opts.batchSize,
          chunk: opts.chunk,
          chunkBytes: opts.chunkBytes,
        },
        progress,
      );
      progress.done(
        `scored ${result.rows} rows with ${result.architecture} (k = ${result.members}, ${rule.name}) → ${opts.out}`,
      );
    });
}
