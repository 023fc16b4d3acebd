/**
 * PPO options, grouped as in TRL's PPOConfig, with the reason and source beside each default.
 * Defaults follow the paper (Zhang et al. 2024, Table 4 for PPO, Table 6 for decoding); where a tiny
 * model on 2 CPU cores needs another value, the comment says which and why.
 */
import { resolveOptions } from '@quorum/core';
import { z } from 'zod';

export const ppoConfigSchema = z
  .object({
    // --- length of the run
    // PPO steps (one rollout batch each). 100 shows a nano policy's reward moving in minutes.
    steps: z.number().int().min(1).default(100),
    // Seeds everything: step s draws from new Rng(seed).fork(`step-s`), so a resumed run repeats exactly.
    seed: z.number().int().default(0),

    // --- batches (paper Table 4)
    // Prompts sampled and answered per PPO step. Paper: 64. A nano CPU run uses 8–16 to keep a step ~1 s.
    rolloutBatch: z.number().int().min(1).default(64),
    // Sequences per optimizer update (the minibatch). Paper: 32.
    stepBatch: z.number().int().min(1).default(32),
    // Passes over each rollout batch. Paper: 2.
    ppoEpochs: z.number().int().min(1).default(2),

    // --- optimizer (AdamW over the policy and its value head)
    // Paper: 1e-5 for a 7B model. A nano CPU model needs more to move in 100 steps: measured at 1e-4
    // (rollout 8), KL to the reference reached ~10–25 nats/answer within 30 steps, so 3e-5–1e-4.
    lr: z.number().positive().default(1e-5),
    // Linear warmup over this many PPO steps (each has ppoEpochs × ⌈rolloutBatch/stepBatch⌉ updates). Paper: 5.
    warmupSteps: z.number().int().min(0).default(5),
    // torch's / TRL's AdamW defaults.
    beta1: z.number().min(0).max(1).default(0.9),
    beta2: z.number().min(0).max(1).default(0.999),
    eps: z.number().positive().default(1e-8),
    // TRL's PPO trains without weight decay.
    weightDecay: z.number().min(0).default(0),
    // TRL's max_grad_norm (1.0): keeps a large advantage from wrecking the policy in one update.
    clipNorm: z.number().min(0).default(1),

    // --- PPO objective
    // Discount: 1, the sequence is one episode with the reward at its end (TRL, the paper).
    gamma: z.number().min(0).max(1).default(1),
    // GAE λ: 0.95 (TRL's lam, the paper).
    lam: z.number().min(0).max(1).default(0.95),
    // Policy ratio clip ε: 0.2 (TRL's cliprange, Schulman et al. 2017).
    clipRange: z.number().positive().default(0.2),
    // Value clip around the rollout's values: 0.2 (TRL's cliprange_value).
    clipRangeValue: z.number().positive().default(0.2),
    // Weight of the value loss. Paper: 0.1.
    vfCoef: z.number().min(0).default(0.1),
    // Normalise advantages over the rollout batch (TRL always does).
    whitenAdvantages: z.boolean().default(true),

    // --- KL penalty against the frozen reference (the SFT policy)
    // Per-token coefficient β_KL: 0.02 (the paper's fixed coefficient; also TRL's init_kl_coef order).
    klCoef: z.number().min(0).default(0.02),
    // 'fixed' keeps klCoef; 'adaptive' is Ziegler et al. (2019)'s proportional controller toward klTarget.
    klControl: z.enum(['fixed', 'adaptive']).default('fixed'),
    // Adaptive controller's target KL per sequence (nats) and horizon (samples): TRL's 6 and 10000.
    klTarget: z.number().positive().default(6),
    klHorizon: z.number().positive().default(10000),
    // Per-token estimator: k1 = log p − log q (TRL's default); k3 = (r − 1) − log r with r = q/p
    // (Schulman's low-variance, always ≥ 0 estimator).
    klEstimator: z.enum(['k1', 'k3']).default('k1'),

    // --- reward
    // Scale the per-token rewards (score + KL) by their std over the batch, mean kept (TRL's whiten_rewards).
    whitenRewards: z.boolean().default(false),
    // Subtracted from the score of an answer that reached maxNewTokens without eos (TRL's
    // missing_eos_penalty); undefined = off.
    missingEosPenalty: z.number().min(0).optional(),

    // --- rollout sampling
    // Paper Table 6: 0.7. Log-probs, KL and entropy are read at this temperature too (as TRL).
    temperature: z.number().positive().default(0.7),
    // 1: sample from the whole softmax(logits / T), as TRL's PPOTrainer (top_k 0, top_p 1). The KL
    // estimates and the policy ratio are those of the untruncated distribution, so with topP < 1 (the
    // paper's 0.9 is for decoding answers) the samples are not drawn from it and the k1 KL comes out
    // biased low, often negative once the policy flattens (measured: README, "What the PPO numbers mean").
    topP: z.number().gt(0).max(1).default(1),
    // Response length cap. The paper's models answer at length; a nano model with context 128 uses 32–64.
    maxNewTokens: z.number().int().min(1).default(64),

    // --- checkpoints
    // Save train-state every N steps when an output folder is set (0 = only at the end or on abort).
    // Unset: a quarter of the steps, at most 25 (`defaultPpoCheckpointEvery`), so a short run has a few.
    checkpointEvery: z.number().int().min(0).optional(),
  })
  .strict();

export type PpoConfig = z.output<typeof ppoConfigSchema>;
export type PpoConfigInput = z.input<typeof ppoConfigSchema>;

/** Validates and completes PPO options; errors name the field (under `path`). */
export function resolvePpoConfig(input: unknown, path = 'ppo'): PpoConfig {
  return resolveOptions(ppoConfigSchema, input, path);
}

/** Optimizer updates in one PPO step: ppoEpochs × ⌈rolloutBatch / stepBatch⌉. */
export function updatesPerStep(config: PpoConfig): number {
  return config.ppoEpochs * Math.ceil(config.rolloutBatch / config.stepBatch);
}

/** Settings a resume may change without mixing two runs: how often to save. */
export const PPO_RESUMABLE_CHANGES: readonly (keyof PpoConfig)[] = ['checkpointEvery'];

/** The checkpoint interval when none is set: min(25, ⌈steps / 4⌉). */
export function defaultPpoCheckpointEvery(steps: number): number {
  return Math.max(1, Math.min(25, Math.ceil(steps / 4)));
}
