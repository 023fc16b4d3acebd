/**
 * Options several commands share, each defined once: the same name, help text and default everywhere.
 * Also the one way a command turns `--agg`, `--agg-opt`, `--beta` and `--lambda` into rules.
 */
import type { AggregationRule } from '@quorum/aggregation';
import type { LabelledRule } from '@quorum/best-of-n';
import { ConfigError, QuorumError, type StrategyRegistry } from '@quorum/core';
import { parseDuration } from '@quorum/ensemble';
import { PRESET_NAMES, type PresetName } from '@quorum/runs';
import { InvalidArgumentError, Option } from 'commander';
import { collect, finiteNumber, nonNegativeInt, positiveInt } from './args.js';
import { parseKeyValues } from './key-values.js';

/** `--preset`: the run size; `fallback` is this command's default (shown in its help). */
export function presetOption(
  fallback: PresetName,
  what = 'run size: sets steps, data sizes and the model size',
): Option {
  return new Option('--preset <preset>', what).choices(PRESET_NAMES as string[]).default(fallback);
}

/** `--seed`. */
export function seedOption(what = 'seed'): Option {
  return new Option('--seed <n>', what).default(0).argParser(nonNegativeInt);
}

/** `--out`, required; `arg` names what it is (`dir`, `file`). */
export function outOption(what: string, arg = 'dir'): Option {
  return new Option(`--out <${arg}>`, what).makeOptionMandatory();
}

/** `--overwrite`. */
export function overwriteOption(what = 'delete a non-empty --out first and start over'): Option {
  return new Option('--overwrite', what);
}

/** `--resume`. */
export function resumeOption(what = 'continue the run in --out from its last checkpoint'): Option {
  return new Option('--resume', what);
}

/**
 * `--force-resume`: resume even when the saved state was trained with other settings. `compared` lists
 * the settings this command compares (shown in its help).
 */
export function forceResumeOption(compared: string): Option {
  return new Option(
    '--force-resume',
    `like --resume, but go on when the saved state's settings differ from this run's (without it such a resume is refused, listing them): a warning lists the differences and quorum.json records saved and new values. Compared: ${compared}`,
  );
}

/** `--max-line-bytes`: the longest line a JSONL data file may have. */
export function maxLineBytesOption(): Option {
  return new Option(
    '--max-line-bytes <n>',
    'longest line of a JSONL data file in bytes (default: 8388608, 8 MiB); a longer line is an error naming file:line, read no further than the limit',
  ).argParser(positiveInt);
}

/** `--agg <rule>` (one rule) or `--agg <rules>` (comma-separated, `several`). */
export function aggOption(several = false): Option {
  const option = new Option(
    several ? '--agg <rules>' : '--agg <rule>',
    several
      ? 'aggregation rule(s), comma-separated: mean, lcb, min, uwo, median, or a plugin’s'
      : 'aggregation rule: mean, lcb, min, uwo, median, or a plugin’s',
  );
  return several
    ? option.default(['mean'], 'mean').argParser((v: string) =>
        v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      )
    : option.default('mean');
}

/** `--agg-opt key=value` (repeatable); with several rules, `rule.key=value`. */
export function aggOptOption(): Option {
  return new Option(
    '--agg-opt <key=value>',
    'an option of the rule (repeatable), e.g. --agg-opt beta=0.5; with several rules name it: lcb.beta=0.5',
  ).argParser(collect);
}

/** `--beta`: lcb's β. */
export function betaOption(): Option {
  return new Option('--beta <b>', 'lcb’s β (reward = mean − β·std); same as --agg-opt lcb.beta=B').argParser(
    finiteNumber,
  );
}

/** `--lambda`: uwo's λ. */
export function lambdaOption(): Option {
  return new Option(
    '--lambda <l>',
    'uwo’s λ (reward = mean − λ·variance); same as --agg-opt uwo.lambda=L',
  ).argParser(finiteNumber);
}

/** What the aggregation options parse to. */
export interface AggFlags {
  readonly agg: string | readonly string[];
  readonly aggOpt?: readonly string[] | undefined;
  readonly beta?: number | undefined;
  readonly lambda?: number | undefined;
}

/**
 * The rules `--agg` names, each created through the registry (plugins included) with its options:
 * `--agg-opt key=value` goes to the one rule (or to `rule` with `rule.key=value` when several are named);
 * `--beta` is lcb's β and `--lambda` uwo's λ (with one rule: that rule's). The registry checks every
 * option, so an unknown one names the rule and its valid options. Labels show the options given:
 * `lcb(beta=0.5)`.
 */
export function rulesFromFlags(registry: StrategyRegistry<AggregationRule>, flags: AggFlags): LabelledRule[] {
  const names = typeof flags.agg === 'string' ? [flags.agg] : [...flags.agg];
  if (names.length === 0)
    throw new ConfigError('no rule given', { location: { field: '--agg' }, hint: 'e.g. --agg mean,lcb' });
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) {
    throw new ConfigError(`rule "${twice}" is named twice`, {
      location: { field: '--agg' },
      hint: 'name each rule once; compare option values (e.g. two β) in separate runs',
    });
  }
  for (const name of names) registry.get(name); // an unknown name fails first, listing the registered ones
  const own = new Map<string, Record<string, unknown>>(names.map((n) => [n, {}]));
  const give = (rule: string, key: string, value: unknown, flag: string): void => {
    const options = own.get(rule);
    if (options === undefined) {
      throw new ConfigError(
        `${flag} sets an option of "${rule}", which --agg ${names.join(',')} does not name`,
        {
          location: { field: flag },
          hint: `add ${rule} to --agg, or drop ${flag}`,
        },
      );
    }
    options[key] = value;
  };
  for (const [key, value] of Object.entries(parseKeyValues(flags.aggOpt, '--agg-opt'))) {
    const dot = key.indexOf('.');
    if (dot > 0) give(key.slice(0, dot), key.slice(dot + 1), value, '--agg-opt');
    else if (names.length === 1) give(names[0] as string, key, value, '--agg-opt');
    else {
      throw new ConfigError(`"${key}" does not say which of ${names.join(', ')} it is for`, {
        location: { field: '--agg-opt' },
        hint: `name the rule: --agg-opt ${names[names.length - 1]}.${key}=…`,
      });
    }
  }
  const shorthand = (value: number | undefined, key: string, rule: string, flag: string): void => {
    if (value !== undefined) give(names.length === 1 ? (names[0] as string) : rule, key, value, flag);
  };
  shorthand(flags.beta, 'beta', 'lcb', '--beta');
  shorthand(flags.lambda, 'lambda', 'uwo', '--lambda');
  return names.map((name) => {
    const options = own.get(name) ?? {};
    const shown = Object.entries(options).map(([k, v]) => `${k}=${String(v)}`);
    return {
      label: shown.length === 0 ? name : `${name}(${shown.join(',')})`,
      rule: registry.create([name, options], '--agg'),
    };
  });
}

/** The one rule of a command that takes one. */
export function ruleFromFlags(registry: StrategyRegistry<AggregationRule>, flags: AggFlags): LabelledRule {
  const rules = rulesFromFlags(registry, flags);
  if (rules.length !== 1) {
    throw new ConfigError(`this command aggregates with one rule, got ${rules.length}`, {
      location: { field: '--agg' },
      hint: 'pass one rule, e.g. --agg lcb --beta 0.5',
    });
  }
  return rules[0] as LabelledRule;
}

/**
 * `--max-length`: tokens per sequence, bounded by a loaded model's max_position_embeddings. With `auto`
 * (only the commands that choose a length from their data take it) it parses to `'auto'` as well as n.
 */
export function maxLengthOption(options: { auto?: boolean } = {}): Option {
  const what =
    "tokens per sequence, prompt + answer (default: the preset's context from scratch; a loaded model's max_position_embeddings, at most 1024)";
  if (options.auto !== true) return new Option('--max-length <n>', what).argParser(positiveInt);
  return new Option(
    '--max-length <n|auto>',
    `${what}; auto: the p95 of the training pairs' token lengths, rounded up to 8, bounded by the model's context (printed with the share of pairs truncated); from scratch it is also the model's context (at most 1024)`,
  ).argParser((value: string): number | 'auto' => {
    if (value === 'auto') return 'auto';
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0)
      throw new InvalidArgumentError(`expected a positive integer or auto, got "${value}"`);
    return n;
  });
}

/** `--truncation`: what happens to sequences longer than --max-length. */
export function truncationOption(): Option {
  return new Option(
    '--truncation <how>',
    'sequences longer than --max-length: left (cut the prompt end and answer start, keep the reward token) or drop (leave them out, as TRL)',
  )
    .choices(['left', 'drop'])
    .default('left');
}

/** `--init`: where a model starts; `hf:DIR` is a Hugging Face model folder. */
export function initOption(what: string): Option {
  return new Option(
    '--init <source>',
    `${what}; hf:DIR starts from a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)`,
  );
}

/** `--time-budget 30m`: a wall-clock budget (90s, 30m, 1h, or seconds) → seconds. */
export function timeBudgetOption(what: string): Option {
  return new Option('--time-budget <duration>', what).argParser((value: string) => {
    try {
      return parseDuration(value, '--time-budget');
    } catch (error) {
      if (error instanceof QuorumError) throw new InvalidArgumentError(error.message);
      throw error;
    }
  });
}
