/**
 * `quorum best-of-n`: choose the best answer with a reward ensemble + aggregation rule.
 *   online  (--policy): sample n answers per prompt, keep the highest aggregate; one JSONL row per prompt.
 *   offline (--pool):   choose among pre-generated answers (the shipped AlpacaEval pools or a file) and
 *                       estimate the gold win rate of Best-of-n for every n from one pool (unbiased estimator),
 *                       with the random and longest-answer baselines; a JSON report and a table.
 */
import { once } from 'node:events';
import { createWriteStream, existsSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { AggregationRule } from '@quorum/aggregation';
import { disposeGpt } from '@quorum/backbone';
import {
  bestOfNStream,
  type CurvePoint,
  evaluateOffline,
  type LabelledRule,
  type Pool,
  poolsFromAlpacaEval,
  readPoolFile,
  readPromptFile,
  scorePools,
  selectFromPool,
} from '@quorum/best-of-n';
import { ConfigError, requireRegistry } from '@quorum/core';
import { datasets, type Prompt } from '@quorum/data';
import { type Command, Option } from 'commander';
import { z } from 'zod';
import { collect, finiteNumber, intList, list, nonNegativeInt, positiveInt } from '../args.js';
import { type CliContext, createContext, type GlobalOptions, startCompute } from '../context.js';
import { aggregationFromArgs, loadPolicyWithTokenizer, loadRewardModel, parseKeyValues } from '../load.js';
import { progressLine } from '../progress.js';

/** The shipped dataset's name for --pool and --prompts. */
export const ALPACA_EVAL = 'alpaca-eval';

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

/** Rules named by --agg, each given the --agg-opt / --beta / --lambda options its schema accepts. */
export function rulesFromArgs(
  ctx: CliContext,
  names: readonly string[],
  options: Record<string, unknown>,
): LabelledRule[] {
  if (names.length === 0)
    throw new ConfigError('no rule given', { location: { field: '--agg' }, hint: 'e.g. --agg mean,lcb' });
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) {
    throw new ConfigError(`rule "${twice}" is named twice`, {
      location: { field: '--agg' },
      hint: 'name each rule once; compare option values (e.g. two β) in separate runs',
    });
  }
  const registry = requireRegistry(ctx.registries, AggregationRule);
  const accepts = (name: string, key: string): boolean => {
    const schema = registry.get(name).options;
    return schema instanceof z.ZodObject && key in schema.shape;
  };
  if (names.length > 1) {
    for (const key of Object.keys(options)) {
      if (!names.some((n) => accepts(n, key))) {
        throw new ConfigError(`no rule of ${names.join(', ')} takes option "${key}"`, {
          location: { field: '--agg-opt' },
          hint: 'see the options of each rule with `quorum info`',
        });
      }
    }
  }
  return names.map((name) => {
    const own =
      names.length === 1
        ? options
        : Object.fromEntries(Object.entries(options).filter(([k]) => accepts(name, k)));
    const shown = Object.entries(own).map(([k, v]) => `${k}=${String(v)}`);
    return {
      label: shown.length === 0 ? name : `${name}(${shown.join(',')})`,
      rule: aggregationFromArgs(ctx, name, own),
    };
  });
}

function checkOut(file: string, overwrite: boolean | undefined): void {
  if (overwrite !== true && existsSync(file) && statSync(file).size > 0) {
    throw new ConfigError(`${file} exists and is not empty`, {
      location: { field: '--out' },
      hint: 'pass --overwrite to replace it, or choose another --out',
    });
  }
}

async function loadPools(
  source: string,
  split: 'eval' | 'train',
  limit: number | undefined,
): Promise<Pool[]> {
  const pools =
    source === ALPACA_EVAL
      ? poolsFromAlpacaEval((await datasets.alpacaEval()).candidatePools(split))
      : await readPoolFile(source);
  return limit === undefined ? pools : pools.slice(0, limit);
}

async function loadPrompts(
  source: string,
  split: 'eval' | 'train',
  limit: number | undefined,
): Promise<Prompt[]> {
  let prompts: Prompt[];
  if (source === ALPACA_EVAL) {
    const data = await datasets.alpacaEval();
    prompts = data.split(split).map((i) => data.prompt(i.id));
  } else prompts = await readPromptFile(source);
  return limit === undefined ? prompts : prompts.slice(0, limit);
}

const cell = (p: CurvePoint | undefined): string =>
  p === undefined ? '' : `${p.winRate.toFixed(1)} ± ${p.stderr.toFixed(1)}`;

/** The table printed after an offline run: win rate ± stderr per (rule, n), then the baselines. */
export function renderOfflineTable(report: ReturnType<typeof evaluateOffline>): string {
  const width = Math.max(16, ...report.rules.map((r) => r.label.length + 2));
  const head = ['rule'.padEnd(width), ...report.ns.map((n) => `n=${n}`.padEnd(13))].join('');
  const row = (label: string, points: readonly (CurvePoint | undefined)[]): string =>
    [label.padEnd(width), ...points.map((p) => cell(p).padEnd(13))].join('').trimEnd();
  return [
    `gold win rate against the reference answer (%, mean over ${report.prompts} prompts ± standard error)`,
    head.trimEnd(),
    ...report.rules.map((r) => row(r.label, r.curve)),
    row('random', [report.baselines.random]),
    row('longest', report.baselines.longest),
  ].join('\n');
}

async function runOffline(
  ctx: CliContext,
  opts: BestOfNCliOptions,
  pool: string,
  rules: LabelledRule[],
): Promise<void> {
  const ns = opts.n ?? [1, 2, 4, 8, 16, 32];
  const pools = await loadPools(pool, opts.split, opts.limit);
  const { ensemble, tokenizer } = await loadRewardModel(ctx, opts.reward);
  const progress = progressLine('best-of-n (scoring)');
  let scored: ReturnType<typeof scorePools>;
  try {
    scored = scorePools(ensemble, tokenizer, pools, {
      batchSize: opts.batchSize,
      onProgress: (p) => progress.update(p.rows, p.totalRows, `${p.pools}/${p.totalPools} prompts`),
    });
  } finally {
    ensemble.dispose();
  }
  progress.done(
    `scored ${scored.reduce((n, p) => n + p.candidates.length, 0)} answers to ${scored.length} prompts`,
  );
  const source = pool === ALPACA_EVAL ? `${ALPACA_EVAL}:${opts.split}` : pool;
  const header = {
    kind: 'quorum-best-of-n-offline',
    pool: source,
    reward: { dir: opts.reward, architecture: ensemble.architecture, members: ensemble.members },
    rules: rules.map((r) => ({ label: r.label, rule: r.rule.name })),
  };
  const hasGold = scored.every((p) => p.candidates.every((c) => c.gold !== undefined));
  if (!hasGold) {
    // Selection only: no verdicts, so no win rate.
    const perPrompt = scored.map((p) => ({
      id: p.id,
      instruction: p.prompt.instruction,
      input: p.prompt.input,
      candidates: p.candidates.length,
      best: Object.fromEntries(
        rules.map(({ label, rule }) => {
          const { aggregates: _, ...choice } = selectFromPool(p, rule);
          return [label, { ...choice, output: p.candidates[choice.index]?.output }];
        }),
      ),
    }));
    await writeFile(opts.out, `${JSON.stringify({ ...header, ns: [], perPrompt }, null, 2)}\n`);
    process.stdout.write(
      `${source} has no "gold" verdicts, so no win rate: wrote each rule's pick of ${scored.length} pools to ${opts.out}\n`,
    );
    return;
  }
  const report = evaluateOffline(scored, rules, ns);
  await writeFile(opts.out, `${JSON.stringify({ ...header, ...report }, null, 2)}\n`);
  process.stdout.write(`${renderOfflineTable(report)}\n(report with every prompt's numbers: ${opts.out})\n`);
}

async function runOnline(
  ctx: CliContext,
  opts: BestOfNCliOptions,
  policyDir: string,
  rules: LabelledRule[],
): Promise<void> {
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
  const n = ns[0] as number;
  const prompts = await loadPrompts(opts.prompts, opts.split, opts.limit);
  const policy = await loadPolicyWithTokenizer(policyDir);
  let reward: Awaited<ReturnType<typeof loadRewardModel>> | undefined;
  const out = createWriteStream(opts.out);
  const progress = progressLine('best-of-n');
  let sumBest = 0;
  let sumAll = 0;
  try {
    reward = await loadRewardModel(ctx, opts.reward);
    const stream = bestOfNStream(
      policy,
      { ensemble: reward.ensemble, tokenizer: reward.tokenizer, rule: (rules[0] as LabelledRule).rule },
      prompts,
      {
        n,
        maxNewTokens: opts.maxNewTokens,
        temperature: opts.temperature,
        topP: opts.topP,
        topK: opts.topK,
        chunkSize: opts.chunk,
        seed: opts.seed,
        keepAnswers: opts.keepAnswers === true,
      },
      {
        onChunk: (p) =>
          progress.update(
            p.promptIndex * p.n + p.done,
            p.prompts * p.n,
            `prompt ${p.promptIndex + 1}/${p.prompts}`,
          ),
      },
    );
    for (const result of stream) {
      sumBest += result.best.aggregate;
      sumAll += result.scores.aggregate.reduce((a, b) => a + b, 0) / result.n;
      if (!out.write(`${JSON.stringify({ ...result, label: (rules[0] as LabelledRule).label })}\n`))
        await once(out, 'drain');
    }
  } finally {
    out.end();
    await once(out, 'close');
    reward?.ensemble.dispose();
    disposeGpt(policy.params);
  }
  const P = Math.max(prompts.length, 1);
  progress.done(
    `best-of-${n} over ${prompts.length} prompts with ${(rules[0] as LabelledRule).label}: mean best aggregate ${(sumBest / P).toFixed(4)} vs mean sample ${(sumAll / P).toFixed(4)} → ${opts.out}`,
  );
}

export function registerBestOfN(program: Command): void {
  program
    .command('best-of-n')
    .description(
      'choose the best of n answers with a reward ensemble: sample online, or estimate win rates offline',
    )
    .requiredOption('--reward <dir>', 'reward-model folder written by `quorum train-rm`')
    .option(
      '--policy <dir>',
      'ONLINE: policy folder to sample from (written by `quorum sft` or `quorum ppo`)',
    )
    .option(
      '--prompts <file|alpaca-eval>',
      'ONLINE: prompts, a JSONL of {instruction, input?} or alpaca-eval',
      ALPACA_EVAL,
    )
    .option(
      '--pool <alpaca-eval|file>',
      'OFFLINE: candidate answers, alpaca-eval (51 judged answers per instruction) or a JSONL of {instruction, input?, output, gold?}',
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
        'online: one n (default 16); offline: the curve’s n values (default 1,2,4,8,16,32)',
      ).argParser(intList),
    )
    .addOption(
      new Option(
        '--agg <rules>',
        'aggregation rule(s), comma-separated offline: mean, lcb, min, uwo, median, …',
      )
        .default(['mean'], 'mean')
        .argParser(list),
    )
    .addOption(
      new Option(
        '--agg-opt <key=value>',
        'an option of the rule(s) (repeatable), e.g. --agg-opt beta=0.5',
      ).argParser(collect),
    )
    .addOption(
      new Option('--beta <number>', 'shorthand for --agg-opt beta=… (lcb: mean − β·std)').argParser(
        finiteNumber,
      ),
    )
    .addOption(
      new Option('--lambda <number>', 'shorthand for --agg-opt lambda=… (uwo: mean − λ·variance)').argParser(
        finiteNumber,
      ),
    )
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
    .addOption(new Option('--seed <n>', 'ONLINE: sampling seed').default(0).argParser(nonNegativeInt))
    .addOption(
      new Option('--batch-size <n>', 'OFFLINE: answers per reward forward pass')
        .default(32)
        .argParser(positiveInt),
    )
    .requiredOption('--out <file>', 'online: a .jsonl, one row per prompt; offline: a .json report')
    .option('--overwrite', 'replace a non-empty --out')
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
  Compare rules at large n: there mean can over-optimise the reward model, which lcb is meant to resist.

Examples:
  $ quorum best-of-n --pool alpaca-eval --reward runs/rm-lora --n 1,2,4,8,16,32 --agg mean,lcb --beta 0.5 --out bon.json
  $ quorum best-of-n --pool answers.jsonl --reward runs/rm --agg mean,uwo,min --lambda 0.2 --out bon.json
  $ quorum best-of-n --policy runs/sft-nano --reward runs/rm-lora --n 16 --agg lcb --beta 0.5 \\
      --prompts alpaca-eval --limit 20 --out best.jsonl
  $ quorum best-of-n --policy runs/sft-nano --reward runs/rm --n 200 --prompts prompts.jsonl --out best.jsonl`,
    )
    .action(async (opts: BestOfNCliOptions, cmd: Command) => {
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
      checkOut(opts.out, opts.overwrite);
      const ctx = await createContext(cmd.optsWithGlobals<GlobalOptions>());
      await startCompute(ctx);
      const aggOptions = parseKeyValues(opts.aggOpt, '--agg-opt');
      if (opts.beta !== undefined) aggOptions.beta = opts.beta;
      if (opts.lambda !== undefined) aggOptions.lambda = opts.lambda;
      const rules = rulesFromArgs(ctx, opts.agg, aggOptions);
      if (opts.pool !== undefined) await runOffline(ctx, opts, opts.pool, rules);
      else await runOnline(ctx, opts, opts.policy as string, rules);
    });
}
