/** `quorum generate`: samples from a policy (the run is @quorum/runs' `sampleAnswers`). */
import { sampleAnswers } from '@quorum/runs';
import { type Command, Option } from 'commander';
import { finiteNumber, nonNegativeInt, positiveInt } from '../args.js';
import { createContext, type GlobalOptions, startCompute } from '../context.js';
import { seedOption } from '../options.js';

interface GenerateCliOptions {
  model: string;
  prompt: string;
  input: string;
  maxNewTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  samples: number;
  seed: number;
}

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description('sample answers from a policy for one instruction')
    .addOption(
      new Option(
        '--model <dir>',
        'policy folder written by `quorum sft`, `quorum ppo` or `quorum import`, or hf:DIR (a Hugging Face model folder)',
      ).makeOptionMandatory(),
    )
    .addOption(new Option('--prompt <text>', 'the instruction').makeOptionMandatory())
    .option('--input <text>', 'optional input for the instruction', '')
    .addOption(
      new Option('--max-new-tokens <n>', 'answer length limit in tokens').default(64).argParser(positiveInt),
    )
    .addOption(
      new Option('--temperature <t>', 'sampling temperature; 0 = greedy')
        .default(0.7)
        .argParser(finiteNumber),
    )
    .addOption(new Option('--top-p <p>', 'nucleus sampling mass').default(0.9).argParser(finiteNumber))
    .addOption(
      new Option('--top-k <k>', 'keep the k most likely tokens (0 = off)')
        .default(0)
        .argParser(nonNegativeInt),
    )
    .addOption(new Option('--samples <n>', 'how many answers').default(1).argParser(positiveInt))
    .addOption(seedOption('sampling seed'))
    .addHelpText(
      'after',
      '\nExample:\n  $ quorum generate --model runs/sft-nano --prompt "Name three primary colours." --samples 3',
    )
    .action(async (opts: GenerateCliOptions, cmd: Command) => {
      const ctx = await createContext(cmd.optsWithGlobals<GlobalOptions>());
      await startCompute(ctx);
      const answers = await sampleAnswers({
        policy: opts.model,
        prompt: { instruction: opts.prompt, input: opts.input },
        samples: opts.samples,
        maxNewTokens: opts.maxNewTokens,
        temperature: opts.temperature,
        topP: opts.topP,
        topK: opts.topK,
        seed: opts.seed,
      });
      answers.forEach((text, i) => {
        process.stdout.write(`${opts.samples > 1 ? `--- sample ${i + 1}\n` : ''}${text}\n`);
      });
    });
}
