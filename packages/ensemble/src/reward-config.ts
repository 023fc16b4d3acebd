/**
 * Bradley-Terry reward training config. Defaults follow the paper's Tables 2–3 where they carry over to
 * our scale, and say why where they do not: the paper fine-tunes 7B-parameter models from a strong SFT
 * model with lr 3e-6; our models have 0.1–10 M parameters, so the learning rates are larger (a tiny
 * model moves little at 3e-6 within the few hundred steps a CPU run allows).
 */
import { ConfigError, resolveOptions } from '@quorum/core';
import { z } from 'zod';

export const rewardTrainConfigSchema = z
  .object({
    /** Pairs per micro-batch (each pair is two sequences in one forward pass). */
    batchSize: z.number().int().positive().default(16),
    /** Micro-batches per optimizer step (paper: 2). */
    gradAccum: z.number().int().positive().default(2),
    /** Passes over each phase's data (paper: 1). */
    epochs: z.number().positive().default(1),
    /** Cap on optimizer steps per phase (undefined = as many as the epochs give). */
    maxSteps: z.number().int().positive().optional(),
    /** Full fine-tuning lr (paper: 3e-6 with cosine for 7B models; 3e-4 suits our tiny models: see header). */
    lr: z.number().positive().default(3e-4),
    /** LoRA-phase lr (paper: 5e-5 constant; scaled up like `lr`). */
    loraLr: z.number().positive().default(1e-3),
    /** Schedule of full fine-tuning phases (paper: cosine). */
    schedule: z.enum(['cosine', 'constant']).default('cosine'),
    /** Schedule of LoRA phases (paper: constant). */
    loraSchedule: z.enum(['cosine', 'constant']).default('constant'),
    /** Warmup as a fraction of each phase's steps (paper: 3%). */
    warmupRatio: z.number().min(0).max(1).default(0.03),
    /** Decoupled weight decay (paper: 0). */
    weightDecay: z.number().min(0).default(0),
    /** Global gradient-norm clip (0 = off). */
    clipNorm: z.number().min(0).default(1),
    /** Required reward margin in the BT loss (0 = plain BT). */
    margin: z.number().min(0).default(0),
    /** Reward-centering coefficient (0 = off; ~0.01 keeps rewards near 0). */
    centering: z.number().min(0).default(0),
    /**
     * Members sharing trainable weights weight each pair by their own Poisson(1) bootstrap count. On by
     * default: without it jointly trained heads collapsed to one function in a measured prototype.
     */
    bootstrap: z.boolean().default(true),
    /**
     * ODIN (Chen et al. 2024): each member gets a length head beside its reward (quality) head on the same
     * hidden state; the BT loss is taken on their sum, plus `lengthWeight`·(|ρ(r_q, L)| − |ρ(r_l, L)|) over a
     * micro-batch's answers (L = answer tokens) and `orthWeight`·|cos(w_q, w_l)|. Only the quality head
     * scores and is saved (the length heads live in train-state/ only). Unset = plain BT.
     */
    odin: z
      .object({
        lengthWeight: z.number().min(0).default(1),
        orthWeight: z.number().min(0).default(1),
      })
      .strict()
      .optional(),
    /**
     * Agreement penalty λ (UP-RLHF style): adds −λ·mean over pairs of the across-member variance of
     * σ(r_c − r_r), pushing members that train together apart. Unset or 0 = off; no effect on phases of
     * one member (`independent`).
     */
    diversity: z.number().min(0).optional(),
    /**
     * Members trained together on their own weights (lora's `adapters` phase) each train on their own
     * seeded 1/k of the phase's pairs instead of all of them. Unset = off.
     */
    memberSubsets: z.boolean().optional(),
    /**
     * Wall-clock budget for all phases, in seconds. The step time is measured on the first steps and each
     * phase gets as many steps as fit its share of the budget (by pairs), its warmup and cosine sized to
     * them; `epochs` is ignored (as many as fit), `maxSteps` still caps; training stops at the budget.
     */
    timeBudget: z.number().positive().optional(),
    /**
     * Early stopping: `fraction` of the training pairs (seeded, at most `maxPairs`) is held out; every
     * `every` optimizer steps the plain BT loss of the phase's members on it is measured; after `patience`
     * evaluations without improvement the phase stops, and the best weights (not the last) are kept.
     */
    earlyStopping: z
      .object({
        every: z.number().int().positive().default(25),
        patience: z.number().int().positive().default(4),
        fraction: z.number().gt(0).max(0.5).default(0.05),
        maxPairs: z.number().int().positive().default(256),
      })
      .strict()
      .optional(),
    /** Longest sequence (prompt + answer + eos) in tokens; the end of the answer is kept. */
    maxLength: z.number().int().min(16).default(128),
    /** Log a line to metrics.jsonl every this many optimizer steps. */
    logEvery: z.number().int().positive().default(10),
    /**
     * Save a resumable state every this many optimizer steps (0 = only at the end of each phase). Default
     * (unset): a quarter of each phase's steps, at most 50 (`defaultCheckpointEvery`), so even a short run
     * (the smoke preset's 24 steps) has a few states to resume from.
     */
    checkpointEvery: z.number().int().min(0).optional(),
    seed: z.number().int().default(0),
  })
  .strict();

export type RewardTrainConfigInput = z.input<typeof rewardTrainConfigSchema>;
export type RewardTrainConfig = z.output<typeof rewardTrainConfigSchema>;

export function resolveRewardTrainConfig(input: unknown, path = 'train'): RewardTrainConfig {
  return resolveOptions(rewardTrainConfigSchema, input, path);
}

/** Settings a resume may change without mixing two runs: they only say how often to log and save. */
export const RESUMABLE_CHANGES: readonly (keyof RewardTrainConfig)[] = ['logEvery', 'checkpointEvery'];

/** The checkpoint interval of a phase of `steps` optimizer steps when none is set: min(50, ⌈steps / 4⌉). */
export function defaultCheckpointEvery(steps: number): number {
  return Math.max(1, Math.min(50, Math.ceil(steps / 4)));
}

/**
 * A duration as a time budget takes it: `90s`, `30m`, `1.5h` or plain seconds (`45`) → seconds. Anything
 * else is a ConfigError naming `field`.
 */
export function parseDuration(text: string, field = 'timeBudget'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$/i.exec(text);
  const seconds =
    match === null
      ? Number.NaN
      : Number(match[1]) *
        ({ s: 1, m: 60, h: 3600 }[(match[2] ?? 's').toLowerCase() as 's' | 'm' | 'h'] ?? 1);
  if (!(seconds > 0)) {
    throw new ConfigError(`expected a duration such as 90s, 30m or 1h, got "${text}"`, {
      location: { field },
      hint: 'a positive number followed by s, m or h',
    });
  }
  return seconds;
}
