import { type GptPresetName, gptPresetNames } from '@quorum/backbone';
import { checkPolicySource, resolvePreset, runSft } from '@quorum/runs';
import { type Command, Option } from 'commander';
import { positiveInt } from '../args.js';
import { createContext, type GlobalOptions, startCompute } from '../context.js';
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
  truncationOption,
} from '../options.js';
import { prepareOutDir } from '../out-dir.js';
import { progressLine } from '../progress.js';
import { interruptSignal } from '../signals.js';

interface SftOptions {
  init?: string;
  maxLength?: number;
  truncation: 'left' | 'drop';
  size?: GptPresetName;
  preset: string;
  data: string;
  out: string;
  maxSteps?: number;
  batchSize?: number;
  checkpointEvery?: number;
  seed: number;
  resume?: boolean;
  forceResume?: boolean;
  overwrite?: boolean;
  maxLineBytes?: number;
}

/** What `--force-resume` says sft compares. */
export const SFT_COMPARED =
  '--seed, --max-steps, --batch-size and the optimizer and schedule settings, --init, --size, --data (and the number of examples), --max-length, --truncation; --checkpoint-every (and the eval and log intervals) may change.';

export function registerSft(program: Command): void {
  program
    .command('sft')
    .description('supervised fine-tuning: train a policy on instruction → answer data')
    .addOption(initOption('what to fine-tune: scratch (default: a new --size model), a policy folder'))
    .addOption(maxLengthOption())
    .addOption(truncationOption())
    .addOption(
      new Option('--size <size>', "model size (default: the preset's)").choices(gptPresetNames as string[]),
    )
    .addOption(
      presetOption('default', 'run size: smoke, default or full; sets --max-steps, --batch-size and --size'),
    )
    .option(
      '--data <alpaca-eval|file>',
      'alpaca-eval (the shipped train-split answers that GPT-4 preferred) or a JSONL file of {instruction, input?, output}',
      'alpaca-eval',
    )
    .addOption(maxLineBytesOption())
    .addOption(outOption('policy folder to write (checkpoints in <out>/train-state)'))
    .addOption(
      new Option('--max-steps <n>', "optimizer steps (default: the preset's)").argParser(positiveInt),
    )
    .addOption(
      new Option('--batch-size <n>', "sequences per step (default: the preset's)").argParser(positiveInt),
    )
    .addOption(
      new Option(
        '--checkpoint-every <n>',
        'save a resumable state every n optimizer steps (default: a quarter of the steps, at most 100)',
      ).argParser(positiveInt),
    )
    .addOption(seedOption('seed for initialisation and data order'))
    .addOption(resumeOption())
    .addOption(forceResumeOption(SFT_COMPARED))
    .addOption(overwriteOption())
    .addHelpText(
      'after',
      `
Trains a GPT-style policy (from scratch, or from --init: a policy folder or hf:DIR, a Hugging Face model)
with the prompt template (a Hugging Face model's chat template when its tokenizer has one); only the answer
tokens are learned. The held-out loss is measured on the AlpacaEval eval split (or 5% of your file), before
and after. Examples longer than --max-length are cut or dropped (--truncation); the counts are printed.

Examples:
  $ quorum sft --size nano --out runs/sft-nano                 # ~2 minutes on 2 cores
  $ quorum sft --size nano --out runs/sft-nano --max-steps 50  # a quick look
  $ quorum sft --data my-sft.jsonl --size micro --out runs/sft --resume
  $ quorum sft --init hf:models/SmolLM-135M --max-length 512 --max-steps 200 --out runs/sft-smollm
  $ quorum generate --model runs/sft-nano --prompt "Give three tips for staying healthy."`,
    )
    .action(async (opts: SftOptions, cmd: Command) => {
      const ctx = await createContext(cmd.optsWithGlobals<GlobalOptions>());
      const preset = resolvePreset(opts.preset, '--preset');
      if (opts.init !== undefined && opts.init !== 'scratch')
        await checkPolicySource(opts.init, '--init', opts.maxLength);
      const { resume } = prepareOutDir(opts.out, { ...opts, resume: opts.resume ?? opts.forceResume });
      const backend = await startCompute(ctx);
      const size = opts.size ?? preset.size;
      const init = opts.init ?? 'scratch';
      const model = init === 'scratch' ? `${size} model` : `init ${init}`;
      const progress = progressLine(`sft ${init === 'scratch' ? size : 'init'}`);
      progress.log(`sft: ${model}, data ${opts.data}, backend ${backend.name}`);
      const result = await runSft(
        {
          init,
          size,
          contextLength: init === 'scratch' ? (opts.maxLength ?? preset.contextLength) : preset.contextLength,
          maxLength: opts.maxLength,
          truncation: opts.truncation,
          data: opts.data,
          out: opts.out,
          maxSteps: opts.maxSteps ?? preset.sft.maxSteps,
          batchSize: opts.batchSize ?? preset.sft.batchSize,
          checkpointEvery: opts.checkpointEvery,
          seed: opts.seed,
          resume,
          forceResume: opts.forceResume,
          maxLineBytes: opts.maxLineBytes,
          signal: interruptSignal(),
        },
        progress,
      );
      if (result.stoppedEarly) {
        progress.done(`stopped at step ${result.steps}; continue with the same command and --resume`);
        return;
      }
      const fmt = (x: number | undefined): string => (x === undefined ? 'n/a' : x.toFixed(3));
      progress.done(
        `sft done: ${result.steps} steps in ${result.seconds.toFixed(0)} s on ${result.examples.used} examples of ≤ ${result.maxLength} tokens (${result.examples.truncated} truncated, ${result.examples.dropped} dropped); held-out loss ${fmt(result.initialEvalLoss)} → ${fmt(result.evalLoss)}; policy in ${opts.out}`,
      );
    });
}
