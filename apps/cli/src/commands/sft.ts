import { type GptPresetName, gptPresetNames } from '@quorum/backbone';
import { ConfigError } from '@quorum/core';
import { CORPUS_SOURCES, type CorpusSource } from '@quorum/data';
import { checkPolicySource, resolvePreset, runSft } from '@quorum/runs';
import { type Command, InvalidArgumentError, Option } from 'commander';
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
  data?: string;
  objective: 'sft' | 'lm';
  corpus?: 'all' | CorpusSource;
  corpusSplit?: 'train' | 'all';
  maxDocuments?: number;
  maxTokens?: number;
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
  '--seed, --max-steps, --batch-size and the optimizer and schedule settings, --init, --size, --data (and the number of examples), --max-length, --truncation, --objective (and --corpus, --corpus-split, --max-documents, --max-tokens); --checkpoint-every (and the eval and log intervals) may change.';

/** A token count: `2000000`, `2e6`, `500k` or `10M`. */
export function tokenCount(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([kKmMgG]?)\s*$/.exec(value);
  const scale = { '': 1, k: 1e3, m: 1e6, g: 1e9 }[(m?.[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'g'];
  const n = m === null ? Number.NaN : Math.round(Number(m[1]) * scale);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new InvalidArgumentError(
      `expected a positive token count such as 2000000, 500k or 10M, got "${value}"`,
    );
  return n;
}

/** The sft command line as typed, for quorum.json (arguments with spaces or quotes are JSON-quoted). */
function commandLine(): string {
  const args = process.argv.slice(2).map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a)));
  return ['quorum', ...args].join(' ');
}

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
    .addOption(
      new Option(
        '--objective <objective>',
        'sft: learn the answers of instruction data; lm: pretrain on every token of packed documents (--data corpus or a JSONL file of {text})',
      )
        .choices(['sft', 'lm'])
        .default('sft'),
    )
    .option(
      '--data <alpaca-eval|corpus|file>',
      'sft: alpaca-eval (default; the shipped train-split answers that GPT-4 preferred) or a JSONL file of {instruction, input?, output}; lm: corpus (default; the shipped text) or a JSONL file of {text}',
    )
    .addOption(
      new Option(
        '--corpus <source>',
        'lm with --data corpus: all (default), alpaca-eval (instructions and every answer) or hh-rlhf (dialogues)',
      ).choices(['all', 'alpaca-eval', 'hh-rlhf']),
    )
    .addOption(
      new Option(
        '--corpus-split <split>',
        "lm with --data corpus: train (default; AlpacaEval's eval instructions and their answers stay unseen) or all",
      ).choices(['train', 'all']),
    )
    .addOption(
      new Option(
        '--max-documents <n>',
        'lm: train on a seeded sample of n documents (default: all), for a quick look',
      ).argParser(positiveInt),
    )
    .addOption(
      new Option(
        '--max-tokens <n>',
        'lm: stop after about n trained tokens (500k, 10M): sets --max-steps to ⌈n / (batch × (max length − 1))⌉',
      ).argParser(tokenCount),
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

--objective lm pretrains instead (GPT-2 / nanoGPT style): the documents of --data corpus (every AlpacaEval
train-split instruction and answer, every HH-RLHF dialogue, deduplicated) or of a JSONL file of {text} are
tokenised, joined with eos and cut into --max-length blocks, and every token is learned. 1% of the documents
(at most 500) are held out for the eval loss. The command line is recorded in quorum.json (training.command);
tools/scripts/pretrain-base.mjs builds the base model this way.

Examples:
  $ quorum sft --size nano --out runs/sft-nano                 # ~2 minutes on 2 cores
  $ quorum sft --size nano --out runs/sft-nano --max-steps 50  # a quick look
  $ quorum sft --data my-sft.jsonl --size micro --out runs/sft --resume
  $ quorum sft --init hf:models/SmolLM-135M --max-length 512 --max-steps 200 --out runs/sft-smollm
  $ quorum sft --objective lm --size micro --max-tokens 10M --out runs/base-micro   # pretrain on the corpus
  $ quorum sft --objective lm --corpus alpaca-eval --max-documents 2000 --max-steps 50 --out runs/lm-look
  $ quorum generate --model runs/sft-nano --prompt "Give three tips for staying healthy."`,
    )
    .action(async (opts: SftOptions, cmd: Command) => {
      const ctx = await createContext(cmd.optsWithGlobals<GlobalOptions>());
      const preset = resolvePreset(opts.preset, '--preset');
      const lm = opts.objective === 'lm';
      if (lm && opts.maxTokens !== undefined && opts.maxSteps !== undefined) {
        throw new ConfigError('--max-tokens and --max-steps both set the length of the run', {
          location: { field: '--max-tokens' },
          hint: 'pass one of them',
        });
      }
      const data = opts.data ?? (lm ? 'corpus' : 'alpaca-eval');
      if (opts.init !== undefined && opts.init !== 'scratch')
        await checkPolicySource(opts.init, '--init', opts.maxLength);
      const { resume } = prepareOutDir(opts.out, { ...opts, resume: opts.resume ?? opts.forceResume });
      const backend = await startCompute(ctx);
      const size = opts.size ?? preset.size;
      const init = opts.init ?? 'scratch';
      const model = init === 'scratch' ? `${size} model` : `init ${init}`;
      const progress = progressLine(`sft ${init === 'scratch' ? size : 'init'}`);
      progress.log(`sft${lm ? ' (lm objective)' : ''}: ${model}, data ${data}, backend ${backend.name}`);
      const result = await runSft(
        {
          init,
          size,
          contextLength: init === 'scratch' ? (opts.maxLength ?? preset.contextLength) : preset.contextLength,
          maxLength: opts.maxLength,
          truncation: opts.truncation,
          data,
          out: opts.out,
          maxSteps: opts.maxSteps ?? preset.sft.maxSteps,
          batchSize: opts.batchSize ?? preset.sft.batchSize,
          checkpointEvery: opts.checkpointEvery,
          seed: opts.seed,
          resume,
          forceResume: opts.forceResume,
          maxLineBytes: opts.maxLineBytes,
          signal: interruptSignal(),
          ...(lm ? { objective: 'lm' as const } : {}),
          corpus:
            opts.corpus === undefined ? undefined : opts.corpus === 'all' ? CORPUS_SOURCES : [opts.corpus],
          corpusSplit: opts.corpusSplit,
          maxDocuments: opts.maxDocuments,
          maxTokens: opts.maxTokens,
          command: commandLine(),
        },
        progress,
      );
      if (result.stoppedEarly) {
        progress.done(`stopped at step ${result.steps}; continue with the same command and --resume`);
        return;
      }
      const fmt = (x: number | undefined): string => (x === undefined ? 'n/a' : x.toFixed(3));
      if (result.corpus !== undefined) {
        const c = result.corpus;
        progress.done(
          `lm pretraining done: ${result.steps} steps in ${result.seconds.toFixed(0)} s, ~${result.tokensTrained} tokens trained of ${c.tokens} (${c.documents} documents, ${c.blocks} blocks of ≤ ${result.maxLength}); held-out loss on ${c.evalDocuments} documents ${fmt(result.initialEvalLoss)} → ${fmt(result.evalLoss)}; model in ${opts.out}`,
        );
        return;
      }
      progress.done(
        `sft done: ${result.steps} steps in ${result.seconds.toFixed(0)} s on ${result.examples.used} examples of ≤ ${result.maxLength} tokens (${result.examples.truncated} truncated, ${result.examples.dropped} dropped); held-out loss ${fmt(result.initialEvalLoss)} → ${fmt(result.evalLoss)}; policy in ${opts.out}`,
      );
    });
}
