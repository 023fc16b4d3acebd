/** `quorum ppo`: PPO of a policy against a frozen reward ensemble aggregated by any rule. */
import { resolvePpoConfig } from '@quorum/ppo';
import { ALPACA_EVAL, loadPrompts, runPpo } from '@quorum/runs';
import { type Command, Option } from 'commander';
import { collect, finiteNumber, nonNegativeInt, positiveInt } from '../args.js';
import {
  architectureRegistry,
  createContext,
  type GlobalOptions,
  ruleRegistry,
  startCompute,
} from '../context.js';
import { parseKeyValues } from '../key-values.js';
import {
  aggOption,
  aggOptOption,
  betaOption,
  forceResumeOption,
  lambdaOption,
  outOption,
  overwriteOption,
  resumeOption,
  ruleFromFlags,
} from '../options.js';
import { prepareOutDir } from '../out-dir.js';
import { progressLine } from '../progress.js';
import { interruptSignal } from '../signals.js';

export interface PpoCommandOptions {
  policy: string;
  reward: string;
  agg: string;
  aggOpt?: string[];
  beta?: number;
  lambda?: number;
  steps?: number;
  out: string;
  resume?: boolean;
  forceResume?: boolean;
  overwrite?: boolean;
  prompts: string;
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

/** What `--force-resume` says ppo compares. */
export const PPO_COMPARED =
  '--seed, --steps, --lr, --rollout-batch, --step-batch, --epochs, --max-new-tokens, the KL options and every --ppo-opt but checkpointEvery, --policy, --reward, --agg with its options, and the number of prompts.';

/** Flags → resolved options (every option and the rule checked) → runPpo. */
async function ppoCommand(globals: GlobalOptions, opts: PpoCommandOptions): Promise<void> {
  const ctx = await createContext(globals);
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
  const { rule, label } = ruleFromFlags(ruleRegistry(ctx), opts);
  const { resume } = prepareOutDir(opts.out, { ...opts, resume: opts.resume ?? opts.forceResume });
  await startCompute(ctx);
  const prompts = await loadPrompts(opts.prompts, 'train');
  const progress = progressLine('ppo step', { everyUpdate: true });
  const summary = await runPpo(
    {
      policy: opts.policy,
      reward: opts.reward,
      architectures: architectureRegistry(ctx),
      rule,
      ruleLabel: label,
      prompts,
      ppo,
      out: opts.out,
      resume,
      forceResume: opts.forceResume,
      signal: interruptSignal(),
    },
    progress,
  );
  progress.done(
    summary.aborted
      ? `ppo: stopped at step ${summary.steps}; continue with --resume`
      : `ppo: ${summary.steps} steps done; policy written to ${opts.out} (metrics in ${opts.out}/metrics.jsonl)`,
  );
}

export function registerPpo(program: Command): void {
  program
    .command('ppo')
    .description(
      'fine-tune a policy with PPO against a frozen reward ensemble (reward = the rule’s aggregate, e.g. lcb)',
    )
    .requiredOption(
      '--policy <dir>',
      'the SFT policy to start from (also the frozen KL reference): a folder from `quorum sft`, or hf:DIR (a Hugging Face model folder)',
    )
    .requiredOption('--reward <dir>', 'the reward ensemble (from `quorum train-rm`), loaded once and frozen')
    .addOption(aggOption())
    .addOption(aggOptOption())
    .addOption(betaOption())
    .addOption(lambdaOption())
    .addOption(
      new Option('--steps <n>', 'PPO steps, each one rollout batch (default: 100)').argParser(positiveInt),
    )
    .addOption(outOption('run folder: metrics.jsonl, train-state/ (checkpoints), then the final policy'))
    .addOption(resumeOption())
    .addOption(forceResumeOption(PPO_COMPARED))
    .addOption(overwriteOption())
    .option(
      '--prompts <file|alpaca-eval>',
      'JSONL of {"instruction", "input"?}, or alpaca-eval: the shipped AlpacaEval train-split instructions',
      ALPACA_EVAL,
    )
    .addOption(
      new Option('--kl-coef <b>', 'KL penalty per token against the reference (default: 0.02)').argParser(
        finiteNumber,
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
        'learning rate (default: 1e-5, the paper’s; a nano model needs ~1e-4)',
      ).argParser(finiteNumber),
    )
    .addOption(new Option('--rollout-batch <n>', 'answers per step (default: 64)').argParser(positiveInt))
    .addOption(new Option('--step-batch <n>', 'sequences per update (default: 32)').argParser(positiveInt))
    .addOption(new Option('--epochs <n>', 'PPO epochs per rollout batch (default: 2)').argParser(positiveInt))
    .addOption(new Option('--max-new-tokens <n>', 'answer length cap (default: 64)').argParser(positiveInt))
    .addOption(
      new Option('--seed <n>', 'seed of prompts, sampling and minibatches (default: 0)').argParser(
        nonNegativeInt,
      ),
    )
    .addOption(
      new Option(
        '--ppo-opt <key=value>',
        'any other PPO option (repeatable), e.g. --ppo-opt whitenRewards=true --ppo-opt missingEosPenalty=1',
      ).argParser(collect),
    )
    .addHelpText(
      'after',
      `
Each step samples --rollout-batch prompts, answers them (temperature 0.7, the paper's Table 6, from the
whole distribution: top-p 1, as TRL, since the KL and the ratio are those of the untruncated softmax),
scores the decoded answers with the reward ensemble's own tokenizer, and aggregates the k member rewards
with --agg. The sequence reward goes on the last token; every token also pays --kl-coef × KL to the
reference (the --policy as loaded). GAE (γ = 1, λ = 0.95), clipped policy and value losses, AdamW.
Defaults follow the paper's Table 4 (rollout 64, step batch 32, lr 1e-5, 2 epochs, value coef 0.1,
5 warmup steps). A nano policy wants --lr 1e-4 but keeps the paper's rollout of 64: with 16 answers per
step the reward's noise drives the KL to 20-30 nats while the reward stays flat (measured). Log-probs
and the KL are those of the sampling distribution (logits / temperature), as in TRL. The step line's
KL is the mean over answers of the sum over answer tokens of the --kl-estimator estimate (what the
penalty uses; k1 can be below 0 for a batch); metrics.jsonl also holds klK1, klK3 and klFull (the
full-distribution KL at each answer position, never negative).

Progress: one line per step on stderr (step, reward, KL, ...; QUORUM_QUIET=1 silences it); metrics.jsonl
in --out. Ctrl-C stops after the current step and saves a checkpoint; --resume continues exactly where it
stopped (a second Ctrl-C quits at once).
Other options for --ppo-opt: gamma, lam, clipRange, clipRangeValue, vfCoef, whitenAdvantages,
klTarget, klHorizon, whitenRewards, missingEosPenalty, temperature, topP, warmupSteps, checkpointEvery.

Examples:
  $ quorum ppo --policy runs/sft --reward runs/rm --agg mean --steps 100 --out runs/ppo-mean
  $ quorum ppo --policy runs/sft --reward runs/rm --agg lcb --beta 0.5 --steps 100 --out runs/ppo-lcb \\
      --lr 1e-4 --rollout-batch 64 --step-batch 32 --max-new-tokens 32
  $ quorum ppo --policy runs/sft --reward runs/rm --agg mean --steps 200 --out runs/ppo-mean --resume`,
    )
    .action(async (opts: PpoCommandOptions, cmd: Command) => {
      await ppoCommand(cmd.optsWithGlobals<GlobalOptions>(), opts);
    });
}
