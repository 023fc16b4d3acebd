/**
 * `lora`: one shared transformer with k LoRA adapters and k heads (the paper's option 3; M + kL + kA
 * parameters). Phase 1 (`trunk`) fine-tunes the transformer with the k heads on the first share of the
 * training data; phase 2 (`adapters`) freezes it and trains each member's adapter and head on the rest.
 * All k members run in one batched pass: blocks below the first adapted layer run once for the whole
 * ensemble, then the batch is expanded to k·B rows and each member's adapter acts on its own rows.
 */

import { gptLastHidden } from '@quorum/backbone';
import type { Rng } from '@quorum/core';
import { memberHeadRewards, multiHeadRewards } from '@quorum/heads';
import {
  adapterParamCount,
  disposeLoraAdapters,
  initLoraAdapters,
  type LoraConfig,
  loraConfigSchema,
  loraForwardOptions,
  namedAdapterParameters,
  resolveLoraConfig,
} from '@quorum/lora';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { BuildContext, PhaseFeatures, TokenBatch, TrainableEnsemble } from '../architecture.js';
import {
  backboneVariables,
  countParameters,
  disposeVariables,
  headVariables,
  makeBackbone,
  makeHeads,
} from './common.js';

/** The LoRA adapter options (rank, alpha, dropout, targets, layers — see @quorum/lora) plus the data split. */
export const loraArchitectureOptions = loraConfigSchema
  .extend({
    /** Share of the training pairs for phase 1 (transformer + k heads); the rest trains the adapters. Paper: half. */
    split: z.number().gt(0).lt(1).default(0.5),
  })
  .strict();

export type LoraArchitectureOptions = z.output<typeof loraArchitectureOptions>;

export function buildLora(context: BuildContext, options: LoraArchitectureOptions): TrainableEnsemble {
  const { gptConfig: config, members: k, rng } = context;
  const lora: LoraConfig = resolveLoraConfig(
    {
      rank: options.rank,
      alpha: options.alpha,
      dropout: options.dropout,
      targets: options.targets,
      layers: options.layers,
    },
    'lora',
  );
  const backbone = makeBackbone(context, rng.fork('backbone'));
  const heads = makeHeads(config.dModel, k, rng);
  const adapters = initLoraAdapters(config, lora, k, rng);
  const backboneVars = backboneVariables(backbone);
  const headVars = headVariables(heads);
  const adapterVars = namedAdapterParameters(adapters);
  const members = Array.from({ length: k }, (_, m) => m);

  /** Phase 1 and the shared-trunk view: the transformer without adapters, k heads on one hidden state. */
  const trunkRewards = (batch: TokenBatch, dropoutRng: Rng | undefined): tf.Tensor2D =>
    tf.tidy(() => {
      const last = gptLastHidden(backbone, config, batch.ids, batch.mask, { dropoutRng }); // [B, D]
      return multiHeadRewards(heads.w, heads.b, last); // [k, B]
    });
  const trunkFeatures = (batch: TokenBatch, dropoutRng: Rng | undefined): PhaseFeatures =>
    tf.tidy(() => {
      const last = gptLastHidden(backbone, config, batch.ids, batch.mask, { dropoutRng }); // [B, D]
      return { rewards: multiHeadRewards(heads.w, heads.b, last), hidden: last, headWeights: heads.w }; // [k, B]
    });
  const adaptedFeatures = (batch: TokenBatch, dropoutRng: Rng | undefined): PhaseFeatures =>
    tf.tidy(() => {
      const forward = loraForwardOptions(adapters, { dropoutRng });
      const last = gptLastHidden(backbone, config, batch.ids, batch.mask, { ...forward, dropoutRng }); // [k·B, D]
      return { rewards: memberHeadRewards(heads.w, heads.b, last), hidden: last, headWeights: heads.w }; // [k, B]
    });
  /** Phase 2 and scoring: every member's adapter in one pass over the expanded batch. */
  const adaptedRewards = (batch: TokenBatch, dropoutRng: Rng | undefined): tf.Tensor2D =>
    tf.tidy(() => {
      const forward = loraForwardOptions(adapters, { dropoutRng });
      const last = gptLastHidden(backbone, config, batch.ids, batch.mask, { ...forward, dropoutRng }); // [k·B, D]
      return memberHeadRewards(heads.w, heads.b, last); // [k, B]
    });
  /** Scoring: each member's adapters merged into per-member weights, one batched matmul per adapted layer. */
  const mergedRewards = (batch: TokenBatch): tf.Tensor2D =>
    tf.tidy(() => {
      const forward = loraForwardOptions(adapters, { merged: true });
      const last = gptLastHidden(backbone, config, batch.ids, batch.mask, forward); // [k·B, D]
      return memberHeadRewards(heads.w, heads.b, last); // [k, B]
    });

  const M = countParameters(backboneVars);
  const kL = countParameters(headVars);
  const kA = countParameters(adapterVars);
  return {
    architecture: 'lora',
    members: k,
    gptConfig: config,
    options: { ...options },
    score: (batch) => mergedRewards(batch),
    phases: () => [
      {
        name: 'trunk',
        kind: 'full',
        dataShare: [0, options.split],
        orderLabel: 'trunk',
        members,
        sharedTrunk: k > 1,
        variables: () => ({ ...backboneVars, ...headVars }),
        rewards: trunkRewards,
        features: trunkFeatures,
      },
      {
        name: 'adapters',
        kind: 'lora',
        dataShare: [options.split, 1],
        orderLabel: 'adapters',
        members,
        // Each member's adapter and head are its own: no bootstrap needed for diversity.
        sharedTrunk: false,
        variables: () => ({ ...adapterVars, ...headVars }),
        rewards: adaptedRewards,
        features: adaptedFeatures,
      },
    ],
    // Heads live with their adapters (never one without the other).
    tensorFiles: () => ({
      'backbone.safetensors': backboneVars,
      'adapters.safetensors': { ...adapterVars, ...headVars },
    }),
    paramCounts: () => ({
      total: M + kL + kA,
      trainable: kL + kA,
      byPhase: { trunk: M + kL, adapters: kL + kA },
      backbone: M,
      head: config.dModel + 1,
      adapter: adapterParamCount(config, lora),
      members: k,
    }),
    dispose: () => {
      disposeVariables(backboneVars);
      disposeVariables(headVars);
      disposeLoraAdapters(adapters);
    },
  };
}
