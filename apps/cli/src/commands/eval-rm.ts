/** `quorum eval-rm`: a reward model's metrics on preference pairs (the run is @quorum/runs' `evaluateRewardModel`). */
import { evaluateRewardModel, formatMetrics, metricsSummary } from '@quorum/runs';
import { type Command, Option } from 'commander';
import { positiveInt } from '../args.js';
import {
  architectureRegistry,
  createContext,
  type GlobalOptions,
  ruleRegistry,
  startCompute,
} from '../context.js';
import { aggOption, aggOptOption, betaOption, lambdaOption, ruleFromFlags } from '../options.js';

interface EvalRmOptions {
  model: string;
  data: string;
  format?: string;
  limit?: number;
  agg: string;
  aggOpt?: string[];
  beta?: number;
  lambda?: number;
  json?: boolean;
}

export function registerEvalRm(program: Command): void {
  program
    .command('eval-rm')
    .description(
      'accuracy, calibration (ECE), member correlation and length correlation of a reward model on preference pairs',
    )
    .addOption(
      new Option('--model <dir>', 'reward-model folder written by `quorum train-rm`').makeOptionMandatory(),
    )
    .option(
      '--data <alpaca-eval|hh-rlhf|file>',
      'alpaca-eval (eval split), hh-rlhf (shipped human pairs) or a JSONL preference file',
      'alpaca-eval',
    )
    .option('--format <name>', 'format of a --data file (detected when omitted)')
    .addOption(new Option('--limit <n>', 'score only the first n pairs').argParser(positiveInt))
    .addOption(aggOption())
    .addOption(aggOptOption())
    .addOption(betaOption())
    .addOption(lambdaOption())
    .option('--json', 'print the metrics as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  $ quorum eval-rm --model runs/rm-lora\n  $ quorum eval-rm --model runs/rm-lora --data hh-rlhf --limit 500',
    )
    .action(async (opts: EvalRmOptions, cmd: Command) => {
      const ctx = await createContext(cmd.optsWithGlobals<GlobalOptions>());
      const { rule } = ruleFromFlags(ruleRegistry(ctx), opts);
      await startCompute(ctx);
      const m = await evaluateRewardModel({
        model: opts.model,
        architectures: architectureRegistry(ctx),
        rule,
        data: opts.data,
        format: opts.format,
        limit: opts.limit,
      });
      process.stdout.write(
        opts.json === true ? `${JSON.stringify(metricsSummary(m), null, 2)}\n` : `${formatMetrics(m)}\n`,
      );
    });
}
