/**
 * The `EnsembleArchitecture` extension point and the `RewardEnsemble` runtime interface.
 *
 * An architecture builds a `TrainableEnsemble` from a backbone config, the number of members k and an
 * optional initial backbone (the SFT checkpoint). The ensemble scores a batch of token sequences into
 * per-member rewards [k, B]; for training it exposes phases (which variables train on which share of
 * the data, and how rewards are computed while training), and for checkpoints its variables grouped by
 * file. Everything else — the Bradley-Terry trainer, checkpoints, scoring, metrics — is generic and
 * lives once in this package, so a plugin architecture only implements this interface.
 */

import type { GptConfig } from '@quorum/backbone';
import { defineExtensionPoint, type Rng } from '@quorum/core';
import type * as tf from '@tensorflow/tfjs';

/** A batch of token sequences: ids int32 [B, T], mask float32 [B, T] (1 = real token). */
export interface TokenBatch {
  readonly ids: tf.Tensor2D;
  readonly mask: tf.Tensor2D;
}

/** Parameter counts in the paper's terms: M backbone, L head, A adapter (per member). */
export interface ParamCounts {
  /** Every parameter the ensemble holds (shared ones once). */
  readonly total: number;
  /** Parameters updated by training (the last phase's for multi-phase architectures: see `byPhase`). */
  readonly trainable: number;
  /** Trainable parameters of each training phase. */
  readonly byPhase: Record<string, number>;
  readonly backbone: number;
  readonly head: number;
  readonly adapter: number;
  readonly members: number;
}

/** How a phase's learning rate is chosen: full fine-tuning or adapter training (paper Tables 2–3). */
export type PhaseKind = 'full' | 'lora';

/** What the members' reward heads read, for objectives that add heads of their own (ODIN). */
export interface PhaseFeatures {
  /** Rewards [members, B], as `TrainingPhase.rewards` returns them. */
  readonly rewards: tf.Tensor2D;
  /** The heads' input: [B, D] shared by every member, or [members·B, D] member-major (member 0 first). */
  readonly hidden: tf.Tensor2D;
  /** The members' reward-head weights [D, members] (the trained variables, so gradients reach them). */
  readonly headWeights: tf.Tensor2D;
}

/** One stage of training: which variables learn, on which share of the data, producing which members' rewards. */
export interface TrainingPhase {
  /** e.g. `members`, `member-2`, `trunk`, `adapters`. */
  readonly name: string;
  readonly kind: PhaseKind;
  /** The share [from, to) of the shuffled training pairs this phase trains on (0–1). */
  readonly dataShare: readonly [number, number];
  /** Seed label for this phase's data order (members trained apart use different orders). */
  readonly orderLabel: string;
  /** Members whose rewards `rewards` returns (rows of its output, in order). */
  readonly members: readonly number[];
  /** True when these members share trainable weights: each member then weights pairs by its own bootstrap mask. */
  readonly sharedTrunk: boolean;
  /** The variables to train, by unique name. */
  variables(): Record<string, tf.Variable>;
  /** Rewards [members.length, B] while training (dropout streams from `rng` when given). */
  rewards(batch: TokenBatch, rng: Rng | undefined): tf.Tensor2D;
  /**
   * Rewards with the heads' input and weights (one forward). Optional: the ODIN objective needs it and
   * names the phase when it is missing.
   */
  features?(batch: TokenBatch, rng: Rng | undefined): PhaseFeatures;
}

/** A reward ensemble ready to score. */
export interface RewardEnsemble {
  readonly architecture: string;
  /** k */
  readonly members: number;
  readonly gptConfig: GptConfig;
  /** Per-member rewards [k, B] of a batch. The caller disposes the result. */
  score(batch: TokenBatch): tf.Tensor2D;
  paramCounts(): ParamCounts;
  dispose(): void;
}

export interface TrainableEnsemble extends RewardEnsemble {
  /** Resolved architecture options (saved in quorum.json, handed back to `build` when loading). */
  readonly options: Readonly<Record<string, unknown>>;
  /** Training phases in order. */
  phases(): TrainingPhase[];
  /** Every variable by unique name, grouped by checkpoint file (e.g. `backbone.safetensors`). */
  tensorFiles(): Record<string, Record<string, tf.Variable>>;
  /** Called once after the last phase (e.g. weight averaging). Optional. */
  finalize?(): void;
}

/** What an architecture gets to build an ensemble. */
export interface BuildContext {
  readonly gptConfig: GptConfig;
  readonly members: number;
  /** Initialisation stream (each member forks its own). */
  readonly rng: Rng;
  /** Backbone weights to start from (the SFT checkpoint), by backbone parameter name; undefined = scratch. */
  readonly initBackbone?: Record<string, tf.Tensor> | undefined;
}

/** An ensemble architecture: the strategy registered under a name like `lora`. */
export interface EnsembleArchitecture {
  readonly name: string;
  /** Builds a fresh ensemble; called with the same context when loading, before weights are assigned. */
  build(context: BuildContext): TrainableEnsemble;
  /** The parameter counts this architecture should have, from M, L, A and k (checked by the contract suite). */
  expectedParamCounts?(sizes: { M: number; L: number; A: number; k: number }): { total: number };
}

export const EnsembleArchitecture = defineExtensionPoint<EnsembleArchitecture>(
  'EnsembleArchitecture',
  'ensemble-architecture',
  'how k reward models are built from a transformer, heads and adapters, and trained',
);
