import { datasets, loadPreferencePairs, type PreferencePair } from '@quorum/data';
import { evaluatePairs } from '@quorum/ensemble';
import { type Command, Option } from 'commander';
import { collect, positiveInt } from '../args.js';
import { createContext, type GlobalOptions, startCompute } from '../context.js';
import { aggregationFromArgs, loadRewardModel, parseKeyValues } from '../load.js';
import { formatMetrics, metricsSummary } from '../pipelines/reward.js';

interface EvalRmOptions {
  model: string;
  data: string;
  format?: string;
  limit?: number;
  agg: string;
  aggOpt?: string[];
  json?: boolean;
}

async function pairsFor(data: string, format: string | undefined): Promise<PreferencePair[]> {
  if (data === 'alpaca-eval') return (await datasets.alpacaEval()).pairs({ split: 'eval' });
  if (data === 'hh-rlhf') return datasets.hhRlhf();
  return (await loadPreferencePairs(data, format === undefined ? {} : { format })).pairs;
}

export function registerEvalRm(program: Command): void {
  program
    .command('eval-rm')
    .description(
      'accuracy, calibration (ECE), member correlation and length correlation of a reward model on preference pairs',
    )
    .requiredOption('--model <dir>', 'reward-model folder')
    .option(
      '--data <alpaca-eval|hh-rlhf|file>',
      'alpaca-eval (eval split), hh-rlhf (shipped human pairs) or a JSONL preference file',
      'alpaca-eval',
    )
    .option('--format <name>', 'format of a --data file (detected when omitted)')
    .addOption(new Option('--limit <n>', 'score only the first n pairs').argParser(positiveInt))
    .option('--agg <rule>', 'aggregation rule for the ensemble accuracy', 'mean')
    .addOption(new Option('--agg-opt <key=value>', 'rule option (repeatable)').argParser(collect))
    .option('--json', 'print the metrics as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  $ quorum eval-rm --model runs/rm-lora\n  $ quorum eval-rm --model runs/rm-lora --data hh-rlhf --limit 500',
    )
    .action(async (opts: EvalRmOptions, cmd: Command) => {
      const ctx = await createContext(cmd.optsWithGlobals<GlobalOptions>());
      await startCompute(ctx);
      const rule = aggregationFromArgs(ctx, opts.agg, parseKeyValues(opts.aggOpt, '--agg-opt'));
      const { ensemble, tokenizer } = await loadRewardModel(ctx, opts.model);
      try {
        let pairs = await pairsFor(opts.data, opts.format);
        if (opts.limit !== undefined) pairs = pairs.slice(0, opts.limit);
        const m = evaluatePairs(ensemble, tokenizer, pairs, {
          aggregate: (r) => rule.aggregateArrays(r).aggregate,
          maxLength: ensemble.gptConfig.contextLength,
        });
        process.stdout.write(
          opts.json === true ? `${JSON.stringify(metricsSummary(m), null, 2)}\n` : `${formatMetrics(m)}\n`,
        );
      } finally {
        ensemble.dispose();
      }
    });
}
