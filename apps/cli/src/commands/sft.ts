import { type GptPresetName, gptPresetNames } from '@quorum/backbone';
import { type Command, Option } from 'commander';
import { nonNegativeInt, positiveInt } from '../args.js';
import { createContext, type GlobalOptions, startCompute } from '../context.js';
import { prepareOutDir } from '../out-dir.js';
import { runSft } from '../pipelines/sft.js';
import { resolvePreset } from '../presets.js';
import { progressLine } from '../progress.js';
import { interruptSignal } from '../signals.js';

interface SftOptions {
  size?: GptPresetName;
  preset: string;
  data: string;
  out: string;
  maxSteps?: number;
  batchSize?: number;
  checkpointEvery?: number;
  seed: number;
  resume?: boolean;
  overwrite?: boolean;
}

export function registerSft(program: Command): void {
  program
    .command('sft')
    .description('supervised fine-tuning: train a policy on instruction → answer data')
    .addOption(new Option('--size <size>', 'model size').choices(gptPresetNames as string[]))
    .option('--preset <preset>', 'run size: smoke, default or full (sets steps and size)', 'default')
    .option(
      '--data <alpaca-eval|file>',
      'alpaca-eval (the shipped train-split answers that GPT-4 preferred) or a JSONL file of {instruction, input?, output}',
      'alpaca-eval',
    )
    .requiredOption('--out <dir>', 'policy folder to write (checkpoints in <dir>/train-state)')
    .addOption(
      new Option('--max-steps <n>', "optimizer steps (default: the preset's)").argParser(positiveInt),
    )
    .addOption(
      new Option('--batch-size <n>', "sequences per step (default: the preset's)").argParser(positiveInt),
    )
    .addOption(
      new Option(
        '--checkpoint-every <n>',
        'save a resumable state every n optimizer steps (default: a fifth of the steps, at least 10)',
      ).argParser(positiveInt),
    )
    .addOption(
      new Option('--seed <n>', 'seed for initialisation and data order').default(0).argParser(nonNegativeInt),
    )
    .option('--resume', 'continue the run in --out from its last checkpoint')
    .option('--overwrite', 'delete --out first and start over')
    .addHelpText(
      'after',
      `
Trains a GPT-style policy from scratch with the shared prompt template; only the answer tokens are learned.
The held-out loss is measured on the AlpacaEval eval split (or 5% of your file), before and after.

Examples:
  $ quorum sft --size nano --out runs/sft-nano                 # ~2 minutes on 2 cores
  $ quorum sft --size nano --out runs/sft-nano --max-steps 50  # a quick look
  $ quorum sft --data my-sft.jsonl --size micro --out runs/sft --resume
  $ quorum generate --model runs/sft-nano --prompt "Give three tips for staying healthy."`,
    )
    .action(async (opts: SftOptions, cmd: Command) => {
      const ctx = await createContext(cmd.optsWithGlobals<GlobalOptions>());
      const preset = resolvePreset(opts.preset);
      const { resume } = prepareOutDir(opts.out, opts);
      const backend = await startCompute(ctx);
      const size = opts.size ?? preset.size;
      const progress = progressLine(`sft ${size}`);
      progress.log(`sft: ${size} model, data ${opts.data}, backend ${backend.name}`);
      const result = await runSft({
        size,
        contextLength: preset.contextLength,
        data: opts.data,
        out: opts.out,
        maxSteps: opts.maxSteps ?? preset.sft.maxSteps,
        batchSize: opts.batchSize ?? preset.sft.batchSize,
        checkpointEvery: opts.checkpointEvery,
        seed: opts.seed,
        resume,
        progress,
        signal: interruptSignal(),
      });
      if (result.stoppedEarly) {
        progress.done(`stopped at step ${result.steps}; continue with the same command and --resume`);
        return;
      }
      const fmt = (x: number | undefined): string => (x === undefined ? 'n/a' : x.toFixed(3));
      progress.done(
        `sft done: ${result.steps} steps in ${result.seconds.toFixed(0)} s; held-out loss ${fmt(result.initialEvalLoss)} → ${fmt(result.evalLoss)}; policy in ${opts.out}`,
      );
    });
}
