/** `quorum ppo`: PPO of a policy against a frozen reward ensemble aggregated by any rule. */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { disposeGpt } from '@quorum/backbone';
import { ConfigError, DataError } from '@quorum/core';
import { alpacaEval, type Prompt, readJsonl } from '@quorum/data';
import { type PpoStepLog, PpoTrainer, resolvePpoConfig } from '@quorum/ppo';
import { type Command, Option } from 'commander';
import { createContext, type GlobalOptions, startCompute } from '../context.js';
import { aggregationFromArgs, loadPolicyWithTokenizer, loadRewardModel, parseKeyValues } from '../load.js';

export interface PpoCommandOptions {
  policy: string;
  reward: string;
  agg: string;
  aggOpt?: string[];
  beta?: number;
  steps?: number;
  out: string;
  resume?: boolean;
  overwrite?: boolean;
  prompts?: string;
  klCoef?: number;
  klControl?: 'fixed' | 'adaptive';
  klEstimator?: 'k1' | 'k3';
  lr?: number;
  rolloutBatch?: number;
  stepBatch?: number;
  epochs?: number;
  maxNewTokens?: number;
  seed?: number;
  ppoOpt?: string[];
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

function number(flag: string, integer: boolean): (raw: string) => number {
  return (raw) => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
      throw new ConfigError(`expects ${integer ? 'an integer' : 'a number'}, got "${raw}"`, {
        location: { field: flag },
        hint: `e.g. ${flag} ${integer ? '100' : '0.02'}`,
      });
    }
    return n;
  };
}

/** A non-empty --out needs --resume or --overwrite; --overwrite clears the previous run's state. */
export function prepareOutDir(out: string, options: { resume?: boolean; overwrite?: boolean }): void {
  const used = existsSync(out) && readdirSync(out).length > 0;
  if (used && options.resume !== true && options.overwrite !== true) {
    throw new ConfigError(`--out ${out} is not empty`, {
      location: { field: '--out' },
      hint: 'pass --resume to continue its run, --overwrite to start over, or choose an empty folder',
    });
  }
  if (used && options.overwrite === true && options.resume !== true) {
    for (const name of ['train-state', 'metrics.jsonl', 'quorum.json'])
      rmSync(path.join(out, name), { recursive: true, force: true });
  }
}

/** Prompts from a JSONL of {instruction, input?}. */
export async function readPrompts(file: string): Promise<Prompt[]> {
  const out: Prompt[] = [];
  for await (const { value, line } of readJsonl(file)) {
    const row = value as { instruction?: unknown; input?: unknown };
    if (
      typeof row !== 'object' ||
      row === null ||
      typeof row.instruction !== 'string' ||
      (row.input !== undefined && typeof row.input !== 'string')
    ) {
      throw new DataError('expected {"instruction": string, "input"?: string}', {
        location: { file, line },
        hint: 'write one JSON object per line, e.g. {"instruction": "Name a colour."}',
      });
    }
    out.push({ instruction: row.instruction, input: (row.input as string | undefined) ?? '' });
  }
  if (out.length === 0)
    throw new DataError('the prompt file is empty', {
      location: { file },
      hint: 'add at least one {"instruction": …} line',
    });
  return out;
}

/** The line printed on stderr after each step. */
export function progressLine(l: PpoStepLog): string {
  const members = l.memberRewards.map((r) => r.toFixed(3)).join('/');
  return `ppo step ${l.step}/${l.steps}  reward ${l.reward.toFixed(4)} (members ${members})  kl ${l.kl.toFixed(4)}  entropy ${l.entropy.toFixed(3)}  loss ${l.policyLoss.toFixed(4)}/${l.valueLoss.toFixed(4)}  clip ${l.clipFraction.toFixed(3)}  ${l.seconds.toFixed(1)}s`;
}

/** Runs the command; returns the last step's log. */
export async function runPpo(
  globals: GlobalOptions,
  opts: PpoCommandOptions,
  log: (line: string) => void = (s) => process.stderr.write(`${s}\n`),
): Promise<PpoStepLog | undefined> {
  prepareOutDir(opts.out, opts);
  const ctx = await createContext(globals);
  await startCompute(ctx);
  const ppo = resolvePpoConfig(
    {
      ...parseKeyValues(opts.ppoOpt, '--ppo-opt'),
      ...(opts.steps === undefined ? {} : { steps: opts.steps }),
      ...(opts.klCoef === undefined ? {} : { klCoef: opts.klCoef }),
      ...(opts.klControl === undefined ? {} : { klControl: opts.klControl }),
      ...(opts.klEstimator === undefined ? {} : { klEstimator: opts.klEstimator }),
      ...(opts.lr === undefined ? {} : { lr: opts.lr }),
      ...(opts.rolloutBatch === undefined ? {} : { rolloutBatch: opts.rolloutBatch }),
      ...(opts.stepBatch === undefined ? {} : { stepBatch: opts.stepBatch }),
      ...(opts.epochs === undefined ? {} : { ppoEpochs: opts.epochs }),
      ...(opts.maxNewTokens === undefined ? {} : { maxNewTokens: opts.maxNewTokens }),
      ...(opts.seed === undefined ? {} : { seed: opts.seed }),
    },
    'ppo',
  );
  const rule = aggregationFromArgs(ctx, opts.agg, {
    ...parseKeyValues(opts.aggOpt, '--agg-opt'),
    ...(opts.beta === undefined ? {} : { beta: opts.beta }),
  });
  const prompts =
    opts.prompts === undefined
      ? await alpacaEval().then((data) => data.split('train').map((i) => data.prompt(i.id)))
      : await readPrompts(opts.prompts);
  const policy = await loadPolicyWithTokenizer(opts.policy);
  const reward = await loadRewardModel(ctx, opts.reward);
  const controller = new AbortController();
  const onSigint = (): void => {
    log('ppo: stopping after this step (a checkpoint is saved; continue with --resume)');
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  const trainer = new PpoTrainer({
    policy: { config: policy.config, params: policy.params, tokenizer: policy.tokenizer },
    reward: { ensemble: reward.ensemble, tokenizer: reward.tokenizer, rule },
    prompts,
    ppo,
    outDir: opts.out,
    signal: controller.signal,
    onProgress: (l) => log(progressLine(l)),
  });
  try {
    if (opts.resume === true) {
      const step = await trainer.resume();
      log(
        step === undefined
          ? `ppo: no checkpoint in ${opts.out}/train-state; starting at step 0`
          : `ppo: resuming at step ${step}`,
      );
    }
    const summary = await trainer.train();
    log(
      summary.aborted
        ? `ppo: stopped at step ${summary.steps}; continue with --resume`
        : `ppo: ${summary.steps} steps done; policy written to ${opts.out} (metrics in ${opts.out}/metrics.jsonl)`,
    );
    return summary.last;
  } finally {
    process.removeListener('SIGINT', onSigint);
    trainer.dispose();
    reward.ensemble.dispose();
    disposeGpt(policy.params);
  }
}

export function registerPpo(program: Command): void {
  program
    .command('ppo')
    .description(
      'fine-tune a policy with PPO against a frozen reward ensemble (reward = the rule’s aggregate, e.g. lcb)',
    )
    .requiredOption(
      '--policy <dir>',
      'the SFT policy to start from (also the frozen KL reference), e.g. from `quorum sft`',
    )
    .requiredOption('--reward <dir>', 'the reward ensemble (from `quorum train-rm`), loaded once and frozen')
    .option(
      '--agg <rule>',
      'aggregation rule for the k rewards: mean, lcb, min, uwo, median, or a plugin’s',
      'mean',
    )
    .option('--agg-opt <key=value>', 'an option of the rule (repeatable), e.g. --agg-opt std=sample', collect)
    .addOption(
      new Option('--beta <b>', 'lcb’s β (reward = mean − β·std); same as --agg-opt beta=B').argParser(
        number('--beta', false),
      ),
    )
    .addOption(
      new Option('--steps <n>', 'PPO steps, each one rollout batch (default 100)').argParser(
        number('--steps', true),
      ),
    )
    .requiredOption(
      '--out <dir>',
      'run folder: metrics.jsonl, train-state/ (checkpoints), then the final policy',
    )
    .option('--resume', 'continue the run in --out from its newest checkpoint')
    .option('--overwrite', 'start over in a non-empty --out (its train-state/ and metrics.jsonl are removed)')
    .option(
      '--prompts <file>',
      'JSONL of {"instruction", "input"?} (default: the shipped AlpacaEval train-split instructions)',
    )
    .addOption(
      new Option('--kl-coef <b>', 'KL penalty per token against the reference (default 0.02)').argParser(
        number('--kl-coef', false),
      ),
    )
    .addOption(
      new Option(
        '--kl-control <kind>',
        'fixed, or adaptive (Ziegler et al.; target via --ppo-opt klTarget=6)',
      ).choices(['fixed', 'adaptive']),
    )
    .addOption(
      new Option('--kl-estimator <k>', 'per-token KL: k1 = log p − log q, k3 = (r − 1) − log r').choices([
        'k1',
        'k3',
      ]),
    )
    .addOption(
      new Option(
        '--lr <lr>',
        'learning rate (default 1e-5, the paper’s; a nano model needs ~1e-4)',
      ).argParser(number('--lr', false)),
    )
    .addOption(
      new Option('--rollout-batch <n>', 'answers per step (default 64)').argParser(
        number('--rollout-batch', true),
      ),
    )
    .addOption(
      new Option('--step-batch <n>', 'sequences per update (default 32)').argParser(
        number('--step-batch', true),
      ),
    )
    .addOption(
      new Option('--epochs <n>', 'PPO epochs per rollout batch (default 2)').argParser(
        number('--epochs', true),
      ),
    )
    .addOption(
      new Option('--max-new-tokens <n>', 'answer length cap (default 64)').argParser(
        number('--max-new-tokens', true),
      ),
    )
    .addOption(
      new Option('--seed <n>', 'seed of prompts, sampling and minibatches (default 0)').argParser(
        number('--seed', true),
      ),
    )
    .option(
      '--ppo-opt <key=value>',
      'any other PPO option (repeatable), e.g. --ppo-opt whitenRewards=true --ppo-opt missingEosPenalty=1',
      collect,
    )
    .addHelpText(
      'after',
      `
Each step samples --rollout-batch prompts, answers them (temperature 0.7, top-p 0.9: the paper's Table 6),
scores the decoded answers with the reward ensemble's own tokenizer, and aggregates the k member rewards
with --agg. The sequence reward goes on the last token; every token also pays --kl-coef × KL to the
reference (the --policy as loaded). GAE (γ = 1, λ = 0.95), clipped policy and value losses, AdamW.
Defaults follow the paper's Table 4 (rollout 64, step batch 32, lr 1e-5, 2 epochs, value coef 0.1,
5 warmup steps). A nano policy wants --lr 1e-4 but keeps the paper's rollout of 64: with 16 answers per
step the reward's noise drives the KL to 20-30 nats while the reward stays flat (measured). Log-probs
and the KL are those of the sampling distribution (logits / temperature), as in TRL.

Progress: one line per step on stderr (step, reward, KL, ...); metrics.jsonl in --out. Ctrl-C stops after
the current step and saves a checkpoint; --resume continues exactly where it stopped.
Other options for --ppo-opt: gamma, lam, clipRange, clipRangeValue, vfCoef, whitenAdvantages,
klTarget, klHorizon, whitenRewards, missingEosPenalty, temperature, topP, warmupSteps, checkpointEvery.

Examples:
  $ quorum ppo --policy runs/sft --reward runs/rm --agg mean --steps 100 --out runs/ppo-mean
  $ quorum ppo --policy runs/sft --reward runs/rm --agg lcb --beta 0.5 --steps 100 --out runs/ppo-lcb \\
      --lr 1e-4 --rollout-batch 64 --step-batch 32 --max-new-tokens 32
  $ quorum ppo --policy runs/sft --reward runs/rm --agg mean --steps 200 --out runs/ppo-mean --resume`,
    )
    .action(async (opts: PpoCommandOptions, cmd: Command) => {
      await runPpo(cmd.optsWithGlobals<GlobalOptions>(), opts);
    });
}
