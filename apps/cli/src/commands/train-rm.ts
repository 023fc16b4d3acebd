import { type GptPresetName, gptPresetNames } from '@quorum/backbone';
import { ConfigError } from '@quorum/core';
import type { PhaseSummary, RewardTrainConfig } from '@quorum/ensemble';
import {
  checkPolicySource,
  ensurePresetSft,
  formatMetrics,
  loadPairs,
  resolveArchitecture,
  resolvePreset,
  runRewardTraining,
} from '@quorum/runs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { collect, finiteNumber, fraction, positiveInt } from '../args.js';
import { architectureRegistry, createContext, type GlobalOptions, startCompute } from '../context.js';
import { parseKeyValues } from '../key-values.js';
import {
  forceResumeOption,
  initOption,
  maxLengthOption,
  maxLineBytesOption,
  outOption,
  overwriteOption,
  presetOption,
  resumeOption,
  seedOption,
  timeBudgetOption,
  truncationOption,
} from '../options.js';
import { prepareOutDir } from '../out-dir.js';
import { progressLine } from '../progress.js';
import { interruptSignal } from '../signals.js';

/** k when --members is not given. */
const DEFAULT_MEMBERS = 3;

interface TrainRmOptions {
  arch: string;
  archOpt?: string[];
  members?: number;
  size?: GptPresetName;
  preset: string;
  init?: string;
  maxLength?: number | 'auto';
  maxLengthQuantile?: number;
  truncation: 'left' | 'drop';
  data: string;
  format?: string;
  pairs: 'reference' | 'derived' | 'both';
  balance: 'none' | 'weights' | 'sample';
  evalData?: string;
  evalFraction?: number;
  trainPairs?: number;
  maxSteps?: number;
  lr?: number;
  checkpointEvery?: number;
  bootstrap: boolean;
  margin?: number;
  centerRewards?: number;
  objective: 'bt' | 'odin';
  odinLengthWeight?: number;
  odinOrthWeight?: number;
  diversity?: number;
  memberSubsets?: boolean;
  timeBudget?: number;
  earlyStopping?: boolean;
  evalEvery?: number;
  patience?: number;
  validationFraction?: number;
  seed: number;
  out: string;
  resume?: boolean;
  forceResume?: boolean;
  overwrite?: boolean;
  maxLineBytes?: number;
}

/** What `--force-resume` says train-rm compares. */
export const TRAIN_RM_COMPARED =
  '--seed, --lr, --max-steps, the batch size, epochs and every other training option of --preset, --arch and --arch-opt, --members, --size, --init, --data (and the number of training pairs), --max-length (auto: the length it chose, and --max-length-quantile), --truncation, --no-bootstrap, --margin, --center-rewards, --objective and its weights, --diversity, --member-subsets, --time-budget, --early-stopping and its settings, --balance; --checkpoint-every (and the log interval) may change.';

export function registerTrainRm(program: Command): void {
  program
    .command('train-rm')
    .description(
      'train a reward model or ensemble (single, independent, linear-heads, lora) with the Bradley-Terry loss',
    )
    .option(
      '--arch <name>',
      "ensemble architecture: single, independent, linear-heads, lora, or a plugin's",
      'linear-heads',
    )
    .addOption(
      new Option(
        '--arch-opt <key=value>',
        'architecture option (repeatable), e.g. --arch-opt rank=4 --arch-opt split=0.5',
      ).argParser(collect),
    )
    .addOption(
      new Option('--members <k>', `ensemble size k (default: ${DEFAULT_MEMBERS}; single: 1)`).argParser(
        positiveInt,
      ),
    )
    .addOption(
      new Option('--size <size>', "model size (default: the preset's)").choices(gptPresetNames as string[]),
    )
    .addOption(
      presetOption('default', 'run size: smoke (≈1 min), default, full; sets data sizes, steps and --size'),
    )
    .addOption(
      initOption(
        "the transformer to start from: an SFT policy folder or scratch (default: the preset's SFT policy, trained first if absent)",
      ),
    )
    .addOption(maxLengthOption({ auto: true }))
    .addOption(
      new Option(
        '--max-length-quantile <q>',
        'with --max-length auto: the share of training pairs that should fit, 0.5 to 1 (default: 0.95)',
      ).argParser(quantile),
    )
    .addOption(truncationOption())
    .option(
      '--data <alpaca-eval|file>',
      'alpaca-eval (shipped GPT-4 preferences, train split) or a JSONL preference file',
      'alpaca-eval',
    )
    .option('--format <name>', 'format of --data: alpaca-farm, trl, hh-rlhf (detected when omitted)')
    .addOption(maxLineBytesOption())
    .addOption(
      new Option(
        '--pairs <kind>',
        'alpaca-eval pairs: reference (vs text-davinci-003), derived (winner ≻ loser), both',
      )
        .choices(['reference', 'derived', 'both'])
        .default('reference'),
    )
    .addOption(
      new Option(
        '--balance <how>',
        'length-balanced training pairs: weights (up-weight pairs the shorter answer won, so each kind carries half the weight) or sample (an equal number of each); alpaca-eval or a file',
      )
        .choices(['none', 'weights', 'sample'])
        .default('none'),
    )
    .option('--eval-data <file>', 'held-out preference file (default: for a file, --eval-fraction of it)')
    .addOption(
      new Option('--eval-fraction <f>', 'fraction of --data held out when no --eval-data is given').argParser(
        fraction,
      ),
    )
    .addOption(
      new Option(
        '--train-pairs <n>',
        "use a seeded subset of n training pairs (default: the preset's)",
      ).argParser(positiveInt),
    )
    .addOption(new Option('--max-steps <n>', 'cap on optimizer steps per phase').argParser(positiveInt))
    .addOption(
      new Option(
        '--lr <lr>',
        'full fine-tuning learning rate (default: 3e-4; see the config docs)',
      ).argParser(Number.parseFloat),
    )
    .addOption(
      new Option(
        '--checkpoint-every <n>',
        "save a resumable state every n optimizer steps (default: a quarter of each phase's steps, at most 50)",
      ).argParser(positiveInt),
    )
    .option('--no-bootstrap', 'turn off per-member bootstrap weights for members that share a transformer')
    .addOption(
      new Option(
        '--margin <m>',
        'required reward margin in the BT loss: −log σ(r_c − r_r − m) (default: 0)',
      ).argParser(nonNegative),
    )
    .addOption(
      new Option(
        '--center-rewards <c>',
        "TRL's center_rewards_coefficient: adds c·mean((r_c + r_r)²), keeping rewards near 0 (default: 0, off; TRL suggests 0.01)",
      ).argParser(nonNegative),
    )
    .addOption(
      new Option(
        '--objective <name>',
        'bt (Bradley-Terry) or odin (ODIN: a length head beside each reward head, trained on their sum with a correlation and an orthogonality loss; only the quality head scores and is saved)',
      )
        .choices(['bt', 'odin'])
        .default('bt'),
    )
    .addOption(
      new Option(
        '--odin-length-weight <w>',
        'odin: weight of the correlation loss |ρ(r_q, L)| − |ρ(r_l, L)| (default: 1)',
      ).argParser(nonNegative),
    )
    .addOption(
      new Option(
        '--odin-orth-weight <w>',
        'odin: weight of the orthogonality loss |cos(w_q, w_l)| (default: 1)',
      ).argParser(nonNegative),
    )
    .addOption(
      new Option(
        '--diversity <λ>',
        'agreement penalty: adds −λ·mean over pairs of the members’ variance of σ(r_c − r_r), pushing members that train together apart (default: off; large λ costs accuracy)',
      ).argParser(nonNegative),
    )
    .option(
      '--member-subsets',
      'lora: each member trains its adapter on its own seeded 1/k of the phase-2 pairs instead of all of them',
    )
    .addOption(
      timeBudgetOption(
        "train for this long (90s, 30m, 1h): all training pairs (unless --train-pairs), as many epochs as fit, each phase's steps and cosine schedule sized to its share of the budget from the measured step time; --max-steps still caps",
      ),
    )
    .option(
      '--early-stopping',
      'hold out --validation-fraction of the training pairs, measure their BT loss every --eval-every steps, stop a phase after --patience evaluations without improvement and keep its best weights',
    )
    .addOption(
      new Option(
        '--eval-every <n>',
        'early stopping: optimizer steps between evaluations (default: 25)',
      ).argParser(positiveInt),
    )
    .addOption(
      new Option(
        '--patience <n>',
        'early stopping: evaluations without improvement before stopping (default: 4)',
      ).argParser(positiveInt),
    )
    .addOption(
      new Option(
        '--validation-fraction <f>',
        'early stopping: share of the training pairs held out (default: 0.05, at most 256 pairs)',
      ).argParser(fraction),
    )
    .addOption(seedOption())
    .addOption(outOption('reward-model folder to write'))
    .addOption(resumeOption())
    .addOption(forceResumeOption(TRAIN_RM_COMPARED))
    .addOption(overwriteOption())
    .addHelpText(
      'after',
      `
Architectures (the paper's three, plus the baseline):
  single        one transformer + one head                               M + L parameters
  independent   k full reward models, own seeds and data orders         k(M + L)
  linear-heads  one transformer, k heads trained together                M + kL
  lora          phase 1: transformer + k heads on --arch-opt split of the data (default half);
                phase 2: k LoRA adapters + heads on the rest             M + kL + kA
                options: rank (8), alpha (16), targets (all-linear: every linear layer of a block,
                q,k,v,o,fc,proj, plus gate on SwiGLU models such as Llama; or a list, e.g. targets=q,v),
                layers (all, or the top N via layers=top:N: cheaper scoring, see the bench)

A preference file is deduplicated before the held-out split (same prompt, chosen and rejected: one is
kept), pairs whose chosen and rejected answers are the same are left out, and so are training pairs also
in --eval-data; the counts are printed and recorded in quorum.json.

Training recipe (all off by default): --time-budget sizes each phase's steps and cosine schedule to its
share of the budget (by pairs) from the measured step time and stops there; --early-stopping keeps each
phase's best weights on a held-out slice of the training pairs (the saved model is the best, not the last);
--objective odin trains a length head beside each reward head and saves only the quality head; --diversity
and --member-subsets make members differ; train-rm prints how each phase ended, and the member correlation
(1 for a single model) with the metrics.

Pairs longer than --max-length are cut (--truncation left: the prompt loses its end, then each answer its
start; the answer's end and the reward token stay) or left out (drop); the counts are printed.
--max-length auto chooses the length from the training pairs: their p95 (--max-length-quantile) in tokens,
rounded up to a multiple of 8 and bounded by the model's context, printed with the share of pairs it
truncates and recorded in quorum.json. From scratch it is the model's context too (at most 1024), so the
data, not the preset's 128, decides; --resume keeps the length the run chose.

The folder gets quorum.json, *.safetensors, the tokenizer (vocab.json, or a Hugging Face model's
tokenizer.json and tokenizer_config.json), metrics.jsonl (one line per logged step),
eval.json (accuracy, ECE, member correlation, reward–length correlation on the eval split) and
train-state/ (the last two resumable states).

Examples:
  $ quorum train-rm --arch lora --members 3 --preset smoke --out runs/rm-lora
  $ quorum train-rm --arch single --members 1 --init scratch --preset smoke --out runs/rm-single
  $ quorum train-rm --arch single --members 1 --init scratch --max-length auto --out runs/rm-auto
  $ quorum train-rm --arch linear-heads --data prefs.jsonl --format trl --eval-fraction 0.1 --out runs/rm
  $ quorum train-rm --arch lora --init hf:models/SmolLM-135M --max-length 512 --truncation drop --out runs/rm-smollm
  $ quorum score --model runs/rm-lora --input answers.jsonl --out scored.jsonl --agg lcb --beta 0.5`,
    )
    .action(async (opts: TrainRmOptions, cmd: Command) => {
      // Everything is resolved and checked before any work (the preset's SFT policy included).
      const ctx = await createContext(cmd.optsWithGlobals<GlobalOptions>());
      const preset = resolvePreset(opts.preset, '--preset');
      const recipe = recipeConfig(opts, preset.rm.maxSteps);
      const architecture = resolveArchitecture(
        architectureRegistry(ctx),
        [opts.arch, parseArchOptions(opts.archOpt)],
        '--arch',
      );
      const members = membersFor(architecture.name, opts.members);
      const lengths = lengthOptions(opts, preset.contextLength);
      if (opts.init !== undefined && opts.init !== 'scratch')
        await checkPolicySource(
          opts.init,
          '--init',
          typeof opts.maxLength === 'number' ? opts.maxLength : undefined,
        );
      const { resume } = prepareOutDir(opts.out, { ...opts, resume: opts.resume ?? opts.forceResume });
      const backend = await startCompute(ctx);
      const size = opts.size ?? preset.size;
      const progress = progressLine(`train-rm ${opts.arch}`);
      const signal = interruptSignal();
      const init = opts.init ?? (await ensurePresetSft(preset, size, opts.seed, progress, signal));
      const data = await loadPairs(
        {
          data: opts.data,
          format: opts.format,
          pairs: opts.pairs,
          balance: opts.balance,
          evalData: opts.evalData,
          evalFraction: opts.evalFraction,
          // A time budget trains on every pair of the train split unless --train-pairs says otherwise.
          trainLimit:
            opts.trainPairs ??
            (opts.data === 'alpaca-eval' && opts.timeBudget === undefined ? preset.rm.trainPairs : undefined),
          evalLimit: opts.data === 'alpaca-eval' ? preset.rm.evalPairs : undefined,
          seed: opts.seed,
          maxLineBytes: opts.maxLineBytes,
        },
        progress,
      );
      progress.log(
        `train-rm: ${opts.arch} k=${members}, ${init === 'scratch' ? `${size} from scratch` : `init ${init}`}, ${data.train.length} training pairs from ${data.description}, backend ${backend.name}`,
      );
      const result = await runRewardTraining(
        {
          architecture,
          members,
          size,
          ...lengths,
          truncation: opts.truncation,
          init,
          train: data.train,
          eval: data.eval,
          dataDescription: data.description,
          config: {
            batchSize: preset.rm.batchSize,
            gradAccum: preset.rm.gradAccum,
            epochs: preset.rm.epochs,
            ...recipe,
            ...(opts.lr === undefined ? {} : { lr: opts.lr }),
            ...(opts.checkpointEvery === undefined ? {} : { checkpointEvery: opts.checkpointEvery }),
            bootstrap: opts.bootstrap,
            seed: opts.seed,
          },
          out: opts.out,
          resume,
          forceResume: opts.forceResume,
          dataCounts: data.counts,
          signal,
        },
        progress,
      );
      if (result.stoppedEarly) {
        progress.done(`stopped; continue with the same command and --resume`);
        return;
      }
      const p = result.pairs;
      progress.done(
        `trained ${opts.arch} in ${result.trainSeconds.toFixed(0)} s; ${result.params.total} parameters (${result.params.trainable} trainable)\n` +
          `${p.used} pairs of ≤ ${result.maxLength} tokens (${p.truncated} truncated, ${p.dropped} dropped, ${p.ties} ties skipped)\n` +
          formatPhases(result.phases) +
          (result.metrics === undefined ? '' : `${formatMetrics(result.metrics)}\n`) +
          `reward model in ${opts.out}`,
      );
    });
}

/** `--arch-opt rank=4 --arch-opt layers=top:1` → { rank: 4, layers: { top: 1 } }. */
export function parseArchOptions(pairs: readonly string[] | undefined): Record<string, unknown> {
  const out = parseKeyValues(pairs, '--arch-opt');
  if (typeof out.layers === 'string' && out.layers.startsWith('top:'))
    out.layers = { top: Number(out.layers.slice(4)) };
  // `all-linear` (PEFT's name, the default) stays a string; anything else is a list of modules.
  if (typeof out.targets === 'string' && out.targets !== 'all-linear')
    out.targets = out.targets.split(/[+,]/);
  return out;
}

/**
 * The length options of runRewardTraining from the flags: the context of a from-scratch model (a number
 * --max-length, else the preset's; with auto runRewardTraining sizes it from the data), --max-length as
 * given (a number or auto) and --max-length-quantile, which needs auto.
 */
export function lengthOptions(
  opts: Pick<TrainRmOptions, 'init' | 'maxLength' | 'maxLengthQuantile'>,
  presetContext: number,
): { contextLength: number; maxLength: number | 'auto' | undefined; maxLengthQuantile?: number } {
  if (opts.maxLengthQuantile !== undefined && opts.maxLength !== 'auto') {
    throw new ConfigError('--max-length-quantile needs --max-length auto', {
      location: { field: '--max-length-quantile' },
      hint: 'add --max-length auto, or drop --max-length-quantile',
    });
  }
  const given = typeof opts.maxLength === 'number' ? opts.maxLength : undefined;
  return {
    contextLength: opts.init === 'scratch' ? (given ?? presetContext) : presetContext,
    maxLength: opts.maxLength,
    ...(opts.maxLengthQuantile === undefined ? {} : { maxLengthQuantile: opts.maxLengthQuantile }),
  };
}

/** A quantile for --max-length-quantile: 0.5 to 1. */
function quantile(value: string): number {
  const n = finiteNumber(value);
  if (!(n >= 0.5 && n <= 1))
    throw new InvalidArgumentError(`expected a number from 0.5 to 1, got "${value}"`);
  return n;
}

/** k: --members, else 1 for single and 3 for the others; single with --members > 1 is an error. */
export function membersFor(architecture: string, members: number | undefined): number {
  if (architecture === 'single') {
    if (members !== undefined && members !== 1) {
      throw new ConfigError(`the single architecture has exactly 1 member, got --members ${members}`, {
        location: { field: '--members' },
        hint: 'drop --members (or pass --members 1) with single, or use --arch linear-heads for k heads on one transformer',
      });
    }
    return 1;
  }
  return members ?? DEFAULT_MEMBERS;
}

function nonNegative(value: string): number {
  const n = finiteNumber(value);
  if (n < 0) throw new InvalidArgumentError(`expected a number ≥ 0, got "${value}"`);
  return n;
}

/**
 * The recipe options of the reward config from the flags: margin, centering, the objective, diversity,
 * the time budget (which drops the preset's step cap) and early stopping. Unset flags add nothing, so the
 * presets train exactly as before.
 */
export function recipeConfig(
  opts: Pick<
    TrainRmOptions,
    | 'maxSteps'
    | 'margin'
    | 'centerRewards'
    | 'objective'
    | 'odinLengthWeight'
    | 'odinOrthWeight'
    | 'diversity'
    | 'memberSubsets'
    | 'timeBudget'
    | 'earlyStopping'
    | 'evalEvery'
    | 'patience'
    | 'validationFraction'
  >,
  presetMaxSteps: number | undefined,
): Partial<RewardTrainConfig> {
  if (opts.objective !== 'odin' && (opts.odinLengthWeight ?? opts.odinOrthWeight) !== undefined) {
    throw new ConfigError('--odin-length-weight and --odin-orth-weight need --objective odin', {
      location: {
        field: opts.odinLengthWeight === undefined ? '--odin-orth-weight' : '--odin-length-weight',
      },
      hint: 'add --objective odin, or drop the weight',
    });
  }
  const earlySettings = [opts.evalEvery, opts.patience, opts.validationFraction];
  if (opts.earlyStopping !== true && earlySettings.some((v) => v !== undefined)) {
    throw new ConfigError('--eval-every, --patience and --validation-fraction need --early-stopping', {
      location: { field: '--early-stopping' },
      hint: 'add --early-stopping, or drop those settings',
    });
  }
  const maxSteps = opts.maxSteps ?? (opts.timeBudget === undefined ? presetMaxSteps : undefined);
  return {
    ...(maxSteps === undefined ? {} : { maxSteps }),
    ...(opts.margin === undefined ? {} : { margin: opts.margin }),
    ...(opts.centerRewards === undefined ? {} : { centering: opts.centerRewards }),
    ...(opts.objective === 'odin'
      ? {
          odin: {
            lengthWeight: opts.odinLengthWeight ?? 1,
            orthWeight: opts.odinOrthWeight ?? 1,
          },
        }
      : {}),
    ...(opts.diversity === undefined ? {} : { diversity: opts.diversity }),
    ...(opts.memberSubsets === true ? { memberSubsets: true } : {}),
    ...(opts.timeBudget === undefined ? {} : { timeBudget: opts.timeBudget }),
    ...(opts.earlyStopping === true
      ? {
          earlyStopping: {
            every: opts.evalEvery ?? 25,
            patience: opts.patience ?? 4,
            fraction: opts.validationFraction ?? 0.05,
            maxPairs: 256,
          },
        }
      : {}),
  };
}

/** One line per phase that ended early or was sized to a time budget. */
function formatPhases(phases: Record<string, PhaseSummary>): string {
  return Object.entries(phases)
    .filter(
      ([, p]) => p.stoppedBy !== undefined || p.secondsPerStep !== undefined || p.bestStep !== undefined,
    )
    .map(([name, p]) => {
      const why =
        p.stoppedBy === 'budget'
          ? ', stopped at its share of the time budget'
          : p.stoppedBy === 'patience'
            ? ', stopped early (no held-out improvement)'
            : '';
      const best =
        p.bestStep === undefined
          ? ''
          : `; kept step ${p.bestStep} (held-out loss ${(p.bestValidationLoss as number).toFixed(4)})`;
      return `${name}: ${p.steps} of ${p.plannedSteps} steps${why}${best}\n`;
    })
    .join('');
}
