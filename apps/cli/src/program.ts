/** The `quorum` command: global options, then one sub-command per task. */
import { createRequire } from 'node:module';
import { Command, Help, Option } from 'commander';
import { collect } from './args.js';
import { registerBestOfN } from './commands/best-of-n.js';
import { registerEval } from './commands/eval.js';
import { registerEvalRm } from './commands/eval-rm.js';
import { registerGenerate } from './commands/generate.js';
import { registerExport, registerImport } from './commands/hf.js';
import { registerInfo } from './commands/info.js';
import { registerPpo } from './commands/ppo.js';
import { registerReproduce } from './commands/reproduce.js';
import { registerScore } from './commands/score.js';
import { registerSft } from './commands/sft.js';
import { registerTrainRm } from './commands/train-rm.js';
import { commanderMessage, EXIT_CODES, EXIT_CODES_HELP } from './errors.js';

/** @quorum/cli's version (its package.json). */
export function cliVersion(): string {
  return (createRequire(import.meta.url)('../package.json') as { version: string }).version;
}

/** Global options that take a value (skipped when looking for the command name). */
const GLOBAL_VALUE_OPTIONS = new Set(['--plugin', '--backend', '--config']);

export function buildProgram(): Command {
  const program = new Command('quorum')
    .description(
      'Efficient reward-model ensembles for RLHF: train ensembles, score answers, Best-of-n, PPO, evaluate.',
    )
    .version(cliVersion(), '-V, --version', 'print the version')
    .addOption(
      new Option(
        '--plugin <package-or-path>',
        'load a plugin (repeatable); its default export is a ContainerModule',
      ).argParser(collect),
    )
    .addOption(
      new Option('--backend <name>', 'compute backend (default: the fastest available; env QUORUM_BACKEND)'),
    )
    .addOption(new Option('--config <file>', 'project config (default: ./quorum.config.json when present)'))
    // Read by main.ts from argv (it must work for errors commander raises too); declared so it is accepted and listed.
    .addOption(new Option('--debug', 'print the stack and causes of an error (env QUORUM_DEBUG=1)'))
    // Every command: commander's own errors in Quorum's style, thrown (main.ts exits with the usage code).
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(commanderMessage(text)) })
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({
      sortSubcommands: false,
      // Required options say so, in the same parentheses as commander's choices and defaults.
      optionDescription(option) {
        const text = Help.prototype.optionDescription.call(this, option);
        return option.mandatory ? `${text} (required)` : text;
      },
    });
  registerReproduce(program);
  registerInfo(program);
  registerSft(program);
  registerGenerate(program);
  registerTrainRm(program);
  registerEvalRm(program);
  registerScore(program);
  registerBestOfN(program);
  registerPpo(program);
  registerEval(program);
  registerImport(program);
  registerExport(program);
  program.addHelpText(
    'after',
    `
Start here:
  $ quorum info                      what is installed and which backend runs
  $ quorum reproduce --preset smoke  the paper's study on the shipped data (about 5 minutes)

Every command explains itself: quorum <command> --help

Errors go to stderr in one style: "quorum: <where>: <what went wrong>", then "hint: <how to fix it>".
A bug is one line "quorum: internal error: <message>"; --debug (or QUORUM_DEBUG=1) adds its stack.
Files a command writes appear only when it succeeds: a failed run leaves no partial output and an earlier
file untouched; an output that is one of the command's inputs is refused.
${EXIT_CODES_HELP}`,
  );
  return program;
}

/**
 * Runs `quorum` on `argv` (process.argv). An unknown command is a usage error listing the commands, even
 * with --help after it (commander would print the top-level help).
 */
export async function runCli(argv: readonly string[], program: Command = buildProgram()): Promise<void> {
  const args = argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (GLOBAL_VALUE_OPTIONS.has(arg)) {
      i++;
      continue;
    }
    if (arg.startsWith('-')) continue;
    const names = program.commands.flatMap((c) => [c.name(), ...c.aliases()]);
    if (arg !== 'help' && !names.includes(arg)) {
      program.error(`error: unknown command '${arg}'. Commands: ${names.join(', ')}`, {
        exitCode: EXIT_CODES.usage,
        code: 'commander.unknownCommand',
      });
    }
    break;
  }
  await program.parseAsync([...argv]);
}
