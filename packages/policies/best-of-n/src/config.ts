/**
 * Best-of-n options, grouped, with the reason beside each default. Sampling defaults are the paper's
 * Table 5 (Zhang et al. 2024, Best-of-n decoding): temperature 1.0, top-p 0.9.
 */
import { resolveOptions } from '@quorum/core';
import { z } from 'zod';

export const bestOfNConfigSchema = z
  .object({
    // --- how many
    // Samples per prompt; the paper sweeps n up to 200. Memory does not grow with n (chunks below).
    n: z.number().int().min(1).default(16),

    // --- decoding (paper Table 5)
    // 1.0 samples from the policy as trained: Best-of-n needs diverse candidates to choose from.
    temperature: z.number().min(0).default(1),
    // Nucleus sampling cuts the long tail of unlikely tokens that a tiny policy produces.
    topP: z.number().gt(0).max(1).default(0.9),
    // Top-k off: top-p already bounds the tail.
    topK: z.number().int().min(0).default(0),
    // New tokens per answer; prompt + answer must fit the policy's context.
    maxNewTokens: z.number().int().min(1).default(64),

    // --- memory
    // Samples generated (one batched, KV-cached generate call) and scored per chunk; only scalars
    // survive a chunk, so memory is bounded by chunkSize whatever n is.
    chunkSize: z.number().int().min(1).default(16),
    // Keep every sampled answer's text in the result (off: only the best answer, so n = 200 stays small).
    keepAnswers: z.boolean().default(false),

    // Seeds sampling; prompt i samples from its own stream, so a result does not depend on other prompts.
    seed: z.number().int().default(0),
  })
  .strict();

export type BestOfNConfig = z.output<typeof bestOfNConfigSchema>;
export type BestOfNConfigInput = z.input<typeof bestOfNConfigSchema>;

/** Validates and completes online Best-of-n options; errors name the field (under `path`). */
export function resolveBestOfNConfig(input: unknown, path = 'bestOfN'): BestOfNConfig {
  return resolveOptions(bestOfNConfigSchema, input, path);
}

export const offlineBestOfNConfigSchema = z
  .object({
    // The curve's n values: powers of two up to 32 fit the 48–51 answers of an AlpacaEval pool.
    ns: z.array(z.number().int().min(1)).min(1).default([1, 2, 4, 8, 16, 32]),
    // Sequences per reward forward pass.
    batchSize: z.number().int().min(1).default(32),
    // Candidates scored per chunk (across pools, so short answers batch together); bounds memory.
    chunkRows: z.number().int().min(1).default(256),
    // Longest scored sequence in tokens (prompt + answer + eos); default: the reward model's context.
    maxLength: z.number().int().min(8).optional(),
  })
  .strict();

export type OfflineBestOfNConfig = z.output<typeof offlineBestOfNConfigSchema>;
export type OfflineBestOfNConfigInput = z.input<typeof offlineBestOfNConfigSchema>;

/** Validates and completes offline Best-of-n options. */
export function resolveOfflineBestOfNConfig(input: unknown, path = 'bestOfN.offline'): OfflineBestOfNConfig {
  return resolveOptions(offlineBestOfNConfigSchema, input, path);
}
