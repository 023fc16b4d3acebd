/**
 * `quorum eval`: the paper's two benchmarks for any policy (the run is @quorum/runs' `runEval`): answers
 * to the shipped AlpacaEval eval-split instructions or the MT-Bench questions, graded by a judge.
 */
import path from 'node:path';
import { type Bench, formatEvalSummary, runEval } from '@quorum/runs';
import { type Command, Option } from 'commander';
import { collect, finiteNumber, positiveInt } from '../args.js';
import { createContext, type GlobalOptions, judgeRegistry, startCompute } from '../context.js';
import { parseKeyValues } from '../key-values.js';
import { overwriteOption, resumeOption, seedOption } from '../options.js';
import { prepareOutDir } from '../out-dir.js';
import { progressLine } from '../progress.js';

export interface EvalCommandOptions {
  bench: Bench;
  policy: string;
  judge: string;
  judgeOpt?: string[];
  limit?: number;
  out?: string;
  seed: number;
  maxNewTokens: number;
  temperature: number;
  batchSize: number;
  resume?: boolean;
  overwrite?: boolean;
}

/** Flags → the judge and generation options, checked → runEval; prints the summary line. */
async function evalCommand(globals: GlobalOptions, o: EvalCommandOptions): Promise<void> {
  if (o.out !== undefined)
    prepareOutDir(o.out, { ...o, resumeMeans: 'reuse the judge verdicts cached there' });
  const ctx = await createContext(globals);
  const judgeOptions = parseKeyValues(o.judgeOpt, '--judge-opt', judgeRegistry(ctx).get(o.judge).options);
  if (o.judge === 'llm' && judgeOptions.cache === undefined && o.out !== undefined)
    judgeOptions.cache = path.join(o.out, 'judge-cache.jsonl');
  const progress = progressLine(`eval ${o.bench}`);
  const judge = judgeRegistry(ctx).create([o.judge, judgeOptions], '--judge', {
    log: (line) => progress.log(line),
  });
  await startCompute(ctx);
  const { summary } = await runEval(
    {
      bench: o.bench,
      policy: o.policy,
      judge,
      limit: o.limit,
      generation: {
        maxNewTokens: o.maxNewTokens,
        temperature: o.temperature,
        batchSize: o.batchSize,
        seed: o.seed,
      },
      out: o.out,
    },
    progress,
  );
  progress.done();
  process.stdout.write(`${formatEvalSummary(summary)}\n`);
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description(
      'grade a policy on AlpacaEval (win rate vs text-davinci-003) or MT-Bench (1–10) with a judge',
    )
    .addOption(
      new Option('--bench <name>', 'benchmark').choices(['alpaca-eval', 'mt-bench']).makeOptionMandatory(),
    )
    .addOption(
      new Option(
        '--policy <dir>',
        'policy folder (written by `quorum sft` or `quorum ppo`), or hf:DIR (a Hugging Face model folder)',
      ).makeOptionMandatory(),
    )
    .option('--judge <name>', 'judge: llm, reward-model, preference-table or a plugin’s', 'llm')
    .addOption(
      new Option(
        '--judge-opt <key=value>',
        'judge option (repeatable), e.g. baseUrl=…, model=…, timeoutMs=…',
      ).argParser(collect),
    )
    .addOption(new Option('--limit <n>', 'only the first n instructions / questions').argParser(positiveInt))
    .option('--out <dir>', 'write answers.jsonl, eval.json and the judge cache here')
    .addOption(resumeOption('reuse the judge verdicts already in --out'))
    .addOption(overwriteOption())
    .addOption(seedOption('generation seed'))
    .addOption(
      new Option('--max-new-tokens <n>', 'answer length budget (tokens)').default(64).argParser(positiveInt),
    )
    .addOption(
      new Option('--temperature <t>', 'sampling temperature (0 = greedy)').default(0).argParser(finiteNumber),
    )
    .addOption(new Option('--batch-size <n>', 'prompts generated together').default(8).argParser(positiveInt))
    .addHelpText(
      'after',
      `
The llm judge reads QUORUM_JUDGE_BASE_URL, QUORUM_JUDGE_MODEL and QUORUM_JUDGE_API_KEY (or --judge-opt
baseUrl=… model=… apiKey=…); it retries timeouts, 429 and 5xx with backoff, and caches every verdict in
OUT/judge-cache.jsonl, so a rerun with --resume asks nothing twice. The key is never printed or stored.

Examples:
  $ QUORUM_JUDGE_BASE_URL=https://api.openai.com/v1 QUORUM_JUDGE_MODEL=gpt-4-turbo QUORUM_JUDGE_API_KEY=… \\
      quorum eval --bench alpaca-eval --policy runs/sft --out runs/eval-alpaca
  $ quorum eval --bench mt-bench --policy runs/ppo --limit 10 --out runs/eval-mt
  $ quorum eval --bench alpaca-eval --policy runs/sft --judge reward-model --judge-opt model=runs/gold-rm`,
    )
    .action(async (opts: EvalCommandOptions, cmd: Command) => {
      await evalCommand(cmd.optsWithGlobals<GlobalOptions>(), opts);
    });
}
