import { generate } from '@quorum/backbone';
import { Rng } from '@quorum/core';
import { encodePrompt } from '@quorum/data';
import { type Command, Option } from 'commander';
import { finiteNumber, nonNegativeInt, positiveInt } from '../args.js';
import { createContext, type GlobalOptions, startCompute } from '../context.js';
import { loadPolicyWithTokenizer } from '../load.js';

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
    .requiredOption('--model <dir>', 'policy folder written by `quorum sft` or `quorum ppo`')
    .requiredOption('--prompt <text>', 'the instruction')
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
    .addOption(new Option('--seed <n>', 'sampling seed').default(0).argParser(nonNegativeInt))
    .addHelpText(
      'after',
      '\nExample:\n  $ quorum generate --model runs/sft-nano --prompt "Name three primary colours." --samples 3',
    )
    .action(async (opts: GenerateCliOptions, cmd: Command) => {
      const ctx = await createContext(cmd.optsWithGlobals<GlobalOptions>());
      await startCompute(ctx);
      const { config, params, tokenizer } = await loadPolicyWithTokenizer(opts.model);
      const prompt = Array.from(
        encodePrompt(
          tokenizer,
          { instruction: opts.prompt, input: opts.input },
          { maxLength: config.contextLength - opts.maxNewTokens },
        ),
      );
      const result = generate(
        params,
        config,
        Array.from({ length: opts.samples }, () => prompt),
        {
          maxNewTokens: Math.min(opts.maxNewTokens, config.contextLength - prompt.length),
          temperature: opts.temperature,
          topP: opts.topP,
          topK: opts.topK,
          eosId: tokenizer.eosId,
          padId: tokenizer.padId,
          rng: new Rng(opts.seed),
        },
      );
      result.tokens.forEach((tokens, i) => {
        const text = tokenizer.decode(tokens.filter((t) => t !== tokenizer.eosId));
        process.stdout.write(`${opts.samples > 1 ? `--- sample ${i + 1}\n` : ''}${text}\n`);
      });
    });
}
