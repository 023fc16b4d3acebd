/**
 * Resuming a run with the settings it was started with. A trainer records the settings a resume must not
 * change in its saved state; on resume it compares them with the current ones and refuses a difference
 * (`resumeRefusal`) unless the caller forces it, in which case the difference is recorded (`ForcedResume`).
 * One set of helpers for every trainer (SFT, reward ensembles, PPO).
 */
import { ConfigError } from './errors.js';

/** A setting whose saved value differs from this run's. `undefined` is an unset setting. */
export interface SettingDifference {
  readonly setting: string;
  readonly saved: unknown;
  readonly now: unknown;
}

/** A resume that went ahead with other settings (`forceResume`): at which step, and what differed. */
export interface ForcedResume {
  readonly step: number;
  readonly differences: readonly SettingDifference[];
}

/** The settings of `config` a resume must not change (all but `resumable`), after the caller's `settings`. */
export function comparedSettings(
  config: object,
  resumable: readonly string[],
  settings?: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...settings };
  for (const [key, value] of Object.entries(config)) if (!resumable.includes(key)) out[key] = value;
  return out;
}

/** Settings whose saved and current values differ (compared as JSON), in the order of `now`'s keys. */
export function settingDifferences(
  saved: Readonly<Record<string, unknown>>,
  now: Readonly<Record<string, unknown>>,
): SettingDifference[] {
  const keys = [...new Set([...Object.keys(now), ...Object.keys(saved)])];
  return keys
    .filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(now[k]))
    .map((setting) => ({ setting, saved: saved[setting], now: now[setting] }));
}

/** One `    seed: saved 0, now 1` line per difference. */
export function formatDifferences(differences: readonly SettingDifference[]): string {
  const show = (v: unknown): string => (v === undefined ? 'unset' : JSON.stringify(v));
  return differences.map((d) => `    ${d.setting}: saved ${show(d.saved)}, now ${show(d.now)}`).join('\n');
}

/** The error of a resume whose settings differ from the saved state's (in `dir`, at `step`). */
export function resumeRefusal(
  differences: readonly SettingDifference[],
  dir: string,
  step: number,
): ConfigError {
  return new ConfigError(
    `the saved state (step ${step}) was trained with other settings; resuming would mix two runs:\n${formatDifferences(differences)}`,
    {
      location: { file: dir, field: 'resume' },
      hint: 'resume with the saved settings, or pass --force-resume (forceResume) to continue with the new ones (both are recorded), or start a new --out folder',
    },
  );
}

/** The warning of a forced resume, listing what differs. */
export function forcedResumeWarning(differences: readonly SettingDifference[]): string {
  return `warning: resuming with settings that differ from the saved state's (forced):\n${formatDifferences(differences)}`;
}
