/**
 * Supervised fine-tuning options, grouped as in TRL's SFTConfig, with the reason beside each default.
 * The defaults suit a tiny model trained from scratch on 2 CPU cores in minutes, not a 7B model.
 */
import { resolveOptions } from '@quorum/core';
import { z } from 'zod';

export const sftConfigSchema = z
  .object({
    // --- objective
    // Unset or 'sft': the loss is on the caller's lossMask (an instruction's answer tokens). 'lm': language
    // modelling over packed documents (@quorum/data's packDocuments): every position after a block's first is
    // a target, which the trainer checks. Optional, so the settings a resume compares stay those of SFT runs
    // saved before the field existed.
    objective: z.enum(['sft', 'lm']).optional(),

    // --- length of the run
    // ~2 minutes of the nano model on 2 cores.
    maxSteps: z.number().int().min(1).default(300),
    // Sequences per micro-batch; 16 × 128 tokens keeps a nano step well under a second.
    batchSize: z.number().int().min(1).default(16),
    // Micro-batches per optimizer step (effective batch = batchSize × gradAccumSteps).
    gradAccumSteps: z.number().int().min(1).default(1),

    // --- optimizer (AdamW)
    // Tiny models from scratch train well at 1e-3 (nanoGPT's small-model setting); fine-tuning wants less.
    lr: z.number().positive().default(1e-3),
    // nanoGPT's values for language models: β2 0.95 reacts faster to loss spikes than 0.999.
    beta1: z.number().min(0).max(1).default(0.9),
    beta2: z.number().min(0).max(1).default(0.95),
    eps: z.number().positive().default(1e-8),
    // Decoupled decay of matrices only (not biases or LayerNorm gains), as nanoGPT.
    weightDecay: z.number().min(0).default(0.1),
    // Global-norm clipping keeps early steps of a fresh model stable.
    clipNorm: z.number().min(0).default(1),

    // --- schedule
    // Cosine to minLrRatio·lr by maxSteps; 'constant' holds lr after warmup.
    schedule: z.enum(['cosine', 'constant']).default('cosine'),
    // 3% warmup, the paper's setting (Tables 2–3).
    warmupRatio: z.number().min(0).max(1).default(0.03),
    minLrRatio: z.number().min(0).max(1).default(0.1),

    // --- evaluation, logging, checkpoints
    // Eval loss every N steps (0 = only at the end).
    evalEvery: z.number().int().min(0).default(50),
    // Cap on held-out sequences per evaluation, so an eval costs a few steps at most.
    evalMaxExamples: z.number().int().min(1).default(128),
    // Progress callback every N steps.
    logEvery: z.number().int().min(1).default(10),
    // Checkpoint every N steps when an output folder is set (0 = only at the end). Unset: a quarter of
    // maxSteps, at most 100 (`defaultSftCheckpointEvery`), so a short run still has a few to resume from.
    checkpointEvery: z.number().int().min(0).optional(),

    // Seeds the data order and dropout.
    seed: z.number().int().default(0),
  })
  .strict();

export type SftConfig = z.output<typeof sftConfigSchema>;
export type SftConfigInput = z.input<typeof sftConfigSchema>;

/** Validates and completes SFT options; errors name the field (under `path`). */
export function resolveSftConfig(input: unknown, path = 'sft'): SftConfig {
  return resolveOptions(sftConfigSchema, input, path);
}

/** Settings a resume may change without mixing two runs: how often to log, evaluate and save. */
export const SFT_RESUMABLE_CHANGES: readonly (keyof SftConfig)[] = [
  'logEvery',
  'evalEvery',
  'evalMaxExamples',
  'checkpointEvery',
];

/** The checkpoint interval when none is set: min(100, ⌈maxSteps / 4⌉). */
export function defaultSftCheckpointEvery(maxSteps: number): number {
  return Math.max(1, Math.min(100, Math.ceil(maxSteps / 4)));
}
