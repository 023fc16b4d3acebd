/** `quorum reproduce`: the paper's study (the run is @quorum/runs' `reproduce`). */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import {
  PRESET_NAMES,
  PRESETS,
  REPRODUCE_ARCHITECTURES,
  REPRODUCE_RULES,
  reproduce,
  resolvePreset,
  resolveReproduceStrategies,
} from '@quorum/runs';
import { type Command, Option } from 'commander';
import { list, positiveInt } from '../args.js';
import {
  architectureRegistry,
  createContext,
  type GlobalOptions,
  ruleRegistry,
  startCompute,
} from '../context.js';
import { overwriteOption, presetOption } from '../options.js';
import { progressLine } from '../progress.js';
import { interruptSignal } from '../signals.js';
import { infoReport } from './info.js';

interface ReproduceCliOptions {
  preset: string;
  seeds?: number;
  out: string;
  overwrite?: boolean;
  arch: string[];
  agg: string[];
}

export function registerReproduce(program: Command): void {
  program
    .command('reproduce')
    .description(
      "the paper's study on the shipped data: reward ensembles, Best-of-n and PPO, with a report (the main job)",
    )
    .addOption(presetOption('smoke', 'run size'))
    .addOption(new Option('--seeds <n>', "number of seeds (default: the preset's)").argParser(positiveInt))
    .option('--out <dir>', 'run folder: models, stage results and report.{json,md,html}', 'runs/reproduce')
    .addOption(overwriteOption('delete --out first (otherwise a rerun continues from the cached stages)'))
    .addOption(
      new Option('--arch <names>', "architectures compared, comma-separated (a plugin's too)")
        .default([...REPRODUCE_ARCHITECTURES], REPRODUCE_ARCHITECTURES.join(','))
        .argParser(list),
    )
    .addOption(
      new Option(
        '--agg <rules>',
        "Best-of-n rules compared, comma-separated (a plugin's too), with default options",
      )
        .default(
          REPRODUCE_RULES.map((r) => r.label),
          REPRODUCE_RULES.map((r) => r.label).join(','),
        )
        .argParser(list),
    )
    .addHelpText(
      'after',
      `
Stages (each cached in <out>/stages/, so a rerun continues where it stopped):
  1. an SFT policy (the shipped AlpacaEval answers that GPT-4 preferred, train split)
  2. reward models: ${REPRODUCE_ARCHITECTURES.join(', ')} (k = 3), trained from the SFT policy on the train
     split (proxy part); accuracy and ECE on the eval split
  3. Best-of-n over the shipped answer pools of the eval instructions, rules mean and lcb (β = 1), win rate
     against text-davinci-003 as judged by GPT-4 (the shipped verdicts) — the paper's Figure 2(a)
  4. PPO from the SFT policy with each reward model, judged against the SFT policy by a gold reward model
     trained on a disjoint part of the train split — Figure 2(b) in miniature
  5. costs: parameters, peak tensor memory, training time

Presets:
${PRESET_NAMES.map((n) => `  ${n.padEnd(8)} ${PRESETS[n].description}`).join('\n')}

Read the report: <out>/report.html (charts, opens from disk), report.md (tables), report.json
(schema: docs/schemas/report.schema.json). Win rates are percentages with standard errors over prompts.

Examples:
  $ npx quorum reproduce                       # smoke preset, runs/reproduce
  $ npx quorum reproduce --preset default --out runs/default
  $ npx quorum reproduce --preset full --seeds 10 --out runs/full
  $ npx quorum reproduce --plugin ./examples/plugin-warm --arch linear-heads,warm --agg mean,softmin --out runs/warm`,
    )
    .action(async (opts: ReproduceCliOptions, cmd: Command) => {
      const ctx = await createContext(cmd.optsWithGlobals<GlobalOptions>());
      const preset = resolvePreset(opts.preset, '--preset');
      // Architectures and rules by name through the registries (plugins included), before any work.
      const strategies = resolveReproduceStrategies(
        { architectures: architectureRegistry(ctx), rules: ruleRegistry(ctx) },
        {
          architectures: opts.arch,
          rules: opts.agg.map(
            (name) => REPRODUCE_RULES.find((r) => r.label === name) ?? { label: name, spec: name },
          ),
        },
      );
      if (opts.overwrite === true && existsSync(opts.out)) rmSync(opts.out, { recursive: true, force: true });
      const info = await infoReport(ctx);
      const progress = progressLine('reproduce');
      const cached = existsSync(path.join(opts.out, 'stages'))
        ? readdirSync(path.join(opts.out, 'stages')).length
        : 0;
      progress.log(
        `reproduce: preset ${preset.name}, ${opts.seeds ?? preset.bestOfN.seeds} seed(s), backend ${info.backend.name} (${info.backend.reason}), out ${opts.out}` +
          (cached > 0 ? ` — continuing: ${cached} stage(s) cached` : ''),
      );
      const began = Date.now();
      const { report, written, interrupted } = await reproduce(
        {
          preset,
          seeds: opts.seeds ?? preset.bestOfN.seeds,
          out: opts.out,
          strategies,
          backend: await startCompute(ctx),
          versions: info.versions,
          signal: interruptSignal(),
        },
        progress,
      );
      const lines = [
        `${interrupted ? 'stopped early (rerun to continue)' : 'done'} in ${((Date.now() - began) / 1000).toFixed(0)} s`,
      ];
      for (const [arch, a] of Object.entries(report.architectures)) {
        const best = a.bestOfN.filter((r) => r.rule === 'mean').at(-1);
        lines.push(
          `  ${arch.padEnd(13)} accuracy ${(100 * a.accuracy).toFixed(1)}%  ECE ${a.ece.toFixed(3)}  params ${a.params.total}` +
            (best === undefined
              ? ''
              : `  Best-of-${best.n} win rate ${best.winRate.toFixed(1)} ± ${best.stderr.toFixed(1)}`),
        );
      }
      lines.push(`report: ${written.html}`);
      progress.done(lines.join('\n'));
    });
}
