/**
 * `quorum best-of-n`: choose the best answer with a reward ensemble + aggregation rule.
 *   online  (--policy): sample n answers per prompt, keep the highest aggregate; one JSONL row per prompt.
 *   offline (--pool):   choose among pre-generated answers (the shipped AlpacaEval pools or a file) and
 *                       estimate the gold win rate of Best-of-n for every n from one pool (unbiased estimator),
 *                       with the random and longest-answer baselines, the length-controlled (LC) win rate
 *                       of every point and the reward–length correlation of the picks; a JSON report and a table.
 */
import { existsSync, statSync } from 'node:fs';
import { resolveBestOfNConfig } from '@quorum/best-of-n';
import { assertNotSameFile, ConfigError } from '@quorum/core';
import { ALPACA_EVAL, loadPools, loadPrompts, renderOfflineTable, runBestOfN } from '@quorum/runs';
import { type Command, Option } from 'commander';
import { finiteNumber, intList, nonNegativeInt, positiveInt } from '../args.js';
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
  rulesFromFlags,
  seedOption,
} from '../options.js';
import { progressLine } from '../progress.js';

interface BestOfNCliOptions {
  reward: string;
  policy?: string;
  pool?: string;
  prompts: string;
  split: 'eval' | 'train';
  limit?: number;
  n?: number[];
  agg: string[];
  aggOpt?: string[];
  beta?: number;
  lambda?: number;
  maxNewTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  chunk: number;
  batchSize: number;
  seed: number;
  keepAnswers?: boolean;
  out: string;
  overwrite?: boolean;
}

function checkOut(file: string, overwrite: boolean | undefined): void {
  if (overwrite !== true && existsSync(file) && statSync(file).size > 0) {
    throw new ConfigError(`${file} exists and is not empty`, {
      location: { field: '--out' },
      hint: 'pass --overwrite to replace it, or choose another --out',
    });
  }
}

/** Flags → the mode, rules and options, all checked → runBestOfN. */
async function bestOfNCommand(globals: GlobalOptions, opts: BestOfNCliOptions): Promise<void> {
  if ((opts.pool === undefined) === (opts.policy === undefined)) {
    throw new ConfigError(
      opts.pool === undefined
        ? 'give --policy (online) or --pool (offline)'
        : '--policy and --pool exclude each other',
      {
        location: { field: opts.pool === undefined ? '--policy' : '--pool' },
        hint: 'online: --policy DIR samples new answers; offline: --pool alpaca-eval|FILE chooses among given ones',
      },
    );
  }
  // The file read (--pool offline, --prompts online) must not be the one written.
  if (opts.pool !== undefined) assertNotSameFile(opts.pool, opts.out, { input: '--pool', output: '--out' });
  else assertNotSameFile(opts.prompts, opts.out, { input: '--prompts', output: '--out' });
  checkOut(opts.out, opts.overwrite);
  const ctx = await createContext(globals);
  const rules = rulesFromFlags(ruleRegistry(ctx), opts);
  const architectures = architectureRegistry(ctx);
  if (opts.pool !== undefined) {
    await startCompute(ctx);
    const pools = await loadPools(opts.pool, opts.split, opts.limit);
    const progress = progressLine('best-of-n (scoring)');
    const result = await runBestOfN(
      {
        mode: 'offline',
        reward: opts.reward,
        architectures,
        pools,
        poolSource: opts.pool === ALPACA_EVAL ? `${ALPACA_EVAL}:${opts.split}` : opts.pool,
        rules,
        ns: opts.n ?? [1, 2, 4, 8, 16, 32],
        batchSize: opts.batchSize,
        out: opts.out,
      },
      progress,
    );
    progress.done(`scored ${result.answers} answers to ${pools.length} prompts`);
    process.stdout.write(
      result.gold
        ? `${renderOfflineTable(result.report)}\n(report with every prompt's numbers: ${opts.out})\n`
        : `${result.header.pool} has no "gold" verdicts, so no win rate: wrote each rule's pick of ${result.perPrompt.length} pools to ${opts.out}\n`,
    );
    return;
  }
  if (rules.length !== 1) {
    throw new ConfigError(`online Best-of-n chooses with one rule, got ${rules.length}`, {
      location: { field: '--agg' },
      hint: 'pass one rule, e.g. --agg lcb --beta 0.5 (compare rules offline with --pool)',
    });
  }
  const ns = opts.n ?? [16];
  if (ns.length !== 1) {
    throw new ConfigError(`online Best-of-n takes one n, got ${ns.join(',')}`, {
      location: { field: '--n' },
      hint: 'e.g. --n 16 (curves over n come from offline pools: --pool)',
    });
  }
  const config = resolveBestOfNConfig(
    {
      n: ns[0],
      maxNewTokens: opts.maxNewTokens,
      temperature: opts.temperature,
      topP: opts.topP,
      topK: opts.topK,
      chunkSize: opts.chunk,
      seed: opts.seed,
      keepAnswers: opts.keepAnswers === true,
    },
    'best-of-n',
  );
  const rule = rules[0] as (typeof rules)[number];
  await startCompute(ctx);
  const prompts = await loadPrompts(opts.prompts, opts.split, opts.limit);
  const progress = progressLine('best-of-n');
  const result = await runBestOfN(
    {
      mode: 'online',
      reward: opts.reward,
      architectures,
      policy: opts.policy as string,
      prompts,
      rule,
      config,
      out: opts.out,
    },
    progress,
  );
  progress.done(
    `best-of-${result.n} over ${result.prompts} prompts with ${rule.label}: mean best aggregate ${result.meanBest.toFixed(4)} vs mean sample ${result.meanSample.toFixed(4)} → ${opts.out}`,
  );
}

export function registerBestOfN(program: Command): void {
  program
    .command('best-of-n')
    .description(
      'choose the best of n answers with a reward ensemble: sample online, or estimate win rates offline',
    )
    .addOption(
      new Option('--reward <dir>', 'reward-model folder written by `quorum train-rm`').makeOptionMandatory(),
    )
    .option(
      '--policy <dir>',
      'ONLINE: policy to sample from: a folder written by `quorum sft` or `quorum ppo`, or hf:DIR (a Hugging Face model folder)',
    )
    .option(
      '--prompts <file|alpaca-eval>',
      'ONLINE: prompts, a JSONL of {instruction, input?} or alpaca-eval',
      ALPACA_EVAL,
    )
    .option(
      '--pool <alpaca-eval|file>',
      'OFFLINE: candidate answers, alpaca-eval (51 judged answers per instruction) or a JSONL of {instruction, input?, output, gold?, reference?}',
    )
    .addOption(
      new Option('--split <split>', 'which alpaca-eval instructions')
        .choices(['eval', 'train'])
        .default('eval'),
    )
    .addOption(new Option('--limit <n>', 'only the first n prompts / pools').argParser(positiveInt))
    .addOption(
      new Option(
        '--n <list>',
        'online: one n (default: 16); offline: the curve’s n values (default: 1,2,4,8,16,32)',
      ).argParser(intList),
    )
    .addOption(aggOption(true))
    .addOption(aggOptOption())
    .addOption(betaOption())
    .addOption(lambdaOption())
    .addOption(
      new Option('--max-new-tokens <n>', 'ONLINE: answer length limit in tokens')
        .default(64)
        .argParser(positiveInt),
    )
    .addOption(
      new Option('--temperature <t>', 'ONLINE: sampling temperature (paper Table 5: 1.0)')
        .default(1)
        .argParser(finiteNumber),
    )
    .addOption(
      new Option('--top-p <p>', 'ONLINE: nucleus sampling mass (paper Table 5: 0.9)')
        .default(0.9)
        .argParser(finiteNumber),
    )
    .addOption(
      new Option('--top-k <k>', 'ONLINE: keep the k most likely tokens (0 = off)')
        .default(0)
        .argParser(nonNegativeInt),
    )
    .addOption(
      new Option('--chunk <n>', 'ONLINE: samples generated and scored at a time (bounds memory)')
        .default(16)
        .argParser(positiveInt),
    )
    .addOption(new Option('--keep-answers', 'ONLINE: also write every sampled answer (not only the best)'))
    .addOption(seedOption('ONLINE: sampling seed'))
    .addOption(
      new Option('--batch-size <n>', 'OFFLINE: answers per reward forward pass')
        .default(32)
        .argParser(positiveInt),
    )
    .addOption(outOption('online: a .jsonl, one row per prompt; offline: a .json report', 'file'))
    .addOption(overwriteOption('replace a non-empty --out'))
    .addHelpText(
      'after',
      `
Two modes:
  online  (--policy)  For each prompt, sample n answers from the policy (temperature 1.0, top-p 0.9: the
                      paper's Table 5), score them with every ensemble member, aggregate with --agg and keep
                      the highest. n = 200 runs in chunks of --chunk samples, so memory does not grow with n.
                      Each output row: prompt, best {index, answer, aggregate, mean, std, members}, and
                      scores {aggregate, mean, std, members} of all n samples.
  offline (--pool)    Score every pre-generated answer once, then estimate Best-of-n for every n from the one
                      pool: the expected gold value of the top-scored answer among n drawn without replacement
                      (the unbiased estimator of Nakano et al. / Coste et al.; ties in score broken uniformly at
                      random). Exact over all draws, no Monte-Carlo noise; n ≤ the pool size (48–51 for alpaca-eval).

What the offline numbers mean:
  win rate   % of prompts where the chosen answer beats the reference (text-davinci-003) by GPT-4's verdict
             (win 1, draw ½, loss 0), averaged over prompts; ± is the standard error over prompts.
  random     a random answer (n = 1): what any reward model gives at n = 1.
  longest    the longest of n answers (length in characters as the score). A reward model that does not
             beat this has mostly learnt length. On alpaca-eval's eval split: 77.3 at n = 1, peaking at
             87.0 at n = 4, 79.6 at n = 32.
  LC         the length-controlled win rate (AlpacaEval 2), printed under each raw row: a logistic fit of the
             verdicts on tanh(Δlength / sd) (Δlength = characters of the pick minus the reference, each
             candidate weighted by how often Best-of-n keeps it), read at Δlength = 0; ± by the delta method,
             clustered by prompt. Needs each pool's reference answer (alpaca-eval has it; a pool file gives
             "reference"). A raw gain that vanishes under LC is a gain in length, not quality.
  reward–length correlation
             Pearson / Spearman of the rule's aggregate reward with the picked answers' length (weighted the
             same way): near 1 means the reward model mostly ranks by length.
  Compare rules at large n: there mean can over-optimise the reward model, which lcb is meant to resist.

Examples:
  $ quorum best-of-n --pool alpaca-eval --reward runs/rm-lora --n 1,2,4,8,16,32 --agg mean,lcb --beta 0.5 --out bon.json
  $ quorum best-of-n --pool answers.jsonl --reward runs/rm --agg mean,uwo,min --lambda 0.2 --out bon.json
  $ quorum best-of-n --pool alpaca-eval --reward runs/rm --agg lcb,uwo --agg-opt lcb.std=sample --out bon.json
  $ quorum best-of-n --policy runs/sft-nano --reward runs/rm-lora --n 16 --agg lcb --beta 0.5 \\
      --prompts alpaca-eval --limit 20 --out best.jsonl
  $ quorum best-of-n --policy runs/sft-nano --reward runs/rm --n 200 --prompts prompts.jsonl --out best.jsonl`,
    )
    .action(async (opts: BestOfNCliOptions, cmd: Command) => {
      await bestOfNCommand(cmd.optsWithGlobals<GlobalOptions>(), opts);
    });
}
