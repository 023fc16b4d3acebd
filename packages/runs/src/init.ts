/** The SFT policy a preset names: reward models and PPO start from it; it is trained on first use. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { GptPresetName } from '@quorum/backbone';
import type { RunPreset } from './presets.js';
import { RunInterrupted, type RunProgress, silentProgress } from './progress.js';
import { runSft } from './sft.js';

/** Where shared artefacts go: $QUORUM_CACHE, else ./.quorum-cache. */
export function cacheDir(): string {
  return process.env.QUORUM_CACHE ?? path.resolve('.quorum-cache');
}

export function presetSftDir(preset: RunPreset, size: GptPresetName, seed: number): string {
  return path.join(cacheDir(), `sft-${size}-${preset.name}-seed${seed}`);
}

/**
 * Returns the preset's SFT policy folder, training it first when it does not exist yet (resuming a
 * partial one). Throws `RunInterrupted` when `signal` stops that training.
 */
export async function ensurePresetSft(
  preset: RunPreset,
  size: GptPresetName,
  seed: number,
  progress: RunProgress = silentProgress,
  signal?: AbortSignal,
): Promise<string> {
  const dir = presetSftDir(preset, size, seed);
  if (existsSync(path.join(dir, 'quorum.json'))) return dir;
  progress.log(
    `training the ${preset.name} preset's SFT policy first (${size}, ${preset.sft.maxSteps} steps) → ${dir}`,
  );
  const result = await runSft(
    {
      size,
      contextLength: preset.contextLength,
      data: 'alpaca-eval',
      out: dir,
      maxSteps: preset.sft.maxSteps,
      batchSize: preset.sft.batchSize,
      seed,
      resume: existsSync(dir),
      signal,
    },
    progress,
  );
  if (result.stoppedEarly) throw new RunInterrupted('training the SFT policy');
  return dir;
}
