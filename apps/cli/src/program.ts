/** The `quorum` command: global options, then one sub-command per task. */
import { Command, Option } from 'commander';
import { registerBestOfN } from './commands/best-of-n.js';
import { registerEval } from './commands/eval.js';
import { registerEvalRm } from './commands/eval-rm.js';
import { registerGenerate } from './commands/generate.js';
import { registerInfo } from './commands/info.js';
import { registerPpo } from './commands/ppo.js';
import { registerReproduce } from './commands/reproduce.js';
import { registerScore } from './commands/score.js';
import { registerSft } from './commands/sft.js';
import { registerTrainRm } from './commands/train-rm.js';

export function buildProgram(): Command {
  const program = new Command('quorum')
    .description(
      'Efficient reward-model ensembles for RLHF: train ensembles, score answers, Best-of-n, PPO, evaluate.',
    )
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
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: false });
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
  program.addHelpText(
    'after',
    `
Start here:
  $ quorum info                      what is installed and which backend runs
  $ quorum reproduce --preset smoke  the paper's study on the shipped data (about 5 minutes)

Every command explains itself: quorum <command> --help`,
  );
  return program;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
